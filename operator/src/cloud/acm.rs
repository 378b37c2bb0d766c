//! AWS Certificate Manager: the certificate the HTTPS endpoints use, requested with DNS validation
//! when the spec gives none, found again by its ownership tags, and deleted only when it is ours.

use super::{Call, CREATED_TAGGED, OWN_TAGGED};
use std::collections::BTreeMap;

use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};

use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::desired::Owner;

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "CertificatesRequestedTagged",
    "Effect": "Allow",
    "Action": [
      "acm:RequestCertificate",
      "acm:AddTagsToCertificate"
    ],
    "Resource": "*",
    "Condition": {
      "StringEquals": {
        "aws:RequestTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "CertificateReads",
    "Effect": "Allow",
    "Action": [
      "acm:DescribeCertificate",
      "acm:ListTagsForCertificate"
    ],
    "Resource": [
      "arn:aws:acm:*:*:certificate/*"
    ]
  },
  {
    "Sid": "CertificateList",
    "Effect": "Allow",
    "Action": [
      "acm:ListCertificates"
    ],
    "Resource": "*"
  },
  {
    "Sid": "CertificateDeleteOnlyItsOwn",
    "Effect": "Allow",
    "Action": [
      "acm:DeleteCertificate"
    ],
    "Resource": [
      "arn:aws:acm:*:*:certificate/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  }
]"#;

pub(crate) const SERVICE: &str = "acm";

const CERTIFICATE: &str = "arn:aws:acm:{region}:{account}:certificate/0a1b2c3d-0000-4000-8000-000000000000";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("request a tagged certificate", "acm:RequestCertificate", "*")
        .with(&[CREATED_TAGGED, ("acm:DomainNames", r#"["{host}"]"#)]),
    Call::new("tag it as it is requested", "acm:AddTagsToCertificate", CERTIFICATE).with(&[CREATED_TAGGED]),
    Call::new("describe a certificate", "acm:DescribeCertificate", CERTIFICATE),
    Call::new("read its tags", "acm:ListTagsForCertificate", CERTIFICATE),
    Call::new("list certificates", "acm:ListCertificates", "*"),
    Call::new("delete its own certificate", "acm:DeleteCertificate", CERTIFICATE).with(&[OWN_TAGGED]),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, ErrorKind)] = &[];

/// A certificate as ACM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateObserved {
    pub arn: String,
    /// `PENDING_VALIDATION`, `ISSUED`, `FAILED`, `VALIDATION_TIMED_OUT`, ...
    pub status: String,
    /// The CNAME records that prove control of each name (name → value), once ACM has made them.
    pub validation: Vec<(String, String)>,
    /// Why ACM failed it, when it did.
    pub failure: Option<String>,
    /// The names it covers, lowercase and sorted.
    pub names: Vec<String>,
}

impl CertificateObserved {
    #[must_use]
    pub fn issued(&self) -> bool {
        self.status == "ISSUED"
    }
}

/// Describes one certificate.
///
/// # Errors
/// The AWS failure (NotFound when there is no such certificate).
pub async fn describe(clients: &AwsClients, arn: &str) -> CloudResult<CertificateObserved> {
    let out = clients
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeCertificate"))?;
    let detail = out.certificate().ok_or_else(|| {
        CloudError::local(SERVICE, "DescribeCertificate", ErrorKind::Transient, format!("no detail for {arn} yet"))
    })?;
    let validation = detail
        .domain_validation_options()
        .iter()
        .filter_map(|option| option.resource_record())
        .map(|record| (record.name().to_ascii_lowercase(), record.value().to_ascii_lowercase()))
        .collect();
    let mut names: Vec<String> = detail.subject_alternative_names().iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort();
    Ok(CertificateObserved {
        arn: arn.to_owned(),
        names,
        status: detail.status().map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
        validation,
        failure: detail.failure_reason().map(|r| r.as_str().to_owned()),
    })
}

/// The certificates `owner` requested whose main name is one of `hosts`.
///
/// # Errors
/// The AWS failure.
pub async fn owned_for_hosts(clients: &AwsClients, owner: &Owner, hosts: &[String]) -> CloudResult<Vec<String>> {
    let statuses = [
        CertificateStatus::PendingValidation,
        CertificateStatus::Issued,
        CertificateStatus::Failed,
        CertificateStatus::ValidationTimedOut,
        CertificateStatus::Inactive,
        CertificateStatus::Expired,
    ];
    let mut pages =
        clients.acm.list_certificates().set_certificate_statuses(Some(statuses.to_vec())).into_paginator().send();
    let mut candidates = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(map_sdk(SERVICE, "ListCertificates"))?;
        for summary in page.certificate_summary_list() {
            let (Some(arn), Some(main)) = (summary.certificate_arn(), summary.domain_name()) else { continue };
            if hosts.iter().any(|h| h.eq_ignore_ascii_case(main)) {
                candidates.push(arn.to_owned());
            }
        }
    }
    let mut owned = Vec::new();
    for arn in candidates {
        if owner.owns(&tags_of(clients, &arn).await?) {
            owned.push(arn);
        }
    }
    Ok(owned)
}

async fn tags_of(clients: &AwsClients, arn: &str) -> CloudResult<BTreeMap<String, String>> {
    let out = clients
        .acm
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ListTagsForCertificate"));
    let tags = super::found(out)?.map(|o| o.tags.unwrap_or_default()).unwrap_or_default();
    Ok(super::tags::tag_map(tags.iter().map(|t| (Some(t.key()), t.value()))))
}

/// The certificate at `arn` when it is this owner's and covers exactly `wanted` (sorted).
async fn usable(
    clients: &AwsClients,
    owner: &Owner,
    arn: &str,
    wanted: &[String],
) -> CloudResult<Option<CertificateObserved>> {
    let Some(found) = super::found(describe(clients, arn).await)? else { return Ok(None) };
    if found.names != wanted || !owner.owns(&tags_of(clients, arn).await?) {
        return Ok(None);
    }
    // ACM gives up on validation after 72 hours: the failed one goes, the next look asks anew.
    if matches!(found.status.as_str(), "FAILED" | "VALIDATION_TIMED_OUT" | "EXPIRED" | "REVOKED" | "INACTIVE") {
        delete(clients, arn).await?;
    }
    Ok(Some(found))
}

/// This owner's certificate covering exactly `hosts` (a failed one is deleted, so the next look
/// requests anew), else a new request. `known` (the one status recorded) is read first: two calls
/// instead of listing every certificate in the account. The idempotency token makes a request
/// repeated after a lost answer return the same certificate.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_requested(
    clients: &AwsClients,
    owner: &Owner,
    (hosts, token): (&[String], &str),
    known: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> CloudResult<CertificateObserved> {
    let mut wanted: Vec<String> = hosts.to_vec();
    wanted.sort();
    if let Some(arn) = known
        && let Some(found) = usable(clients, owner, arn, &wanted).await?
    {
        return Ok(found);
    }
    for arn in owned_for_hosts(clients, owner, &hosts[..1]).await? {
        if let Some(found) = usable(clients, owner, &arn, &wanted).await? {
            return Ok(found);
        }
    }
    let sdk_tags = super::tags::sdk_tags(tags, |k, v| Tag::builder().key(k).value(v).build().ok());
    let out = clients
        .acm
        .request_certificate()
        .domain_name(&hosts[0])
        .set_subject_alternative_names(Some(hosts.to_vec()))
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(token)
        .set_tags(Some(sdk_tags))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "RequestCertificate"))?;
    let arn = out.certificate_arn().unwrap_or_default();
    describe(clients, arn).await
}

/// Deletes a certificate; one still attached to a listener or a custom domain (AWS detaches it a
/// little after they go) is retried.
///
/// # Errors
/// The AWS failure.
pub async fn delete(clients: &AwsClients, arn: &str) -> CloudResult<()> {
    let deleted = clients
        .acm
        .delete_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DeleteCertificate"));
    match deleted {
        Err(err) if err.code == "ResourceInUseException" => Err(CloudError { kind: ErrorKind::Transient, ..err }),
        other => gone_is_done(other),
    }
}
