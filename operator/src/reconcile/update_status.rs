//! Update status: the write-ahead patches before apply makes anything, the conditions after it,
//! and the Events on transitions. Writes only when the status says something new.

use blog_core::rollout::{RolloutStatus, VariantRollout, function as rollout};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::validate::Refused;
use crate::apply::Applied;
use crate::context::Error;
use crate::crd::{AllocationStatus, BlogDeployment, BlogDeploymentStatus};
use crate::desired::Desired;
use crate::events::Recorder;
use crate::metrics::Metrics;
use crate::status::{self, Observed};

/// Where status, Events and the operator's own metrics go for one object.
pub struct Reporter<'a> {
    pub bd: &'a BlogDeployment,
    pub client: &'a Client,
    pub recorder: &'a Recorder,
    pub metrics: &'a Metrics,
}

impl Reporter<'_> {
    /// Gives a new object a status before its first apply makes anything: an apply that finds one
    /// may have been cut off after making something, so it searches before it makes.
    ///
    /// # Errors
    /// The patch failed.
    pub async fn mark_applying(&self) -> Result<(), Error> {
        self.merge(json!({"status": {"resources": {}}})).await
    }

    /// Records the domain's hosts and zone in status before the domain step makes anything for
    /// them; returns the status as it now stands.
    ///
    /// # Errors
    /// The patch failed.
    pub async fn remember_domain(
        &self,
        previous: BlogDeploymentStatus,
        desired: &Desired,
    ) -> Result<BlogDeploymentStatus, Error> {
        let zone = self.bd.spec.domain.as_ref().map(|d| d.hosted_zone.as_str()).unwrap_or_default();
        let Some(resources) = crate::domain::to_remember(&previous.resources, desired.domain.as_ref(), zone) else {
            return Ok(previous);
        };
        let (hosts, zone_id) = (&resources.hosts, &resources.hosted_zone_id);
        self.merge(json!({"status": {"resources": {"hosts": hosts, "hostedZoneId": zone_id}}})).await?;
        Ok(BlogDeploymentStatus { resources, ..previous })
    }

    async fn merge(&self, patch: serde_json::Value) -> Result<(), Error> {
        let api: Api<BlogDeployment> = Api::namespaced(self.client.clone(), &self.bd.namespace().unwrap_or_default());
        let params = PatchParams::default();
        api.patch_status(&self.bd.name_any(), &params, &Patch::Merge(patch)).await.map_err(Error::PatchStatus)?;
        Ok(())
    }

    /// Removes annotation `key` from the object (a one-shot command the operator acted on).
    ///
    /// # Errors
    /// The patch failed.
    pub async fn clear_annotation(&self, key: &str) -> Result<(), Error> {
        let api: Api<BlogDeployment> = Api::namespaced(self.client.clone(), &self.bd.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": {key: null}}});
        api.patch(&self.bd.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await.map_err(Error::Annotate)?;
        Ok(())
    }

    /// Says why a spec is refused, on every condition, without an AWS call.
    ///
    /// # Errors
    /// The patch failed.
    pub async fn refuse(&self, previous: &BlogDeploymentStatus, refused: &Refused) -> Result<(), Error> {
        tracing::info!(reason = refused.reason, message = refused.message, "spec refused");
        let generation = self.bd.metadata.generation;
        let observed = status::refused(generation, refused.reason, &refused.message);
        let next = BlogDeploymentStatus { observed_generation: generation, ..previous.clone() };
        self.publish(previous, next, &observed).await?;
        self.metrics.reconcile_failed(refused.reason);
        Ok(())
    }

    /// Writes the status when it says something new, and records an Event when `Ready` changes.
    ///
    /// # Errors
    /// The patch failed.
    pub async fn publish(
        &self,
        previous: &BlogDeploymentStatus,
        mut next: BlogDeploymentStatus,
        observed: &Observed,
    ) -> Result<(), Error> {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        next.conditions = status::conditions(observed, &previous.conditions, &now);
        let (namespace, name) = (self.bd.namespace().unwrap_or_default(), self.bd.name_any());
        let ready = status::ready_condition(&next).map(|c| (c.status.as_str(), c.reason.as_str()));
        self.metrics.set_ready(&format!("{namespace}/{name}"), ready);
        self.metrics.set_deployment(&namespace, &name, Some(&next));
        if status::same_status(previous, &next) {
            return Ok(());
        }
        let event = status::transition_event(previous, &next);
        self.merge(json!({ "status": status::merge_patch(previous, &next) })).await?;
        if let Some((warning, reason, note)) = event {
            self.record(if warning { EventType::Warning } else { EventType::Normal }, &reason, &note).await;
        }
        let (before, after) = (previous.allocation.as_ref(), next.allocation.as_ref());
        if let Some(note) = crate::allocation::change_note(self.bd.spec.allocation.mode, before, after) {
            self.record(EventType::Normal, "AllocationChanged", &note).await;
        }
        Ok(())
    }

    /// Records an Event on the object; a failure to record is logged, never fatal. A repeat of
    /// the same reason within minutes becomes a count on the first Event.
    pub async fn record(&self, type_: EventType, reason: &str, note: &str) {
        self.publish_event(true, type_, reason, note).await;
    }

    /// Records an Event whose note is news even when its reason repeats (a rollout's steps):
    /// folding goes by reason alone and would leave the first note, so these are never folded.
    pub async fn record_each(&self, type_: EventType, reason: &str, note: &str) {
        self.publish_event(false, type_, reason, note).await;
    }

    async fn publish_event(&self, fold: bool, type_: EventType, reason: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1024).collect()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &self.bd.object_ref(&()), fold).await {
            tracing::warn!(error = %err, "could not record an Event");
        }
    }
}

/// What a successful apply makes of the status.
#[must_use]
pub fn applied(
    generation: Option<i64>,
    previous: &BlogDeploymentStatus,
    applied: Applied,
    (allocation, write_token_secret): (Option<AllocationStatus>, String),
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
        rollout: None,
    };
    (observed, next)
}

/// Each variant's rollout as this apply left it: from the alias's move and the answer to ECS,
/// or the last status's where the apply did not reach that part.
#[must_use]
pub fn rollout(
    previous: Option<&RolloutStatus>,
    (function, container): (Option<&rollout::Move>, Option<&rollout::Move>),
) -> Option<RolloutStatus> {
    let function = match function {
        Some(moved) => moved.record.clone(),
        None => previous.and_then(|p| p.function.clone()),
    };
    let container = match container {
        Some(moved) => moved.record.clone(),
        None => previous.and_then(|p| p.container.clone()),
    };
    let active = |r: &&VariantRollout| r.phase != rollout::SUCCEEDED;
    let phase = function
        .as_ref()
        .filter(active)
        .or(container.as_ref().filter(active))
        .or(function.as_ref())
        .or(container.as_ref());
    let phase = phase.map(|r| r.phase.clone());
    (function.is_some() || container.is_some()).then_some(RolloutStatus { phase, function, container })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_keeps_its_record_and_the_phase_is_the_one_still_rolling() {
        let rolling = VariantRollout { phase: rollout::PROGRESSING.into(), ..VariantRollout::default() };
        let done = VariantRollout { phase: rollout::SUCCEEDED.into(), ..VariantRollout::default() };
        let previous = RolloutStatus { phase: None, function: Some(done.clone()), container: None };
        let moved = rollout::Move { route: None, record: Some(rolling.clone()), event: None };
        let reported = rollout(Some(&previous), (None, Some(&moved))).expect("both records");
        assert_eq!((reported.function.clone(), reported.container.clone()), (Some(done), Some(rolling)));
        assert_eq!(reported.phase.as_deref(), Some(rollout::PROGRESSING));
        let carried = rollout(Some(&reported), (None, None)).expect("carried");
        assert_eq!(carried.container, reported.container);
        assert_eq!(rollout(None, (None, None)), None, "nothing asked, nothing said");
    }
}
