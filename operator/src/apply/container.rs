//! The container variant's steps: its front door (cluster, security groups, target group, load
//! balancer, listeners), then the image check, log group, roles, service and scaling behind it.

use super::{Removal, Stack};
use crate::cloud::ec2::{IngressRule, Source};
use crate::cloud::elb::Front;
use crate::cloud::{self, AwsClients, CloudError, CloudResult, ErrorKind};
use crate::crd::ContainerTasks;
use crate::desired::DesiredContainer;
use crate::image::Runner;
use blog_core::rollout::container as rollout;

/// Where the load balancer and the tasks sit: the VPC, its subnets and the two security groups.
pub(super) struct Network {
    vpc: String,
    subnets: Vec<String>,
    lb_group: String,
    task_group: String,
}

/// The container variant's two roles: execution (pull, logs) and task (the table).
pub(super) struct TaskRoleArns {
    execution: String,
    task: String,
}

/// The step runs only while the variant is enabled ([`super::Step::wanted`]).
fn wanted(stack: &Stack<'_>) -> CloudResult<DesiredContainer> {
    stack.desired.container.clone().ok_or_else(|| {
        CloudError::local("ecs", "DescribeServices", ErrorKind::Other, "the container variant is not enabled")
    })
}

/// `Desired::roles` gives a role for every enabled variant; this is the error if it ever did not.
pub(super) fn missing_role(which: &str) -> CloudError {
    CloudError::local("iam", "GetRole", ErrorKind::Other, format!("no {which} role in the desired state"))
}

/// The listeners' shape: plain HTTP, or HTTPS with the certificate once ACM issued it.
fn front<'s>(stack: &'s Stack<'_>, container: &'s DesiredContainer) -> Front<'s> {
    Front::of(&container.tls, stack.certificates.container_issued(&container.tls))
}

/// The load balancer's own URL, while its front door stands and its scheme is known.
pub(super) fn url(stack: &Stack<'_>) -> Option<String> {
    let (container, balancer) = (stack.desired.container.as_ref()?, stack.container_door()?);
    let scheme = front(stack, container).scheme()?;
    Some(format!("{scheme}://{}", balancer.dns_name)).filter(|_| !balancer.dns_name.is_empty())
}

/// The task counts ECS reports.
pub(super) fn tasks(service: &cloud::ecs::ServiceObserved) -> ContainerTasks {
    ContainerTasks { desired: service.desired_count, running: service.running_count, rollout: service.rollout.clone() }
}

pub(super) async fn ensure_cluster(stack: &mut Stack<'_>) -> CloudResult<()> {
    let insights = wanted(stack)?.container_insights;
    let (names, owner, tags) = (&stack.desired.names, &stack.desired.owner, &stack.desired.tags);
    let arn = cloud::ecs::ensure_cluster(stack.clients, owner, &names.cluster, insights, tags).await?;
    stack.resources.cluster_arn = Some(arn);
    Ok(())
}

/// After the service and the load balancer, so ECS has let go of it.
pub(super) async fn remove_cluster(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::ecs::delete_cluster(removal.clients, &removal.owner, &removal.names.cluster).await
}

/// The VPC and at least two subnets in distinct zones: the spec's, or the region's default VPC.
async fn network(clients: &AwsClients, container: &DesiredContainer) -> CloudResult<(String, Vec<String>)> {
    let invalid = |message: String| CloudError::local("ec2", "DescribeSubnets", ErrorKind::Invalid, message);
    let (vpc, subnets) = match &container.vpc_id {
        Some(vpc) if !container.subnet_ids.is_empty() => return Ok((vpc.clone(), container.subnet_ids.clone())),
        Some(vpc) => (vpc.clone(), cloud::ec2::subnets(clients, vpc, false).await?),
        None => match cloud::ec2::default_network(clients).await? {
            (Some(vpc), subnets) => (vpc, subnets),
            (None, _) => {
                let region = &clients.region;
                return Err(invalid(format!("region {region} has no default VPC: set spec.container.network")));
            }
        },
    };
    // One subnet per zone, so the ALB spans distinct zones.
    let mut zones = std::collections::BTreeSet::new();
    let chosen: Vec<String> = subnets.into_iter().filter(|s| zones.insert(s.zone.clone())).map(|s| s.id).collect();
    if chosen.len() < 2 {
        return Err(invalid(format!("VPC {vpc} needs subnets in at least two availability zones for a load balancer")));
    }
    Ok((vpc, chosen))
}

/// The load balancer's group admits the listeners' ports from the spec's CIDRs; the tasks' group
/// admits the container port from the load balancer's group only.
pub(super) async fn ensure_security_groups(stack: &mut Stack<'_>) -> CloudResult<()> {
    let (container, clients) = (wanted(stack)?, stack.clients);
    let (names, owner, tags) = (&stack.desired.names, &stack.desired.owner, &stack.desired.tags);
    let (vpc, subnets) = network(clients, &container).await?;
    let cidrs = &container.load_balancer.ingress_cidrs;
    let admitted: Vec<IngressRule> = (front(stack, &container).ports().iter())
        .flat_map(|port| cidrs.iter().map(|cidr| IngressRule { port: *port, source: Source::Cidr(cidr.clone()) }))
        .collect();
    let lb_group =
        cloud::ec2::ensure_security_group(clients, owner, &vpc, &names.lb_security_group, &admitted, tags).await?;
    let from_lb = vec![IngressRule { port: container.port, source: Source::Group(lb_group.clone()) }];
    let task_group =
        cloud::ec2::ensure_security_group(clients, owner, &vpc, &names.task_security_group, &from_lb, tags).await?;
    stack.network = Some(Network { vpc, subnets, lb_group, task_group });
    Ok(())
}

/// The tasks' group refers to the load balancer's: it goes first.
pub(super) async fn remove_security_groups(removal: &Removal<'_>) -> CloudResult<()> {
    let (clients, owner, names) = (removal.clients, &removal.owner, &removal.names);
    for group in [&names.task_security_group, &names.lb_security_group] {
        for vpc in cloud::ec2::owned_group_vpcs(clients, owner, group).await? {
            cloud::ec2::delete_security_group(clients, owner, &vpc, group).await?;
        }
    }
    Ok(())
}

fn network_of<'s>(stack: &'s Stack<'_>) -> CloudResult<&'s Network> {
    stack.network.as_ref().ok_or_else(|| super::unknown("the network"))
}

pub(super) async fn ensure_target_group(stack: &mut Stack<'_>) -> CloudResult<()> {
    let container = wanted(stack)?;
    let (names, owner, tags) = (&stack.desired.names, &stack.desired.owner, &stack.desired.tags);
    let known = (owner, stack.recorded.target_group_arn.as_deref());
    let (name, vpc, path) = (&names.target_group, &network_of(stack)?.vpc, &container.health_check_path);
    let arn = cloud::elb::ensure_target_group(stack.clients, known, name, vpc, path, tags).await?;
    // A progressive rollout starts the new revision's tasks in a second group.
    let alternate = match container.progressive() {
        true => {
            let name = &names.alternate_target_group;
            Some(cloud::elb::ensure_target_group(stack.clients, (owner, None), name, vpc, path, tags).await?)
        }
        false => None,
    };
    stack.resources.target_group_arn = Some(arn.clone());
    stack.target_group = Some(arn);
    stack.alternate_target_group = alternate;
    Ok(())
}

/// Both target groups (the second is gone already when no rollout made it).
pub(super) async fn remove_target_group(removal: &Removal<'_>) -> CloudResult<()> {
    let (clients, owner, names) = (removal.clients, &removal.owner, &removal.names);
    cloud::elb::delete_target_group(clients, owner, &names.alternate_target_group).await?;
    cloud::elb::delete_target_group(clients, owner, &names.target_group).await
}

pub(super) async fn ensure_load_balancer(stack: &mut Stack<'_>) -> CloudResult<()> {
    let container = wanted(stack)?;
    let (names, owner, tags) = (&stack.desired.names, &stack.desired.owner, &stack.desired.tags);
    let network = network_of(stack)?;
    let wanted = cloud::elb::BalancerPlacement {
        subnets: &network.subnets,
        security_group: &network.lb_group,
        internal: container.load_balancer.internal,
    };
    let known = stack.recorded.load_balancer_arn.as_deref();
    let balancer =
        cloud::elb::ensure_load_balancer(stack.clients, owner, &names.load_balancer, (&wanted, known), tags).await?;
    stack.resources.load_balancer_arn = Some(balancer.arn.clone());
    stack.balancer = Some(balancer);
    Ok(())
}

/// The load balancer; its listeners go with it.
pub(super) async fn remove_load_balancer(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::elb::delete_load_balancers(removal.clients, &removal.owner, &removal.names.load_balancer).await
}

pub(super) async fn ensure_listeners(stack: &mut Stack<'_>) -> CloudResult<()> {
    let container = wanted(stack)?;
    let balancer = stack.balancer.as_ref().ok_or_else(|| super::unknown("the load balancer"))?;
    let target_group = stack.target_group.as_deref().ok_or_else(|| super::unknown("the target group"))?;
    let front = front(stack, &container);
    cloud::elb::ensure_listeners(stack.clients, &balancer.arn, target_group, front).await?;
    // The production rule ECS shifts, on the listener that forwards (none while HTTPS waits).
    let port = match front {
        Front::Plain => crate::desired::LISTENER_PORT,
        Front::Https(_) => crate::desired::HTTPS_PORT,
    };
    if let (Some(alternate), Some(_)) = (stack.alternate_target_group.as_deref(), front.scheme()) {
        let groups = (target_group, alternate);
        stack.production_rule = cloud::elb::ensure_production_rule(stack.clients, &balancer.arn, port, groups).await?;
    }
    Ok(())
}

/// An image Fargate cannot run is refused before the service is made for it.
pub(super) async fn check_image(stack: &mut Stack<'_>) -> CloudResult<()> {
    let container = wanted(stack)?;
    let scope = stack.scope()?;
    cloud::ecr::check_runnable(stack.clients, scope, &container.image, Runner::Fargate, container.architecture).await
}

pub(super) async fn ensure_log_group(stack: &mut Stack<'_>) -> CloudResult<()> {
    let desired = &stack.desired;
    let group = &desired.names.container_log_group;
    cloud::logs::ensure_log_group(stack.clients, &desired.owner, group, desired.log_retention_days, &desired.tags)
        .await?;
    Ok(())
}

pub(super) async fn remove_log_group(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::logs::delete_log_group(removal.clients, &removal.owner, &removal.names.container_log_group).await
}

pub(super) async fn ensure_task_roles(stack: &mut Stack<'_>) -> CloudResult<()> {
    let roles = stack.roles()?;
    let execution = roles.execution.as_ref().ok_or_else(|| missing_role("execution"))?;
    let task = roles.task.as_ref().ok_or_else(|| missing_role("task"))?;
    let (clients, owner, tags) = (stack.clients, &stack.desired.owner, &stack.desired.tags);
    let infrastructure = roles.infrastructure.clone();
    let execution = cloud::iam::ensure_role(clients, owner, execution, tags).await?;
    let task = cloud::iam::ensure_role(clients, owner, task, tags).await?;
    stack.task_roles = Some(TaskRoleArns { execution, task });
    if let Some(role) = &infrastructure {
        stack.infrastructure_role = Some(cloud::iam::ensure_role(clients, owner, role, tags).await?);
    }
    Ok(())
}

pub(super) async fn remove_task_roles(removal: &Removal<'_>) -> CloudResult<()> {
    let (clients, owner, names) = (removal.clients, &removal.owner, &removal.names);
    cloud::iam::delete_role(clients, owner, &names.infrastructure_role).await?;
    cloud::iam::delete_role(clients, owner, &names.execution_role).await?;
    cloud::iam::delete_role(clients, owner, &names.task_role).await
}

/// The task definition (a new revision only when it changed) and the service running it; under
/// a progressive rollout, ECS's deployment answered instead while it runs.
pub(super) async fn ensure_service(stack: &mut Stack<'_>) -> CloudResult<()> {
    let container = wanted(stack)?;
    let (clients, names, owner) = (stack.clients, &stack.desired.names, &stack.desired.owner);
    let existing = cloud::ecs::observe_service(clients, owner, &names.cluster, &names.service).await?;
    let task_definition = task_definition(stack, &container, existing.as_ref()).await?;
    let strategy = container.release.as_ref().and_then(|r| rollout::ecs_strategy(&r.policy));
    let release = container.release.as_ref().filter(|_| strategy.is_some() && advanced(stack).is_some());
    if let (Some(release), Some(service)) = (release, &existing)
        && super::rollout::gate(stack, release, service, &task_definition).await?
    {
        // Recorded though not yet running: a later apply finds it instead of registering another.
        stack.resources.task_definition_arn = Some(task_definition);
        stack.resources.service_arn = existing.as_ref().map(|s| s.arn.clone());
        stack.service = existing;
        return Ok(());
    }
    let progressive = strategy.as_ref().filter(|_| release.is_some());
    let observed = run_service(stack, &container, (existing.as_ref(), &task_definition), progressive).await?;
    let before = existing.filter(|s| s.task_definition != task_definition);
    if let (Some(before), Some(release)) = (before, release) {
        super::rollout::started(stack, release, &before.task_definition, &task_definition);
    }
    stack.resources.task_definition_arn = Some(task_definition);
    stack.resources.service_arn = Some(observed.arn.clone());
    stack.service = Some(observed);
    Ok(())
}

/// The task definition `container` asks for: the service's, a held-back revision's, or a new one.
async fn task_definition(
    stack: &Stack<'_>,
    container: &DesiredContainer,
    existing: Option<&cloud::ecs::ServiceObserved>,
) -> CloudResult<String> {
    let (names, tags) = (&stack.desired.names, &stack.desired.tags);
    let roles = stack.task_roles.as_ref().ok_or_else(|| super::unknown("the task roles"))?;
    let task_roles = cloud::ecs::TaskRoles {
        execution_role_arn: &roles.execution,
        task_role_arn: &roles.task,
        log_group: &names.container_log_group,
    };
    let recorded = stack.recorded.task_definition_arn.as_deref();
    let known = super::rollout::known_revisions(existing, container.release.as_ref(), recorded);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    cloud::ecs::ensure_task_definition(stack.clients, &names.task_family, &known, container, &task_roles, tags).await
}

/// Creates the service or updates it to `task_definition` under the rollout's strategy.
async fn run_service(
    stack: &Stack<'_>,
    container: &DesiredContainer,
    (existing, task_definition): (Option<&cloud::ecs::ServiceObserved>, &str),
    strategy: Option<&rollout::EcsStrategy>,
) -> CloudResult<cloud::ecs::ServiceObserved> {
    let (names, tags) = (&stack.desired.names, &stack.desired.tags);
    let (network, target_group) = (network_of(stack)?, stack.target_group.as_deref().unwrap_or_default());
    let placement = cloud::ecs::ServicePlacement {
        subnets: &network.subnets,
        security_group: &network.task_group,
        target_group_arn: target_group,
        progressive: strategy.zip(advanced(stack)),
    };
    let (cluster, service) = (&names.cluster, &names.service);
    let clients = stack.clients;
    cloud::ecs::ensure_service(clients, cluster, service, existing, task_definition, container, &placement, tags).await
}

/// What ECS shifts traffic with, once the second group, the production rule and the role stand.
fn advanced<'s>(stack: &'s Stack<'_>) -> Option<cloud::ecs::Advanced<'s>> {
    Some(cloud::ecs::Advanced {
        alternate_target_group_arn: stack.alternate_target_group.as_deref()?,
        production_rule_arn: &stack.production_rule.as_ref()?.arn,
        role_arn: stack.infrastructure_role.as_deref()?,
    })
}

/// The service, then every revision of its task family.
pub(super) async fn remove_service(removal: &Removal<'_>) -> CloudResult<()> {
    let (clients, owner, names) = (removal.clients, &removal.owner, &removal.names);
    cloud::ecs::delete_service(clients, owner, &names.cluster, &names.service).await?;
    cloud::ecs::deregister_task_definitions(clients, &names.task_family).await
}

/// The scaling the spec asks for, or none.
pub(super) async fn ensure_scaling(stack: &mut Stack<'_>) -> CloudResult<()> {
    let container = wanted(stack)?;
    let (names, tags) = (&stack.desired.names, &stack.desired.tags);
    match &container.scaling {
        Some(plan) => {
            let balancer = stack.balancer.as_ref().ok_or_else(|| super::unknown("the load balancer"))?;
            let target_group = stack.target_group.as_deref().unwrap_or_default();
            let label = cloud::autoscaling::request_label(&balancer.arn, target_group);
            cloud::autoscaling::ensure_scaling(stack.clients, plan, label.as_deref(), tags).await
        }
        None => cloud::autoscaling::ensure_no_scaling(stack.clients, &names.cluster, &names.service).await,
    }
}

pub(super) async fn remove_scaling(removal: &Removal<'_>) -> CloudResult<()> {
    let names = &removal.names;
    cloud::autoscaling::remove_scaling(removal.clients, &names.cluster, &names.service).await
}
