//! Application Auto Scaling of the Fargate service's task count: the scalable target (bounds),
//! target-tracking policies (CPU, memory, requests per task) and scheduled actions, each changed
//! only when it differs from the spec.

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ScalableTarget, ScalableTargetAction,
    ScalingPolicy, ScheduledAction, ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
};

use super::{AwsClients, CloudResult, gone_is_done, map_sdk};
use crate::crd::AutoscalingSpec;

const SERVICE: &str = "application-autoscaling";
/// Policies the operator owns carry this prefix; others on the service are left alone.
const POLICY_PREFIX: &str = "blog-";

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
    let lb = load_balancer_arn.split_once("loadbalancer/")?.1;
    let tg = target_group_arn.split_once(':').and_then(|_| target_group_arn.rsplit_once(':'))?.1;
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
) -> CloudResult<()> {
    let id = resource_id(cluster, service);
    let aas = &clients.autoscaling;
    let targets = scalable_targets(clients, &id).await?;
    let current = targets.first();
    if current.is_none_or(|t| t.min_capacity() != spec.min_tasks || t.max_capacity() != spec.max_tasks) {
        aas.register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(spec.min_tasks)
            .max_capacity(spec.max_tasks)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "RegisterScalableTarget"))?;
    }

    let existing = scaling_policies(clients, &id).await?;
    let wanted = wanted(spec, request_label);
    for policy in &wanted {
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
            .map_err(|e| {
                super::CloudError::local(SERVICE, "PutScalingPolicy", super::ErrorKind::Other, e.to_string())
            })?;
        let config = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(policy.target)
            .predefined_metric_specification(metric)
            .scale_in_cooldown(120)
            .scale_out_cooldown(60)
            .build()
            .map_err(|e| {
                super::CloudError::local(SERVICE, "PutScalingPolicy", super::ErrorKind::Other, e.to_string())
            })?;
        aas.put_scaling_policy()
            .policy_name(policy.name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(config)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "PutScalingPolicy"))?;
    }
    for stale in existing
        .iter()
        .filter(|p| p.policy_name().starts_with(POLICY_PREFIX) && !wanted.iter().any(|w| w.name == p.policy_name()))
    {
        delete_policy(clients, &id, stale.policy_name()).await?;
    }

    let actions = scheduled_actions(clients, &id).await?;
    for action in &spec.scheduled {
        let same = actions.iter().any(|a| {
            a.scheduled_action_name() == action.name
                && a.schedule() == action.schedule
                && a.timezone() == action.timezone.as_deref()
                && a.scalable_target_action().is_some_and(|t| {
                    t.min_capacity() == Some(action.min_tasks) && t.max_capacity() == Some(action.max_tasks)
                })
        });
        if same {
            continue;
        }
        aas.put_scheduled_action()
            .scheduled_action_name(&action.name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .schedule(&action.schedule)
            .set_timezone(action.timezone.clone())
            .scalable_target_action(
                ScalableTargetAction::builder().min_capacity(action.min_tasks).max_capacity(action.max_tasks).build(),
            )
            .send()
            .await
            .map_err(map_sdk(SERVICE, "PutScheduledAction"))?;
    }
    for stale in actions.iter().filter(|a| !spec.scheduled.iter().any(|s| s.name == a.scheduled_action_name())) {
        delete_action(clients, &id, stale.scheduled_action_name()).await?;
    }
    Ok(())
}

/// Removes the service's scaling: its policies and scheduled actions, then the scalable target.
/// (AWS drops them with the target; deleting them first is the same on AWS and keeps emulators,
/// which do not, from holding stale policies.)
///
/// # Errors
/// The AWS failure.
pub async fn remove_scaling(clients: &AwsClients, cluster: &str, service: &str) -> CloudResult<()> {
    let id = resource_id(cluster, service);
    let aas = &clients.autoscaling;
    if scalable_targets(clients, &id).await?.is_empty() {
        return Ok(());
    }
    for policy in scaling_policies(clients, &id).await?.iter().filter(|p| p.policy_name().starts_with(POLICY_PREFIX)) {
        delete_policy(clients, &id, policy.policy_name()).await?;
    }
    let actions = scheduled_actions(clients, &id).await?;
    for action in &actions {
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
