//! Application Auto Scaling of the Fargate service's task count: the scalable target (bounds),
//! target-tracking policies (CPU, memory, requests per task), step-scaling policies with the
//! CloudWatch alarms that drive them, and scheduled actions, each changed only when it differs
//! from the spec.

use super::Call;
use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
    ScalableTarget, ScalableTargetAction, ScalingPolicy, ScheduledAction, ServiceNamespace, StepAdjustment,
    StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
};

use super::cloudwatch::{self, Alarm, ComparisonOperator};
use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::scaling::{
    Comparison, POLICY_PREFIX, SCHEDULE_PREFIX, ScalingPlan, SchedulePlan, StepPlan, Tracked, TrackingPolicy,
    alarm_prefix, resource_id,
};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "TaskScalingOfEcsServicesOnly",
    "Effect": "Allow",
    "Action": [
      "application-autoscaling:RegisterScalableTarget",
      "application-autoscaling:DeregisterScalableTarget",
      "application-autoscaling:PutScalingPolicy",
      "application-autoscaling:DeleteScalingPolicy",
      "application-autoscaling:PutScheduledAction",
      "application-autoscaling:DeleteScheduledAction"
    ],
    "Resource": "*",
    "Condition": {
      "StringEquals": {
        "application-autoscaling:service-namespace": "ecs"
      }
    }
  },
  {
    "Sid": "TaskScalingReads",
    "Effect": "Allow",
    "Action": [
      "application-autoscaling:DescribeScalableTargets",
      "application-autoscaling:DescribeScalingPolicies",
      "application-autoscaling:DescribeScheduledActions"
    ],
    "Resource": "*"
  }
]"#;

pub(crate) const SERVICE: &str = "application-autoscaling";

const TARGET: &str = "arn:aws:application-autoscaling:{region}:{account}:scalable-target/0ec9a1b2c3d4e5f60718293a4b5c6d7e8f90";
const ECS: &[(&str, &str)] = &[("application-autoscaling:service-namespace", r#""ecs""#)];

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("register the scalable target", "application-autoscaling:RegisterScalableTarget", TARGET).with(ECS),
    Call::new("deregister it", "application-autoscaling:DeregisterScalableTarget", TARGET).with(ECS),
    Call::new("put a scaling policy", "application-autoscaling:PutScalingPolicy", TARGET).with(ECS),
    Call::new("delete a scaling policy", "application-autoscaling:DeleteScalingPolicy", TARGET).with(ECS),
    Call::new("put a scheduled action", "application-autoscaling:PutScheduledAction", TARGET).with(ECS),
    Call::new("delete a scheduled action", "application-autoscaling:DeleteScheduledAction", TARGET).with(ECS),
    Call::new("read scalable targets", "application-autoscaling:DescribeScalableTargets", "*").with(ECS),
    Call::new("read scaling policies", "application-autoscaling:DescribeScalingPolicies", "*").with(ECS),
    Call::new("read scheduled actions", "application-autoscaling:DescribeScheduledActions", "*").with(ECS),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, ErrorKind)] = &[];

/// The `ALBRequestCountPerTarget` resource label from the load balancer and target group ARNs.
#[must_use]
pub fn request_label(load_balancer_arn: &str, target_group_arn: &str) -> Option<String> {
    let lb = super::elb::metric_dimension(load_balancer_arn)?;
    let tg = target_group_arn.rsplit_once(':')?.1;
    Some(format!("{lb}/{tg}"))
}

fn metric_type(tracked: Tracked) -> MetricType {
    match tracked {
        Tracked::CpuPercent => MetricType::EcsServiceAverageCpuUtilization,
        Tracked::MemoryPercent => MetricType::EcsServiceAverageMemoryUtilization,
        Tracked::RequestsPerTask => MetricType::AlbRequestCountPerTarget,
    }
}

fn comparison(comparison: Comparison) -> ComparisonOperator {
    match comparison {
        Comparison::AtOrAbove => ComparisonOperator::GreaterThanOrEqualToThreshold,
        Comparison::AtOrBelow => ComparisonOperator::LessThanOrEqualToThreshold,
    }
}

fn same_steps(found: &StepScalingPolicyConfiguration, plan: &StepPlan) -> bool {
    let found_steps: Vec<(Option<f64>, Option<f64>, i32)> = found
        .step_adjustments()
        .iter()
        .map(|s| (s.metric_interval_lower_bound(), s.metric_interval_upper_bound(), s.scaling_adjustment()))
        .collect();
    found.adjustment_type() == Some(&AdjustmentType::ChangeInCapacity)
        && found.cooldown() == Some(plan.cooldown_seconds)
        && found.metric_aggregation_type() == Some(&MetricAggregationType::Average)
        && found_steps == plan.steps
}

/// A policy a builder refused to build: a bug here, not something AWS said.
fn build_failed(e: aws_sdk_applicationautoscaling::error::BuildError) -> CloudError {
    CloudError::local(SERVICE, "PutScalingPolicy", ErrorKind::Other, e.to_string())
}

/// Puts the target-tracking policies that differ from the spec.
async fn ensure_tracking_policies(
    clients: &AwsClients,
    id: &str,
    existing: &[ScalingPolicy],
    wanted: &[TrackingPolicy],
    request_label: Option<&str>,
) -> CloudResult<()> {
    for policy in wanted {
        let metric = metric_type(policy.tracked);
        // Requests per task need the load balancer's label; until it is known, the policy waits.
        let label = match policy.tracked {
            Tracked::RequestsPerTask => match request_label {
                Some(label) => Some(label.to_owned()),
                None => continue,
            },
            _ => None,
        };
        let same = existing.iter().any(|p| {
            p.policy_name() == policy.name
                && p.target_tracking_scaling_policy_configuration().is_some_and(|c| {
                    (c.target_value() - policy.target).abs() < f64::EPSILON
                        && c.predefined_metric_specification().map(|m| m.predefined_metric_type()) == Some(&metric)
                })
        });
        if same {
            continue;
        }
        let metric = PredefinedMetricSpecification::builder()
            .predefined_metric_type(metric)
            .set_resource_label(label)
            .build()
            .map_err(build_failed)?;
        let config = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(policy.target)
            .predefined_metric_specification(metric)
            .scale_in_cooldown(120)
            .scale_out_cooldown(60)
            .build()
            .map_err(build_failed)?;
        clients
            .autoscaling
            .put_scaling_policy()
            .policy_name(policy.name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(config)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "PutScalingPolicy"))?;
    }
    Ok(())
}

/// Puts the step policies that differ from the plan and returns each one's ARN, for its alarm.
async fn ensure_step_policies(
    clients: &AwsClients,
    id: &str,
    existing: &[ScalingPolicy],
    plans: &[StepPlan],
) -> CloudResult<Vec<String>> {
    let mut placed = Vec::new();
    for plan in plans {
        let found = existing.iter().find(|p| p.policy_name() == plan.policy_name);
        if let Some(found) = found
            && found.step_scaling_policy_configuration().is_some_and(|c| same_steps(c, plan))
        {
            placed.push(found.policy_arn().to_owned());
            continue;
        }
        let mut config = StepScalingPolicyConfiguration::builder()
            .adjustment_type(AdjustmentType::ChangeInCapacity)
            .cooldown(plan.cooldown_seconds)
            .metric_aggregation_type(MetricAggregationType::Average);
        for (lower, upper, change) in &plan.steps {
            config = config.step_adjustments(
                StepAdjustment::builder()
                    .set_metric_interval_lower_bound(*lower)
                    .set_metric_interval_upper_bound(*upper)
                    .scaling_adjustment(*change)
                    .build()
                    .map_err(build_failed)?,
            );
        }
        let out = clients
            .autoscaling
            .put_scaling_policy()
            .policy_name(&plan.policy_name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::StepScaling)
            .step_scaling_policy_configuration(config.build())
            .send()
            .await
            .map_err(map_sdk(SERVICE, "PutScalingPolicy"))?;
        placed.push(out.policy_arn);
    }
    Ok(placed)
}

async fn scalable_targets(clients: &AwsClients, id: &str) -> CloudResult<Vec<ScalableTarget>> {
    let out = clients
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeScalableTargets"))?;
    Ok(out.scalable_targets.unwrap_or_default())
}

async fn scaling_policies(clients: &AwsClients, id: &str) -> CloudResult<Vec<ScalingPolicy>> {
    let out = clients
        .autoscaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(id)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeScalingPolicies"))?;
    Ok(out.scaling_policies.unwrap_or_default())
}

async fn scheduled_actions(clients: &AwsClients, id: &str) -> CloudResult<Vec<ScheduledAction>> {
    let out = clients
        .autoscaling
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(id)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeScheduledActions"))?;
    Ok(out.scheduled_actions.unwrap_or_default())
}

async fn delete_policy(clients: &AwsClients, id: &str, name: &str) -> CloudResult<()> {
    gone_is_done(
        clients
            .autoscaling
            .delete_scaling_policy()
            .policy_name(name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DeleteScalingPolicy")),
    )
}

async fn delete_action(clients: &AwsClients, id: &str, name: &str) -> CloudResult<()> {
    gone_is_done(
        clients
            .autoscaling
            .delete_scheduled_action()
            .scheduled_action_name(name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DeleteScheduledAction")),
    )
}

/// Makes the service's scaling exactly what the plan says. `request_label` names the load balancer
/// and target group for requests-per-task tracking. No listing holds a service's target, policies
/// and alarms together: they are read in full when due, and at once when the plan changes.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_scaling(
    clients: &AwsClients,
    plan: &ScalingPlan,
    request_label: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> CloudResult<()> {
    let resource = scaling_resource(&plan.resource_id);
    let desired = format!("{plan:?} {request_label:?} {tags:?}");
    if !clients.inventories.deep.due(&resource, &desired) {
        return Ok(());
    }
    read_and_ensure_scaling(clients, plan, request_label, tags).await?;
    clients.inventories.deep.done(&resource, &desired);
    Ok(())
}

async fn read_and_ensure_scaling(
    clients: &AwsClients,
    plan: &ScalingPlan,
    request_label: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> CloudResult<()> {
    let id = &plan.resource_id;
    ensure_target(clients, plan).await?;
    let existing = scaling_policies(clients, id).await?;
    ensure_tracking_policies(clients, id, &existing, &plan.tracking, request_label).await?;
    let arns = ensure_step_policies(clients, id, &existing, &plan.steps).await?;
    let alarms: Vec<Alarm> = plan.steps.iter().zip(arns).map(|(step, arn)| step_alarm(plan, step, arn)).collect();
    cloudwatch::ensure_alarms(clients, &alarm_prefix(&plan.service), &alarms, tags).await?;
    for stale in existing.iter().filter(|p| plan.is_stale_policy(p.policy_name())) {
        delete_policy(clients, id, stale.policy_name()).await?;
    }
    ensure_scheduled_actions(clients, plan).await
}

/// The scalable target with the plan's bounds.
async fn ensure_target(clients: &AwsClients, plan: &ScalingPlan) -> CloudResult<()> {
    let targets = scalable_targets(clients, &plan.resource_id).await?;
    if targets.first().is_some_and(|t| t.min_capacity() == plan.min_tasks && t.max_capacity() == plan.max_tasks) {
        return Ok(());
    }
    clients
        .autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&plan.resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(plan.min_tasks)
        .max_capacity(plan.max_tasks)
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "RegisterScalableTarget"))
}

/// The CloudWatch alarm that drives one step-scaling policy (at `policy_arn`).
fn step_alarm(plan: &ScalingPlan, step: &StepPlan, policy_arn: String) -> Alarm {
    Alarm {
        name: step.alarm_name.clone(),
        namespace: "AWS/ECS",
        metric: step.metric,
        dimensions: vec![("ClusterName".into(), plan.cluster.clone()), ("ServiceName".into(), plan.service.clone())],
        period_seconds: step.period_seconds,
        evaluation_periods: step.evaluation_periods,
        threshold: step.threshold,
        comparison: comparison(step.comparison),
        action: policy_arn,
    }
}

/// Puts each scheduled action the plan names (when it differs) and deletes the operator's stale ones.
async fn ensure_scheduled_actions(clients: &AwsClients, plan: &ScalingPlan) -> CloudResult<()> {
    let id = &plan.resource_id;
    let actions = scheduled_actions(clients, id).await?;
    for action in &plan.schedules {
        let same = actions.iter().any(|a| {
            a.scheduled_action_name() == action.name
                && a.schedule() == action.schedule
                && a.timezone() == action.timezone.as_deref()
                && a.scalable_target_action().is_some_and(|t| {
                    t.min_capacity() == Some(action.min_tasks) && t.max_capacity() == Some(action.max_tasks)
                })
        });
        if !same {
            put_action(clients, id, action).await?;
        }
    }
    let found: Vec<&str> = actions.iter().map(ScheduledAction::scheduled_action_name).collect();
    for stale in plan.stale_actions(&found) {
        delete_action(clients, id, stale).await?;
    }
    Ok(())
}

async fn put_action(clients: &AwsClients, id: &str, action: &SchedulePlan) -> CloudResult<()> {
    clients
        .autoscaling
        .put_scheduled_action()
        .scheduled_action_name(&action.name)
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .schedule(&action.schedule)
        .set_timezone(action.timezone.clone())
        .scalable_target_action(
            ScalableTargetAction::builder().min_capacity(action.min_tasks).max_capacity(action.max_tasks).build(),
        )
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "PutScheduledAction"))
}

fn scaling_resource(resource_id: &str) -> String {
    format!("scaling of {resource_id}")
}

/// [`remove_scaling`] for a service whose spec asks for none: once found without scaling, it is
/// looked at again a deep period later, or at once after scaling was wanted.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_no_scaling(clients: &AwsClients, cluster: &str, service: &str) -> CloudResult<()> {
    let resource = scaling_resource(&resource_id(cluster, service));
    if !clients.inventories.deep.due(&resource, &"none") {
        return Ok(());
    }
    remove_scaling(clients, cluster, service).await?;
    clients.inventories.deep.done(&resource, &"none");
    Ok(())
}

/// Removes the service's scaling: its alarms, policies and scheduled actions, then the scalable target.
/// (AWS drops them with the target; deleting them first is the same on AWS and keeps emulators,
/// which do not, from holding stale policies.)
///
/// # Errors
/// The AWS failure.
pub async fn remove_scaling(clients: &AwsClients, cluster: &str, service: &str) -> CloudResult<()> {
    let id = resource_id(cluster, service);
    let aas = &clients.autoscaling;
    // Alarms first: they point at the policies. Looked for even without a target, so none outlives it.
    cloudwatch::ensure_alarms(clients, &alarm_prefix(service), &[], &BTreeMap::new()).await?;
    if scalable_targets(clients, &id).await?.is_empty() {
        return Ok(());
    }
    for policy in scaling_policies(clients, &id).await?.iter().filter(|p| p.policy_name().starts_with(POLICY_PREFIX)) {
        delete_policy(clients, &id, policy.policy_name()).await?;
    }
    let actions = scheduled_actions(clients, &id).await?;
    for action in actions.iter().filter(|a| a.scheduled_action_name().starts_with(SCHEDULE_PREFIX)) {
        delete_action(clients, &id, action.scheduled_action_name()).await?;
    }
    gone_is_done(
        aas.deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DeregisterScalableTarget")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_labels_join_the_two_arn_tails() {
        let lb = "arn:aws:elasticloadbalancing:us-west-1:1:loadbalancer/app/b-x/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:us-west-1:1:targetgroup/b-x/943f017f100becff";
        assert_eq!(request_label(lb, tg).as_deref(), Some("app/b-x/50dc6c495c0c9188/targetgroup/b-x/943f017f100becff"));
    }
}
