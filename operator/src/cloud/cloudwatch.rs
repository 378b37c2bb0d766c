//! CloudWatch: summaries of the metrics the recommender reads, over a window.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};

use super::{AwsClients, CloudResult, map_sdk};

const SERVICE: &str = "cloudwatch";

/// One metric over the window: sum, count-weighted average, maximum and p95 (when CloudWatch
/// computes percentiles; emulators do not, and then `p95` is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub sum: f64,
    pub average: f64,
    pub maximum: f64,
    pub p95: Option<f64>,
    pub samples: f64,
}

/// Reads one metric, summarised over the last `window`; `None` when there is no data.
///
/// # Errors
/// The AWS failure.
pub async fn summary(
    clients: &AwsClients,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    window: Duration,
) -> CloudResult<Option<Summary>> {
    let end = SystemTime::now();
    let start = end - window;
    let period = i32::try_from(window.as_secs().clamp(60, 86_400) / 60 * 60).unwrap_or(3600);
    let out = clients
        .cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(
            dimensions.iter().map(|(name, value)| Dimension::builder().name(*name).value(*value).build()).collect(),
        ))
        .start_time(DateTime::from(start))
        .end_time(DateTime::from(end))
        .period(period)
        .statistics(Statistic::Sum)
        .statistics(Statistic::Average)
        .statistics(Statistic::Maximum)
        .statistics(Statistic::SampleCount)
        .extended_statistics("p95")
        .send()
        .await
        .map_err(map_sdk(SERVICE, "GetMetricStatistics"))?;
    let points = out.datapoints();
    if points.is_empty() {
        return Ok(None);
    }
    let mut total = Summary::default();
    let mut weighted = 0.0;
    let mut p95s = Vec::new();
    for point in points {
        let samples = point.sample_count().unwrap_or(1.0);
        total.sum += point.sum().unwrap_or(0.0);
        total.samples += samples;
        weighted += point.average().unwrap_or(0.0) * samples;
        total.maximum = total.maximum.max(point.maximum().unwrap_or(0.0));
        if let Some(p95) = point.extended_statistics().and_then(|e| e.get("p95")) {
            p95s.push(*p95);
        }
    }
    total.average = if total.samples > 0.0 { weighted / total.samples } else { 0.0 };
    // The largest per-period p95 bounds the window's p95 from above.
    total.p95 = p95s.into_iter().reduce(f64::max);
    Ok(Some(total))
}
