//! The controller: watches BlogDeployments, dispatches the finalizer's Apply and Cleanup, patches
//! status only when it changed, records Events on transitions, and requeues.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::allocation;
use crate::apply;
use crate::cloud::{Cloud, CloudError};
use crate::crd::{AllocationMode, AllocationStatus, BlogDeployment, BlogDeploymentStatus};
use crate::desired::{self, Owner};
use crate::metrics::Metrics;
use crate::retry::Backoffs;
use crate::status::{self, Observed, PartState};
use crate::write_token::{self, TokenError};

/// The finalizer that keeps a BlogDeployment until its AWS resources are gone.
pub const FINALIZER: &str = "blogs.serverless.dev/cleanup";

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
}

impl Workers {
    /// `concurrency` at once; resyncs take at most one less, so a change never waits behind them.
    #[must_use]
    pub fn new(concurrency: u16) -> Self {
        let n = usize::from(concurrency.max(1));
        Self { all: tokio::sync::Semaphore::new(n), resyncs: tokio::sync::Semaphore::new(n.saturating_sub(1).max(1)) }
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
    fn next_resync(&self, uid: &str) -> Duration {
        crate::retry::next_resync(self.settings.resync, uid)
    }

    /// How old a metrics reading may be: at most one read per minute, and none between two
    /// resyncs that come closer than that.
    fn metrics_max_age(&self) -> Duration {
        (self.settings.resync / 2).min(Duration::from_secs(60))
    }

    fn settled(&self, uid: &str) {
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
            Self::PatchStatus(_) | Self::WriteToken(_) | Self::Finalizer { .. } => true,
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
            Self::Finalizer { .. } => "finalizer",
            Self::MissingMetadata => "missing_metadata",
            Self::WriteToken(_) => "write_token",
        }
    }
}

fn owner_of(bd: &BlogDeployment) -> Result<Owner, Error> {
    Ok(Owner {
        namespace: bd.namespace().ok_or(Error::MissingMetadata)?,
        name: bd.name_any(),
        uid: bd.uid().ok_or(Error::MissingMetadata)?,
    })
}

/// The region a BlogDeployment's resources live in: the one its recorded ARNs name, else the spec's,
/// else the default. Cleanup uses the ARN first, so a later spec edit never strands resources.
fn region_of(bd: &BlogDeployment, default_region: &str) -> String {
    let from_arn = bd.status.as_ref().and_then(|s| s.resources.table_arn.as_deref()).and_then(desired::region_of_arn);
    from_arn.map(str::to_owned).or_else(|| bd.spec.region.clone()).unwrap_or_else(|| default_region.to_owned())
}

/// The table's name: the one in the recorded ARN first (what was made or taken), then the spec's,
/// then the generated one.
fn table_of(bd: &BlogDeployment, owner: &Owner) -> String {
    let recorded = bd.status.as_ref().and_then(|s| s.resources.table_arn.as_deref()).and_then(desired::table_of_arn);
    recorded
        .map(str::to_owned)
        .or_else(|| bd.spec.table.name.clone())
        .unwrap_or_else(|| desired::Names::for_owner(owner).table)
}

/// One reconcile: the finalizer first (added, then the apply goes on in the same reconcile, so a
/// new object costs one reconcile, not two), then apply; or, once deleted, cleanup and then the
/// finalizer removed.
async fn reconcile(bd: Arc<BlogDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ours = bd.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = bd.metadata.deletion_timestamp.is_some();
    let settled = bd.status.as_ref().is_some_and(|s| status::is_resync(bd.metadata.generation, s));
    let resync = ours && !deleting && settled;
    let queued = ctx.metrics.waiting_for_worker();
    let _worker = ctx.workers.slot(resync).await;
    drop(queued);
    let _timer = ctx.metrics.reconcile_started();
    let namespace = bd.namespace().ok_or(Error::MissingMetadata)?;
    let api: Api<BlogDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
    match (deleting, ours) {
        // Someone else's finalizer keeps it: nothing of ours left to do.
        (true, false) => Ok(Action::await_change()),
        (true, true) => {
            let action = Box::pin(cleanup_one(&bd, &ctx)).await?;
            let kept = bd.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
            set_finalizers(&api, &bd, kept, "removing").await?;
            Ok(action)
        }
        (false, ours) => {
            if !ours {
                let mut with_ours = bd.finalizers().to_vec();
                with_ours.push(FINALIZER.to_owned());
                set_finalizers(&api, &bd, with_ours, "adding").await?;
            }
            // Boxed: every due object's reconcile waits for a worker, and an unboxed apply would
            // make each waiting future as large as the whole apply's state machine.
            let apply = Box::pin(apply_one(&bd, &ctx));
            if resync { crate::cloud::budget::as_resync(apply).await } else { apply.await }
        }
    }
}

/// Writes the finalizer list, only over the version read (a conflict is retried with a fresh read).
async fn set_finalizers(
    api: &Api<BlogDeployment>,
    bd: &BlogDeployment,
    finalizers: Vec<String>,
    step: &'static str,
) -> Result<(), Error> {
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": bd.resource_version()}});
    match api.patch(&bd.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        // Removing: already gone with the object.
        Err(kube::Error::Api(e)) if e.code == 404 && step == "removing" => Ok(()),
        Err(source) => Err(Error::Finalizer { step, source }),
    }
}

#[tracing::instrument(skip_all, fields(namespace = bd.namespace(), blogdeployment = bd.name_any()))]
async fn apply_one(bd: &BlogDeployment, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(bd)?;
    let generation = bd.metadata.generation;
    let previous = bd.status.clone().unwrap_or_default();

    if let Some((reason, message)) = refusal(bd, ctx, &previous) {
        // No AWS call: wait for the next change of the spec.
        return refuse(bd, ctx, &previous, (reason, &message), Action::await_change()).await;
    }
    let token = match write_token::resolve(&ctx.client, bd).await {
        Ok(token) => token,
        // Secrets are not watched: look again at the resync pace.
        Err(TokenError::Missing(why)) => {
            let missing = (status::reason::WRITE_TOKEN_MISSING, why.as_str());
            let later = Action::requeue(ctx.next_resync(&owner.uid));
            return refuse(bd, ctx, &previous, missing, later).await;
        }
        Err(e @ TokenError::Kube(_)) => return Err(Error::WriteToken(e)),
    };

    let cloud = match cloud_for(bd, ctx, &owner).await {
        Ok(cloud) => cloud,
        Err(err) if err.is_retryable() => return Err(err.into()),
        Err(err) => {
            let refused = (status::reason::ACCOUNT_ROLE_NOT_ASSUMABLE, err.to_string());
            let later = Action::requeue(ctx.next_resync(&owner.uid));
            return refuse(bd, ctx, &previous, (refused.0, &refused.1), later).await;
        }
    };
    let (clients, desired, allocation) = desired_for(bd, (ctx, &cloud), &owner, &previous).await;
    let first = bd.status.is_none();
    if first {
        mark_applying(bd, ctx).await?;
    }
    let previous = remember_domain(bd, ctx, previous, &desired).await?;
    let readiness = ctx.settings.container_readiness;
    let recorded = (&previous.resources, first);
    let applied = match apply::apply(&clients, &desired, recorded, readiness, &token.value).await {
        Ok(applied) => applied,
        Err(failed) if failed.error.is_retryable() => return Err(failed.error.into()),
        Err(failed) => {
            // A person must act (permissions, a refused parameter): say it on the part that failed
            // and retry only at the resync pace, never in a hot loop.
            tracing::warn!(error = %failed, "AWS refused a request");
            let failure = failed.failure();
            ctx.metrics.reconcile_failed(failure.reason);
            let observed = status::failed(generation, &failure, &failed.reached);
            let next = BlogDeploymentStatus { observed_generation: generation, ..previous.clone() };
            publish_status(bd, ctx, &previous, next, &observed).await?;
            ctx.settled(&owner.uid);
            return Ok(Action::requeue(ctx.next_resync(&owner.uid)));
        }
    };
    let (placement, placed) = match bd.spec.placement {
        Some(_) => {
            let previous = previous.placement.as_ref();
            let home = (&desired, &applied);
            let runtime = crate::placement::Runtime {
                cloud: &cloud,
                readiness: ctx.settings.container_readiness,
                drain: ctx.settings.placement_drain,
                prices: &ctx.settings.prices,
                metrics_max_age: ctx.metrics_max_age(),
                metrics_cache: &ctx.metrics_cache,
            };
            let (placement, settled, note) =
                crate::placement::reconcile(&runtime, &bd.spec, home, &token.value, previous).await;
            if let Some(note) = note {
                record(ctx, bd, EventType::Normal, "Placement", &note).await;
            }
            (Some(placement), settled)
        }
        None => (None, true),
    };
    let (mut observed, mut next) = applied_status(generation, &previous, applied, allocation, token.secret);
    observed.regions = placement.as_ref().map(|p| status::regions_state(&p.regions));
    next.placement = placement;
    let summary = status::summary(&observed);
    tracing::info!(ready = summary.ready, reason = %summary.reason, "reconciled");
    let settled = status::settled(&observed) && placed;
    publish_status(bd, ctx, &previous, next, &observed).await?;
    ctx.failures.reset(&owner.uid);
    if settled {
        ctx.waits.reset(&owner.uid);
        return Ok(Action::requeue(ctx.next_resync(&owner.uid)));
    }
    Ok(Action::requeue(ctx.waits.next(&owner.uid, &summary.message)))
}

/// Gives a new object a status before its first apply makes anything: an apply that finds one may
/// have been cut off after making something, so it searches before it makes.
async fn mark_applying(bd: &BlogDeployment, ctx: &Context) -> Result<(), Error> {
    merge_status(bd, ctx, json!({"status": {"resources": {}}})).await
}

/// Merges `patch` into the object's status.
async fn merge_status(bd: &BlogDeployment, ctx: &Context, patch: serde_json::Value) -> Result<(), Error> {
    let api: Api<BlogDeployment> = Api::namespaced(ctx.client.clone(), &bd.namespace().unwrap_or_default());
    api.patch_status(&bd.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(Error::PatchStatus)?;
    Ok(())
}

/// Records the domain's hosts and zone in status before the domain step makes anything for them.
async fn remember_domain(
    bd: &BlogDeployment,
    ctx: &Context,
    previous: BlogDeploymentStatus,
    desired: &desired::Desired,
) -> Result<BlogDeploymentStatus, Error> {
    let zone = bd.spec.domain.as_ref().map(|d| d.hosted_zone.as_str()).unwrap_or_default();
    let Some(resources) = crate::domain::to_remember(&previous.resources, desired.domain.as_ref(), zone) else {
        return Ok(previous);
    };
    let patch = json!({"status": {"resources": {"hosts": resources.hosts, "hostedZoneId": resources.hosted_zone_id}}});
    merge_status(bd, ctx, patch).await?;
    Ok(BlogDeploymentStatus { resources, ..previous })
}

/// Says why a spec is refused, on every condition, without an AWS call; then `then`.
async fn refuse(
    bd: &BlogDeployment,
    ctx: &Context,
    previous: &BlogDeploymentStatus,
    (reason, message): (&'static str, &str),
    then: Action,
) -> Result<Action, Error> {
    tracing::info!(reason, message, "spec refused");
    let observed = status::refused(bd.metadata.generation, reason, message);
    let next = BlogDeploymentStatus { observed_generation: bd.metadata.generation, ..previous.clone() };
    publish_status(bd, ctx, previous, next, &observed).await?;
    ctx.metrics.reconcile_failed(reason);
    Ok(then)
}

/// Why a spec is refused before any AWS call: the same decision the admission webhook makes.
fn refusal(bd: &BlogDeployment, ctx: &Context, previous: &BlogDeploymentStatus) -> Option<(&'static str, String)> {
    let (settings, peers) = (&ctx.settings, &ctx.peers);
    let namespace = bd.namespace().unwrap_or_default();
    let facts = crate::tenancy::Facts {
        namespace: &namespace,
        default_region: &settings.default_region,
        recorded_table_arn: previous.resources.table_arn.as_deref(),
        reserved_elsewhere: Some(peers.reserved_concurrency(&namespace, bd.uid().as_deref())),
    };
    crate::admission::refusal(&bd.spec, &settings.tenant_policy, &facts)
}

/// The AWS account this object's calls run in: the operator's own, or the role the tenant policy
/// maps its namespace to, in a session named for the object.
async fn cloud_for(bd: &BlogDeployment, ctx: &Context, owner: &Owner) -> Result<Cloud, CloudError> {
    match ctx.settings.tenant_policy.for_namespace(&owner.namespace).account {
        Some(account) => {
            let session = blog_core::account::session_name(&owner.namespace, &bd.name_any());
            ctx.cloud.acting_for(&account, &session).await
        }
        None => Ok(ctx.cloud.clone()),
    }
}

/// The clients for the deployment's region, its final desired state and the allocation decided.
/// Allocation reads the spec's own sizes; the final desired state takes Auto's decision as one more
/// input, so nothing changes it after it is built.
async fn desired_for(
    bd: &BlogDeployment,
    (ctx, cloud): (&Context, &Cloud),
    owner: &Owner,
    previous: &BlogDeploymentStatus,
) -> (crate::cloud::AwsClients, desired::Desired, Option<AllocationStatus>) {
    let settings = &ctx.settings;
    let as_written = desired::desired(owner, &bd.spec, &desired::Inputs::region(&settings.default_region));
    let clients = cloud.clients(&as_written.region);
    let allocation = allocate_one(bd, ctx, &clients, &as_written, previous).await;
    let rules = settings.tenant_policy.for_namespace(&owner.namespace);
    let boundary = settings.role_permissions_boundary.as_deref();
    let boundary = rules.account.as_ref().map_or_else(|| boundary.map(str::to_owned), |a| a.boundary(boundary));
    let inputs = desired::Inputs {
        default_region: &settings.default_region,
        role_permissions_boundary: boundary.as_deref(),
        auto_sizes: allocation.as_ref().filter(|_| bd.spec.allocation.mode == AllocationMode::Auto),
        default_network: rules.network.default.as_ref(),
        recorded_table: bd
            .status
            .as_ref()
            .and_then(|s| s.resources.table_arn.as_deref())
            .and_then(desired::table_of_arn),
        table_used_elsewhere: ctx.peers.table_recorded_elsewhere(&as_written.table.name, Some(&owner.uid)),
    };
    (clients, desired::desired(owner, &bd.spec, &inputs), allocation)
}

/// What a successful apply makes of the status.
fn applied_status(
    generation: Option<i64>,
    previous: &BlogDeploymentStatus,
    applied: apply::Applied,
    allocation: Option<AllocationStatus>,
    write_token_secret: String,
) -> (Observed, BlogDeploymentStatus) {
    let observed = Observed {
        generation,
        table: applied.table,
        domain: applied.domain,
        function: applied.function,
        container: applied.container,
        regions: None,
    };
    let next = BlogDeploymentStatus {
        observed_generation: generation,
        function_url: applied.function_url,
        container_url: applied.container_url,
        conditions: previous.conditions.clone(),
        resources: applied.resources,
        container_tasks: applied.container_tasks,
        allocation,
        write_token_secret: Some(write_token_secret),
        placement: None,
    };
    (observed, next)
}

/// Reads metrics and decides sizes, unless allocation is Manual. A failure to read metrics never
/// blocks the reconcile: the previous allocation status stays.
async fn allocate_one(
    bd: &BlogDeployment,
    ctx: &Context,
    clients: &crate::cloud::AwsClients,
    desired: &desired::Desired,
    previous: &BlogDeploymentStatus,
) -> Option<AllocationStatus> {
    let spec = &bd.spec.allocation;
    if spec.mode == AllocationMode::Manual {
        return None;
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let last = previous.allocation.as_ref();
    let window = allocation::effective_window(
        Duration::from_secs(u64::try_from(spec.window_minutes).unwrap_or(60) * 60),
        last.and_then(|a| a.last_change_time.as_ref()),
        &now,
    );
    let balancer = previous.resources.load_balancer_arn.as_deref();
    let key = bd.uid().unwrap_or_default();
    let max_age = ctx.metrics_max_age();
    let observed = match ctx.metrics_cache.fresh(&key, window, max_age, std::time::Instant::now()) {
        Some(Some(observed)) => observed,
        // The last read failed a moment ago: not again before it ages out.
        Some(None) => return previous.allocation.clone(),
        None => match allocation::observe(clients, desired, balancer, window).await {
            Ok(observed) => {
                ctx.metrics_cache.store(&key, window, Some(observed), std::time::Instant::now());
                observed
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read metrics; keeping the last allocation");
                ctx.metrics_cache.store(&key, window, None, std::time::Instant::now());
                return previous.allocation.clone();
            }
        },
    };
    let ecs_desired = previous.container_tasks.as_ref().map(|t| t.desired);
    let running = allocation::running_sizes(desired, spec.mode, last, ecs_desired);
    let limits = &ctx.settings.tenant_policy.for_namespace(&bd.namespace().unwrap_or_default()).limits;
    Some(allocation::decide(spec, limits, &observed, running, last, &now, &ctx.settings.prices))
}

/// Writes the status when it says something new, and records an Event when `Ready` changes.
async fn publish_status(
    bd: &BlogDeployment,
    ctx: &Context,
    previous: &BlogDeploymentStatus,
    mut next: BlogDeploymentStatus,
    observed: &Observed,
) -> Result<(), Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    next.conditions = status::conditions(observed, &previous.conditions, &now);
    let (namespace, name) = (bd.namespace().unwrap_or_default(), bd.name_any());
    let key = format!("{namespace}/{name}");
    ctx.metrics.set_ready(&key, status::ready_condition(&next).map(|c| (c.status.as_str(), c.reason.as_str())));
    ctx.metrics.set_deployment(&namespace, &name, Some(&next));
    if status::same_status(previous, &next) {
        return Ok(());
    }
    let event = status::transition_event(previous, &next);
    let api: Api<BlogDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status::merge_patch(previous, &next) })),
    )
    .await
    .map_err(Error::PatchStatus)?;
    if let Some((warning, reason, note)) = event {
        record(ctx, bd, if warning { EventType::Warning } else { EventType::Normal }, &reason, &note).await;
    }
    let (before, after) = (previous.allocation.as_ref(), next.allocation.as_ref());
    if let Some(note) = allocation::change_note(bd.spec.allocation.mode, before, after) {
        record(ctx, bd, EventType::Normal, "AllocationChanged", &note).await;
    }
    Ok(())
}

async fn record(ctx: &Context, bd: &BlogDeployment, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1024).collect()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &bd.object_ref(&())).await {
        tracing::warn!(error = %err, "could not record an Event");
    }
}

/// Every AWS resource of a BlogDeployment being deleted, in the account that holds them: placement
/// regions first, then home's stack and table.
async fn remove_everything(bd: &BlogDeployment, ctx: &Context, owner: &Owner) -> Result<(), CloudError> {
    let recorded = bd.status.as_ref().map(|s| s.resources.clone()).unwrap_or_default();
    if let Some(moved) = ctx.settings.tenant_policy.account_moved(&owner.namespace, recorded.table_arn.as_deref()) {
        return Err(CloudError::refused("sts", "AssumeRole", "AccountMoved", moved));
    }
    let cloud = cloud_for(bd, ctx, owner).await?;
    let clients = cloud.clients(&region_of(bd, &ctx.settings.default_region));
    let table = table_of(bd, owner);
    let placement = bd.status.as_ref().and_then(|s| s.placement.as_ref());
    let home = (clients.region.as_str(), table.as_str());
    crate::placement::remove_for_deletion(&cloud, &bd.spec, owner, home, placement).await?;
    let names = desired::Names::for_owner(owner);
    apply::cleanup(&clients, owner, &names, (Some((&table, bd.spec.table.deletion_policy)), &[]), &recorded).await
}

#[tracing::instrument(skip_all, fields(namespace = bd.namespace(), blogdeployment = bd.name_any()))]
async fn cleanup_one(bd: &BlogDeployment, ctx: &Context) -> Result<Action, Error> {
    // Never waits on validation: a broken spec must not block deletion.
    let owner = owner_of(bd)?;
    match remove_everything(bd, ctx, &owner).await {
        Ok(()) => {
            ctx.metrics.set_ready(&format!("{}/{}", owner.namespace, owner.name), None);
            ctx.metrics.set_deployment(&owner.namespace, &owner.name, None);
            ctx.metrics_cache.forget(&owner.uid);
            ctx.settled(&owner.uid);
            record(ctx, bd, EventType::Normal, "Deleted", "every AWS resource of this BlogDeployment is gone").await;
            Ok(Action::await_change())
        }
        Err(err) => {
            // Say why the deletion cannot finish, then retry.
            let previous = bd.status.clone().unwrap_or_default();
            tracing::warn!(error = %err, "deletion blocked");
            let stuck =
                PartState::not_ready(status::reason::DELETION_BLOCKED, status::tenant_message(&err.to_string()));
            let observed = Observed {
                generation: bd.metadata.generation,
                table: stuck.clone(),
                domain: stuck.clone(),
                function: stuck.clone(),
                container: stuck,
                regions: None,
            };
            let next = BlogDeploymentStatus { ..previous.clone() };
            publish_status(bd, ctx, &previous, next, &observed).await?;
            Err(err.into())
        }
    }
}

/// A failure that clears up by itself is retried with this object's backoff; one a person must fix
/// (permissions, a refused request) is looked at again only at the resync pace. Never a hot loop.
fn error_policy(bd: Arc<BlogDeployment>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error.metric_label());
    let delay = if error.is_retryable() {
        ctx.failures.next(&bd.uid().unwrap_or_default(), &error.failing_step())
    } else {
        ctx.next_resync(&bd.uid().unwrap_or_default())
    };
    tracing::warn!(namespace = bd.namespace(), blogdeployment = bd.name_any(), %error, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// Runs the controller until the process is asked to stop: over all namespaces when `namespaces`
/// is empty, else one controller per namespace (a namespace-scoped install has RBAC only there).
pub async fn run(ctx: Arc<Context>, namespaces: &[String]) {
    if namespaces.is_empty() {
        return run_on(Api::all(ctx.client.clone()), ctx).await;
    }
    let each = namespaces.iter().map(|ns| run_on(Api::namespaced(ctx.client.clone(), ns), Arc::clone(&ctx)));
    futures::future::join_all(each).await;
}

/// Reconciles on a change of the spec (generation, which deletion bumps too), never on the
/// operator's own writes (status, its finalizer); everything else comes from requeues. A finalizer
/// someone removed comes back at the next resync.
async fn run_on(api: Api<BlogDeployment>, ctx: Arc<Context>) {
    let (reader, writer) = reflector::store();
    ctx.peers.watch(reader.clone());
    let changes = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(forget_bookkeeping)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let sweep = unclaimed_sweep(reader.clone(), ctx.settings.resync.min(Duration::from_secs(60)));
    Controller::for_stream(changes, reader)
        .reconcile_on(sweep)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile ended with an error");
            }
        })
        .await;
}

/// The cached copy drops what the operator never reads and the apiserver keeps for others: the
/// field managers and `kubectl apply`'s copy of the whole spec, most of a small object's size.
fn forget_bookkeeping(bd: &mut BlogDeployment) {
    bd.managed_fields_mut().clear();
    bd.annotations_mut().remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// Every `period`, the objects in `store` that carry no finalizer of ours and are not being
/// deleted: never reconciled, or stripped of it by someone. The watch should have started a
/// reconcile for each; this is the net under the one it can drop (an object first seen during a
/// relist may be handed over before the store holds it, and is then skipped once for good).
fn unclaimed_sweep(
    store: reflector::Store<BlogDeployment>,
    period: Duration,
) -> impl futures::Stream<Item = reflector::ObjectRef<BlogDeployment>> + Send {
    futures::stream::unfold(store, move |store| async move {
        tokio::time::sleep(period).await;
        let unclaimed: Vec<_> =
            store.state().iter().filter(|bd| unclaimed(bd)).map(|bd| reflector::ObjectRef::from(bd.as_ref())).collect();
        Some((futures::stream::iter(unclaimed), store))
    })
    .flatten()
}

/// Not ours yet: no finalizer of ours, and not being deleted.
fn unclaimed(bd: &BlogDeployment) -> bool {
    bd.metadata.deletion_timestamp.is_none() && !bd.finalizers().iter().any(|f| f == FINALIZER)
}

/// The Event recorder of this operator instance.
#[must_use]
pub fn recorder(client: Client) -> Recorder {
    let instance = std::env::var("POD_NAME").ok();
    Recorder::new(client, Reporter { controller: "blog-operator".to_owned(), instance })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_serve_in_arrival_order_and_keep_one_for_changes() {
        let workers = Workers::new(2);
        let first_resync = workers.slot(true).await;
        // A second resync waits although a worker is free: that one is kept for changes.
        let second_resync = tokio::time::timeout(Duration::from_millis(20), workers.slot(true)).await;
        assert!(second_resync.is_err(), "the last worker is kept for changes");
        let change = tokio::time::timeout(Duration::from_millis(20), workers.slot(false)).await;
        assert!(change.is_ok(), "a change takes it");
        drop(change);
        drop(first_resync);
        assert!(tokio::time::timeout(Duration::from_millis(20), workers.slot(true)).await.is_ok());
    }

    #[test]
    fn the_cached_copy_forgets_field_managers_and_the_applied_copy_only() {
        let spec = serde_json::from_value(json!({"image": "blog:1"})).expect("spec");
        let mut bd = BlogDeployment::new("blog", spec);
        bd.metadata.managed_fields = Some(vec![Default::default()]);
        let annotations = [("kubectl.kubernetes.io/last-applied-configuration", "{}"), ("team", "blog")];
        bd.metadata.annotations = Some(annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        forget_bookkeeping(&mut bd);
        assert_eq!(bd.metadata.managed_fields, Some(vec![]));
        assert_eq!(bd.annotations().keys().collect::<Vec<_>>(), ["team"]);
        assert_eq!(bd.spec.image, "blog:1");
    }

    #[test]
    fn an_object_without_our_finalizer_is_unclaimed_unless_it_is_going() {
        let spec = serde_json::from_value(json!({"image": "blog:1"})).expect("spec");
        let mut bd = BlogDeployment::new("blog", spec);
        assert!(unclaimed(&bd), "never reconciled");
        bd.metadata.finalizers = Some(vec!["someone.else/keep".to_owned()]);
        assert!(unclaimed(&bd), "someone else's finalizer only");
        bd.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
        assert!(!unclaimed(&bd));
        bd.metadata.finalizers = None;
        bd.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(!unclaimed(&bd), "being deleted: nothing to claim");
    }
}
