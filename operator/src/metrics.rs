//! Prometheus metrics: reconciles, failures by reason, reconcile duration, AWS calls by
//! service/operation/outcome. Rendered at `/metrics` by the admin server.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
        }))
    }
}

impl Metrics {
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
}
