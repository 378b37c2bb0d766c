//! One reconcile of a BlogDeployment, as a pipeline with one file and one error type per step:
//! [`validate`] (the webhook's decision, before any AWS call) → [`dereference`] (the write token,
//! the account, the metrics) → [`build`] (a desired state per region, pure, once) → [`apply`]
//! (the plan of resource steps in each region, the placement's routing around them) →
//! [`update_status`]. Deletion runs the plan backward. The controller keeps only the Kubernetes
//! wiring.

pub mod apply;
pub mod build;
pub mod delete;
pub mod dereference;
pub mod update_status;
pub mod validate;

pub use delete::cleanup;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::apply::ApplyError;
use crate::context::{Context, Error};
use crate::crd::{BlogDeployment, BlogDeploymentStatus};
use crate::desired::Owner;
use crate::status::{self, Observed};
use blog_core::rollout::RolloutStatus;
use blog_core::rollout::function as rollout;
use blog_core::rollout::function::Release;
use dereference::{DereferenceError, MetricsSource};
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
        demand: &found.demand,
        readers: &found.readers,
        reader_probe_url: &settings.reader_probe_url,
        rollout: found.rollout.as_ref(),
        container_rollout: found.container_rollout.as_ref(),
        annotation: bd.annotations().get(rollout::ANNOTATION).map(String::as_str),
    };
    let built = build::build(&validated, &facts);
    let first = bd.status.is_none();
    if first {
        report.mark_applying().await?;
    }
    let previous = report.remember_domain(previous, built.home()).await?;
    // Paused: every read as usual, no change; drift shows on the part that would change.
    let cloud = if crate::crd::is_paused(bd.annotations()) { found.cloud.observing() } else { found.cloud.clone() };
    let stage = apply::Stage {
        cloud: &cloud,
        readiness: settings.container_readiness,
        write_token: &found.token.value,
        drain: settings.placement_drain,
    };
    let applied = match apply::home(&stage, &built, (&previous.resources, first)).await {
        Ok(applied) => applied,
        Err(failed) if failed.error.is_retryable() => return Err(failed.error.into()),
        Err(failed) => return refused_by_aws(&report, ctx, &previous, &failed).await,
    };
    let placing =
        apply::placement(&stage, (bd.spec.placement.as_deref(), &built), &applied, previous.placement.as_deref()).await;
    report_applied(&report, ctx, (&previous, &built, found.token.secret), applied, placing).await
}

/// Reports what the apply and the placement saw (status, Events) and picks the next look.
async fn report_applied(
    report: &Reporter<'_>,
    ctx: &Context,
    (previous, built, token_secret): (&BlogDeploymentStatus, &build::Built, String),
    applied: crate::apply::Applied,
    placing: Option<apply::Placing>,
) -> Result<Action, Error> {
    if let Some(note) = placing.as_ref().and_then(|p| p.note.as_deref()) {
        report.record(EventType::Normal, "Placement", note).await;
    }
    let placed = placing.as_ref().is_none_or(|p| p.settled);
    let moved = (applied.function_rollout.clone(), applied.container_rollout.clone());
    let waits = applied.container_command_waits;
    let generation = report.bd.metadata.generation;
    let (mut observed, mut next) =
        update_status::applied(generation, previous, applied, (built.allocation.clone(), token_secret));
    next.placement = placing.map(|p| Box::new(p.status));
    observed.regions = next.placement.as_ref().map(|p| status::regions_state(&p.regions));
    let moves = (moved.0.as_ref(), moved.1.as_ref());
    next.rollout = released(report, built.home(), previous.rollout.as_deref(), moves, waits).await?.map(Box::new);
    let soonest = next_look(built.home(), next.rollout.as_deref());
    settle(report, ctx, (previous, next, &observed), (placed, soonest)).await
}

/// The rollout to record after an apply: its Events, and the one-shot annotation (`promote`,
/// `abort`) cleared once acted on, so a later rollout is not promoted by an old command. A
/// container command that `waits` (a promote while ECS is between two hooks) is not acted on yet.
async fn released(
    report: &Reporter<'_>,
    home: &crate::desired::Desired,
    previous: Option<&RolloutStatus>,
    moved: (Option<&rollout::Move>, Option<&rollout::Move>),
    container_waits: bool,
) -> Result<Option<RolloutStatus>, Error> {
    for event in [moved.0, moved.1].into_iter().flatten().filter_map(|m| m.event.as_ref()) {
        let type_ = if event.warning { EventType::Warning } else { EventType::Normal };
        report.record_each(type_, event.reason, &event.note).await;
    }
    let commanded = [
        home.function.as_ref().and_then(|f| f.release.as_ref()),
        home.container.as_ref().and_then(|c| c.release.as_ref()),
    ];
    let acted = |(release, moved): (Option<&Release>, Option<&rollout::Move>)| {
        moved.is_some() && release.is_some_and(|r| r.command.is_some())
    };
    if commanded.into_iter().zip([moved.0, moved.1.filter(|_| !container_waits)]).any(acted) {
        report.clear_annotation(rollout::ANNOTATION).await?;
    }
    Ok(update_status::rollout(previous, moved))
}

/// When a rollout wants its next look: the function's next verdict or step end, the container's
/// next verdict or ECS's next stage, whichever is sooner.
fn next_look(home: &crate::desired::Desired, rollout: Option<&RolloutStatus>) -> Option<std::time::Duration> {
    let function =
        home.function.as_ref().and_then(|f| f.release.as_ref()).zip(rollout.and_then(|r| r.function.as_ref()));
    let function =
        function.and_then(|(release, record)| crate::rollout::next_look(record, &release.policy, &release.now));
    let container =
        home.container.as_ref().and_then(|c| c.release.as_ref()).zip(rollout.and_then(|r| r.container.as_ref()));
    let container =
        container.and_then(|(release, record)| crate::rollout::next_ecs_look(record, &release.policy, &release.now));
    function.into_iter().chain(container).min()
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

/// Publishes what the apply saw and picks the next look: the resync once settled, the wait
/// backoff while AWS works.
async fn settle(
    report: &Reporter<'_>,
    ctx: &Context,
    (previous, next, observed): (&BlogDeploymentStatus, BlogDeploymentStatus, &Observed),
    (placed, soonest): (bool, Option<std::time::Duration>),
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
    let wait = ctx.waits.next(&uid, &summary.message);
    Ok(Action::requeue(soonest.map_or(wait, |soonest| soonest.min(wait))))
}
