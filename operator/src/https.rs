//! The domain step of apply: the certificates (requested and DNS-validated, or the user's), the
//! function's API Gateway custom domain, the alias records of both hosts, and the removal of what a
//! changed or removed `spec.domain` no longer needs. Decisions live in `domain`; this only does.

use crate::cloud::acm::CertificateObserved;
use crate::cloud::route53::Zone;
use crate::cloud::{self, AwsClients, CloudError, CloudResult};
use crate::crd::ResourceIds;
use crate::desired::{CertificateSource, ContainerTls, Desired, Owner};
use crate::domain::{self, RecordSet, RecordValue, ZoneRef};
use crate::status::{PartState, reason};

/// The certificates as this reconcile found them, before the front doors are made.
#[derive(Debug, Clone, Default)]
pub struct Certificates {
    /// The user's zone, when the spec has a domain.
    pub zone: Option<Zone>,
    /// The domain's certificate (requested or given).
    pub domain: Option<CertificateObserved>,
    /// The load balancer's, when it has its own (`loadBalancer.certificateArn`).
    pub balancer: Option<CertificateObserved>,
}

impl Certificates {
    /// The certificate the container's HTTPS listener uses, once ISSUED.
    #[must_use]
    pub fn container_issued(&self, tls: &ContainerTls) -> Option<&str> {
        let certificate = match tls {
            ContainerTls::PlainHttp => return None,
            ContainerTls::Https(CertificateSource::Given(arn))
                if self.balancer.as_ref().is_some_and(|c| &c.arn == arn) =>
            {
                self.balancer.as_ref()
            }
            ContainerTls::Https(_) => self.domain.as_ref(),
        };
        certificate.filter(|c| c.issued()).map(|c| c.arn.as_str())
    }

    /// The domain's certificate, once ISSUED.
    #[must_use]
    pub fn domain_issued(&self) -> Option<&str> {
        self.domain.as_ref().filter(|c| c.issued()).map(|c| c.arn.as_str())
    }
}

/// Finds the zone and makes or reads the certificates; writes the validation records of a
/// requested one, so ACM can issue it.
///
/// # Errors
/// The AWS failure; `HostedZoneNotFound` when the zone cannot be found.
pub async fn ensure_certificates(
    clients: &AwsClients,
    desired: &Desired,
    recorded: &ResourceIds,
) -> CloudResult<Certificates> {
    let mut found = Certificates::default();
    if let Some(domain) = &desired.domain {
        let zone = cloud::route53::find_zone(clients, &domain.zone).await?;
        check_hosts_in_zone(&domain.hosts, &zone)?;
        let certificate = match &domain.certificate {
            CertificateSource::Given(arn) => cloud::acm::describe(clients, arn).await?,
            CertificateSource::Requested { hosts, token } => {
                let known = recorded.certificate_arn.as_deref();
                let (owner, tags) = (&desired.owner, &desired.tags);
                let requested = cloud::acm::ensure_requested(clients, owner, (hosts, token), known, tags).await?;
                write_validation_records(clients, &zone, &desired.owner, &requested).await?;
                requested
            }
        };
        found.zone = Some(zone);
        found.domain = Some(certificate);
    }
    if let Some(ContainerTls::Https(CertificateSource::Given(arn))) = desired.container.as_ref().map(|c| &c.tls)
        && found.domain.as_ref().is_none_or(|d| &d.arn != arn)
    {
        found.balancer = Some(cloud::acm::describe(clients, arn).await?);
    }
    Ok(found)
}

/// A zone given by id is only known here: each host must lie inside it.
fn check_hosts_in_zone(hosts: &[String], zone: &Zone) -> CloudResult<()> {
    match hosts.iter().find(|h| !domain::in_zone(h, &zone.name)) {
        Some(host) => Err(CloudError::refused(
            "route53",
            "GetHostedZone",
            cloud::route53::ZONE_NOT_FOUND,
            format!("host {host} is not inside the hosted zone {}", zone.name.trim_end_matches('.')),
        )),
        None => Ok(()),
    }
}

fn validation_record((name, value): &(String, String)) -> RecordSet {
    RecordSet {
        name: domain::fqdn(name),
        kind: "CNAME".to_owned(),
        value: RecordValue::Values { ttl: 300, values: vec![domain::fqdn(value)] },
        routing: None,
    }
}

async fn write_validation_records(
    clients: &AwsClients,
    zone: &Zone,
    owner: &Owner,
    certificate: &CertificateObserved,
) -> CloudResult<()> {
    if certificate.issued() {
        return Ok(());
    }
    for record in &certificate.validation {
        cloud::route53::ensure_record(clients, zone, owner, &validation_record(record)).await?;
    }
    Ok(())
}

/// Where each host should point, as far as its target exists.
pub struct Targets<'a> {
    /// The HTTP API's id, when the function variant has its front door.
    pub api_id: Option<&'a str>,
    /// The load balancer's DNS name and zone, when the container variant has its front door.
    pub balancer: Option<(&'a str, &'a str)>,
}

/// What the domain step leaves: the part's condition and the URLs it serves.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub state: PartState,
    pub function_url: Option<String>,
    pub container_url: Option<String>,
    /// Where each variant's host points (the alias value), whether or not its record is written
    /// here: under a placement, the weighted records use them.
    pub function_alias: Option<RecordValue>,
    pub container_alias: Option<RecordValue>,
}

/// Binds the hosts once the certificate is issued: the function's custom domain and mapping, then
/// an alias record per host whose target exists.
///
/// # Errors
/// The AWS failure; `RecordConflict` or `NotOwned` when a name is someone else's.
pub async fn bind(
    clients: &AwsClients,
    desired: &Desired,
    certificates: &Certificates,
    targets: &Targets<'_>,
) -> CloudResult<Bound> {
    let (Some(domain), Some(zone)) = (&desired.domain, &certificates.zone) else {
        return Ok(Bound { state: no_domain(certificates), ..Bound::default() });
    };
    let Some(certificate) = certificates.domain_issued() else {
        let pending = certificates.domain.as_ref().map_or_else(String::new, |c| pending_message(c, zone));
        let failed = certificates
            .domain
            .as_ref()
            .is_some_and(|c| c.failure.is_some() || c.status.contains("FAIL") || c.status.contains("TIMED_OUT"));
        let why = if failed { reason::CERTIFICATE_FAILED } else { reason::CERTIFICATE_PENDING };
        return Ok(Bound { state: PartState::not_ready(why, pending), ..Bound::default() });
    };
    let (owner, tags) = (&desired.owner, &desired.tags);
    let mut bound = Bound { state: PartState::ready(reason::AVAILABLE, String::new()), ..Bound::default() };
    if let (Some(host), Some(api_id)) = (&domain.function_host, targets.api_id) {
        let custom = cloud::apidomain::ensure_custom_domain(clients, owner, host, certificate, api_id, tags).await?;
        if custom.target.is_empty() {
            let why = format!("API Gateway reports no endpoint for domain name {host} yet");
            return Err(CloudError::local("apigatewayv2", "GetDomainName", cloud::ErrorKind::Transient, why));
        }
        let alias = alias_record(host, &custom.zone_id, &custom.target, false);
        if domain.alias_records {
            cloud::route53::ensure_record(clients, zone, owner, &alias).await?;
        }
        bound.function_url = Some(format!("https://{host}"));
        bound.function_alias = Some(alias.value);
    }
    if let (Some(host), Some((dns_name, zone_id))) = (&domain.container_host, targets.balancer) {
        let alias = alias_record(host, zone_id, &format!("dualstack.{dns_name}"), true);
        if domain.alias_records {
            cloud::route53::ensure_record(clients, zone, owner, &alias).await?;
        }
        bound.container_url = Some(format!("https://{host}"));
        bound.container_alias = Some(alias.value);
    }
    let mut urls: Vec<&str> =
        [&bound.function_url, &bound.container_url].into_iter().flatten().map(String::as_str).collect();
    // Under a placement both variants serve the one host.
    urls.dedup();
    bound.state.message =
        format!("{} (certificate ISSUED; DNS changes reach resolvers within a minute or two)", urls.join(" and "));
    Ok(bound)
}

/// The domain part without `spec.domain`: ready, unless the load balancer's own certificate is not
/// issued.
fn no_domain(certificates: &Certificates) -> PartState {
    match &certificates.balancer {
        Some(c) if !c.issued() => PartState::not_ready(
            if c.status == "PENDING_VALIDATION" { reason::CERTIFICATE_PENDING } else { reason::CERTIFICATE_FAILED },
            format!("the load balancer's certificate is {}; its HTTPS listener needs an ISSUED one", c.status),
        ),
        Some(_) => PartState::ready(reason::AVAILABLE, "the load balancer serves HTTPS with its certificate"),
        None => PartState::ready(reason::DISABLED, "no spec.domain"),
    }
}

fn pending_message(certificate: &CertificateObserved, zone: &Zone) -> String {
    let zone = zone.name.trim_end_matches('.');
    if let Some(failure) = &certificate.failure {
        return format!("ACM will not issue the certificate ({}): {failure}", certificate.status);
    }
    if certificate.validation.is_empty() {
        return "ACM is preparing the certificate's DNS validation records".to_owned();
    }
    let records: Vec<String> =
        certificate.validation.iter().map(|(name, value)| format!("CNAME {name} -> {value}")).collect();
    format!(
        "ACM is validating the certificate ({}); the operator wrote {} in zone {zone}: check they resolve publicly",
        certificate.status,
        records.join(", ")
    )
}

fn alias_record(host: &str, zone_id: &str, target: &str, evaluate_health: bool) -> RecordSet {
    RecordSet {
        name: domain::fqdn(host),
        kind: "A".to_owned(),
        value: RecordValue::Alias { zone_id: zone_id.to_owned(), dns_name: domain::fqdn(target), evaluate_health },
        routing: None,
    }
}

/// What the status records of the domain: the zone, the certificate, the hosts.
pub fn record(resources: &mut ResourceIds, desired: &Desired, certificates: &Certificates) {
    resources.hosted_zone_id = certificates.zone.as_ref().map(|z| z.id.clone());
    resources.certificate_arn = certificates.domain.as_ref().or(certificates.balancer.as_ref()).map(|c| c.arn.clone());
    resources.hosts = desired.domain_hosts().to_vec();
}

/// Removes the bindings of hosts no longer wanted: their alias records and custom domains. Records
/// are found in the zone `recorded` names (what the status recorded), or the current one.
///
/// # Errors
/// The AWS failure.
pub async fn unbind_stale(
    clients: &AwsClients,
    owner: &Owner,
    recorded: &ResourceIds,
    wanted: &[String],
    zone: Option<&Zone>,
) -> CloudResult<()> {
    let stale: Vec<&String> = recorded.hosts.iter().filter(|h| !wanted.contains(h)).collect();
    if stale.is_empty() {
        return Ok(());
    }
    let zone_id = recorded_zone(clients, recorded, zone).await?;
    for host in stale {
        if let Some(zone_id) = &zone_id {
            cloud::route53::delete_record(clients, zone_id, owner, &domain::fqdn(host), "A").await?;
        }
        cloud::apidomain::delete_custom_domain(clients, owner, host).await?;
    }
    Ok(())
}

async fn recorded_zone(
    clients: &AwsClients,
    recorded: &ResourceIds,
    zone: Option<&Zone>,
) -> CloudResult<Option<String>> {
    match (&recorded.hosted_zone_id, zone) {
        (Some(id), _) => match cloud::route53::find_zone(clients, &ZoneRef::parse(id)).await {
            Ok(found) => Ok(Some(found.id)),
            Err(err) if err.code == cloud::route53::ZONE_NOT_FOUND => Ok(None),
            Err(err) => Err(err),
        },
        (None, Some(zone)) => Ok(Some(zone.id.clone())),
        (None, None) => Ok(None),
    }
}

/// Whether a certificate may be stale: the hosts or the certificate changed since the last status.
#[must_use]
pub fn may_have_stale_certificates(recorded: &ResourceIds, wanted: &[String], keep: Option<&str>) -> bool {
    recorded.hosts != wanted || recorded.certificate_arn.as_deref() != keep
}

/// Deletes this owner's certificates for the recorded and wanted hosts other than `keep`, with the
/// validation records of hosts no longer wanted. Runs after the listeners and custom domains moved
/// off them; one still attached is retried.
///
/// # Errors
/// The AWS failure.
pub async fn remove_stale_certificates(
    clients: &AwsClients,
    owner: &Owner,
    recorded: &ResourceIds,
    wanted: &[String],
    (keep, zone): (Option<&str>, Option<&Zone>),
) -> CloudResult<()> {
    let hosts: Vec<String> = recorded.hosts.iter().chain(wanted).cloned().collect();
    if hosts.is_empty() {
        return Ok(());
    }
    let zone_id = recorded_zone(clients, recorded, zone).await?;
    for arn in cloud::acm::owned_for_hosts(clients, owner, &hosts).await? {
        if Some(arn.as_str()) == keep {
            continue;
        }
        if let Some(zone_id) = &zone_id {
            let found = cloud::acm::describe(clients, &arn).await;
            for (name, _) in cloud::found(found)?.map(|c| c.validation).unwrap_or_default() {
                let host = name.trim_end_matches('.').split_once('.').map_or("", |(_, h)| h);
                if !wanted.iter().any(|w| w == host) {
                    cloud::route53::delete_record(clients, zone_id, owner, &name, "CNAME").await?;
                }
            }
        }
        cloud::acm::delete(clients, &arn).await?;
    }
    Ok(())
}
