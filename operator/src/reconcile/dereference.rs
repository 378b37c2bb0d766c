//! Dereference: what the spec points at outside itself, read before the build: the write token's
//! Secret, the AWS account its namespace maps to (an STS session named for the object), and the
//! metrics Auto sizing and the placement decide from (through the cache they share).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Client, ResourceExt};

use super::validate::{Refused, Validated};
use crate::allocation::{self, MetricsCache, WindowMetrics};
use crate::cloud::{Cloud, CloudError};
use crate::context::Error;
use crate::crd::{AllocationMode, BlogDeployment, BlogDeploymentStatus};
use crate::desired::{Names, Owner};
use crate::tenancy::TenantPolicy;
use crate::write_token::{self, TokenError, WriteToken};
use blog_core::placement::readers::Readings;
use blog_core::placement::regions::Phase;
use blog_core::rollout::verdict::Window;

/// What the spec points at, as read now.
pub struct Dereferenced {
    pub token: WriteToken,
    /// The account the object's calls run in.
    pub cloud: Cloud,
    pub metrics: Reading,
    /// Requests per second each serving placement region handled over the window: what the
    /// placement decides from. Empty without a placement; a region whose metrics cannot be read
    /// is left out.
    pub demand: BTreeMap<String, f64>,
    /// Readers' round trips from their beacons over the window, for a placement that decides
    /// (Recommend, Auto); empty otherwise or when they cannot be read.
    pub readers: Readings,
    /// The function rollout's window, when a verdict is due and it could be read.
    pub rollout: Option<Window>,
    /// The container rollout's window, likewise.
    pub container_rollout: Option<Window>,
}

/// The sizing's reading of the variants' metrics.
#[derive(Debug, Clone)]
pub enum Reading {
    /// Manual allocation reads nothing.
    NotNeeded,
    /// The read failed (now or a moment ago): the last allocation stays.
    Unreadable,
    Read(Box<WindowMetrics>),
}

/// Why dereferencing stopped the reconcile.
#[derive(Debug, thiserror::Error)]
pub enum DereferenceError {
    /// A person must act (a missing Secret, a role STS refuses); looked at again at the resync pace.
    #[error(transparent)]
    Refused(Refused),
    /// Clears up by itself: retried with backoff.
    #[error(transparent)]
    Retry(Error),
}

/// Where the metrics come from, and how old a reading may be.
pub struct MetricsSource<'a> {
    pub cache: &'a MetricsCache,
    pub max_age: Duration,
}

/// Reads the write token, opens the account, and reads the metrics Auto sizing needs.
///
/// # Errors
/// [`DereferenceError`]: refused (a person must act) or worth a retry.
pub async fn dereference(
    bd: &BlogDeployment,
    validated: &Validated<'_>,
    (client, cloud): (&Client, &Cloud),
    (metrics, default_region): (MetricsSource<'_>, &str),
) -> Result<Dereferenced, DereferenceError> {
    let token = match write_token::resolve(client, bd).await {
        Ok(token) => token,
        Err(TokenError::Missing(message)) => {
            let reason = crate::status::reason::WRITE_TOKEN_MISSING;
            return Err(DereferenceError::Refused(Refused { reason, message }));
        }
        Err(e @ TokenError::Kube(_)) => return Err(DereferenceError::Retry(Error::WriteToken(e))),
    };
    let cloud = match cloud_for(bd, (cloud, &validated.rules), &validated.owner).await {
        Ok(cloud) => cloud,
        Err(err) if err.is_retryable() => return Err(DereferenceError::Retry(err.into())),
        Err(err) => {
            let reason = crate::status::reason::ACCOUNT_ROLE_NOT_ASSUMABLE;
            return Err(DereferenceError::Refused(Refused { reason, message: err.to_string() }));
        }
    };
    let region = bd.spec.home_region(default_region);
    let sizing = read_metrics(bd, validated, (&cloud.clients(region), &metrics)).await;
    let demand = read_demand(bd, &validated.owner, (&cloud, &metrics), region).await;
    let readers = read_readers(bd, &validated.owner, &cloud.clients(region), region).await;
    let rollout = read_rollout(bd, &validated.owner, &cloud.clients(region)).await;
    let container_rollout = read_container_rollout(bd, &cloud.clients(region)).await;
    Ok(Dereferenced { token, cloud, metrics: sizing, demand, readers, rollout, container_rollout })
}

/// The AWS account this object's calls run in: the operator's own, or the role the tenant policy
/// maps its namespace to, in a session named for the object.
///
/// # Errors
/// STS's refusal, or a failure worth a retry.
pub async fn cloud_for(
    bd: &BlogDeployment,
    (cloud, rules): (&Cloud, &TenantPolicy),
    owner: &Owner,
) -> Result<Cloud, CloudError> {
    match &rules.account {
        Some(account) => {
            let session = blog_core::account::session_name(&owner.namespace, &bd.name_any());
            cloud.acting_for(account, &session).await
        }
        None => Ok(cloud.clone()),
    }
}

/// The variants' metrics over the sizing window, unless allocation is Manual. A failure to read
/// never blocks the reconcile: the previous allocation stays.
async fn read_metrics(
    bd: &BlogDeployment,
    validated: &Validated<'_>,
    (clients, source): (&crate::cloud::AwsClients, &MetricsSource<'_>),
) -> Reading {
    let spec = &bd.spec.allocation;
    if spec.mode == AllocationMode::Manual {
        return Reading::NotNeeded;
    }
    let previous = bd.status.as_ref();
    let window = window(spec, previous);
    // Nothing made yet has metrics: a new object's recommendation reads them as empty without
    // asking CloudWatch. (Auto reads anyway: it acts on what it reads, and a status can be lost.)
    if previous.is_none() && spec.mode == AllocationMode::Recommend {
        let empty = WindowMetrics { window_seconds: window.as_secs_f64(), ..WindowMetrics::default() };
        return Reading::Read(Box::new(empty));
    }
    let names = Names::for_owner(&validated.owner);
    let variants = (bd.spec.function_enabled().is_some(), bd.spec.container_enabled().is_some());
    let balancer = previous.and_then(|p| p.resources.load_balancer_arn.as_deref());
    let reading = (validated.owner.uid.as_str(), source, window);
    match observe_cached(clients, reading, (&names, variants), balancer, "keeping the last allocation").await {
        Some(observed) => Reading::Read(Box::new(observed)),
        None => Reading::Unreadable,
    }
}

/// The window sizing reads: the spec's, cut short after the last change so a decision never
/// reads the traffic of the sizes it replaced.
fn window(spec: &crate::crd::AllocationSpec, previous: Option<&BlogDeploymentStatus>) -> Duration {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let last = previous.and_then(|p| p.allocation.as_ref()).and_then(|a| a.last_change_time.as_ref());
    let minutes = u64::try_from(spec.window_minutes).unwrap_or(60);
    allocation::effective_window(Duration::from_secs(minutes * 60), last, &now)
}

/// Requests per second of each placement region serving now, over the allocation window: one
/// `GetMetricData` per region per window, through the cache (home's key is the sizing's, so one
/// reading may serve both).
async fn read_demand(
    bd: &BlogDeployment,
    owner: &Owner,
    (cloud, source): (&Cloud, &MetricsSource<'_>),
    home: &str,
) -> BTreeMap<String, f64> {
    let (Some(_), Some(status)) = (&bd.spec.placement, bd.status.as_ref()) else { return BTreeMap::new() };
    let window = Duration::from_secs(u64::try_from(bd.spec.allocation.window_minutes).unwrap_or(60) * 60);
    let variants = (bd.spec.function_enabled().is_some(), bd.spec.container_enabled().is_some());
    let serving = status.placement.iter().flat_map(|p| &p.regions).filter(|r| r.phase == Phase::Serving.as_str());
    let mut measured = BTreeMap::new();
    for region in serving {
        let at_home = region.region == home;
        let (key, names, resources) = if at_home {
            (owner.uid.clone(), Names::for_owner(owner), &status.resources)
        } else {
            (format!("{}/{}", owner.uid, region.region), Names::in_region(owner, &region.region), &region.resources)
        };
        let balancer = resources.load_balancer_arn.as_deref();
        let clients = cloud.clients(&region.region);
        let reading = (key.as_str(), source, window);
        let observed =
            observe_cached(&clients, reading, (&names, variants), balancer, "the region's demand is left out").await;
        if let Some(observed) = observed {
            measured.insert(region.region.clone(), observed.requests_per_second());
        }
    }
    measured
}

/// Readers' beacons over the allocation window, from home's CloudWatch, for a placement that
/// decides from them. A failure to read leaves them out: the decision falls back to requests per
/// serving region, and says so.
async fn read_readers(bd: &BlogDeployment, owner: &Owner, clients: &crate::cloud::AwsClients, home: &str) -> Readings {
    if bd.spec.placement.as_ref().is_none_or(|p| p.mode == crate::crd::PlacementMode::Manual) {
        return Readings::new();
    }
    let window = Duration::from_secs(u64::try_from(bd.spec.allocation.window_minutes).unwrap_or(60) * 60);
    let candidates: Vec<String> = bd.spec.regions(home).into_iter().map(str::to_owned).collect();
    let namespace = blog_core::desired::readers_namespace(owner);
    match crate::placement::beacons::read(clients, &namespace, &candidates, window).await {
        Ok(readings) => readings,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read readers' beacons; deciding without them");
            Readings::new()
        }
    }
}

/// The function rollout's window when its analysis is due: once per interval, never cached (each
/// verdict needs a window of its own). A failure to read makes no verdict this time.
async fn read_rollout(bd: &BlogDeployment, owner: &Owner, clients: &crate::cloud::AwsClients) -> Option<Window> {
    let policy = blog_core::rollout::policy::of_function(&bd.spec)?.ok()?;
    let judging = policy.judging.as_ref()?;
    let record = bd.status.as_ref()?.rollout.as_ref()?.function.as_ref()?;
    if !crate::rollout::due(record, judging, &Time(k8s_openapi::jiff::Timestamp::now())) {
        return None;
    }
    let name = Names::for_owner(owner).function;
    match crate::rollout::read_window(clients, &name, record, judging).await {
        Ok(window) => Some(window),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the rollout's metrics; no verdict this time");
            None
        }
    }
}

/// The container rollout's window when its analysis is due: the two target groups' figures
/// behind the load balancer. A failure to read makes no verdict this time.
async fn read_container_rollout(bd: &BlogDeployment, clients: &crate::cloud::AwsClients) -> Option<Window> {
    let policy = blog_core::rollout::policy::of_container(&bd.spec)?.ok()?;
    let judging = policy.judging.as_ref()?;
    let status = bd.status.as_ref()?;
    let record = status.rollout.as_ref()?.container.as_ref()?;
    let balancer = status.resources.load_balancer_arn.as_deref()?;
    if !crate::rollout::due(record, judging, &Time(k8s_openapi::jiff::Timestamp::now())) {
        return None;
    }
    match crate::rollout::read_target_window(clients, balancer, record, judging).await {
        Ok(window) => window,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the container rollout's metrics; no verdict this time");
            None
        }
    }
}

/// The variants' metrics over the window, through the cache: a reading younger than the cache's
/// age is used as it is, a failed one included (`None`, not read again before it ages out).
async fn observe_cached(
    clients: &crate::cloud::AwsClients,
    (key, source, window): (&str, &MetricsSource<'_>, Duration),
    (names, variants): (&Names, (bool, bool)),
    balancer: Option<&str>,
    on_failure: &str,
) -> Option<WindowMetrics> {
    let now = std::time::Instant::now();
    if let Some(cached) = source.cache.fresh(key, window, source.max_age, now) {
        return cached;
    }
    let observed = allocation::observe_listed(clients, key, (names, variants), balancer, window).await;
    if let Err(err) = &observed {
        tracing::warn!(region = clients.region, error = %err, "cannot read metrics; {on_failure}");
    }
    let observed = observed.ok();
    source.cache.store(key, window, observed, now);
    observed
}
