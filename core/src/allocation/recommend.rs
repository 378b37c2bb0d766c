//! The right-sizing recommender: the smallest Lambda memory that meets the latency target with
//! headroom, and the cheapest valid Fargate size and task count that keep utilization under target.
//! Pure functions over metric summaries, with hysteresis and a cooldown so that repeated
//! reconciles on the same data never flap.
//!
//! Models, deliberately simple and stated:
//! - Lambda CPU grows linearly with memory, so a CPU-bound handler's duration scales as
//!   `duration × current / candidate`. For I/O-bound handlers this over-estimates the gain of more
//!   memory and the loss of less; the headroom absorbs part of it.
//! - Fargate CPU demand is `utilization × capacity` and stays the same when capacity changes;
//!   memory use per task stays the same whatever the task count.

use super::pricing::{ContainerSize, PriceTable, fargate_hourly};
use crate::aws::FARGATE_SIZES;
use crate::crd::AllocationSpec;

/// Lambda memory sizes the recommender chooses from (MiB).
pub const MEMORY_LADDER: [i32; 13] = [128, 256, 384, 512, 768, 1024, 1536, 2048, 3008, 4096, 6144, 8192, 10240];

/// What the function did over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunctionLoad {
    pub p95_duration_ms: f64,
}

/// What the service did over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerLoad {
    /// Average CPU utilization of the service, percent of its reserved CPU.
    pub cpu_percent: f64,
    /// Average memory utilization, percent of its reserved memory.
    pub memory_percent: f64,
}

/// Targets and limits the user sets (`spec.allocation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub latency_p95_ms: f64,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    /// Fraction kept free beyond the target, e.g. 0.2.
    pub headroom: f64,
    pub min_memory_mib: i32,
    pub max_memory_mib: i32,
    pub min_cpu: i32,
    pub max_cpu: i32,
    /// The largest task memory (MiB) a size may have: the platform's ceiling, if any.
    pub max_task_memory_mib: i32,
    pub min_tasks: i32,
    pub max_tasks: i32,
}

impl From<&AllocationSpec> for Policy {
    /// The spec's targets and bounds; headroom and the CPU range are the recommender's own.
    fn from(spec: &AllocationSpec) -> Self {
        Self {
            latency_p95_ms: f64::from(spec.latency_p95_ms),
            cpu_percent: f64::from(spec.cpu_percent),
            memory_percent: f64::from(spec.memory_percent),
            headroom: 0.2,
            min_memory_mib: spec.min_memory_mib,
            max_memory_mib: spec.max_memory_mib,
            min_cpu: 256,
            max_cpu: 4096,
            max_task_memory_mib: 30_720,
            min_tasks: spec.min_tasks,
            max_tasks: spec.max_tasks,
        }
    }
}

impl Policy {
    /// These bounds, narrowed to the platform's ceilings: Auto never sizes above what a tenant may
    /// write by hand.
    #[must_use]
    pub fn within(self, limits: &crate::tenancy::Limits) -> Self {
        let (cpu, memory) = limits.task_bounds();
        let narrow = |value: i32, ceiling: Option<i32>| ceiling.map_or(value, |c| value.min(c));
        Self {
            max_cpu: self.max_cpu.min(cpu),
            max_task_memory_mib: self.max_task_memory_mib.min(memory),
            max_memory_mib: narrow(self.max_memory_mib, limits.max_function_memory_mib),
            max_tasks: narrow(self.max_tasks, limits.max_tasks),
            ..self
        }
    }
}

impl Default for Policy {
    /// The CRD's defaults: one source, `AllocationSpec::default()`.
    fn default() -> Self {
        Self::from(&AllocationSpec::default())
    }
}

/// The smallest ladder memory in bounds whose predicted p95 (with headroom) meets the target; the
/// largest in bounds when none does.
#[must_use]
pub fn function_memory(current_mib: i32, load: FunctionLoad, policy: &Policy) -> i32 {
    let allowed: Vec<i32> =
        MEMORY_LADDER.iter().copied().filter(|m| (policy.min_memory_mib..=policy.max_memory_mib).contains(m)).collect();
    let predicted = |m: i32| load.p95_duration_ms * f64::from(current_mib) / f64::from(m);
    allowed
        .iter()
        .copied()
        .find(|m| predicted(*m) * (1.0 + policy.headroom) <= policy.latency_p95_ms)
        .or_else(|| allowed.last().copied())
        .unwrap_or(current_mib)
}

/// Valid Fargate (cpu, memory) pairs within the policy's CPU bounds.
fn fargate_sizes(policy: &Policy) -> impl Iterator<Item = (i32, i32)> + '_ {
    FARGATE_SIZES
        .iter()
        .filter(|(cpu, _)| (policy.min_cpu..=policy.max_cpu).contains(cpu))
        .flat_map(|(cpu, memory)| memory.sizes().into_iter().map(move |mib| (*cpu, mib)))
        .filter(|(_, mib)| *mib <= policy.max_task_memory_mib)
}

/// The cheapest valid task size and count, within bounds, that keeps CPU and memory utilization
/// (with headroom) under target; the biggest allowed when nothing fits.
#[must_use]
pub fn container_size(
    current: ContainerSize,
    load: ContainerLoad,
    policy: &Policy,
    prices: &PriceTable,
) -> ContainerSize {
    let demand_cpu = load.cpu_percent / 100.0 * f64::from(current.cpu) * f64::from(current.tasks.max(1));
    let demand_memory = load.memory_percent / 100.0 * f64::from(current.memory_mib);
    let cpu_room = policy.cpu_percent / 100.0 / (1.0 + policy.headroom);
    let memory_room = policy.memory_percent / 100.0 / (1.0 + policy.headroom);
    let hourly = |s: &ContainerSize| fargate_hourly(prices, s);
    let mut best: Option<(f64, ContainerSize)> = None;
    // Never the current size itself: it may lie above a ceiling set since.
    let mut biggest: Option<ContainerSize> = None;
    for (cpu, memory) in fargate_sizes(policy) {
        for tasks in policy.min_tasks.max(1)..=policy.max_tasks.max(policy.min_tasks.max(1)) {
            let size = ContainerSize { cpu, memory_mib: memory, tasks };
            if biggest.as_ref().is_none_or(|b| hourly(&size) > hourly(b) || b.tasks < policy.min_tasks) {
                biggest = Some(size);
            }
            let fits = f64::from(cpu) * f64::from(tasks) * cpu_room >= demand_cpu
                && f64::from(memory) * memory_room >= demand_memory;
            let cost = hourly(&size);
            // Cheapest first; on a tie, fewer and larger tasks (fewer moving parts).
            let better =
                best.as_ref().is_none_or(|(c, b)| cost < *c - 1e-9 || ((cost - c).abs() < 1e-9 && tasks < b.tasks));
            if fits && better {
                best = Some((cost, size));
            }
        }
    }
    best.map(|(_, size)| size).or(biggest).unwrap_or(current)
}

/// The least saving a shrink must bring to be worth a deployment.
pub const MIN_SAVING: f64 = 0.10;

/// Whether the cooldown since the last applied change is over (or nothing was ever changed).
#[must_use]
pub fn cooled(seconds_since_last_change: Option<u64>, cooldown_seconds: u64) -> bool {
    seconds_since_last_change.is_none_or(|s| s >= cooldown_seconds)
}

/// Hysteresis: keep `current` unless `proposed` is needed (it adds capacity the current size
/// lacks) or saves enough to be worth a change, and never change twice within the cooldown.
#[must_use]
pub fn settle<T: PartialEq + Copy>(
    current: T,
    proposed: T,
    grows: bool,
    saving_fraction: f64,
    seconds_since_last_change: Option<u64>,
    cooldown_seconds: u64,
) -> T {
    if proposed == current {
        return current;
    }
    // Growing is never delayed by hysteresis (a missed target hurts users), only by the cooldown;
    // shrinking must save at least MIN_SAVING to be worth a deployment.
    if cooled(seconds_since_last_change, cooldown_seconds) && (grows || saving_fraction >= MIN_SAVING) {
        proposed
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prices() -> PriceTable {
        PriceTable::default()
    }

    #[test]
    fn function_memory_examples() {
        let policy = Policy::default();
        // 90 ms at 512 MiB: 256 MiB predicts 180 ms, × 1.2 = 216 > 200; 384 predicts 120 → 144 ≤ 200.
        assert_eq!(function_memory(512, FunctionLoad { p95_duration_ms: 90.0 }, &policy), 384);
        // Far too slow even at the top: the largest allowed.
        assert_eq!(function_memory(512, FunctionLoad { p95_duration_ms: 5000.0 }, &policy), 3008);
        // Very fast: the smallest.
        assert_eq!(function_memory(512, FunctionLoad { p95_duration_ms: 10.0 }, &policy), 128);
    }

    #[test]
    fn container_examples() {
        let policy = Policy::default();
        let current = ContainerSize { cpu: 256, memory_mib: 512, tasks: 2 };
        // Idle: one small task.
        let idle =
            container_size(current, ContainerLoad { cpu_percent: 5.0, memory_percent: 30.0 }, &policy, &prices());
        assert_eq!(idle, ContainerSize { cpu: 256, memory_mib: 512, tasks: 1 });
        // Hot: 90 % of 2 × 256 = 460.8 units of demand; under 50 % room that is 922 units.
        let hot =
            container_size(current, ContainerLoad { cpu_percent: 90.0, memory_percent: 30.0 }, &policy, &prices());
        assert!(f64::from(hot.cpu * hot.tasks) * 0.5 >= 460.8, "{hot:?}");
    }

    #[test]
    fn settle_examples() {
        assert_eq!(settle(512, 1024, true, 0.0, Some(10), 600), 512, "within the cooldown nothing moves");
        assert_eq!(settle(512, 1024, true, 0.0, Some(600), 600), 1024);
        assert_eq!(settle(512, 384, false, 0.05, None, 600), 512, "a 5 % saving is not worth a deployment");
        assert_eq!(settle(512, 256, false, 0.5, None, 600), 256);
    }

    fn policy() -> impl Strategy<Value = Policy> {
        (0usize..6, 6usize..13, 1i32..4, 4i32..12).prop_map(|(lo, hi, min_tasks, max_tasks)| Policy {
            min_memory_mib: MEMORY_LADDER[lo],
            max_memory_mib: MEMORY_LADDER[hi],
            min_tasks,
            max_tasks,
            ..Policy::default()
        })
    }

    proptest! {
        #[test]
        fn function_memory_stays_in_bounds_and_grows_with_latency(
            p in policy(), current in prop::sample::select(MEMORY_LADDER.to_vec()), a in 1.0f64..5000.0, b in 1.0f64..5000.0,
        ) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let m_low = function_memory(current, FunctionLoad { p95_duration_ms: low }, &p);
            let m_high = function_memory(current, FunctionLoad { p95_duration_ms: high }, &p);
            prop_assert!((p.min_memory_mib..=p.max_memory_mib).contains(&m_low));
            prop_assert!((p.min_memory_mib..=p.max_memory_mib).contains(&m_high));
            prop_assert!(m_low <= m_high, "more latency never means less memory");
        }

        #[test]
        fn function_memory_is_a_fixed_point_once_applied(
            p in policy(), current in prop::sample::select(MEMORY_LADDER.to_vec()), p95 in 1.0f64..2000.0,
        ) {
            let first = function_memory(current, FunctionLoad { p95_duration_ms: p95 }, &p);
            // After applying it, the model predicts this p95 at the new size: the same answer comes back.
            let after = p95 * f64::from(current) / f64::from(first);
            prop_assert_eq!(function_memory(first, FunctionLoad { p95_duration_ms: after }, &p), first);
        }

        #[test]
        fn container_size_is_valid_bounded_and_grows_with_load(
            p in policy(), a in 0.0f64..100.0, b in 0.0f64..100.0, memory in 1.0f64..95.0,
        ) {
            let current = ContainerSize { cpu: 512, memory_mib: 1024, tasks: 2 };
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let small = container_size(current, ContainerLoad { cpu_percent: low, memory_percent: memory }, &p, &prices());
            let big = container_size(current, ContainerLoad { cpu_percent: high, memory_percent: memory }, &p, &prices());
            for size in [small, big] {
                prop_assert!(crate::validate::check_fargate_size(size.cpu, size.memory_mib).is_ok());
                prop_assert!((p.min_cpu..=p.max_cpu).contains(&size.cpu));
                prop_assert!((p.min_tasks..=p.max_tasks).contains(&size.tasks));
            }
            prop_assert!(small.cpu * small.tasks <= big.cpu * big.tasks, "more CPU load never means less CPU: {small:?} {big:?}");
        }

        #[test]
        fn container_size_is_stable_on_unchanged_input(p in policy(), cpu in 0.0f64..100.0, memory in 1.0f64..95.0) {
            let current = ContainerSize { cpu: 512, memory_mib: 1024, tasks: 2 };
            let load = ContainerLoad { cpu_percent: cpu, memory_percent: memory };
            prop_assert_eq!(container_size(current, load, &p, &prices()), container_size(current, load, &p, &prices()));
        }
    }
}
