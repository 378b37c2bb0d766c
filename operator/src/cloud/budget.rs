//! The AWS call budget: a token bucket per AWS service, shared by every reconcile worker and put in
//! front of every call (around the SDK's HTTP client, and in the EC2 adapter), so that many
//! objects cannot drive the account past AWS's control-plane limits. A call over the budget waits
//! for its turn; the time waited is counted in `/metrics`. Calls made for a change (a new object,
//! an edited spec, a resource still settling) go first: a routine resync's calls use only what the
//! bucket holds above a reserve kept for them, so a resync wave never delays a create.

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

/// The built-in limits of services whose documented control-plane quotas leave less than the
/// default once half of each is kept for every other tool in the account (the resync model's
/// rule, `core/data/resync-model.json`, whose budget a test holds equal to this): Route 53 allows
/// 10 requests a second for the whole account, of which the operator takes 2 and leaves the rest
/// to external-dns, cert-manager and people; Lambda's control plane 15 (7 of them); CloudWatch
/// Logs' `DescribeLogGroups` 5, API Gateway's management API about 10 shared by every caller in
/// the account, ACM's `RequestCertificate` 5.
#[must_use]
pub fn built_in_limits() -> BTreeMap<String, f64> {
    [("route53", 2.0), ("lambda", 7.0), ("logs", 5.0), ("apigateway", 5.0), ("acm", 5.0)]
        .into_iter()
        .map(|(service, rate)| (service.to_owned(), rate))
        .collect()
}

/// Why a call is made: for a change, or to check on an object that was settled (a resync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Change,
    Resync,
}

tokio::task_local! {
    static CLASS: Class;
}

/// Runs `work` with every AWS call it makes counted as a resync's.
pub async fn as_resync<F: std::future::Future>(work: F) -> F::Output {
    CLASS.scope(Class::Resync, work).await
}

/// The class of the calls the current task makes: a change's unless [`as_resync`] said otherwise.
fn current_class() -> Class {
    CLASS.try_with(|class| *class).unwrap_or(Class::Change)
}

/// The share of a bucket's burst a resync leaves for changes.
const RESERVED_FOR_CHANGES: f64 = 0.5;

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
        self.with_bucket(service, now, |bucket, rate| {
            bucket.tokens -= 1.0;
            if bucket.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-bucket.tokens / rate) }
        })
    }

    /// A resync's turn: takes a token only when one is left above the reserve for changes and no
    /// change waits; otherwise takes none and says how long to wait before asking again.
    pub fn try_reserve_for_resync(&self, service: &str, now: Instant) -> Option<Duration> {
        self.with_bucket(service, now, |bucket, rate| {
            let needed = rate * RESERVED_FOR_CHANGES + 1.0;
            if bucket.tokens >= needed {
                bucket.tokens -= 1.0;
                None
            } else {
                Some(Duration::from_secs_f64((needed - bucket.tokens) / rate))
            }
        })
    }

    /// `service`'s bucket refilled up to `now`, under the lock.
    fn with_bucket<T>(&self, service: &str, now: Instant, take: impl FnOnce(&mut Bucket, f64) -> T) -> T {
        let rate = self.rate(service);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(service.to_owned()).or_insert(Bucket { tokens: rate, at: now });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.at = now;
        take(bucket, rate)
    }

    /// Waits for `service`'s next turn, in the class of the calling task.
    pub async fn acquire(&self, service: &str) {
        match current_class() {
            Class::Change => {
                let wait = self.reserve(service, Instant::now());
                if !wait.is_zero() {
                    self.metrics.aws_throttled(service, wait);
                    tokio::time::sleep(wait).await;
                }
            }
            Class::Resync => {
                while let Some(wait) = self.try_reserve_for_resync(service, Instant::now()) {
                    self.metrics.aws_throttled(service, wait);
                    tokio::time::sleep(wait).await;
                }
            }
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
    #[test]
    fn the_built_in_budget_is_the_models_and_keeps_half_of_every_documented_rate() {
        let model = include_str!("../../../core/data/resync-model.json");
        let shipped: blog_core::resync_model::Inputs = serde_json::from_str(model).expect("the model's inputs");
        assert_eq!(
            (shipped.budget.default_per_second, &shipped.budget.per_service),
            (DEFAULT_PER_SECOND, &built_in_limits())
        );
        for limit in &shipped.limits {
            let rate = built_in_limits().get(&limit.service).copied().unwrap_or(DEFAULT_PER_SECOND);
            let half = limit.per_second / 2.0;
            assert!(rate <= half, "{}: {rate} a second is more than half of AWS's {}", limit.service, limit.per_second);
        }
    }

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
    fn a_resync_leaves_a_reserve_for_changes_and_waits_behind_them() {
        let budget = Budget::new(10.0, BTreeMap::new(), Metrics::default());
        let start = Instant::now();
        // From a full bucket a resync takes only what lies above the reserve (half the burst).
        let resync: Vec<_> = (0..6).map(|_| budget.try_reserve_for_resync("ecs", start)).collect();
        assert_eq!(resync.iter().filter(|w| w.is_none()).count(), 5, "{resync:?}");
        // The reserve is there for changes at once.
        assert!((0..5).all(|_| budget.reserve("ecs", start).is_zero()));
        // Changes queued behind one another: a resync waits until they are through and the
        // reserve is back; it took nothing meanwhile.
        let change_waits: Vec<Duration> = (0..5).map(|_| budget.reserve("ecs", start)).collect();
        let change_wait = change_waits[4];
        let resync_wait = budget.try_reserve_for_resync("ecs", start).unwrap_or_default();
        assert!(resync_wait > change_wait, "resync {resync_wait:?}, last change {change_wait:?}");
        assert!(budget.try_reserve_for_resync("ecs", start + resync_wait).is_none());
    }

    #[tokio::test]
    async fn the_class_is_the_callers() {
        assert_eq!(current_class(), Class::Change);
        assert_eq!(as_resync(async { current_class() }).await, Class::Resync);
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
