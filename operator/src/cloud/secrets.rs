//! Secrets Manager: the write token's secret, made and updated with the value the Kubernetes
//! Secret holds, found by name and checked for ownership; deleted without a recovery window.

use super::{Call, CREATED_TAGGED, OWN_TAGGED};
use std::collections::BTreeMap;

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::Tag;

use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::desired::{Owner, WriteTokenRef};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "WriteTokenSecretsCreatedTagged",
    "Effect": "Allow",
    "Action": [
      "secretsmanager:CreateSecret",
      "secretsmanager:TagResource"
    ],
    "Resource": [
      "arn:aws:secretsmanager:*:*:secret:blog-*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:RequestTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "WriteTokenSecretLookup",
    "Effect": "Allow",
    "Action": [
      "secretsmanager:DescribeSecret"
    ],
    "Resource": [
      "arn:aws:secretsmanager:*:*:secret:blog-*"
    ]
  },
  {
    "Sid": "OnlyItsWriteTokenSecrets",
    "Effect": "Allow",
    "Action": [
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:DeleteSecret"
    ],
    "Resource": [
      "arn:aws:secretsmanager:*:*:secret:blog-*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  }
]"#;

pub(crate) const SERVICE: &str = "secretsmanager";

const SECRET: &str = "arn:aws:secretsmanager:{region}:{account}:secret:{write_token_secret}-AbCdEf";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create the token's secret, tagged", "secretsmanager:CreateSecret", SECRET).with(&[CREATED_TAGGED]),
    Call::new("tag it as it is created", "secretsmanager:TagResource", SECRET).with(&[CREATED_TAGGED]),
    Call::new("find it", "secretsmanager:DescribeSecret", SECRET),
    Call::new("compare its value", "secretsmanager:GetSecretValue", SECRET).with(&[OWN_TAGGED]),
    Call::new("rotate it", "secretsmanager:PutSecretValue", SECRET).with(&[OWN_TAGGED]),
    Call::new("delete it", "secretsmanager:DeleteSecret", SECRET).with(&[OWN_TAGGED]),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, ErrorKind)] = &[];

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    super::tags::tag_map(tags.iter().map(|t| (t.key(), t.value())))
}

/// Makes the secret `name` hold `value`; returns its ARN and current version, which changes only
/// when the value does.
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_write_token(
    clients: &AwsClients,
    owner: &Owner,
    name: &str,
    value: &str,
    tags: &BTreeMap<String, String>,
) -> CloudResult<WriteTokenRef> {
    let found = clients.secrets.describe_secret().secret_id(name).send().await;
    let Some(found) = super::found(found.map_err(map_sdk(SERVICE, "DescribeSecret")))? else {
        let created = clients
            .secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .set_tags(Some(super::tags::sdk_tags(tags, |k, v| Some(Tag::builder().key(k).value(v).build()))))
            .send()
            .await
            .map_err(map_sdk(SERVICE, "CreateSecret"))?;
        return remembered(clients, name, value, reference(created.arn, created.version_id));
    };
    super::tags::claim(owner, &tag_map(found.tags()), SERVICE, "DescribeSecret", format!("secret {name}"))?;
    // The value is read only when its version is not the one last seen holding it.
    if let Some(version) = current_version(&found).filter(|v| clients.memo.secret_holds(name, v, value)) {
        return reference(found.arn.clone(), Some(version.to_owned()));
    }
    let current = clients.secrets.get_secret_value().secret_id(name).send().await;
    let current = current.map_err(map_sdk(SERVICE, "GetSecretValue"))?;
    if current.secret_string() == Some(value) {
        return remembered(clients, name, value, reference(current.arn, current.version_id));
    }
    let put = clients.secrets.put_secret_value().secret_id(name).secret_string(value).send().await;
    let put = put.map_err(map_sdk(SERVICE, "PutSecretValue"))?;
    remembered(clients, name, value, reference(put.arn, put.version_id))
}

/// The version labelled `AWSCURRENT`.
fn current_version(found: &DescribeSecretOutput) -> Option<&str> {
    let stages = found.version_ids_to_stages()?;
    stages.iter().find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT")).map(|(version, _)| version.as_str())
}

fn remembered(
    clients: &AwsClients,
    name: &str,
    value: &str,
    made: CloudResult<WriteTokenRef>,
) -> CloudResult<WriteTokenRef> {
    if let Ok(made) = &made {
        clients.memo.remember_secret(name, &made.version, value);
    }
    made
}

fn reference(arn: Option<String>, version: Option<String>) -> CloudResult<WriteTokenRef> {
    match (arn, version) {
        (Some(secret_arn), Some(version)) => Ok(WriteTokenRef { secret_arn, version }),
        _ => Err(CloudError::local(SERVICE, "GetSecretValue", ErrorKind::Transient, "no ARN or version returned")),
    }
}

/// Deletes the secret at once (no recovery window) if it is ours; gone already counts as done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_write_token(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    let found = clients.secrets.describe_secret().secret_id(name).send().await;
    let Some(found) = super::found(found.map_err(map_sdk(SERVICE, "DescribeSecret")))? else { return Ok(()) };
    if !owner.owns(&tag_map(found.tags())) {
        tracing::warn!(secret = name, "not deleting a secret this BlogDeployment does not own");
        return Ok(());
    }
    clients.memo.forget_secret(name);
    gone_is_done(
        clients
            .secrets
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map(drop)
            .map_err(map_sdk(SERVICE, "DeleteSecret")),
    )
}
