//! The plan of resource steps: every AWS kind of a stack once, in dependency order, with the part
//! it reports to, how it is made ([`Step::ensure`]), how it goes ([`Step::remove`]) and how it
//! tells its own resource from another owner's ([`Step::claim`]). Apply runs the plan forward;
//! removal runs it backward. Each step's adapter finds what it made by name and claims it before
//! it adopts, changes or deletes it, so a step may run twice or be cut off halfway.

use super::{Removal, Stack, container, function, shared};
use crate::cloud::{self, CloudResult};
use crate::desired::Desired;
use crate::status::Part;

/// One kind of AWS resource (or one check) of a BlogDeployment's stack in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The DynamoDB table (or, in a placement region, its replica).
    Table,
    /// The write token's Secrets Manager secret.
    WriteToken,
    /// The domain's hosted zone and ACM certificates with their validation records.
    Certificates,
    /// The function's HTTP API: its URL goes into both variants' settings.
    Api,
    /// The ECS cluster.
    Cluster,
    /// The VPC's subnets and the load balancer's and tasks' security groups.
    SecurityGroups,
    TargetGroup,
    LoadBalancer,
    /// The listeners (they go with the load balancer).
    Listeners,
    /// The AWS WAF web ACL in front of the load balancer, while the spec asks for one.
    WebAcl,
    /// The API's custom domain and the alias records of both hosts.
    DomainBinding,
    /// The function's image is one Lambda can run (nothing is made).
    FunctionImage,
    FunctionLogGroup,
    FunctionRole,
    /// The function, its concurrency, its alias `live`, the API's permission to invoke it.
    Function,
    /// The container's image is one Fargate can run (nothing is made).
    ContainerImage,
    ContainerLogGroup,
    /// The container's execution and task roles.
    TaskRoles,
    /// The task definition and the ECS service.
    Service,
    /// The service's Application Auto Scaling target and policies.
    Scaling,
}

/// The plan. The front doors (API, load balancer) come before the domain binding, and the binding
/// before both variants, because every URL goes into both variants' settings.
pub const PLAN: [Step; 20] = [
    Step::Table,
    Step::WriteToken,
    Step::Certificates,
    Step::Api,
    Step::Cluster,
    Step::SecurityGroups,
    Step::TargetGroup,
    Step::LoadBalancer,
    Step::Listeners,
    Step::WebAcl,
    Step::DomainBinding,
    Step::FunctionImage,
    Step::FunctionLogGroup,
    Step::FunctionRole,
    Step::Function,
    Step::ContainerImage,
    Step::ContainerLogGroup,
    Step::TaskRoles,
    Step::Service,
    Step::Scaling,
];

/// How a step tells what it finds under its names from another owner's before it adopts,
/// changes or deletes it. Every path ends in the same check, `Owner::owns`, on the owner's tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The resource's own ownership tags, read with this IAM action.
    Tags(&'static str),
    /// The custom domain's tags (read with this action); the records beside it carry no tags, so
    /// the owner's TXT marker next to each name claims them.
    TagsAndMarker(&'static str),
    /// No tags of its own: reached only through the resource the named step claimed.
    Through(Step),
    /// Nothing is made: a check.
    Nothing,
}

impl Step {
    /// How this step claims what it finds.
    #[must_use]
    pub const fn claim(self) -> Claim {
        match self {
            Self::Table => Claim::Tags("dynamodb:ListTagsOfResource"),
            Self::WriteToken => Claim::Tags("secretsmanager:DescribeSecret"),
            Self::Certificates => Claim::Tags("acm:ListTagsForCertificate"),
            Self::Api => Claim::Tags("apigateway:GET"),
            Self::Cluster => Claim::Tags("ecs:DescribeClusters"),
            Self::SecurityGroups => Claim::Tags("ec2:DescribeSecurityGroups"),
            Self::TargetGroup | Self::LoadBalancer => Claim::Tags("elasticloadbalancing:DescribeTags"),
            Self::Listeners => Claim::Through(Self::LoadBalancer),
            Self::WebAcl => Claim::Tags("wafv2:ListTagsForResource"),
            Self::DomainBinding => Claim::TagsAndMarker("apigateway:GET"),
            Self::FunctionLogGroup | Self::ContainerLogGroup => Claim::Tags("logs:ListTagsForResource"),
            Self::FunctionRole | Self::TaskRoles => Claim::Tags("iam:GetRole"),
            Self::Function => Claim::Tags("lambda:GetFunction"),
            Self::Service => Claim::Tags("ecs:DescribeServices"),
            Self::Scaling => Claim::Through(Self::Service),
            Self::FunctionImage | Self::ContainerImage => Claim::Nothing,
        }
    }

    /// The part whose condition a failure of this step lands on.
    #[must_use]
    pub const fn part(self) -> Part {
        match self {
            Self::Table | Self::WriteToken => Part::Table,
            Self::Certificates | Self::DomainBinding => Part::Domain,
            Self::Api | Self::FunctionImage | Self::FunctionLogGroup | Self::FunctionRole | Self::Function => {
                Part::Function
            }
            Self::Cluster
            | Self::SecurityGroups
            | Self::TargetGroup
            | Self::LoadBalancer
            | Self::Listeners
            | Self::WebAcl
            | Self::ContainerImage
            | Self::ContainerLogGroup
            | Self::TaskRoles
            | Self::Service
            | Self::Scaling => Part::Container,
        }
    }

    /// Whether `desired` has this kind: a variant's kinds only while the variant is enabled.
    #[must_use]
    pub fn wanted(self, desired: &Desired) -> bool {
        if self == Self::WebAcl {
            return desired.container.as_ref().is_some_and(|c| c.load_balancer.waf.is_some());
        }
        match self.part() {
            Part::Function => desired.function.is_some(),
            Part::Container => desired.container.is_some(),
            Part::Table | Part::Domain => true,
        }
    }

    /// Makes or updates this kind to what `stack` wants, recording what later steps need.
    pub(super) async fn ensure(self, stack: &mut Stack<'_>) -> CloudResult<()> {
        match self {
            Self::Table => shared::ensure_table(stack).await,
            Self::WriteToken => shared::ensure_write_token(stack).await,
            Self::Certificates => shared::ensure_certificates(stack).await,
            Self::DomainBinding => shared::ensure_domain_binding(stack).await,
            Self::Api => function::ensure_api(stack).await,
            Self::FunctionImage => function::check_image(stack).await,
            Self::FunctionLogGroup => function::ensure_log_group(stack).await,
            Self::FunctionRole => function::ensure_role(stack).await,
            Self::Function => function::ensure_function(stack).await,
            Self::Cluster => container::ensure_cluster(stack).await,
            Self::SecurityGroups => container::ensure_security_groups(stack).await,
            Self::TargetGroup => container::ensure_target_group(stack).await,
            Self::LoadBalancer => container::ensure_load_balancer(stack).await,
            Self::Listeners => container::ensure_listeners(stack).await,
            Self::WebAcl => ensure_web_acl(stack).await,
            Self::ContainerImage => container::check_image(stack).await,
            Self::ContainerLogGroup => container::ensure_log_group(stack).await,
            Self::TaskRoles => container::ensure_task_roles(stack).await,
            Self::Service => container::ensure_service(stack).await,
            Self::Scaling => container::ensure_scaling(stack).await,
        }
    }

    /// Removes what this owner made of this kind; nothing found is done.
    pub(super) async fn remove(self, removal: &Removal<'_>) -> CloudResult<()> {
        match self {
            Self::Table => shared::remove_table(removal).await,
            Self::WriteToken => shared::remove_write_token(removal).await,
            Self::Certificates => shared::remove_certificates(removal).await,
            Self::DomainBinding => shared::remove_domain_binding(removal).await,
            Self::Api => function::remove_api(removal).await,
            Self::FunctionLogGroup => function::remove_log_group(removal).await,
            Self::FunctionRole => function::remove_role(removal).await,
            Self::Function => function::remove_function(removal).await,
            Self::Cluster => container::remove_cluster(removal).await,
            Self::SecurityGroups => container::remove_security_groups(removal).await,
            Self::TargetGroup => container::remove_target_group(removal).await,
            Self::LoadBalancer => container::remove_load_balancer(removal).await,
            Self::ContainerLogGroup => container::remove_log_group(removal).await,
            Self::TaskRoles => container::remove_task_roles(removal).await,
            Self::Service => container::remove_service(removal).await,
            Self::Scaling => container::remove_scaling(removal).await,
            Self::WebAcl => {
                // The balancers it guards are looked up only when there is a web ACL to remove.
                let name = &removal.names.load_balancer;
                let balancers = cloud::elb::owned_load_balancer_arns(removal.clients, &removal.owner, name);
                cloud::wafv2::delete_web_acl(removal.clients, &removal.owner, name, balancers).await
            }
            // Checks make nothing; listeners go with their load balancer.
            Self::FunctionImage | Self::ContainerImage | Self::Listeners => Ok(()),
        }
    }

    /// On the way back of an apply, for a kind still wanted: removes what a change left behind.
    pub(super) async fn prune(self, removal: &Removal<'_>) -> CloudResult<()> {
        match self {
            // After the listeners and custom domains moved off them.
            Self::Certificates => shared::prune_certificates(removal).await,
            _ => Ok(()),
        }
    }
}

/// The web ACL, named like the load balancer it guards.
async fn ensure_web_acl(stack: &mut Stack<'_>) -> CloudResult<()> {
    let (Some(container), Some(balancer)) = (&stack.desired.container, &stack.balancer) else { return Ok(()) };
    let Some(waf) = &container.load_balancer.waf else { return Ok(()) };
    let target = (stack.desired.names.load_balancer.as_str(), balancer.arn.as_str());
    cloud::wafv2::ensure_web_acl(stack.clients, &stack.desired.owner, target, waf, &stack.desired.tags).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(step: Step) -> usize {
        PLAN.iter().position(|s| *s == step).unwrap_or(usize::MAX)
    }

    #[test]
    fn every_step_is_planned_once() {
        for step in PLAN {
            assert_eq!(PLAN.iter().filter(|s| **s == step).count(), 1, "{step:?}");
        }
    }

    #[test]
    fn each_kind_comes_after_what_it_needs() {
        let needs = [
            (Step::WriteToken, Step::Table),
            (Step::DomainBinding, Step::Certificates),
            (Step::DomainBinding, Step::Api),
            (Step::DomainBinding, Step::Listeners),
            (Step::Listeners, Step::LoadBalancer),
            (Step::Listeners, Step::TargetGroup),
            (Step::WebAcl, Step::LoadBalancer),
            (Step::LoadBalancer, Step::SecurityGroups),
            (Step::Function, Step::FunctionRole),
            (Step::Function, Step::DomainBinding),
            (Step::FunctionRole, Step::WriteToken),
            (Step::Service, Step::TaskRoles),
            (Step::Service, Step::Cluster),
            (Step::Service, Step::Listeners),
            (Step::Service, Step::DomainBinding),
            (Step::Scaling, Step::Service),
        ];
        for (step, needed) in needs {
            assert!(position(needed) < position(step), "{step:?} needs {needed:?} first");
        }
    }

    #[test]
    fn every_step_claims_through_a_declared_read_or_a_step_before_it() {
        let declared: Vec<&str> = cloud::declared_calls().map(|c| c.action).collect();
        for step in PLAN {
            match step.claim() {
                Claim::Tags(read) | Claim::TagsAndMarker(read) => {
                    assert!(declared.contains(&read), "{step:?} claims with {read}, which no adapter declares");
                }
                Claim::Through(parent) => assert!(position(parent) < position(step), "{step:?} through {parent:?}"),
                // A check reads; only its adapter's calls say so, and none of them makes anything.
                Claim::Nothing => {}
            }
        }
    }

    #[test]
    fn a_variant_step_reports_to_its_variant() {
        let function = PLAN.iter().filter(|s| s.part() == Part::Function).count();
        let container = PLAN.iter().filter(|s| s.part() == Part::Container).count();
        assert_eq!((function, container), (5, 11));
    }
}
