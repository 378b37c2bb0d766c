//! Prometheus metrics: reconciles, failures by reason, reconcile duration, the worker queue, AWS
//! calls by service/operation/outcome, the inventories' size and age, and per BlogDeployment its cost estimates, sizes and
//! placement. Rendered at `/metrics` by the admin server; the chart's dashboard reads them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::BlogDeploymentStatus;

/// Each BlogDeployment's own series by (namespace, name), rendered at every scrape: an object
/// costs one entry and the names its status gives, instead of a family entry, a gauge and a label
/// set per series (heaptrack at 300 objects: 525 bytes an object instead of 2,273).
#[derive(Clone, Debug, Default)]
struct PerDeployment(Arc<Mutex<BTreeMap<ObjectKey, Box<[Sample]>>>>);

/// A BlogDeployment's namespace and name.
type ObjectKey = (Box<str>, Box<str>);

/// One series of a BlogDeployment: its own labels, which say its family, and its value.
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    own: Own,
    value: f64,
}

/// A series' own labels, after the object's `namespace` and `name`.
#[derive(Clone, Debug, PartialEq)]
enum Own {
    /// `monthly_cost_usd{variant}`.
    Cost { variant: &'static str },
    /// `allocation{resource, applied}`.
    Size { resource: &'static str, applied: &'static str },
    /// `placement_region{region, phase, variant}`: its estimated monthly cost.
    Region(Box<(Box<str>, Box<str>, &'static str)>),
    /// `deployment_info{region, function_name, ecs_cluster, ecs_service, load_balancer}`: always 1;
    /// the dashboard's CloudWatch panels take their dimensions from it.
    Info(Box<[Box<str>; 5]>),
}

const INFO_KEYS: [&str; 5] = ["region", "function_name", "ecs_cluster", "ecs_service", "load_balancer"];

impl Own {
    /// Its family's index in [`FAMILIES`].
    fn family(&self) -> usize {
        match self {
            Self::Cost { .. } => 0,
            Self::Size { .. } => 1,
            Self::Region(_) => 2,
            Self::Info(_) => 3,
        }
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        match self {
            Self::Cost { variant } => vec![("variant", variant)],
            Self::Size { resource, applied } => vec![("resource", resource), ("applied", applied)],
            Self::Region(own) => vec![("region", &own.0), ("phase", &own.1), ("variant", own.2)],
            Self::Info(names) => INFO_KEYS.into_iter().zip(names.iter().map(|name| &**name)).collect(),
        }
    }
}

impl PerDeployment {
    /// Replaces an object's series; none (it is gone, or its status gives none) drops its entry.
    fn replace(&self, key: ObjectKey, samples: Vec<Sample>) {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.is_empty() {
            all.remove(&key);
        } else {
            all.insert(key, samples.into_boxed_slice());
        }
    }
}

impl Collector for PerDeployment {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut by_family: [Vec<(&ObjectKey, &Sample)>; 4] = Default::default();
        for (key, samples) in all.iter() {
            for sample in samples.iter() {
                by_family[sample.own.family()].push((key, sample));
            }
        }
        for ((name, help), samples) in FAMILIES.iter().zip(&by_family) {
            // A family without series is left out, as a registered `Family` leaves it out.
            if samples.is_empty() {
                continue;
            }
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for ((namespace, object), sample) in samples {
                let labels = ([("namespace", &**namespace), ("name", &**object)], sample.own.pairs());
                ConstGauge::new(sample.value).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsCallLabels {
    service: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InventoryLabels {
    inventory: String,
    listing: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabels {
    status: String,
    reason: String,
}

struct Inner {
    registry: Registry,
    by_ready: Family<ReadyLabels, Gauge>,
    /// Each BlogDeployment's last `Ready` (status, reason), to recount the gauge from.
    ready_of: Mutex<HashMap<String, (String, String)>>,
    reconciles: Counter,
    failures: Family<FailureLabels, Counter>,
    duration: Histogram,
    aws_calls: Family<AwsCallLabels, Counter>,
    throttled_calls: Family<ServiceLabels, Counter>,
    throttled_seconds: Family<ServiceLabels, Counter<f64, AtomicU64>>,
    waiting: Gauge,
    inventory_entries: Family<InventoryLabels, Gauge>,
    inventory_listed: Family<InventoryLabels, FloatGauge>,
    inventory_listing_seconds: Family<InventoryLabels, FloatGauge>,
    per_deployment: PerDeployment,
}

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("blog_operator");
        let reconciles = Counter::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register("reconcile_failures", "Reconciles that failed, by reason", failures.clone());
        registry.register("reconcile_duration_seconds", "Time one reconcile took", duration.clone());
        registry.register("aws_calls", "AWS API calls by service, operation and outcome", aws_calls.clone());
        let throttled_calls = Family::<ServiceLabels, Counter>::default();
        let throttled_seconds = Family::<ServiceLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "aws_budget_waits",
            "AWS calls that waited for the operator's own call budget, by service",
            throttled_calls.clone(),
        );
        registry.register(
            "aws_budget_wait_seconds",
            "Time AWS calls waited for the operator's own call budget, by service",
            throttled_seconds.clone(),
        );
        let by_ready = Family::<ReadyLabels, Gauge>::default();
        registry.register("blogdeployments", "BlogDeployments by Ready status and reason", by_ready.clone());
        let waiting = Gauge::default();
        registry.register("reconciles_waiting", "Reconciles due and waiting for a worker (the queue)", waiting.clone());
        let inventory_entries = Family::<InventoryLabels, Gauge>::default();
        registry.register(
            "inventory_entries",
            "Resources an inventory's last listing held, by inventory, listing (a name prefix) and region",
            inventory_entries.clone(),
        );
        let inventory_listed = Family::<InventoryLabels, FloatGauge>::default();
        registry.register(
            "inventory_listed_timestamp_seconds",
            "When an inventory's listing was last taken (Unix seconds; its age is time() minus this)",
            inventory_listed.clone(),
        );
        let inventory_listing_seconds = Family::<InventoryLabels, FloatGauge>::default();
        registry.register(
            "inventory_listing_seconds",
            "How long an inventory's last listing took, every page of it (a task of its own takes it, no reconcile waits)",
            inventory_listing_seconds.clone(),
        );
        let per_deployment = PerDeployment::default();
        registry.register_collector(Box::new(per_deployment.clone()));
        Self(Arc::new(Inner {
            registry,
            by_ready,
            ready_of: Mutex::new(HashMap::new()),
            reconciles,
            failures,
            duration,
            aws_calls,
            throttled_calls,
            throttled_seconds,
            waiting,
            inventory_entries,
            inventory_listed,
            inventory_listing_seconds,
            per_deployment,
        }))
    }
}

/// The per-BlogDeployment families: name and help (its full stop written here, which the registry
/// adds to the help of what is registered with it), in the order of [`Own::family`].
const FAMILIES: [(&str, &str); 4] = [
    ("monthly_cost_usd", "A BlogDeployment's estimated monthly cost per variant at the observed traffic, USD."),
    (
        "allocation",
        "A BlogDeployment's sizes by resource (function_memory_mib, container_cpu_units, container_memory_mib, \
         container_tasks): applied=true when in effect (Auto), false when only recommended.",
    ),
    ("placement_region", "A placed region's estimated monthly cost, USD, by phase and serving variant."),
    ("deployment_info", "Always 1; the AWS names of a BlogDeployment, as its CloudWatch metrics carry them."),
];

impl Metrics {
    /// A registry with one sample in every family, so that its exposition shows each family's
    /// labels (the book's metric reference is generated from it).
    #[must_use]
    pub fn sample() -> Self {
        let metrics = Self::default();
        drop(metrics.reconcile_started());
        drop(metrics.waiting_for_worker());
        metrics.reconcile_failed(crate::status::reason::AWS_ERROR);
        metrics.aws_call("DynamoDB", "DescribeTable", "ok");
        metrics.aws_throttled("route53", std::time::Duration::ZERO);
        metrics.set_ready("blogs/demo", Some(("True", crate::status::reason::RECONCILED)));
        metrics.inventory_listed("log_groups", "/aws/lambda/blog-", "us-east-1", 0, Duration::from_secs(2));
        let region = Own::Region(Box::new(("us-west-1".into(), "Serving".into(), "function")));
        let info = Own::Info(Box::default());
        let own = [Own::Cost { variant: "function" }, Own::Size { resource: "function_memory_mib", applied: "false" }];
        let samples = own.into_iter().chain([region, info]).map(|own| Sample { own, value: 0.0 }).collect();
        metrics.0.per_deployment.replace(("blogs".into(), "demo".into()), samples);
        metrics
    }

    /// Counts a reconcile waiting for a worker until the returned guard drops.
    #[must_use]
    pub fn waiting_for_worker(&self) -> WaitingGuard {
        self.0.waiting.inc();
        WaitingGuard(self.clone())
    }

    /// Records a BlogDeployment's cost estimates, sizes, regions and AWS names from its status
    /// (`None` once it is gone), replacing the series it had.
    pub fn set_deployment(&self, namespace: &str, name: &str, status: Option<&BlogDeploymentStatus>) {
        let samples = status.map(deployment_series).unwrap_or_default();
        self.0.per_deployment.replace((Box::from(namespace), Box::from(name)), samples);
    }

    /// Counts a reconcile and times it until the returned guard drops.
    #[must_use]
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.0.reconciles.inc();
        ReconcileTimer { metrics: self.clone(), started: Instant::now() }
    }

    pub fn reconcile_failed(&self, reason: &str) {
        self.0.failures.get_or_create(&FailureLabels { reason: reason.to_owned() }).inc();
    }

    pub fn aws_call(&self, service: &str, operation: &str, outcome: &str) {
        let labels =
            AwsCallLabels { service: service.to_owned(), operation: operation.to_owned(), outcome: outcome.to_owned() };
        self.0.aws_calls.get_or_create(&labels).inc();
    }

    /// A call to `service` waited `wait` for the call budget.
    pub fn aws_throttled(&self, service: &str, wait: std::time::Duration) {
        let labels = ServiceLabels { service: service.to_owned() };
        self.0.throttled_calls.get_or_create(&labels).inc();
        self.0.throttled_seconds.get_or_create(&labels).inc_by(wait.as_secs_f64());
    }

    /// An inventory's listing was just taken, in `took`, and held `entries` resources.
    pub fn inventory_listed(&self, inventory: &str, listing: &str, region: &str, entries: usize, took: Duration) {
        let labels =
            InventoryLabels { inventory: inventory.to_owned(), listing: listing.to_owned(), region: region.to_owned() };
        self.0.inventory_entries.get_or_create(&labels).set(i64::try_from(entries).unwrap_or(i64::MAX));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.0.inventory_listed.get_or_create(&labels).set(now.as_secs_f64());
        self.0.inventory_listing_seconds.get_or_create(&labels).set(took.as_secs_f64());
    }

    /// Records a BlogDeployment's `Ready` status and reason (`None` once it is gone).
    pub fn set_ready(&self, key: &str, ready: Option<(&str, &str)>) {
        let mut ready_of = self.0.ready_of.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match ready {
            Some((status, reason)) => ready_of.insert(key.to_owned(), (status.to_owned(), reason.to_owned())),
            None => ready_of.remove(key),
        };
        self.0.by_ready.clear();
        for (status, reason) in ready_of.values() {
            self.0.by_ready.get_or_create(&ReadyLabels { status: status.clone(), reason: reason.clone() }).inc();
        }
    }

    /// The Prometheus text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

/// Takes a reconcile out of the queue gauge when dropped.
pub struct WaitingGuard(Metrics);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.0.0.waiting.dec();
    }
}

/// The per-BlogDeployment series its status gives. Pure.
fn deployment_series(status: &BlogDeploymentStatus) -> Vec<Sample> {
    let mut out = Vec::new();
    if let Some(a) = &status.allocation {
        let applied = if a.applied { "true" } else { "false" };
        for (variant, usd) in [("function", a.function_monthly_usd), ("container", a.container_monthly_usd)] {
            if let Some(value) = usd {
                out.push(Sample { own: Own::Cost { variant }, value });
            }
        }
        for (resource, size) in [
            ("function_memory_mib", a.function_memory_mib),
            ("container_cpu_units", a.container_cpu),
            ("container_memory_mib", a.container_memory_mib),
            ("container_tasks", a.container_tasks),
        ] {
            if let Some(size) = size {
                out.push(Sample { own: Own::Size { resource, applied }, value: f64::from(size) });
            }
        }
    }
    for region in status.placement.iter().flat_map(|p| &p.regions) {
        let variant = match region.variant {
            Some(crate::crd::PlacementVariant::Function) => "function",
            Some(crate::crd::PlacementVariant::Container) => "container",
            None => "both",
        };
        let own = Own::Region(Box::new((region.region.as_str().into(), region.phase.as_str().into(), variant)));
        out.push(Sample { own, value: region.monthly_usd.unwrap_or(0.0) });
    }
    out.push(Sample { own: Own::Info(Box::new(info_labels(status).map(Box::from))), value: 1.0 });
    out
}

/// The home region and the names CloudWatch's dimensions use, from the ARNs in status: FunctionName,
/// ClusterName and ServiceName of AWS/ECS, LoadBalancer (`app/<name>/<id>`) of AWS/ApplicationELB.
fn info_labels(status: &BlogDeploymentStatus) -> [&str; 5] {
    let r = &status.resources;
    fn last(arn: Option<&String>, sep: char) -> &str {
        arn.and_then(|a| a.rsplit(sep).next()).unwrap_or("")
    }
    let function = r.function_arn.as_deref().and_then(|a| a.split(":function:").nth(1)).unwrap_or("");
    let balancer = r.load_balancer_arn.as_deref().and_then(crate::cloud::elb::metric_dimension).unwrap_or("");
    let region = [&r.table_arn, &r.function_arn, &r.load_balancer_arn]
        .into_iter()
        .find_map(|arn| arn.as_deref().and_then(|a| a.split(':').nth(3)))
        .unwrap_or("");
    // In the order of INFO_KEYS.
    [
        region,
        function.split(':').next().unwrap_or(""),
        last(r.cluster_arn.as_ref(), '/'),
        last(r.service_arn.as_ref(), '/'),
        balancer,
    ]
}

/// Records the reconcile's duration when dropped, whichever way the reconcile ends.
pub struct ReconcileTimer {
    metrics: Metrics,
    started: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics.0.duration.observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_by_label() {
        let metrics = Metrics::default();
        drop(metrics.reconcile_started());
        metrics.reconcile_failed("InvalidSpec");
        metrics.aws_call("DynamoDB", "CreateTable", "ok");
        metrics.aws_call("DynamoDB", "CreateTable", "ok");
        metrics.aws_throttled("route53", std::time::Duration::from_millis(250));
        metrics.set_ready("a/one", Some(("True", "Reconciled")));
        metrics.set_ready("a/two", Some(("True", "Reconciled")));
        metrics.set_ready("a/three", Some(("False", "InvalidSpec")));
        metrics.set_ready("a/three", None);
        let text = metrics.render();
        assert!(text.contains(r#"blog_operator_blogdeployments{status="True",reason="Reconciled"} 2"#), "{text}");
        assert!(
            !text.contains(r#"blog_operator_blogdeployments{status="False""#),
            "a deleted one is not counted: {text}"
        );
        assert!(text.contains("blog_operator_reconciles_total 1"), "{text}");
        assert!(text.contains(r#"blog_operator_reconcile_failures_total{reason="InvalidSpec"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"blog_operator_aws_calls_total{service="DynamoDB",operation="CreateTable",outcome="ok"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("blog_operator_reconcile_duration_seconds_count 1"), "{text}");
        assert!(text.contains(r#"blog_operator_aws_budget_waits_total{service="route53"} 1"#), "{text}");
        assert!(text.contains(r#"blog_operator_aws_budget_wait_seconds_total{service="route53"} 0.25"#), "{text}");
    }

    #[test]
    fn a_deployment_series_follow_its_status_and_go_with_it() {
        let metrics = Metrics::default();
        let mut status = BlogDeploymentStatus::default();
        status.resources.function_arn = Some("arn:aws:lambda:us-west-1:123456789012:function:b-blogs-demo".into());
        status.resources.load_balancer_arn =
            Some("arn:aws:elasticloadbalancing:us-west-1:123456789012:loadbalancer/app/b-demo/50dc6c495c0c9188".into());
        status.allocation = Some(crate::crd::AllocationStatus {
            function_monthly_usd: Some(1.5),
            container_tasks: Some(2),
            ..Default::default()
        });
        metrics.set_deployment("blogs", "demo", Some(&status));
        metrics.set_deployment("blogs", "other", Some(&BlogDeploymentStatus::default()));
        let text = metrics.render();
        assert!(
            text.contains(r#"blog_operator_monthly_cost_usd{namespace="blogs",name="demo",variant="function"} 1.5"#),
            "{text}"
        );
        assert!(text.contains(r#"resource="container_tasks",applied="false"} 2"#), "{text}");
        assert!(text.contains(r#"region="us-west-1",function_name="b-blogs-demo""#), "{text}");
        assert!(text.contains(r#"load_balancer="app/b-demo/50dc6c495c0c9188""#), "{text}");

        status.allocation = None;
        metrics.set_deployment("blogs", "demo", Some(&status));
        let text = metrics.render();
        assert!(
            !text.contains("blog_operator_monthly_cost_usd"),
            "a cost no longer estimated goes, family and all: {text}"
        );
        metrics.set_deployment("blogs", "demo", None);
        let text = metrics.render();
        assert!(!text.contains(r#"name="demo""#), "a deleted one leaves no series: {text}");
        assert!(text.contains(r#"blog_operator_deployment_info{namespace="blogs",name="other""#), "{text}");
    }

    #[test]
    fn the_queue_gauge_counts_only_while_waiting() {
        let metrics = Metrics::default();
        let waiting = metrics.waiting_for_worker();
        assert!(metrics.render().contains("blog_operator_reconciles_waiting 1"));
        drop(waiting);
        assert!(metrics.render().contains("blog_operator_reconciles_waiting 0"));
    }
}
