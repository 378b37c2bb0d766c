//! Application Auto Scaling of the Fargate service's task count: the scalable target (bounds),
//! target-tracking policies (CPU, memory, requests per task), step-scaling policies with the
//! CloudWatch alarms that drive them, and scheduled actions, each changed only when it differs
//! from the spec.

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
    ScalableTarget, ScalableTargetAction, ScalingPolicy, ScheduledAction, ServiceNamespace, StepAdjustment,
    StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
};

use super::cloudwatch::{self, Alarm, ComparisonOperator};
use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::crd::{AutoscalingSpec, ScalingMetric, ScheduledScaling, StepDirection, StepScaling};

const SERVICE: &str = "application-autoscaling";
/// Policies the operator owns carry this prefix; others on the service are left alone.
const POLICY_PREFIX: &str = "blog-";
/// Scheduled actions the operator owns are named `blog-schedule-<spec name>`; others on the
/// service's target (a platform team's, say) are left alone.
const SCHEDULE_PREFIX: &str = "blog-schedule-";

fn schedule_name(spec_name: &str) -> String {
    format!("{SCHEDULE_PREFIX}{spec_name}")
}

/// The scheduled actions to delete: the operator's own that the spec no longer names, and those an
/// earlier version put under the bare spec name (replaced by their prefixed twin). Any other
/// action on the target is someone else's.
fn stale_actions<'a>(found: &[&'a str], spec_names: &[&str]) -> Vec<&'a str> {
    found
        .iter()
        .copied()
        .filter(|name| match name.strip_prefix(SCHEDULE_PREFIX) {
            Some(ours) => !spec_names.contains(&ours),
            None => spec_names.contains(name),
        })
        .collect()
}

fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// One target-tracking policy the spec asks for.
#[derive(Debug, Clone, PartialEq)]
struct Tracking {
    name: &'static str,
    metric: MetricType,
    target: f64,
    /// For request counts: `app/<lb>/<id>/targetgroup/<tg>/<id>`.
    label: Option<String>,
}

/// The `ALBRequestCountPerTarget` resource label from the load balancer and target group ARNs.
#[must_use]
pub fn request_label(load_balancer_arn: &str, target_group_arn: &str) -> Option<String> {
    let lb = super::elb::metric_dimension(load_balancer_arn)?;
    let tg = target_group_arn.rsplit_once(':')?.1;
    Some(format!("{lb}/{tg}"))
}

fn wanted(spec: &AutoscalingSpec, label: Option<&str>) -> Vec<Tracking> {
    let mut policies = vec![Tracking {
        name: "blog-cpu",
        metric: MetricType::EcsServiceAverageCpuUtilization,
        target: f64::from(spec.target_cpu_percent),
        label: None,
    }];
    if let Some(memory) = spec.target_memory_percent {
        policies.push(Tracking {
            name: "blog-memory",
            metric: MetricType::EcsServiceAverageMemoryUtilization,
            target: f64::from(memory),
            label: None,
        });
    }
    if let (Some(requests), Some(label)) = (spec.target_requests_per_task, label) {
        policies.push(Tracking {
            name: "blog-requests",
            metric: MetricType::AlbRequestCountPerTarget,
            target: f64::from(requests),
            label: Some(label.to_owned()),
        });
    }
    policies
}

/// A step-scaling policy as AWS takes it: the alarm's threshold and comparison, and the steps as
/// intervals relative to that threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    pub policy_name: String,
    pub threshold: f64,
    pub comparison: ComparisonOperator,
    /// `(lower, upper, change)`; `None` is unbounded.
    pub steps: Vec<(Option<f64>, Option<f64>, i32)>,
}

/// Turns absolute thresholds into AWS's intervals. `Above` fires at the lowest threshold and each
/// step spans up to the next one (the last is unbounded above); `Below` fires at the highest and
/// each step spans down to the next lower one (the last is unbounded below).
#[must_use]
pub fn step_plan(policy: &StepScaling) -> StepPlan {
    let mut steps = policy.steps.clone();
    steps.sort_by_key(|s| s.threshold);
    if policy.when == StepDirection::Below {
        steps.reverse();
    }
    let threshold = steps.first().map_or(0, |s| s.threshold);
    let offset = |t: i32| f64::from(t - threshold);
    let intervals = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let next = steps.get(i + 1).map(|n| offset(n.threshold));
            match policy.when {
                StepDirection::Above => (Some(offset(step.threshold)), next, step.change),
                StepDirection::Below => (next, Some(offset(step.threshold)), step.change),
            }
        })
        .collect();
    StepPlan {
        policy_name: format!("{POLICY_PREFIX}step-{}", policy.name),
        threshold: f64::from(threshold),
        comparison: match policy.when {
            StepDirection::Above => ComparisonOperator::GreaterThanOrEqualToThreshold,
            StepDirection::Below => ComparisonOperator::LessThanOrEqualToThreshold,
        },
        steps: intervals,
    }
}

/// Step alarms of a service are named `<service>-step-<name>`: unique per account and region, since
/// the service name carries the BlogDeployment's UID.
fn alarm_prefix(service: &str) -> String {
    format!("{service}-step-")
}

fn same_steps(found: &StepScalingPolicyConfiguration, policy: &StepScaling, plan: &StepPlan) -> bool {
    let found_steps: Vec<(Option<f64>, Option<f64>, i32)> = found
        .step_adjustments()
        .iter()
        .map(|s| (s.metric_interval_lower_bound(), s.metric_interval_upper_bound(), s.scaling_adjustment()))
        .collect();
    found.adjustment_type() == Some(&AdjustmentType::ChangeInCapacity)
        && found.cooldown() == Some(policy.cooldown_seconds)
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
    wanted: &[Tracking],
) -> CloudResult<()> {
    for policy in wanted {
        let same = existing.iter().any(|p| {
            p.policy_name() == policy.name
                && p.target_tracking_scaling_policy_configuration().is_some_and(|c| {
                    (c.target_value() - policy.target).abs() < f64::EPSILON
                        && c.predefined_metric_specification().map(|m| m.predefined_metric_type())
                            == Some(&policy.metric)
                })
        });
        if same {
            continue;
        }
        let metric = PredefinedMetricSpecification::builder()
            .predefined_metric_type(policy.metric.clone())
            .set_resource_label(policy.label.clone())
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

/// Puts the step policies that differ from the spec and returns each one's ARN, for its alarm.
async fn ensure_step_policies(
    clients: &AwsClients,
    id: &str,
    existing: &[ScalingPolicy],
    policies: &[StepScaling],
) -> CloudResult<Vec<(StepPlan, String)>> {
    let mut placed = Vec::new();
    for policy in policies {
        let plan = step_plan(policy);
        let found = existing.iter().find(|p| p.policy_name() == plan.policy_name);
        if let Some(found) = found
            && found.step_scaling_policy_configuration().is_some_and(|c| same_steps(c, policy, &plan))
        {
            placed.push((plan, found.policy_arn().to_owned()));
            continue;
        }
        let mut config = StepScalingPolicyConfiguration::builder()
            .adjustment_type(AdjustmentType::ChangeInCapacity)
            .cooldown(policy.cooldown_seconds)
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
        placed.push((plan, out.policy_arn));
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

/// Makes the service's scaling exactly what the spec says.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_scaling(
    clients: &AwsClients,
    cluster: &str,
    service: &str,
    spec: &AutoscalingSpec,
    request_label: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> CloudResult<()> {
    let id = resource_id(cluster, service);
    ensure_target(clients, &id, spec).await?;
    let existing = scaling_policies(clients, &id).await?;
    let wanted = wanted(spec, request_label);
    ensure_tracking_policies(clients, &id, &existing, &wanted).await?;
    let steps = ensure_step_policies(clients, &id, &existing, &spec.step_scaling).await?;
    let alarms: Vec<Alarm> = spec
        .step_scaling
        .iter()
        .zip(&steps)
        .map(|(policy, placed)| step_alarm(cluster, service, policy, placed))
        .collect();
    cloudwatch::ensure_alarms(clients, &alarm_prefix(service), &alarms, tags).await?;
    let owned = |name: &str| wanted.iter().any(|w| w.name == name) || steps.iter().any(|(p, _)| p.policy_name == name);
    for stale in existing.iter().filter(|p| p.policy_name().starts_with(POLICY_PREFIX) && !owned(p.policy_name())) {
        delete_policy(clients, &id, stale.policy_name()).await?;
    }
    ensure_scheduled_actions(clients, &id, &spec.scheduled).await
}

/// The scalable target with the spec's bounds.
async fn ensure_target(clients: &AwsClients, id: &str, spec: &AutoscalingSpec) -> CloudResult<()> {
    let targets = scalable_targets(clients, id).await?;
    if targets.first().is_some_and(|t| t.min_capacity() == spec.min_tasks && t.max_capacity() == spec.max_tasks) {
        return Ok(());
    }
    clients
        .autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(spec.min_tasks)
        .max_capacity(spec.max_tasks)
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "RegisterScalableTarget"))
}

/// The CloudWatch alarm that drives one step-scaling policy (placed as `(plan, policy ARN)`).
fn step_alarm(cluster: &str, service: &str, policy: &StepScaling, placed: &(StepPlan, String)) -> Alarm {
    let (plan, arn) = placed;
    Alarm {
        name: format!("{}{}", alarm_prefix(service), policy.name),
        namespace: "AWS/ECS",
        metric: match policy.metric {
            ScalingMetric::CpuUtilization => "CPUUtilization",
            ScalingMetric::MemoryUtilization => "MemoryUtilization",
        },
        dimensions: vec![("ClusterName".into(), cluster.into()), ("ServiceName".into(), service.into())],
        period_seconds: policy.period_seconds,
        evaluation_periods: policy.evaluation_periods,
        threshold: plan.threshold,
        comparison: plan.comparison.clone(),
        action: arn.clone(),
    }
}

/// Puts each scheduled action the spec names (when it differs) and deletes the operator's stale ones.
async fn ensure_scheduled_actions(clients: &AwsClients, id: &str, wanted: &[ScheduledScaling]) -> CloudResult<()> {
    let actions = scheduled_actions(clients, id).await?;
    for action in wanted {
        let name = schedule_name(&action.name);
        let same = actions.iter().any(|a| {
            a.scheduled_action_name() == name
                && a.schedule() == action.schedule
                && a.timezone() == action.timezone.as_deref()
                && a.scalable_target_action().is_some_and(|t| {
                    t.min_capacity() == Some(action.min_tasks) && t.max_capacity() == Some(action.max_tasks)
                })
        });
        if !same {
            put_action(clients, id, &name, action).await?;
        }
    }
    let found: Vec<&str> = actions.iter().map(ScheduledAction::scheduled_action_name).collect();
    let spec_names: Vec<&str> = wanted.iter().map(|s| s.name.as_str()).collect();
    for stale in stale_actions(&found, &spec_names) {
        delete_action(clients, id, stale).await?;
    }
    Ok(())
}

async fn put_action(clients: &AwsClients, id: &str, name: &str, action: &ScheduledScaling) -> CloudResult<()> {
    clients
        .autoscaling
        .put_scheduled_action()
        .scheduled_action_name(name)
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
    use crate::crd::ScalingStep;

    fn policy(when: StepDirection, steps: &[(i32, i32)]) -> StepScaling {
        StepScaling {
            name: "cpu".into(),
            metric: ScalingMetric::CpuUtilization,
            when,
            steps: steps.iter().map(|&(threshold, change)| ScalingStep { threshold, change }).collect(),
            period_seconds: 60,
            evaluation_periods: 2,
            cooldown_seconds: 60,
        }
    }

    #[test]
    fn scale_out_steps_start_at_the_lowest_threshold() {
        // Given out of order: at 70 % add one task, at 85 % two, at 95 % four.
        let plan = step_plan(&policy(StepDirection::Above, &[(85, 2), (70, 1), (95, 4)]));
        assert_eq!(plan.policy_name, "blog-step-cpu");
        assert_eq!(plan.threshold, 70.0);
        assert_eq!(plan.comparison, ComparisonOperator::GreaterThanOrEqualToThreshold);
        assert_eq!(plan.steps, [(Some(0.0), Some(15.0), 1), (Some(15.0), Some(25.0), 2), (Some(25.0), None, 4)]);
    }

    #[test]
    fn scale_in_steps_start_at_the_highest_threshold() {
        // At 30 % remove one task, at 10 % three.
        let plan = step_plan(&policy(StepDirection::Below, &[(10, -3), (30, -1)]));
        assert_eq!(plan.threshold, 30.0);
        assert_eq!(plan.comparison, ComparisonOperator::LessThanOrEqualToThreshold);
        assert_eq!(plan.steps, [(Some(-20.0), Some(0.0), -1), (None, Some(-20.0), -3)]);
    }

    #[test]
    fn a_single_step_is_unbounded_on_its_far_side() {
        assert_eq!(step_plan(&policy(StepDirection::Above, &[(80, 2)])).steps, [(Some(0.0), None, 2)]);
        assert_eq!(step_plan(&policy(StepDirection::Below, &[(20, -1)])).steps, [(None, Some(0.0), -1)]);
    }

    #[test]
    fn only_the_operators_own_scheduled_actions_go_stale() {
        let found = ["blog-schedule-nightly", "blog-schedule-weekend", "platform-freeze", "weekend"];
        // "weekend" is an earlier version's name for blog-schedule-weekend; "platform-freeze" is not ours.
        assert_eq!(stale_actions(&found, &["weekend"]), ["blog-schedule-nightly", "weekend"]);
        assert_eq!(stale_actions(&found, &[]), ["blog-schedule-nightly", "blog-schedule-weekend"]);
    }

    #[test]
    fn request_labels_join_the_two_arn_tails() {
        let lb = "arn:aws:elasticloadbalancing:us-west-1:1:loadbalancer/app/b-x/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:us-west-1:1:targetgroup/b-x/943f017f100becff";
        assert_eq!(request_label(lb, tg).as_deref(), Some("app/b-x/50dc6c495c0c9188/targetgroup/b-x/943f017f100becff"));
    }
}
