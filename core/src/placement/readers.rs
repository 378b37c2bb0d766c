//! Readers' own measurements: the round trips their browsers timed to each candidate region, sent
//! home in beacons and aggregated by the blog service into counts and sums by (the reader's area,
//! the candidate measured), never by address; an area is the candidate nearest the reader and, when
//! it is far, the band of that round trip. Pure: from those aggregates, demand by reader area and
//! the round trips the model uses in place of the matrix's.

use std::collections::BTreeMap;

use super::Demand;

/// The round trips of the beacons from one area (named by the candidate nearest those readers) to
/// one candidate region, over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundTrips {
    /// Beacons that measured it.
    pub count: f64,
    /// Their average round trip, ms.
    pub mean_ms: f64,
}

/// `(area, region)` → the round trips measured from that area to that region.
pub type Readings = BTreeMap<(String, String), RoundTrips>;

/// The fewest beacons in a window from which the placement takes demand and latency: below it, a
/// few readers would move the blog (and the advice says it has too few to go on).
pub const MIN_BEACONS: f64 = 30.0;

/// How readers' beacons are named, areas included: the very file the blog service and the operator
/// use (`blog_aws::beacons`), compiled here too, as this crate is free of the AWS SDK.
#[path = "../../../aws-shared/src/beacons.rs"]
pub mod names;

pub use names::{area_of, candidate_of};

/// Beacons in a window: one per reader page view, each counted once under its area.
#[must_use]
pub fn beacons(readings: &Readings) -> f64 {
    // A fold from +0: an empty sum of floats is -0, which prints as "-0".
    readers_by_area(readings).values().fold(0.0, |total, count| total + count)
}

/// Beacons by area: a beacon measures its own area's candidate (that is how its area is known).
fn readers_by_area(readings: &Readings) -> BTreeMap<String, f64> {
    readings
        .iter()
        .filter(|((area, region), _)| candidate_of(area) == region)
        .map(|((area, _), r)| (area.clone(), r.count))
        .collect()
}

/// Whether a window holds enough beacons to decide from.
#[must_use]
pub fn enough(readings: &Readings) -> bool {
    beacons(readings) >= MIN_BEACONS
}

/// Demand by reader area: `total_rps` (what every serving region measured) shared out as the
/// beacons are, so a reader served from far away counts where they are; a declared area no beacon
/// came from adds its declared share of `total_rps` (readers expected, not yet here; nothing
/// measured holds them, so nothing counts twice).
#[must_use]
pub fn demand(readings: &Readings, total_rps: f64, declared: &BTreeMap<String, u32>) -> Demand {
    let by_area = readers_by_area(readings);
    let total_beacons: f64 = by_area.values().sum();
    let total_declared: f64 = declared.values().map(|share| f64::from(*share)).sum();
    let mut demand: Demand = by_area
        .iter()
        .filter(|_| total_beacons > 0.0)
        .map(|(area, count)| (area.clone(), total_rps * count / total_beacons))
        .collect();
    let measured = |area: &str| by_area.keys().any(|seen| candidate_of(seen) == area);
    for (area, share) in declared.iter().filter(|(area, _)| !measured(area)) {
        if total_declared > 0.0 {
            demand.insert(area.clone(), total_rps * f64::from(*share) / total_declared);
        }
    }
    demand
}

/// The measured round trips as the model reads them: `(area, region)` → ms.
#[must_use]
pub fn round_trips(readings: &Readings) -> BTreeMap<(String, String), f64> {
    readings.iter().filter(|(_, r)| r.count > 0.0).map(|(key, r)| (key.clone(), r.mean_ms)).collect()
}

/// CloudWatch's custom metrics, per metric-month (the first 10,000 metrics).
pub const CUSTOM_METRIC_MONTH: f64 = 0.30;

/// What readers' beacons cost a month in CloudWatch: one custom metric per (nearest, candidate)
/// pair readers produced, and one per variant timed (two, once any beacon came). The
/// `PutMetricData` requests, one a minute per process at most ($0.01 per 1,000), are left out.
#[must_use]
pub fn metrics_monthly(readings: &Readings) -> f64 {
    let variants = if readings.is_empty() { 0.0 } else { 2.0 };
    (readings.len() as f64 + variants) * CUSTOM_METRIC_MONTH
}

/// `model` with readers' measured round trips in place of the matrix's, when the window holds
/// [`enough`] beacons to decide from.
#[must_use]
pub fn measured_model(model: &super::Model, readings: &Readings) -> Option<super::Model> {
    if !enough(readings) {
        return None;
    }
    let matrix = model.matrix.clone().with_readers(round_trips(readings));
    Some(super::Model { matrix, ..model.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(rows: &[(&str, &str, f64, f64)]) -> Readings {
        rows.iter()
            .map(|(area, region, count, mean_ms)| {
                (((*area).to_owned(), (*region).to_owned()), RoundTrips { count: *count, mean_ms: *mean_ms })
            })
            .collect()
    }

    #[test]
    fn far_readers_count_where_they_are_not_where_they_are_served() {
        // 30 beacons nearest eu-central-1, 10 nearest us-west-1; all served from us-west-1 today.
        let seen = readings(&[
            ("eu-central-1", "eu-central-1", 30.0, 25.0),
            ("eu-central-1", "us-west-1", 30.0, 180.0),
            ("us-west-1", "us-west-1", 10.0, 20.0),
            ("us-west-1", "eu-central-1", 10.0, 170.0),
        ]);
        let demand = demand(&seen, 8.0, &BTreeMap::new());
        assert_eq!(demand, BTreeMap::from([("eu-central-1".to_owned(), 6.0), ("us-west-1".to_owned(), 2.0)]));
        assert!((beacons(&seen) - 40.0).abs() < 1e-9 && enough(&seen));
    }

    #[test]
    fn readers_far_from_every_candidate_are_an_area_of_their_own_and_the_model_sees_their_round_trip() {
        assert_eq!(area_of("ap-northeast-1", 15.0), "ap-northeast-1");
        assert_eq!(area_of("ap-northeast-1", 118.9), "ap-northeast-1+100");
        assert_eq!(area_of("ap-northeast-1", 900.0), "ap-northeast-1+200");
        assert_eq!(candidate_of("ap-northeast-1+100"), "ap-northeast-1");
        // 90 beacons from Tokyo, 10 from Sydney: both nearest ap-northeast-1, Sydney at 119 ms.
        let seen = readings(&[
            ("ap-northeast-1", "ap-northeast-1", 90.0, 15.0),
            ("ap-northeast-1", "us-east-1", 90.0, 160.0),
            ("ap-northeast-1+100", "ap-northeast-1", 10.0, 119.0),
            ("ap-northeast-1+100", "us-east-1", 10.0, 245.0),
        ]);
        let demand = demand(&seen, 10.0, &BTreeMap::from([("ap-northeast-1".to_owned(), 100)]));
        let expected = [("ap-northeast-1".to_owned(), 9.0), ("ap-northeast-1+100".to_owned(), 1.0)];
        assert_eq!(demand, BTreeMap::from(expected), "measured: the declared share is not added");
        let model = measured_model(&super::super::Model::default(), &seen).expect("100 beacons");
        let placement = super::super::Placement::from([("ap-northeast-1".to_owned(), super::super::Variant::Function)]);
        let e = super::super::evaluate(&model, &placement, &demand, &super::super::Objective::default());
        // One mean of both (29 ms) would put every reader at 74 ms; Sydney's tenth is at 164.
        assert!((e.p95_ms - (119.0 + model.function_ms)).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn a_declared_area_counts_only_while_no_reader_is_measured_there() {
        let seen = readings(&[("us-west-1", "us-west-1", 40.0, 20.0), ("us-west-1", "sa-east-1", 40.0, 190.0)]);
        let declared = BTreeMap::from([("us-west-1".to_owned(), 75), ("sa-east-1".to_owned(), 25)]);
        let demand = demand(&seen, 4.0, &declared);
        // us-west-1's readers are measured: its declared share is not added on top.
        assert_eq!(demand, BTreeMap::from([("sa-east-1".to_owned(), 1.0), ("us-west-1".to_owned(), 4.0)]));
    }

    #[test]
    fn too_few_beacons_are_not_enough() {
        let seen = readings(&[("us-west-1", "us-west-1", 29.0, 20.0), ("us-west-1", "eu-central-1", 29.0, 150.0)]);
        assert!(!enough(&seen));
        assert_eq!(format!("{:.0}", beacons(&Readings::new())), "0", "not -0");
        assert!((metrics_monthly(&seen) - 4.0 * CUSTOM_METRIC_MONTH).abs() < 1e-9, "two pairs, two variants");
        assert_eq!(metrics_monthly(&Readings::new()), 0.0);
        assert_eq!(round_trips(&seen).get(&("us-west-1".to_owned(), "eu-central-1".to_owned())), Some(&150.0));
    }
}
