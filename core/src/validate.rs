//! Spec rules the CRD schema cannot express (Kubernetes 1.20 has no CEL): each broken rule becomes
//! one sentence a person can act on. Pure: no client, no clock.

use crate::crd::{AllocationSpec, BillingMode, BlogDeploymentSpec, ContainerSpec, StepDirection, StepScaling};

/// Why a spec is refused: every broken rule, in spec order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct InvalidSpec(pub Vec<String>);

/// Checks every rule and reports all that fail at once, so one edit can fix them all.
///
/// # Errors
/// [`InvalidSpec`] listing each broken rule.
pub fn validate(spec: &BlogDeploymentSpec) -> Result<(), InvalidSpec> {
    let mut problems = Vec::new();
    check_images_and_region(spec, &mut problems);
    if spec.function_enabled().is_none() && spec.container_enabled().is_none() {
        problems.push("enable at least one variant: spec.function or spec.container".to_owned());
    }
    check_concurrency(spec, &mut problems);
    check_table(&spec.table, &mut problems);
    if let Some(container) = spec.container_enabled() {
        check_container(container, &mut problems);
    }
    check_allocation_bounds(&spec.allocation, &mut problems);
    check_env("spec.env", &spec.env, &mut problems);
    if let Some(function) = spec.function_enabled() {
        check_function_code(function, &mut problems);
        check_env("spec.function.env", &function.env, &mut problems);
        // Lambda keeps at most 4 KB of variables; the operator's own take well under 1 KB.
        let bytes: usize = merged_env(&spec.env, &function.env).iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > 3 * 1024 {
            problems.push(format!(
                "spec.env with spec.function.env holds {bytes} bytes; Lambda allows 4 KB in all, 3 KB of them for yours"
            ));
        }
    }
    if let Some(container) = spec.container_enabled() {
        check_env("spec.container.env", &container.env, &mut problems);
        check_container_tls(spec, container, &mut problems);
    }
    if let Some(domain) = &spec.domain {
        check_domain(spec, domain, &mut problems);
    }
    if let Some(placement) = &spec.placement {
        check_placement(spec, placement, &mut problems);
    }
    check_tags(&spec.tags, &mut problems);
    check_rollout(spec, &mut problems);
    if let Err(why) = crate::aws_format::secret_key(&spec.write_token.key) {
        problems.push(format!("spec.writeToken.key {why}"));
    }
    if problems.is_empty() { Ok(()) } else { Err(InvalidSpec(problems)) }
}

/// Each variant's rollout resolves (durations read, at most a day), `BlueGreen` only for the
/// container, alarm names CloudWatch would take.
fn check_rollout(spec: &BlogDeploymentSpec, problems: &mut Vec<String>) {
    use crate::rollout::{Strategy, policy};
    let top = spec.rollout.as_ref();
    match policy::of_function(spec) {
        Some(Ok(p)) if p.strategy == Strategy::BlueGreen => problems.push(
            "the function's rollout strategy is BlueGreen, which only the container has: set spec.function.rollout.strategy to AllAtOnce, Canary or Linear".to_owned(),
        ),
        Some(Err(why)) => problems.push(why),
        _ => {}
    }
    if let Some(Err(why)) = policy::of_container(spec) {
        problems.push(why);
    }
    let blocks =
        [("spec.rollout", top), ("spec.function.rollout", spec.function.as_ref().and_then(|f| f.rollout.as_ref()))];
    let blocks = blocks
        .into_iter()
        .chain([("spec.container.rollout", spec.container.as_ref().and_then(|c| c.rollout.as_ref()))]);
    for (at, block) in blocks {
        let alarms = block.and_then(|b| b.analysis.as_ref()).map(|a| a.alarms.as_slice()).unwrap_or_default();
        for alarm in alarms.iter().filter(|a| a.is_empty() || a.len() > 255 || a.chars().any(char::is_control)) {
            problems.push(format!(
                "{at}.analysis.alarms has {alarm:?}; a CloudWatch alarm name is 1 to 255 printable characters"
            ));
        }
    }
}

fn check_images_and_region(spec: &BlogDeploymentSpec, problems: &mut Vec<String>) {
    let overrides = [
        ("spec.function.image", spec.function.as_ref().and_then(|f| f.image.as_deref())),
        ("spec.container.image", spec.container.as_ref().and_then(|c| c.image.as_deref())),
    ];
    for (field, image) in std::iter::once(("spec.image", Some(spec.image.as_str()))).chain(overrides) {
        if let Some(Err(why)) = image.map(check_image_reference) {
            problems.push(format!("{field} {:?} is not an image reference: {why}", image.unwrap_or_default()));
        }
    }
    if let Some(region) = &spec.region
        && !is_region(region)
    {
        problems.push(format!("spec.region {region:?} is not an AWS region name such as us-west-1"));
    }
}

fn check_concurrency(spec: &BlogDeploymentSpec, problems: &mut Vec<String>) {
    if let Some(function) = spec.function_enabled()
        && let (Some(provisioned), Some(reserved)) = (function.provisioned_concurrency, function.reserved_concurrency)
        && provisioned > reserved
    {
        problems.push(format!(
            "spec.function.provisionedConcurrency {provisioned} is above reservedConcurrency {reserved}: Lambda \
             cannot keep more environments ready than the function may run"
        ));
    }
}

fn check_table(table: &crate::crd::TableSpec, problems: &mut Vec<String>) {
    if let Some(Err(why)) = table.name.as_deref().map(crate::aws_format::table_name) {
        problems.push(format!("spec.table.name {:?} {why}", table.name.as_deref().unwrap_or_default()));
    }
    match table.billing_mode {
        BillingMode::Provisioned if table.read_capacity_units.is_none() || table.write_capacity_units.is_none() => {
            problems
                .push("spec.table.billingMode Provisioned needs readCapacityUnits and writeCapacityUnits".to_owned());
        }
        BillingMode::PayPerRequest if table.read_capacity_units.is_some() || table.write_capacity_units.is_some() => {
            problems.push("spec.table capacity units apply only with billingMode: Provisioned".to_owned());
        }
        _ => {}
    }
}

/// A deployment's region is fixed once its resources exist: moving would strand the old region's
/// stack (still public) while the global IAM roles were rewritten for the new one.
///
/// # Errors
/// What to do instead, naming both regions.
pub fn check_region_unchanged(region: &str, recorded_table_arn: Option<&str>) -> Result<(), String> {
    let Some(home) = recorded_table_arn.and_then(crate::aws::Arn::parse).map(|a| a.region) else {
        return Ok(());
    };
    if home.is_empty() || home == region {
        return Ok(());
    }
    Err(format!(
        "spec.region is {region}, but this BlogDeployment's resources live in {home}: a region cannot change once \
         resources exist. Set spec.region back to {home}, or create a new BlogDeployment in {region} and delete this one"
    ))
}

/// Refuses naming another table than the one this BlogDeployment already uses: the posts are
/// there, and switching would leave it behind, still tagged as this BlogDeployment's.
///
/// # Errors
/// What to do instead, naming both tables.
pub fn check_table_unchanged(named: Option<&str>, recorded_table_arn: Option<&str>) -> Result<(), String> {
    let recorded = recorded_table_arn.and_then(crate::desired::table_of_arn);
    match (named, recorded) {
        (Some(named), Some(recorded)) if named != recorded => Err(format!(
            "spec.table.name is {named}, but this BlogDeployment's posts are in table {recorded}; set it \
             back, or delete this BlogDeployment (deletionPolicy: Retain keeps the table) and name the \
             table in a new one"
        )),
        _ => Ok(()),
    }
}

/// Names the operator sets itself: a spec may not override them.
pub const RESERVED_ENV: [&str; 8] = [
    "TABLE_NAME",
    "TABLE_WRITE_REGION",
    "PORT",
    "WRITE_TOKEN",
    "WRITE_TOKEN_SECRET_ARN",
    "WRITE_TOKEN_VERSION",
    "FUNCTIONS_URL",
    "CONTAINERS_URL",
];

use crate::desired::merged_env;

fn check_env(at: &str, env: &std::collections::BTreeMap<String, String>, problems: &mut Vec<String>) {
    for name in env.keys() {
        let well_formed = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !well_formed {
            problems.push(format!("{at}: {name:?} is not a variable name (letters, digits, '_'; not first a digit)"));
        } else if RESERVED_ENV.contains(&name.as_str()) || name.starts_with("AWS_") {
            problems.push(format!("{at}: {name} is set by the operator or AWS and cannot be overridden"));
        }
    }
}

/// The package Lambda fetches: S3's bucket naming rules and its key length in bytes.
fn check_function_code(function: &crate::crd::FunctionSpec, problems: &mut Vec<String>) {
    let Some(code) = &function.code else { return };
    if let Err(why) = crate::aws_format::s3_bucket(&code.s3_bucket) {
        problems.push(format!("spec.function.code.s3Bucket {:?} {why} (S3 bucket naming rules)", code.s3_bucket));
    }
    if let Err(why) = crate::aws_format::s3_key(&code.s3_key) {
        problems.push(format!("spec.function.code.s3Key {why}"));
    }
}

/// The recommender clamps to these bounds: a minimum above the maximum has no answer, so it is
/// refused instead of being silently ignored.
fn check_allocation_bounds(allocation: &AllocationSpec, problems: &mut Vec<String>) {
    let pairs = [
        ("minMemoryMiB", allocation.min_memory_mib, "maxMemoryMiB", allocation.max_memory_mib),
        ("minTasks", allocation.min_tasks, "maxTasks", allocation.max_tasks),
    ];
    for (low_name, low, high_name, high) in pairs {
        if low > high {
            problems.push(format!("spec.allocation.{low_name} {low} is above spec.allocation.{high_name} {high}"));
        }
    }
}

/// ELB `CreateTargetGroup`: `HealthCheckPath` is 1 to 1024 characters and starts with `/`; the
/// rest are a URL path's characters (RFC 3986 `pchar`, `/` and `?`), which also keeps it safe to quote
/// wherever it is written (a load balancer's config, a shell).
fn check_health_check_path(path: &str) -> Result<(), &'static str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._~!$&'()*+,;=:@%/?-".contains(c);
    if !path.starts_with('/') {
        Err("must start with /")
    } else if path.len() > 1024 {
        Err("is longer than the 1024 characters ELB accepts")
    } else if !path.chars().all(allowed) {
        Err("may hold only letters, digits and ._~!$&'()*+,;=:@%/?- (a URL path; ELB CreateTargetGroup)")
    } else {
        Ok(())
    }
}

fn check_container(container: &ContainerSpec, problems: &mut Vec<String>) {
    if let Err(allowed) = check_fargate_size(container.cpu, container.memory_mib) {
        problems.push(format!(
            "spec.container: Fargate cpu {} does not allow memoryMiB {}; allowed: {allowed}",
            container.cpu, container.memory_mib
        ));
    }
    if let Err(why) = check_health_check_path(&container.health_check_path) {
        problems.push(format!("spec.container.healthCheckPath {:?} {why}", container.health_check_path));
    }
    if let Some(scaling) = &container.autoscaling {
        check_autoscaling(container, scaling, problems);
    }
    check_network(container, problems);
}

fn check_autoscaling(container: &ContainerSpec, scaling: &crate::crd::AutoscalingSpec, problems: &mut Vec<String>) {
    if scaling.min_tasks > scaling.max_tasks {
        problems.push(format!(
            "spec.container.autoscaling: minTasks {} is above maxTasks {}",
            scaling.min_tasks, scaling.max_tasks
        ));
    } else if !(scaling.min_tasks..=scaling.max_tasks).contains(&container.desired_count) {
        problems.push(format!(
            "spec.container.desiredCount {} is outside autoscaling's {}..={}",
            container.desired_count, scaling.min_tasks, scaling.max_tasks
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for action in &scaling.scheduled {
        let at = format!("spec.container.autoscaling.scheduled[{}]", action.name);
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        check_list_name(&at, &action.name, &mut seen, allowed, "letters, digits, '-' and '_'", problems);
        if let Err(why) = crate::aws_format::schedule(&action.schedule) {
            problems.push(format!("{at}.schedule {:?} {why} (Application Auto Scaling)", action.schedule));
        }
        if let Some(Err(why)) = action.timezone.as_deref().map(crate::aws_format::time_zone) {
            problems.push(format!("{at}.timezone {:?} {why}", action.timezone.as_deref().unwrap_or_default()));
        }
        if action.min_tasks > action.max_tasks {
            problems.push(format!("{at}: minTasks {} is above maxTasks {}", action.min_tasks, action.max_tasks));
        }
    }
    check_step_scaling(&scaling.step_scaling, problems);
}

/// The network and the load balancer's exposure.
fn check_network(container: &ContainerSpec, problems: &mut Vec<String>) {
    let network = &container.network;
    if let Some(vpc) = &network.vpc_id
        && !crate::aws_format::is_ec2_id(vpc, "vpc-")
    {
        problems.push(format!(
            "spec.container.network.vpcId {vpc:?} is not a VPC id (vpc- and 8 or 17 lowercase hex digits)"
        ));
    }
    if !network.subnet_ids.is_empty() {
        if network.vpc_id.is_none() {
            problems.push("spec.container.network.subnetIds needs vpcId too".to_owned());
        }
        if network.subnet_ids.len() < 2 {
            problems
                .push("spec.container.network.subnetIds needs at least two subnets (an ALB spans two zones)".into());
        }
        for subnet in network.subnet_ids.iter().filter(|s| !crate::aws_format::is_ec2_id(s, "subnet-")) {
            problems.push(format!(
                "spec.container.network.subnetIds: {subnet:?} is not a subnet id (subnet- and 8 or 17 lowercase hex digits)"
            ));
        }
    }
    for cidr in container.load_balancer.ingress_cidrs.iter().filter(|c| crate::aws::Cidr::parse(c).is_none()) {
        problems.push(format!(
            "spec.container.loadBalancer.ingressCidrs: {cidr:?} is not an IPv4 CIDR block such as 10.0.0.0/8"
        ));
    }
}

/// The container serves HTTPS unless the spec chose plain HTTP, and never both.
fn check_container_tls(spec: &BlogDeploymentSpec, container: &ContainerSpec, problems: &mut Vec<String>) {
    // A placement's host gives every region's load balancer its own certificate.
    let host = spec.domain.as_ref().and_then(|d| d.container_host.as_ref()).is_some() || spec.placement.is_some();
    let has_certificate = host || container.load_balancer.certificate_arn.is_some();
    match (has_certificate, container.load_balancer.plain_http) {
        (false, false) => problems.push(
            "spec.container needs HTTPS: set spec.domain.containerHost or spec.container.loadBalancer.certificateArn, \
             or loadBalancer.plainHttp: true to serve plain HTTP (writes then cross the network in clear text)"
                .to_owned(),
        ),
        (true, true) => problems.push(
            "spec.container.loadBalancer.plainHttp contradicts the container's certificate (domain.containerHost or \
             loadBalancer.certificateArn): choose one"
                .to_owned(),
        ),
        _ => {}
    }
    if let Some(arn) = &container.load_balancer.certificate_arn {
        check_certificate_arn("spec.container.loadBalancer.certificateArn", arn, spec.region.as_deref(), problems);
    }
}

/// The domain: a zone, well-formed distinct hosts inside it, one per enabled variant at least.
fn check_domain(spec: &BlogDeploymentSpec, domain: &crate::crd::DomainSpec, problems: &mut Vec<String>) {
    let zone = crate::domain::ZoneRef::parse(&domain.hosted_zone);
    if let crate::domain::ZoneRef::Name(name) = &zone
        && !is_dns_name(name)
    {
        problems.push(format!(
            "spec.domain.hostedZone {:?} is neither a zone id (Z0123...) nor a DNS name",
            domain.hosted_zone
        ));
    }
    let hosts = [("functionHost", &domain.function_host), ("containerHost", &domain.container_host)];
    for (field, host) in hosts.iter().filter_map(|(f, h)| Some((f, h.as_ref()?))) {
        if !is_dns_name(host) {
            problems.push(format!("spec.domain.{field} {host:?} is not a host name such as blog.example.com"));
        } else if let crate::domain::ZoneRef::Name(zone) = &zone
            && !crate::domain::in_zone(host, zone)
        {
            let zone = zone.trim_end_matches('.');
            problems.push(format!("spec.domain.{field} {host} is not inside the hosted zone {zone}"));
        }
    }
    if let (Some(f), Some(c)) = (&domain.function_host, &domain.container_host)
        && crate::domain::host(f) == crate::domain::host(c)
    {
        problems.push("spec.domain: functionHost and containerHost must differ (one name, one endpoint)".to_owned());
    }
    let function = domain.function_host.is_some() && spec.function_enabled().is_some();
    let container = domain.container_host.is_some() && spec.container_enabled().is_some();
    if !function && !container && spec.placement.is_none() {
        problems.push("spec.domain names no host for an enabled variant: set functionHost or containerHost".to_owned());
    }
    if let Some(arn) = &domain.certificate_arn {
        check_certificate_arn("spec.domain.certificateArn", arn, spec.region.as_deref(), problems);
    }
}

/// A placement: its domain, its regions, its table and its objective.
fn check_placement(spec: &BlogDeploymentSpec, placement: &crate::crd::PlacementSpec, problems: &mut Vec<String>) {
    let at = "spec.placement";
    check_placement_domain(spec, placement, problems);
    if !is_region(&placement.home) {
        problems.push(format!("{at}.home {:?} is not an AWS region name such as us-west-1", placement.home));
    }
    if let Some(region) = spec.region.as_ref().filter(|r| **r != placement.home) {
        problems
            .push(format!("spec.region {region} differs from {at}.home {}: leave spec.region unset", placement.home));
    }
    if spec.container_enabled().is_some_and(|c| c.load_balancer.certificate_arn.is_some()) {
        problems.push(format!(
            "{at}: leave spec.container.loadBalancer.certificateArn unset: a certificate serves one region, and each \
             region requests its own for {}",
            placement.host
        ));
    }
    if spec.table.billing_mode != BillingMode::PayPerRequest {
        problems.push(format!(
            "{at} replicates the table to every region: a global table needs billingMode: PayPerRequest (or write \
             auto scaling, which the operator does not manage)"
        ));
    }
    check_candidates(spec, placement, problems);
    check_placement_mode(placement, problems);
}

/// The placement's host lives in `spec.domain`'s zone, which holds its records.
fn check_placement_domain(
    spec: &BlogDeploymentSpec,
    placement: &crate::crd::PlacementSpec,
    problems: &mut Vec<String>,
) {
    let at = "spec.placement";
    match &spec.domain {
        None => problems.push(format!(
            "{at} needs spec.domain: its hosted zone holds the latency and weighted records of {}",
            placement.host
        )),
        Some(domain) => {
            if domain.function_host.is_some() || domain.container_host.is_some() || domain.certificate_arn.is_some() {
                problems.push(format!(
                    "{at} serves {} from every region: leave spec.domain.functionHost, containerHost and \
                     certificateArn unset (each region requests its own certificate for the host)",
                    placement.host
                ));
            }
            let zone = crate::domain::ZoneRef::parse(&domain.hosted_zone);
            if !is_dns_name(&placement.host) {
                problems.push(format!("{at}.host {:?} is not a host name such as blog.example.com", placement.host));
            } else if let crate::domain::ZoneRef::Name(zone) = &zone
                && !crate::domain::in_zone(&placement.host, zone)
            {
                problems.push(format!(
                    "{at}.host {} is not inside the hosted zone {}",
                    placement.host,
                    zone.trim_end_matches('.')
                ));
            }
        }
    }
}

/// Candidates are region names, each once, pinned only to an enabled variant; demand names only
/// home or a candidate.
fn check_candidates(spec: &BlogDeploymentSpec, placement: &crate::crd::PlacementSpec, problems: &mut Vec<String>) {
    let at = "spec.placement";
    let mut seen = std::collections::BTreeSet::new();
    for candidate in &placement.candidates {
        if !is_region(&candidate.region) {
            problems.push(format!("{at}.candidates: {:?} is not an AWS region name", candidate.region));
        } else if !seen.insert(candidate.region.as_str()) {
            problems.push(format!("{at}.candidates names {} twice", candidate.region));
        }
        let enabled = match candidate.variant {
            Some(crate::crd::PlacementVariant::Function) => spec.function_enabled().is_some(),
            Some(crate::crd::PlacementVariant::Container) => spec.container_enabled().is_some(),
            None => true,
        };
        if !enabled {
            problems.push(format!("{at}.candidates pins {} to a variant this spec disables", candidate.region));
        }
        let both = spec.function_enabled().is_some() && spec.container_enabled().is_some();
        if candidate.warm && (candidate.variant.is_some() || !both) {
            problems.push(format!(
                "{at}.candidates keeps {} warm, which needs both variants enabled and no pin (a pinned region never switches)",
                candidate.region
            ));
        }
    }
    for region in placement.demand.keys().filter(|r| **r != placement.home && !seen.contains(r.as_str())) {
        problems.push(format!("{at}.demand names {region}, which is neither home nor a candidate"));
    }
}

/// Recommend and Auto decide from the shipped latency matrix, toward an objective.
fn check_placement_mode(placement: &crate::crd::PlacementSpec, problems: &mut Vec<String>) {
    use crate::crd::PlacementMode;
    let at = "spec.placement";
    if placement.mode != PlacementMode::Manual {
        let matrix = crate::placement::latency::Matrix::default();
        let regions = std::iter::once(&placement.home).chain(placement.candidates.iter().map(|c| &c.region));
        for region in regions.filter(|r| is_region(r) && !matrix.knows(r)) {
            problems.push(format!(
                "{at}.mode {:?} decides from the shipped latency matrix, which has no figures for {region} (it knows {}): \
                 use mode Manual for it",
                placement.mode,
                crate::placement::latency::REGIONS.join(", ")
            ));
        }
    }
    let objective = &placement.objective;
    if placement.mode != PlacementMode::Manual
        && objective.p95_latency_ms.is_none()
        && objective.monthly_budget_usd.is_none()
    {
        problems
            .push(format!("{at}.mode {:?} needs an objective: p95LatencyMs, monthlyBudgetUsd or both", placement.mode));
    }
}

/// An ACM certificate ARN, in the deployment's region when the spec names one (API Gateway's
/// regional domains and the ALB take only a certificate of their own region).
fn check_certificate_arn(at: &str, arn: &str, region: Option<&str>, problems: &mut Vec<String>) {
    match crate::aws_format::acm_certificate_arn(arn) {
        Ok(parsed) => {
            if let Some(region) = region.filter(|r| *r != parsed.region) {
                problems.push(format!(
                    "{at} is in region {}, but the deployment is in {region}: ACM certificates serve their own region only",
                    parsed.region
                ));
            }
        }
        Err(why) => problems.push(format!(
            "{at} {arn:?} {why}: an ACM certificate ARN is arn:aws:acm:<region>:<account>:certificate/<uuid>"
        )),
    }
}

/// A DNS name: two or more labels of letters, digits and inner hyphens, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The tag keys the operator writes itself; a user tag may not take them.
const RESERVED_TAG_PREFIXES: [&str; 3] = ["aws:", "blogs.serverless.dev/", "app.kubernetes.io/managed-by"];

/// Cost tags as every AWS service the operator uses accepts them.
fn check_tags(tags: &std::collections::BTreeMap<String, String>, problems: &mut Vec<String>) {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    if tags.len() > 40 {
        problems.push(format!("spec.tags holds {} tags; at most 40 (AWS allows 50, the operator uses 3)", tags.len()));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 || !key.chars().all(allowed) {
            problems
                .push(format!("spec.tags: key {key:?} must be 1 to 128 letters, digits, spaces or _ . : / = + - @"));
        } else if RESERVED_TAG_PREFIXES.iter().any(|p| key.to_ascii_lowercase().starts_with(p)) {
            problems.push(format!("spec.tags: key {key:?} is reserved for AWS or the operator's ownership tags"));
        }
        if value.chars().count() > 256 || !value.chars().all(allowed) {
            problems.push(format!(
                "spec.tags: the value of {key:?} must be at most 256 letters, digits, spaces or _ . : / = + - @"
            ));
        }
    }
}

/// A list entry's name: unique within its list and made of `allowed` bytes only.
fn check_list_name<'a>(
    at: &str,
    name: &'a str,
    seen: &mut std::collections::BTreeSet<&'a str>,
    allowed: impl Fn(u8) -> bool,
    allowed_text: &str,
    problems: &mut Vec<String>,
) {
    if !seen.insert(name) {
        problems.push(format!("{at}: the name is used twice"));
    }
    if !name.bytes().all(allowed) {
        problems.push(format!("{at}: the name may hold only {allowed_text}"));
    }
}

fn check_step_scaling(policies: &[StepScaling], problems: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    for policy in policies {
        let at = format!("spec.container.autoscaling.stepScaling[{}]", policy.name);
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
        check_list_name(&at, &policy.name, &mut seen, allowed, "lowercase letters, digits and '-'", problems);
        let mut thresholds = std::collections::BTreeSet::new();
        for step in &policy.steps {
            if !thresholds.insert(step.threshold) {
                problems.push(format!("{at}: threshold {} is used twice", step.threshold));
            }
            let (ok, wanted) = match policy.when {
                StepDirection::Above => (step.change > 0, "a positive change (tasks to add)"),
                StepDirection::Below => (step.change < 0, "a negative change (tasks to remove)"),
            };
            if !ok {
                problems.push(format!(
                    "{at}: the step at {} has change {}; when {:?} needs {wanted}",
                    step.threshold, step.change, policy.when
                ));
            }
        }
    }
}

/// Whether Fargate runs a task of this size; the error says what would fit.
///
/// # Errors
/// A description of the allowed memory sizes for `cpu`.
pub fn check_fargate_size(cpu: i32, memory_mib: i32) -> Result<(), String> {
    let Some(memory) = crate::aws::fargate_memory(cpu) else {
        let cpus: Vec<String> = crate::aws::fargate_cpus().iter().map(ToString::to_string).collect();
        return Err(format!("cpu must be one of {}", cpus.join(", ")));
    };
    if memory.allows(memory_mib) { Ok(()) } else { Err(memory.describe()) }
}

fn is_region(region: &str) -> bool {
    // e.g. us-west-1, eu-central-2, us-gov-west-1, ap-southeast-4
    let parts: Vec<&str> = region.split('-').collect();
    (3..=4).contains(&parts.len())
        && parts[0].len() == 2
        && parts.iter().take(parts.len() - 1).all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks an OCI image reference: `[host[:port]/]path[:tag][@sha256:digest]`, as `docker pull` takes it.
///
/// # Errors
/// What part is wrong.
pub fn check_image_reference(image: &str) -> Result<(), String> {
    let (name_and_tag, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").ok_or("the digest must start with sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("a sha256 digest has 64 lowercase hex digits".to_owned());
        }
    }
    // A tag follows the last ':' that comes after the last '/' (a ':' before it is a registry port).
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
        Some(i) => (&name_and_tag[..last_slash + i], Some(&name_and_tag[last_slash + i + 1..])),
        None => (name_and_tag, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            return Err(format!("tag {tag:?} may have up to 128 letters, digits, '_', '.', '-'"));
        }
    }
    if name.is_empty() {
        return Err("the repository name is empty".to_owned());
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    if components.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        check_registry_host(first)?;
        components.remove(0);
    }
    for component in components {
        if !is_path_component(component) {
            return Err(format!(
                "{component:?}: repository path parts use lowercase letters and digits, separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn check_registry_host(host: &str) -> Result<(), String> {
    let (name, port) = host.split_once(':').map_or((host, None), |(h, p)| (h, Some(p)));
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!("registry {host:?} has a port that is not a number"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.split('.').all(label_ok) { Ok(()) } else { Err(format!("registry host {name:?} is not a host name")) }
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut separator_run = 0;
    for &b in bytes {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            separator_run = 0;
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator_run += 1;
            // '__' is allowed; runs of '-' are too; nothing else repeats.
            if separator_run > 1 && b != b'-' && !(b == b'_' && separator_run == 2) {
                return false;
            }
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AutoscalingSpec, FunctionSpec, NetworkSpec};

    fn spec(yaml: &str) -> BlogDeploymentSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    fn problems(yaml: &str) -> Vec<String> {
        validate(&spec(yaml)).err().map(|e| e.0).unwrap_or_default()
    }

    const BOTH: &str = "
image: 123456789012.dkr.ecr.us-west-1.amazonaws.com/blog-service:1.0.0
region: us-west-1
function: {memoryMiB: 512}
container: {loadBalancer: {plainHttp: true}, cpu: 256, memoryMiB: 512}
";

    #[test]
    fn rollouts_resolve_per_variant_and_blue_green_is_the_containers() {
        let ok = "image: i\nfunction: {}\ncontainer: {loadBalancer: {plainHttp: true}, rollout: {strategy: BlueGreen}}\nrollout: {strategy: Canary, canary: {bake: 90s}}\n";
        assert_eq!(problems(ok), Vec::<String>::new());
        let bad = "image: i\nfunction: {}\nrollout: {strategy: BlueGreen, finalBake: 2d, analysis: {alarms: ['']}}\n";
        assert_eq!(
            problems(bad),
            [
                "spec.function.rollout.finalBake is \"2d\"; write a whole number of s, m or h, such as 5m",
                "spec.rollout.analysis.alarms has \"\"; a CloudWatch alarm name is 1 to 255 printable characters",
            ]
        );
        let blue = "image: i\nfunction: {rollout: {strategy: BlueGreen}}\n";
        assert!(problems(blue)[0].starts_with("the function's rollout strategy is BlueGreen"), "{:?}", problems(blue));
    }

    #[test]
    fn a_complete_spec_passes() {
        assert_eq!(validate(&spec(BOTH)), Ok(()));
    }

    #[test]
    fn defaults_fill_in_what_is_omitted() {
        let s = spec("image: blog:1\nfunction: {}\ncontainer: {loadBalancer: {plainHttp: true}}\n");
        assert_eq!(s.function, Some(FunctionSpec::default()));
        let container = s.container.expect("container");
        assert_eq!((container.cpu, container.memory_mib, container.desired_count, container.port), (256, 512, 2, 8080));
        assert_eq!(container.health_check_path, "/healthz");
        assert_eq!(validate(&spec("image: blog:1\nfunction: {}\n")), Ok(()));
    }

    #[test]
    fn allocation_bounds_must_be_ordered() {
        let bounds = "allocation: {minMemoryMiB: 2048, maxMemoryMiB: 1024, minTasks: 5, maxTasks: 4}\n";
        assert_eq!(
            problems(&format!("{BOTH}{bounds}")),
            [
                "spec.allocation.minMemoryMiB 2048 is above spec.allocation.maxMemoryMiB 1024",
                "spec.allocation.minTasks 5 is above spec.allocation.maxTasks 4",
            ]
        );
        assert_eq!(problems(&format!("{BOTH}allocation: {{minTasks: 3, maxTasks: 3}}\n")), Vec::<String>::new());
    }

    #[test]
    fn the_table_is_fixed_once_one_is_used() {
        let arn = Some("arn:aws:dynamodb:us-west-1:123456789012:table/blog-kept");
        assert_eq!(check_table_unchanged(Some("blog-kept"), arn), Ok(()));
        assert_eq!(check_table_unchanged(None, arn), Ok(()), "the recorded table stays");
        assert_eq!(check_table_unchanged(Some("blog-other"), None), Ok(()), "nothing made yet");
        let refused = check_table_unchanged(Some("blog-other"), arn).expect_err("switched");
        assert!(
            refused
                .starts_with("spec.table.name is blog-other, but this BlogDeployment's posts are in table blog-kept")
        );
    }

    #[test]
    fn the_region_is_fixed_once_resources_exist() {
        let arn = Some("arn:aws:dynamodb:us-west-1:123456789012:table/blog-x");
        assert_eq!(check_region_unchanged("us-west-1", arn), Ok(()));
        assert_eq!(check_region_unchanged("eu-west-1", None), Ok(()), "nothing made yet");
        let refused = check_region_unchanged("eu-west-1", arn).expect_err("moved");
        assert!(refused.starts_with("spec.region is eu-west-1, but this BlogDeployment's resources live in us-west-1"));
    }

    #[test]
    fn environment_names_are_checked_and_the_operators_own_are_refused() {
        let env = "env: {GREETING: hi, TABLE_NAME: x}\nfunction: {env: {AWS_REGION: x, 1BAD: y}}\ncontainer: {loadBalancer: {plainHttp: true}, env: {OK_1: z}}\n";
        assert_eq!(
            problems(&format!("image: blog:1\n{env}")),
            [
                "spec.env: TABLE_NAME is set by the operator or AWS and cannot be overridden",
                "spec.function.env: \"1BAD\" is not a variable name (letters, digits, '_'; not first a digit)",
                "spec.function.env: AWS_REGION is set by the operator or AWS and cannot be overridden",
            ]
        );
        let big = format!("image: blog:1\nfunction: {{env: {{BIG: {}}}}}\n", "x".repeat(4000));
        assert!(problems(&big)[0].contains("Lambda allows 4 KB"));
    }

    #[test]
    fn at_least_one_variant() {
        assert_eq!(problems("image: blog:1\n"), ["enable at least one variant: spec.function or spec.container"]);
        assert_eq!(problems("image: blog:1\nfunction: {enabled: false}\ncontainer: {loadBalancer: {plainHttp: true}, enabled: false}\n").len(), 1);
    }

    #[test]
    fn fargate_pairs() {
        for (cpu, memory) in
            [(256, 512), (256, 2048), (512, 4096), (1024, 3072), (4096, 30720), (8192, 20480), (16384, 122_880)]
        {
            assert_eq!(check_fargate_size(cpu, memory), Ok(()), "{cpu}/{memory}");
        }
        for (cpu, memory) in
            [(256, 4096), (256, 768), (256, 1536), (512, 512), (1024, 1024), (8192, 17408), (300, 1024)]
        {
            assert!(check_fargate_size(cpu, memory).is_err(), "{cpu}/{memory}");
        }
        let found =
            problems("image: blog:1\ncontainer: {loadBalancer: {plainHttp: true}, cpu: 1024, memoryMiB: 512}\n");
        assert_eq!(
            found,
            ["spec.container: Fargate cpu 1024 does not allow memoryMiB 512; allowed: 2048 to 8192 in steps of 1024"]
        );
    }

    #[test]
    fn image_references() {
        for ok in [
            "blog",
            "blog:1.0.0",
            "library/blog:latest",
            "localhost:5000/blog",
            "123456789012.dkr.ecr.us-west-1.amazonaws.com/team/blog-service:1.0.0",
            "registry.example.com/a__b/c-d.e@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image_reference(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Blog:1", "blog:", "blog:-x", "blog@sha256:abc", "-blog", "blog//x", "host:port/blog", "a/b c"]
        {
            assert!(check_image_reference(bad).is_err(), "{bad:?} should be refused");
        }
        let overridden = problems(
            "image: blog:1\nfunction: {image: 'Blog:1'}\ncontainer: {image: 'a/b c', loadBalancer: {plainHttp: true}}\n",
        );
        assert_eq!(overridden.len(), 2, "{overridden:?}");
        assert!(
            overridden[0].starts_with("spec.function.image \"Blog:1\" is not an image reference"),
            "{overridden:?}"
        );
        assert!(overridden[1].starts_with("spec.container.image \"a/b c\""), "{overridden:?}");
    }

    /// ELB `CreateTargetGroup` `HealthCheckPath`: `/`, a URL path's characters, at most 1024.
    #[test]
    fn a_health_check_path_is_one_the_load_balancer_accepts() {
        let path = |p: &str| {
            problems(&format!(
                "image: blog:1\ncontainer: {{healthCheckPath: {p:?}, loadBalancer: {{plainHttp: true}}}}\n"
            ))
        };
        assert_eq!(path("/a\"b"), vec!["spec.container.healthCheckPath \"/a\\\"b\" may hold only letters, digits and ._~!$&'()*+,;=:@%/?- (a URL path; ELB CreateTargetGroup)".to_owned()]);
        assert_eq!(path("/api/v1/health;ok=true?deep=1&x=%20"), Vec::<String>::new());
        for bad in ["healthz", "/x\nlua-load /tmp/e.lua", "/a b", "/#frag", "/\\x"] {
            assert_eq!(path(bad).len(), 1, "{bad:?} is refused");
        }
        assert!(path(&format!("/{}", "a".repeat(1024)))[0].contains("longer than the 1024"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let found = problems(
            "
image: 'NOT VALID'
region: mars-1
table: {billingMode: Provisioned}
container:
  loadBalancer: {plainHttp: true}
  cpu: 256
  memoryMiB: 4096
  healthCheckPath: healthz
  desiredCount: 20
  autoscaling: {minTasks: 1, maxTasks: 10}
  network: {subnetIds: [subnet-0123456789abcdef0]}
",
        );
        assert_eq!(found.len(), 8, "{found:#?}");
        assert!(found[0].starts_with("spec.image"));
        assert!(found[1].starts_with("spec.region"));
        assert!(found.iter().any(|p| p.contains("readCapacityUnits")));
        assert!(found.iter().any(|p| p.contains("desiredCount 20 is outside")));
        assert!(found.iter().any(|p| p.contains("needs vpcId")));
        assert!(found.iter().any(|p| p.contains("at least two subnets")));
    }

    #[test]
    fn network_ids() {
        let mut container = ContainerSpec {
            network: NetworkSpec {
                vpc_id: Some("vpc-0abc1234".into()),
                subnet_ids: vec!["subnet-0abc1234".into(), "subnet-nothex!".into()],
            },
            ..ContainerSpec::default()
        };
        let mut found = Vec::new();
        check_container(&container, &mut found);
        assert_eq!(
            found,
            [
                "spec.container.network.subnetIds: \"subnet-nothex!\" is not a subnet id (subnet- and 8 or 17 lowercase hex digits)"
            ]
        );
        container.network.subnet_ids[1] = "subnet-0def5678".into();
        container.autoscaling = Some(AutoscalingSpec {
            min_tasks: 5,
            max_tasks: 2,
            target_cpu_percent: 60,
            target_memory_percent: None,
            target_requests_per_task: None,
            scheduled: vec![],
            step_scaling: vec![],
        });
        found.clear();
        check_container(&container, &mut found);
        assert_eq!(found, ["spec.container.autoscaling: minTasks 5 is above maxTasks 2"]);
    }

    #[test]
    fn scheduled_actions() {
        let found = problems(
            "image: b:1\ncontainer:\n  loadBalancer: {plainHttp: true}\n  desiredCount: 2\n  autoscaling:\n    minTasks: 1\n    maxTasks: 4\n    scheduled:\n    - {name: am, schedule: 'cron(0 8 ? * MON-FRI *)', timezone: Europe/Berlin, minTasks: 2, maxTasks: 8}\n    - {name: am, schedule: 'every day', minTasks: 3, maxTasks: 1}\n",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].contains("used twice") && found[1].contains("is not at(") && found[2].contains("above maxTasks")
        );
    }

    #[test]
    fn provisioned_concurrency_fits_in_the_reservation() {
        assert_eq!(problems("image: b:1\nfunction: {provisionedConcurrency: 5, reservedConcurrency: 10}\n").len(), 0);
        assert_eq!(problems("image: b:1\nfunction: {provisionedConcurrency: 5}\n").len(), 0);
        let found = problems("image: b:1\nfunction: {provisionedConcurrency: 20, reservedConcurrency: 10}\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("spec.function.provisionedConcurrency 20 is above reservedConcurrency 10"));
    }

    #[test]
    fn step_scaling() {
        let found = problems(
            "image: b:1\ncontainer:\n  loadBalancer: {plainHttp: true}\n  autoscaling:\n    minTasks: 1\n    maxTasks: 4\n    stepScaling:\n    - {name: cpu, metric: CPUUtilization, when: Above, steps: [{threshold: 70, change: 1}, {threshold: 90, change: 3}]}\n    - {name: cpu, metric: MemoryUtilization, when: Below, steps: [{threshold: 20, change: 1}, {threshold: 20, change: -1}]}\n    - {name: Mem_In, metric: MemoryUtilization, when: Below, steps: [{threshold: 20, change: -1}]}\n",
        );
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].contains("stepScaling[cpu]: the name is used twice"), "{found:#?}");
        assert!(found[1].contains("the step at 20 has change 1; when Below needs a negative change"), "{found:#?}");
        assert!(found[2].contains("threshold 20 is used twice"), "{found:#?}");
        assert!(found[3].contains("stepScaling[Mem_In]: the name may hold only lowercase"), "{found:#?}");
    }

    #[test]
    fn regions() {
        for ok in ["us-west-1", "eu-central-2", "us-gov-west-1", "ap-southeast-4"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["mars-1", "us-west", "US-WEST-1", "us-west-1a", ""] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn the_container_serves_https_unless_the_spec_chose_plain_http() {
        let image = "image: b:1\nregion: us-west-1\n";
        let needs = problems(&format!("{image}container: {{}}\n"));
        assert_eq!(needs.len(), 1);
        assert!(needs[0].starts_with("spec.container needs HTTPS"), "{needs:?}");
        let cert = "arn:aws:acm:us-west-1:123456789012:certificate/0a1b2c3d-1234-4abc-8def-0123456789ab";
        assert!(problems(&format!("{image}container: {{loadBalancer: {{certificateArn: {cert}}}}}\n")).is_empty());
        let both =
            problems(&format!("{image}container: {{loadBalancer: {{certificateArn: {cert}, plainHttp: true}}}}\n"));
        assert!(both[0].contains("plainHttp contradicts"), "{both:?}");
        let elsewhere = problems(&format!(
            "{image}container: {{loadBalancer: {{certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1234-4abc-8def-0123456789ab'}}}}\n"
        ));
        assert!(elsewhere[0].contains("ACM certificates serve their own region only"), "{elsewhere:?}");
        let not_acm =
            problems(&format!("{image}container: {{loadBalancer: {{certificateArn: 'arn:aws:iam::1:role/x'}}}}\n"));
        assert!(not_acm[0].contains("is not an ACM ARN"), "{not_acm:?}");
    }

    #[test]
    fn a_domain_needs_well_formed_distinct_hosts_inside_its_zone() {
        let base = "image: b:1\nfunction: {}\ncontainer: {}\n";
        let good = format!(
            "{base}domain: {{hostedZone: example.com, functionHost: fn.example.com, containerHost: example.com}}\n"
        );
        assert_eq!(problems(&good), Vec::<String>::new());
        let by_id =
            format!("{base}domain: {{hostedZone: Z0123ABC, functionHost: fn.other.org, containerHost: other.org}}\n");
        assert_eq!(problems(&by_id), Vec::<String>::new(), "a zone given by id is checked against AWS, not here");
        assert_eq!(
            problems(&format!(
                "{base}domain: {{hostedZone: example.com, functionHost: fn.example.org, containerHost: 'bad_host.example.com'}}\n"
            )),
            [
                "spec.domain.functionHost fn.example.org is not inside the hosted zone example.com",
                "spec.domain.containerHost \"bad_host.example.com\" is not a host name such as blog.example.com",
            ]
        );
        let same = problems(&format!(
            "{base}domain: {{hostedZone: example.com, functionHost: a.example.com, containerHost: A.example.com.}}\n"
        ));
        assert_eq!(same, ["spec.domain: functionHost and containerHost must differ (one name, one endpoint)"]);
        let none =
            problems("image: b:1\nfunction: {}\ndomain: {hostedZone: example.com, containerHost: example.com}\n");
        assert_eq!(none, ["spec.domain names no host for an enabled variant: set functionHost or containerHost"]);
    }

    #[test]
    fn cost_tags_cannot_take_the_operators_keys() {
        let found = problems(
            "image: b:1\nfunction: {}\ntags: {team: blog, 'cost-center': '42', 'aws:created': x, 'blogs.serverless.dev/owner': x, 'bad{key}': x, ok: 'bad{value}'}\n",
        );
        assert_eq!(
            found,
            [
                "spec.tags: key \"aws:created\" is reserved for AWS or the operator's ownership tags",
                "spec.tags: key \"bad{key}\" must be 1 to 128 letters, digits, spaces or _ . : / = + - @",
                "spec.tags: key \"blogs.serverless.dev/owner\" is reserved for AWS or the operator's ownership tags",
                "spec.tags: the value of \"ok\" must be at most 256 letters, digits, spaces or _ . : / = + - @",
            ]
        );
    }

    #[test]
    fn a_placement_needs_a_domain_on_demand_tables_known_regions_and_an_objective_to_decide() {
        let base = "image: i\nfunction: {}\ncontainer: {}\n";
        let ok = format!(
            "{base}domain: {{hostedZone: example.com}}\nplacement: {{home: us-east-1, host: blog.example.com, \
             candidates: [{{region: eu-central-1, variant: container}}]}}\n"
        );
        assert_eq!(problems(&ok), Vec::<String>::new());
        let found = problems(&format!(
            "{base}table: {{billingMode: Provisioned, readCapacityUnits: 1, writeCapacityUnits: 1}}\n\
             placement: {{mode: Auto, home: us-east-1, host: blog.example.com, \
             candidates: [{{region: eu-central-1}}, {{region: eu-central-1}}, {{region: me-south-1}}], demand: {{af-south-1: 5}}}}\n"
        ));
        let warm = problems(&format!(
            "{base}domain: {{hostedZone: example.com}}\nplacement: {{home: us-east-1, host: blog.example.com, \
             candidates: [{{region: eu-central-1, variant: container, warm: true}}, {{region: ap-northeast-1, warm: true}}]}}\n"
        ));
        assert_eq!(warm.len(), 1, "the pinned one only: {warm:?}");
        assert!(warm[0].contains("keeps eu-central-1 warm"), "{warm:?}");
        let expect = [
            "needs spec.domain",
            "names eu-central-1 twice",
            "af-south-1, which is neither home nor a candidate",
            "billingMode: PayPerRequest",
            "no figures for me-south-1",
            "needs an objective",
        ];
        for part in expect {
            assert!(found.iter().any(|p| p.contains(part)), "{part:?} in {found:#?}");
        }
        let hosts = problems(&format!(
            "{base}domain: {{hostedZone: example.com, functionHost: fn.example.com}}\nregion: us-west-2\n\
             placement: {{home: us-east-1, host: blog.other.org}}\n"
        ));
        for part in [
            "leave spec.domain.functionHost",
            "not inside the hosted zone example.com",
            "differs from spec.placement.home",
        ] {
            assert!(hosts.iter().any(|p| p.contains(part)), "{part:?} in {hosts:#?}");
        }
    }
}
