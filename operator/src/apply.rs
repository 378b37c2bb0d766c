//! The apply step: brings AWS to the desired state, one idempotent `ensure_*` after another, and
//! says what it observed; and cleanup, which removes everything in dependency order.
//!
//! Every step may run twice or be cut off halfway: each looks its resource up by name (and checks
//! the ownership tags) before creating it, and a delete answered NotFound is done.

use crate::cloud::ec2::{IngressRule, Source};
use crate::cloud::{self, AwsClients, CloudError, CloudResult, ErrorKind};
use crate::crd::{ContainerTasks, DeletionPolicy, ResourceIds};
use crate::desired::{self, Desired, DesiredContainer, Names, Owner};
use crate::status::PartState;

/// When the container variant counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContainerReadiness {
    /// Every desired task runs and the rollout is COMPLETED (what real AWS reaches).
    Running,
    /// The service, load balancer and listener exist as desired, whatever runs; for emulators,
    /// which never start tasks. The message still reports running/desired.
    Provisioned,
}

/// What one apply saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub table: PartState,
    pub function: PartState,
    pub container: PartState,
    pub function_url: Option<String>,
    pub container_url: Option<String>,
    pub container_tasks: Option<ContainerTasks>,
    pub resources: ResourceIds,
}

/// Which part of the deployment an AWS service belongs to, for the condition a failure lands on.
#[must_use]
pub fn part_of(error: &CloudError) -> Part {
    match error.service {
        "dynamodb" => Part::Table,
        "ecs" | "elasticloadbalancing" | "ec2" => Part::Container,
        _ => Part::Function,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Table,
    Function,
    Container,
}

/// A condition reason for a failure a person must act on.
#[must_use]
pub fn failure_reason(error: &CloudError) -> &'static str {
    match error.kind {
        ErrorKind::AccessDenied => "AccessDenied",
        ErrorKind::Invalid => "InvalidRequest",
        ErrorKind::NotFound | ErrorKind::AlreadyExists | ErrorKind::Transient | ErrorKind::Other => "AwsError",
    }
}

/// Brings the table and the enabled variants to `desired`, removing disabled variants.
///
/// # Errors
/// The first AWS failure; the caller decides between retry and a condition.
pub async fn apply(clients: &AwsClients, desired: &Desired, readiness: ContainerReadiness) -> CloudResult<Applied> {
    let owner = &desired.owner;
    let mut resources = ResourceIds::default();

    let table = cloud::dynamodb::ensure_table(clients, owner, &desired.table, &desired.tags).await?;
    resources.table_arn = Some(table.arn.clone());
    // The account every ARN below is built with: the table's.
    let account = desired::account_of(&table.arn)
        .ok_or_else(|| CloudError::local("dynamodb", "DescribeTable", ErrorKind::Other, "table ARN has no account"))?
        .to_owned();
    let table_state = if table.status == "ACTIVE" {
        PartState::ready("Active", format!("table {} is ACTIVE", desired.table.name))
    } else {
        PartState::not_ready("Creating", format!("table {} is {}", desired.table.name, table.status))
    };

    let (function_state, function_url) = match &desired.function {
        Some(function) => {
            let (state, url) = apply_function(clients, desired, function, &table.arn, &account, &mut resources).await?;
            (state, url)
        }
        None => {
            remove_function(clients, owner, &desired.names).await?;
            (PartState::ready("Disabled", "the function variant is disabled"), None)
        }
    };

    let (container_state, container_url, container_tasks) = match &desired.container {
        Some(container) => {
            apply_container(clients, desired, container, &table.arn, &account, readiness, &mut resources).await?
        }
        None => {
            remove_container(clients, owner, &desired.names).await?;
            (PartState::ready("Disabled", "the container variant is disabled"), None, None)
        }
    };

    Ok(Applied {
        table: table_state,
        function: function_state,
        container: container_state,
        function_url,
        container_url,
        container_tasks,
        resources,
    })
}

async fn apply_function(
    clients: &AwsClients,
    desired: &Desired,
    function: &desired::DesiredFunction,
    table_arn: &str,
    account: &str,
    resources: &mut ResourceIds,
) -> CloudResult<(PartState, Option<String>)> {
    let owner = &desired.owner;
    cloud::logs::ensure_log_group(clients, &function.log_group, desired::LOG_RETENTION_DAYS, &desired.tags).await?;
    let log_group_arn = desired::log_group_arn(&desired.region, account, &function.log_group);
    let trust = desired::trust_policy("lambda.amazonaws.com");
    let policy = desired::function_policy(table_arn, &log_group_arn);
    let boundary = desired.role_permissions_boundary.as_deref();
    let role = cloud::iam::DesiredRole { name: &function.role_name, trust: &trust, policy: &policy, boundary };
    let role_arn = cloud::iam::ensure_role(clients, owner, &role, &desired.tags).await?;

    let observed = cloud::lambda::ensure_function(clients, owner, function, &role_arn, &desired.tags).await?;
    resources.function_arn = Some(observed.arn.clone());
    cloud::lambda::ensure_reserved_concurrency(clients, &function.name, function.reserved_concurrency).await?;
    let alias_arn = cloud::lambda::alias_arn(&observed.arn);
    let api = cloud::apigateway::ensure_api(clients, owner, &function.api_name, &alias_arn, &desired.tags).await?;
    resources.api_id = Some(api.id.clone());
    let url = Some(api.endpoint.clone()).filter(|e| !e.is_empty());

    // Only a fully applied $LATEST is published; until then the alias keeps serving the last version.
    let state = match observed.state {
        cloud::lambda::FunctionState::Pending(why) => return Ok((PartState::not_ready("Progressing", why), url)),
        cloud::lambda::FunctionState::Failed(why) => return Ok((PartState::not_ready("FunctionFailed", why), url)),
        cloud::lambda::FunctionState::Active => {
            let fingerprint = cloud::lambda::fingerprint(function, &role_arn);
            let version = cloud::lambda::ensure_alias(clients, &function.name, &fingerprint).await?;
            let source_arn = desired::api_source_arn(&desired.region, account, &api.id);
            cloud::lambda::ensure_invoke_permission(clients, &function.name, &source_arn).await?;
            let provisioned = cloud::lambda::ensure_provisioned_concurrency(
                clients,
                &function.name,
                function.provisioned_concurrency,
            )
            .await?;
            function_state(&api.endpoint, &version, &provisioned)
        }
    };
    Ok((state, url))
}

/// The function variant's condition once `$LATEST` is Active: ready unless provisioned
/// concurrency is still being allocated or failed.
fn function_state(endpoint: &str, version: &str, provisioned: &cloud::lambda::Provisioned) -> PartState {
    use cloud::lambda::{ALIAS, Provisioned};
    let serving = format!("serving at {endpoint} (alias {ALIAS} = version {version})");
    match provisioned {
        Provisioned::Off => PartState::ready("Available", serving),
        Provisioned::Ready(n) => {
            PartState::ready("Available", format!("{serving}; {n} provisioned environments ready"))
        }
        Provisioned::Allocating(n) => {
            PartState::not_ready("Progressing", format!("{serving}; allocating {n} provisioned environments"))
        }
        Provisioned::Failed(why) => {
            PartState::not_ready("ProvisionedConcurrencyFailed", format!("{serving}; provisioned concurrency: {why}"))
        }
    }
}

/// The VPC and at least two subnets in distinct zones: the spec's, or the region's default VPC.
async fn network(clients: &AwsClients, container: &DesiredContainer) -> CloudResult<(String, Vec<String>)> {
    let invalid = |message: String| CloudError::local("ec2", "DescribeSubnets", ErrorKind::Invalid, message);
    let (vpc, subnets) = match &container.vpc_id {
        Some(vpc) if !container.subnet_ids.is_empty() => return Ok((vpc.clone(), container.subnet_ids.clone())),
        Some(vpc) => (vpc.clone(), clients.ec2.subnets(&clients.region, vpc, false).await?),
        None => {
            let vpc = clients.ec2.default_vpc(&clients.region).await?.ok_or_else(|| {
                invalid(format!("region {} has no default VPC: set spec.container.network", clients.region))
            })?;
            let subnets = clients.ec2.subnets(&clients.region, &vpc, true).await?;
            (vpc, subnets)
        }
    };
    // One subnet per zone, so the ALB spans distinct zones.
    let mut zones = std::collections::BTreeSet::new();
    let chosen: Vec<String> = subnets.into_iter().filter(|s| zones.insert(s.zone.clone())).map(|s| s.id).collect();
    if chosen.len() < 2 {
        return Err(invalid(format!("VPC {vpc} needs subnets in at least two availability zones for a load balancer")));
    }
    Ok((vpc, chosen))
}

async fn apply_container(
    clients: &AwsClients,
    desired: &Desired,
    container: &DesiredContainer,
    table_arn: &str,
    account: &str,
    readiness: ContainerReadiness,
    resources: &mut ResourceIds,
) -> CloudResult<(PartState, Option<String>, Option<ContainerTasks>)> {
    let owner = &desired.owner;
    let names = &desired.names;
    let tags = &desired.tags;

    cloud::logs::ensure_log_group(clients, &names.container_log_group, desired::LOG_RETENTION_DAYS, tags).await?;
    let log_group_arn = desired::log_group_arn(&desired.region, account, &names.container_log_group);
    let trust = desired::trust_policy("ecs-tasks.amazonaws.com");
    let execution_policy = desired::execution_policy(&log_group_arn, &container.image);
    let task_policy = desired::task_policy(table_arn);
    let boundary = desired.role_permissions_boundary.as_deref();
    let execution_role =
        cloud::iam::DesiredRole { name: &names.execution_role, trust: &trust, policy: &execution_policy, boundary };
    let task_role = cloud::iam::DesiredRole { name: &names.task_role, trust: &trust, policy: &task_policy, boundary };
    let execution_role_arn = cloud::iam::ensure_role(clients, owner, &execution_role, tags).await?;
    let task_role_arn = cloud::iam::ensure_role(clients, owner, &task_role, tags).await?;

    let (vpc, subnets) = network(clients, container).await?;
    let anywhere = vec![IngressRule { port: desired::LISTENER_PORT, source: Source::Cidr("0.0.0.0/0".to_owned()) }];
    let lb_group = clients
        .ec2
        .ensure_security_group(&clients.region, owner, &vpc, &names.lb_security_group, &anywhere, tags)
        .await?;
    let from_lb = vec![IngressRule { port: container.port, source: Source::Group(lb_group.clone()) }];
    let task_group = clients
        .ec2
        .ensure_security_group(&clients.region, owner, &vpc, &names.task_security_group, &from_lb, tags)
        .await?;

    let target_group =
        cloud::elb::ensure_target_group(clients, owner, &names.target_group, &vpc, &container.health_check_path, tags)
            .await?;
    resources.target_group_arn = Some(target_group.clone());
    let balancer =
        cloud::elb::ensure_load_balancer(clients, owner, &names.load_balancer, &subnets, &lb_group, tags).await?;
    resources.load_balancer_arn = Some(balancer.arn.clone());
    cloud::elb::ensure_listener(clients, &balancer.arn, &target_group).await?;

    let cluster = cloud::ecs::ensure_cluster(clients, owner, &names.cluster, tags).await?;
    resources.cluster_arn = Some(cluster);
    let existing = cloud::ecs::find_service(clients, owner, &names.cluster, &names.service).await?;
    let roles = cloud::ecs::TaskRoles {
        execution_role_arn: &execution_role_arn,
        task_role_arn: &task_role_arn,
        log_group: &names.container_log_group,
    };
    let current = existing.as_ref().map(|s| s.task_definition.as_str());
    let task_definition =
        cloud::ecs::ensure_task_definition(clients, &names.task_family, current, container, &roles, tags).await?;
    resources.task_definition_arn = Some(task_definition.clone());
    let placement = cloud::ecs::ServicePlacement {
        subnets: &subnets,
        security_group: &task_group,
        target_group_arn: &target_group,
    };
    let service = cloud::ecs::ensure_service(
        clients,
        &names.cluster,
        &names.service,
        existing.as_ref(),
        &task_definition,
        container,
        &placement,
        tags,
    )
    .await?;
    resources.service_arn = Some(service.arn.clone());
    match &container.autoscaling {
        Some(scaling) => {
            let label = cloud::autoscaling::request_label(&balancer.arn, &target_group);
            cloud::autoscaling::ensure_scaling(
                clients,
                &names.cluster,
                &names.service,
                scaling,
                label.as_deref(),
                tags,
            )
            .await?;
        }
        None => cloud::autoscaling::remove_scaling(clients, &names.cluster, &names.service).await?,
    }

    let url = Some(format!("http://{}", balancer.dns_name)).filter(|_| !balancer.dns_name.is_empty());
    let tasks = ContainerTasks {
        desired: service.desired_count,
        running: service.running_count,
        rollout: service.rollout.clone(),
    };
    let counts = format!("{} of {} tasks running, rollout {}", tasks.running, tasks.desired, tasks.rollout);
    let state = if service.rollout == "FAILED" {
        PartState::not_ready("RolloutFailed", format!("the deployment failed and was rolled back; {counts}"))
    } else if balancer.state != "active" && balancer.state != "provisioning" {
        PartState::not_ready("LoadBalancerFailed", format!("load balancer is {}", balancer.state))
    } else {
        match readiness {
            ContainerReadiness::Running if tasks.running >= tasks.desired && tasks.rollout == "COMPLETED" => {
                PartState::ready("Available", format!("serving at {}; {counts}", url.as_deref().unwrap_or("?")))
            }
            ContainerReadiness::Running => PartState::not_ready("Progressing", counts),
            ContainerReadiness::Provisioned => PartState::ready(
                "Provisioned",
                format!("service, load balancer and listener exist (readiness: provisioned); {counts}"),
            ),
        }
    };
    Ok((state, url, Some(tasks)))
}

/// Removes the container variant, dependents first: scaling, service, load balancer (its listener goes with
/// it), target group, task definitions, cluster, security groups, roles, log group.
async fn remove_container(clients: &AwsClients, owner: &Owner, names: &Names) -> CloudResult<()> {
    cloud::autoscaling::remove_scaling(clients, &names.cluster, &names.service).await?;
    cloud::ecs::delete_service(clients, owner, &names.cluster, &names.service).await?;
    cloud::elb::delete_load_balancers(clients, owner, &names.load_balancer).await?;
    cloud::elb::delete_target_group(clients, owner, &names.target_group).await?;
    cloud::ecs::deregister_task_definitions(clients, &names.task_family).await?;
    cloud::ecs::delete_cluster(clients, owner, &names.cluster).await?;
    // The tasks' group refers to the load balancer's: delete it first.
    for group in [&names.task_security_group, &names.lb_security_group] {
        for vpc in clients.ec2.owned_group_vpcs(&clients.region, owner, group).await? {
            clients.ec2.delete_security_group(&clients.region, owner, &vpc, group).await?;
        }
    }
    cloud::iam::delete_role(clients, owner, &names.execution_role).await?;
    cloud::iam::delete_role(clients, owner, &names.task_role).await?;
    cloud::logs::delete_log_group(clients, &names.container_log_group).await
}

/// Removes the function variant: API (its routes, integration and stage go with it), function (its
/// permission goes with it), log group, role.
async fn remove_function(clients: &AwsClients, owner: &Owner, names: &Names) -> CloudResult<()> {
    cloud::apigateway::delete_api(clients, owner, &names.api).await?;
    cloud::lambda::delete_function(clients, owner, &names.function).await?;
    cloud::logs::delete_log_group(clients, &names.function_log_group).await?;
    cloud::iam::delete_role(clients, owner, &names.function_role).await
}

/// Removes everything the owner may have made, whatever the spec says now; the table only when
/// `deletion_policy` is `Delete`.
///
/// # Errors
/// The first AWS failure; cleanup is retried until it succeeds.
pub async fn cleanup(clients: &AwsClients, owner: &Owner, deletion_policy: DeletionPolicy) -> CloudResult<()> {
    let names = Names::for_owner(owner);
    remove_function(clients, owner, &names).await?;
    remove_container(clients, owner, &names).await?;
    if deletion_policy == DeletionPolicy::Delete {
        cloud::dynamodb::delete_table(clients, owner, &names.table).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::lambda::Provisioned;

    #[test]
    fn the_function_is_ready_once_provisioned_concurrency_is() {
        let state = |p: Provisioned| function_state("https://api", "7", &p);
        let off = state(Provisioned::Off);
        assert!(off.ready);
        assert_eq!(off.message, "serving at https://api (alias live = version 7)");
        assert!(state(Provisioned::Ready(5)).ready);
        let allocating = state(Provisioned::Allocating(5));
        assert_eq!((allocating.ready, allocating.reason.as_str()), (false, "Progressing"));
        assert!(allocating.message.ends_with("allocating 5 provisioned environments"));
        let failed = state(Provisioned::Failed("account limit".into()));
        assert_eq!((failed.ready, failed.reason.as_str()), (false, "ProvisionedConcurrencyFailed"));
        assert!(failed.message.ends_with("provisioned concurrency: account limit"));
    }
}
