//! The rollout's reading: when a verdict is due, the new and the stable version's requests,
//! errors and p95 over the analysis window (one `GetMetricData`: the function's by Lambda's
//! `ExecutedVersion` dimension on the `live` alias, the container's by the load balancer's two
//! target groups) and the states of the alarms the analysis names.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cloud::cloudwatch::{self, MetricRead};
use crate::cloud::{AwsClients, CloudResult};
use blog_core::rollout::function::{BAKING, PROGRESSING, between, elapsed};
use blog_core::rollout::verdict::{Measured, Window};
use blog_core::rollout::{Judging, Policy, VariantRollout};

/// CloudWatch keeps Lambda's metrics per minute: a shorter window could hold no datapoint.
const SHORTEST_WINDOW: Duration = Duration::from_secs(60);

/// Whether `record`'s rollout is judged and its last verdict is an interval old.
#[must_use]
pub fn due(record: &VariantRollout, judging: &Judging, now: &Time) -> bool {
    let rolling = record.phase == PROGRESSING || record.phase == BAKING;
    rolling && until_due(record, judging, now).is_zero()
}

/// How long until the next verdict is due (zero: now).
#[must_use]
pub fn until_due(record: &VariantRollout, judging: &Judging, now: &Time) -> Duration {
    // Never judged: due now.
    let last = record.last_check.as_ref().and_then(|c| c.time.as_ref());
    last.map_or(Duration::ZERO, |last| judging.interval.saturating_sub(between(last, now)))
}

/// How long until `record`'s rollout wants its next look: its next verdict or the end of its step
/// (bake), whichever comes first; at least a second. `None` when nothing is under way.
#[must_use]
pub fn next_look(record: &VariantRollout, policy: &Policy, now: &Time) -> Option<Duration> {
    let bake = match record.phase.as_str() {
        PROGRESSING => policy.step_bake,
        BAKING => policy.final_bake,
        _ => return None,
    };
    let step_end = bake.saturating_sub(elapsed(record, now));
    let verdict = policy.judging.as_ref().map_or(step_end, |j| until_due(record, j, now));
    Some(step_end.min(verdict).max(Duration::from_secs(1)))
}

/// How often a running ECS deployment is looked at: its hooks wait for the operator's answer.
pub const ECS_POLL: Duration = Duration::from_secs(5);

/// How long until the container's rollout wants its next look: its next verdict or ECS's next
/// stage; `None` when no deployment runs (or a person paused it).
#[must_use]
pub fn next_ecs_look(record: &VariantRollout, policy: &Policy, now: &Time) -> Option<Duration> {
    if record.phase != PROGRESSING && record.phase != BAKING {
        return None;
    }
    let verdict = policy.judging.as_ref().map_or(ECS_POLL, |j| until_due(record, j, now));
    Some(verdict.min(ECS_POLL).max(Duration::from_secs(1)))
}

/// The window a verdict is made from: the canary's figures, the stable version's while it still
/// serves readers, and the named alarms in `ALARM`.
///
/// # Errors
/// The AWS failure.
pub async fn read_window(
    clients: &AwsClients,
    function: &str,
    record: &VariantRollout,
    judging: &Judging,
) -> CloudResult<Window> {
    let alias = format!("{function}:{}", crate::cloud::lambda::ALIAS);
    let canary = record.canary.clone().unwrap_or_default();
    let stable = record.stable.clone().filter(|_| record.phase == PROGRESSING);
    let versions: Vec<&str> = std::iter::once(canary.as_str()).chain(stable.as_deref()).collect();
    let dimensions: Vec<[(&str, &str); 3]> = versions
        .iter()
        .map(|v| [("FunctionName", function), ("Resource", alias.as_str()), ("ExecutedVersion", *v)])
        .collect();
    let reads: Vec<MetricRead<'_>> = dimensions
        .iter()
        .flat_map(|dimensions| {
            ["Invocations", "Errors", "Duration"].map(|metric| MetricRead {
                namespace: "AWS/Lambda",
                metric,
                dimensions,
                percentile: metric == "Duration",
            })
        })
        .collect();
    windowed(clients, &reads, (judging.interval.max(SHORTEST_WINDOW), &judging.alarms), 1.0).await
}

/// The container's window: the new revision's target group against the stable one's while it
/// still serves readers. `None` until the record names the target groups.
///
/// # Errors
/// The AWS failure.
pub async fn read_target_window(
    clients: &AwsClients,
    balancer_arn: &str,
    record: &VariantRollout,
    judging: &Judging,
) -> CloudResult<Option<Window>> {
    // A target group's dimension is the tail of its ARN, `targetgroup/<name>/<id>`.
    let dimension = |arn: &str| arn.rsplit_once(':').map(|(_, tail)| tail.to_owned());
    let Some(balancer) = crate::cloud::elb::metric_dimension(balancer_arn) else { return Ok(None) };
    let Some(canary) = record.canary_target.as_deref().and_then(dimension) else { return Ok(None) };
    let stable = record.stable_target.as_deref().and_then(dimension).filter(|_| record.phase == PROGRESSING);
    let groups: Vec<&str> = std::iter::once(canary.as_str()).chain(stable.as_deref()).collect();
    let dimensions: Vec<[(&str, &str); 2]> =
        groups.iter().map(|group| [("LoadBalancer", balancer), ("TargetGroup", *group)]).collect();
    let reads: Vec<MetricRead<'_>> = dimensions
        .iter()
        .flat_map(|dimensions| {
            ["RequestCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime"].map(|metric| MetricRead {
                namespace: "AWS/ApplicationELB",
                metric,
                dimensions,
                percentile: metric == "TargetResponseTime",
            })
        })
        .collect();
    // A target group served the other revision until this step: its window starts with the step
    // (CloudWatch may still round the start down to its minute).
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let window = judging.interval.max(SHORTEST_WINDOW).min(elapsed(record, &now)).max(Duration::from_secs(1));
    // The load balancer reports response times in seconds.
    windowed(clients, &reads, (window, &judging.alarms), 1000.0).await.map(Some)
}

/// One `GetMetricData` over `window` of (requests, errors, latency) triples, the canary's first,
/// and the named alarms in `ALARM`; latency scaled to milliseconds by `to_ms`.
async fn windowed(
    clients: &AwsClients,
    reads: &[MetricRead<'_>],
    (window, alarms): (Duration, &[String]),
    to_ms: f64,
) -> CloudResult<Window> {
    let summaries = cloudwatch::summaries(clients, reads, window).await?;
    let measured: Vec<Measured> = summaries
        .chunks(3)
        .map(|s| Measured {
            requests: s[0].map_or(0.0, |x| x.sum),
            errors: s[1].map_or(0.0, |x| x.sum),
            // Where CloudWatch computes no percentile (the emulator), the maximum bounds it.
            p95_ms: s[2].map(|x| x.p95.unwrap_or(x.maximum) * to_ms),
        })
        .collect();
    let firing = cloudwatch::firing(clients, alarms).await?;
    Ok(Window { canary: measured.first().copied().unwrap_or_default(), baseline: measured.get(1).copied(), firing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use blog_core::rollout::RolloutCheck;

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + second).expect("time"))
    }

    #[test]
    fn a_verdict_is_due_an_interval_after_the_last_one_and_only_while_rolling() {
        let judging = Judging {
            interval: Duration::from_secs(60),
            min_requests: 1.0,
            max_step: Duration::from_secs(600),
            max_error_percent: 1.0,
            max_p95_ms: None,
            max_p95_increase_percent: None,
            failure_limit: 1,
            alarms: Vec::new(),
        };
        let mut record = VariantRollout { phase: PROGRESSING.into(), ..VariantRollout::default() };
        assert!(due(&record, &judging, &at(0)), "never judged");
        record.last_check = Some(RolloutCheck { time: Some(at(0)), ..RolloutCheck::default() });
        assert!(!due(&record, &judging, &at(59)));
        assert_eq!(until_due(&record, &judging, &at(20)), Duration::from_secs(40));
        assert!(due(&record, &judging, &at(60)));
        record.phase = "Paused".into();
        assert!(!due(&record, &judging, &at(600)));
    }
}
