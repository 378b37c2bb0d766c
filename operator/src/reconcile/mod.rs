//! One reconcile of a BlogDeployment, as a pipeline with one file and one error type per step:
//! [`validate`] (the webhook's decision, before any AWS call) → [`dereference`] (the write token,
//! the account, the metrics) → [`build`] (the desired state, pure, once) → apply (the plan of
//! resource steps, per region) → [`update_status`]. Deletion runs the plan backward. The
//! controller keeps only the Kubernetes wiring.

pub mod build;
pub mod dereference;
pub mod update_status;
pub mod validate;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::apply::{self, Applied, ApplyError};
use crate::cloud::CloudError;
use crate::context::{Context, Error};
use crate::crd::{BlogDeployment, BlogDeploymentStatus, PlacementStatus};
use crate::desired::{self, Desired, Owner};
use crate::status::{self, Observed};
use dereference::{DereferenceError, Dereferenced, MetricsSource};
use update_status::Reporter;

/// The object's owner: namespace, name and UID, which every AWS name and tag derives from.
///
/// # Errors
/// [`Error::MissingMetadata`] for an object without namespace or UID.
pub fn owner_of(bd: &BlogDeployment) -> Result<Owner, Error> {
    Ok(Owner {
        namespace: bd.namespace().ok_or(Error::MissingMetadata)?,
        name: bd.name_any(),
        uid: bd.uid().ok_or(Error::MissingMetadata)?,
    })
}

fn reporter<'a>(bd: &'a BlogDeployment, ctx: &'a Context) -> Reporter<'a> {
    Reporter { bd, client: &ctx.client, recorder: &ctx.recorder, metrics: &ctx.metrics }
}

/// Brings the object's AWS resources to its spec and reports them.
///
/// # Errors
/// A failure worth a retry; one a person must act on is a condition, and `Ok` with the resync.
#[tracing::instrument(skip_all, fields(namespace = bd.namespace(), blogdeployment = bd.name_any()))]
pub async fn apply(bd: &BlogDeployment, ctx: &Context) -> Result<Action, Error> {
    let (owner, previous, report) = (owner_of(bd)?, bd.status.clone().unwrap_or_default(), reporter(bd, ctx));
    let uid = owner.uid.clone();
    let validated = match validate::validate(bd, owner, (&ctx.settings, &ctx.peers), &previous) {
        Ok(validated) => validated,
        // No AWS call: wait for the next change of the spec.
        Err(refused) => return report.refuse(&previous, &refused).await.map(|()| Action::await_change()),
    };
    let source = MetricsSource { cache: &ctx.metrics_cache, max_age: ctx.metrics_max_age() };
    let settings = &ctx.settings;
    let reading = (source, settings.default_region.as_str());
    let found = match dereference::dereference(bd, &validated, (&ctx.client, &ctx.cloud), reading).await {
        Ok(found) => found,
        // Secrets are not watched and roles change outside: look again at the resync pace.
        Err(DereferenceError::Refused(refused)) => {
            report.refuse(&previous, &refused).await?;
            return Ok(Action::requeue(ctx.next_resync(&uid)));
        }
        Err(DereferenceError::Retry(err)) => return Err(err),
    };
    let used_elsewhere = |table: &str| ctx.peers.table_recorded_elsewhere(table, Some(&uid));
    let facts = build::Facts {
        default_region: &settings.default_region,
        boundary: settings.role_permissions_boundary.as_deref(),
        prices: &settings.prices,
        previous: &previous,
        table_used_elsewhere: &used_elsewhere,
        metrics: &found.metrics,
    };
    let built = build::build(&validated, &facts);
    let first = bd.status.is_none();
    if first {
        report.mark_applying().await?;
    }
    let previous = report.remember_domain(previous, &built.desired).await?;
    let clients = found.cloud.clients(&built.desired.region);
    let (readiness, token) = (settings.container_readiness, found.token.value.as_str());
    let applied = match apply::apply(&clients, &built.desired, (&previous.resources, first), readiness, token).await {
        Ok(applied) => applied,
        Err(failed) if failed.error.is_retryable() => return Err(failed.error.into()),
        Err(failed) => return refused_by_aws(&report, ctx, &previous, &failed).await,
    };
    let (placement, placed) = place(bd, ctx, (&found, &built.desired, &applied), &previous).await;
    let (mut observed, mut next) =
        update_status::applied(bd.metadata.generation, &previous, applied, (built.allocation, found.token.secret));
    observed.regions = placement.as_ref().map(|p| status::regions_state(&p.regions));
    next.placement = placement;
    settle(&report, ctx, (&previous, next, &observed), placed).await
}

/// A person must act (permissions, a refused parameter): say it on the part that failed and look
/// again only at the resync pace, never in a hot loop.
async fn refused_by_aws(
    report: &Reporter<'_>,
    ctx: &Context,
    previous: &BlogDeploymentStatus,
    failed: &ApplyError,
) -> Result<Action, Error> {
    tracing::warn!(error = %failed, "AWS refused a request");
    let failure = failed.failure();
    ctx.metrics.reconcile_failed(failure.reason);
    let generation = report.bd.metadata.generation;
    let observed = status::failed(generation, &failure, &failed.reached);
    let next = BlogDeploymentStatus { observed_generation: generation, ..previous.clone() };
    report.publish(previous, next, &observed).await?;
    let uid = report.bd.uid().unwrap_or_default();
    ctx.settled(&uid);
    Ok(Action::requeue(ctx.next_resync(&uid)))
}

/// The placement regions after home's apply; whether every region is settled.
async fn place(
    bd: &BlogDeployment,
    ctx: &Context,
    (found, home, applied): (&Dereferenced, &Desired, &Applied),
    previous: &BlogDeploymentStatus,
) -> (Option<PlacementStatus>, bool) {
    if bd.spec.placement.is_none() {
        return (None, true);
    }
    let runtime = crate::placement::Runtime {
        cloud: &found.cloud,
        readiness: ctx.settings.container_readiness,
        drain: ctx.settings.placement_drain,
        prices: &ctx.settings.prices,
        metrics_max_age: ctx.metrics_max_age(),
        metrics_cache: &ctx.metrics_cache,
    };
    let before = previous.placement.as_ref();
    let (placement, settled, note) =
        crate::placement::reconcile(&runtime, &bd.spec, (home, applied), &found.token.value, before).await;
    if let Some(note) = note {
        reporter(bd, ctx).record(EventType::Normal, "Placement", &note).await;
    }
    (Some(placement), settled)
}

/// Publishes what the apply saw and picks the next look: the resync once settled, the wait
/// backoff while AWS works.
async fn settle(
    report: &Reporter<'_>,
    ctx: &Context,
    (previous, next, observed): (&BlogDeploymentStatus, BlogDeploymentStatus, &Observed),
    placed: bool,
) -> Result<Action, Error> {
    let summary = status::summary(observed);
    tracing::info!(ready = summary.ready, reason = %summary.reason, "reconciled");
    let settled = status::settled(observed) && placed;
    report.publish(previous, next, observed).await?;
    let uid = report.bd.uid().unwrap_or_default();
    ctx.failures.reset(&uid);
    if settled {
        ctx.waits.reset(&uid);
        return Ok(Action::requeue(ctx.next_resync(&uid)));
    }
    Ok(Action::requeue(ctx.waits.next(&uid, &summary.message)))
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

/// Every AWS resource of a BlogDeployment being deleted, in the account that holds them: placement
/// regions first, then home's stack and table.
async fn remove_everything(bd: &BlogDeployment, ctx: &Context, owner: &Owner) -> Result<(), CloudError> {
    let recorded = bd.status.as_ref().map(|s| s.resources.clone()).unwrap_or_default();
    let policy = &ctx.settings.tenant_policy;
    if let Some(moved) = policy.account_moved(&owner.namespace, recorded.table_arn.as_deref()) {
        return Err(CloudError::refused("sts", "AssumeRole", "AccountMoved", moved));
    }
    let rules = policy.for_namespace(&owner.namespace);
    let cloud = dereference::cloud_for(bd, (&ctx.cloud, &rules), owner).await?;
    let clients = cloud.clients(&region_of(bd, &ctx.settings.default_region));
    let table = table_of(bd, owner);
    let placement = bd.status.as_ref().and_then(|s| s.placement.as_ref());
    let home = (clients.region.as_str(), table.as_str());
    crate::placement::remove_for_deletion(&cloud, &bd.spec, owner, home, placement).await?;
    let names = desired::Names::for_owner(owner);
    apply::cleanup(&clients, owner, &names, (Some((&table, bd.spec.table.deletion_policy)), &[]), &recorded).await
}

/// Removes everything the object made. Never waits on validation: a broken spec must not block
/// deletion.
///
/// # Errors
/// The AWS failure, after saying on every condition why the deletion cannot finish.
#[tracing::instrument(skip_all, fields(namespace = bd.namespace(), blogdeployment = bd.name_any()))]
pub async fn cleanup(bd: &BlogDeployment, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(bd)?;
    let report = reporter(bd, ctx);
    if let Err(err) = remove_everything(bd, ctx, &owner).await {
        tracing::warn!(error = %err, "deletion blocked");
        let previous = bd.status.clone().unwrap_or_default();
        let why = status::tenant_message(&err.to_string());
        let observed = status::refused(bd.metadata.generation, status::reason::DELETION_BLOCKED, &why);
        report.publish(&previous, previous.clone(), &observed).await?;
        return Err(err.into());
    }
    ctx.metrics.set_ready(&format!("{}/{}", owner.namespace, owner.name), None);
    ctx.metrics.set_deployment(&owner.namespace, &owner.name, None);
    ctx.metrics_cache.forget(&owner.uid);
    ctx.settled(&owner.uid);
    report.record(EventType::Normal, "Deleted", "every AWS resource of this BlogDeployment is gone").await;
    Ok(Action::await_change())
}
