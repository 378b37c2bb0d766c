//! Route 53: finds the user's hosted zone, and reads, writes and deletes the records the domain
//! needs, each with its ownership marker in the same atomic change (see `domain`).

use super::Call;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, ResourceRecordSetRegion, RrType,
};

use super::{AwsClients, CloudError, CloudResult, ErrorKind, map_sdk};
use crate::desired::Owner;
use crate::domain::{self, RecordSet, RecordStep, RecordValue, Routing, RoutingPolicy, ZoneRef};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "HostedZoneLookup",
    "Effect": "Allow",
    "Action": [
      "route53:ListHostedZonesByName"
    ],
    "Resource": "*"
  },
  {
    "Sid": "HostedZoneRecords",
    "Effect": "Allow",
    "Action": [
      "route53:GetHostedZone",
      "route53:ListResourceRecordSets"
    ],
    "Resource": [
      "arn:aws:route53:::hostedzone/*"
    ]
  },
  {
    "Sid": "OnlyAliasValidationAndMarkerRecords",
    "Effect": "Allow",
    "Action": [
      "route53:ChangeResourceRecordSets"
    ],
    "Resource": [
      "arn:aws:route53:::hostedzone/*"
    ],
    "Condition": {
      "ForAllValues:StringEquals": {
        "route53:ChangeResourceRecordSetsRecordTypes": [
          "A",
          "CNAME",
          "TXT"
        ]
      }
    }
  },
  {
    "Sid": "HealthChecksAccountWide",
    "Effect": "Allow",
    "Action": [
      "route53:CreateHealthCheck",
      "route53:ListHealthChecks"
    ],
    "Resource": "*"
  },
  {
    "Sid": "HealthChecks",
    "Effect": "Allow",
    "Action": [
      "route53:GetHealthCheck",
      "route53:GetHealthCheckStatus",
      "route53:DeleteHealthCheck",
      "route53:ChangeTagsForResource",
      "route53:ListTagsForResources"
    ],
    "Resource": [
      "arn:aws:route53:::healthcheck/*"
    ]
  }
]"#;

pub(crate) const SERVICE: &str = "route53";

const ZONE: &str = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ";
const HEALTH_CHECK: &str = "arn:aws:route53:::healthcheck/6a0e2b1c-0000-4000-8000-000000000000";
const TYPES: &str = "route53:ChangeResourceRecordSetsRecordTypes";
const NAMES: &str = "route53:ChangeResourceRecordSetsNormalizedRecordNames";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("find the zone by name", "route53:ListHostedZonesByName", "*"),
    Call::new("read the zone", "route53:GetHostedZone", ZONE),
    Call::new("read its records", "route53:ListResourceRecordSets", ZONE),
    Call::new("write an alias and its marker", "route53:ChangeResourceRecordSets", ZONE)
        .with(&[(TYPES, r#"["A", "TXT"]"#), (NAMES, r#"["{host}", "_blog-operator.{host}"]"#)]),
    Call::new("write a validation record and its marker", "route53:ChangeResourceRecordSets", ZONE).with(&[
        (TYPES, r#"["CNAME", "TXT"]"#),
        (NAMES, r#"["_0123abcd.{host}", "_blog-operator._0123abcd.{host}"]"#),
    ]),
    Call::new("write a placement region's latency record", "route53:ChangeResourceRecordSets", ZONE).with(&[
        (TYPES, r#"["A", "TXT"]"#),
        (NAMES, r#"["eu-central-1.{host}", "_blog-operator.eu-central-1.{host}"]"#),
    ]),
    Call::new("create a health check", "route53:CreateHealthCheck", "*"),
    Call::new("read it", "route53:GetHealthCheck", HEALTH_CHECK),
    Call::new("read its status", "route53:GetHealthCheckStatus", HEALTH_CHECK),
    Call::new("tag it", "route53:ChangeTagsForResource", HEALTH_CHECK),
    Call::new("delete it", "route53:DeleteHealthCheck", HEALTH_CHECK),
    Call::new("find the checks a lost status forgot", "route53:ListHealthChecks", "*"),
    Call::new("and their owner's tags", "route53:ListTagsForResources", HEALTH_CHECK),
];

/// Route 53's own codes; PriorRequestNotComplete: the last change to this zone is still being
/// applied.
pub const CODES: &[(&str, ErrorKind)] = &[
    ("NoSuchHostedZone", ErrorKind::NotFound),
    ("NoSuchHealthCheck", ErrorKind::NotFound),
    ("PriorRequestNotComplete", ErrorKind::Transient),
];

/// The code of a zone the spec names that cannot be found, or that is ambiguous.
pub const ZONE_NOT_FOUND: &str = "HostedZoneNotFound";
/// The code of a name held by a record this owner did not write.
pub const RECORD_CONFLICT: &str = "RecordConflict";

/// A hosted zone: its bare id and its name (lowercase, trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub name: String,
}

fn zone_missing(message: String) -> CloudError {
    CloudError::refused(SERVICE, "GetHostedZone", ZONE_NOT_FOUND, message)
}

/// The public zone the spec names, by id or by its exact name.
///
/// # Errors
/// [`ZONE_NOT_FOUND`] when there is none (or several of that name), or the AWS failure.
pub async fn find_zone(clients: &AwsClients, zone: &ZoneRef) -> CloudResult<Zone> {
    let found = match zone {
        ZoneRef::Id(id) => {
            let out = clients.route53.get_hosted_zone().id(id).send().await.map_err(map_sdk(SERVICE, "GetHostedZone"));
            super::found(out)?.and_then(|o| o.hosted_zone).into_iter().collect::<Vec<_>>()
        }
        ZoneRef::Name(name) => {
            let out = clients
                .route53
                .list_hosted_zones_by_name()
                .dns_name(name)
                .max_items(10)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "ListHostedZonesByName"))?;
            out.hosted_zones().iter().filter(|z| domain::fqdn(z.name()) == *name).cloned().collect()
        }
    };
    let public: Vec<_> = found.iter().filter(|z| !z.config().is_some_and(|c| c.private_zone())).collect();
    match public.as_slice() {
        [one] => {
            Ok(Zone { id: one.id().trim_start_matches("/hostedzone/").to_owned(), name: domain::fqdn(one.name()) })
        }
        [] => Err(zone_missing(format!("no public Route 53 hosted zone {zone:?} is visible to the operator"))),
        _ => Err(zone_missing(format!(
            "several public hosted zones are named {zone:?}: give spec.domain.hostedZone by id"
        ))),
    }
}

/// The record set of exactly this name and type, if any (the first, under routing).
async fn read(clients: &AwsClients, zone_id: &str, name: &str, kind: &str) -> CloudResult<Option<RecordSet>> {
    Ok(read_all(clients, zone_id, name, kind).await?.into_iter().next())
}

fn from_sdk(found: &ResourceRecordSet) -> RecordSet {
    let value = match found.alias_target() {
        Some(alias) => RecordValue::Alias {
            zone_id: alias.hosted_zone_id().to_owned(),
            dns_name: domain::fqdn(alias.dns_name()),
            evaluate_health: alias.evaluate_target_health(),
        },
        None => RecordValue::Values {
            ttl: found.ttl().unwrap_or_default(),
            values: found.resource_records().iter().map(|r| r.value().to_ascii_lowercase()).collect(),
        },
    };
    let routing = found.set_identifier().map(|id| Routing {
        set_identifier: id.to_owned(),
        policy: match found.region() {
            Some(region) => RoutingPolicy::Latency(region.as_str().to_owned()),
            None => RoutingPolicy::Weighted(found.weight().unwrap_or_default()),
        },
        health_check_id: found.health_check_id().map(str::to_owned),
    });
    RecordSet { name: domain::fqdn(found.name()), kind: found.r#type().as_str().to_owned(), value, routing }
}

fn to_sdk(record: &RecordSet) -> CloudResult<ResourceRecordSet> {
    let builder = ResourceRecordSet::builder().name(&record.name).r#type(RrType::from(record.kind.as_str()));
    let builder = match &record.value {
        RecordValue::Alias { zone_id, dns_name, evaluate_health } => builder.alias_target(
            AliasTarget::builder()
                .hosted_zone_id(zone_id)
                .dns_name(dns_name)
                .evaluate_target_health(*evaluate_health)
                .build()
                .map_err(build_error)?,
        ),
        RecordValue::Values { ttl, values } => builder.ttl(*ttl).set_resource_records(Some(
            values
                .iter()
                .map(|v| ResourceRecord::builder().value(v).build())
                .collect::<Result<_, _>>()
                .map_err(build_error)?,
        )),
    };
    let builder = match &record.routing {
        None => builder,
        Some(routing) => {
            let builder =
                builder.set_identifier(&routing.set_identifier).set_health_check_id(routing.health_check_id.clone());
            match &routing.policy {
                RoutingPolicy::Weighted(weight) => builder.weight(*weight),
                RoutingPolicy::Latency(region) => builder.region(ResourceRecordSetRegion::from(region.as_str())),
            }
        }
    };
    builder.build().map_err(build_error)
}

fn build_error(err: impl std::fmt::Display) -> CloudError {
    CloudError::local(SERVICE, "ChangeResourceRecordSets", ErrorKind::Other, err.to_string())
}

async fn change(clients: &AwsClients, zone_id: &str, changes: &[(ChangeAction, &RecordSet)]) -> CloudResult<()> {
    for (action, record) in changes {
        tracing::debug!(?action, name = record.name, set = ?record.routing.as_ref().map(|r| &r.set_identifier), "route 53 change");
    }
    let changes = changes
        .iter()
        .map(|(action, record)| {
            Change::builder().action(action.clone()).resource_record_set(to_sdk(record)?).build().map_err(build_error)
        })
        .collect::<CloudResult<Vec<_>>>()?;
    let batch = ChangeBatch::builder().set_changes(Some(changes)).build().map_err(build_error)?;
    let sent = clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ChangeResourceRecordSets"));
    match sent {
        // A CREATE that found the record made meanwhile (a lost answer, a racing writer): the next
        // look reads it and its marker again.
        Err(err) if err.code == "InvalidChangeBatch" && err.message.contains("already exists") => {
            Err(CloudError { kind: ErrorKind::Transient, ..err })
        }
        other => other.map(drop),
    }
}

/// Makes `wanted` hold in the zone under this owner's marker; a name held by someone else's record
/// is left alone.
///
/// # Errors
/// [`RECORD_CONFLICT`] naming the record, or the AWS failure.
pub async fn ensure_record(clients: &AwsClients, zone: &Zone, owner: &Owner, wanted: &RecordSet) -> CloudResult<()> {
    let at_name = read_at(clients, &zone.id, &wanted.name).await?;
    let found = at_name.iter().find(|r| r.kind == wanted.kind).cloned();
    let marker_name = domain::marker_name(&wanted.name);
    let found_marker = read(clients, &zone.id, &marker_name, "TXT").await?;
    refuse_foreign(owner, wanted, &at_name, found_marker.as_ref())?;
    match domain::record_step(owner, wanted, found.as_ref(), found_marker.as_ref()) {
        RecordStep::Keep => Ok(()),
        RecordStep::Conflict(why) => Err(CloudError::refused(SERVICE, "ListResourceRecordSets", RECORD_CONFLICT, why)),
        RecordStep::Write => {
            let marker = domain::marker(owner, &wanted.name);
            let action = if found.is_some() { ChangeAction::Upsert } else { ChangeAction::Create };
            change(clients, &zone.id, &[(action, wanted), (ChangeAction::Upsert, &marker)]).await
        }
    }
}

/// Deletes the record of this name and type, with its marker, when the marker names this owner;
/// anything else there stays.
///
/// # Errors
/// The AWS failure.
pub async fn delete_record(
    clients: &AwsClients,
    zone_id: &str,
    owner: &Owner,
    name: &str,
    kind: &str,
) -> CloudResult<()> {
    let found_marker = read(clients, zone_id, &domain::marker_name(name), "TXT").await?;
    let Some(marker) = found_marker.filter(|m| domain::marks_owner(Some(m), owner)) else { return Ok(()) };
    match read(clients, zone_id, name, kind).await? {
        // Routed records belong to a placement, which removes them and then the marker.
        Some(found) if found.routing.is_some() => Ok(()),
        Some(found) => {
            change(clients, zone_id, &[(ChangeAction::Delete, &found), (ChangeAction::Delete, &marker)]).await
        }
        None => change(clients, zone_id, &[(ChangeAction::Delete, &marker)]).await,
    }
}

/// Every record set of exactly this name and type (several under weighted or latency routing).
async fn read_all(clients: &AwsClients, zone_id: &str, name: &str, kind: &str) -> CloudResult<Vec<RecordSet>> {
    Ok(read_at(clients, zone_id, name).await?.into_iter().filter(|r| r.kind == kind).collect())
}

/// Every record set at exactly `name`, of any type (one page: far more than one name holds).
async fn read_at(clients: &AwsClients, zone_id: &str, name: &str) -> CloudResult<Vec<RecordSet>> {
    let out = clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .max_items(100)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ListResourceRecordSets"))?;
    let wanted = domain::fqdn(name);
    Ok(out.resource_record_sets().iter().filter(|r| domain::fqdn(r.name()) == wanted).map(from_sdk).collect())
}

/// Refuses a name that holds records of other types than `wanted`'s without this owner's marker.
fn refuse_foreign(
    owner: &Owner,
    wanted: &RecordSet,
    at_name: &[RecordSet],
    marker: Option<&RecordSet>,
) -> CloudResult<()> {
    let kinds: Vec<String> = at_name.iter().map(|r| r.kind.clone()).collect();
    match domain::foreign_records(owner, wanted, marker, &kinds) {
        Some(why) => Err(CloudError::refused(SERVICE, "ListResourceRecordSets", RECORD_CONFLICT, why)),
        None => Ok(()),
    }
}

fn same_set(a: &RecordSet, b: &RecordSet) -> bool {
    a.routing.as_ref().map(|r| &r.set_identifier) == b.routing.as_ref().map(|r| &r.set_identifier)
}

/// Makes the routed record `wanted` (one of several of its name, by set identifier) hold, under
/// this owner's marker of the name.
///
/// # Errors
/// [`RECORD_CONFLICT`] when another owner marks the name, or the AWS failure.
pub async fn ensure_routed_record(
    clients: &AwsClients,
    zone: &Zone,
    owner: &Owner,
    wanted: &RecordSet,
) -> CloudResult<()> {
    let at_name = read_at(clients, &zone.id, &wanted.name).await?;
    let all: Vec<RecordSet> = at_name.iter().filter(|r| r.kind == wanted.kind).cloned().collect();
    let found = all.iter().find(|r| same_set(r, wanted));
    let found_marker = read(clients, &zone.id, &domain::marker_name(&wanted.name), "TXT").await?;
    refuse_foreign(owner, wanted, &at_name, found_marker.as_ref())?;
    // Records of the name under other identifiers are this owner's too when the marker says so.
    let unmarked_others = found_marker.is_none() && all.iter().any(|r| !same_set(r, wanted));
    match domain::record_step(owner, wanted, found, found_marker.as_ref()) {
        RecordStep::Keep => Ok(()),
        RecordStep::Write if unmarked_others => Err(CloudError::refused(
            SERVICE,
            "ListResourceRecordSets",
            RECORD_CONFLICT,
            format!("the zone already has records {} that this BlogDeployment did not write", wanted.name),
        )),
        RecordStep::Conflict(why) => Err(CloudError::refused(SERVICE, "ListResourceRecordSets", RECORD_CONFLICT, why)),
        RecordStep::Write => {
            let marker = domain::marker(owner, &wanted.name);
            change(clients, &zone.id, &[(ChangeAction::Upsert, wanted), (ChangeAction::Upsert, &marker)]).await
        }
    }
}

/// Deletes the routed record of `name`/`kind` with this set identifier when the name's marker
/// names this owner; the marker goes with the last record of the name.
///
/// # Errors
/// The AWS failure.
pub async fn delete_routed_record(
    clients: &AwsClients,
    zone_id: &str,
    owner: &Owner,
    (name, kind, set_identifier): (&str, &str, &str),
) -> CloudResult<()> {
    let found_marker = read(clients, zone_id, &domain::marker_name(name), "TXT").await?;
    // Deleted as found: a marker in the old form must be named exactly to go.
    let Some(marker) = found_marker.filter(|m| domain::marks_owner(Some(m), owner)) else { return Ok(()) };
    let all = read_all(clients, zone_id, name, kind).await?;
    let (ours, others): (Vec<&RecordSet>, Vec<&RecordSet>) =
        all.iter().partition(|r| r.routing.as_ref().is_some_and(|r| r.set_identifier == set_identifier));
    let mut changes: Vec<(ChangeAction, &RecordSet)> = ours.into_iter().map(|r| (ChangeAction::Delete, r)).collect();
    if others.is_empty() {
        changes.push((ChangeAction::Delete, &marker));
    }
    if changes.is_empty() {
        return Ok(());
    }
    change(clients, zone_id, &changes).await
}

/// The settings of a health check: an HTTPS request to `fqdn` at `path`, every 30 s, failing
/// after 3 misses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub fqdn: String,
    pub path: String,
}

/// The health check probing `probe`: the recorded one when it still probes it, else a new one.
/// The caller reference is derived from owner, probe and `salt`, so a create repeated after a lost
/// answer returns the same health check instead of a second one (Route 53's idempotency).
///
/// # Errors
/// The AWS failure.
pub async fn ensure_health_check(
    clients: &AwsClients,
    owner: &Owner,
    known: Option<&str>,
    probe: &Probe,
    name: &str,
) -> CloudResult<String> {
    if let Some(id) = known {
        if owned_among(clients, owner, &[id.to_owned()]).await?.is_empty() {
            return create_health_check(clients, owner, probe, name).await;
        }
        let out = clients.route53.get_health_check().health_check_id(id).send().await;
        let found = super::found(out.map_err(map_sdk(SERVICE, "GetHealthCheck")))?;
        let config = found.as_ref().and_then(|o| o.health_check()).and_then(|h| h.health_check_config());
        if config.is_some_and(|c| {
            c.fully_qualified_domain_name() == Some(&probe.fqdn) && c.resource_path() == Some(&probe.path)
        }) {
            return Ok(id.to_owned());
        }
        // A check probing something else is replaced; the old one goes once the records moved.
    }
    create_health_check(clients, owner, probe, name).await
}

/// A new health check for `probe`, tagged as `owner`'s (the same one again after a lost answer).
async fn create_health_check(clients: &AwsClients, owner: &Owner, probe: &Probe, name: &str) -> CloudResult<String> {
    let reference = caller_reference(owner, probe);
    let config = aws_sdk_route53::types::HealthCheckConfig::builder()
        .r#type(aws_sdk_route53::types::HealthCheckType::Https)
        .fully_qualified_domain_name(&probe.fqdn)
        .port(443)
        .resource_path(&probe.path)
        .request_interval(30)
        .failure_threshold(3)
        .enable_sni(true)
        .build()
        .map_err(build_error)?;
    let out = clients
        .route53
        .create_health_check()
        .caller_reference(reference)
        .health_check_config(config)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateHealthCheck"))?;
    let id = out.health_check().map(|h| h.id().to_owned()).unwrap_or_default();
    tag_health_check(clients, owner, &id, name).await?;
    Ok(id)
}

/// At most 64 characters: the owner's UID and a digest of what the check probes.
fn caller_reference(owner: &Owner, probe: &Probe) -> String {
    let digest = domain::idempotency_token(&owner.uid, &[probe.fqdn.clone(), probe.path.clone()]);
    format!("{}{digest}", caller_prefix(owner))
}

/// The start of every caller reference `owner`'s health checks carry.
#[must_use]
pub fn caller_prefix(owner: &Owner) -> String {
    format!("blog-{}-", owner.uid.chars().take(8).collect::<String>())
}

/// Every health check `owner` made, whether or not a status still records its id: those whose
/// caller reference starts as this owner's do, confirmed by their tags (the prefix is only part of
/// the UID). The net under a check a lost status forgot (health checks are account-wide).
///
/// # Errors
/// The AWS failure.
pub async fn owned_health_checks(clients: &AwsClients, owner: &Owner) -> CloudResult<Vec<String>> {
    let prefix = caller_prefix(owner);
    let mut candidates = Vec::new();
    let mut pages = clients.route53.list_health_checks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(map_sdk(SERVICE, "ListHealthChecks"))?;
        let ours = page.health_checks().iter().filter(|h| h.caller_reference().starts_with(&prefix));
        candidates.extend(ours.map(|h| h.id().to_owned()));
    }
    owned_among(clients, owner, &candidates).await
}

/// The checks among `ids` whose tags name `owner` (one already gone is not among them): an id
/// from a status is a hint, never proof that the check is this owner's.
async fn owned_among(clients: &AwsClients, owner: &Owner, ids: &[String]) -> CloudResult<Vec<String>> {
    let mut owned = Vec::new();
    // ListTagsForResources takes at most 10 ids.
    for ids in ids.chunks(10) {
        let out = clients
            .route53
            .list_tags_for_resources()
            .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
            .set_resource_ids(Some(ids.to_vec()))
            .send()
            .await;
        let Some(out) = super::found(out.map_err(map_sdk(SERVICE, "ListTagsForResources")))? else { continue };
        for set in out.resource_tag_sets() {
            let tags = super::tags::tag_map(set.tags().iter().map(|t| (t.key(), t.value())));
            owned.extend(set.resource_id().filter(|_| owner.owns(&tags)).map(str::to_owned));
        }
    }
    Ok(owned)
}

async fn tag_health_check(clients: &AwsClients, owner: &Owner, id: &str, name: &str) -> CloudResult<()> {
    let tags = owner
        .tags()
        .into_iter()
        .chain([("Name".to_owned(), name.to_owned())])
        .map(|(k, v)| aws_sdk_route53::types::Tag::builder().key(k).value(v).build());
    clients
        .route53
        .change_tags_for_resource()
        .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
        .resource_id(id)
        .set_add_tags(Some(tags.collect()))
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "ChangeTagsForResource"))
}

/// Whether Route 53's checkers find the endpoint healthy: more than half of the observations
/// report success (`None` while there are none yet).
///
/// # Errors
/// The AWS failure.
pub async fn is_healthy(clients: &AwsClients, id: &str) -> CloudResult<Option<bool>> {
    let out = clients
        .route53
        .get_health_check_status()
        .health_check_id(id)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "GetHealthCheckStatus"))?;
    let seen = out.health_check_observations();
    let ok = seen
        .iter()
        .filter(|o| o.status_report().and_then(|r| r.status()).is_some_and(|s| s.starts_with("Success")))
        .count();
    Ok((!seen.is_empty()).then_some(ok * 2 > seen.len()))
}

/// Deletes the health checks among `ids` whose tags say they are `owner`'s (one tag read per ten);
/// one already gone, or someone else's (a status can name any id), is left alone.
///
/// # Errors
/// The AWS failure (`HealthCheckInUse` while a record still names one).
pub async fn delete_health_checks(clients: &AwsClients, owner: &Owner, ids: &[String]) -> CloudResult<()> {
    let owned = owned_among(clients, owner, ids).await?;
    for id in ids.iter().filter(|id| !owned.contains(id)) {
        tracing::warn!(id = %id, "health check left alone: its tags do not name this BlogDeployment");
    }
    for id in &owned {
        let sent = clients.route53.delete_health_check().health_check_id(id).send().await;
        super::gone_is_done(sent.map(drop).map_err(map_sdk(SERVICE, "DeleteHealthCheck")))?;
    }
    Ok(())
}
