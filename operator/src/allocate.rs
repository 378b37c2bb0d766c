//! The allocation step: read the variants' metrics from CloudWatch (adapter), then recommend sizes,
//! price both variants and, in Auto mode, settle what to apply (pure).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::allocation::pricing::{self, ContainerSize, FunctionSize, PriceTable, Traffic};
use crate::allocation::recommend::{self, ContainerLoad, FunctionLoad, Policy};
use crate::cloud::cloudwatch::{self, Summary};
use crate::cloud::{AwsClients, CloudResult};
use crate::crd::{AllocationMode, AllocationSpec, AllocationStatus, Architecture};
use crate::desired::Desired;

/// Bytes per request assumed for the load balancer's processed-bytes dimension.
const BYTES_PER_REQUEST: f64 = 2048.0;

/// What CloudWatch said about the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Observed {
    pub window_seconds: f64,
    pub invocations: Option<Summary>,
    pub duration_ms: Option<Summary>,
    pub errors: Option<Summary>,
    pub throttles: Option<Summary>,
    pub cpu_percent: Option<Summary>,
    pub memory_percent: Option<Summary>,
    pub alb_requests: Option<Summary>,
    /// `TargetResponseTime`, in seconds as CloudWatch gives it.
    pub alb_response_seconds: Option<Summary>,
}

/// The part of the window to read: only what was measured since the last applied change, since
/// metrics taken at the old sizes would be read as if taken at the new ones (and a recommender fed
/// them walks the sizes further on every reconcile).
#[must_use]
pub fn effective_window(window: Duration, last_change: Option<&Time>, now: &Time) -> Duration {
    let since_change = last_change.map(|t| u64::try_from(now.0.as_second() - t.0.as_second()).unwrap_or(0));
    since_change.map_or(window, |s| window.min(Duration::from_secs(s)))
}

/// Reads the metrics of whichever variants are enabled.
///
/// # Errors
/// The AWS failure.
pub async fn observe(
    clients: &AwsClients,
    desired: &Desired,
    load_balancer_arn: Option<&str>,
    window: Duration,
) -> CloudResult<Observed> {
    if window.is_zero() {
        return Ok(Observed::default());
    }
    let mut observed = Observed { window_seconds: window.as_secs_f64(), ..Observed::default() };
    if desired.function.is_some() {
        let function = [("FunctionName", desired.names.function.as_str())];
        observed.invocations = cloudwatch::summary(clients, "AWS/Lambda", "Invocations", &function, window).await?;
        observed.duration_ms = cloudwatch::summary(clients, "AWS/Lambda", "Duration", &function, window).await?;
        observed.errors = cloudwatch::summary(clients, "AWS/Lambda", "Errors", &function, window).await?;
        observed.throttles = cloudwatch::summary(clients, "AWS/Lambda", "Throttles", &function, window).await?;
    }
    if desired.container.is_some() {
        let service =
            [("ClusterName", desired.names.cluster.as_str()), ("ServiceName", desired.names.service.as_str())];
        observed.cpu_percent = cloudwatch::summary(clients, "AWS/ECS", "CPUUtilization", &service, window).await?;
        observed.memory_percent =
            cloudwatch::summary(clients, "AWS/ECS", "MemoryUtilization", &service, window).await?;
        if let Some(dimension) = load_balancer_arn.and_then(crate::cloud::elb::metric_dimension) {
            let balancer = [("LoadBalancer", dimension)];
            observed.alb_requests =
                cloudwatch::summary(clients, "AWS/ApplicationELB", "RequestCount", &balancer, window).await?;
            observed.alb_response_seconds =
                cloudwatch::summary(clients, "AWS/ApplicationELB", "TargetResponseTime", &balancer, window).await?;
        }
    }
    Ok(observed)
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
    observed: Observed,
}

impl MetricsCache {
    /// The reading for `key` if it is younger than `max_age` and covered (nearly) the same window.
    #[must_use]
    pub fn fresh(&self, key: &str, window: Duration, max_age: Duration, now: std::time::Instant) -> Option<Observed> {
        let readings = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let reading = readings.get(key)?;
        let age = now.checked_duration_since(reading.at)?;
        let same_window = reading.window.abs_diff(window) <= max_age;
        (age < max_age && same_window).then_some(reading.observed)
    }

    pub fn store(&self, key: &str, window: Duration, observed: Observed, now: std::time::Instant) {
        let mut readings = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        readings.insert(key.to_owned(), Reading { at: now, window, observed });
    }

    /// Forgets a deleted BlogDeployment.
    pub fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// The sizes a decision starts from: what ran while the metrics were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub function_memory_mib: Option<i32>,
    pub architecture: Architecture,
    /// Provisioned concurrency of the function (0: none); priced, never changed by allocation.
    pub provisioned: i32,
    pub container: Option<ContainerSize>,
}

fn policy(spec: &AllocationSpec) -> Policy {
    Policy {
        latency_p95_ms: f64::from(spec.latency_p95_ms),
        cpu_percent: f64::from(spec.cpu_percent),
        memory_percent: f64::from(spec.memory_percent),
        min_memory_mib: spec.min_memory_mib,
        max_memory_mib: spec.max_memory_mib,
        min_tasks: spec.min_tasks,
        max_tasks: spec.max_tasks,
        ..Policy::default()
    }
}

fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// Recommends (Recommend) or settles (Auto) the sizes, and prices both variants at the observed
/// traffic. Pure: the same inputs give the same answer, so repeated reconciles never flap.
#[must_use]
pub fn decide(
    spec: &AllocationSpec,
    observed: &Observed,
    running: Sizes,
    previous: Option<&AllocationStatus>,
    now: &Time,
    prices: &PriceTable,
) -> AllocationStatus {
    let policy = policy(spec);
    let auto = spec.mode == AllocationMode::Auto;
    let since_last = previous
        .and_then(|p| p.last_change_time.as_ref())
        .map(|t| u64::try_from(now.0.as_second() - t.0.as_second()).unwrap_or(0));
    let cooldown = u64::try_from(spec.cooldown_minutes).unwrap_or(0) * 60;
    let mut changed = false;
    // Why a size is not what the metrics alone would give, for status.allocation.notes.
    let mut notes = Vec::new();
    // Only called when `settle` kept the current size: the cooldown, or too small a saving.
    let held = |what: &str| {
        if recommend::cooled(since_last, cooldown) {
            let percent = recommend::MIN_SAVING * 100.0;
            return format!("{what}: a shrink that saves under {percent:.0} % is not worth a deployment");
        }
        let until = previous
            .and_then(|p| p.last_change_time.as_ref())
            .and_then(|t| k8s_openapi::jiff::Timestamp::from_second(t.0.as_second() + cooldown as i64).ok())
            .map_or_else(String::new, |t| format!(" until {t}"));
        format!("{what}: the cooldown holds changes{until}")
    };

    let p95 = observed.duration_ms.map(|d| d.p95.unwrap_or(d.maximum));
    let count = |s: Option<Summary>| s.map(|s| s.sum.round() as i64);
    let (errors, throttles) = (count(observed.errors), count(observed.throttles));
    // Errors may be timeouts or out-of-memory, and a slower function needs more concurrency: a
    // function in trouble is not shrunk.
    let troubled = errors.unwrap_or(0) > 0 || throttles.unwrap_or(0) > 0;
    let function_memory = running.function_memory_mib.map(|current| match p95 {
        None => {
            notes.push("function: no Duration metrics in the window".to_owned());
            current
        }
        Some(p95) => {
            let mut proposed = recommend::function_memory(current, FunctionLoad { p95_duration_ms: p95 }, &policy);
            if troubled && proposed < current {
                notes.push(format!(
                    "function: kept at {current} MiB, not {proposed}: {} errors and {} throttles in the window",
                    errors.unwrap_or(0),
                    throttles.unwrap_or(0)
                ));
                proposed = current;
            }
            if !auto {
                return proposed;
            }
            let saving = 1.0 - f64::from(proposed) / f64::from(current);
            let settled = recommend::settle(current, proposed, proposed > current, saving, since_last, cooldown);
            if settled != proposed {
                notes.push(held(&format!("function: {proposed} MiB recommended, {current} MiB kept")));
            }
            changed |= settled != current;
            settled
        }
    });

    let container_p95_ms = observed.alb_response_seconds.map(|r| r.p95.unwrap_or(r.maximum) * 1000.0);
    let container = running.container.map(|current| match (observed.cpu_percent, observed.memory_percent) {
        (Some(cpu), memory) => {
            let load = ContainerLoad { cpu_percent: cpu.average, memory_percent: memory.map_or(0.0, |m| m.average) };
            let hourly = |s: &ContainerSize| pricing::fargate_hourly(prices, s);
            let mut proposed = recommend::container_size(current, load, &policy, prices);
            let describe = |s: &ContainerSize| format!("{} CPU / {} MiB × {}", s.cpu, s.memory_mib, s.tasks);
            // Tasks answering slower than the latency target are not made smaller or fewer.
            if let Some(ms) = container_p95_ms.filter(|ms| *ms > policy.latency_p95_ms)
                && hourly(&proposed) < hourly(&current)
            {
                notes.push(format!(
                    "container: kept at {}, not {}: p95 {ms:.0} ms at the load balancer is over the {} ms target",
                    describe(&current),
                    describe(&proposed),
                    policy.latency_p95_ms
                ));
                proposed = current;
            }
            if !auto {
                return proposed;
            }
            let grows =
                proposed.cpu * proposed.tasks > current.cpu * current.tasks || proposed.memory_mib > current.memory_mib;
            let saving = 1.0 - hourly(&proposed) / hourly(&current);
            let settled = recommend::settle(current, proposed, grows, saving, since_last, cooldown);
            if settled != proposed {
                let what = format!("container: {} recommended, {} kept", describe(&proposed), describe(&current));
                notes.push(held(&what));
            }
            changed |= settled != current;
            settled
        }
        (None, _) => {
            notes.push("container: no CPUUtilization metrics in the window".to_owned());
            current
        }
    });

    let requests = observed.invocations.map_or(0.0, |s| s.sum) + observed.alb_requests.map_or(0.0, |s| s.sum);
    let rps = if observed.window_seconds > 0.0 { requests / observed.window_seconds } else { 0.0 };
    // The handler's duration at the chosen memory, under the recommender's CPU-bound model.
    let duration_ms = match (observed.duration_ms, running.function_memory_mib, function_memory) {
        (Some(d), Some(was), Some(now)) => d.average * f64::from(was) / f64::from(now),
        _ => 50.0,
    };
    let traffic =
        Traffic { requests_per_second: rps, function_duration_ms: duration_ms, bytes_per_request: BYTES_PER_REQUEST };
    let function_size = function_memory.map(|memory_mib| FunctionSize {
        memory_mib,
        architecture: running.architecture,
        provisioned: running.provisioned,
    });
    let function_cost = function_size.map(|f| pricing::function_monthly(prices, f, &traffic));
    let container_cost = container.map(|c| pricing::container_monthly(prices, c, &traffic));
    let break_even = match (function_size, container) {
        (Some(f), Some(c)) => pricing::break_even_rps(prices, f, c, duration_ms, BYTES_PER_REQUEST),
        _ => None,
    };
    let cheaper = match (function_cost, container_cost) {
        (Some(f), Some(c)) => Some(if f <= c { "function" } else { "container" }.to_owned()),
        _ => None,
    };
    AllocationStatus {
        applied: auto,
        requests_per_second: (rps * 1000.0).round() / 1000.0,
        function_memory_mib: function_memory,
        function_p95_ms: p95,
        container_cpu: container.map(|c| c.cpu),
        container_memory_mib: container.map(|c| c.memory_mib),
        container_tasks: container.map(|c| c.tasks),
        function_errors: errors,
        function_throttles: throttles,
        container_cpu_percent: observed.cpu_percent.map(|c| c.average),
        container_p95_ms,
        function_monthly_usd: function_cost.map(cents),
        container_monthly_usd: container_cost.map(cents),
        break_even_requests_per_second: break_even.map(|r| (r * 10.0).round() / 10.0),
        cheaper,
        last_change_time: if changed { Some(now.clone()) } else { previous.and_then(|p| p.last_change_time.clone()) },
        notes,
    }
}

/// The sizes running now: in Auto, the ones the last decision applied (not a mere recommendation
/// from Recommend mode); otherwise the spec's.
#[must_use]
pub fn running_sizes(desired: &Desired, mode: AllocationMode, previous: Option<&AllocationStatus>) -> Sizes {
    let applied = previous.filter(|p| mode == AllocationMode::Auto && p.applied);
    Sizes {
        function_memory_mib: desired
            .function
            .as_ref()
            .map(|f| applied.and_then(|p| p.function_memory_mib).unwrap_or(f.memory_mib)),
        architecture: desired.function.as_ref().map_or(Architecture::Arm64, |f| f.architecture),
        provisioned: desired.function.as_ref().and_then(|f| f.provisioned_concurrency).unwrap_or(0),
        container: desired.container.as_ref().map(|c| ContainerSize {
            cpu: applied.and_then(|p| p.container_cpu).unwrap_or(c.cpu),
            memory_mib: applied.and_then(|p| p.container_memory_mib).unwrap_or(c.memory_mib),
            tasks: applied.and_then(|p| p.container_tasks).unwrap_or(c.desired_count),
        }),
    }
}

/// In Auto mode, makes the desired state use the decided sizes.
pub fn apply_sizes(desired: &mut Desired, decided: &AllocationStatus) {
    if let (Some(function), Some(memory)) = (desired.function.as_mut(), decided.function_memory_mib) {
        function.memory_mib = memory;
    }
    if let Some(container) = desired.container.as_mut() {
        if let (Some(cpu), Some(memory)) = (decided.container_cpu, decided.container_memory_mib) {
            container.cpu = cpu;
            container.memory_mib = memory;
        }
        // With autoscaling on, the count is Application Auto Scaling's to set.
        if let (Some(tasks), None) = (decided.container_tasks, &container.autoscaling) {
            container.desired_count = tasks;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("time"))
    }

    fn summary(average: f64, maximum: f64, sum: f64) -> Summary {
        Summary { sum, average, maximum, p95: None, samples: 10.0 }
    }

    fn observed() -> Observed {
        Observed {
            window_seconds: 3600.0,
            invocations: Some(summary(1.0, 1.0, 3600.0)),
            duration_ms: Some(summary(40.0, 60.0, 400.0)),
            cpu_percent: Some(summary(5.0, 9.0, 50.0)),
            memory_percent: Some(summary(30.0, 35.0, 300.0)),
            alb_requests: Some(summary(1.0, 1.0, 3600.0)),
            ..Observed::default()
        }
    }

    const RUNNING: Sizes = Sizes {
        function_memory_mib: Some(1024),
        architecture: Architecture::Arm64,
        provisioned: 0,
        container: Some(ContainerSize { cpu: 1024, memory_mib: 2048, tasks: 3 }),
    };

    #[test]
    fn recommend_reports_without_changing_anything() {
        let spec = AllocationSpec::default();
        let status = decide(&spec, &observed(), RUNNING, None, &at(1000), &PriceTable::default());
        // p95 falls back to the maximum (60 ms at 1024 MiB): 256 MiB predicts 240 ms × 1.2 > 200; 384 → 160 × 1.2 = 192.
        assert_eq!(status.function_memory_mib, Some(384));
        assert_eq!(status.function_p95_ms, Some(60.0));
        // 5 % of 3 × 1024 CPU = 153.6 units, under 60 %/1.2 room needs 307: one 512 task; 30 % of
        // 2048 MiB = 614 MiB under 70 %/1.2 room needs 1053 MiB: 2048 MiB.
        assert_eq!(
            (status.container_cpu, status.container_memory_mib, status.container_tasks),
            (Some(512), Some(2048), Some(1))
        );
        assert_eq!(status.requests_per_second, 2.0);
        assert!(status.function_monthly_usd.is_some() && status.container_monthly_usd.is_some());
        assert_eq!(status.cheaper.as_deref(), Some("function"));
        assert!(status.last_change_time.is_none(), "Recommend never changes anything");
        // Same data, same answer.
        assert_eq!(decide(&spec, &observed(), RUNNING, Some(&status), &at(2000), &PriceTable::default()), status);
    }

    #[test]
    fn auto_applies_then_holds_still() {
        let spec = AllocationSpec { mode: AllocationMode::Auto, ..AllocationSpec::default() };
        let first = decide(&spec, &observed(), RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!(first.function_memory_mib, Some(384));
        assert_eq!(first.last_change_time, Some(at(1000)));
        // Within the cooldown, even new data changes nothing.
        let mut hotter = observed();
        hotter.duration_ms = Some(summary(400.0, 600.0, 4000.0));
        let running = Sizes {
            function_memory_mib: first.function_memory_mib,
            container: Some(ContainerSize { cpu: 256, memory_mib: 512, tasks: 1 }),
            ..RUNNING
        };
        let held = decide(&spec, &hotter, running, Some(&first), &at(1100), &PriceTable::default());
        assert_eq!(held.function_memory_mib, Some(384));
        assert_eq!(held.last_change_time, Some(at(1000)));
        assert!(
            held.notes.iter().any(|n| n.starts_with("function: ")
                && n.contains("MiB kept: the cooldown holds changes until 1970-01-01T00:46:40Z")),
            "{:?}",
            held.notes
        );
        // After the cooldown it grows.
        let grown = decide(&spec, &hotter, running, Some(&first), &at(1000 + 31 * 60), &PriceTable::default());
        assert!(grown.function_memory_mib > Some(384));
    }

    #[test]
    fn a_function_in_trouble_is_not_shrunk() {
        let spec = AllocationSpec { mode: AllocationMode::Auto, ..AllocationSpec::default() };
        let mut throttled = observed();
        throttled.throttles = Some(summary(0.5, 3.0, 12.0));
        let status = decide(&spec, &throttled, RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!((status.function_memory_mib, status.function_throttles), (Some(1024), Some(12)));
        assert!(
            status
                .notes
                .contains(&"function: kept at 1024 MiB, not 384: 0 errors and 12 throttles in the window".into()),
            "{:?}",
            status.notes
        );
        let mut failing = observed();
        failing.errors = Some(summary(0.1, 1.0, 2.0));
        let status = decide(&spec, &failing, RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!((status.function_memory_mib, status.function_errors), (Some(1024), Some(2)));
        // Growth is still allowed: a slow, throttled function gets more memory.
        throttled.duration_ms = Some(summary(300.0, 400.0, 3000.0));
        assert!(
            decide(&spec, &throttled, RUNNING, None, &at(1000), &PriceTable::default()).function_memory_mib
                > Some(1024)
        );
    }

    #[test]
    fn slow_tasks_are_not_shrunk() {
        let spec = AllocationSpec::default();
        let mut slow = observed();
        // 350 ms at the load balancer against a 200 ms target: keep 3 × 1024/2048 although CPU is idle.
        slow.alb_response_seconds = Some(summary(0.2, 0.35, 100.0));
        let status = decide(&spec, &slow, RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!(status.container_p95_ms, Some(350.0));
        assert_eq!(
            status.notes,
            [
                "container: kept at 1024 CPU / 2048 MiB × 3, not 512 CPU / 2048 MiB × 1: p95 350 ms at the load balancer is over the 200 ms target"
            ]
        );
        assert_eq!(
            (status.container_cpu, status.container_memory_mib, status.container_tasks),
            (Some(1024), Some(2048), Some(3))
        );
        // Fast enough: the idle tasks shrink as before.
        slow.alb_response_seconds = Some(summary(0.02, 0.05, 10.0));
        let status = decide(&spec, &slow, RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!((status.container_cpu, status.container_tasks), (Some(512), Some(1)));
    }

    #[test]
    fn a_recent_reading_is_reused_for_the_same_window_only() {
        let cache = MetricsCache::default();
        let t0 = std::time::Instant::now();
        let hour = Duration::from_secs(3600);
        let minute = Duration::from_secs(60);
        assert_eq!(cache.fresh("uid", hour, minute, t0), None);
        cache.store("uid", hour, observed(), t0);
        assert_eq!(cache.fresh("uid", hour, minute, t0 + Duration::from_secs(5)), Some(observed()));
        assert_eq!(cache.fresh("other", hour, minute, t0 + Duration::from_secs(5)), None);
        assert_eq!(cache.fresh("uid", hour, minute, t0 + minute), None, "too old");
        assert_eq!(cache.fresh("uid", Duration::from_secs(600), minute, t0), None, "another window");
        cache.forget("uid");
        assert_eq!(cache.fresh("uid", hour, minute, t0), None);
    }

    #[test]
    fn only_metrics_since_the_last_change_count() {
        let hour = Duration::from_secs(3600);
        assert_eq!(effective_window(hour, None, &at(10_000)), hour);
        assert_eq!(effective_window(hour, Some(&at(9_000)), &at(10_000)), Duration::from_secs(1000));
        assert_eq!(effective_window(hour, Some(&at(1_000)), &at(10_000)), hour);
    }

    #[test]
    fn a_recommendation_is_not_taken_for_what_runs() {
        let owner = crate::desired::Owner { namespace: "n".into(), name: "b".into(), uid: "0123abcd".into() };
        let spec: crate::crd::BlogDeploymentSpec =
            serde_saphyr::from_str("image: b:1\nfunction: {memoryMiB: 1024}\n").expect("spec");
        let desired = crate::desired::desired(&owner, &spec, "us-west-1");
        let recommended =
            AllocationStatus { applied: false, function_memory_mib: Some(384), ..AllocationStatus::default() };
        assert_eq!(running_sizes(&desired, AllocationMode::Auto, Some(&recommended)).function_memory_mib, Some(1024));
        let applied = AllocationStatus { applied: true, ..recommended };
        assert_eq!(running_sizes(&desired, AllocationMode::Auto, Some(&applied)).function_memory_mib, Some(384));
        assert_eq!(running_sizes(&desired, AllocationMode::Recommend, Some(&applied)).function_memory_mib, Some(1024));
    }

    #[test]
    fn no_metrics_keeps_the_running_sizes() {
        let spec = AllocationSpec { mode: AllocationMode::Auto, ..AllocationSpec::default() };
        let none = Observed { window_seconds: 3600.0, ..Observed::default() };
        let status = decide(&spec, &none, RUNNING, None, &at(1), &PriceTable::default());
        assert_eq!(status.function_memory_mib, Some(1024));
        assert_eq!((status.container_cpu, status.container_tasks), (Some(1024), Some(3)));
        assert!(status.last_change_time.is_none());
        assert_eq!(
            status.notes,
            ["function: no Duration metrics in the window", "container: no CPUUtilization metrics in the window"]
        );
    }
}
