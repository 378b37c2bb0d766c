//! Reads readers' beacons back from home's CloudWatch, summed over the window. An area is a
//! candidate and a distance band: first each area's own candidate is read (every beacon measures
//! its own area's candidate, so this finds the areas readers came from), then every other
//! candidate for those areas only.

use std::time::Duration;

use blog_aws::beacons::{CANDIDATE, NEAREST, ROUND_TRIP, areas_of};
use blog_core::placement::readers::{Readings, RoundTrips};

use crate::cloud::cloudwatch::{self, MetricRead};
use crate::cloud::{AwsClients, CloudResult};

/// Every area readers can count in, with its own candidate: each candidate, alone and with each
/// distance band.
fn areas(candidates: &[String]) -> Vec<(String, String)> {
    candidates.iter().flat_map(|c| areas_of(c).map(move |area| (area, c.clone()))).collect()
}

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
    let mut readings = read_pairs(clients, namespace, &areas(candidates), window).await?;
    let others: Vec<(String, String)> = readings
        .keys()
        .flat_map(|(area, own)| candidates.iter().filter(move |c| *c != own).map(move |c| (area.clone(), c.clone())))
        .collect();
    if !others.is_empty() {
        readings.extend(read_pairs(clients, namespace, &others, window).await?);
    }
    Ok(readings)
}

/// The round trips of each (area, candidate) pair that beacons measured, in as few
/// `GetMetricData` calls as fit.
async fn read_pairs(
    clients: &AwsClients,
    namespace: &str,
    pairs: &[(String, String)],
    window: Duration,
) -> CloudResult<Readings> {
    let dimensions: Vec<[(&str, &str); 2]> =
        pairs.iter().map(|(area, region)| [(NEAREST, area.as_str()), (CANDIDATE, region.as_str())]).collect();
    let reads: Vec<Vec<MetricRead<'_>>> = dimensions
        .iter()
        .map(|dimensions| vec![MetricRead { namespace, metric: ROUND_TRIP, dimensions, percentile: false }])
        .collect();
    let summaries = cloudwatch::summaries_of_many(clients, &reads, window).await?;
    Ok(pairs
        .iter()
        .zip(summaries.into_iter().flatten())
        .filter_map(|(pair, summary)| {
            let summary = summary.filter(|s| s.samples > 0.0)?;
            Some((pair.clone(), RoundTrips { count: summary.samples, mean_ms: summary.average }))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use blog_aws::beacons::area_of;

    #[test]
    fn every_band_of_every_candidate_is_read_and_named_as_core_reads_it() {
        let areas = areas(&["us-west-1".to_owned(), "eu-central-1".to_owned()]);
        let names: Vec<&str> = areas.iter().map(|(area, _)| area.as_str()).collect();
        assert_eq!(names.len(), 10);
        assert_eq!(names[..5], ["us-west-1", "us-west-1+50", "us-west-1+100", "us-west-1+150", "us-west-1+200"]);
        assert!(areas.iter().all(|(area, own)| blog_core::placement::readers::candidate_of(area) == own));
        // The service names areas (blog-aws), the placement reads them (blog-core): the same names.
        for ms in [0.0, 12.5, 49.9, 50.0, 99.0, 120.0, 151.0, 250.0, 2_000.0] {
            let name = area_of("eu-central-1", ms);
            assert_eq!(name, blog_core::placement::readers::area_of("eu-central-1", ms));
            assert_eq!(blog_core::placement::readers::candidate_of(&name), "eu-central-1");
            assert!(names.contains(&name.as_str()), "{name} is read");
        }
    }
}
