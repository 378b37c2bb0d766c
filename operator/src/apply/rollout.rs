//! The container's release against ECS: an in-flight service deployment is answered at its
//! PAUSE hooks (never updated), an ended one is recorded, a rolled-back revision is held until
//! the spec changes, and a new revision's rollout is recorded as it starts.

use super::Stack;
use crate::cloud::{self, CloudResult};
use blog_core::rollout::container::{self as rollout, Gate};
use blog_core::rollout::function::{Command, Move, ROLLED_BACK, Release};

/// The task definitions a desired one may already be: the service's, a rolled-back one (held
/// while the spec is unchanged) and the one the last apply recorded (registered while a
/// deployment ran), so no new revision is registered for any of them.
#[must_use]
pub fn known_revisions(
    existing: Option<&cloud::ecs::ServiceObserved>,
    release: Option<&Release>,
    recorded: Option<&str>,
) -> Vec<String> {
    let current = existing.map(|s| s.task_definition.clone());
    let record = release.and_then(|r| r.record.as_ref()).filter(|r| r.phase == ROLLED_BACK);
    let held = record.and_then(|r| r.canary.clone()).zip(current.as_deref()).map(|(canary, current)| {
        // The record keeps `family:revision`; the ARN shares the service's prefix.
        let prefix = current.split_once("task-definition/").map_or("", |(prefix, _)| prefix);
        format!("{prefix}task-definition/{canary}")
    });
    let recorded = recorded.filter(|r| Some(*r) != current.as_deref()).map(str::to_owned);
    current.into_iter().chain(held).chain(recorded).collect()
}

/// Answers the service's deployment while one runs, records one that ended; returns whether the
/// service must be left as it is (a deployment runs, or the wanted revision was rolled back).
///
/// # Errors
/// The AWS failure.
pub async fn gate(
    stack: &mut Stack<'_>,
    release: &Release,
    service: &cloud::ecs::ServiceObserved,
    wanted: &str,
) -> CloudResult<bool> {
    let names = &stack.desired.names;
    let latest = cloud::ecs::latest_deployment(stack.clients, &names.cluster, &names.service).await?;
    let wanted = rollout::revision_of(wanted);
    let Some(deployment) = latest else { return Ok(held(stack, release, wanted)) };
    if deployment.in_flight() {
        let gate = if rollout::revision_of(&service.task_definition) == wanted {
            rollout::gate(&deployment, release)
        } else {
            rollout::superseded(&deployment, release)
        };
        if let Some(answer) = &gate.answer {
            cloud::ecs::answer(stack.clients, &deployment.arn, answer).await?;
        }
        // A promote answers a hook: between two (ECS shifting or baking) it waits for the next.
        stack.container_command_waits = release.command == Some(Command::Promote) && gate.answer.is_none();
        stack.container_rollout = Some(moved(gate));
        return Ok(true);
    }
    if let Some((record, event)) = release.record.as_ref().and_then(|r| rollout::finished(&deployment, r)) {
        let held = rollout::held(Some(&record), wanted);
        stack.container_rollout = Some(Move { route: None, record: Some(record), event: Some(event) });
        return Ok(held);
    }
    if release.record.as_ref().is_some_and(|r| r.phase == ROLLED_BACK && r.stable.as_deref() == Some(wanted)) {
        // The spec went back to the stable revision: the rollback is no longer news.
        stack.container_rollout = Some(Move { route: None, record: None, event: None });
        return Ok(false);
    }
    Ok(held(stack, release, wanted))
}

/// Whether the wanted revision is the one rolled back; if so its record stays on the condition.
fn held(stack: &mut Stack<'_>, release: &Release, wanted: &str) -> bool {
    let held = rollout::held(release.record.as_ref(), wanted);
    if held {
        stack.container_rollout = Some(Move { route: None, record: release.record.clone(), event: None });
    }
    held
}

/// Records the rollout the service update from `stable` to `canary` just started.
pub fn started(stack: &mut Stack<'_>, release: &Release, stable: &str, canary: &str) {
    let targets = stack.production_rule.as_ref().and_then(|rule| rollout::targets(&rule.weights));
    let (stable, canary) = (rollout::revision_of(stable), rollout::revision_of(canary));
    let (record, event) = rollout::started(stable, canary, targets, release);
    stack.container_rollout = Some(Move { route: None, record: Some(record), event: Some(event) });
}

fn moved(gate: Gate) -> Move {
    Move { route: None, record: gate.record, event: gate.event }
}
