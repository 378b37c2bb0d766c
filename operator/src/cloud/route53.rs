//! Route 53: finds the user's hosted zone, and reads, writes and deletes the records the domain
//! needs, each with its ownership marker in the same atomic change (see `domain`).

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use super::{AwsClients, CloudError, CloudResult, ErrorKind, map_sdk};
use crate::desired::Owner;
use crate::domain::{self, RecordSet, RecordStep, RecordValue, ZoneRef};

const SERVICE: &str = "route53";

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

/// The record set of exactly this name and type, if any.
async fn read(clients: &AwsClients, zone_id: &str, name: &str, kind: &str) -> CloudResult<Option<RecordSet>> {
    let out = clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ListResourceRecordSets"))?;
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|r| domain::fqdn(r.name()) == domain::fqdn(name) && r.r#type().as_str() == kind)
        .map(from_sdk))
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
    RecordSet { name: domain::fqdn(found.name()), kind: found.r#type().as_str().to_owned(), value }
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
    builder.build().map_err(build_error)
}

fn build_error(err: impl std::fmt::Display) -> CloudError {
    CloudError::local(SERVICE, "ChangeResourceRecordSets", ErrorKind::Other, err.to_string())
}

async fn change(clients: &AwsClients, zone_id: &str, changes: &[(ChangeAction, &RecordSet)]) -> CloudResult<()> {
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
    let found = read(clients, &zone.id, &wanted.name, &wanted.kind).await?;
    let marker_name = domain::marker_name(&wanted.name);
    let found_marker = read(clients, &zone.id, &marker_name, "TXT").await?;
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
    if !domain::marks_owner(found_marker.as_ref(), owner) {
        return Ok(());
    }
    let marker = domain::marker(owner, name);
    match read(clients, zone_id, name, kind).await? {
        Some(found) => {
            change(clients, zone_id, &[(ChangeAction::Delete, &found), (ChangeAction::Delete, &marker)]).await
        }
        None => change(clients, zone_id, &[(ChangeAction::Delete, &marker)]).await,
    }
}
