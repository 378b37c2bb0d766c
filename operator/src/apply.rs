use crate::aws::Scope;
use crate::cloud::ec2::{IngressRule, Source};
use crate::cloud::elb::Front;
use crate::cloud::{self, AwsClients, CloudError, CloudResult, ErrorKind};
use crate::crd::{ContainerTasks, DeletionPolicy, ResourceIds};
use crate::desired::{self, Desired, DesiredContainer, DesiredFunction, Names, Owner, Roles, VariantUrls};
use crate::https;
use crate::image::Runner;
pub use crate::status::ContainerReadiness;
use crate::status::{self, Part, PartState, Reached, reason};

/// What one apply saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub table: PartState,
    pub domain: PartState,
    pub function: PartState,
    pub container: PartState,
    pub function_url: Option<String>,
    pub container_url: Option<String>,
    pub container_tasks: Option<ContainerTasks>,
    pub resources: ResourceIds,
    /// The front doors, for a placement's records and health checks.
    pub front: Doors,
    /// The hosted zone of `spec.domain`, as the domain step found it.
    pub zone: Option<cloud::route53::Zone>,
}

/// Each variant's regional front door: where its host points (an alias value) and the endpoint
/// a health check can reach without the user's domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doors {
    pub function_alias: Option<crate::domain::RecordValue>,
    pub container_alias: Option<crate::domain::RecordValue>,
    /// The HTTP API's own endpoint, `https://<id>.execute-api.<region>.amazonaws.com`.
    pub api_endpoint: Option<String>,
    /// The load balancer's DNS name.
    pub balancer_dns: Option<String>,
}

/// A failed apply: the AWS failure, the part whose step made the call, and what was observed of
/// the parts finished before it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{part}: {error}", part = .part.name())]
pub struct ApplyError {
    pub part: Part,
    pub error: CloudError,
    pub reached: Reached,
}

impl ApplyError {
    /// The condition this failure gives its part, when a person must act on it.
    #[must_use]
    pub fn failure(&self) -> status::Failure {
        status::Failure { part: self.part, reason: failure_reason(&self.error), message: self.error.to_string() }
    }
}

fn at(part: Part, reached: &Reached) -> impl FnOnce(CloudError) -> ApplyError + '_ {
    move |error| ApplyError { part, error, reached: reached.clone() }
}

/// A condition reason for a failure a person must act on.
#[must_use]
pub fn failure_reason(error: &CloudError) -> &'static str {
    match error.code.as_str() {
        cloud::ecr::NOT_RUNNABLE => return reason::IMAGE_NOT_RUNNABLE,
        cloud::dynamodb::NOT_ADOPTABLE => return reason::TABLE_NOT_ADOPTABLE,
        cloud::route53::ZONE_NOT_FOUND => return reason::HOSTED_ZONE_NOT_FOUND,
        cloud::route53::RECORD_CONFLICT => return reason::DOMAIN_CONFLICT,
        // An API Gateway domain name is one per account and region: someone else's is a conflict.
        _ if error.is_not_owned() && error.operation == "GetDomainName" => return reason::DOMAIN_CONFLICT,
        _ => {}
    }
    match error.kind {
        ErrorKind::AccessDenied => reason::ACCESS_DENIED,
        ErrorKind::Invalid => reason::INVALID_REQUEST,
        ErrorKind::NotFound | ErrorKind::AlreadyExists | ErrorKind::Transient | ErrorKind::Other => reason::AWS_ERROR,
    }
}

/// Brings the table and the enabled variants to `desired`, removing disabled variants. Parts run
/// in order (table, the front doors, function, container); a failure carries the part whose step
/// failed. `recorded` holds the ids the last status wrote: a resource with a recorded id is read by
/// that id instead of being searched for; `first` says this is the object's first apply (nothing
/// was made for it before, so nothing is searched for).
///
/// # Errors
/// The first AWS failure; the caller decides between retry and a condition.
pub async fn apply(
    clients: &AwsClients,
    desired: &Desired,
    (recorded, first): (&ResourceIds, bool),
    readiness: ContainerReadiness,
    write_token: &str,
) -> Result<Applied, ApplyError> {
    let mut resources = ResourceIds::default();
    let mut reached = Reached::default();
    let (table_state, table_arn, scope) =
        apply_table(clients, desired, recorded).await.map_err(at(Part::Table, &reached))?;
    // The token's secret is shared data, like the table: a failure there lands on TableReady.
    let (owner, names) = (&desired.owner, &desired.names);
    let token =
        cloud::secrets::ensure_write_token(clients, owner, &names.write_token_secret, write_token, &desired.tags)
            .await
            .map_err(at(Part::Table, &reached))?;
    let desired = &desired.with_write_token(token);
    let roles = desired.roles(&scope, &table_arn);
    resources.table_arn = Some(table_arn);
    reached.table = Some(table_state.clone());
    let certificates =
        https::ensure_certificates(clients, desired, recorded).await.map_err(at(Part::Domain, &reached))?;
    https::record(&mut resources, desired, &certificates);

    // Front doors first: their URLs go into both variants' settings before either is made.
    let api = match &desired.function {
        Some(function) => Some(
            ensure_function_door(clients, desired, function, &scope, known_api(recorded, first), &mut resources)
                .await
                .map_err(at(Part::Function, &reached))?,
        ),
        None => None,
    };
    // A failing container front door fails the container part below, not the function variant.
    let balancer = match &desired.container {
        Some(container) => {
            let issued = certificates.container_issued(&container.tls);
            let door = ensure_container_door(clients, desired, container, (&scope, issued, recorded), &mut resources);
            Some(door.await)
        }
        None => None,
    };
    let door = balancer.as_ref().and_then(|b| b.as_ref().ok());
    let bound = bind_domain(clients, desired, recorded, &certificates, (api.as_ref(), door))
        .await
        .map_err(at(Part::Domain, &reached))?;
    reached.domain = Some(bound.state.clone());
    let front = Doors {
        function_alias: bound.function_alias.clone(),
        container_alias: bound.container_alias.clone(),
        api_endpoint: api.as_ref().map(|a| a.endpoint.clone()).filter(|e| !e.is_empty()),
        balancer_dns: door.map(|d| d.balancer.dns_name.clone()),
    };
    let urls = VariantUrls {
        functions: bound.function_url.or_else(|| api.as_ref().map(|a| a.endpoint.clone()).filter(|e| !e.is_empty())),
        containers: bound.container_url.or_else(|| door.and_then(ContainerDoor::url)),
    };
    let desired = &desired.with_urls(&urls);

    let function_state = match (&desired.function, &api) {
        (Some(function), Some(api)) => {
            apply_function(clients, desired, function, api, &roles, &scope, &mut resources).await
        }
        _ => remove_function(clients, &desired.owner, &desired.names)
            .await
            .map(|()| PartState::ready(reason::DISABLED, "the function variant is disabled")),
    }
    .map_err(at(Part::Function, &reached))?;
    reached.function = Some(function_state.clone());

    let (container_state, container_tasks) = match (&desired.container, balancer) {
        (Some(container), Some(door)) => {
            let seen = match door {
                Ok(door) => apply_container(clients, desired, container, &roles, &door, &mut resources).await,
                Err(error) => Err(error),
            };
            seen.map(|(tasks, balancer_state)| {
                let state = match urls.containers.as_deref() {
                    Some(url) => status::container_state(readiness, &tasks, &balancer_state, Some(url)),
                    None => PartState::not_ready(
                        reason::CERTIFICATE_PENDING,
                        "the HTTPS listener waits for ACM to issue the certificate (see DomainReady)",
                    ),
                };
                (state, Some(tasks))
            })
        }
        _ => remove_container(clients, &desired.owner, &desired.names)
            .await
            .map(|()| (PartState::ready(reason::DISABLED, "the container variant is disabled"), None)),
    }
    .map_err(at(Part::Container, &reached))?;
    let (wanted_hosts, keep) = (desired.domain_hosts(), certificates.domain.as_ref().map(|c| c.arn.as_str()));
    // Listing every certificate of the account is for when something changed, not every resync.
    if https::may_have_stale_certificates(recorded, wanted_hosts, keep) {
        let zone = certificates.zone.as_ref();
        https::remove_stale_certificates(clients, &desired.owner, recorded, wanted_hosts, (keep, zone))
            .await
            .map_err(at(Part::Domain, &reached))?;
    }

    Ok(Applied {
        table: table_state,
        domain: bound.state,
        function: function_state,
        container: container_state,
        function_url: urls.functions,
        container_url: urls.containers,
        container_tasks,
        resources,
        front,
        zone: certificates.zone,
    })
}

fn known_api(recorded: &ResourceIds, first: bool) -> cloud::apigateway::Known<'_> {
    use cloud::apigateway::Known;
    match (recorded.api_id.as_deref(), first) {
        (Some(id), _) => Known::Id(id),
        (None, true) => Known::NeverMade,
        (None, false) => Known::Unknown,
    }
}

/// Moves the domain to what is desired: stale hosts unbound first, then the wanted ones bound.
async fn bind_domain(
    clients: &AwsClients,
    desired: &Desired,
    recorded: &ResourceIds,
    certificates: &https::Certificates,
    (api, door): (Option<&cloud::apigateway::ApiObserved>, Option<&ContainerDoor>),
) -> CloudResult<https::Bound> {
    let wanted = desired.domain_hosts();
    https::unbind_stale(clients, &desired.owner, recorded, wanted, certificates.zone.as_ref()).await?;
    let targets = https::Targets {
        api_id: api.map(|a| a.id.as_str()),
        balancer: door.map(|d| (d.balancer.dns_name.as_str(), d.balancer.zone_id.as_str())),
    };
    https::bind(clients, desired, certificates, &targets).await
}

/// The table, its condition, its ARN and the scope (partition, region, account) every other ARN
/// is built in.
async fn apply_table(
    clients: &AwsClients,
    desired: &Desired,
    recorded: &ResourceIds,
) -> CloudResult<(PartState, String, Scope)> {
    if let Some(home) = &desired.table.replica_of {
        return replica_table(clients, desired, recorded, home).await;
    }
    let table = cloud::dynamodb::ensure_table(clients, &desired.owner, &desired.table, &desired.tags).await?;
    let scope = Scope::of_arn(&table.arn).ok_or_else(|| {
        CloudError::local("dynamodb", "DescribeTable", ErrorKind::Other, "table ARN has no region or account")
    })?;
    Ok((status::table_state(&desired.table.name, &table.status), table.arn, scope))
}

/// The home table's replica in a placement region: made through the home table (by the placement),
/// read here. Until DynamoDB shows it, the ARN it will have (`recorded`, in this region) scopes the
/// rest of the stack.
async fn replica_table(
    clients: &AwsClients,
    desired: &Desired,
    recorded: &ResourceIds,
    home: &str,
) -> CloudResult<(PartState, String, Scope)> {
    let name = &desired.table.name;
    let found = cloud::dynamodb::owned_replica(clients, &desired.owner, name).await?;
    let arn = found.as_ref().map(|t| t.arn.clone()).or_else(|| recorded.table_arn.clone()).unwrap_or_default();
    let scope = Scope::of_arn(&arn).ok_or_else(|| {
        CloudError::local("dynamodb", "DescribeTable", ErrorKind::Other, "the replica's ARN is not known yet")
    })?;
    let state = match found {
        Some(table) => status::table_state(name, &table.status),
        None => PartState::not_ready(
            reason::CREATING,
            format!("DynamoDB is making the replica of {name} from {home} in {}", desired.region),
        ),
    };
    Ok((state, arn, scope))
}

/// The HTTP API in front of the function's alias: made first, so its URL is known before the
/// function's settings are.
async fn ensure_function_door(
    clients: &AwsClients,
    desired: &Desired,
    function: &DesiredFunction,
    scope: &Scope,
    known_api: cloud::apigateway::Known<'_>,
    resources: &mut ResourceIds,
) -> CloudResult<cloud::apigateway::ApiObserved> {
    let function_arn = scope.arn("lambda", &format!("function:{}", function.name));
    let alias_arn = cloud::lambda::alias_arn(&function_arn);
    let name = &function.api_name;
    let settings = (&desired.tags, function.throttle);
    let api = cloud::apigateway::ensure_api(clients, &desired.owner, (name, known_api), &alias_arn, settings).await?;
    resources.api_id = Some(api.id.clone());
    Ok(api)
}

async fn apply_function(
    clients: &AwsClients,
    desired: &Desired,
    function: &DesiredFunction,
    api: &cloud::apigateway::ApiObserved,
    roles: &Roles,
    scope: &Scope,
    resources: &mut ResourceIds,
) -> CloudResult<PartState> {
    let owner = &desired.owner;
    if let desired::FunctionCode::Image(image) = &function.code {
        cloud::ecr::check_runnable(clients, scope, image, Runner::Lambda, function.architecture).await?;
    }
    cloud::logs::ensure_log_group(clients, &function.log_group, desired.log_retention_days, &desired.tags).await?;
    let role = roles.function.as_ref().ok_or_else(|| missing_role("function"))?;
    let role_arn = cloud::iam::ensure_role(clients, owner, role, &desired.tags).await?;

    let observed = cloud::lambda::ensure_function(clients, owner, function, &role_arn, &desired.tags).await?;
    resources.function_arn = Some(observed.arn.clone());
    let concurrency = (function.reserved_concurrency, observed.reserved_concurrency);
    cloud::lambda::ensure_reserved_concurrency(clients, &function.name, concurrency).await?;

    // Only a fully applied $LATEST is published; until then the alias keeps serving the last version.
    let state = match observed.state {
        cloud::lambda::FunctionState::Pending(why) => PartState::not_ready(reason::PROGRESSING, why),
        cloud::lambda::FunctionState::Failed(why) => {
            PartState::not_ready(reason::FUNCTION_FAILED, status::tenant_message(&why))
        }
        cloud::lambda::FunctionState::Active => {
            let fingerprint = cloud::lambda::fingerprint(function, &role_arn);
            let version = cloud::lambda::ensure_alias(clients, &function.name, &fingerprint).await?;
            let source_arn = desired::api_source_arn(scope, &api.id);
            cloud::lambda::ensure_invoke_permission(clients, &function.name, &source_arn).await?;
            let provisioned = cloud::lambda::ensure_provisioned_concurrency(
                clients,
                &function.name,
                function.provisioned_concurrency,
            )
            .await?;
            status::function_state(&api.endpoint, cloud::lambda::ALIAS, &version, &provisioned)
        }
    };
    Ok(state)
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
                return Err(invalid(format!(
                    "region {} has no default VPC: set spec.container.network",
                    clients.region
                )));
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

/// The container variant's two roles: execution (pull, logs) and task (the table).
struct TaskRoleArns {
    execution: String,
    task: String,
}

async fn ensure_task_roles(clients: &AwsClients, desired: &Desired, roles: &Roles) -> CloudResult<TaskRoleArns> {
    let execution = roles.execution.as_ref().ok_or_else(|| missing_role("execution"))?;
    let task = roles.task.as_ref().ok_or_else(|| missing_role("task"))?;
    Ok(TaskRoleArns {
        execution: cloud::iam::ensure_role(clients, &desired.owner, execution, &desired.tags).await?,
        task: cloud::iam::ensure_role(clients, &desired.owner, task, &desired.tags).await?,
    })
}

/// `Desired::roles` gives a role for every enabled variant; this is the error if it ever did not.
fn missing_role(which: &str) -> CloudError {
    CloudError::local("iam", "GetRole", ErrorKind::Other, format!("no {which} role in the desired state"))
}

/// Where the load balancer and the tasks sit: subnets and the two security groups.
struct Placement {
    vpc: String,
    subnets: Vec<String>,
    lb_group: String,
    task_group: String,
}

async fn ensure_placement(
    clients: &AwsClients,
    desired: &Desired,
    container: &DesiredContainer,
    front: Front<'_>,
) -> CloudResult<Placement> {
    let (names, owner, tags) = (&desired.names, &desired.owner, &desired.tags);
    let (vpc, subnets) = network(clients, container).await?;
    let admitted: Vec<IngressRule> = front
        .ports()
        .iter()
        .flat_map(|port| {
            container.ingress_cidrs.iter().map(|cidr| IngressRule { port: *port, source: Source::Cidr(cidr.clone()) })
        })
        .collect();
    let lb_group =
        cloud::ec2::ensure_security_group(clients, owner, &vpc, &names.lb_security_group, &admitted, tags).await?;
    let from_lb = vec![IngressRule { port: container.port, source: Source::Group(lb_group.clone()) }];
    let task_group =
        cloud::ec2::ensure_security_group(clients, owner, &vpc, &names.task_security_group, &from_lb, tags).await?;
    Ok(Placement { vpc, subnets, lb_group, task_group })
}

/// The load balancer, its target group and listener; returns the target group's ARN too.
async fn ensure_balancer(
    clients: &AwsClients,
    desired: &Desired,
    container: &DesiredContainer,
    (placement, recorded): (&Placement, &ResourceIds),
    front: Front<'_>,
    resources: &mut ResourceIds,
) -> CloudResult<(cloud::elb::LoadBalancerObserved, String)> {
    let (names, owner, tags) = (&desired.names, &desired.owner, &desired.tags);
    let target_group = cloud::elb::ensure_target_group(
        clients,
        (owner, recorded.target_group_arn.as_deref()),
        &names.target_group,
        &placement.vpc,
        &container.health_check_path,
        tags,
    )
    .await?;
    resources.target_group_arn = Some(target_group.clone());
    let wanted = cloud::elb::BalancerPlacement {
        subnets: &placement.subnets,
        security_group: &placement.lb_group,
        internal: container.internal,
    };
    let known = recorded.load_balancer_arn.as_deref();
    let balancer =
        cloud::elb::ensure_load_balancer(clients, owner, &names.load_balancer, (&wanted, known), tags).await?;
    resources.load_balancer_arn = Some(balancer.arn.clone());
    cloud::elb::ensure_listeners(clients, &balancer.arn, &target_group, front).await?;
    Ok((balancer, target_group))
}

/// The cluster, the task definition and the service; returns what ECS reports of the service.
async fn ensure_service(
    clients: &AwsClients,
    desired: &Desired,
    container: &DesiredContainer,
    roles: &TaskRoleArns,
    placement: &Placement,
    target_group: &str,
    resources: &mut ResourceIds,
) -> CloudResult<cloud::ecs::ServiceObserved> {
    let (names, owner, tags) = (&desired.names, &desired.owner, &desired.tags);
    let insights = container.container_insights;
    resources.cluster_arn = Some(cloud::ecs::ensure_cluster(clients, owner, &names.cluster, insights, tags).await?);
    let existing = cloud::ecs::find_service(clients, owner, &names.cluster, &names.service).await?;
    let task_roles = cloud::ecs::TaskRoles {
        execution_role_arn: &roles.execution,
        task_role_arn: &roles.task,
        log_group: &names.container_log_group,
    };
    let current = existing.as_ref().map(|s| s.task_definition.as_str());
    let task_definition =
        cloud::ecs::ensure_task_definition(clients, &names.task_family, current, container, &task_roles, tags).await?;
    resources.task_definition_arn = Some(task_definition.clone());
    let service_placement = cloud::ecs::ServicePlacement {
        subnets: &placement.subnets,
        security_group: &placement.task_group,
        target_group_arn: target_group,
    };
    let service = cloud::ecs::ensure_service(
        clients,
        &names.cluster,
        &names.service,
        existing.as_ref(),
        &task_definition,
        container,
        &service_placement,
        tags,
    )
    .await?;
    resources.service_arn = Some(service.arn.clone());
    Ok(service)
}

/// The container variant's front door: security groups, target group, load balancer, listener.
struct ContainerDoor {
    scope: Scope,
    placement: Placement,
    balancer: cloud::elb::LoadBalancerObserved,
    target_group: String,
    /// [`Front::scheme`]: `http`, `https`, or none while the HTTPS listener waits for its certificate.
    scheme: Option<&'static str>,
}

impl ContainerDoor {
    fn url(&self) -> Option<String> {
        let scheme = self.scheme?;
        Some(format!("{scheme}://{}", self.balancer.dns_name)).filter(|_| !self.balancer.dns_name.is_empty())
    }
}

/// Made first, so the load balancer's URL is known before the task definition's settings are.
async fn ensure_container_door(
    clients: &AwsClients,
    desired: &Desired,
    container: &DesiredContainer,
    (scope, certificate, recorded): (&Scope, Option<&str>, &ResourceIds),
    resources: &mut ResourceIds,
) -> CloudResult<ContainerDoor> {
    let front = Front::of(&container.tls, certificate);
    let placement = ensure_placement(clients, desired, container, front).await?;
    let (balancer, target_group) =
        ensure_balancer(clients, desired, container, (&placement, recorded), front, resources).await?;
    Ok(ContainerDoor { scope: scope.clone(), placement, balancer, target_group, scheme: front.scheme() })
}

/// Makes the rest of the container variant behind its front door; returns the task counts and the
/// load balancer's state, from which [`status::container_state`] decides readiness.
async fn apply_container(
    clients: &AwsClients,
    desired: &Desired,
    container: &DesiredContainer,
    roles: &Roles,
    door: &ContainerDoor,
    resources: &mut ResourceIds,
) -> CloudResult<(ContainerTasks, String)> {
    let names = &desired.names;
    cloud::ecr::check_runnable(clients, &door.scope, &container.image, Runner::Fargate, container.architecture).await?;
    cloud::logs::ensure_log_group(clients, &names.container_log_group, desired.log_retention_days, &desired.tags)
        .await?;
    let task_roles = ensure_task_roles(clients, desired, roles).await?;
    let service =
        ensure_service(clients, desired, container, &task_roles, &door.placement, &door.target_group, resources)
            .await?;
    match &container.scaling {
        Some(plan) => {
            let label = cloud::autoscaling::request_label(&door.balancer.arn, &door.target_group);
            cloud::autoscaling::ensure_scaling(clients, plan, label.as_deref(), &desired.tags).await?;
        }
        None => cloud::autoscaling::remove_scaling(clients, &names.cluster, &names.service).await?,
    }
    let tasks =
        ContainerTasks { desired: service.desired_count, running: service.running_count, rollout: service.rollout };
    Ok((tasks, door.balancer.state.clone()))
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
        for vpc in cloud::ec2::owned_group_vpcs(clients, owner, group).await? {
            cloud::ec2::delete_security_group(clients, owner, &vpc, group).await?;
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

/// Removes everything the owner may have made under `names`, whatever the spec says now; the
/// table only when its deletion policy is `Delete`, else it is marked retained for a later
/// BlogDeployment (`None`: a placement region, whose replica goes through the home table).
/// `shared` names hosts other regions still serve: their validation records stay.
///
/// # Errors
/// The first AWS failure; cleanup is retried until it succeeds.
pub async fn cleanup(
    clients: &AwsClients,
    owner: &Owner,
    names: &Names,
    (table, shared): (Option<(&str, DeletionPolicy)>, &[String]),
    recorded: &ResourceIds,
) -> CloudResult<()> {
    https::unbind_stale(clients, owner, recorded, &[], None).await?;
    remove_function(clients, owner, names).await?;
    remove_container(clients, owner, names).await?;
    // The certificates last: ACM refuses to delete one a listener or custom domain still uses.
    // Hosts other regions still serve keep their validation records (one per name, account-wide).
    https::remove_stale_certificates(clients, owner, recorded, shared, (None, None)).await?;
    cloud::secrets::delete_write_token(clients, owner, &names.write_token_secret).await?;
    match table {
        Some((table, DeletionPolicy::Delete)) => cloud::dynamodb::delete_table(clients, owner, table).await,
        Some((table, DeletionPolicy::Retain)) => cloud::dynamodb::mark_retained(clients, owner, table).await,
        // A placement region's replica goes through the home table, after everything else.
        None => Ok(()),
    }
}
