//! Secrets Manager: the write token's secret, made and updated with the value the Kubernetes
//! Secret holds, found by name and checked for ownership; deleted without a recovery window.

use super::{Call, CREATED_TAGGED, OWN_TAGGED};
use std::collections::{BTreeMap, HashMap};

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

use super::inventory::Listed;
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
    "Sid": "WriteTokenSecretListing",
    "Effect": "Allow",
    "Action": [
      "secretsmanager:ListSecrets"
    ],
    "Resource": "*"
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
    Call::new("list the secrets named blog-…", "secretsmanager:ListSecrets", "*"),
    Call::new("compare its value", "secretsmanager:GetSecretValue", SECRET).with(&[OWN_TAGGED]),
    Call::new("rotate it", "secretsmanager:PutSecretValue", SECRET).with(&[OWN_TAGGED]),
    Call::new("delete it", "secretsmanager:DeleteSecret", SECRET).with(&[OWN_TAGGED]),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, ErrorKind)] = &[];

fn listed_tags(tags: &[Tag]) -> super::tags::TagList {
    tags.iter().filter_map(|t| Some((t.key()?, t.value()?))).collect()
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
    let found = match observe_secret(clients, name).await? {
        Some(found) => found,
        None => match create_secret(clients, name, value, tags).await {
            // Made since the listing was taken: read, and claimed below.
            Err(err) if err.code == "ResourceExistsException" => read_secret(clients, name).await?.ok_or(err)?,
            created => return remembered(clients, name, value, created),
        },
    };
    clients.inventories.deep.done(&seen(name), &());
    super::tags::claim(owner, &found.tags.to_map(), SERVICE, "DescribeSecret", format!("secret {name}"))?;
    // The value is read only when its version is not the one last seen holding it.
    if let Some(version) = found.current.filter(|v| clients.memo.secret_holds(name, v, value)) {
        return reference(found.arn, Some(version));
    }
    // A new version follows: the listing's is stale until the next.
    clients.inventories.secrets.forget(LISTED, name).await;
    let current = clients.secrets.get_secret_value().secret_id(name).send().await;
    let current = current.map_err(map_sdk(SERVICE, "GetSecretValue"))?;
    if current.secret_string() == Some(value) {
        return remembered(clients, name, value, reference(current.arn, current.version_id));
    }
    let put = clients.secrets.put_secret_value().secret_id(name).secret_string(value).send().await;
    let put = put.map_err(map_sdk(SERVICE, "PutSecretValue"))?;
    remembered(clients, name, value, reference(put.arn, put.version_id))
}

async fn create_secret(
    clients: &AwsClients,
    name: &str,
    value: &str,
    tags: &BTreeMap<String, String>,
) -> CloudResult<WriteTokenRef> {
    let created = clients
        .secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .set_tags(Some(super::tags::sdk_tags(tags, |k, v| Some(Tag::builder().key(k).value(v).build()))))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateSecret"))?;
    clients.inventories.deep.done(&seen(name), &());
    reference(created.arn, created.version_id)
}

/// The record that this process saw or made the secret (a deep period ago at most).
fn seen(name: &str) -> String {
    format!("secret {name} seen")
}

/// A secret as its listing or a read shows it: its ARN, tags and `AWSCURRENT` version.
#[derive(Debug, Clone)]
pub struct SeenSecret {
    arn: Option<String>,
    tags: super::tags::TagList,
    current: Option<String>,
}

/// What every name the operator gives a secret starts with: the key of the region's listing.
const LISTED: &str = "blog-";

/// The secret of this name from the region's listing, or read on its own when the listing does not
/// hold it (made since, or given a new version by the operator since).
async fn observe_secret(clients: &AwsClients, name: &str) -> CloudResult<Option<SeenSecret>> {
    let listed = match name.starts_with(LISTED) {
        true => clients.inventories.secrets.look_up(LISTED, name, || list_secrets(clients.clone())).await,
        false => Listed::Unknown,
    };
    match listed {
        Listed::Found(found) => Ok(Some(found)),
        // Not listed and never seen by this process: made without a look first.
        Listed::Absent if clients.inventories.deep.due(&seen(name), &()) => Ok(None),
        Listed::Absent | Listed::Unknown => read_secret(clients, name).await,
    }
}

/// The secret of this name (`DescribeSecret`).
async fn read_secret(clients: &AwsClients, name: &str) -> CloudResult<Option<SeenSecret>> {
    let found = clients.secrets.describe_secret().secret_id(name).send().await;
    let found = super::found(found.map_err(map_sdk(SERVICE, "DescribeSecret")))?;
    Ok(found.map(|f| SeenSecret {
        tags: listed_tags(f.tags()),
        current: f.version_ids_to_stages.as_ref().and_then(current_version),
        arn: f.arn,
    }))
}

/// The region's secrets named `blog-…`, by name, in pages of 100 (`ListSecrets` filtered by name).
async fn list_secrets(clients: AwsClients) -> CloudResult<HashMap<String, SeenSecret>> {
    let by_name = Filter::builder().key(FilterNameStringType::Name).values(LISTED).build();
    let mut secrets = HashMap::new();
    let mut pages = clients.secrets.list_secrets().filters(by_name).max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        for entry in page.map_err(map_sdk(SERVICE, "ListSecrets"))?.secret_list.unwrap_or_default() {
            let Some(name) = entry.name.clone().filter(|n| n.starts_with(LISTED)) else { continue };
            let current = entry.secret_versions_to_stages.as_ref().and_then(current_version);
            secrets.insert(name, SeenSecret { tags: listed_tags(entry.tags()), current, arn: entry.arn });
        }
    }
    Ok(secrets)
}

/// The version labelled `AWSCURRENT`.
fn current_version(stages: &HashMap<String, Vec<String>>) -> Option<String> {
    stages.iter().find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT")).map(|(version, _)| version.clone())
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
    // Read on its own: a listing taken before the secret was made would leave it behind.
    let Some(found) = read_secret(clients, name).await? else { return Ok(()) };
    if !found.tags.owned_by(owner) {
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
