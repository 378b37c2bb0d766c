//! CloudWatch: summaries of the metrics the recommender reads, over a window, in one request; and the alarms that
//! drive step scaling.

use super::Call;
use blog_core::allocation::Series;
pub use blog_core::allocation::Summary;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
pub use aws_sdk_cloudwatch::types::ComparisonOperator;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, Statistic, Tag};

use super::{AwsClients, CloudResult, map_sdk};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "MetricReads",
    "Effect": "Allow",
    "Action": [
      "cloudwatch:GetMetricData",
      "cloudwatch:DescribeAlarms"
    ],
    "Resource": "*"
  },
  {
    "Sid": "OnlyItsAlarmsAndTargetTrackingOnes",
    "Effect": "Allow",
    "Action": [
      "cloudwatch:PutMetricAlarm",
      "cloudwatch:DeleteAlarms",
      "cloudwatch:TagResource"
    ],
    "Resource": [
      "arn:aws:cloudwatch:*:*:alarm:blog-*",
      "arn:aws:cloudwatch:*:*:alarm:TargetTracking-service/blog-*"
    ]
  }
]"#;

pub(crate) const SERVICE: &str = "cloudwatch";

const ALARM: &str = "arn:aws:cloudwatch:{region}:{account}:alarm:{service}-step-cpu-out";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("put a step alarm", "cloudwatch:PutMetricAlarm", ALARM),
    Call::new("tag it", "cloudwatch:TagResource", ALARM),
    Call::new("delete it", "cloudwatch:DeleteAlarms", ALARM),
    Call::new(
        "target tracking's alarm",
        "cloudwatch:PutMetricAlarm",
        "arn:aws:cloudwatch:{region}:{account}:alarm:TargetTracking-service/{cluster}/{service}-AlarmHigh-1",
    ),
    Call::new("find alarms", "cloudwatch:DescribeAlarms", "*"),
    Call::new("read metrics", "cloudwatch:GetMetricData", "*"),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, super::ErrorKind)] = &[];

/// One metric the recommender reads; `percentile` asks for its p95 too (latencies).
#[derive(Debug, Clone, Copy)]
pub struct MetricRead<'a> {
    pub namespace: &'a str,
    pub metric: &'a str,
    pub dimensions: &'a [(&'a str, &'a str)],
    pub percentile: bool,
}

/// The statistics read of every metric, by the suffix of their query id.
const STATISTICS: [(&str, &str); 4] = [("sum", "Sum"), ("n", "SampleCount"), ("max", "Maximum"), ("p95", "p95")];

/// Reads every metric in `reads` over the last `window` in one `GetMetricData` request (and its
/// pages), each summarised; `None` for a metric with no data.
///
/// # Errors
/// The AWS failure.
pub async fn summaries(
    clients: &AwsClients,
    reads: &[MetricRead<'_>],
    window: Duration,
) -> CloudResult<Vec<Option<Summary>>> {
    let values = fetch(clients, queries(reads, "", window), window).await?;
    Ok(summarise(values, reads.len()))
}

/// [`summaries`] of many objects' reads over the same `window`: as many as fit go in one
/// `GetMetricData` of up to 500 queries (19 objects with both variants), an object's reads never
/// split between two; each object's summaries in order.
///
/// # Errors
/// The AWS failure.
pub async fn summaries_of_many(
    clients: &AwsClients,
    many: &[Vec<MetricRead<'_>>],
    window: Duration,
) -> CloudResult<Vec<Vec<Option<Summary>>>> {
    let mut summaries = Vec::with_capacity(many.len());
    let mut batch: Vec<MetricDataQuery> = Vec::new();
    let mut first = 0;
    for (j, reads) in many.iter().enumerate() {
        let queries = queries(reads, &format!("o{j}_"), window);
        if !batch.is_empty() && batch.len() + queries.len() > MAX_QUERIES {
            let values = fetch(clients, std::mem::take(&mut batch), window).await?;
            summaries.extend(split(values, &many[first..j], first));
            first = j;
        }
        batch.extend(queries);
    }
    if !batch.is_empty() {
        let values = fetch(clients, batch, window).await?;
        summaries.extend(split(values, &many[first..], first));
    }
    Ok(summaries)
}

/// The most queries one `GetMetricData` takes.
const MAX_QUERIES: usize = 500;

/// Values by query id.
type Values = HashMap<String, Vec<f64>>;

/// Each object's summaries from a batch's values, objects numbered from `first`.
fn split(mut values: Values, objects: &[Vec<MetricRead<'_>>], first: usize) -> Vec<Vec<Option<Summary>>> {
    (first..)
        .zip(objects)
        .map(|(j, reads)| {
            let prefix = format!("o{j}_");
            let own: Values = values
                .extract_if(|id, _| id.starts_with(&prefix))
                .map(|(id, v)| (id[prefix.len()..].to_owned(), v))
                .collect();
            summarise(own, reads.len())
        })
        .collect()
}

/// The queries of `reads`, their ids `{prefix}m{i}_{statistic}`.
fn queries(reads: &[MetricRead<'_>], prefix: &str, window: Duration) -> Vec<MetricDataQuery> {
    let period = i32::try_from(window.as_secs().clamp(60, 86_400) / 60 * 60).unwrap_or(3600);
    reads
        .iter()
        .enumerate()
        .flat_map(|(i, read)| {
            let wanted = STATISTICS.iter().filter(move |(id, _)| read.percentile || *id != "p95");
            wanted.map(move |(id, stat)| query(&format!("{prefix}m{i}_{id}"), read, period, stat))
        })
        .collect()
}

/// Every value of `queries` over the last `window`, by query id, through all pages.
async fn fetch(clients: &AwsClients, queries: Vec<MetricDataQuery>, window: Duration) -> CloudResult<Values> {
    let end = SystemTime::now();
    let mut values: Values = HashMap::new();
    let mut next = None;
    loop {
        let out = clients
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(DateTime::from(end - window))
            .end_time(DateTime::from(end))
            .set_next_token(next)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "GetMetricData"))?;
        for result in out.metric_data_results() {
            let id = result.id().unwrap_or_default().to_owned();
            values.entry(id).or_default().extend(result.values());
        }
        next = out.next_token.filter(|t| !t.is_empty());
        if next.is_none() {
            return Ok(values);
        }
    }
}

/// Each of `reads` metrics' summary from its values (ids without prefix).
fn summarise(mut values: Values, reads: usize) -> Vec<Option<Summary>> {
    let mut take = |i: usize, id: &str| values.remove(&format!("m{i}_{id}")).unwrap_or_default();
    (0..reads)
        .map(|i| {
            let series = Series {
                sums: take(i, "sum"),
                sample_counts: take(i, "n"),
                maxima: take(i, "max"),
                p95s: take(i, "p95"),
            };
            Summary::of_series(&series)
        })
        .collect()
}

fn query(id: &str, read: &MetricRead<'_>, period: i32, stat: &str) -> MetricDataQuery {
    let dimensions = read.dimensions.iter().map(|(name, value)| Dimension::builder().name(*name).value(*value).build());
    let metric = Metric::builder()
        .namespace(read.namespace)
        .metric_name(read.metric)
        .set_dimensions(Some(dimensions.collect()))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(stat).build())
        .build()
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

/// Which of the alarms named `names` are in `ALARM` now (one `DescribeAlarms`, at most 100 names).
///
/// # Errors
/// The AWS failure.
pub async fn firing(clients: &AwsClients, names: &[String]) -> CloudResult<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeAlarms"))?;
    Ok(out.metric_alarms().iter().filter_map(|a| a.alarm_name().map(str::to_owned)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_object_takes_its_own_values_from_a_batch() {
        let read = MetricRead { namespace: "N", metric: "M", dimensions: &[], percentile: false };
        let objects = vec![vec![read], vec![read, read]];
        let value = |id: &str, v: f64| (id.to_owned(), vec![v]);
        let values = Values::from([value("o1_m0_sum", 1.0), value("o1_m0_n", 1.0), value("o2_m1_sum", 5.0), value("o2_m1_n", 1.0)]);
        let split = split(values, &objects, 1);
        assert_eq!(split.len(), 2);
        assert_eq!(split[0][0].map(|s| s.sum), Some(1.0), "object 1");
        assert_eq!((split[1][0], split[1][1].map(|s| s.sum)), (None, Some(5.0)), "object 2, its second metric");
    }

    #[test]
    fn summaries_take_their_own_values_by_index_and_statistic() {
        let value = |id: &str, v: Vec<f64>| (id.to_owned(), v);
        let values = Values::from([value("m0_sum", vec![3.0, 4.0]), value("m0_n", vec![2.0]), value("m1_n", vec![1.0])]);
        let summaries = summarise(values, 3);
        assert_eq!(summaries[0].map(|s| (s.sum, s.average)), Some((7.0, 3.5)));
        assert_eq!(summaries[1].map(|s| s.samples), Some(1.0));
        assert!(summaries[2].is_none(), "no data: no summary");
    }
}
