//! API Gateway custom domain names: the function variant's host, a regional endpoint with the
//! ACM certificate, mapped to the HTTP API's `$default` stage. A domain name is one per account and
//! region, so one without this owner's tags is never changed or deleted.

use super::{Call, CREATED_TAGGED, OWN_TAGGED};
use std::collections::{BTreeMap, HashMap};

use aws_sdk_apigatewayv2::types::{DomainName, DomainNameConfiguration, EndpointType, SecurityPolicy};

use super::{AwsClients, CloudError, CloudResult, gone_is_done, map_sdk};
use crate::desired::Owner;

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "CustomDomainReads",
    "Effect": "Allow",
    "Action": [
      "apigateway:GET"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/domainnames/*",
      "arn:aws:apigateway:*::/domainnames/*/apimappings"
    ]
  },
  {
    "Sid": "CustomDomainCreateTagged",
    "Effect": "Allow",
    "Action": [
      "apigateway:POST"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/domainnames"
    ],
    "Condition": {
      "StringEquals": {
        "aws:RequestTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "CustomDomainChangeOnlyItsOwn",
    "Effect": "Allow",
    "Action": [
      "apigateway:PATCH",
      "apigateway:DELETE"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/domainnames/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "ApiMappingsOfItsCustomDomains",
    "Effect": "Allow",
    "Action": [
      "apigateway:POST",
      "apigateway:DELETE"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/domainnames/*/apimappings",
      "arn:aws:apigateway:*::/domainnames/*/apimappings/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  }
]"#;

pub(crate) const SERVICE: &str = "apigatewayv2";

const DOMAIN_NAME: &str = "arn:aws:apigateway:{region}::/domainnames/fn.blog.example.com";
const MAPPINGS: &str = "arn:aws:apigateway:{region}::/domainnames/fn.blog.example.com/apimappings";

/// The calls above as IAM sees them (see [`Call`]): API Gateway authorises by HTTP method.
pub const CALLS: &[Call] = &[
    Call::new("create the custom domain, tagged", "apigateway:POST", "arn:aws:apigateway:{region}::/domainnames")
        .with(&[CREATED_TAGGED]),
    Call::new("read it", "apigateway:GET", DOMAIN_NAME),
    Call::new("move its certificate", "apigateway:PATCH", DOMAIN_NAME).with(&[OWN_TAGGED]),
    Call::new("delete its own custom domain", "apigateway:DELETE", DOMAIN_NAME).with(&[OWN_TAGGED]),
    Call::new("read its mappings", "apigateway:GET", MAPPINGS),
    Call::new("map the API", "apigateway:POST", MAPPINGS).with(&[OWN_TAGGED]),
    Call::new(
        "remove a stray mapping",
        "apigateway:DELETE",
        "arn:aws:apigateway:{region}::/domainnames/fn.blog.example.com/apimappings/m1",
    )
    .with(&[OWN_TAGGED]),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, super::ErrorKind)] = &[];
const STAGE: &str = "$default";

/// Where the custom domain answers: the alias target for Route 53.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDomainObserved {
    /// The regional endpoint's DNS name (`d-xxxx.execute-api.<region>.amazonaws.com`).
    pub target: String,
    /// Its Route 53 hosted zone id.
    pub zone_id: String,
}

async fn find(clients: &AwsClients, host: &str) -> CloudResult<Option<DomainName>> {
    let out =
        clients.apigateway.get_domain_name().domain_name(host).send().await.map_err(map_sdk(SERVICE, "GetDomainName"));
    Ok(super::found(out)?.map(|o| {
        DomainName::builder()
            .domain_name(o.domain_name.unwrap_or_default())
            .set_domain_name_configurations(o.domain_name_configurations)
            .set_tags(o.tags)
            .build()
    }))
}

fn owned(domain: &DomainName, owner: &Owner) -> bool {
    owner.owns(&domain.tags().cloned().unwrap_or_default().into_iter().collect())
}

fn configuration(certificate_arn: &str) -> DomainNameConfiguration {
    DomainNameConfiguration::builder()
        .certificate_arn(certificate_arn)
        .endpoint_type(EndpointType::Regional)
        .security_policy(SecurityPolicy::Tls12)
        .build()
}

/// Makes the custom domain `host` exist with `certificate_arn`, mapped to the API's `$default`
/// stage and nothing else.
///
/// # Errors
/// The AWS failure; [`CloudError::not_owned`] when the name belongs to someone else.
pub async fn ensure_custom_domain(
    clients: &AwsClients,
    owner: &Owner,
    host: &str,
    certificate_arn: &str,
    api_id: &str,
    tags: &BTreeMap<String, String>,
) -> CloudResult<CustomDomainObserved> {
    let domain = match find(clients, host).await? {
        Some(domain) if !owned(&domain, owner) => {
            return Err(CloudError::not_owned(SERVICE, "GetDomainName", format!("API Gateway domain name {host}")));
        }
        Some(domain) => domain,
        None => create(clients, host, certificate_arn, tags).await?,
    };
    let config = domain.domain_name_configurations().first().cloned().unwrap_or_else(|| configuration(certificate_arn));
    if config.certificate_arn() != Some(certificate_arn) {
        clients
            .apigateway
            .update_domain_name()
            .domain_name(host)
            .domain_name_configurations(configuration(certificate_arn))
            .send()
            .await
            .map_err(map_sdk(SERVICE, "UpdateDomainName"))?;
    }
    ensure_mapping(clients, host, api_id).await?;
    Ok(CustomDomainObserved {
        target: config.api_gateway_domain_name().unwrap_or_default().to_owned(),
        zone_id: config.hosted_zone_id().unwrap_or_default().to_owned(),
    })
}

async fn create(
    clients: &AwsClients,
    host: &str,
    certificate_arn: &str,
    tags: &BTreeMap<String, String>,
) -> CloudResult<DomainName> {
    let out = clients
        .apigateway
        .create_domain_name()
        .domain_name(host)
        .domain_name_configurations(configuration(certificate_arn))
        .set_tags(Some(tags.clone().into_iter().collect::<HashMap<_, _>>()))
        .send()
        .await
        // Taken meanwhile (an earlier, interrupted run): the next look reads it and its tags.
        .map_err(map_sdk(SERVICE, "CreateDomainName"))?;
    Ok(DomainName::builder()
        .domain_name(out.domain_name.unwrap_or_default())
        .set_domain_name_configurations(out.domain_name_configurations)
        .set_tags(out.tags)
        .build())
}

/// Exactly one mapping on the domain: its root to the API's `$default` stage.
async fn ensure_mapping(clients: &AwsClients, host: &str, api_id: &str) -> CloudResult<()> {
    let out = clients
        .apigateway
        .get_api_mappings()
        .domain_name(host)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "GetApiMappings"))?;
    let mut right = false;
    for mapping in out.items() {
        let is_right = mapping.api_id() == Some(api_id)
            && mapping.stage() == Some(STAGE)
            && mapping.api_mapping_key().unwrap_or_default().is_empty();
        if is_right && !right {
            right = true;
            continue;
        }
        let id = mapping.api_mapping_id().unwrap_or_default();
        gone_is_done(
            clients
                .apigateway
                .delete_api_mapping()
                .domain_name(host)
                .api_mapping_id(id)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "DeleteApiMapping")),
        )?;
    }
    if !right {
        clients
            .apigateway
            .create_api_mapping()
            .domain_name(host)
            .api_id(api_id)
            .stage(STAGE)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "CreateApiMapping"))?;
    }
    Ok(())
}

/// Deletes the custom domain `host` (its mappings go with it) when it is this owner's.
///
/// # Errors
/// The AWS failure.
pub async fn delete_custom_domain(clients: &AwsClients, owner: &Owner, host: &str) -> CloudResult<()> {
    match find(clients, host).await? {
        Some(domain) if owned(&domain, owner) => gone_is_done(
            clients
                .apigateway
                .delete_domain_name()
                .domain_name(host)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "DeleteDomainName")),
        ),
        _ => Ok(()),
    }
}
