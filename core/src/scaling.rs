//! The autoscaling plan of the container variant, decided in full before any call: the scalable
//! target's bounds, the target-tracking and step-scaling policies, the alarms that drive the step
//! policies and the scheduled actions, each with the name the operator owns. Pure: the adapter
//! only turns it into Application Auto Scaling and CloudWatch calls.

use crate::crd::{AutoscalingSpec, ScalingMetric, ScheduledScaling, StepDirection, StepScaling};

/// Policies the operator owns carry this prefix; others on the service are left alone.
pub const POLICY_PREFIX: &str = "blog-";
/// Scheduled actions the operator owns are named `blog-schedule-<spec name>`; others on the
/// service's target (a platform team's, say) are left alone.
pub const SCHEDULE_PREFIX: &str = "blog-schedule-";

/// The Application Auto Scaling resource id of an ECS service.
#[must_use]
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// Step alarms of a service are named `<service>-step-<name>`: unique per account and region, since
/// the service name carries the BlogDeployment's UID.
#[must_use]
pub fn alarm_prefix(service: &str) -> String {
    format!("{service}-step-")
}

/// What a target-tracking policy holds steady.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    CpuPercent,
    MemoryPercent,
    /// Requests per task at the load balancer; needs the load balancer's label, known once it exists.
    RequestsPerTask,
}

/// One target-tracking policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingPolicy {
    pub name: &'static str,
    pub tracked: Tracked,
    pub target: f64,
}

/// Which side of its threshold an alarm fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    AtOrAbove,
    AtOrBelow,
}

/// A step-scaling policy as AWS takes it, and the alarm that drives it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    pub policy_name: String,
    pub alarm_name: String,
    /// `CPUUtilization` or `MemoryUtilization` (namespace `AWS/ECS`).
    pub metric: &'static str,
    pub threshold: f64,
    pub comparison: Comparison,
    /// `(lower, upper, change)` relative to the threshold; `None` is unbounded.
    pub steps: Vec<(Option<f64>, Option<f64>, i32)>,
    pub period_seconds: i32,
    pub evaluation_periods: i32,
    pub cooldown_seconds: i32,
}

/// One scheduled action, under the name the operator owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulePlan {
    pub name: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub min_tasks: i32,
    pub max_tasks: i32,
    /// The name in the spec, which an earlier version used as the action's own name.
    pub spec_name: String,
}

/// Everything Application Auto Scaling should hold for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPlan {
    pub resource_id: String,
    pub cluster: String,
    pub service: String,
    pub min_tasks: i32,
    pub max_tasks: i32,
    pub tracking: Vec<TrackingPolicy>,
    pub steps: Vec<StepPlan>,
    pub schedules: Vec<SchedulePlan>,
}

/// The plan for a service from the spec's `autoscaling`.
#[must_use]
pub fn plan(cluster: &str, service: &str, spec: &AutoscalingSpec) -> ScalingPlan {
    let tracking = [
        Some(TrackingPolicy {
            name: "blog-cpu",
            tracked: Tracked::CpuPercent,
            target: f64::from(spec.target_cpu_percent),
        }),
        spec.target_memory_percent.map(|m| TrackingPolicy {
            name: "blog-memory",
            tracked: Tracked::MemoryPercent,
            target: f64::from(m),
        }),
        spec.target_requests_per_task.map(|r| TrackingPolicy {
            name: "blog-requests",
            tracked: Tracked::RequestsPerTask,
            target: f64::from(r),
        }),
    ];
    ScalingPlan {
        resource_id: resource_id(cluster, service),
        cluster: cluster.to_owned(),
        service: service.to_owned(),
        min_tasks: spec.min_tasks,
        max_tasks: spec.max_tasks,
        tracking: tracking.into_iter().flatten().collect(),
        steps: spec.step_scaling.iter().map(|p| step_plan(service, p)).collect(),
        schedules: spec.scheduled.iter().map(schedule_plan).collect(),
    }
}

fn schedule_plan(action: &ScheduledScaling) -> SchedulePlan {
    SchedulePlan {
        name: format!("{SCHEDULE_PREFIX}{}", action.name),
        schedule: action.schedule.clone(),
        timezone: action.timezone.clone(),
        min_tasks: action.min_tasks,
        max_tasks: action.max_tasks,
        spec_name: action.name.clone(),
    }
}

/// Turns absolute thresholds into AWS's intervals. `Above` fires at the lowest threshold and each
/// step spans up to the next one (the last is unbounded above); `Below` fires at the highest and
/// each step spans down to the next lower one (the last is unbounded below).
#[must_use]
pub fn step_plan(service: &str, policy: &StepScaling) -> StepPlan {
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
        alarm_name: format!("{}{}", alarm_prefix(service), policy.name),
        metric: match policy.metric {
            ScalingMetric::CpuUtilization => "CPUUtilization",
            ScalingMetric::MemoryUtilization => "MemoryUtilization",
        },
        threshold: f64::from(threshold),
        comparison: match policy.when {
            StepDirection::Above => Comparison::AtOrAbove,
            StepDirection::Below => Comparison::AtOrBelow,
        },
        steps: intervals,
        period_seconds: policy.period_seconds,
        evaluation_periods: policy.evaluation_periods,
        cooldown_seconds: policy.cooldown_seconds,
    }
}

impl ScalingPlan {
    /// Whether a policy found on the service is one the operator owns but the plan no longer has.
    #[must_use]
    pub fn is_stale_policy(&self, name: &str) -> bool {
        name.starts_with(POLICY_PREFIX)
            && !self.tracking.iter().any(|t| t.name == name)
            && !self.steps.iter().any(|s| s.policy_name == name)
    }

    /// The scheduled actions to delete: the operator's own that the plan no longer names, and those
    /// an earlier version put under the bare spec name (replaced by their prefixed twin). Any other
    /// action on the target is someone else's.
    #[must_use]
    pub fn stale_actions<'a>(&self, found: &[&'a str]) -> Vec<&'a str> {
        let spec_names: Vec<&str> = self.schedules.iter().map(|s| s.spec_name.as_str()).collect();
        found
            .iter()
            .copied()
            .filter(|name| match name.strip_prefix(SCHEDULE_PREFIX) {
                Some(ours) => !spec_names.contains(&ours),
                None => spec_names.contains(name),
            })
            .collect()
    }
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
        let plan = step_plan("svc", &policy(StepDirection::Above, &[(85, 2), (70, 1), (95, 4)]));
        assert_eq!((plan.policy_name.as_str(), plan.alarm_name.as_str()), ("blog-step-cpu", "svc-step-cpu"));
        assert_eq!(plan.threshold, 70.0);
        assert_eq!(plan.comparison, Comparison::AtOrAbove);
        assert_eq!(plan.steps, [(Some(0.0), Some(15.0), 1), (Some(15.0), Some(25.0), 2), (Some(25.0), None, 4)]);
    }

    #[test]
    fn scale_in_steps_start_at_the_highest_threshold() {
        // At 30 % remove one task, at 10 % three.
        let plan = step_plan("svc", &policy(StepDirection::Below, &[(10, -3), (30, -1)]));
        assert_eq!(plan.threshold, 30.0);
        assert_eq!(plan.comparison, Comparison::AtOrBelow);
        assert_eq!(plan.steps, [(Some(-20.0), Some(0.0), -1), (None, Some(-20.0), -3)]);
    }

    #[test]
    fn a_single_step_is_unbounded_on_its_far_side() {
        assert_eq!(step_plan("s", &policy(StepDirection::Above, &[(80, 2)])).steps, [(Some(0.0), None, 2)]);
        assert_eq!(step_plan("s", &policy(StepDirection::Below, &[(20, -1)])).steps, [(None, Some(0.0), -1)]);
    }

    fn spec(yaml: &str) -> AutoscalingSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    #[test]
    fn the_plan_names_what_the_operator_owns() {
        let yaml = "minTasks: 1\nmaxTasks: 6\ntargetCpuPercent: 55\ntargetRequestsPerTask: 500\n\
                    scheduled: [{name: weekend, schedule: 'cron(0 8 ? * SAT *)', minTasks: 2, maxTasks: 4}]\n";
        let plan = plan("c", "s", &spec(yaml));
        assert_eq!(plan.resource_id, "service/c/s");
        let tracked: Vec<_> = plan.tracking.iter().map(|t| (t.name, t.target)).collect();
        assert_eq!(tracked, [("blog-cpu", 55.0), ("blog-requests", 500.0)]);
        assert_eq!(plan.schedules[0].name, "blog-schedule-weekend");
        assert!(plan.is_stale_policy("blog-memory"));
        assert!(!plan.is_stale_policy("blog-cpu") && !plan.is_stale_policy("team-policy"));
    }

    #[test]
    fn only_the_operators_own_scheduled_actions_go_stale() {
        let yaml = "minTasks: 1\nmaxTasks: 6\nscheduled: [{name: weekend, schedule: 'rate(1 day)', minTasks: 1, maxTasks: 2}]\n";
        let with_weekend = plan("c", "s", &spec(yaml));
        let found = ["blog-schedule-nightly", "blog-schedule-weekend", "platform-freeze", "weekend"];
        // "weekend" is an earlier version's name for blog-schedule-weekend; "platform-freeze" is not ours.
        assert_eq!(with_weekend.stale_actions(&found), ["blog-schedule-nightly", "weekend"]);
        let none = plan("c", "s", &spec("minTasks: 1\nmaxTasks: 6\n"));
        assert_eq!(none.stale_actions(&found), ["blog-schedule-nightly", "blog-schedule-weekend"]);
    }
}
