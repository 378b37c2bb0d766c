//! Reads readers' beacons back: one `GetMetricData` in home's CloudWatch for every (nearest,
//! candidate) pair of the placement's candidates, summed over the window.

use std::time::Duration;

use blog_aws::beacons::{CANDIDATE, NEAREST, ROUND_TRIP};
use blog_core::placement::readers::{Readings, RoundTrips};

use crate::cloud::cloudwatch::{self, MetricRead};
use crate::cloud::{AwsClients, CloudResult};

/// The round trips readers measured from each area to each candidate over `window`; a pair no
/// beacon measured is left out.
///
/// # Errors
/// CloudWatch's failure.
pub async fn read(
    clients: &AwsClients,
    namespace: &str,
    candidates: &[String],
    window: Duration,
) -> CloudResult<Readings> {
    let pairs: Vec<(&String, &String)> =
        candidates.iter().flat_map(|area| candidates.iter().map(move |region| (area, region))).collect();
    let dimensions: Vec<[(&str, &str); 2]> =
        pairs.iter().map(|(area, region)| [(NEAREST, area.as_str()), (CANDIDATE, region.as_str())]).collect();
    let reads: Vec<MetricRead<'_>> = dimensions
        .iter()
        .map(|dimensions| MetricRead { namespace, metric: ROUND_TRIP, dimensions, percentile: false })
        .collect();
    let summaries = cloudwatch::summaries(clients, &reads, window).await?;
    Ok(pairs
        .into_iter()
        .zip(summaries)
        .filter_map(|((area, region), summary)| {
            let summary = summary.filter(|s| s.samples > 0.0)?;
            Some(((area.clone(), region.clone()), RoundTrips { count: summary.samples, mean_ms: summary.average }))
        })
        .collect())
}
