//! Per-object retry pacing: exponential backoff with jitter (backon), so that after an outage the
//! objects do not retry in lockstep, and a failing object slows down instead of hot-looping.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// One backoff per object key; an entry lives from an object's first failure (or wait) to its next
/// success, so the map never holds more than the objects that are failing now. The backoff grows
/// while the same thing keeps failing (an outage); a failure somewhere else means the last attempt
/// got further, so it starts again from the first delay.
#[derive(Debug)]
pub struct Backoffs {
    first: Duration,
    cap: Duration,
    by_object: Mutex<HashMap<String, (String, ExponentialBackoff)>>,
}

impl Backoffs {
    /// Delays start at `first` and double up to `cap`; jitter adds up to as much again.
    #[must_use]
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self { first, cap: cap.max(first), by_object: Mutex::new(HashMap::new()) }
    }

    /// The wait before the next attempt at `key` after a failure of kind `what` (say, the failing
    /// operation): one step longer than the last when `what` failed last time too, else the first.
    pub fn next(&self, key: &str, what: &str) -> Duration {
        let mut map = self.by_object.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(key.to_owned()).or_insert_with(|| (what.to_owned(), self.start(key)));
        if entry.0 != what {
            *entry = (what.to_owned(), self.start(key));
        }
        entry.1.next().unwrap_or(self.cap)
    }

    /// `key` succeeded (or is gone): its next failure starts again from `first`.
    pub fn reset(&self, key: &str) {
        self.by_object.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }

    /// How many objects are backing off now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_object.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The jitter is seeded from the key: a run can be replayed, and two objects still spread out.
    fn start(&self, key: &str) -> ExponentialBackoff {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .with_jitter()
            .with_jitter_seed(hasher.finish())
            .without_max_times()
            .build()
    }
}

/// The wait until an object's next resync: `period` times a factor in [0.75, 1.25), drawn from the
/// object's key and `turn`. Objects reconciled together (all of them, when the operator starts)
/// drift apart within a few periods instead of resyncing in the same second ever after.
#[must_use]
pub fn resync_delay(period: Duration, key: &str, turn: u64) -> Duration {
    let mut hasher = DefaultHasher::new();
    (key, turn).hash(&mut hasher);
    #[allow(clippy::cast_precision_loss)] // 53 bits: exact in an f64
    let draw = (hasher.finish() >> 11) as f64 / (1_u64 << 53) as f64;
    period.mul_f64(0.75 + 0.5 * draw)
}

/// [`resync_delay`] with the process's next turn.
#[must_use]
pub fn next_resync(period: Duration, key: &str) -> Duration {
    static TURN: AtomicU64 = AtomicU64::new(0);
    resync_delay(period, key, TURN.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_start_over_after_a_reset() {
        let backoffs = Backoffs::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<Duration> = (0..12).map(|_| backoffs.next("a", "DescribeTable")).collect();
        for (n, delay) in delays.iter().enumerate().take(6) {
            let floor = Duration::from_secs(1 << n);
            assert!(*delay >= floor && *delay < floor * 2, "attempt {n}: {delay:?}");
        }
        assert!(delays[8..].iter().all(|d| *d >= Duration::from_secs(60) && *d < Duration::from_secs(120)));
        backoffs.reset("a");
        assert!(backoffs.next("a", "DescribeTable") < Duration::from_secs(2));
        assert!(backoffs.next("a", "DescribeTable") >= Duration::from_secs(2));
        assert!(backoffs.next("a", "CreateService") < Duration::from_secs(2), "further along: from the start");
        assert_eq!(backoffs.len(), 1);
    }

    #[test]
    fn two_objects_failing_together_do_not_retry_in_lockstep() {
        let backoffs = Backoffs::new(Duration::from_secs(5), Duration::from_secs(300));
        let a: Vec<Duration> = (0..5).map(|_| backoffs.next("ns/a", "x")).collect();
        let b: Vec<Duration> = (0..5).map(|_| backoffs.next("ns/b", "x")).collect();
        assert_ne!(a, b);
        let again = Backoffs::new(Duration::from_secs(5), Duration::from_secs(300));
        assert_eq!(a, (0..5).map(|_| again.next("ns/a", "x")).collect::<Vec<_>>(), "same key, same delays");
    }

    #[test]
    fn resyncs_spread_over_half_the_period_around_it() {
        let period = Duration::from_secs(300);
        let delays: Vec<Duration> = (0..1000).map(|n| resync_delay(period, &format!("ns/b{n}"), 0)).collect();
        assert!(delays.iter().all(|d| *d >= period.mul_f64(0.75) && *d < period.mul_f64(1.25)));
        // 1,000 objects reconciled in the same second: their next resyncs fall into many distinct
        // seconds, none holding more than a few.
        let mut per_second = HashMap::new();
        for delay in &delays {
            *per_second.entry(delay.as_secs()).or_insert(0) += 1;
        }
        assert!(per_second.len() > 120, "{} distinct seconds", per_second.len());
        assert!(per_second.values().all(|n| *n <= 20), "{per_second:?}");
        assert_ne!(resync_delay(period, "ns/a", 1), resync_delay(period, "ns/a", 2), "each turn draws again");
    }
}
