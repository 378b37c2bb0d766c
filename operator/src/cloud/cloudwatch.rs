//! CloudWatch: summaries of the metrics the recommender reads, over a window; and the alarms that
//! drive step scaling.

pub use crate::allocation::Summary;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
pub use aws_sdk_cloudwatch::types::ComparisonOperator;
use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm, Statistic, Tag};

use super::{AwsClients, CloudResult, map_sdk};

const SERVICE: &str = "cloudwatch";

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

/// An alarm the operator wants: on one metric's average over `period`, firing `action`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    pub dimensions: Vec<(String, String)>,
    pub period_seconds: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison: ComparisonOperator,
    pub action: String,
}

impl Alarm {
    fn matches(&self, found: &MetricAlarm) -> bool {
        let dimensions: Vec<(String, String)> = found
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap_or_default().to_owned(), d.value().unwrap_or_default().to_owned()))
            .collect();
        found.namespace() == Some(self.namespace)
            && found.metric_name() == Some(self.metric)
            && found.statistic() == Some(&Statistic::Average)
            && found.period() == Some(self.period_seconds)
            && found.evaluation_periods() == Some(self.evaluation_periods)
            && found.threshold().is_some_and(|t| (t - self.threshold).abs() < f64::EPSILON)
            && found.comparison_operator() == Some(&self.comparison)
            && dimensions == self.dimensions
            && found.alarm_actions() == [self.action.clone()]
    }
}

/// The metric alarms whose names start with `prefix`.
async fn alarms(clients: &AwsClients, prefix: &str) -> CloudResult<Vec<MetricAlarm>> {
    let mut found = Vec::new();
    let mut next = None;
    loop {
        let out = clients
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .set_next_token(next)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DescribeAlarms"))?;
        found.extend(out.metric_alarms.unwrap_or_default());
        next = out.next_token.filter(|t| !t.is_empty());
        if next.is_none() {
            return Ok(found);
        }
    }
}

/// Makes the alarms named `prefix…` exactly `wanted`: puts the missing or changed ones (tagged) and
/// deletes the others.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_alarms(
    clients: &AwsClients,
    prefix: &str,
    wanted: &[Alarm],
    tags: &BTreeMap<String, String>,
) -> CloudResult<()> {
    let existing = alarms(clients, prefix).await?;
    for alarm in wanted {
        if existing.iter().any(|found| found.alarm_name() == Some(alarm.name.as_str()) && alarm.matches(found)) {
            continue;
        }
        clients
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&alarm.name)
            .alarm_description("managed by blog-operator: drives a step-scaling policy")
            .namespace(alarm.namespace)
            .metric_name(alarm.metric)
            .set_dimensions(Some(
                alarm
                    .dimensions
                    .iter()
                    .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                    .collect(),
            ))
            .statistic(Statistic::Average)
            .period(alarm.period_seconds)
            .evaluation_periods(alarm.evaluation_periods)
            .threshold(alarm.threshold)
            .comparison_operator(alarm.comparison.clone())
            .treat_missing_data("notBreaching")
            .alarm_actions(&alarm.action)
            .set_tags(Some(super::tags::sdk_tags(tags, |k, v| Some(Tag::builder().key(k).value(v).build()))))
            .send()
            .await
            .map_err(map_sdk(SERVICE, "PutMetricAlarm"))?;
    }
    let stale: Vec<String> = existing
        .iter()
        .filter_map(|found| found.alarm_name())
        .filter(|name| !wanted.iter().any(|w| w.name == *name))
        .map(str::to_owned)
        .collect();
    if !stale.is_empty() {
        clients
            .cloudwatch
            .delete_alarms()
            .set_alarm_names(Some(stale))
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DeleteAlarms"))?;
    }
    Ok(())
}
