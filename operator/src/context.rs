//! What every reconcile shares: the operator's settings, the clients, caches and backoffs, the
//! reconcile workers, and the error a reconcile ends with.

use std::time::Duration;

use crate::events::Recorder;
use kube::Client;

use crate::allocation;
use crate::cloud::{Cloud, CloudError};
use crate::metrics::Metrics;
use crate::retry::Backoffs;
use crate::write_token::TokenError;

/// Settings that shape every reconcile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Region for specs that name none.
    pub default_region: String,
    /// How often a healthy BlogDeployment is checked against AWS (drift repair).
    pub resync: Duration,
    /// The first requeue delay after a retryable failure, or while AWS is still busy; each object
    /// backs off from there (see [`crate::retry`]).
    pub retry: Duration,
    /// The longest backoff after repeated retryable failures (before jitter).
    pub retry_max: Duration,
    /// How long a placement region leaving stays out of latency routing before it is removed.
    pub placement_drain: Duration,
    /// What a reader's page times in each candidate region (`{region}` stands for it).
    pub reader_probe_url: String,
    /// When the container variant counts as ready.
    pub container_readiness: crate::status::ContainerReadiness,
    /// Unit prices for the cost estimates.
    pub prices: crate::allocation::pricing::PriceTable,
    /// The permissions boundary of every role the operator creates.
    pub role_permissions_boundary: Option<String>,
    /// The platform team's guardrails on every spec.
    pub tenant_policy: crate::tenancy::TenantPolicy,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub cloud: Cloud,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub settings: Settings,
    pub metrics_cache: allocation::MetricsCache,
    /// Per-object backoff after failures worth retrying soon.
    pub failures: Backoffs,
    /// Per-object backoff while AWS works (a function Pending, a load balancer provisioning).
    pub waits: Backoffs,
    /// Who may reconcile now.
    pub workers: Workers,
    /// The other BlogDeployments, from the watch caches.
    pub peers: crate::peers::Peers,
}

/// The reconcile workers: first come, first served, with one kept for changes. kube's own limit
/// holds waiting objects in a set and takes them in no fixed order, so under a steady stream of
/// resyncs some objects waited for ever (seen with 200 objects at a 30 s resync: ten never got
/// their first reconcile); the controller runs without a limit and every reconcile queues here.
#[derive(Debug)]
pub struct Workers {
    all: tokio::sync::Semaphore,
    resyncs: tokio::sync::Semaphore,
    size: u32,
}

impl Workers {
    /// `concurrency` at once; resyncs take at most one less, so a change never waits behind them.
    #[must_use]
    pub fn new(concurrency: u16) -> Self {
        let n = usize::from(concurrency.max(1));
        Self {
            all: tokio::sync::Semaphore::new(n),
            resyncs: tokio::sync::Semaphore::new(n.saturating_sub(1).max(1)),
            size: u32::from(concurrency.max(1)),
        }
    }

    /// Waits until no reconcile holds a worker, then keeps every worker, so that none starts after.
    pub async fn drain(&self) {
        if let Ok(all) = self.all.acquire_many(self.size).await {
            all.forget();
        }
    }

    /// Waits for a worker, in arrival order; held until the returned slot drops.
    pub async fn slot(&self, resync: bool) -> Slot<'_> {
        let for_resync = if resync { self.resyncs.acquire().await.ok() } else { None };
        Slot { _worker: self.all.acquire().await.ok(), _for_resync: for_resync }
    }
}

/// A worker taken from [`Workers`]; given back on drop.
pub struct Slot<'a> {
    _worker: Option<tokio::sync::SemaphorePermit<'a>>,
    _for_resync: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl Context {
    /// The backoffs both start at `settings.retry`; waiting on AWS never backs off past a minute.
    #[must_use]
    pub fn backoffs(settings: &Settings) -> (Backoffs, Backoffs) {
        let waits_cap = settings.retry_max.min(Duration::from_secs(60));
        (Backoffs::new(settings.retry, settings.retry_max), Backoffs::new(settings.retry, waits_cap))
    }

    /// When to look at an object again once it has settled: the resync period, jittered per object.
    pub(crate) fn next_resync(&self, uid: &str) -> Duration {
        crate::retry::next_resync(self.settings.resync, uid)
    }

    /// How old a metrics reading may be: at most one read per minute, and none between two
    /// resyncs that come closer than that.
    pub(crate) fn metrics_max_age(&self) -> Duration {
        (self.settings.resync / 2).min(Duration::from_secs(60))
    }

    pub(crate) fn settled(&self, uid: &str) {
        self.failures.reset(uid);
        self.waits.reset(uid);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("AWS: {0}")]
    Aws(#[from] CloudError),
    #[error("patching status: {0}")]
    PatchStatus(#[source] kube::Error),
    #[error("clearing an annotation: {0}")]
    Annotate(#[source] kube::Error),
    #[error("{step} the finalizer: {source}")]
    Finalizer {
        /// `adding` or `removing`.
        step: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("object has no namespace or uid")]
    MissingMetadata,
    #[error("write token: {0}")]
    WriteToken(#[source] TokenError),
}

impl Error {
    /// Whether this failure clears up by itself (retry soon, with backoff) or needs a person (look
    /// again at the resync pace only).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Aws(err) => err.is_retryable(),
            Self::PatchStatus(_) | Self::Annotate(_) | Self::WriteToken(_) | Self::Finalizer { .. } => true,
            Self::MissingMetadata => false,
        }
    }

    /// What failed, without the message (which may change each time): the backoff grows only
    /// while the same step keeps failing.
    #[must_use]
    pub fn failing_step(&self) -> String {
        match self {
            Self::Aws(err) => format!("{}/{}/{}", err.service, err.operation, err.code),
            Self::Finalizer { step, .. } => format!("finalizer/{step}"),
            other => other.metric_label().to_owned(),
        }
    }

    /// The label of this failure in `blog_operator_reconcile_failures_total`.
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Aws(_) => "aws",
            Self::PatchStatus(_) => "patch_status",
            Self::Annotate(_) => "annotate",
            Self::Finalizer { .. } => "finalizer",
            Self::MissingMetadata => "missing_metadata",
            Self::WriteToken(_) => "write_token",
        }
    }
}
