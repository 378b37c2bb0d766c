//! Allocation in the runtime: the CloudWatch reads that feed the pure decision and the cache that
//! spares them. The decision itself, with pricing and the recommender, is `blog_core::allocation`,
//! re-exported here so the whole room reads as one module.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use blog_core::allocation::*;

use crate::cloud::cloudwatch::{self, MetricRead};
use crate::cloud::inventory::{Inventory, Listed};
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
    let target = SizingTarget::of(names, (function_on, container_on), load_balancer_arn);
    if window.is_zero() {
        return Ok(WindowMetrics::default());
    }
    let reads = target.reads();
    if reads.is_empty() {
        return Ok(window_metrics(&reads, Vec::new(), window));
    }
    let summaries =
        cloudwatch::summaries(clients, &reads.iter().map(TargetRead::read).collect::<Vec<_>>(), window).await?;
    Ok(window_metrics(&reads, summaries, window))
}

/// [`observe`] through the region's sizing listing: an object whose reads were registered before
/// the last listing is answered from it (every registered object's metrics read together, 19 to a
/// request, at most once a period); a new or changed one is read on its own, and registered.
///
/// # Errors
/// The AWS failure.
pub async fn observe_listed(
    clients: &AwsClients,
    key: &str,
    (names, variants): (&Names, (bool, bool)),
    load_balancer_arn: Option<&str>,
    window: Duration,
) -> CloudResult<WindowMetrics> {
    let target = SizingTarget::of(names, variants, load_balancer_arn);
    let sizing = &clients.inventories.sizing;
    if sizing.register(key, window, target) {
        let listing = window.as_secs().to_string();
        let listed = sizing.listed.look_up(&listing, key, || sizing.read_all(clients.clone(), window)).await;
        if let Listed::Found(observed) = listed {
            return Ok(observed);
        }
    }
    observe(clients, (names, variants), load_balancer_arn, window).await
}

/// What one object's sizing reads: the metric dimensions of its enabled variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizingTarget {
    function: Option<String>,
    service: Option<(String, String)>,
    balancer: Option<String>,
}

impl SizingTarget {
    fn of(names: &Names, (function_on, container_on): (bool, bool), load_balancer_arn: Option<&str>) -> Self {
        let dimension = load_balancer_arn.and_then(crate::cloud::elb::metric_dimension).filter(|_| container_on);
        Self {
            function: function_on.then(|| names.function.clone()),
            service: container_on.then(|| (names.cluster.clone(), names.service.clone())),
            balancer: dimension.map(str::to_owned),
        }
    }

    /// Each metric of [`SIZING_METRICS`] this object has, with where it goes.
    fn reads(&self) -> Vec<TargetRead<'_>> {
        let mut reads = Vec::new();
        for &(slot, namespace, metric, _, percentile) in &SIZING_METRICS {
            let dimensions = match (namespace, &self.function, &self.service, &self.balancer) {
                ("AWS/Lambda", Some(function), ..) => vec![("FunctionName", function.as_str())],
                ("AWS/ECS", _, Some((cluster, service)), _) => {
                    vec![("ClusterName", cluster.as_str()), ("ServiceName", service.as_str())]
                }
                ("AWS/ApplicationELB", _, _, Some(balancer)) => vec![("LoadBalancer", balancer.as_str())],
                _ => continue,
            };
            reads.push(TargetRead { slot, namespace, metric, dimensions, percentile });
        }
        reads
    }
}

/// One metric an object has: where its summary goes, and what to read.
struct TargetRead<'t> {
    slot: Slot,
    namespace: &'static str,
    metric: &'static str,
    dimensions: Vec<(&'static str, &'t str)>,
    percentile: bool,
}

impl TargetRead<'_> {
    fn read(&self) -> MetricRead<'_> {
        MetricRead {
            namespace: self.namespace,
            metric: self.metric,
            dimensions: &self.dimensions,
            percentile: self.percentile,
        }
    }
}

/// The window's metrics from each read's summary.
fn window_metrics(reads: &[TargetRead<'_>], summaries: Vec<Option<Summary>>, window: Duration) -> WindowMetrics {
    let mut observed = WindowMetrics { window_seconds: window.as_secs_f64(), ..WindowMetrics::default() };
    for (read, summary) in reads.iter().zip(summaries) {
        *read.slot.of(&mut observed) = summary;
    }
    observed
}

/// How many periods a registered object stays in the sizing listing without registering again
/// (deleted objects leave it).
const SIZING_KEPT_PERIODS: u32 = 3;

/// The region's sizing reads: each object's [`SizingTarget`] and window as its reconciles register
/// them, and one listing per window of every registered object's metrics, read together.
pub struct SizingReads {
    registered: std::sync::Mutex<HashMap<String, (Duration, SizingTarget, Instant)>>,
    listed: Inventory<WindowMetrics>,
    period: Duration,
}

impl SizingReads {
    #[must_use]
    pub fn new(period: Duration, metrics: &crate::metrics::Metrics, region: &str) -> Self {
        let listed = Inventory::new(period, metrics, "sizing_metrics", region);
        Self { registered: std::sync::Mutex::default(), listed, period }
    }

    /// Registers `key`'s reads over `window`; `true` when they were registered so already (the
    /// listing may hold them).
    fn register(&self, key: &str, window: Duration, target: SizingTarget) -> bool {
        let mut registered = self.registered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let same = registered.get(key).is_some_and(|(w, t, _)| *w == window && *t == target);
        registered.insert(key.to_owned(), (window, target, Instant::now()));
        same
    }

    /// Every object registered over `window` within the last few periods, read together (the
    /// objects taken now, the read made by the future).
    fn read_all(
        &self,
        clients: AwsClients,
        window: Duration,
    ) -> impl std::future::Future<Output = CloudResult<HashMap<String, WindowMetrics>>> + Send + 'static {
        let targets: Vec<(String, SizingTarget)> = {
            let mut registered = self.registered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            registered.retain(|_, (_, _, at)| at.elapsed() < self.period * SIZING_KEPT_PERIODS);
            registered.iter().filter(|(_, (w, ..))| *w == window).map(|(k, (_, t, _))| (k.clone(), t.clone())).collect()
        };
        async move {
            let reads: Vec<Vec<TargetRead<'_>>> = targets.iter().map(|(_, t)| t.reads()).collect();
            let many: Vec<Vec<MetricRead<'_>>> =
                reads.iter().map(|r| r.iter().map(TargetRead::read).collect()).collect();
            let summaries = cloudwatch::summaries_of_many(&clients, &many, window).await?;
            Ok(targets
                .iter()
                .zip(reads.iter().zip(summaries))
                .map(|((key, _), (reads, summaries))| (key.clone(), window_metrics(reads, summaries, window)))
                .collect())
        }
    }
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
    fn an_object_is_answered_from_the_listing_once_registered_so_for_the_same_window_and_names() {
        let sizing = SizingReads::new(Duration::from_secs(60), &crate::metrics::Metrics::default(), "us-west-1");
        let names = Names::for_owner(&crate::desired::Owner {
            namespace: "ns".into(),
            name: "blog".into(),
            uid: "0e4b1c9a-0000-4000-8000-000000000000".into(),
        });
        let both = SizingTarget::of(&names, (true, true), None);
        let hour = Duration::from_secs(3600);
        assert!(!sizing.register("uid", hour, both.clone()), "new: read on its own");
        assert!(sizing.register("uid", hour, both.clone()), "registered so: the listing may hold it");
        assert!(!sizing.register("uid", Duration::from_secs(600), both), "another window");
        assert!(!sizing.register("uid", Duration::from_secs(600), SizingTarget::of(&names, (true, false), None)));
        let target = SizingTarget::of(&names, (true, true), None);
        let reads = target.reads();
        let namespaces: Vec<&str> = reads.iter().map(|r| r.namespace).collect();
        assert_eq!(namespaces.len(), 6, "no balancer yet: its two metrics wait for its ARN: {namespaces:?}");
    }

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
