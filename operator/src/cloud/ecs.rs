//! ECS: the cluster, the task definition (a new revision whenever it changes) and the Fargate
//! service behind the target group, with the deployment circuit breaker and rollback on.

use super::{Call, CREATED_TAGGED};
use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecs::types::{
    AdvancedConfiguration, AssignPublicIp, AwsVpcConfiguration, CanaryConfiguration, Cluster, ClusterField,
    ClusterSetting, ClusterSettingName, Compatibility, ContainerDefinition, CpuArchitecture, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
    DeploymentLifecycleHookStatus, DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration,
    DeploymentStrategy, KeyValuePair, LaunchType, LinearConfiguration, LoadBalancer, LogConfiguration, LogDriver,
    NetworkConfiguration, NetworkMode, OsFamily, PortMapping, RuntimePlatform, Secret, ServiceDeployment,
    ServiceField, StopServiceDeploymentStopType, Tag, TaskDefinition, TransportProtocol,
};
use blog_core::rollout::container::{Answer, Deployment, EcsStrategy};

use super::tags::claim;
use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::crd::Architecture;
use crate::desired::{CONTAINER_NAME, DesiredContainer, Owner};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "EcsClustersAndServices",
    "Effect": "Allow",
    "Action": [
      "ecs:CreateCluster",
      "ecs:DescribeClusters",
      "ecs:DeleteCluster",
      "ecs:UpdateClusterSettings",
      "ecs:CreateService",
      "ecs:DescribeServices",
      "ecs:UpdateService",
      "ecs:DeleteService",
      "ecs:TagResource",
      "ecs:ListServiceDeployments"
    ],
    "Resource": [
      "arn:aws:ecs:*:*:cluster/blog-*",
      "arn:aws:ecs:*:*:service/blog-*/blog-*"
    ]
  },
  {
    "Sid": "EcsServiceDeployments",
    "Effect": "Allow",
    "Action": [
      "ecs:DescribeServiceDeployments",
      "ecs:ContinueServiceDeployment",
      "ecs:StopServiceDeployment"
    ],
    "Resource": [
      "arn:aws:ecs:*:*:service-deployment/blog-*/blog-*/*"
    ]
  },
  {
    "Sid": "EcsTaskDefinitionsTagged",
    "Effect": "Allow",
    "Action": [
      "ecs:RegisterTaskDefinition"
    ],
    "Resource": "*",
    "Condition": {
      "StringEquals": {
        "aws:RequestTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "EcsTaskDefinitionTags",
    "Effect": "Allow",
    "Action": [
      "ecs:TagResource"
    ],
    "Resource": [
      "arn:aws:ecs:*:*:task-definition/blog-*:*"
    ],
    "Condition": {
      "StringEquals": {
        "ecs:CreateAction": "RegisterTaskDefinition"
      }
    }
  },
  {
    "Sid": "EcsClusterListing",
    "Effect": "Allow",
    "Action": [
      "ecs:ListClusters"
    ],
    "Resource": "*"
  },
  {
    "Sid": "EcsTaskDefinitionReadsAndDeregister",
    "Effect": "Allow",
    "Action": [
      "ecs:DescribeTaskDefinition",
      "ecs:ListTaskDefinitions",
      "ecs:DeregisterTaskDefinition"
    ],
    "Resource": "*"
  }
]"#;

pub(crate) const SERVICE: &str = "ecs";

const CLUSTER: &str = "arn:aws:ecs:{region}:{account}:cluster/{cluster}";
const SERVICE_ARN: &str = "arn:aws:ecs:{region}:{account}:service/{cluster}/{service}";
const SERVICE_DEPLOYMENT: &str = "arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{service}/Ab1Cd2Ef3";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create the cluster", "ecs:CreateCluster", CLUSTER),
    Call::new("describe it", "ecs:DescribeClusters", CLUSTER),
    Call::new("list the clusters", "ecs:ListClusters", "*"),
    Call::new("delete it", "ecs:DeleteCluster", CLUSTER),
    Call::new("tag it", "ecs:TagResource", CLUSTER),
    Call::new("turn Container Insights on", "ecs:UpdateClusterSettings", CLUSTER),
    Call::new("create the service", "ecs:CreateService", SERVICE_ARN),
    Call::new("describe it", "ecs:DescribeServices", SERVICE_ARN),
    Call::new("update it", "ecs:UpdateService", SERVICE_ARN),
    Call::new("delete it", "ecs:DeleteService", SERVICE_ARN),
    Call::new("list its deployments", "ecs:ListServiceDeployments", SERVICE_ARN),
    Call::new("describe a deployment", "ecs:DescribeServiceDeployments", SERVICE_DEPLOYMENT),
    Call::new("answer its pause hook", "ecs:ContinueServiceDeployment", SERVICE_DEPLOYMENT),
    Call::new("roll it back", "ecs:StopServiceDeployment", SERVICE_DEPLOYMENT),
    Call::new("register a tagged task definition", "ecs:RegisterTaskDefinition", "*").with(&[CREATED_TAGGED]),
    Call::new("tag it as it is registered", "ecs:TagResource", "arn:aws:ecs:{region}:{account}:task-definition/{task_family}:3")
        .with(&[("ecs:CreateAction", r#""RegisterTaskDefinition""#)]),
    Call::new("describe a task definition", "ecs:DescribeTaskDefinition", "*"),
    Call::new("list task definitions", "ecs:ListTaskDefinitions", "*"),
    Call::new("deregister a task definition", "ecs:DeregisterTaskDefinition", "*"),
    Call::new(
        "ECS's service-linked role",
        "iam:CreateServiceLinkedRole",
        "arn:aws:iam::{account}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
    )
    .with(&[("iam:AWSServiceName", r#""ecs.amazonaws.com""#)]),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, ErrorKind)] = &[];

fn tags(tag_set: &BTreeMap<String, String>) -> Vec<Tag> {
    super::tags::sdk_tags(tag_set, |k, v| Some(Tag::builder().key(k).value(v).build()))
}

fn tag_map(found: &[Tag]) -> BTreeMap<String, String> {
    super::tags::tag_map(found.iter().map(|t| (t.key(), t.value())))
}

/// What is read of an ACTIVE cluster, and what the region's listing holds of it until the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundCluster {
    arn: Box<str>,
    tags: super::tags::TagList,
    /// Container Insights, as the cluster reports it (none: off).
    insights: Option<Box<str>>,
    /// Running and pending tasks, and active services: a kept service read stands while they do.
    counts: (i32, i32, i32),
}

impl FoundCluster {
    fn of(cluster: &Cluster) -> Self {
        let insights = cluster.settings().iter().find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights));
        Self {
            arn: cluster.cluster_arn().unwrap_or_default().into(),
            tags: cluster.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))).collect(),
            insights: insights.and_then(ClusterSetting::value).map(Into::into),
            counts: (cluster.running_tasks_count, cluster.pending_tasks_count, cluster.active_services_count),
        }
    }
}

/// The ACTIVE cluster of this name, with its tags.
async fn find_cluster(clients: &AwsClients, name: &str) -> CloudResult<Option<FoundCluster>> {
    let found = clients
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeClusters"))?;
    Ok(found.clusters().iter().find(|c| c.status() == Some("ACTIVE")).map(FoundCluster::of))
}

/// What every name the operator gives a cluster starts with: the key of the region's listing.
const LISTED: &str = "blog-";

/// The ACTIVE cluster of this name from the region's listing, or read on its own when the listing
/// does not hold it (made since, or changed by the operator since).
async fn observe_cluster(clients: &AwsClients, name: &str) -> CloudResult<Option<FoundCluster>> {
    if name.starts_with(LISTED) {
        let listed = clients.inventories.clusters.get(LISTED, name, || list_clusters(clients.clone())).await;
        if listed.is_some() {
            return Ok(listed);
        }
    }
    find_cluster(clients, name).await
}

/// The region's ACTIVE clusters named `blog-…` with their tags and settings, by name: their ARNs in
/// pages of 100 (`ListClusters`), described 100 at a time.
async fn list_clusters(clients: AwsClients) -> CloudResult<HashMap<String, FoundCluster>> {
    let mut arns = Vec::new();
    let mut pages = clients.ecs.list_clusters().max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(map_sdk(SERVICE, "ListClusters"))?;
        let ours = |arn: &&String| arn.rsplit_once("cluster/").is_some_and(|(_, name)| name.starts_with(LISTED));
        arns.extend(page.cluster_arns().iter().filter(ours).cloned());
    }
    let mut clusters = HashMap::new();
    for batch in arns.chunks(100) {
        let found = clients
            .ecs
            .describe_clusters()
            .set_clusters(Some(batch.to_vec()))
            .include(ClusterField::Tags)
            .include(ClusterField::Settings)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DescribeClusters"))?;
        for cluster in found.clusters().iter().filter(|c| c.status() == Some("ACTIVE")) {
            clusters.insert(cluster.cluster_name().unwrap_or_default().to_owned(), FoundCluster::of(cluster));
        }
    }
    Ok(clusters)
}

/// Makes the cluster exist (an INACTIVE one of the same name is replaced); returns its ARN.
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_cluster(
    clients: &AwsClients,
    owner: &Owner,
    name: &str,
    insights: bool,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<String> {
    let wanted = insights_setting(insights);
    if let Some(cluster) = observe_cluster(clients, name).await? {
        claim(owner, &cluster.tags.to_map(), SERVICE, "DescribeClusters", format!("ECS cluster {name}"))?;
        // A cluster that reports no setting has Container Insights off.
        if cluster.insights.as_deref().unwrap_or(INSIGHTS_OFF) != wanted.value().unwrap_or_default() {
            clients.inventories.clusters.forget(LISTED, name).await;
            clients
                .ecs
                .update_cluster_settings()
                .cluster(name)
                .settings(wanted)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "UpdateClusterSettings"))?;
        }
        return Ok(cluster.arn.into());
    }
    let created = clients
        .ecs
        .create_cluster()
        .cluster_name(name)
        .settings(wanted)
        .set_tags(Some(tags(tag_set)))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateCluster"))?;
    clients.memo.remember_confirmed(&empty_cluster(name));
    Ok(created.cluster().and_then(|c| c.cluster_arn()).unwrap_or_default().to_owned())
}

/// The fact that this process made cluster `name` and has not asked for a service in it since:
/// it has none, and the service is made without a look first.
fn empty_cluster(name: &str) -> String {
    format!("empty ECS cluster {name}")
}

const INSIGHTS_OFF: &str = "disabled";

fn insights_setting(on: bool) -> ClusterSetting {
    let value = if on { "enabled" } else { INSIGHTS_OFF };
    ClusterSetting::builder().name(ClusterSettingName::ContainerInsights).value(value).build()
}

/// The X-Ray daemon's container, beside the blog when tracing is on.
pub const XRAY_CONTAINER: &str = "xray-daemon";
/// AWS's X-Ray daemon image, from the Amazon ECR Public Gallery (no pull permission needed).
pub const XRAY_IMAGE: &str = "public.ecr.aws/xray/aws-xray-daemon:3.x";

/// The ARNs a task definition refers to.
pub struct TaskRoles<'a> {
    pub execution_role_arn: &'a str,
    pub task_role_arn: &'a str,
    pub log_group: &'a str,
}

fn environment_of(definition: &TaskDefinition) -> BTreeMap<String, String> {
    definition
        .container_definitions()
        .first()
        .map(|c| {
            c.environment().iter().filter_map(|kv| Some((kv.name()?.to_owned(), kv.value()?.to_owned()))).collect()
        })
        .unwrap_or_default()
}

/// The variables ECS fills from Secrets Manager, by name and secret ARN (never the values).
fn secrets_of(container: &DesiredContainer) -> CloudResult<Vec<Secret>> {
    container
        .secrets
        .iter()
        .map(|(name, arn)| {
            Secret::builder()
                .name(name)
                .value_from(arn)
                .build()
                .map_err(|e| CloudError::local(SERVICE, "RegisterTaskDefinition", ErrorKind::Other, e.to_string()))
        })
        .collect()
}

fn secrets_in(definition: &TaskDefinition) -> BTreeMap<String, String> {
    let first = definition.container_definitions().first();
    first
        .map(|c| c.secrets().iter().map(|s| (s.name().to_owned(), s.value_from().to_owned())).collect())
        .unwrap_or_default()
}

/// The tasks' platform: Linux on the spec's architecture (without it, Fargate runs x86_64).
fn runtime_platform(architecture: Architecture) -> RuntimePlatform {
    let cpu = match architecture {
        Architecture::Arm64 => CpuArchitecture::Arm64,
        Architecture::X86_64 => CpuArchitecture::X8664,
    };
    RuntimePlatform::builder().cpu_architecture(cpu).operating_system_family(OsFamily::Linux).build()
}

/// Whether a registered task definition is exactly what `container` asks for.
fn matches(definition: &TaskDefinition, container: &DesiredContainer, roles: &TaskRoles<'_>) -> bool {
    let first = definition.container_definitions().first();
    definition.cpu() == Some(container.cpu.to_string().as_str())
        && definition.memory() == Some(container.memory_mib.to_string().as_str())
        && definition.execution_role_arn() == Some(roles.execution_role_arn)
        && definition.task_role_arn() == Some(roles.task_role_arn)
        && first.and_then(ContainerDefinition::image) == Some(container.image.as_str())
        && first.and_then(|c| c.port_mappings().first()).and_then(PortMapping::container_port) == Some(container.port)
        && environment_of(definition) == container.environment
        && secrets_in(definition) == container.secrets
        && definition.container_definitions().iter().any(|c| c.name() == Some(XRAY_CONTAINER)) == container.tracing
        && definition.runtime_platform().and_then(RuntimePlatform::cpu_architecture)
            == runtime_platform(container.architecture).cpu_architecture()
}

/// Returns the ARN of a task definition that matches `container`: the first of `known` (the
/// service's, a held-back one) that does, otherwise a newly registered revision of `family`.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_task_definition(
    clients: &AwsClients,
    family: &str,
    known: &[&str],
    container: &DesiredContainer,
    roles: &TaskRoles<'_>,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<String> {
    // A revision never changes: once seen to match or not, it is not read again. It is compared
    // with what goes into one (not the whole container: its rollout carries times).
    let c = container;
    let wanted = super::inventory::fingerprint(&(
        (&clients.region, &c.image, format!("{:?}", c.architecture), c.cpu, c.memory_mib, c.port),
        (&c.health_check_path, &c.environment, &c.secrets, c.tracing),
        (roles.execution_role_arn, roles.task_role_arn, roles.log_group),
    ));
    let fact = |arn: &str, matching: bool| format!("task definition {arn} matches {wanted:x}: {matching}");
    for arn in known {
        if clients.memo.confirmed(&fact(arn, false)) {
            continue;
        }
        if clients.memo.confirmed(&fact(arn, true)) {
            return Ok((*arn).to_owned());
        }
        let found = clients
            .ecs
            .describe_task_definition()
            .task_definition(*arn)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DescribeTaskDefinition"))?;
        let matching = found.task_definition().is_some_and(|d| matches(d, container, roles));
        clients.memo.remember_confirmed(&fact(arn, matching));
        if matching {
            return Ok((*arn).to_owned());
        }
    }
    let definitions = container_definitions(&clients.region, container, roles)?;
    let registered = clients
        .ecs
        .register_task_definition()
        .family(family)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .runtime_platform(runtime_platform(container.architecture))
        .cpu(container.cpu.to_string())
        .memory(container.memory_mib.to_string())
        .execution_role_arn(roles.execution_role_arn)
        .task_role_arn(roles.task_role_arn)
        .set_container_definitions(Some(definitions))
        .set_tags(Some(tags(tag_set)))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "RegisterTaskDefinition"))?;
    Ok(registered.task_definition().and_then(|d| d.task_definition_arn()).unwrap_or_default().to_owned())
}

/// The blog's container, and the X-Ray daemon beside it when tracing is on; both log to the
/// variant's log group.
fn container_definitions(
    region: &str,
    container: &DesiredContainer,
    roles: &TaskRoles<'_>,
) -> CloudResult<Vec<ContainerDefinition>> {
    let log = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", roles.log_group)
        .options("awslogs-region", region)
        .options("awslogs-stream-prefix", CONTAINER_NAME)
        .build()
        .map_err(|e| CloudError::local(SERVICE, "RegisterTaskDefinition", ErrorKind::Other, e.to_string()))?;
    let environment = container.environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build());
    let blog = ContainerDefinition::builder()
        .name(CONTAINER_NAME)
        .image(&container.image)
        .essential(true)
        .port_mappings(PortMapping::builder().container_port(container.port).protocol(TransportProtocol::Tcp).build())
        .set_environment(Some(environment.collect()))
        .set_secrets(Some(secrets_of(container)?))
        .log_configuration(log.clone())
        .build();
    let daemon = container.tracing.then(|| {
        ContainerDefinition::builder()
            .name(XRAY_CONTAINER)
            .image(XRAY_IMAGE)
            .essential(false)
            .cpu(32)
            .memory_reservation(256)
            .port_mappings(PortMapping::builder().container_port(2000).protocol(TransportProtocol::Udp).build())
            .log_configuration(log)
            .build()
    });
    Ok(std::iter::once(blog).chain(daemon).collect())
}

/// How the service stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceObserved {
    pub arn: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    /// The primary deployment's rollout state (`COMPLETED`, `IN_PROGRESS`, `FAILED`).
    pub rollout: String,
    /// Its deployment strategy: `ROLLING`, `CANARY`, `LINEAR` or `BLUE_GREEN`.
    pub strategy: String,
}

/// The service as last read while it stood still (no deployment in progress) if its cluster's task counts in the region's listing are still those of then and the read is
/// not a deep period old; else [`find_service`]. Only the operator updates the service, and it
/// forgets what it kept when it does; a task that stops or starts changes the cluster's counts.
///
/// # Errors
/// The AWS failure.
pub async fn observe_service(
    clients: &AwsClients,
    owner: &Owner,
    cluster: &str,
    name: &str,
) -> CloudResult<Option<ServiceObserved>> {
    if clients.memo.confirmed(&empty_cluster(cluster)) {
        return Ok(None);
    }
    let listed = clients.inventories.clusters.get(LISTED, cluster, || list_clusters(clients.clone())).await;
    let counts = listed.map(|c| c.counts);
    let resource = format!("service {cluster}/{name}");
    if let Some(kept) = counts.and_then(|counts| clients.inventories.services.kept(&resource, &counts)) {
        return Ok(Some(kept));
    }
    let found = find_service(clients, owner, cluster, name).await?;
    match (&found, counts) {
        (Some(service), Some(counts)) if service.stands_still() => {
            clients.inventories.services.keep(&resource, &counts, service.clone());
        }
        _ => clients.inventories.services.forget(&resource),
    }
    Ok(found)
}

impl ServiceObserved {
    /// No deployment in progress: nothing moves until someone changes the service or a task stops
    /// or starts, which changes its cluster's counts. (An emulator that never starts tasks keeps
    /// fewer running than desired for good; so does a kept read of it.)
    fn stands_still(&self) -> bool {
        self.rollout != "IN_PROGRESS"
    }
}

/// Drops the service as kept by [`observe_service`]: the operator is about to change it.
fn forget_service(clients: &AwsClients, cluster: &str, name: &str) {
    clients.inventories.services.forget(&format!("service {cluster}/{name}"));
}

/// The service, if it exists and is not INACTIVE; `Invalid` when it is someone else's.
///
/// # Errors
/// The AWS failure.
pub async fn find_service(
    clients: &AwsClients,
    owner: &Owner,
    cluster: &str,
    name: &str,
) -> CloudResult<Option<ServiceObserved>> {
    let found = clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeServices"));
    let Some(found) = super::found(found)? else { return Ok(None) };
    let Some(service) = found.services().iter().find(|s| s.status() != Some("INACTIVE")) else { return Ok(None) };
    claim(owner, &tag_map(service.tags()), SERVICE, "DescribeServices", format!("ECS service {name}"))?;
    let primary = service.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
    Ok(Some(ServiceObserved {
        arn: service.service_arn().unwrap_or_default().to_owned(),
        task_definition: service.task_definition().unwrap_or_default().to_owned(),
        desired_count: service.desired_count(),
        running_count: service.running_count(),
        rollout: primary
            .and_then(|d| d.rollout_state())
            .map_or_else(|| "UNKNOWN".to_owned(), |r| r.as_str().to_owned()),
        strategy: strategy_of(service.deployment_configuration()),
    }))
}

fn strategy_of(config: Option<&DeploymentConfiguration>) -> String {
    config.and_then(DeploymentConfiguration::strategy).map_or("ROLLING", DeploymentStrategy::as_str).to_owned()
}

/// Where the service runs, whom it serves and how a new revision reaches them.
pub struct ServicePlacement<'a> {
    pub subnets: &'a [String],
    pub security_group: &'a str,
    pub target_group_arn: &'a str,
    /// A progressive rollout: ECS's strategy and the second target group, production rule and
    /// infrastructure role it shifts traffic with; none: the rolling deployment.
    pub progressive: Option<(&'a EcsStrategy, Advanced<'a>)>,
}

/// What ECS needs to shift traffic between two target groups.
#[derive(Debug, Clone, Copy)]
pub struct Advanced<'a> {
    pub alternate_target_group_arn: &'a str,
    pub production_rule_arn: &'a str,
    pub role_arn: &'a str,
}

impl ServicePlacement<'_> {
    fn strategy(&self) -> &'static str {
        self.progressive.as_ref().map_or("ROLLING", |(strategy, _)| strategy.name)
    }

    fn load_balancer(&self, port: i32) -> LoadBalancer {
        let advanced = self.progressive.as_ref().map(|(_, a)| {
            AdvancedConfiguration::builder()
                .alternate_target_group_arn(a.alternate_target_group_arn)
                .production_listener_rule(a.production_rule_arn)
                .role_arn(a.role_arn)
                .build()
        });
        LoadBalancer::builder()
            .target_group_arn(self.target_group_arn)
            .container_name(CONTAINER_NAME)
            .container_port(port)
            .set_advanced_configuration(advanced)
            .build()
    }

    fn deployment_configuration(&self) -> DeploymentConfiguration {
        match &self.progressive {
            None => deployment_configuration(),
            Some((strategy, _)) => progressive_configuration(strategy),
        }
    }
}

/// Only the region's default VPC (no VPC named) gets public task IPs: its subnets are public with
/// no NAT, so tasks need one to pull their image. A VPC the spec or the platform names has its own
/// route out (a NAT or endpoints), so internal-only blogs have no public task addresses.
fn public_ip(container: &DesiredContainer) -> AssignPublicIp {
    if container.vpc_id.is_none() { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled }
}

/// Makes the service run `task_definition` with the desired count: created when missing, updated
/// only when one of the two differs.
///
/// # Errors
/// The AWS failure.
#[allow(clippy::too_many_arguments)]
pub async fn ensure_service(
    clients: &AwsClients,
    cluster: &str,
    name: &str,
    existing: Option<&ServiceObserved>,
    task_definition: &str,
    container: &DesiredContainer,
    placement: &ServicePlacement<'_>,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<ServiceObserved> {
    let Some(service) = existing else {
        return create_service(clients, cluster, name, task_definition, container, placement, tag_set).await;
    };
    // With autoscaling on, Application Auto Scaling owns the count: only the task definition is
    // the operator's to change.
    let count = if container.scaling.is_some() { service.desired_count } else { container.desired_count };
    let restrategized = service.strategy != placement.strategy();
    if service.task_definition == task_definition && service.desired_count == count && !restrategized {
        return Ok(service.clone());
    }
    forget_service(clients, cluster, name);
    // The strategy and its load balancer settings are sent only when they change.
    let (config, balancer) = match restrategized {
        true => (Some(placement.deployment_configuration()), Some(vec![placement.load_balancer(container.port)])),
        false => (None, None),
    };
    let updated = clients
        .ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .task_definition(task_definition)
        .desired_count(count)
        .set_deployment_configuration(config)
        .set_load_balancers(balancer)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "UpdateService"))?;
    Ok(ServiceObserved {
        task_definition: task_definition.to_owned(),
        desired_count: count,
        arn: updated.service().and_then(|s| s.service_arn()).unwrap_or(&service.arn).to_owned(),
        running_count: service.running_count,
        rollout: "IN_PROGRESS".to_owned(),
        strategy: placement.strategy().to_owned(),
    })
}

async fn create_service(
    clients: &AwsClients,
    cluster: &str,
    name: &str,
    task_definition: &str,
    container: &DesiredContainer,
    placement: &ServicePlacement<'_>,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<ServiceObserved> {
    // From here on the cluster may hold the service (an answer lost after ECS acted): look first.
    clients.memo.forget_confirmed(&empty_cluster(cluster));
    let network = AwsVpcConfiguration::builder()
        .set_subnets(Some(placement.subnets.to_vec()))
        .security_groups(placement.security_group)
        .assign_public_ip(public_ip(container))
        .build()
        .map_err(|e| CloudError::local(SERVICE, "CreateService", ErrorKind::Other, e.to_string()))?;
    let created = clients
        .ecs
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(task_definition)
        .desired_count(container.desired_count)
        .launch_type(LaunchType::Fargate)
        .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(network).build())
        .load_balancers(placement.load_balancer(container.port))
        .deployment_configuration(placement.deployment_configuration())
        .health_check_grace_period_seconds(60)
        .set_tags(Some(tags(tag_set)))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateService"))
        .map_err(|err| super::lost_create_race(name_taken(err)))?;
    Ok(ServiceObserved {
        arn: created.service().and_then(|s| s.service_arn()).unwrap_or_default().to_owned(),
        task_definition: task_definition.to_owned(),
        desired_count: container.desired_count,
        running_count: 0,
        rollout: "IN_PROGRESS".to_owned(),
        strategy: placement.strategy().to_owned(),
    })
}

/// ECS says a service name is taken as `InvalidParameterException: Creation of service was not
/// idempotent.` (an earlier create whose answer was lost made it): the lookup finds it next time.
fn name_taken(err: CloudError) -> CloudError {
    if err.code == "InvalidParameterException" && err.message.contains("not idempotent") {
        CloudError { kind: ErrorKind::AlreadyExists, ..err }
    } else {
        err
    }
}

/// Rolling deployments with the circuit breaker on: a revision whose tasks keep failing is rolled
/// back to the last working one.
#[must_use]
pub fn deployment_configuration() -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(true).rollback(true).build())
        .minimum_healthy_percent(100)
        .maximum_percent(200)
        .build()
}

/// ECS's canary, linear or blue/green deployment of `strategy`, with a PAUSE hook before every
/// production traffic shift: the operator answers it after its analysis, and a hook nobody
/// answers for a day rolls the deployment back.
#[must_use]
pub fn progressive_configuration(strategy: &EcsStrategy) -> DeploymentConfiguration {
    let hook = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::PreProductionTrafficShift)
        .timeout_configuration(
            DeploymentLifecycleHookTimeoutConfiguration::builder()
                .timeout_in_minutes(1440)
                .action(DeploymentLifecycleHookAction::Rollback)
                .build(),
        )
        .build();
    let builder = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::from(strategy.name))
        .bake_time_in_minutes(strategy.bake_minutes)
        .lifecycle_hooks(hook)
        .minimum_healthy_percent(100)
        .maximum_percent(200);
    match strategy.name {
        "CANARY" => builder.canary_configuration(
            CanaryConfiguration::builder()
                .canary_percent(strategy.percent)
                .canary_bake_time_in_minutes(strategy.step_bake_minutes)
                .build(),
        ),
        "LINEAR" => builder.linear_configuration(
            LinearConfiguration::builder()
                .step_percent(strategy.percent)
                .step_bake_time_in_minutes(strategy.step_bake_minutes)
                .build(),
        ),
        _ => builder,
    }
    .build()
}

/// The service's newest deployment as ECS reports it: described in full (stage, hook, weights)
/// while it is still moving.
///
/// # Errors
/// The AWS failure.
pub async fn latest_deployment(clients: &AwsClients, cluster: &str, service: &str) -> CloudResult<Option<Deployment>> {
    let listed = clients
        .ecs
        .list_service_deployments()
        .cluster(cluster)
        .service(service)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ListServiceDeployments"))?;
    let newest = listed.service_deployments().iter().max_by_key(|d| d.created_at().map(|t| (t.secs(), t.subsec_nanos())));
    let Some(newest) = newest else { return Ok(None) };
    let brief = Deployment {
        arn: newest.service_deployment_arn().unwrap_or_default().to_owned(),
        status: newest.status().map_or("", |s| s.as_str()).to_owned(),
        stage: String::new(),
        awaiting: None,
        weight: 0,
        reason: newest.status_reason().unwrap_or_default().to_owned(),
    };
    if !brief.in_flight() {
        return Ok(Some(brief));
    }
    let described = clients
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(&brief.arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeServiceDeployments"))?;
    Ok(Some(described.service_deployments().first().map_or(brief, deployment_of)))
}

fn deployment_of(found: &ServiceDeployment) -> Deployment {
    let awaiting = found.lifecycle_hook_details().iter().find(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction));
    let weight = found.target_service_revision().and_then(|r| r.requested_production_traffic_weight()).unwrap_or(0.0);
    Deployment {
        arn: found.service_deployment_arn().unwrap_or_default().to_owned(),
        status: found.status().map_or("", |s| s.as_str()).to_owned(),
        stage: found.lifecycle_stage().map_or("", |s| s.as_str()).to_owned(),
        awaiting: awaiting.and_then(|h| h.hook_id()).map(str::to_owned),
        #[allow(clippy::cast_possible_truncation)] // a percentage
        weight: weight.round() as i32,
        reason: found.status_reason().unwrap_or_default().to_owned(),
    }
}

/// Sends the operator's answer to the deployment `arn`.
///
/// # Errors
/// The AWS failure.
pub async fn answer(clients: &AwsClients, arn: &str, answer: &Answer) -> CloudResult<()> {
    let continued = |hook: &str, action| {
        clients.ecs.continue_service_deployment().service_deployment_arn(arn).hook_id(hook).action(action).send()
    };
    match answer {
        Answer::Continue(hook) => continued(hook, DeploymentLifecycleHookAction::Continue)
            .await
            .map(|_| ())
            .map_err(map_sdk(SERVICE, "ContinueServiceDeployment")),
        Answer::Rollback(Some(hook)) => continued(hook, DeploymentLifecycleHookAction::Rollback)
            .await
            .map(|_| ())
            .map_err(map_sdk(SERVICE, "ContinueServiceDeployment")),
        Answer::Rollback(None) => clients
            .ecs
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(StopServiceDeploymentStopType::Rollback)
            .send()
            .await
            .map(|_| ())
            .map_err(map_sdk(SERVICE, "StopServiceDeployment")),
    }
}

/// Deletes the service (forced: it need not be scaled to zero first) if it is ours.
///
/// # Errors
/// The AWS failure.
pub async fn delete_service(clients: &AwsClients, owner: &Owner, cluster: &str, name: &str) -> CloudResult<()> {
    match find_service(clients, owner, cluster, name).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(()),
        // Someone else's service of that name: leave it.
        Err(err) if err.is_not_owned() => return Ok(()),
        Err(err) => return Err(err),
    }
    forget_service(clients, cluster, name);
    gone_is_done(
        clients
            .ecs
            .delete_service()
            .cluster(cluster)
            .service(name)
            .force(true)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DeleteService")),
    )
}

/// Deregisters every active revision of the family.
///
/// # Errors
/// The AWS failure.
pub async fn deregister_task_definitions(clients: &AwsClients, family: &str) -> CloudResult<()> {
    let listed = clients
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ListTaskDefinitions"))?;
    for arn in listed.task_definition_arns() {
        // The prefix also matches longer family names: keep to ours exactly.
        if arn.rsplit('/').next().and_then(|f| f.rsplit_once(':')).is_some_and(|(f, _)| f == family) {
            gone_is_done(
                clients
                    .ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(map_sdk(SERVICE, "DeregisterTaskDefinition")),
            )?;
        }
    }
    Ok(())
}

/// Deletes the cluster if it is ours; a cluster that still holds a draining service is retried.
///
/// # Errors
/// The AWS failure.
pub async fn delete_cluster(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    let Some(cluster) = find_cluster(clients, name).await? else { return Ok(()) };
    if !cluster.tags.owned_by(owner) {
        tracing::warn!(cluster = name, "not deleting an ECS cluster this BlogDeployment does not own");
        return Ok(());
    }
    match clients.ecs.delete_cluster().cluster(name).send().await.map_err(map_sdk(SERVICE, "DeleteCluster")) {
        Err(err) if err.code.starts_with("ClusterContains") => Err(CloudError { kind: ErrorKind::Transient, ..err }),
        other => gone_is_done(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_name_taken_by_a_lost_create_is_retried() {
        let taken = CloudError {
            service: SERVICE,
            operation: "CreateService",
            kind: ErrorKind::Invalid,
            code: "InvalidParameterException".into(),
            message: "Creation of service was not idempotent.".into(),
        };
        assert!(super::super::lost_create_race(name_taken(taken.clone())).is_retryable());
        let other = CloudError { message: "subnet-1 is not valid".into(), ..taken };
        assert!(!super::super::lost_create_race(name_taken(other)).is_retryable());
    }

    #[test]
    fn deployments_roll_back_on_failure() {
        // The emulator ignores deploymentConfiguration, so this is checked here, on the request.
        let config = deployment_configuration();
        let breaker = config.deployment_circuit_breaker().expect("circuit breaker");
        assert!(breaker.enable() && breaker.rollback());
        assert_eq!((config.minimum_healthy_percent(), config.maximum_percent()), (Some(100), Some(200)));
    }
}
