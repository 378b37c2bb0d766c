//! Conditions computed from what a reconcile observed. Pure: the caller patches the result only
//! when [`same_status`] says it changed, and a condition keeps its `lastTransitionTime` while its
//! status stays the same.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::BlogDeploymentStatus;

pub const READY: &str = "Ready";
pub const TABLE_READY: &str = "TableReady";
pub const FUNCTION_READY: &str = "FunctionReady";
pub const CONTAINER_READY: &str = "ContainerReady";

/// How one part of the deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartState {
    pub ready: bool,
    pub reason: String,
    pub message: String,
}

impl PartState {
    #[must_use]
    pub fn ready(reason: &str, message: impl Into<String>) -> Self {
        Self { ready: true, reason: reason.to_owned(), message: message.into() }
    }
    #[must_use]
    pub fn not_ready(reason: &str, message: impl Into<String>) -> Self {
        Self { ready: false, reason: reason.to_owned(), message: message.into() }
    }
}

/// What the status should say after one reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub table: PartState,
    pub function: PartState,
    pub container: PartState,
}

fn condition(kind: &str, state: &PartState, generation: Option<i64>, now: &Time) -> Condition {
    Condition {
        type_: kind.to_owned(),
        status: if state.ready { "True" } else { "False" }.to_owned(),
        reason: state.reason.clone(),
        message: state.message.clone(),
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// `Ready` summarises the parts: true when all are ready; otherwise it carries the first part
/// that is not, so `kubectl get bd` and kstatus show the reason that matters.
#[must_use]
pub fn summary(observed: &Observed) -> PartState {
    let parts = [("table", &observed.table), ("function", &observed.function), ("container", &observed.container)];
    match parts.iter().find(|(_, state)| !state.ready) {
        None => PartState::ready("Reconciled", "every enabled variant is ready"),
        // An invalid spec blocks every part alike: say it once, without a part name.
        Some((_, state)) if state.reason == "InvalidSpec" => (*state).clone(),
        Some((part, state)) => PartState::not_ready(&state.reason, format!("{part}: {}", state.message)),
    }
}

/// The conditions for `observed`, keeping `lastTransitionTime` from `previous` where a condition's
/// status did not change.
#[must_use]
pub fn conditions(observed: &Observed, previous: &[Condition], now: &Time) -> Vec<Condition> {
    let ready = summary(observed);
    [
        (READY, &ready),
        (TABLE_READY, &observed.table),
        (FUNCTION_READY, &observed.function),
        (CONTAINER_READY, &observed.container),
    ]
    .into_iter()
    .map(|(kind, state)| {
        let mut new = condition(kind, state, observed.generation, now);
        if let Some(old) = previous.iter().find(|c| c.type_ == kind && c.status == new.status) {
            new.last_transition_time = old.last_transition_time.clone();
        }
        new
    })
    .collect()
}

/// An invalid spec: every condition false with reason `InvalidSpec` and the validation message.
#[must_use]
pub fn invalid_spec(generation: Option<i64>, message: &str) -> Observed {
    let state = PartState::not_ready("InvalidSpec", message);
    Observed { generation, table: state.clone(), function: state.clone(), container: state }
}

/// Whether two statuses say the same thing, ignoring condition timestamps.
#[must_use]
pub fn same_status(a: &BlogDeploymentStatus, b: &BlogDeploymentStatus) -> bool {
    let strip = |s: &BlogDeploymentStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        }
        s
    };
    strip(a) == strip(b)
}

/// The JSON merge patch that turns the stored status `previous` into `next`. A merge patch leaves
/// absent fields as they were, so every field `previous` has and `next` lacks, at any depth, is
/// cleared with `null`: a removed variant loses its URL and ARNs, an allocation its stale numbers.
#[must_use]
pub fn merge_patch(previous: &BlogDeploymentStatus, next: &BlogDeploymentStatus) -> serde_json::Value {
    fn clear_removed(previous: &serde_json::Value, next: &mut serde_json::Value) {
        if let (serde_json::Value::Object(before), serde_json::Value::Object(after)) = (previous, next) {
            for (key, old) in before {
                match after.get_mut(key) {
                    Some(new) => clear_removed(old, new),
                    None => {
                        after.insert(key.clone(), serde_json::Value::Null);
                    }
                }
            }
        }
    }
    let to_json = |s: &BlogDeploymentStatus| serde_json::to_value(s).unwrap_or_else(|_| serde_json::json!({}));
    let mut patch = to_json(next);
    clear_removed(&to_json(previous), &mut patch);
    patch
}

/// The Event a status change deserves: `(warning, reason, note)`. `Ready` turning true says
/// `Reconciled`; a new generation applied while ready says `Updated`; `Ready` turning false, or
/// changing reason, says that reason (a warning unless it is progress).
#[must_use]
pub fn transition_event(
    previous: &BlogDeploymentStatus,
    next: &BlogDeploymentStatus,
) -> Option<(bool, String, String)> {
    let now = ready_condition(next)?;
    let before = ready_condition(previous);
    let same = before.is_some_and(|b| b.status == now.status && b.reason == now.reason);
    if now.status == "True" {
        if !same {
            return Some((false, now.reason.clone(), now.message.clone()));
        }
        if previous.observed_generation != next.observed_generation {
            let generation = next.observed_generation.unwrap_or_default();
            return Some((false, "Updated".to_owned(), format!("generation {generation} applied; {}", now.message)));
        }
        return None;
    }
    if same {
        return None;
    }
    let progress = matches!(now.reason.as_str(), "Progressing" | "Creating");
    Some((!progress, now.reason.clone(), now.message.clone()))
}

/// The `Ready` condition of a status, if any.
#[must_use]
pub fn ready_condition(status: &BlogDeploymentStatus) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == READY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid time"))
    }

    fn observed(function_ready: bool) -> Observed {
        Observed {
            generation: Some(3),
            table: PartState::ready("Active", "table blog-x is ACTIVE"),
            function: if function_ready {
                PartState::ready("Available", "https://abc.execute-api")
            } else {
                PartState::not_ready("Creating", "waiting for the function to become Active")
            },
            container: PartState::ready("Disabled", "the container variant is disabled"),
        }
    }

    #[test]
    fn ready_is_true_only_when_every_part_is() {
        let all = conditions(&observed(true), &[], &at(10));
        assert_eq!(all.len(), 4);
        assert_eq!(
            (all[0].type_.as_str(), all[0].status.as_str(), all[0].reason.as_str()),
            (READY, "True", "Reconciled")
        );
        assert!(all.iter().all(|c| c.observed_generation == Some(3)));

        let waiting = conditions(&observed(false), &[], &at(10));
        assert_eq!((waiting[0].status.as_str(), waiting[0].reason.as_str()), ("False", "Creating"));
        assert_eq!(waiting[0].message, "function: waiting for the function to become Active");
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = conditions(&observed(false), &[], &at(10));
        let same = conditions(&observed(false), &first, &at(20));
        assert!(same.iter().all(|c| c.last_transition_time == at(10)));
        let flipped = conditions(&observed(true), &same, &at(30));
        let time_of = |kind: &str| flipped.iter().find(|c| c.type_ == kind).map(|c| c.last_transition_time.clone());
        assert_eq!(time_of(READY), Some(at(30)));
        assert_eq!(time_of(FUNCTION_READY), Some(at(30)));
        assert_eq!(time_of(TABLE_READY), Some(at(10)));
    }

    #[test]
    fn same_status_ignores_only_timestamps() {
        let a = BlogDeploymentStatus { conditions: conditions(&observed(true), &[], &at(1)), ..Default::default() };
        let b = BlogDeploymentStatus { conditions: conditions(&observed(true), &[], &at(2)), ..Default::default() };
        assert!(same_status(&a, &b));
        let c = BlogDeploymentStatus { function_url: Some("https://x".into()), ..b.clone() };
        assert!(!same_status(&b, &c));
        let d = BlogDeploymentStatus { conditions: conditions(&observed(false), &[], &at(2)), ..Default::default() };
        assert!(!same_status(&a, &d));
    }

    #[test]
    fn merge_patch_clears_what_is_gone() {
        let previous = BlogDeploymentStatus {
            function_url: Some("https://f".into()),
            resources: crate::crd::ResourceIds {
                table_arn: Some("arn:t".into()),
                api_id: Some("a1".into()),
                ..Default::default()
            },
            allocation: Some(crate::crd::AllocationStatus {
                function_memory_mib: Some(512),
                notes: vec!["function: no Duration metrics in the window".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let next = BlogDeploymentStatus {
            resources: crate::crd::ResourceIds { table_arn: Some("arn:t".into()), ..Default::default() },
            allocation: Some(crate::crd::AllocationStatus { container_tasks: Some(2), ..Default::default() }),
            ..Default::default()
        };
        let patch = merge_patch(&previous, &next);
        assert_eq!(patch["functionUrl"], serde_json::Value::Null);
        assert_eq!(patch["resources"]["tableArn"], "arn:t");
        assert!(patch["resources"].get("apiId").is_some_and(serde_json::Value::is_null));
        assert!(patch["allocation"].get("functionMemoryMiB").is_some_and(serde_json::Value::is_null));
        assert!(patch["allocation"].get("notes").is_some_and(serde_json::Value::is_null));
        assert_eq!(patch["allocation"]["containerTasks"], 2);
        // Applied to the stored status, the patch gives exactly `next`.
        let mut stored = serde_json::to_value(&previous).expect("json");
        json_patch_merge(&mut stored, &patch);
        assert_eq!(stored, serde_json::to_value(&next).expect("json"));
    }

    /// RFC 7386, as the API server applies a merge patch.
    fn json_patch_merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        let serde_json::Value::Object(fields) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = serde_json::json!({});
        }
        let object = target.as_object_mut().expect("object");
        for (key, value) in fields {
            if value.is_null() {
                object.remove(key);
            } else {
                json_patch_merge(object.entry(key.clone()).or_insert(serde_json::Value::Null), value);
            }
        }
    }

    #[test]
    fn events_mark_readiness_updates_and_failures() {
        let status = |ready: bool, generation: i64| BlogDeploymentStatus {
            observed_generation: Some(generation),
            conditions: conditions(&Observed { generation: Some(generation), ..observed(ready) }, &[], &at(1)),
            ..Default::default()
        };
        let empty = BlogDeploymentStatus::default();
        assert_eq!(transition_event(&empty, &status(false, 1)).map(|e| (e.0, e.1)), Some((false, "Creating".into())));
        assert_eq!(transition_event(&status(false, 1), &status(true, 1)).map(|e| e.1), Some("Reconciled".into()));
        assert_eq!(transition_event(&status(true, 1), &status(true, 1)), None, "nothing new, no event");
        let updated = transition_event(&status(true, 1), &status(true, 2)).expect("an event");
        assert_eq!((updated.0, updated.1.as_str()), (false, "Updated"));
        let invalid = BlogDeploymentStatus {
            conditions: conditions(&invalid_spec(Some(3), "bad"), &[], &at(1)),
            ..Default::default()
        };
        assert_eq!(
            transition_event(&status(true, 2), &invalid).map(|e| (e.0, e.1)),
            Some((true, "InvalidSpec".into()))
        );
    }

    #[test]
    fn invalid_spec_says_why_everywhere() {
        let all = conditions(&invalid_spec(Some(4), "spec.image is empty"), &[], &at(1));
        assert!(all.iter().all(|c| c.status == "False" && c.reason == "InvalidSpec"));
        assert_eq!(all[0].message, "spec.image is empty");
    }
}
