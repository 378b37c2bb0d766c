//! Apply: brings one region's stack to the desired state by running the [`plan::PLAN`] forward,
//! then backward to remove what is no longer wanted; cleanup runs it backward only. What the steps
//! learn on the way (scope, roles, front doors, URLs, ids) lives in one [`Stack`].

mod container;
mod function;
mod plan;
mod rollout;
mod shared;

use crate::aws::Scope;
use crate::cloud::{self, AwsClients, CloudError, CloudResult, ErrorKind};
use crate::crd::{ContainerTasks, DeletionPolicy, ResourceIds};
use crate::desired::{Desired, Names, Owner, Roles, VariantUrls};
use crate::https;
pub use crate::status::ContainerReadiness;
use crate::status::{self, Part, PartState, Reached, reason};
pub use plan::{PLAN, Step};

/// What one apply saw.
#[derive(Debug, Clone, PartialEq)]
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
    /// The function alias's move in this apply: the rollout to record and an Event.
    pub function_rollout: Option<blog_core::rollout::function::Move>,
    /// The container's rollout as this apply left it, and an Event.
    pub container_rollout: Option<blog_core::rollout::function::Move>,
    /// A `promote` came while ECS was between hooks: it waits for the next one, so the
    /// annotation stays.
    pub container_command_waits: bool,
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
/// the other parts.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{part}: {error}", part = .part.name())]
pub struct ApplyError {
    pub part: Part,
    pub error: CloudError,
    /// Boxed: four parts' states would make every `Result` of a step large.
    pub reached: Box<Reached>,
}

impl ApplyError {
    /// The condition this failure gives its part, when a person must act on it.
    #[must_use]
    pub fn failure(&self) -> status::Failure {
        status::Failure { part: self.part, reason: failure_reason(&self.error), message: self.error.to_string() }
    }
}

/// A condition reason for a failure a person must act on.
#[must_use]
pub fn failure_reason(error: &CloudError) -> &'static str {
    match error.code.as_str() {
        cloud::ecr::NOT_RUNNABLE => return reason::IMAGE_NOT_RUNNABLE,
        cloud::dynamodb::NOT_ADOPTABLE => return reason::TABLE_NOT_ADOPTABLE,
        cloud::route53::ZONE_NOT_FOUND => return reason::HOSTED_ZONE_NOT_FOUND,
        cloud::route53::RECORD_CONFLICT => return reason::DOMAIN_CONFLICT,
        cloud::WITHHELD => return reason::PAUSED,
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

/// Brings the table and the enabled variants to `desired` and removes what is not wanted (a
/// disabled variant, a stale certificate). A failure in a shared part (table, domain) stops the
/// plan; one in a variant skips only that variant's later steps. `recorded` holds the ids the last
/// status wrote: a resource with a recorded id is read by that id instead of being searched for;
/// `first` says this is the object's first apply (nothing was made for it before).
///
/// # Errors
/// A failure, with the part it lands on; the caller decides between retry and a condition.
pub async fn apply(
    clients: &AwsClients,
    desired: &Desired,
    (recorded, first): (&ResourceIds, bool),
    readiness: ContainerReadiness,
    write_token: &str,
) -> Result<Applied, ApplyError> {
    let mut stack = Stack::new(clients, desired.clone(), (recorded, first), write_token);
    for step in PLAN {
        if step.wanted(&stack.desired) && !stack.failed(step.part()) {
            let outcome = step.ensure(&mut stack).await;
            stack.settle(step.part(), outcome)?;
        }
    }
    let removal = stack.removal();
    for step in PLAN.iter().rev() {
        if stack.failed(step.part()) {
            continue;
        }
        let outcome = if step.wanted(&stack.desired) {
            clients.inventories.deep.forget(&absence(*step, &removal.owner));
            step.prune(&removal).await
        } else {
            remove_unless_seen_gone(*step, &removal).await
        };
        stack.settle(step.part(), outcome)?;
    }
    stack.finish(readiness)
}

/// What records that a step the spec does not want was found gone (removed, or never made).
fn absence(step: Step, owner: &Owner) -> String {
    format!("{step:?} of {} gone", owner.uid)
}

/// A step the spec does not want is removed, and then looked for again only a deep period later
/// ([`crate::cloud::inventory::DeepReads`]) instead of at every resync: an object with one variant
/// would otherwise read every resource of the other at every resync to find it absent. Wanting the
/// step again forgets the record, so a later removal looks at once.
async fn remove_unless_seen_gone(step: Step, removal: &Removal<'_>) -> CloudResult<()> {
    let (deep, resource) = (&removal.clients.inventories.deep, absence(step, &removal.owner));
    if !deep.due(&resource, &"gone") {
        return Ok(());
    }
    step.remove(removal).await?;
    deep.done(&resource, &"gone");
    Ok(())
}

/// Removes everything the owner may have made under `names`, whatever the spec says now: the plan
/// backward. The table goes only when its deletion policy is `Delete`, else it is marked retained
/// for a later BlogDeployment (`None`: a placement region, whose replica goes through the home
/// table). `shared` names hosts other regions still serve: their validation records stay.
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
    let removal = Removal {
        clients,
        owner: owner.clone(),
        names: names.clone(),
        recorded,
        table: table.map(|(name, policy)| (name.to_owned(), policy)),
        kept_hosts: shared.to_vec(),
        kept_certificate: None,
        zone: None,
    };
    for step in PLAN.iter().rev() {
        step.remove(&removal).await?;
    }
    Ok(())
}

/// A placement region's stack, by the plan backward, under the region's names: its replica stays
/// (it goes through the home table), and so does the host's validation record, which the regions
/// still serving share.
///
/// # Errors
/// The first AWS failure.
pub async fn cleanup_region(
    clients: &AwsClients,
    owner: &Owner,
    host: &str,
    recorded: &ResourceIds,
) -> CloudResult<()> {
    let names = Names::in_region(owner, &clients.region);
    cleanup(clients, owner, &names, (None, &[crate::domain::host(host)]), recorded).await
}

/// What removing needs: who owns what, under which names, and what stays.
pub(super) struct Removal<'a> {
    clients: &'a AwsClients,
    owner: Owner,
    names: Names,
    recorded: &'a ResourceIds,
    /// The home table and its deletion policy; `None` keeps the table (an apply, or a placement
    /// region whose replica goes through the home table).
    table: Option<(String, DeletionPolicy)>,
    /// Hosts still served (here or by other regions): their certificates' validation records stay.
    kept_hosts: Vec<String>,
    /// The certificate in use.
    kept_certificate: Option<String>,
    /// The domain's hosted zone, as this apply found it.
    zone: Option<cloud::route53::Zone>,
}

/// One apply's inputs and what its steps learned, for the steps after them.
pub(super) struct Stack<'a> {
    clients: &'a AwsClients,
    /// What is wanted; the write token and the URLs are added once known.
    desired: Desired,
    recorded: &'a ResourceIds,
    first: bool,
    write_token: &'a str,
    /// The ids the status records, as the steps made or found them.
    resources: ResourceIds,
    /// The table's partition, region and account, which every other ARN shares.
    scope: Option<Scope>,
    table_arn: String,
    roles: Option<Roles>,
    certificates: https::Certificates,
    api: Option<cloud::apigateway::ApiObserved>,
    network: Option<container::Network>,
    target_group: Option<String>,
    /// The second target group, under a progressive container rollout.
    alternate_target_group: Option<String>,
    production_rule: Option<cloud::elb::ProductionRule>,
    infrastructure_role: Option<String>,
    balancer: Option<cloud::elb::LoadBalancerObserved>,
    bound: https::Bound,
    urls: VariantUrls,
    function_role: Option<String>,
    task_roles: Option<container::TaskRoleArns>,
    service: Option<cloud::ecs::ServiceObserved>,
    function_rollout: Option<blog_core::rollout::function::Move>,
    container_rollout: Option<blog_core::rollout::function::Move>,
    container_command_waits: bool,
    /// The parts' states as the steps observed them.
    reached: Reached,
    /// Variant failures, in plan order: each skips the rest of its variant.
    failures: Vec<(Part, CloudError)>,
}

impl<'a> Stack<'a> {
    fn new(
        clients: &'a AwsClients,
        desired: Desired,
        (recorded, first): (&'a ResourceIds, bool),
        write_token: &'a str,
    ) -> Self {
        Self {
            clients,
            desired,
            recorded,
            first,
            write_token,
            resources: ResourceIds::default(),
            scope: None,
            table_arn: String::new(),
            roles: None,
            certificates: https::Certificates::default(),
            api: None,
            network: None,
            target_group: None,
            alternate_target_group: None,
            production_rule: None,
            infrastructure_role: None,
            balancer: None,
            bound: https::Bound::default(),
            urls: VariantUrls::default(),
            function_role: None,
            task_roles: None,
            service: None,
            function_rollout: None,
            container_rollout: None,
            container_command_waits: false,
            reached: Reached::default(),
            failures: Vec::new(),
        }
    }

    /// The scope the table step found; every step after it runs only once it did.
    fn scope(&self) -> CloudResult<&Scope> {
        self.scope.as_ref().ok_or_else(|| unknown("the table's scope"))
    }

    fn roles(&self) -> CloudResult<&Roles> {
        self.roles.as_ref().ok_or_else(|| unknown("the roles"))
    }

    /// Whether a step of `part` failed in this apply.
    fn failed(&self, part: Part) -> bool {
        self.failures.iter().any(|(failed, _)| *failed == part)
    }

    /// Takes a step's outcome: a shared part's failure ends the apply, a variant's is kept.
    fn settle(&mut self, part: Part, outcome: CloudResult<()>) -> Result<(), ApplyError> {
        match (outcome, part) {
            (Ok(()), _) => Ok(()),
            (Err(error), Part::Table | Part::Domain) => {
                Err(ApplyError { part, error, reached: Box::new(self.reached.clone()) })
            }
            (Err(error), Part::Function | Part::Container) => {
                self.failures.push((part, error));
                Ok(())
            }
        }
    }

    /// The load balancer, once its whole front door stands.
    fn container_door(&self) -> Option<&cloud::elb::LoadBalancerObserved> {
        self.balancer.as_ref().filter(|_| !self.failed(Part::Container))
    }

    fn removal(&self) -> Removal<'a> {
        Removal {
            clients: self.clients,
            owner: self.desired.owner.clone(),
            names: self.desired.names.clone(),
            recorded: self.recorded,
            table: None,
            kept_hosts: self.desired.domain_hosts().to_vec(),
            kept_certificate: self.certificates.domain.as_ref().map(|c| c.arn.clone()),
            zone: self.certificates.zone.clone(),
        }
    }

    /// The variants' states from what the steps recorded, then the result: the failure worth
    /// reporting first (one that clears by itself, so the retry comes soon), the others as their
    /// parts' states.
    fn finish(mut self, readiness: ContainerReadiness) -> Result<Applied, ApplyError> {
        let function = self.function_state();
        let container = self.container_state(readiness);
        self.reached.function.get_or_insert(function);
        self.reached.container = Some(container);
        let reported = self.failures.iter().position(|(_, e)| e.is_retryable()).unwrap_or(0);
        if !self.failures.is_empty() {
            let (part, error) = self.failures.swap_remove(reported);
            for (other, e) in &self.failures {
                let state = PartState::not_ready(failure_reason(e), status::tenant_message(&e.to_string()));
                *self.reached.part_mut(*other) = Some(state);
            }
            return Err(ApplyError { part, error, reached: Box::new(self.reached) });
        }
        let state = |seen: Option<PartState>| seen.unwrap_or_else(|| PartState::not_ready(reason::PROGRESSING, ""));
        Ok(Applied {
            table: state(self.reached.table),
            domain: state(self.reached.domain),
            function: state(self.reached.function),
            container: state(self.reached.container),
            function_url: self.urls.functions,
            container_url: self.urls.containers,
            container_tasks: self.service.as_ref().map(container::tasks),
            resources: self.resources,
            front: Doors {
                function_alias: self.bound.function_alias,
                container_alias: self.bound.container_alias,
                api_endpoint: self.api.map(|a| a.endpoint).filter(|e| !e.is_empty()),
                balancer_dns: self.balancer.map(|b| b.dns_name),
            },
            zone: self.certificates.zone,
            function_rollout: self.function_rollout,
            container_rollout: self.container_rollout,
            container_command_waits: self.container_command_waits,
        })
    }

    fn function_state(&self) -> PartState {
        if self.desired.function.is_none() {
            return PartState::ready(reason::DISABLED, "the function variant is disabled");
        }
        self.reached.function.clone().unwrap_or_else(|| PartState::not_ready(reason::PROGRESSING, ""))
    }

    fn container_state(&self, readiness: ContainerReadiness) -> PartState {
        if self.desired.container.is_none() {
            return PartState::ready(reason::DISABLED, "the container variant is disabled");
        }
        let rolling = self.container_rollout.as_ref().and_then(|m| m.record.as_ref()).and_then(status::rollout_state);
        match (&self.service, self.container_door()) {
            (Some(service), Some(balancer)) => {
                let url = self.urls.containers.as_deref();
                let state = status::container_state(readiness, &container::tasks(service), &balancer.state, url);
                rolling.unwrap_or(state)
            }
            _ => PartState::not_ready(reason::PROGRESSING, ""),
        }
    }
}

/// A fact an earlier step records was missing: the plan's order is broken.
fn unknown(what: &str) -> CloudError {
    CloudError::local("operator", "Apply", ErrorKind::Other, format!("{what} should be known by now"))
}
