//! The platform team's guardrails on what any tenant may deploy (`--tenant-policy FILE`): regions,
//! networks, image sources, code buckets, size ceilings and exposure. Checked after validation and
//! before any AWS call, in the reconciler (and in any admission webhook); a spec outside them gets
//! `PolicyViolation` naming each field and the rule. Pure.

use serde::{Deserialize, Serialize};

use crate::aws::Cidr;
use crate::crd::{BlogDeploymentSpec, ContainerSpec, FunctionSpec};

/// Every rule is optional: an empty list or an absent ceiling allows anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantPolicy {
    /// Regions a BlogDeployment may run in.
    #[serde(default)]
    pub allowed_regions: Vec<String>,
    /// Image references must start with one of these (registry host and repository path), e.g.
    /// `123456789012.dkr.ecr.us-west-1.amazonaws.com/blogs/`.
    #[serde(default)]
    pub allowed_image_prefixes: Vec<String>,
    /// S3 buckets the function's code may come from (read with the operator's credentials).
    #[serde(default)]
    pub allowed_code_buckets: Vec<String>,
    #[serde(default)]
    pub network: NetworkPolicy,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub exposure: ExposurePolicy,
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

/// Ceilings on what a spec may ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[serde(rename = "maxFunctionMemoryMiB")]
    pub max_function_memory_mib: Option<i32>,
    pub max_reserved_concurrency: Option<i32>,
    pub max_provisioned_concurrency: Option<i32>,
    /// Tasks: `desiredCount`, autoscaling and schedule `maxTasks`, allocation `maxTasks`.
    pub max_tasks: Option<i32>,
    pub max_task_cpu: Option<i32>,
    #[serde(rename = "maxTaskMemoryMiB")]
    pub max_task_memory_mib: Option<i32>,
    /// Read and write capacity units of a Provisioned table, each.
    pub max_table_capacity_units: Option<i64>,
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

impl TenantPolicy {
    /// Every rule a validated spec breaks, each naming the field, its value and the rule.
    ///
    /// # Errors
    /// The broken rules, in spec order.
    pub fn check(&self, spec: &BlogDeploymentSpec, default_region: &str) -> Result<(), Vec<String>> {
        let mut broken = Vec::new();
        for region in spec.regions(default_region) {
            if !allowed(&self.allowed_regions, |r| r == region) {
                broken.push(format!(
                    "region {region} is not among the allowed regions ({})",
                    self.allowed_regions.join(", ")
                ));
            }
        }
        if !allowed(&self.allowed_image_prefixes, |p| spec.image.starts_with(p.as_str())) {
            let prefixes = self.allowed_image_prefixes.join(", ");
            broken.push(format!("spec.image {:?} does not start with an allowed prefix ({prefixes})", spec.image));
        }
        if let Some(function) = spec.function_enabled() {
            self.check_function(function, &mut broken);
        }
        if let Some(container) = spec.container_enabled() {
            self.check_container(container, &mut broken);
        }
        let table = &spec.table;
        for (field, units) in
            [("readCapacityUnits", table.read_capacity_units), ("writeCapacityUnits", table.write_capacity_units)]
        {
            ceiling(&mut broken, &format!("spec.table.{field}"), units, self.limits.max_table_capacity_units);
        }
        // Auto sizes within the allocation bounds: those, too, must stay under the ceilings.
        if spec.allocation.mode == crate::crd::AllocationMode::Auto {
            let allocation = &spec.allocation;
            if spec.container_enabled().is_some() {
                ceiling(&mut broken, "spec.allocation.maxTasks", Some(allocation.max_tasks), self.limits.max_tasks);
            }
            if spec.function_enabled().is_some() {
                let most = Some(allocation.max_memory_mib);
                ceiling(&mut broken, "spec.allocation.maxMemoryMiB", most, self.limits.max_function_memory_mib);
            }
        }
        if broken.is_empty() { Ok(()) } else { Err(broken) }
    }

    fn check_function(&self, function: &FunctionSpec, broken: &mut Vec<String>) {
        let limits = &self.limits;
        ceiling(broken, "spec.function.memoryMiB", Some(function.memory_mib), limits.max_function_memory_mib);
        ceiling(
            broken,
            "spec.function.reservedConcurrency",
            function.reserved_concurrency,
            limits.max_reserved_concurrency,
        );
        let provisioned = function.provisioned_concurrency;
        ceiling(broken, "spec.function.provisionedConcurrency", provisioned, limits.max_provisioned_concurrency);
        if let Some(code) = &function.code
            && !allowed(&self.allowed_code_buckets, |b| *b == code.s3_bucket)
        {
            let buckets = self.allowed_code_buckets.join(", ");
            broken.push(format!("spec.function.code.s3Bucket {} is not an allowed bucket ({buckets})", code.s3_bucket));
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
        assert_eq!(policy().check(&inside, "us-west-1"), Ok(()));
        assert_eq!(TenantPolicy::default().check(&spec("image: anything:1\nfunction: {}\n"), "eu-west-1"), Ok(()));
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let outside = spec(
            "image: docker.io/someone/blog:1\nregion: eu-west-1\n\
             function: {reservedConcurrency: 500, code: {s3Bucket: other-bucket, s3Key: k.zip}}\n\
             container: {cpu: 4096, memoryMiB: 8192, desiredCount: 40, network: {vpcId: vpc-ffffffff, subnetIds: [subnet-ffffffff, subnet-0a1b2c3d]}}\n",
        );
        let broken = policy().check(&outside, "us-west-1").expect_err("outside");
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
        assert_eq!(fixed.check(&named, "r").expect_err("fixed").len(), 1);
        assert!(serde_saphyr::from_str::<TenantPolicy>("allowedRegion: [us-west-1]\n").is_err(), "typos are refused");
    }
}
