//! Readers' beacons: what a reader's page measured (its round trip to each candidate region of
//! the placement, and to each variant's API), checked, rate-limited and added up in memory, then
//! written to CloudWatch as counts and sums. Nothing about the reader is kept: no address, no
//! header, no time finer than the flush.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use blog_aws::beacons::{CANDIDATE, NEAREST, ROUND_TRIP, VARIANT, VARIANT_ROUND_TRIP, area_of};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::config::Readers;

/// The longest round trip a beacon may report, ms: anything slower is not a measurement.
pub const MAX_MS: f64 = 30_000.0;

/// What a reader's page measured, sent once per page view.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Beacon {
    /// The round trip to each candidate region the page timed (1 to 7, each region once).
    #[schema(min_items = 1, max_items = 7)]
    pub regions: Vec<RegionTime>,
    /// The round trip to each variant's API, when the page timed them (at most one each).
    #[serde(default)]
    #[schema(max_items = 2)]
    pub variants: Vec<VariantTime>,
}

/// One candidate region's round trip.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionTime {
    /// A candidate region of this blog's placement.
    #[schema(pattern = "^[a-z]{2}(-[a-z]+)+-[0-9]$", max_length = 32, example = "eu-central-1")]
    pub region: String,
    /// Milliseconds, more than 0 and at most 30000.
    #[schema(exclusive_minimum = 0, maximum = 30000)]
    pub ms: f64,
}

/// One variant's round trip.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantTime {
    pub variant: VariantName,
    /// Milliseconds, more than 0 and at most 30000.
    #[schema(exclusive_minimum = 0, maximum = 30000)]
    pub ms: f64,
}

/// The two variants, as the `x-blog-variant` header names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariantName {
    Functions,
    Containers,
}

impl VariantName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Functions => "functions",
            Self::Containers => "containers",
        }
    }
}

/// A beacon that passed its checks: the reader's area (the candidate nearest them, and how far),
/// and every time it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub nearest: String,
    pub regions: Vec<(String, f64)>,
    pub variants: Vec<(VariantName, f64)>,
}

impl Beacon {
    /// Checks the beacon against the placement's candidates.
    ///
    /// # Errors
    /// Why it is refused, for a person: a region that is no candidate, one named twice, a time out
    /// of range, no region at all.
    pub fn check(&self, candidates: &[String]) -> Result<Checked, String> {
        if self.regions.is_empty() || self.regions.len() > candidates.len() {
            return Err(format!("regions must hold 1 to {} candidate regions", candidates.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for time in &self.regions {
            if !candidates.contains(&time.region) {
                return Err(format!("{:?} is not a candidate region of this blog", time.region));
            }
            if !seen.insert(&time.region) {
                return Err(format!("{} is named twice", time.region));
            }
            in_range(time.ms)?;
        }
        let mut named = std::collections::BTreeSet::new();
        for time in &self.variants {
            if !named.insert(time.variant) {
                return Err("each variant may be named once".to_owned());
            }
            in_range(time.ms)?;
        }
        let variants: Vec<(VariantName, f64)> = self.variants.iter().map(|v| (v.variant, v.ms)).collect();
        let regions: Vec<(String, f64)> = self.regions.iter().map(|t| (t.region.clone(), t.ms)).collect();
        let nearest = regions
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(region, ms)| area_of(region, *ms))
            .unwrap_or_default();
        Ok(Checked { nearest, regions, variants })
    }
}

fn in_range(ms: f64) -> Result<(), String> {
    if ms.is_finite() && ms > 0.0 && ms <= MAX_MS {
        Ok(())
    } else {
        Err(format!("a round trip must be more than 0 and at most {MAX_MS} ms"))
    }
}

/// Count, sum, minimum and maximum of some round trips: CloudWatch's statistic set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// Adds one round trip to `key`'s statistics in `map`.
    fn add<K: Ord>(map: &mut BTreeMap<K, Self>, key: K, ms: f64) {
        let one = Self { count: 1.0, sum: ms, min: ms, max: ms };
        map.entry(key)
            .and_modify(|s| *s = Self { count: s.count + 1.0, sum: s.sum + ms, min: s.min.min(ms), max: s.max.max(ms) })
            .or_insert(one);
    }
}

/// One metric to write: its name, its dimensions and what was added up.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub metric: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
    pub stats: Stats,
}

/// Where the aggregates go: CloudWatch in the service, a list in tests.
#[async_trait]
pub trait MetricSink: Send + Sync {
    /// Writes `data` to `namespace`.
    ///
    /// # Errors
    /// The write's failure, for the log.
    async fn put(&self, namespace: &str, data: Vec<Datum>) -> Result<(), String>;
}

/// Tokens for beacons: `rate` a second, up to twice as many at once.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// What has been added up since the last write, and the rate limit.
#[derive(Debug)]
struct State {
    pairs: BTreeMap<(String, String), Stats>,
    variants: BTreeMap<VariantName, Stats>,
    /// When the aggregates were last written; `None` before the first write, which is due at once.
    flushed: Option<Instant>,
    bucket: Bucket,
}

/// The beacons of one process.
pub struct Beacons {
    pub readers: Readers,
    rate: f64,
    flush_every: Duration,
    state: Mutex<State>,
    sink: Arc<dyn MetricSink>,
}

/// Why a beacon was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooMany,
    Invalid(String),
}

impl Beacons {
    #[must_use]
    pub fn new(readers: Readers, (per_second, flush_every): (u32, Duration), sink: Arc<dyn MetricSink>) -> Self {
        let rate = f64::from(per_second.max(1));
        let bucket = Bucket { tokens: 2.0 * rate, last: Instant::now() };
        let state = State { pairs: BTreeMap::new(), variants: BTreeMap::new(), flushed: None, bucket };
        Self { readers, rate, flush_every, state: Mutex::new(state), sink }
    }

    /// How long beacons are added up before they are written.
    #[must_use]
    pub fn flush_every(&self) -> Duration {
        self.flush_every
    }

    /// Takes one beacon at `now`: checked, within the rate, added up.
    ///
    /// # Errors
    /// [`Refusal`]: over the rate, or not a valid beacon.
    pub fn take(&self, beacon: &Beacon, now: Instant) -> Result<(), Refusal> {
        let checked = beacon.check(&self.readers.candidates).map_err(Refusal::Invalid)?;
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = &mut state.bucket;
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(2.0 * self.rate);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            return Err(Refusal::TooMany);
        }
        bucket.tokens -= 1.0;
        for (region, ms) in checked.regions {
            Stats::add(&mut state.pairs, (checked.nearest.clone(), region), ms);
        }
        for (variant, ms) in checked.variants {
            Stats::add(&mut state.variants, variant, ms);
        }
        Ok(())
    }

    /// The aggregates to write now, taken out, when the flush is due at `now` (or `force`d) and
    /// anything was added up.
    pub fn due(&self, now: Instant, force: bool) -> Option<Vec<Datum>> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let waited = state.flushed.is_none_or(|at| now.saturating_duration_since(at) >= self.flush_every);
        if !(force || waited) || (state.pairs.is_empty() && state.variants.is_empty()) {
            return None;
        }
        state.flushed = Some(now);
        let pairs = std::mem::take(&mut state.pairs).into_iter().map(|((nearest, region), stats)| Datum {
            metric: ROUND_TRIP,
            dimensions: vec![(NEAREST, nearest), (CANDIDATE, region)],
            stats,
        });
        let variants = std::mem::take(&mut state.variants).into_iter().map(|(variant, stats)| Datum {
            metric: VARIANT_ROUND_TRIP,
            dimensions: vec![(VARIANT, variant.as_str().to_owned())],
            stats,
        });
        Some(pairs.chain(variants).collect())
    }

    /// Writes what is due; a failed write is logged and its aggregates dropped (a beacon is a
    /// sample: the next window has its own).
    pub async fn flush(&self, now: Instant, force: bool) {
        let Some(data) = self.due(now, force) else { return };
        let count = data.len();
        if let Err(error) = self.sink.put(&self.readers.namespace, data).await {
            tracing::warn!(%error, metrics = count, "cannot write readers' beacons; this window's are dropped");
        }
    }
}

/// CloudWatch's `PutMetricData`, as statistic sets.
pub struct CloudWatchSink(pub aws_sdk_cloudwatch::Client);

/// `PutMetricData` takes at most 1000 metrics a request.
const PER_REQUEST: usize = 1000;

#[async_trait]
impl MetricSink for CloudWatchSink {
    async fn put(&self, namespace: &str, data: Vec<Datum>) -> Result<(), String> {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
        let datum = |d: &Datum| {
            let dimensions =
                d.dimensions.iter().map(|(name, value)| Dimension::builder().name(*name).value(value).build());
            let set = StatisticSet::builder()
                .sample_count(d.stats.count)
                .sum(d.stats.sum)
                .minimum(d.stats.min)
                .maximum(d.stats.max)
                .build();
            MetricDatum::builder()
                .metric_name(d.metric)
                .set_dimensions(Some(dimensions.collect()))
                .statistic_values(set)
                .unit(StandardUnit::Milliseconds)
                .build()
        };
        for chunk in data.chunks(PER_REQUEST) {
            let request =
                self.0.put_metric_data().namespace(namespace).set_metric_data(Some(chunk.iter().map(datum).collect()));
            request.send().await.map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Kept(Mutex<Vec<(String, Vec<Datum>)>>);

    #[async_trait]
    impl MetricSink for Kept {
        async fn put(&self, namespace: &str, data: Vec<Datum>) -> Result<(), String> {
            self.0.lock().expect("lock").push((namespace.to_owned(), data));
            Ok(())
        }
    }

    fn readers() -> Readers {
        Readers {
            namespace: "BlogReaders/u".into(),
            region: None,
            candidates: vec!["us-west-1".into(), "eu-central-1".into()],
            probe_url: String::new(),
        }
    }

    fn beacon(json: serde_json::Value) -> Beacon {
        serde_json::from_value(json).expect("beacon")
    }

    #[test]
    fn a_beacon_names_candidates_once_with_times_in_range() {
        let candidates = readers().candidates;
        let good = beacon(
            serde_json::json!({"regions": [{"region": "us-west-1", "ms": 180.5}, {"region": "eu-central-1", "ms": 24.0}],
                                             "variants": [{"variant": "functions", "ms": 60.0}]}),
        );
        let checked = good.check(&candidates).expect("valid");
        assert_eq!(checked.nearest, "eu-central-1");
        // A reader far from every candidate counts apart from the nearest one's own readers.
        let far = beacon(
            serde_json::json!({"regions": [{"region": "us-west-1", "ms": 190.0}, {"region": "eu-central-1", "ms": 121.0}]}),
        );
        assert_eq!(far.check(&candidates).expect("valid").nearest, "eu-central-1+100");
        for (bad, why) in [
            (serde_json::json!({"regions": []}), "1 to 2"),
            (serde_json::json!({"regions": [{"region": "ap-south-1", "ms": 5}]}), "not a candidate"),
            (
                serde_json::json!({"regions": [{"region": "us-west-1", "ms": 5}, {"region": "us-west-1", "ms": 6}]}),
                "twice",
            ),
            (serde_json::json!({"regions": [{"region": "us-west-1", "ms": 0}]}), "more than 0"),
            (serde_json::json!({"regions": [{"region": "us-west-1", "ms": 30001}]}), "at most"),
            (
                serde_json::json!({"regions": [{"region": "us-west-1", "ms": 5}], "variants": [{"variant": "functions", "ms": 1}, {"variant": "functions", "ms": 2}]}),
                "once",
            ),
        ] {
            let refused = beacon(bad).check(&candidates).expect_err(why);
            assert!(refused.contains(why), "{refused}");
        }
    }

    #[tokio::test]
    async fn beacons_are_added_up_by_nearest_and_candidate_and_written_once_per_flush() {
        let sink = Arc::new(Kept(Mutex::new(Vec::new())));
        let beacons = Beacons::new(readers(), (20, Duration::from_secs(60)), sink.clone());
        let start = Instant::now();
        let eu = beacon(
            serde_json::json!({"regions": [{"region": "us-west-1", "ms": 170}, {"region": "eu-central-1", "ms": 20}]}),
        );
        let eu_slow = beacon(
            serde_json::json!({"regions": [{"region": "us-west-1", "ms": 190}, {"region": "eu-central-1", "ms": 30}]}),
        );
        beacons.take(&eu, start).expect("taken");
        beacons.flush(start, false).await;
        beacons.take(&eu_slow, start).expect("taken");
        beacons.flush(start + Duration::from_secs(30), false).await;
        assert_eq!(sink.0.lock().expect("lock").len(), 1, "the first is written at once, the next after the interval");
        beacons.flush(start + Duration::from_secs(60), false).await;
        let written = sink.0.lock().expect("lock").clone();
        assert_eq!(written.len(), 2);
        let (namespace, data) = &written[1];
        assert_eq!(namespace, "BlogReaders/u");
        let far = data
            .iter()
            .find(|d| d.dimensions == [(NEAREST, "eu-central-1".to_owned()), (CANDIDATE, "us-west-1".to_owned())])
            .expect("the far region, as seen from the EU");
        assert_eq!(far.stats, Stats { count: 1.0, sum: 190.0, min: 190.0, max: 190.0 });
        beacons.flush(start + Duration::from_secs(200), true).await;
        assert_eq!(sink.0.lock().expect("lock").len(), 2, "nothing added up, nothing written");
    }

    #[test]
    fn a_burst_over_twice_the_rate_is_refused_until_tokens_come_back() {
        let beacons = Beacons::new(readers(), (2, Duration::from_secs(60)), Arc::new(Kept(Mutex::new(Vec::new()))));
        let one = beacon(serde_json::json!({"regions": [{"region": "us-west-1", "ms": 20}]}));
        let now = Instant::now();
        for _ in 0..4 {
            beacons.take(&one, now).expect("within the burst");
        }
        assert_eq!(beacons.take(&one, now), Err(Refusal::TooMany));
        assert_eq!(beacons.take(&one, now + Duration::from_millis(600)), Ok(()), "one token a half second");
    }
}
