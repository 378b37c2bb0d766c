//! The platform team's guardrails on what any tenant may deploy (`--tenant-policy FILE`): regions,
//! networks, image sources, code buckets, domains, certificates, tags, table adoption, size
//! ceilings, counts and exposure, with a namespace's own rules where the platform gives one. Checked
//! after validation and before any AWS call, in the reconciler and the admission webhook; a spec
//! outside them gets `PolicyViolation` naming each field and the rule. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::Cidr;
use crate::crd::{AllocationMode, BlogDeploymentSpec, ContainerSpec, FunctionSpec};

/// In a list of the rules below, allows any value (domains, certificates).
pub const ANY: &str = "*";

/// Replaced by the BlogDeployment's namespace in every list of names, prefixes and suffixes.
pub const NAMESPACE_VARIABLE: &str = "${namespace}";

/// An empty list of regions, image prefixes, code buckets, networks or tag keys allows anything
/// there; domains, given certificates and table adoption are refused unless allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantPolicy {
    /// Regions a BlogDeployment may run in.
    #[serde(default)]
    pub allowed_regions: Vec<String>,
    /// Every image the spec names (`spec.image`, `function.image`, `container.image`) must start
    /// with one of these (registry host and repository path), e.g.
    /// `123456789012.dkr.ecr.us-west-1.amazonaws.com/${namespace}/`.
    #[serde(default)]
    pub allowed_image_prefixes: Vec<String>,
    /// S3 buckets the function's code may come from (read with the operator's credentials).
    #[serde(default)]
    pub allowed_code_buckets: Vec<String>,
    /// The code's object key must start with one of these, e.g. `${namespace}/`.
    #[serde(default)]
    pub allowed_code_key_prefixes: Vec<String>,
    #[serde(default)]
    pub network: NetworkPolicy,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub exposure: ExposurePolicy,
    #[serde(default)]
    pub domains: DomainPolicy,
    /// ACM certificates a spec may name (`domain.certificateArn`, `loadBalancer.certificateArn`):
    /// exact ARNs, or `*`. None by default: the operator requests its own.
    #[serde(default)]
    pub allowed_certificate_arns: Vec<String>,
    /// Keys `spec.tags` may use (they become tags of IAM roles too, which ABAC policies read).
    #[serde(default)]
    pub allowed_tag_keys: Vec<String>,
    #[serde(default)]
    pub table: TablePolicy,
    /// The AWS account these BlogDeployments run in, through a role the operator assumes; none:
    /// the operator's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<crate::account::AccountRole>,
    /// A namespace's own rules, replacing all of the ones above for its BlogDeployments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, TenantPolicy>,
}

/// Where tenants may publish names (`spec.domain`, `spec.placement.host`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainPolicy {
    /// Hosted zones (as the spec writes them: id or name), or `*`. None by default.
    #[serde(default)]
    pub allowed_zones: Vec<String>,
    /// Every host must be one of these names or below one, e.g. `${namespace}.blogs.example.com`;
    /// `*` allows any host in an allowed zone.
    #[serde(default)]
    pub host_suffixes: Vec<String>,
}

/// Whether a spec may take a table the operator did not make.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TablePolicy {
    /// `spec.table.adoptUntagged` is refused unless this is true.
    #[serde(default)]
    pub allow_adopt_untagged: bool,
}

/// Where the container variant may run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicy {
    /// VPCs a spec may name.
    #[serde(default)]
    pub allowed_vpc_ids: Vec<String>,
    /// Subnets a spec may name.
    #[serde(default)]
    pub allowed_subnet_ids: Vec<String>,
    /// Tenants may not name a network at all: every BlogDeployment uses `default` (or, without
    /// one, the region's default VPC).
    #[serde(default)]
    pub tenants_choose: TenantsChoose,
    /// The network of every spec that names none, instead of the region's default VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<crate::crd::NetworkSpec>,
}

/// Whether tenants may name a network in their spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum TenantsChoose {
    /// Within the allowed lists.
    #[default]
    Allowed,
    /// Never: `spec.container.network` must stay empty.
    Never,
}

/// Ceilings on what a spec may ask for; Auto sizing stays inside them too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[serde(rename = "maxFunctionMemoryMiB")]
    pub max_function_memory_mib: Option<i32>,
    pub max_reserved_concurrency: Option<i32>,
    /// Reserved concurrency summed over every BlogDeployment of a namespace (the region's pool is
    /// the account's, shared with every other function).
    pub max_reserved_concurrency_total: Option<i32>,
    pub max_provisioned_concurrency: Option<i32>,
    /// Ceiling of `spec.function.throttle.ratePerSecond` (the HTTP API's requests a second).
    pub max_requests_per_second: Option<i32>,
    /// Ceiling of `spec.function.throttle.burst`.
    pub max_burst_requests: Option<i32>,
    /// Tasks: `desiredCount`, autoscaling and schedule `maxTasks`, allocation `maxTasks`.
    pub max_tasks: Option<i32>,
    pub max_task_cpu: Option<i32>,
    #[serde(rename = "maxTaskMemoryMiB")]
    pub max_task_memory_mib: Option<i32>,
    /// Read and write capacity units of a Provisioned table, each.
    pub max_table_capacity_units: Option<i64>,
    /// Placement candidates besides home (each a stack, roles and health checks in its region).
    pub max_candidates: Option<i32>,
}

/// Who may reach the container variant's load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExposurePolicy {
    /// `false`: only internal load balancers.
    #[serde(default = "yes")]
    pub allow_internet_facing: bool,
    /// Each of the spec's `ingressCidrs` must lie inside one of these.
    #[serde(default)]
    pub allowed_ingress_cidrs: Vec<String>,
}

impl Default for ExposurePolicy {
    fn default() -> Self {
        Self { allow_internet_facing: true, allowed_ingress_cidrs: Vec::new() }
    }
}

fn yes() -> bool {
    true
}

/// What the checks before any AWS call need to know beyond the spec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The BlogDeployment's namespace.
    pub namespace: &'a str,
    /// The region of a spec that names none.
    pub default_region: &'a str,
    /// The table ARN recorded in status: what was made or taken.
    pub recorded_table_arn: Option<&'a str>,
    /// Reserved concurrency the namespace's other BlogDeployments hold (`None`: not known here).
    pub reserved_elsewhere: Option<i32>,
}

impl TenantPolicy {
    /// Anything goes: for one team's own cluster, the demo and the tests (`--allow-any-tenant-spec`).
    #[must_use]
    pub fn open() -> Self {
        Self {
            domains: DomainPolicy { allowed_zones: vec![ANY.into()], host_suffixes: vec![ANY.into()] },
            allowed_certificate_arns: vec![ANY.into()],
            table: TablePolicy { allow_adopt_untagged: true },
            ..Self::default()
        }
    }

    /// Parses a policy file (YAML or JSON) and checks it is well formed.
    ///
    /// # Errors
    /// What is wrong with it: a typo, a namespace's rules nesting more namespaces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: Self = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if let Some(ns) = policy.namespaces.iter().find(|(_, rules)| !rules.namespaces.is_empty()).map(|(ns, _)| ns) {
            return Err(format!("namespaces.{ns}: a namespace's rules cannot list namespaces of their own"));
        }
        let accounts = std::iter::once(("account".to_owned(), &policy.account))
            .chain(policy.namespaces.iter().map(|(ns, rules)| (format!("namespaces.{ns}.account"), &rules.account)));
        let broken: Vec<String> =
            accounts.filter_map(|(at, account)| account.as_ref()?.check(&at).err()).flatten().collect();
        if !broken.is_empty() {
            return Err(broken.join("; "));
        }
        Ok(policy)
    }

    /// The rules for `namespace`: its own when the policy gives them, else the common ones, with
    /// `${namespace}` replaced.
    #[must_use]
    pub fn for_namespace(&self, namespace: &str) -> Self {
        let mut rules = self.namespaces.get(namespace).unwrap_or(self).clone();
        rules.namespaces.clear();
        let lists = [
            &mut rules.allowed_image_prefixes,
            &mut rules.allowed_code_buckets,
            &mut rules.allowed_code_key_prefixes,
            &mut rules.domains.allowed_zones,
            &mut rules.domains.host_suffixes,
            &mut rules.allowed_certificate_arns,
        ];
        for entry in lists.into_iter().flatten() {
            *entry = entry.replace(NAMESPACE_VARIABLE, namespace);
        }
        rules
    }

    /// Every rule a validated spec breaks, each naming the field, its value and the rule.
    ///
    /// # Errors
    /// The broken rules, in spec order.
    pub fn check(&self, spec: &BlogDeploymentSpec, facts: &Facts<'_>) -> Result<(), Vec<String>> {
        let rules = self.for_namespace(facts.namespace);
        let mut broken: Vec<String> =
            self.account_moved(facts.namespace, facts.recorded_table_arn).into_iter().collect();
        rules.check_regions(spec, facts.default_region, &mut broken);
        rules.check_images(spec, &mut broken);
        if let Some(function) = spec.function_enabled() {
            rules.check_function(function, facts, &mut broken);
        }
        if let Some(container) = spec.container_enabled() {
            rules.check_container(container, &mut broken);
        }
        rules.check_table(spec, &mut broken);
        rules.check_auto(spec, &mut broken);
        rules.check_domain(spec, &mut broken);
        rules.check_tags(spec, &mut broken);
        if broken.is_empty() { Ok(()) } else { Err(broken) }
    }

    /// Why the namespace's account no longer holds what this object made (its table's account),
    /// when the policy moved the namespace: the operator would make everything again in the new
    /// account and lose track of the old. Unmapped, only a move out of a mapped account is seen
    /// (the operator's own account id is not known without a call).
    #[must_use]
    pub fn account_moved(&self, namespace: &str, recorded_table_arn: Option<&str>) -> Option<String> {
        let recorded = crate::aws::Arn::parse(recorded_table_arn?)?.account;
        let mapped = self.for_namespace(namespace).account;
        let moved = match &mapped {
            Some(account) => account.account() != recorded,
            None => self.accounts().any(|a| a.account() == recorded),
        };
        let now = mapped.as_ref().map_or("the operator's own account", |a| a.account());
        moved.then(|| {
            format!(
                "this BlogDeployment's resources are in account {recorded} and the tenant policy now maps namespace                  {namespace} to {now}: restore the mapping, or delete the BlogDeployment first"
            )
        })
    }

    fn accounts(&self) -> impl Iterator<Item = &crate::account::AccountRole> {
        self.account.iter().chain(self.namespaces.values().filter_map(|rules| rules.account.as_ref()))
    }

    fn check_regions(&self, spec: &BlogDeploymentSpec, default_region: &str, broken: &mut Vec<String>) {
        for region in spec.regions(default_region) {
            if !allowed(&self.allowed_regions, |r| r == region) {
                broken.push(format!(
                    "region {region} is not among the allowed regions ({})",
                    self.allowed_regions.join(", ")
                ));
            }
        }
        let candidates = spec.placement.as_ref().map_or(0, |p| p.candidates.len());
        let candidates = i32::try_from(candidates).unwrap_or(i32::MAX);
        ceiling(broken, "the number of spec.placement.candidates", Some(candidates), self.limits.max_candidates);
    }

    /// Every image the spec names, each against the prefixes: an override replaces `spec.image`.
    fn check_images(&self, spec: &BlogDeploymentSpec, broken: &mut Vec<String>) {
        let overrides = [
            ("spec.function.image", spec.function_enabled().and_then(|f| f.image.as_deref())),
            ("spec.container.image", spec.container_enabled().and_then(|c| c.image.as_deref())),
        ];
        let images = std::iter::once(("spec.image", Some(spec.image.as_str()))).chain(overrides);
        for (field, image) in images.filter_map(|(field, image)| Some((field, image?))) {
            if !allowed(&self.allowed_image_prefixes, |p| image.starts_with(p.as_str())) {
                let prefixes = self.allowed_image_prefixes.join(", ");
                broken.push(format!("{field} {image:?} does not start with an allowed prefix ({prefixes})"));
            }
        }
    }

    fn check_function(&self, function: &FunctionSpec, facts: &Facts<'_>, broken: &mut Vec<String>) {
        let limits = &self.limits;
        ceiling(broken, "spec.function.memoryMiB", Some(function.memory_mib), limits.max_function_memory_mib);
        let reserved = function.reserved_concurrency;
        ceiling(broken, "spec.function.reservedConcurrency", reserved, limits.max_reserved_concurrency);
        if let (Some(reserved), Some(elsewhere), Some(most)) =
            (reserved, facts.reserved_elsewhere, limits.max_reserved_concurrency_total)
            && reserved.saturating_add(elsewhere) > most
        {
            broken.push(format!(
                "spec.function.reservedConcurrency {reserved} with the {elsewhere} the namespace's other \
                 BlogDeployments reserve is above the platform's ceiling of {most} for the namespace"
            ));
        }
        let provisioned = function.provisioned_concurrency;
        ceiling(broken, "spec.function.provisionedConcurrency", provisioned, limits.max_provisioned_concurrency);
        let (rate, burst) = (function.throttle.rate_per_second, function.throttle.burst);
        ceiling(broken, "spec.function.throttle.ratePerSecond", Some(rate), limits.max_requests_per_second);
        ceiling(broken, "spec.function.throttle.burst", Some(burst), limits.max_burst_requests);
        if let Some(code) = &function.code {
            if !allowed(&self.allowed_code_buckets, |b| *b == code.s3_bucket) {
                let buckets = self.allowed_code_buckets.join(", ");
                broken.push(format!(
                    "spec.function.code.s3Bucket {} is not an allowed bucket ({buckets})",
                    code.s3_bucket
                ));
            }
            if !allowed(&self.allowed_code_key_prefixes, |p| code.s3_key.starts_with(p.as_str())) {
                let prefixes = self.allowed_code_key_prefixes.join(", ");
                broken.push(format!(
                    "spec.function.code.s3Key {} does not start with an allowed prefix ({prefixes})",
                    code.s3_key
                ));
            }
        }
    }

    fn check_container(&self, container: &ContainerSpec, broken: &mut Vec<String>) {
        let limits = &self.limits;
        ceiling(broken, "spec.container.cpu", Some(container.cpu), limits.max_task_cpu);
        ceiling(broken, "spec.container.memoryMiB", Some(container.memory_mib), limits.max_task_memory_mib);
        ceiling(broken, "spec.container.desiredCount", Some(container.desired_count), limits.max_tasks);
        if let Some(scaling) = &container.autoscaling {
            ceiling(broken, "spec.container.autoscaling.maxTasks", Some(scaling.max_tasks), limits.max_tasks);
            for (i, action) in scaling.scheduled.iter().enumerate() {
                let field = format!("spec.container.autoscaling.scheduled[{i}].maxTasks");
                ceiling(broken, &field, Some(action.max_tasks), limits.max_tasks);
            }
        }
        self.check_network(container, broken);
        self.check_exposure(container, broken);
        if let Some(arn) = &container.load_balancer.certificate_arn {
            self.check_certificate("spec.container.loadBalancer.certificateArn", arn, broken);
        }
    }

    fn check_network(&self, container: &ContainerSpec, broken: &mut Vec<String>) {
        let (network, rules) = (&container.network, &self.network);
        let named = network.vpc_id.is_some() || !network.subnet_ids.is_empty();
        if named && rules.tenants_choose == TenantsChoose::Never {
            broken.push("spec.container.network: the platform team chooses the network; leave it empty".to_owned());
            return;
        }
        if let Some(vpc) = &network.vpc_id
            && !allowed(&rules.allowed_vpc_ids, |v| v == vpc)
        {
            let vpcs = rules.allowed_vpc_ids.join(", ");
            broken.push(format!("spec.container.network.vpcId {vpc} is not an allowed VPC ({vpcs})"));
        }
        for subnet in network.subnet_ids.iter().filter(|s| !allowed(&rules.allowed_subnet_ids, |a| a == *s)) {
            let subnets = rules.allowed_subnet_ids.join(", ");
            broken.push(format!("spec.container.network.subnetIds: {subnet} is not an allowed subnet ({subnets})"));
        }
    }

    fn check_exposure(&self, container: &ContainerSpec, broken: &mut Vec<String>) {
        let (exposure, rules) = (&container.load_balancer, &self.exposure);
        if !exposure.internal && !rules.allow_internet_facing {
            broken.push(
                "spec.container.loadBalancer.internal must be true: only internal load balancers are allowed"
                    .to_owned(),
            );
        }
        let within = rules.allowed_ingress_cidrs.iter().filter_map(|c| Cidr::parse(c)).collect::<Vec<_>>();
        for cidr in &exposure.ingress_cidrs {
            let inside = Cidr::parse(cidr).is_some_and(|c| within.iter().any(|w| w.contains(c)));
            if !rules.allowed_ingress_cidrs.is_empty() && !inside {
                let blocks = rules.allowed_ingress_cidrs.join(", ");
                broken.push(format!(
                    "spec.container.loadBalancer.ingressCidrs: {cidr} is outside the allowed blocks ({blocks})"
                ));
            }
        }
    }

    fn check_table(&self, spec: &BlogDeploymentSpec, broken: &mut Vec<String>) {
        let table = &spec.table;
        for (field, units) in
            [("readCapacityUnits", table.read_capacity_units), ("writeCapacityUnits", table.write_capacity_units)]
        {
            ceiling(broken, &format!("spec.table.{field}"), units, self.limits.max_table_capacity_units);
        }
        if table.adopt_untagged && !self.table.allow_adopt_untagged {
            broken.push(
                "spec.table.adoptUntagged: the platform does not let tenants take tables the operator did not make"
                    .to_owned(),
            );
        }
    }

    /// Auto sizes within the allocation bounds and the task-size ceilings: its bounds, too, must stay
    /// under the ceilings (the task size it chooses is capped by them, see [`Limits::task_bounds`]).
    fn check_auto(&self, spec: &BlogDeploymentSpec, broken: &mut Vec<String>) {
        if spec.allocation.mode != AllocationMode::Auto {
            return;
        }
        let (allocation, limits) = (&spec.allocation, &self.limits);
        if spec.container_enabled().is_some() {
            ceiling(broken, "spec.allocation.maxTasks", Some(allocation.max_tasks), limits.max_tasks);
        }
        if spec.function_enabled().is_some() {
            let most = Some(allocation.max_memory_mib);
            ceiling(broken, "spec.allocation.maxMemoryMiB", most, limits.max_function_memory_mib);
        }
    }

    /// Every host the spec publishes lies in an allowed zone and under an allowed suffix.
    fn check_domain(&self, spec: &BlogDeploymentSpec, broken: &mut Vec<String>) {
        let Some(domain) = &spec.domain else { return };
        let zones = &self.domains.allowed_zones;
        if !zones.iter().any(|z| z == ANY || same_name(z, &domain.hosted_zone)) {
            let listed = if zones.is_empty() { "none".to_owned() } else { zones.join(", ") };
            broken.push(format!(
                "spec.domain.hostedZone {} is not a zone the platform lets tenants use ({listed})",
                domain.hosted_zone
            ));
        }
        let hosts = [
            ("spec.domain.functionHost", domain.function_host.as_deref()),
            ("spec.domain.containerHost", domain.container_host.as_deref()),
            ("spec.placement.host", spec.placement.as_ref().map(|p| p.host.as_str())),
        ];
        let suffixes = &self.domains.host_suffixes;
        for (field, host) in hosts.into_iter().filter_map(|(f, h)| Some((f, h?))) {
            if !suffixes.iter().any(|s| s == ANY || under(host, s)) {
                let listed = if suffixes.is_empty() { "none".to_owned() } else { suffixes.join(", ") };
                broken.push(format!("{field} {host} is not under a host suffix the platform allows ({listed})"));
            }
        }
        if let Some(arn) = &domain.certificate_arn {
            self.check_certificate("spec.domain.certificateArn", arn, broken);
        }
    }

    fn check_certificate(&self, field: &str, arn: &str, broken: &mut Vec<String>) {
        if !self.allowed_certificate_arns.iter().any(|a| a == ANY || a == arn) {
            broken.push(format!(
                "{field} {arn} is not a certificate the platform lets tenants use; leave it unset and the operator \
                 requests one"
            ));
        }
    }

    fn check_tags(&self, spec: &BlogDeploymentSpec, broken: &mut Vec<String>) {
        let keys = &self.allowed_tag_keys;
        for key in spec.tags.keys().filter(|k| !allowed(keys, |a| a == *k)) {
            broken.push(format!("spec.tags: key {key:?} is not an allowed tag key ({})", keys.join(", ")));
        }
    }
}

impl Limits {
    /// The task CPU and memory Auto may choose: the ceilings, within Fargate's own range.
    #[must_use]
    pub fn task_bounds(&self) -> (i32, i32) {
        (self.max_task_cpu.unwrap_or(16_384), self.max_task_memory_mib.unwrap_or(122_880))
    }
}

/// DNS names compared without case and a trailing dot.
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// `host` is `suffix` or a name below it (at a label boundary).
fn under(host: &str, suffix: &str) -> bool {
    let (host, suffix) =
        (host.trim_end_matches('.').to_ascii_lowercase(), suffix.trim_end_matches('.').to_ascii_lowercase());
    !suffix.is_empty() && (host == suffix || host.ends_with(&format!(".{suffix}")))
}

/// Reserved concurrency the specs hold, summed (disabled functions hold none).
#[must_use]
pub fn reserved_concurrency<'a>(specs: impl IntoIterator<Item = &'a BlogDeploymentSpec>) -> i32 {
    specs
        .into_iter()
        .filter_map(|s| s.function_enabled().and_then(|f| f.reserved_concurrency))
        .fold(0, i32::saturating_add)
}

/// An empty list allows everything; otherwise some entry must match.
fn allowed(list: &[String], matches: impl Fn(&String) -> bool) -> bool {
    list.is_empty() || list.iter().any(matches)
}

fn ceiling<T: PartialOrd + std::fmt::Display + Copy>(
    broken: &mut Vec<String>,
    field: &str,
    value: Option<T>,
    most: Option<T>,
) {
    if let (Some(value), Some(most)) = (value, most)
        && value > most
    {
        broken.push(format!("{field} {value} is above the platform's ceiling of {most}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> BlogDeploymentSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    fn facts(default_region: &str) -> Facts<'_> {
        Facts { namespace: "team-x", default_region, ..Facts::default() }
    }

    const POLICY: &str = "
allowedRegions: [us-west-1]
allowedImagePrefixes: [123456789012.dkr.ecr.us-west-1.amazonaws.com/blogs/]
allowedCodeBuckets: [team-code]
network: {allowedVpcIds: [vpc-0a1b2c3d], allowedSubnetIds: [subnet-0a1b2c3d, subnet-1a2b3c4d]}
limits: {maxReservedConcurrency: 50, maxTasks: 10, maxTaskCpu: 1024, maxTaskMemoryMiB: 4096}
exposure: {allowInternetFacing: false, allowedIngressCidrs: [10.0.0.0/8]}
";

    fn policy() -> TenantPolicy {
        serde_saphyr::from_str(POLICY).expect("policy parses")
    }

    #[test]
    fn a_spec_inside_the_policy_passes() {
        let inside = spec(
            "image: 123456789012.dkr.ecr.us-west-1.amazonaws.com/blogs/blog:1\nregion: us-west-1\n\
             function: {reservedConcurrency: 20}\n\
             container: {cpu: 1024, memoryMiB: 2048, desiredCount: 3, loadBalancer: {internal: true, ingressCidrs: [10.1.0.0/16]},\n\
               network: {vpcId: vpc-0a1b2c3d, subnetIds: [subnet-0a1b2c3d, subnet-1a2b3c4d]}}\n",
        );
        assert_eq!(policy().check(&inside, &facts("us-west-1")), Ok(()));
        assert_eq!(
            TenantPolicy::default().check(&spec("image: anything:1\nfunction: {}\n"), &facts("eu-west-1")),
            Ok(())
        );
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let outside = spec(
            "image: docker.io/someone/blog:1\nregion: eu-west-1\n\
             function: {reservedConcurrency: 500, code: {s3Bucket: other-bucket, s3Key: k.zip}}\n\
             container: {cpu: 4096, memoryMiB: 8192, desiredCount: 40, network: {vpcId: vpc-ffffffff, subnetIds: [subnet-ffffffff, subnet-0a1b2c3d]}}\n",
        );
        let broken = policy().check(&outside, &facts("us-west-1")).expect_err("outside");
        assert_eq!(
            broken,
            [
                "region eu-west-1 is not among the allowed regions (us-west-1)",
                "spec.image \"docker.io/someone/blog:1\" does not start with an allowed prefix (123456789012.dkr.ecr.us-west-1.amazonaws.com/blogs/)",
                "spec.function.reservedConcurrency 500 is above the platform's ceiling of 50",
                "spec.function.code.s3Bucket other-bucket is not an allowed bucket (team-code)",
                "spec.container.cpu 4096 is above the platform's ceiling of 1024",
                "spec.container.memoryMiB 8192 is above the platform's ceiling of 4096",
                "spec.container.desiredCount 40 is above the platform's ceiling of 10",
                "spec.container.network.vpcId vpc-ffffffff is not an allowed VPC (vpc-0a1b2c3d)",
                "spec.container.network.subnetIds: subnet-ffffffff is not an allowed subnet (subnet-0a1b2c3d, subnet-1a2b3c4d)",
                "spec.container.loadBalancer.internal must be true: only internal load balancers are allowed",
                "spec.container.loadBalancer.ingressCidrs: 0.0.0.0/0 is outside the allowed blocks (10.0.0.0/8)",
            ]
        );
    }

    #[test]
    fn the_platform_network_is_the_default() {
        let policy: TenantPolicy = serde_saphyr::from_str(
            "network: {tenantsChoose: Never, default: {vpcId: vpc-0a1b2c3d, subnetIds: [subnet-0a1b2c3d, subnet-1a2b3c4d]}}\n",
        )
        .expect("policy");
        let owner = crate::desired::Owner { namespace: "n".into(), name: "b".into(), uid: "0123abcd".into() };
        let inputs = crate::desired::Inputs {
            default_network: policy.network.default.as_ref(),
            ..crate::desired::Inputs::region("r")
        };
        let d = crate::desired::desired(&owner, &spec("image: b:1\ncontainer: {}\n"), &inputs);
        let c = d.container.expect("container");
        assert_eq!((c.vpc_id.as_deref(), c.subnet_ids.len()), (Some("vpc-0a1b2c3d"), 2));
    }

    #[test]
    fn a_fixed_network_and_an_unknown_key_are_refused() {
        let fixed: TenantPolicy = serde_saphyr::from_str("network: {tenantsChoose: Never}\n").expect("policy");
        let named = spec(
            "image: b:1\ncontainer: {network: {vpcId: vpc-0a1b2c3d, subnetIds: [subnet-0a1b2c3d, subnet-1a2b3c4d]}}\n",
        );
        assert_eq!(fixed.check(&named, &facts("r")).expect_err("fixed").len(), 1);
        assert!(serde_saphyr::from_str::<TenantPolicy>("allowedRegion: [us-west-1]\n").is_err(), "typos are refused");
    }

    const IMAGE: &str = "image: 123456789012.dkr.ecr.us-west-1.amazonaws.com/blogs/blog:1\n";

    #[test]
    fn every_image_the_spec_names_is_held_to_the_prefixes() {
        let overrides = spec(&format!(
            "{IMAGE}function: {{image: docker.io/evil/miner:latest}}\ncontainer: {{image: 123456789012.dkr.ecr.us-west-1.amazonaws.com/team-b/private:1}}\n"
        ));
        let broken = policy().check(&overrides, &facts("us-west-1")).expect_err("overrides outside");
        assert!(broken[0].starts_with("spec.function.image \"docker.io/evil/miner:latest\""), "{broken:?}");
        assert!(broken[1].starts_with("spec.container.image"), "{broken:?}");
    }

    #[test]
    fn domains_certificates_and_adoption_are_refused_unless_allowed() {
        let domain = spec(&format!(
            "{IMAGE}function: {{}}\ndomain: {{hostedZone: corp.example.com, functionHost: login.corp.example.com, \
             certificateArn: 'arn:aws:acm:us-west-1:123456789012:certificate/wild'}}\ntable: {{name: t, adoptUntagged: true}}\n"
        ));
        let broken = TenantPolicy::default().check(&domain, &facts("us-west-1")).expect_err("nothing allowed");
        assert_eq!(broken.len(), 4, "{broken:?}");
        assert!(broken.iter().any(|b| b.starts_with("spec.table.adoptUntagged")), "{broken:?}");
        assert_eq!(TenantPolicy::open().check(&domain, &facts("us-west-1")), Ok(()));
    }

    #[test]
    fn hosts_stay_under_the_namespaces_own_suffix() {
        let policy = TenantPolicy::parse(
            "domains: {allowedZones: [blogs.example.com], hostSuffixes: ['${namespace}.blogs.example.com']}\n",
        )
        .expect("policy");
        let host = |h: &str| {
            spec(&format!("{IMAGE}function: {{}}\ndomain: {{hostedZone: blogs.example.com., functionHost: {h}}}\n"))
        };
        assert_eq!(policy.check(&host("shop.team-x.blogs.example.com"), &facts("r")), Ok(()));
        assert_eq!(policy.check(&host("Team-X.blogs.example.com."), &facts("r")), Ok(()));
        for other in ["shop.team-b.blogs.example.com", "evilteam-x.blogs.example.com", "blogs.example.com"] {
            let broken = policy.check(&host(other), &facts("r")).expect_err(other);
            assert!(
                broken[0].contains("is not under a host suffix the platform allows (team-x.blogs.example.com)"),
                "{broken:?}"
            );
        }
        let zone = spec(&format!(
            "{IMAGE}function: {{}}\ndomain: {{hostedZone: corp.example.com, functionHost: a.team-x.blogs.example.com}}\n"
        ));
        assert!(
            policy.check(&zone, &facts("r")).expect_err("zone")[0]
                .starts_with("spec.domain.hostedZone corp.example.com")
        );
    }

    #[test]
    fn a_namespace_gets_its_own_rules_and_the_others_the_common_ones() {
        let policy = TenantPolicy::parse(
            "allowedImagePrefixes: ['registry.example.com/${namespace}/']\n\
             namespaces: {team-x: {allowedRegions: [eu-west-1], allowedImagePrefixes: [docker.io/team-x/]}}\n",
        )
        .expect("policy");
        let own = spec("image: registry.example.com/team-b/blog:1\nfunction: {}\n");
        let team_b = Facts { namespace: "team-b", ..facts("us-west-1") };
        assert_eq!(policy.check(&own, &team_b), Ok(()));
        assert!(policy.check(&own, &facts("us-west-1")).is_err(), "team-x has its own rules");
        let x = spec("image: docker.io/team-x/blog:1\nregion: eu-west-1\nfunction: {}\n");
        assert_eq!(policy.check(&x, &facts("us-west-1")), Ok(()));
        assert!(TenantPolicy::parse("namespaces: {a: {namespaces: {b: {}}}}\n").is_err(), "no nesting");
    }

    #[test]
    fn a_namespace_can_run_in_its_own_account_and_a_malformed_role_is_refused_at_load() {
        let policy = TenantPolicy::parse(
            "namespaces:\n  team-b:\n    account: {roleArn: 'arn:aws:iam::222222222222:role/blog-operator', externalId: team-b-7f3a}\n",
        )
        .expect("policy");
        let account = policy.for_namespace("team-b").account.expect("team-b's account");
        assert_eq!(account.account(), "222222222222");
        assert_eq!(policy.for_namespace("team-c").account, None, "the others stay in the operator's account");
        let broken = TenantPolicy::parse(
            "namespaces: {team-b: {account: {roleArn: 'arn:aws:iam::2222:role/x', externalId: 'a b'}}}\n",
        )
        .expect_err("malformed");
        assert!(broken.contains("namespaces.team-b.account.roleArn") && broken.contains("externalId"), "{broken}");
    }

    #[test]
    fn a_namespace_moved_to_another_account_is_refused_while_its_resources_are_in_the_old_one() {
        let policy = TenantPolicy::parse(
            "namespaces: {team-b: {account: {roleArn: 'arn:aws:iam::222222222222:role/r', externalId: xx}}}\n",
        )
        .expect("policy");
        let s = spec(&format!("{IMAGE}function: {{}}\n"));
        let at = |namespace, arn| Facts { namespace, recorded_table_arn: Some(arn), ..facts("us-west-1") };
        let in_b = "arn:aws:dynamodb:us-west-1:222222222222:table/blog-b";
        let in_own = "arn:aws:dynamodb:us-west-1:111111111111:table/blog-b";
        assert_eq!(policy.check(&s, &at("team-b", in_b)), Ok(()));
        let moved = policy.check(&s, &at("team-b", in_own)).expect_err("moved in");
        assert!(
            moved[0].contains("are in account 111111111111") && moved[0].contains("team-b to 222222222222"),
            "{moved:?}"
        );
        let left = policy.check(&s, &at("team-c", in_b)).expect_err("moved out");
        assert!(left[0].contains("to the operator's own account"), "{left:?}");
        assert_eq!(policy.check(&s, &at("team-c", in_own)), Ok(()));
    }

    #[test]
    fn counts_are_bounded_per_object_and_per_namespace() {
        let policy =
            TenantPolicy::parse("limits: {maxCandidates: 1, maxReservedConcurrencyTotal: 100}\n").expect("policy");
        let placed = spec(&format!(
            "{IMAGE}function: {{reservedConcurrency: 60}}\nplacement: {{home: us-west-1, host: b.example.com, \
             candidates: [{{region: eu-west-1}}, {{region: us-east-1}}]}}\n"
        ));
        let crowded = Facts { reserved_elsewhere: Some(50), ..facts("us-west-1") };
        let broken = policy.check(&placed, &crowded).expect_err("too many");
        assert!(broken.iter().any(|b| b.starts_with("the number of spec.placement.candidates 2")), "{broken:?}");
        assert!(
            broken.iter().any(|b| b.contains("with the 50 the namespace's other BlogDeployments reserve")),
            "{broken:?}"
        );
        let room = Facts { reserved_elsewhere: Some(40), ..facts("us-west-1") };
        assert_eq!(policy.check(&placed, &room).expect_err("candidates").len(), 1);
    }

    #[test]
    fn the_http_apis_throttle_stays_under_the_ceilings() {
        let policy =
            TenantPolicy::parse("limits: {maxRequestsPerSecond: 50, maxBurstRequests: 100}\n").expect("policy");
        let default = spec(&format!("{IMAGE}function: {{}}\n"));
        let broken = policy.check(&default, &facts("us-west-1")).expect_err("the default 100/200 is above");
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert!(broken[0].starts_with("spec.function.throttle.ratePerSecond 100"), "{broken:?}");
        let within = spec(&format!("{IMAGE}function: {{throttle: {{ratePerSecond: 50, burst: 100}}}}\n"));
        assert_eq!(policy.check(&within, &facts("us-west-1")), Ok(()));
    }

    #[test]
    fn tag_keys_and_code_keys_follow_their_lists() {
        let policy = TenantPolicy::parse(
            "allowedTagKeys: [cost-center]\nallowedCodeBuckets: [code]\nallowedCodeKeyPrefixes: ['${namespace}/']\n",
        )
        .expect("policy");
        let s = spec(&format!(
            "{IMAGE}function: {{code: {{s3Bucket: code, s3Key: team-b/app.zip}}}}\ntags: {{cost-center: a, team: payments}}\n"
        ));
        let broken = policy.check(&s, &facts("r")).expect_err("outside");
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert!(broken[0].contains("s3Key team-b/app.zip") && broken[1].contains("\"team\""), "{broken:?}");
    }
}
