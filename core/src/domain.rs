//! HTTPS on the user's own domain, decided: where each variant's certificate comes from, which
//! records the zone should hold, and whether a record found there is this owner's to change.
//! Pure. Route 53 records carry no tags, so every record the operator writes has a marker beside it
//! (a TXT record at `_blog-operator.<name>` naming the owner, as external-dns does): a record
//! without this owner's marker is never changed or deleted.

use sha2::{Digest, Sha256};

use crate::crd::BlogDeploymentSpec;
use crate::owner::{MANAGED_BY, OWNER_TAG, Owner, UID_TAG};

/// Where a hosted zone is named: by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneRef {
    Id(String),
    Name(String),
}

impl ZoneRef {
    /// Letters and digits without a dot (`Z0123...`, with or without `/hostedzone/`) are an id; a
    /// zone name has at least one dot.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let bare = text.trim_start_matches("/hostedzone/");
        if !bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric()) {
            Self::Id(bare.to_owned())
        } else {
            Self::Name(fqdn(text))
        }
    }
}

/// Where a certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// The user's: used, never changed or deleted.
    Given(String),
    /// Requested by the operator for these hosts (DNS validation through the zone), with this
    /// idempotency token: a request repeated after a lost response returns the same certificate.
    Requested { hosts: Vec<String>, token: String },
}

/// The domain part of the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDomain {
    pub zone: ZoneRef,
    /// Every host, function first; the first names the requested certificate.
    pub hosts: Vec<String>,
    pub certificate: CertificateSource,
    pub function_host: Option<String>,
    pub container_host: Option<String>,
    /// Write an alias record per host. Off under `spec.placement`: there the host is served by
    /// latency records over each region's weighted pair, which the placement writes.
    pub alias_records: bool,
}

/// How the container variant's load balancer serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerTls {
    /// HTTP:80 forwards; no certificate (the spec chose it).
    PlainHttp,
    /// HTTPS:443 with this certificate; HTTP:80 redirects to it.
    Https(CertificateSource),
}

/// The domain of a validated spec, if it has one with at least one host.
#[must_use]
pub fn desired_domain(owner: &Owner, spec: &BlogDeploymentSpec) -> Option<DesiredDomain> {
    let domain = spec.domain.as_ref()?;
    if let Some(placement) = &spec.placement {
        return Some(placement_domain(owner, spec, domain, &host(&placement.host)));
    }
    let function_host = domain.function_host.as_deref().filter(|_| spec.function_enabled().is_some()).map(host);
    let container_host = domain.container_host.as_deref().filter(|_| spec.container_enabled().is_some()).map(host);
    let hosts: Vec<String> = function_host.iter().chain(container_host.iter()).cloned().collect();
    if hosts.is_empty() {
        return None;
    }
    let certificate = match &domain.certificate_arn {
        Some(arn) => CertificateSource::Given(arn.clone()),
        None => CertificateSource::Requested { token: idempotency_token(&owner.uid, &hosts), hosts: hosts.clone() },
    };
    let zone = ZoneRef::parse(&domain.hosted_zone);
    Some(DesiredDomain { zone, hosts, certificate, function_host, container_host, alias_records: true })
}

/// Under a placement, every region serves the one host with both of its variants: the function
/// through its own regional custom domain, the container through its load balancer's certificate.
/// Each region requests its own certificate (ACM certificates are regional).
fn placement_domain(
    owner: &Owner,
    spec: &BlogDeploymentSpec,
    domain: &crate::crd::DomainSpec,
    host: &str,
) -> DesiredDomain {
    let hosts = vec![host.to_owned()];
    let certificate =
        CertificateSource::Requested { token: idempotency_token(&owner.uid, &hosts), hosts: hosts.clone() };
    DesiredDomain {
        zone: ZoneRef::parse(&domain.hosted_zone),
        function_host: spec.function_enabled().map(|_| host.to_owned()),
        container_host: spec.container_enabled().map(|_| host.to_owned()),
        hosts,
        certificate,
        alias_records: false,
    }
}

/// The container's TLS: the load balancer's own certificate, else the domain's when the container
/// has a host there, else plain HTTP (validation refuses that unless the spec chose it).
#[must_use]
pub fn container_tls(spec: &BlogDeploymentSpec, domain: Option<&DesiredDomain>) -> ContainerTls {
    let given = spec.container_enabled().and_then(|c| c.load_balancer.certificate_arn.clone());
    match (given, domain.filter(|d| d.container_host.is_some())) {
        (Some(arn), _) => ContainerTls::Https(CertificateSource::Given(arn)),
        (None, Some(domain)) => ContainerTls::Https(domain.certificate.clone()),
        (None, None) => ContainerTls::PlainHttp,
    }
}

/// A host name as written in the spec, lowercase without a trailing dot.
#[must_use]
pub fn host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A name as Route 53 returns it: lowercase with a trailing dot.
#[must_use]
pub fn fqdn(name: &str) -> String {
    format!("{}.", host(name))
}

/// Whether `host` lies in the zone named `zone` (the apex or below it).
#[must_use]
pub fn in_zone(host_name: &str, zone: &str) -> bool {
    let (host_name, zone) = (fqdn(host_name), fqdn(zone));
    host_name == zone || host_name.ends_with(&format!(".{zone}"))
}

/// ACM's idempotency token (at most 32 word characters): the same owner and hosts give the same
/// token, so a request retried within the hour returns the certificate the first one made.
#[must_use]
pub fn idempotency_token(uid: &str, hosts: &[String]) -> String {
    let digest = Sha256::digest(format!("{uid}\n{}", hosts.join("\n")));
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// One Route 53 record set as the operator reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// Lowercase, with a trailing dot.
    pub name: String,
    /// `A`, `AAAA`, `CNAME` or `TXT`.
    pub kind: String,
    pub value: RecordValue,
    /// For one of several records of a name: weighted or latency routing.
    pub routing: Option<Routing>,
}

/// One record among several of the same name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Unique within the name and type.
    pub set_identifier: String,
    pub policy: RoutingPolicy,
    pub health_check_id: Option<String>,
}

/// How Route 53 chooses among the records of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingPolicy {
    /// In proportion to the weight (0-255).
    Weighted(i64),
    /// The record of the region with the least latency to the resolver.
    Latency(String),
}

/// What a record set points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// An alias of an AWS endpoint: its hosted zone and DNS name (lowercase, trailing dot).
    Alias { zone_id: String, dns_name: String, evaluate_health: bool },
    /// Plain values with a TTL (TXT values in their quotes).
    Values { ttl: i64, values: Vec<String> },
}

/// Where the marker of a record at `name` lives.
#[must_use]
pub fn marker_name(name: &str) -> String {
    format!("_blog-operator.{}", fqdn(name))
}

/// The marker record naming `owner` for the record(s) at `name`. Its value is opaque: a digest
/// of the owner's UID, which anyone can read in public DNS, while the UID itself (from which the
/// operator's resource names follow) stays private.
#[must_use]
pub fn marker(owner: &Owner, name: &str) -> RecordSet {
    let digest = Sha256::digest(format!("blog-operator marker\n{}", owner.uid));
    let opaque: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    marker_of(name, format!("\"heritage={MANAGED_BY},owner={opaque}\""))
}

/// The marker written before 0.x markers became opaque: still this owner's, rewritten when seen.
fn legacy_marker(owner: &Owner, name: &str) -> RecordSet {
    marker_of(name, format!("\"heritage={MANAGED_BY},{OWNER_TAG}={},{UID_TAG}={}\"", owner.key(), owner.uid))
}

fn marker_of(name: &str, text: String) -> RecordSet {
    RecordSet {
        name: marker_name(name),
        kind: "TXT".to_owned(),
        value: RecordValue::Values { ttl: 300, values: vec![text] },
        routing: None,
    }
}

/// Whether a marker found at `_blog-operator.<name>` names `owner` (in either form).
#[must_use]
pub fn marks_owner(found: Option<&RecordSet>, owner: &Owner) -> bool {
    found.is_some_and(|found| found.value == marker(owner, "x").value || found.value == legacy_marker(owner, "x").value)
}

/// A refusal when the name holds records of other types (`kinds_at_name`) that this owner's
/// marker does not cover: a name that carries anything of someone else's is not taken.
#[must_use]
pub fn foreign_records(
    owner: &Owner,
    wanted: &RecordSet,
    found_marker: Option<&RecordSet>,
    kinds_at_name: &[String],
) -> Option<String> {
    let others: Vec<&str> = kinds_at_name.iter().map(String::as_str).filter(|k| *k != wanted.kind).collect();
    (!others.is_empty() && !marks_owner(found_marker, owner)).then(|| {
        format!(
            "the zone already has {} record(s) at {} that this BlogDeployment did not write; choose another host",
            others.join(", "),
            wanted.name.trim_end_matches('.')
        )
    })
}

/// What to do about one record the operator wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordStep {
    /// It is there as wanted.
    Keep,
    /// Write it and its marker (create, or change this owner's record).
    Write,
    /// Someone else's record holds the name: leave it, say so.
    Conflict(String),
}

/// The step for `wanted`, given the record and the marker found at its name.
#[must_use]
pub fn record_step(
    owner: &Owner,
    wanted: &RecordSet,
    found: Option<&RecordSet>,
    found_marker: Option<&RecordSet>,
) -> RecordStep {
    let ours = marks_owner(found_marker, owner);
    // A marker in the old form (it published the UID) is rewritten.
    let current = found_marker.is_some_and(|m| m.value == marker(owner, "x").value);
    match found {
        None if found_marker.is_none() || ours => RecordStep::Write,
        Some(found) if found == wanted && (current || (wanted.kind == "CNAME" && !ours)) => RecordStep::Keep,
        Some(_) if ours => RecordStep::Write,
        Some(found) => RecordStep::Conflict(format!(
            "the zone already has a {} record {} that this BlogDeployment did not write; remove it or choose \
             another host",
            found.kind,
            found.name.trim_end_matches('.')
        )),
        None => RecordStep::Conflict(format!(
            "another BlogDeployment marks {} as its own; remove it there or choose another host",
            wanted.name.trim_end_matches('.')
        )),
    }
}

/// The resources to record before the domain step acts, when they name less than it may make:
/// every wanted host joins the recorded ones, and the zone is recorded as the spec names it until
/// its id is known. Written ahead, a host whose certificate or records were made just before a
/// crash is still found when the domain is removed.
#[must_use]
pub fn to_remember(
    recorded: &crate::crd::ResourceIds,
    wanted: Option<&DesiredDomain>,
    zone: &str,
) -> Option<crate::crd::ResourceIds> {
    let wanted = wanted?;
    let missing: Vec<&String> = wanted.hosts.iter().filter(|h| !recorded.hosts.contains(h)).collect();
    if missing.is_empty() && recorded.hosted_zone_id.is_some() {
        return None;
    }
    let mut next = recorded.clone();
    next.hosts.extend(missing.into_iter().cloned());
    next.hosted_zone_id.get_or_insert_with(|| zone.to_owned());
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str) -> Owner {
        Owner { namespace: "blogs".into(), name: "demo".into(), uid: uid.into() }
    }

    fn spec(yaml: &str) -> BlogDeploymentSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    fn alias(dns: &str) -> RecordSet {
        RecordSet {
            name: "blog.example.com.".into(),
            kind: "A".into(),
            value: RecordValue::Alias { zone_id: "Z35SXDOTRQ7X7K".into(), dns_name: dns.into(), evaluate_health: true },
            routing: None,
        }
    }

    #[test]
    fn hosts_are_remembered_before_anything_is_made_for_them() {
        let both = spec(
            "image: i\nfunction: {}\ncontainer: {}\ndomain: {hostedZone: example.com, functionHost: fn.example.com, containerHost: example.com}\n",
        );
        let domain = desired_domain(&owner("u1"), &both).expect("a domain");
        let none = crate::crd::ResourceIds::default();
        let first = to_remember(&none, Some(&domain), "example.com").expect("something to remember");
        assert_eq!(first.hosts, ["fn.example.com", "example.com"]);
        assert_eq!(first.hosted_zone_id.as_deref(), Some("example.com"));
        assert_eq!(to_remember(&first, Some(&domain), "example.com"), None, "remembered once");
        let resolved = crate::crd::ResourceIds {
            hosted_zone_id: Some("Z1".into()),
            hosts: vec!["old.example.com".into()],
            ..none
        };
        let next = to_remember(&resolved, Some(&domain), "example.com").expect("new hosts");
        assert_eq!(next.hosts, ["old.example.com", "fn.example.com", "example.com"], "the old one stays until removed");
        assert_eq!(next.hosted_zone_id.as_deref(), Some("Z1"));
        assert_eq!(to_remember(&resolved, None, "example.com"), None);
    }

    #[test]
    fn a_zone_is_named_by_id_or_by_name() {
        assert_eq!(ZoneRef::parse("Z0123456789ABC"), ZoneRef::Id("Z0123456789ABC".into()));
        assert_eq!(ZoneRef::parse("/hostedzone/Z0123456789ABC"), ZoneRef::Id("Z0123456789ABC".into()));
        assert_eq!(ZoneRef::parse("XWPVAD3A68GC3UGMWTKQY8"), ZoneRef::Id("XWPVAD3A68GC3UGMWTKQY8".into()));
        assert_eq!(ZoneRef::parse("Example.com"), ZoneRef::Name("example.com.".into()));
        assert_eq!(ZoneRef::parse("zone.example.com."), ZoneRef::Name("zone.example.com.".into()));
    }

    #[test]
    fn hosts_belong_to_their_zone_only() {
        assert!(in_zone("blog.example.com", "example.com"));
        assert!(in_zone("Example.com.", "example.com"));
        assert!(!in_zone("blog.notexample.com", "example.com"));
        assert!(!in_zone("example.com", "blog.example.com"));
    }

    #[test]
    fn one_certificate_covers_both_hosts_and_its_request_is_idempotent() {
        let both = spec(
            "image: i\nfunction: {}\ncontainer: {}\ndomain: {hostedZone: example.com, functionHost: Fn.Blog.Example.com, containerHost: blog.example.com.}\n",
        );
        let domain = desired_domain(&owner("u1"), &both).expect("a domain");
        assert_eq!(domain.hosts, ["fn.blog.example.com", "blog.example.com"]);
        let CertificateSource::Requested { token, hosts } = &domain.certificate else { panic!("requested") };
        assert_eq!(hosts, &domain.hosts);
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        let again = desired_domain(&owner("u1"), &both).expect("a domain");
        assert_eq!(again.certificate, domain.certificate, "the same owner and hosts give the same token");
        let other = desired_domain(&owner("u2"), &both).expect("a domain");
        assert_ne!(other.certificate, domain.certificate, "another owner gets its own certificate");
        assert_eq!(container_tls(&both, Some(&domain)), ContainerTls::Https(domain.certificate.clone()));
    }

    #[test]
    fn a_disabled_variant_gets_no_host_and_no_host_means_no_domain() {
        let function_only = spec(
            "image: i\nfunction: {}\ncontainer: {enabled: false}\ndomain: {hostedZone: Z1, functionHost: fn.example.com, containerHost: example.com}\n",
        );
        let domain = desired_domain(&owner("u1"), &function_only).expect("a domain");
        assert_eq!(domain.hosts, ["fn.example.com"]);
        let none = spec("image: i\ncontainer: {}\ndomain: {hostedZone: Z1, functionHost: fn.example.com}\n");
        assert_eq!(desired_domain(&owner("u1"), &none), None);
    }

    #[test]
    fn the_load_balancers_own_certificate_wins_and_plain_http_is_only_without_one() {
        let given =
            spec("image: i\ncontainer: {loadBalancer: {certificateArn: arn:aws:acm:us-west-1:1:certificate/c}}\n");
        assert_eq!(
            container_tls(&given, None),
            ContainerTls::Https(CertificateSource::Given("arn:aws:acm:us-west-1:1:certificate/c".into()))
        );
        let plain = spec("image: i\ncontainer: {loadBalancer: {plainHttp: true}}\n");
        assert_eq!(container_tls(&plain, None), ContainerTls::PlainHttp);
    }

    #[test]
    fn a_record_is_changed_only_under_this_owners_marker() {
        let me = owner("u1");
        let wanted = alias("dualstack.b-1.us-west-1.elb.amazonaws.com.");
        let mine = marker(&me, &wanted.name);
        let theirs = marker(&owner("u2"), &wanted.name);
        assert_eq!(mine.name, "_blog-operator.blog.example.com.");
        assert_eq!(record_step(&me, &wanted, None, None), RecordStep::Write);
        assert_eq!(record_step(&me, &wanted, None, Some(&mine)), RecordStep::Write);
        assert!(matches!(record_step(&me, &wanted, None, Some(&theirs)), RecordStep::Conflict(_)));
        assert_eq!(record_step(&me, &wanted, Some(&wanted), Some(&mine)), RecordStep::Keep);
        let moved = alias("dualstack.b-2.us-west-1.elb.amazonaws.com.");
        assert_eq!(record_step(&me, &wanted, Some(&moved), Some(&mine)), RecordStep::Write);
        for marker in [None, Some(&theirs)] {
            let RecordStep::Conflict(why) = record_step(&me, &wanted, Some(&moved), marker) else {
                panic!("someone else's record is left alone")
            };
            assert!(why.contains("A record blog.example.com that this BlogDeployment did not write"), "{why}");
        }
        assert!(marks_owner(Some(&mine), &me) && !marks_owner(Some(&theirs), &me) && !marks_owner(None, &me));
    }

    #[test]
    fn the_marker_is_opaque_and_an_old_one_is_rewritten() {
        let me = owner("1a2b3c4d-0000-4000-8000-000000000000");
        let RecordValue::Values { values, .. } = marker(&me, "blog.example.com").value else { panic!("TXT") };
        assert!(!values[0].contains("1a2b3c4d") && !values[0].contains("blogs/demo"), "{values:?}");
        let old = legacy_marker(&me, "blog.example.com");
        assert!(marks_owner(Some(&old), &me), "an old marker still says ours");
        let wanted = alias("dualstack.b-1.us-west-1.elb.amazonaws.com.");
        assert_eq!(
            record_step(&me, &wanted, Some(&wanted), Some(&old)),
            RecordStep::Write,
            "rewritten in the new form"
        );
    }

    #[test]
    fn a_name_holding_someone_elses_record_of_any_type_is_refused() {
        let me = owner("u1");
        let wanted = alias("dualstack.b-1.us-west-1.elb.amazonaws.com.");
        let kinds = ["AAAA".to_owned(), "MX".to_owned()];
        let why = foreign_records(&me, &wanted, None, &kinds).expect("refused");
        assert!(why.contains("AAAA, MX record(s) at blog.example.com"), "{why}");
        assert_eq!(foreign_records(&me, &wanted, Some(&marker(&me, &wanted.name)), &kinds), None, "ours");
        assert_eq!(foreign_records(&me, &wanted, None, &["A".to_owned()]), None, "the wanted type is record_step's");
    }

    #[test]
    fn an_identical_validation_record_someone_else_wrote_is_used_but_not_claimed() {
        let me = owner("u1");
        let cname = RecordSet {
            name: "_x.blog.example.com.".into(),
            kind: "CNAME".into(),
            value: RecordValue::Values { ttl: 300, values: vec!["_y.acm-validations.aws.".into()] },
            routing: None,
        };
        assert_eq!(record_step(&me, &cname, Some(&cname), None), RecordStep::Keep);
    }
}
