//! Allocation in the runtime: the CloudWatch reads that feed the pure decision and the cache that
//! spares them. The decision itself, with pricing and the recommender, is `blog_core::allocation`,
//! re-exported here so the whole room reads as one module.

use std::time::Duration;

pub use blog_core::allocation::*;

use crate::cloud::cloudwatch::{self, MetricRead};
use crate::cloud::{AwsClients, CloudResult};
use crate::desired::Names;

/// Reads the metrics of the enabled variants (`(function, container)`) named `names`, in one
/// CloudWatch request.
///
/// # Errors
/// The AWS failure.
pub async fn observe(
    clients: &AwsClients,
    (names, (function_on, container_on)): (&Names, (bool, bool)),
    load_balancer_arn: Option<&str>,
    window: Duration,
) -> CloudResult<WindowMetrics> {
    if window.is_zero() {
        return Ok(WindowMetrics::default());
    }
    let function = [("FunctionName", names.function.as_str())];
    let service = [("ClusterName", names.cluster.as_str()), ("ServiceName", names.service.as_str())];
    let dimension = load_balancer_arn.and_then(crate::cloud::elb::metric_dimension);
    let balancer = dimension.map(|d| [("LoadBalancer", d)]);
    let mut reads: Vec<(Slot, MetricRead<'_>)> = Vec::new();
    for &(slot, namespace, metric, _, percentile) in &SIZING_METRICS {
        let dimensions = match namespace {
            "AWS/Lambda" if function_on => &function[..],
            "AWS/ECS" if container_on => &service[..],
            "AWS/ApplicationELB" if container_on => match &balancer {
                Some(balancer) => &balancer[..],
                None => continue,
            },
            _ => continue,
        };
        reads.push((slot, MetricRead { namespace, metric, dimensions, percentile }));
    }
    let mut observed = WindowMetrics { window_seconds: window.as_secs_f64(), ..WindowMetrics::default() };
    if reads.is_empty() {
        return Ok(observed);
    }
    let summaries =
        cloudwatch::gathered_summaries(clients, &reads.iter().map(|(_, r)| *r).collect::<Vec<_>>(), window).await?;
    for ((slot, _), summary) in reads.iter().zip(summaries) {
        *slot.of(&mut observed) = summary;
    }
    Ok(observed)
}

/// Every CloudWatch metric sizing reads: where it goes, namespace, metric, the dimensions it is read
/// by, and whether its p95 is read (else its sum or average). The chart's dashboard shows the same
/// metrics; a test checks its queries against this table.
pub const SIZING_METRICS: [(Slot, &str, &str, &[&str], bool); 8] = [
    (Slot::Invocations, "AWS/Lambda", "Invocations", &["FunctionName"], false),
    (Slot::Duration, "AWS/Lambda", "Duration", &["FunctionName"], true),
    (Slot::Errors, "AWS/Lambda", "Errors", &["FunctionName"], false),
    (Slot::Throttles, "AWS/Lambda", "Throttles", &["FunctionName"], false),
    (Slot::Cpu, "AWS/ECS", "CPUUtilization", &["ClusterName", "ServiceName"], false),
    (Slot::Memory, "AWS/ECS", "MemoryUtilization", &["ClusterName", "ServiceName"], false),
    (Slot::AlbRequests, "AWS/ApplicationELB", "RequestCount", &["LoadBalancer"], false),
    (Slot::AlbResponse, "AWS/ApplicationELB", "TargetResponseTime", &["LoadBalancer"], true),
];

/// Where a metric's summary goes in [`WindowMetrics`].
#[derive(Debug, Clone, Copy)]
pub enum Slot {
    Invocations,
    Duration,
    Errors,
    Throttles,
    Cpu,
    Memory,
    AlbRequests,
    AlbResponse,
}

impl Slot {
    fn of(self, metrics: &mut WindowMetrics) -> &mut Option<Summary> {
        match self {
            Self::Invocations => &mut metrics.invocations,
            Self::Duration => &mut metrics.duration_ms,
            Self::Errors => &mut metrics.errors,
            Self::Throttles => &mut metrics.throttles,
            Self::Cpu => &mut metrics.cpu_percent,
            Self::Memory => &mut metrics.memory_percent,
            Self::AlbRequests => &mut metrics.alb_requests,
            Self::AlbResponse => &mut metrics.alb_response_seconds,
        }
    }
}

/// The last metrics read for each BlogDeployment. The reconciles a status patch triggers, retries
/// and a restarted watch all come within seconds of a read; reusing it spares CloudWatch reads,
/// which are billed per metric.
#[derive(Debug, Default)]
pub struct MetricsCache(std::sync::Mutex<std::collections::HashMap<String, Reading>>);

#[derive(Debug, Clone, Copy)]
struct Reading {
    at: std::time::Instant,
    window: Duration,
    /// `None`: the read failed; not tried again before `max_age` (no retry storm while CloudWatch
    /// throttles or is down).
    observed: Option<WindowMetrics>,
}

impl MetricsCache {
    /// The reading for `key` if it is younger than `max_age` and covered (nearly) the same window;
    /// `Some(None)` when that reading failed.
    #[must_use]
    pub fn fresh(
        &self,
        key: &str,
        window: Duration,
        max_age: Duration,
        now: std::time::Instant,
    ) -> Option<Option<WindowMetrics>> {
        let readings = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let reading = readings.get(key)?;
        let age = now.checked_duration_since(reading.at)?;
        let same_window = reading.window.abs_diff(window) <= max_age;
        (age < max_age && same_window).then_some(reading.observed)
    }

    pub fn store(&self, key: &str, window: Duration, observed: Option<WindowMetrics>, now: std::time::Instant) {
        let mut readings = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        readings.insert(key.to_owned(), Reading { at: now, window, observed });
    }

    /// Forgets a deleted BlogDeployment.
    pub fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_reading_is_reused_for_the_same_window_only() {
        let cache = MetricsCache::default();
        let t0 = std::time::Instant::now();
        let hour = Duration::from_secs(3600);
        let minute = Duration::from_secs(60);
        assert_eq!(cache.fresh("uid", hour, minute, t0), None);
        cache.store("uid", hour, Some(WindowMetrics { window_seconds: 60.0, ..WindowMetrics::default() }), t0);
        assert_eq!(
            cache.fresh("uid", hour, minute, t0 + Duration::from_secs(5)),
            Some(Some(WindowMetrics { window_seconds: 60.0, ..WindowMetrics::default() }))
        );
        assert_eq!(cache.fresh("other", hour, minute, t0 + Duration::from_secs(5)), None);
        assert_eq!(cache.fresh("uid", hour, minute, t0 + minute), None, "too old");
        assert_eq!(cache.fresh("uid", Duration::from_secs(600), minute, t0), None, "another window");
        cache.forget("uid");
        assert_eq!(cache.fresh("uid", hour, minute, t0), None);
        cache.store("uid", hour, None, t0);
        assert_eq!(cache.fresh("uid", hour, minute, t0 + Duration::from_secs(5)), Some(None), "a failed read waits");
        assert_eq!(cache.fresh("uid", hour, minute, t0 + minute), None, "then it is tried again");
    }
}
