//! The AWS call budget: a token bucket per AWS service, shared by every reconcile worker and put in
//! front of every call (around the SDK's HTTP client, and in the EC2 adapter), so that many
//! objects cannot drive the account past AWS's control-plane limits. A call over the budget waits
//! for its turn; the time waited is counted in `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::metrics::Metrics;

/// Calls per second for services without a limit of their own.
pub const DEFAULT_PER_SECOND: f64 = 10.0;

/// The built-in limits of services whose documented control-plane quotas are lower than the
/// default (per account and region, or per account for Route 53): Route 53 allows 5 requests a
/// second, CloudWatch Logs' `DescribeLogGroups` 5, API Gateway's management API about 10 shared by
/// every caller in the account, ACM's `RequestCertificate` 5.
#[must_use]
pub fn built_in_limits() -> BTreeMap<String, f64> {
    [("route53", 5.0), ("logs", 5.0), ("apigateway", 5.0), ("acm", 5.0)]
        .into_iter()
        .map(|(service, rate)| (service.to_owned(), rate))
        .collect()
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by AWS signing name (`lambda`, `elasticloadbalancing`, `ec2`, ...): each holds a
/// second's worth of calls as its burst and refills at its rate.
#[derive(Debug)]
pub struct Budget {
    default: f64,
    per_service: BTreeMap<String, f64>,
    buckets: Mutex<HashMap<String, Bucket>>,
    metrics: Metrics,
}

impl Budget {
    /// `default` calls per second for every service, `per_service` overriding it for some.
    #[must_use]
    pub fn new(default: f64, per_service: BTreeMap<String, f64>, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self { default, per_service, buckets: Mutex::new(HashMap::new()), metrics })
    }

    fn rate(&self, service: &str) -> f64 {
        self.per_service.get(service).copied().unwrap_or(self.default).max(0.01)
    }

    /// Takes one call from `service`'s bucket at `now`; returns how long the caller must wait
    /// before making it (zero within the burst). A caller that waits has its token already: the
    /// callers queue in order, and the wait never grows past the number of waiting callers over
    /// the rate.
    pub fn reserve(&self, service: &str, now: Instant) -> Duration {
        let rate = self.rate(service);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(service.to_owned()).or_insert(Bucket { tokens: rate, at: now });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate) - 1.0;
        bucket.at = now;
        if bucket.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-bucket.tokens / rate) }
    }

    /// Waits for `service`'s next turn.
    pub async fn acquire(&self, service: &str) {
        let wait = self.reserve(service, Instant::now());
        if !wait.is_zero() {
            self.metrics.aws_throttled(service, wait);
            tokio::time::sleep(wait).await;
        }
    }
}

/// The service a signed request is for: the signing name in its credential scope.
fn signing_service(request: &HttpRequest) -> String {
    let authorization = request.headers().get("authorization").unwrap_or_default();
    authorization.split("Credential=").nth(1).and_then(|scope| scope.split('/').nth(3)).unwrap_or("unsigned").to_owned()
}

/// The SDK's HTTP client with the budget in front of it.
#[derive(Debug, Clone)]
pub struct BudgetedClient {
    inner: SharedHttpClient,
    budget: Arc<Budget>,
}

impl BudgetedClient {
    #[must_use]
    pub fn new(inner: SharedHttpClient, budget: Arc<Budget>) -> Self {
        Self { inner, budget }
    }
}

impl HttpClient for BudgetedClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(BudgetedConnector { inner, budget: Arc::clone(&self.budget) })
    }
}

#[derive(Debug)]
struct BudgetedConnector {
    inner: SharedHttpConnector,
    budget: Arc<Budget>,
}

impl HttpConnector for BudgetedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, budget) = (self.inner.clone(), Arc::clone(&self.budget));
        let service = signing_service(&request);
        HttpConnectorFuture::new(async move {
            budget.acquire(&service).await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_calls_are_paced_at_the_rate() {
        let budget = Budget::new(10.0, BTreeMap::from([("route53".to_owned(), 5.0)]), Metrics::default());
        let start = Instant::now();
        let waits: Vec<Duration> = (0..15).map(|_| budget.reserve("lambda", start)).collect();
        assert!(waits[..10].iter().all(Duration::is_zero), "a second's worth at once: {waits:?}");
        for (n, wait) in waits[10..].iter().enumerate() {
            let expected = Duration::from_millis(100 * (n as u64 + 1));
            assert!(wait.abs_diff(expected) < Duration::from_millis(1), "call {}: {wait:?}", n + 10);
        }
        // Another service has its own bucket, at its own rate.
        let route53: Vec<Duration> = (0..6).map(|_| budget.reserve("route53", start)).collect();
        assert!(route53[5].abs_diff(Duration::from_millis(200)) < Duration::from_millis(1), "{route53:?}");
        // A second later the bucket has refilled what the rate gives, never past the burst.
        let later = start + Duration::from_secs(10);
        assert!((0..10).all(|_| budget.reserve("lambda", later).is_zero()));
        assert!(!budget.reserve("lambda", later).is_zero());
    }

    #[test]
    fn the_service_is_read_from_the_signature() {
        let mut request = HttpRequest::empty();
        request.headers_mut().insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-west-1/elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=x",
        );
        assert_eq!(signing_service(&request), "elasticloadbalancing");
        assert_eq!(signing_service(&HttpRequest::empty()), "unsigned");
    }
}
