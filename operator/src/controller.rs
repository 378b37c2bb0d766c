//! The controller: the Kubernetes wiring. It watches BlogDeployments, takes a worker, adds or
//! removes the finalizer, hands the object to the reconcile pipeline (`reconcile`), and requeues
//! with backoff after a failure.

use std::sync::Arc;
use std::time::Duration;

use crate::events::Recorder;
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

pub use crate::context::{Context, Error, Settings, Slot, Workers};
use crate::crd::BlogDeployment;
use crate::status;

/// The finalizer that keeps a BlogDeployment until its AWS resources are gone.
pub const FINALIZER: &str = "blogs.serverless.dev/cleanup";

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
            let action = Box::pin(crate::reconcile::cleanup(&bd, &ctx)).await?;
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
            let apply = Box::pin(crate::reconcile::apply(&bd, &ctx));
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

/// Resolves at the first SIGTERM or Ctrl+C. Made when the process starts, so a signal that comes
/// before the controllers run is not lost, and shared by everything that stops on it.
pub type Stop = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// The process's [`Stop`].
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn stop_signal() -> std::io::Result<Stop> {
    use futures::FutureExt;
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("asked to stop");
    }
    .boxed()
    .shared())
}

/// Runs the controller until `stop`: over all namespaces when `namespaces` is empty, else one
/// controller per namespace (a namespace-scoped install has RBAC only there). At `stop` no new
/// reconcile starts; those running get `grace` to finish, then they are cut off (every step may
/// be, and the next leader resumes). kube's own graceful shutdown is not used: it also waits for
/// the watch cache's first list, without end when that list never comes.
pub async fn run(ctx: Arc<Context>, namespaces: &[String], stop: Stop, grace: Duration) {
    let controllers = async {
        if namespaces.is_empty() {
            return run_on(Api::all(ctx.client.clone()), Arc::clone(&ctx)).await;
        }
        let each = namespaces.iter().map(|ns| run_on(Api::namespaced(ctx.client.clone(), ns), Arc::clone(&ctx)));
        futures::future::join_all(each).await;
    };
    let drained = async {
        stop.await;
        if tokio::time::timeout(grace, ctx.workers.drain()).await.is_err() {
            tracing::warn!(?grace, "reconciles still running at the end of the grace period: cut off");
        }
    };
    tokio::select! {
        () = controllers => {}
        () = drained => {}
    }
}

/// Reconciles on a change of the spec (generation, which deletion bumps too) or of the rollout
/// annotation, never on the operator's own writes (status, its finalizer); everything else comes from requeues. A finalizer
/// someone removed comes back at the next resync.
async fn run_on(api: Api<BlogDeployment>, ctx: Arc<Context>) {
    let (reader, writer) = reflector::store();
    ctx.peers.watch(reader.clone());
    let changes = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(forget_bookkeeping)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_command, Default::default());
    let sweep = unclaimed_sweep(reader.clone(), ctx.settings.resync.min(Duration::from_secs(60)));
    Controller::for_stream(changes, reader)
        .reconcile_on(sweep)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                // The watch itself failed (RBAC, an unreachable API server): a person can act on it.
                Err(err @ kube::runtime::controller::Error::QueueError(_)) => {
                    tracing::warn!(error = %err, "watching BlogDeployments failed; retrying");
                }
                // Reconcile failures are logged, and retried, by the error policy.
                Err(err) => tracing::debug!(error = %err, "reconcile ended with an error"),
                Ok(_) => {}
            }
        })
        .await;
}

/// What a reconcile follows: the spec (its generation, which deletion bumps too), the rollout
/// annotation (promote, abort, pause without a spec edit) and the paused annotation.
fn spec_or_command(bd: &BlogDeployment) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    predicates::generation(bd).hash(&mut hasher);
    bd.annotations().get(blog_core::rollout::function::ANNOTATION).hash(&mut hasher);
    crate::crd::is_paused(bd.annotations()).hash(&mut hasher);
    Some(hasher.finish())
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
    Recorder::new(client, "blog-operator", std::env::var("POD_NAME").ok())
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

    #[tokio::test]
    async fn draining_waits_for_the_running_reconcile_and_then_starts_none() {
        let workers = Workers::new(2);
        let running = workers.slot(false).await;
        let blocked = tokio::time::timeout(Duration::from_millis(20), workers.drain()).await;
        assert!(blocked.is_err(), "a reconcile still holds a worker");
        drop(running);
        assert!(tokio::time::timeout(Duration::from_millis(20), workers.drain()).await.is_ok());
        let after = tokio::time::timeout(Duration::from_millis(20), workers.slot(false)).await;
        assert!(after.is_err(), "no reconcile starts once drained");
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
    fn the_spec_and_the_rollout_annotation_start_a_reconcile_other_writes_do_not() {
        let spec = serde_json::from_value(json!({"image": "blog:1"})).expect("spec");
        let mut bd = BlogDeployment::new("blog", spec);
        bd.metadata.generation = Some(1);
        let first = spec_or_command(&bd);
        bd.status = Some(crate::crd::BlogDeploymentStatus { observed_generation: Some(1), ..Default::default() });
        bd.annotations_mut().insert("team".into(), "blog".into());
        assert_eq!(spec_or_command(&bd), first, "status and other annotations");
        bd.annotations_mut().insert(blog_core::rollout::function::ANNOTATION.into(), "promote".into());
        let promoted = spec_or_command(&bd);
        assert_ne!(promoted, first);
        bd.annotations_mut().insert(crate::crd::PAUSED_ANNOTATION.into(), "true".into());
        let paused = spec_or_command(&bd);
        assert_ne!(paused, promoted);
        bd.metadata.generation = Some(2);
        assert_ne!(spec_or_command(&bd), paused);
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
        bd.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(!unclaimed(&bd), "being deleted: nothing to claim");
    }
}
