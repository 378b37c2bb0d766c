//! The allocation decision: from a window of metrics and the sizes that ran, recommend (Recommend)
//! or settle (Auto) the sizes and price both variants. Pure: the same inputs give the same answer.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::pricing::{self, ContainerSize, FunctionSize, PriceTable, Traffic};
use super::recommend::{self, ContainerLoad, FunctionLoad, Policy};
use crate::crd::{AllocationMode, AllocationSpec, AllocationStatus, Architecture};
use crate::desired::Desired;

/// One metric summarised over the window (`p95` only where the source computes percentiles;
/// emulators do not, and then it is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub sum: f64,
    pub average: f64,
    pub maximum: f64,
    pub p95: Option<f64>,
    pub samples: f64,
}

/// One metric's per-period values over the window, one series per statistic, as `GetMetricData`
/// returns them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub sums: Vec<f64>,
    pub sample_counts: Vec<f64>,
    pub maxima: Vec<f64>,
    pub p95s: Vec<f64>,
}

impl Summary {
    /// The window's summary of one metric from its per-period series; `None` when no period had
    /// data. The average is the window's sum over its samples (the per-period averages weighted by
    /// their counts); the largest per-period p95 bounds the window's p95 from above.
    #[must_use]
    pub fn of_series(series: &Series) -> Option<Self> {
        if series.sample_counts.is_empty() && series.sums.is_empty() {
            return None;
        }
        let sum: f64 = series.sums.iter().sum();
        let samples: f64 = series.sample_counts.iter().sum();
        Some(Self {
            sum,
            average: if samples > 0.0 { sum / samples } else { 0.0 },
            maximum: series.maxima.iter().copied().fold(0.0, f64::max),
            p95: series.p95s.iter().copied().reduce(f64::max),
            samples,
        })
    }
}

/// Bytes per request assumed for the load balancer's processed-bytes dimension.
const BYTES_PER_REQUEST: f64 = 2048.0;

/// What CloudWatch said about the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowMetrics {
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

impl WindowMetrics {
    /// Requests per second over the window, both variants together.
    #[must_use]
    pub fn requests_per_second(&self) -> f64 {
        let requests = self.invocations.map_or(0.0, |s| s.sum) + self.alb_requests.map_or(0.0, |s| s.sum);
        if self.window_seconds > 0.0 { requests / self.window_seconds } else { 0.0 }
    }
}

/// The part of the window to read: only what was measured since the last applied change, since
/// metrics taken at the old sizes would be read as if taken at the new ones (and a recommender fed
/// them walks the sizes further on every reconcile).
#[must_use]
pub fn effective_window(window: Duration, last_change: Option<&Time>, now: &Time) -> Duration {
    let since_change = last_change.map(|t| u64::try_from(now.0.as_second() - t.0.as_second()).unwrap_or(0));
    since_change.map_or(window, |s| window.min(Duration::from_secs(s)))
}

/// The sizes a decision starts from: what ran while the metrics were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub function_memory_mib: Option<i32>,
    pub architecture: Architecture,
    /// Provisioned concurrency of the function (0: none); priced, never changed by allocation.
    pub provisioned: i32,
    pub container: Option<ContainerSize>,
    /// Application Auto Scaling sets the task count: allocation sizes the tasks, never their number.
    pub autoscaled: bool,
}

fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// How fast Auto may move: the cooldown since the last applied change. Recommend never holds.
struct Pace<'a> {
    auto: bool,
    since_last: Option<u64>,
    cooldown: u64,
    last_change: Option<&'a Time>,
}

impl Pace<'_> {
    /// The size to run: `proposed` in Recommend mode; in Auto, what hysteresis and the cooldown
    /// allow, with a note when that is not `proposed`.
    fn settle<T: Copy + PartialEq>(
        &self,
        current: T,
        proposed: T,
        grows: bool,
        saving: f64,
        what: String,
        notes: &mut Vec<String>,
    ) -> T {
        if !self.auto {
            return proposed;
        }
        let settled = recommend::settle(current, proposed, grows, saving, self.since_last, self.cooldown);
        if settled != proposed {
            notes.push(self.held(&what));
        }
        settled
    }

    /// Why `settle` kept the current size: the cooldown, or too small a saving.
    fn held(&self, what: &str) -> String {
        if recommend::cooled(self.since_last, self.cooldown) {
            let percent = recommend::MIN_SAVING * 100.0;
            return format!("{what}: a shrink that saves under {percent:.0} % is not worth a deployment");
        }
        let until = self
            .last_change
            .and_then(|t| k8s_openapi::jiff::Timestamp::from_second(t.0.as_second() + self.cooldown as i64).ok())
            .map_or_else(String::new, |t| format!(" until {t}"));
        format!("{what}: the cooldown holds changes{until}")
    }
}

/// The function's memory: from its p95 duration, never shrunk while it has errors or throttles
/// (they may be timeouts or out-of-memory, and a slower function needs more concurrency).
fn function_memory(
    current: i32,
    observed: &WindowMetrics,
    policy: &Policy,
    pace: &Pace<'_>,
    notes: &mut Vec<String>,
) -> i32 {
    let Some(p95) = observed.duration_ms.map(|d| d.p95.unwrap_or(d.maximum)) else {
        notes.push("function: no Duration metrics in the window".to_owned());
        return current;
    };
    let (errors, throttles) = (count(observed.errors).unwrap_or(0), count(observed.throttles).unwrap_or(0));
    let mut proposed = recommend::function_memory(current, FunctionLoad { p95_duration_ms: p95 }, policy);
    if (errors > 0 || throttles > 0) && proposed < current {
        notes.push(format!(
            "function: kept at {current} MiB, not {proposed}: {errors} errors and {throttles} throttles in the window"
        ));
        proposed = current;
    }
    let saving = 1.0 - f64::from(proposed) / f64::from(current);
    let what = format!("function: {proposed} MiB recommended, {current} MiB kept");
    pace.settle(current, proposed, proposed > current, saving, what, notes)
}

fn describe(s: &ContainerSize) -> String {
    format!("{} CPU / {} MiB × {}", s.cpu, s.memory_mib, s.tasks)
}

/// The tasks' size and count: from CPU and memory utilization; the count left to Application Auto
/// Scaling when it owns it; never cheaper while the load balancer sees slow responses.
fn container_size(
    running: &Sizes,
    current: ContainerSize,
    observed: &WindowMetrics,
    context: (&Policy, &PriceTable, &Pace<'_>),
    notes: &mut Vec<String>,
) -> ContainerSize {
    let (policy, prices, pace) = context;
    let Some(cpu) = observed.cpu_percent else {
        notes.push("container: no CPUUtilization metrics in the window".to_owned());
        return current;
    };
    let memory = observed.memory_percent.map_or(0.0, |m| m.average);
    let load = ContainerLoad { cpu_percent: cpu.average, memory_percent: memory };
    let hourly = |s: &ContainerSize| pricing::fargate_hourly(prices, s);
    let mut proposed = recommend::container_size(current, load, policy, prices);
    if running.autoscaled && proposed.tasks != current.tasks {
        notes.push(format!(
            "container: the task count is Application Auto Scaling's ({} running, {} would fit the load)",
            current.tasks, proposed.tasks
        ));
        proposed.tasks = current.tasks;
    }
    if let Some(ms) = container_p95_ms(observed).filter(|ms| *ms > policy.latency_p95_ms)
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
    let grows = proposed.cpu * proposed.tasks > current.cpu * current.tasks || proposed.memory_mib > current.memory_mib;
    let saving = 1.0 - hourly(&proposed) / hourly(&current);
    let what = format!("container: {} recommended, {} kept", describe(&proposed), describe(&current));
    pace.settle(current, proposed, grows, saving, what, notes)
}

fn count(summary: Option<Summary>) -> Option<i64> {
    summary.map(|s| s.sum.round() as i64)
}

fn container_p95_ms(observed: &WindowMetrics) -> Option<f64> {
    observed.alb_response_seconds.map(|r| r.p95.unwrap_or(r.maximum) * 1000.0)
}

/// Both variants priced at the observed traffic.
struct Costs {
    requests_per_second: f64,
    function: Option<f64>,
    container: Option<f64>,
    break_even: Option<f64>,
}

fn costs(
    observed: &WindowMetrics,
    running: &Sizes,
    function_memory: Option<i32>,
    container: Option<ContainerSize>,
    prices: &PriceTable,
) -> Costs {
    let rps = observed.requests_per_second();
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
    let break_even = match (function_size, container) {
        (Some(f), Some(c)) => pricing::break_even_rps(prices, f, c, duration_ms, BYTES_PER_REQUEST),
        _ => None,
    };
    Costs {
        requests_per_second: rps,
        function: function_size.map(|f| pricing::function_monthly(prices, f, &traffic)),
        container: container.map(|c| pricing::container_monthly(prices, c, &traffic)),
        break_even,
    }
}

/// Recommends (Recommend) or settles (Auto) the sizes, and prices both variants at the observed
/// traffic. Pure: the same inputs give the same answer, so repeated reconciles never flap.
#[must_use]
pub fn decide(
    spec: &AllocationSpec,
    limits: &crate::tenancy::Limits,
    observed: &WindowMetrics,
    running: Sizes,
    previous: Option<&AllocationStatus>,
    now: &Time,
    prices: &PriceTable,
) -> AllocationStatus {
    let policy = Policy::from(spec).within(limits);
    let last_change = previous.and_then(|p| p.last_change_time.as_ref());
    let pace = Pace {
        auto: spec.mode == AllocationMode::Auto,
        since_last: last_change.map(|t| u64::try_from(now.0.as_second() - t.0.as_second()).unwrap_or(0)),
        cooldown: u64::try_from(spec.cooldown_minutes).unwrap_or(0) * 60,
        last_change,
    };
    // Why a size is not what the metrics alone would give, for status.allocation.notes.
    let mut notes = Vec::new();
    let function_memory = running.function_memory_mib.map(|c| function_memory(c, observed, &policy, &pace, &mut notes));
    let container =
        running.container.map(|c| container_size(&running, c, observed, (&policy, prices, &pace), &mut notes));
    let changed = function_memory != running.function_memory_mib || container != running.container;
    let costs = costs(observed, &running, function_memory, container, prices);
    let cheaper = match (costs.function, costs.container) {
        (Some(f), Some(c)) => Some(if f <= c { "function" } else { "container" }.to_owned()),
        _ => None,
    };
    AllocationStatus {
        applied: pace.auto,
        requests_per_second: (costs.requests_per_second * 1000.0).round() / 1000.0,
        function_memory_mib: function_memory,
        function_p95_ms: observed.duration_ms.map(|d| d.p95.unwrap_or(d.maximum)),
        container_cpu: container.map(|c| c.cpu),
        container_memory_mib: container.map(|c| c.memory_mib),
        container_tasks: container.map(|c| c.tasks),
        function_errors: count(observed.errors),
        function_throttles: count(observed.throttles),
        container_cpu_percent: observed.cpu_percent.map(|c| c.average),
        container_p95_ms: container_p95_ms(observed),
        function_monthly_usd: costs.function.map(cents),
        container_monthly_usd: costs.container.map(cents),
        break_even_requests_per_second: costs.break_even.map(|r| (r * 10.0).round() / 10.0),
        cheaper,
        last_change_time: if pace.auto && changed { Some(now.clone()) } else { last_change.cloned() },
        notes,
    }
}

/// The sizes running now: in Auto, the ones the last decision applied (not a mere recommendation
/// from Recommend mode); otherwise the spec's. With autoscaling on, the task count is the one ECS
/// reports (`ecs_desired_tasks`), since allocation never sets it then.
#[must_use]
pub fn running_sizes(
    desired: &Desired,
    mode: AllocationMode,
    previous: Option<&AllocationStatus>,
    ecs_desired_tasks: Option<i32>,
) -> Sizes {
    let applied = previous.filter(|p| mode == AllocationMode::Auto && p.applied);
    let function = desired.function.as_ref();
    let container = desired.container.as_ref();
    let autoscaled = container.is_some_and(|c| c.scaling.is_some());
    Sizes {
        function_memory_mib: function.map(|f| applied.and_then(|p| p.function_memory_mib).unwrap_or(f.memory_mib)),
        architecture: function.map_or(Architecture::Arm64, |f| f.architecture),
        provisioned: function.and_then(|f| f.provisioned_concurrency).unwrap_or(0),
        container: container.map(|c| ContainerSize {
            cpu: applied.and_then(|p| p.container_cpu).unwrap_or(c.cpu),
            memory_mib: applied.and_then(|p| p.container_memory_mib).unwrap_or(c.memory_mib),
            tasks: if autoscaled {
                ecs_desired_tasks.unwrap_or(c.desired_count)
            } else {
                applied.and_then(|p| p.container_tasks).unwrap_or(c.desired_count)
            },
        }),
        autoscaled,
    }
}

/// The note of an `AllocationChanged` Event, when the allocation about to be published sizes
/// anything differently from the stored one. Derived from the status transition, so a decision
/// whose apply failed (and so was not published) is not announced, nor announced again each retry.
#[must_use]
pub fn change_note(
    mode: AllocationMode,
    previous: Option<&AllocationStatus>,
    next: Option<&AllocationStatus>,
) -> Option<String> {
    let next = next?;
    let sizes =
        |a: &AllocationStatus| (a.function_memory_mib, a.container_cpu, a.container_memory_mib, a.container_tasks);
    if previous.map(sizes) == Some(sizes(next)) {
        return None;
    }
    let verb = if mode == AllocationMode::Auto { "applying" } else { "recommending" };
    let shown = |v: Option<i32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    Some(format!(
        "{verb} function {} MiB, container {} CPU / {} MiB × {} tasks; cheaper: {}",
        shown(next.function_memory_mib),
        shown(next.container_cpu),
        shown(next.container_memory_mib),
        shown(next.container_tasks),
        next.cheaper.as_deref().unwrap_or("n/a"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::Limits;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("time"))
    }

    fn summary(average: f64, maximum: f64, sum: f64) -> Summary {
        Summary { sum, average, maximum, p95: None, samples: 10.0 }
    }

    fn metrics() -> WindowMetrics {
        WindowMetrics {
            window_seconds: 3600.0,
            invocations: Some(summary(1.0, 1.0, 3600.0)),
            duration_ms: Some(summary(40.0, 60.0, 400.0)),
            cpu_percent: Some(summary(5.0, 9.0, 50.0)),
            memory_percent: Some(summary(30.0, 35.0, 300.0)),
            alb_requests: Some(summary(1.0, 1.0, 3600.0)),
            ..WindowMetrics::default()
        }
    }

    const RUNNING: Sizes = Sizes {
        function_memory_mib: Some(1024),
        architecture: Architecture::Arm64,
        provisioned: 0,
        container: Some(ContainerSize { cpu: 1024, memory_mib: 2048, tasks: 3 }),
        autoscaled: false,
    };

    #[test]
    fn a_summary_joins_the_periods_of_a_window() {
        assert_eq!(Summary::of_series(&Series::default()), None, "no data");
        let two_periods =
            Series { sums: vec![100.0, 300.0], sample_counts: vec![2.0, 6.0], maxima: vec![70.0, 90.0], p95s: vec![] };
        assert_eq!(
            Summary::of_series(&two_periods),
            Some(Summary { sum: 400.0, average: 50.0, maximum: 90.0, p95: None, samples: 8.0 })
        );
        let with_p95 = Series { p95s: vec![60.0, 85.0], ..two_periods };
        assert_eq!(Summary::of_series(&with_p95).and_then(|s| s.p95), Some(85.0));
    }

    #[test]
    fn recommend_reports_without_changing_anything() {
        let spec = AllocationSpec::default();
        let status = decide(&spec, &Limits::default(), &metrics(), RUNNING, None, &at(1000), &PriceTable::default());
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
        assert_eq!(
            decide(&spec, &Limits::default(), &metrics(), RUNNING, Some(&status), &at(2000), &PriceTable::default()),
            status
        );
    }

    #[test]
    fn auto_applies_then_holds_still() {
        let spec = AllocationSpec { mode: AllocationMode::Auto, ..AllocationSpec::default() };
        let first = decide(&spec, &Limits::default(), &metrics(), RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!(first.function_memory_mib, Some(384));
        assert_eq!(first.last_change_time, Some(at(1000)));
        // Within the cooldown, even new data changes nothing.
        let mut hotter = metrics();
        hotter.duration_ms = Some(summary(400.0, 600.0, 4000.0));
        let running = Sizes {
            function_memory_mib: first.function_memory_mib,
            container: Some(ContainerSize { cpu: 256, memory_mib: 512, tasks: 1 }),
            ..RUNNING
        };
        let held = decide(&spec, &Limits::default(), &hotter, running, Some(&first), &at(1100), &PriceTable::default());
        assert_eq!(held.function_memory_mib, Some(384));
        assert_eq!(held.last_change_time, Some(at(1000)));
        assert!(
            held.notes.iter().any(|n| n.starts_with("function: ")
                && n.contains("MiB kept: the cooldown holds changes until 1970-01-01T00:46:40Z")),
            "{:?}",
            held.notes
        );
        // After the cooldown it grows.
        let grown = decide(
            &spec,
            &Limits::default(),
            &hotter,
            running,
            Some(&first),
            &at(1000 + 31 * 60),
            &PriceTable::default(),
        );
        assert!(grown.function_memory_mib > Some(384));
    }

    #[test]
    fn a_function_in_trouble_is_not_shrunk() {
        let spec = AllocationSpec { mode: AllocationMode::Auto, ..AllocationSpec::default() };
        let mut throttled = metrics();
        throttled.throttles = Some(summary(0.5, 3.0, 12.0));
        let status = decide(&spec, &Limits::default(), &throttled, RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!((status.function_memory_mib, status.function_throttles), (Some(1024), Some(12)));
        assert!(
            status
                .notes
                .contains(&"function: kept at 1024 MiB, not 384: 0 errors and 12 throttles in the window".into()),
            "{:?}",
            status.notes
        );
        let mut failing = metrics();
        failing.errors = Some(summary(0.1, 1.0, 2.0));
        let status = decide(&spec, &Limits::default(), &failing, RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!((status.function_memory_mib, status.function_errors), (Some(1024), Some(2)));
        // Growth is still allowed: a slow, throttled function gets more memory.
        throttled.duration_ms = Some(summary(300.0, 400.0, 3000.0));
        assert!(
            decide(&spec, &Limits::default(), &throttled, RUNNING, None, &at(1000), &PriceTable::default())
                .function_memory_mib
                > Some(1024)
        );
    }

    #[test]
    fn slow_tasks_are_not_shrunk() {
        let spec = AllocationSpec::default();
        let mut slow = metrics();
        // 350 ms at the load balancer against a 200 ms target: keep 3 × 1024/2048 although CPU is idle.
        slow.alb_response_seconds = Some(summary(0.2, 0.35, 100.0));
        let status = decide(&spec, &Limits::default(), &slow, RUNNING, None, &at(1000), &PriceTable::default());
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
        let status = decide(&spec, &Limits::default(), &slow, RUNNING, None, &at(1000), &PriceTable::default());
        assert_eq!((status.container_cpu, status.container_tasks), (Some(512), Some(1)));
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
        let desired = crate::desired::desired(&owner, &spec, &crate::desired::Inputs::region("us-west-1"));
        let recommended =
            AllocationStatus { applied: false, function_memory_mib: Some(384), ..AllocationStatus::default() };
        assert_eq!(
            running_sizes(&desired, AllocationMode::Auto, Some(&recommended), None).function_memory_mib,
            Some(1024)
        );
        let applied = AllocationStatus { applied: true, ..recommended };
        assert_eq!(running_sizes(&desired, AllocationMode::Auto, Some(&applied), None).function_memory_mib, Some(384));
        assert_eq!(
            running_sizes(&desired, AllocationMode::Recommend, Some(&applied), None).function_memory_mib,
            Some(1024)
        );
    }

    #[test]
    fn with_autoscaling_the_task_count_is_what_ecs_reports() {
        let owner = crate::desired::Owner { namespace: "n".into(), name: "b".into(), uid: "0123abcd".into() };
        let yaml = "image: b:1\ncontainer: {desiredCount: 2, autoscaling: {minTasks: 1, maxTasks: 10}}\n";
        let spec: crate::crd::BlogDeploymentSpec = serde_saphyr::from_str(yaml).expect("spec");
        let desired = crate::desired::desired(&owner, &spec, &crate::desired::Inputs::region("us-west-1"));
        // Auto once "applied" 5 tasks, but with autoscaling on it never set the count: ECS runs 3.
        let last = AllocationStatus { applied: true, container_tasks: Some(5), ..AllocationStatus::default() };
        let running = running_sizes(&desired, AllocationMode::Auto, Some(&last), Some(3));
        assert_eq!(running.container.map(|c| c.tasks), Some(3));
        assert!(running.autoscaled);
        // And a decision keeps the count, saying why.
        let spec = AllocationSpec { mode: AllocationMode::Auto, ..AllocationSpec::default() };
        let quiet = WindowMetrics { cpu_percent: Some(summary(2.0, 3.0, 20.0)), ..metrics() };
        let running = Sizes { container: Some(ContainerSize { cpu: 1024, memory_mib: 2048, tasks: 8 }), ..running };
        let decided = decide(&spec, &Limits::default(), &quiet, running, None, &at(1000), &PriceTable::default());
        assert_eq!(decided.container_tasks, Some(8));
        assert!(
            decided.notes.iter().any(|n| n.contains("Application Auto Scaling's (8 running")),
            "{:?}",
            decided.notes
        );
    }

    #[test]
    fn a_change_is_announced_once_and_only_when_published() {
        let old = AllocationStatus { function_memory_mib: Some(1024), ..AllocationStatus::default() };
        let new = AllocationStatus { function_memory_mib: Some(384), cheaper: Some("function".into()), ..old.clone() };
        let note = change_note(AllocationMode::Auto, Some(&old), Some(&new));
        assert_eq!(
            note.as_deref(),
            Some("applying function 384 MiB, container - CPU / - MiB × - tasks; cheaper: function")
        );
        // An apply that failed publishes the stored allocation again: nothing to announce.
        assert_eq!(change_note(AllocationMode::Auto, Some(&old), Some(&old)), None);
        assert_eq!(change_note(AllocationMode::Auto, Some(&new), Some(&new)), None);
        assert_eq!(change_note(AllocationMode::Manual, Some(&old), None), None);
        assert!(
            change_note(AllocationMode::Recommend, None, Some(&new)).is_some_and(|n| n.starts_with("recommending"))
        );
    }

    #[test]
    fn no_metrics_keeps_the_running_sizes() {
        let spec = AllocationSpec { mode: AllocationMode::Auto, ..AllocationSpec::default() };
        let none = WindowMetrics { window_seconds: 3600.0, ..WindowMetrics::default() };
        let status = decide(&spec, &Limits::default(), &none, RUNNING, None, &at(1), &PriceTable::default());
        assert_eq!(status.function_memory_mib, Some(1024));
        assert_eq!((status.container_cpu, status.container_tasks), (Some(1024), Some(3)));
        assert!(status.last_change_time.is_none());
        assert_eq!(
            status.notes,
            ["function: no Duration metrics in the window", "container: no CPUUtilization metrics in the window"]
        );
    }

    #[test]
    fn auto_stays_inside_the_platforms_task_ceilings() {
        let spec = AllocationSpec { mode: AllocationMode::Auto, max_tasks: 10, ..AllocationSpec::default() };
        let mut busy = metrics();
        busy.cpu_percent = Some(summary(95.0, 99.0, 950.0));
        busy.memory_percent = Some(summary(90.0, 95.0, 900.0));
        let open = decide(&spec, &Limits::default(), &busy, RUNNING, None, &at(1000), &PriceTable::default());
        assert!(open.container_cpu > Some(1024), "without ceilings the task grows: {open:?}");
        let limits = Limits {
            max_task_cpu: Some(1024),
            max_task_memory_mib: Some(4096),
            max_tasks: Some(4),
            ..Limits::default()
        };
        let capped = decide(&spec, &limits, &busy, RUNNING, None, &at(1000), &PriceTable::default());
        assert!(capped.container_cpu <= Some(1024), "{capped:?}");
        assert!(capped.container_memory_mib <= Some(4096), "{capped:?}");
        assert!(capped.container_tasks <= Some(4), "{capped:?}");
    }
}
