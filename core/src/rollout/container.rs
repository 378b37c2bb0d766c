//! The container's rollout, decided. ECS runs it: its `CANARY`, `LINEAR` or `BLUE_GREEN`
//! strategy starts the new revision's tasks in the second target group and shifts the production
//! listener rule's weights to it, stopping at a PAUSE hook before every shift. The operator is
//! the analysis: at each hook it answers continue or roll back from the new tasks' own metrics,
//! and it rolls back a deployment whose verdicts fail between hooks.

use std::time::Duration;

use super::function::{
    BAKING, Command, Event, PAUSED, PROGRESSING, ROLLED_BACK, Release, STARTED, SUCCEEDED, failed, judged, normal,
};
use super::policy::Policy;
use super::types::{Strategy, VariantRollout};
use super::verdict;

/// ECS's deployment configuration for a rollout policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EcsStrategy {
    /// `CANARY`, `LINEAR` or `BLUE_GREEN`.
    pub name: &'static str,
    /// The canary's share or the linear step, in %.
    pub percent: f64,
    /// ECS's bake after each step (`canaryBakeTimeInMinutes`, `stepBakeTimeInMinutes`).
    pub step_bake_minutes: i32,
    /// ECS's bake with every reader on the new revision (`bakeTimeInMinutes`).
    pub bake_minutes: i32,
}

/// ECS's configuration for `policy`; `None` for all at once (ECS's rolling deployment).
#[must_use]
pub fn ecs_strategy(policy: &Policy) -> Option<EcsStrategy> {
    let name = match policy.strategy {
        Strategy::AllAtOnce => return None,
        Strategy::Canary => "CANARY",
        Strategy::Linear => "LINEAR",
        Strategy::BlueGreen => "BLUE_GREEN",
    };
    let percent = policy.weights.first().map_or(100.0, |w| f64::from(*w));
    Some(EcsStrategy {
        name,
        percent,
        step_bake_minutes: minutes(policy.step_bake),
        bake_minutes: minutes(policy.final_bake),
    })
}

/// ECS counts bakes in whole minutes, at most a day: a bake is never cut short.
fn minutes(bake: Duration) -> i32 {
    i32::try_from(bake.as_secs().div_ceil(60)).unwrap_or(1440).min(1440)
}

/// The production weights ECS moves the new revision through: the policy's steps, then all.
#[must_use]
pub fn weights(policy: &Policy) -> Vec<i32> {
    policy.weights.iter().copied().chain([100]).collect()
}

/// An ECS service deployment as `DescribeServiceDeployments` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL`, ...
    pub status: String,
    /// Its lifecycle stage (`PRE_PRODUCTION_TRAFFIC_SHIFT`, `BAKE_TIME`, ...).
    pub stage: String,
    /// The PAUSE hook waiting for an answer.
    pub awaiting: Option<String>,
    /// The new revision's share of production traffic, in %.
    pub weight: i32,
    /// Why ECS ended it, when it says.
    pub reason: String,
}

impl Deployment {
    /// ECS is still moving it (forward or back): the service must not be updated meanwhile.
    #[must_use]
    pub fn in_flight(&self) -> bool {
        matches!(
            self.status.as_str(),
            "PENDING" | "IN_PROGRESS" | "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "STOP_REQUESTED"
        )
    }

    fn rolling_back(&self) -> bool {
        self.status.starts_with("ROLLBACK") || self.status.starts_with("STOP")
    }
}

/// The operator's answer to a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `ContinueServiceDeployment(hook, CONTINUE)`: on to the next shift.
    Continue(String),
    /// Back to the stable revision: `ContinueServiceDeployment(hook, ROLLBACK)` at a hook, else
    /// `StopServiceDeployment(ROLLBACK)`.
    Rollback(Option<String>),
}

/// The gate's decision: the answer to send (none: wait), the rollout to record, an Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub answer: Option<Answer>,
    pub record: Option<VariantRollout>,
    pub event: Option<Event>,
}

/// Which target group serves the stable revision and which the new one, from the production
/// rule's weights before the first shift: the new tasks join the one no reader reaches.
#[must_use]
pub fn targets(rule: &[(String, i32)]) -> Option<(String, String)> {
    let stable = rule.iter().max_by_key(|(_, w)| *w)?;
    let canary = rule.iter().find(|(arn, _)| *arn != stable.0)?;
    Some((stable.0.clone(), canary.0.clone()))
}

/// The record of a rollout that starts now: the service was just updated from `stable` to
/// `canary` (task definitions), whose tasks join `targets.1`.
#[must_use]
pub fn started(
    stable: &str,
    canary: &str,
    targets: Option<(String, String)>,
    release: &Release,
) -> (VariantRollout, Event) {
    let (stable_target, canary_target) = targets.unzip();
    let mut record = VariantRollout {
        phase: PROGRESSING.to_owned(),
        strategy: release.policy.strategy,
        stable: Some(stable.to_owned()),
        canary: Some(canary.to_owned()),
        weight: 0,
        step: 0,
        steps: i32::try_from(weights(&release.policy).len()).unwrap_or(1),
        step_started: Some(release.now.clone()),
        stable_target,
        canary_target,
        ..VariantRollout::default()
    };
    record.message = waiting(&record);
    let note = format!("revision {canary} starts beside {stable}; ECS shifts readers to it as each step passes");
    (record, normal(STARTED, note))
}

/// The answer to an in-flight deployment: a command, the verdicts, a pause, then the hook.
#[must_use]
pub fn gate(deployment: &Deployment, release: &Release) -> Gate {
    let (record, resumed) = adopted(deployment, release);
    if deployment.rolling_back() {
        return ended_by_ecs(deployment, &record);
    }
    let hook = deployment.awaiting.clone();
    if release.command == Some(Command::Abort) {
        return rolled_back(&record, "aborted by annotation", hook);
    }
    let facts = release.facts(true);
    let mut record = judged(&record, &facts);
    if let Some(why) = failed(&record, &facts) {
        return rolled_back(&record, &why, hook);
    }
    if release.paused {
        let event = (record.phase != PAUSED).then(|| normal("RolloutPaused", format!("held at {} %", record.weight)));
        record.phase = PAUSED.to_owned();
        record.message = format!(
            "paused by annotation at {} % (step {}/{}); ECS rolls back if its hook waits a day",
            record.weight, record.step, record.steps
        );
        return Gate { answer: None, record: Some(record), event };
    }
    if record.phase == PAUSED {
        record.phase = PROGRESSING.to_owned();
        record.step_started = Some(release.now.clone());
    }
    let gate = match hook {
        Some(hook) if may_continue(&record, release) => shifted(record, hook, release),
        Some(_) => waited(record, "waiting for a passing verdict before the next shift"),
        None if deployment.stage == "BAKE_TIME" && record.phase != BAKING => baking(record, release),
        None => {
            record.weight = deployment.weight;
            waited(record, "ECS is shifting or baking")
        }
    };
    Gate { event: gate.event.or(resumed), ..gate }
}

/// The record of `deployment`: the one recorded, or (when that status was lost) one picked up
/// from ECS, said again as `RolloutResumed`.
fn adopted(deployment: &Deployment, release: &Release) -> (VariantRollout, Option<Event>) {
    let ours = |r: &&VariantRollout| match r.deployment.as_deref() {
        Some(arn) => arn == deployment.arn,
        None => r.phase == PROGRESSING,
    };
    if let Some(record) = release.record.as_ref().filter(ours) {
        let mut record = record.clone();
        record.deployment = Some(deployment.arn.clone());
        return (record, None);
    }
    let steps = weights(&release.policy);
    let step = steps.iter().position(|w| *w >= deployment.weight && deployment.weight > 0).map_or(0, |i| i + 1);
    let record = VariantRollout {
        phase: PROGRESSING.to_owned(),
        strategy: release.policy.strategy,
        weight: deployment.weight,
        step: i32::try_from(step).unwrap_or(0),
        steps: i32::try_from(steps.len()).unwrap_or(1),
        step_started: Some(release.now.clone()),
        deployment: Some(deployment.arn.clone()),
        message: format!("service deployment {} picked up from ECS", deployment.arn),
        ..VariantRollout::default()
    };
    let event = normal("RolloutResumed", record.message.clone());
    (record, Some(event))
}

/// At a hook: on to the next step when the first shift (nothing to judge yet), a promote, no
/// analysis, or a passing verdict made during this step.
fn may_continue(record: &VariantRollout, release: &Release) -> bool {
    record.weight == 0
        || release.command == Some(Command::Promote)
        || release.policy.judging.is_none()
        || record.last_check.as_ref().is_some_and(|c| {
            c.verdict == verdict::PASS && c.time.as_ref().map(|t| t.0) >= record.step_started.as_ref().map(|t| t.0)
        })
}

fn shifted(mut record: VariantRollout, hook: String, release: &Release) -> Gate {
    let steps = weights(&release.policy);
    let next = usize::try_from(record.step).unwrap_or(0);
    record.weight = steps.get(next).copied().unwrap_or(100);
    record.step = i32::try_from(next + 1).unwrap_or(record.steps);
    record.step_started = Some(release.now.clone());
    record.failures = 0;
    record.message = waiting(&record);
    let revision = record.canary.as_deref().unwrap_or("the new revision");
    let note = format!("{revision} at {} % (step {}/{})", record.weight, record.step, record.steps);
    Gate { answer: Some(Answer::Continue(hook)), record: Some(record), event: Some(normal("RolloutStep", note)) }
}

fn baking(mut record: VariantRollout, release: &Release) -> Gate {
    record.phase = BAKING.to_owned();
    record.weight = 100;
    record.step = record.steps + 1;
    record.step_started = Some(release.now.clone());
    let revision = record.canary.clone().unwrap_or_default();
    record.message = format!("{revision} serves every reader; ECS bakes before the stable tasks stop");
    let event = normal("RolloutBaking", record.message.clone());
    Gate { answer: None, record: Some(record), event: Some(event) }
}

fn waited(mut record: VariantRollout, why: &str) -> Gate {
    record.message = format!("{}: {why}", waiting(&record));
    Gate { answer: None, record: Some(record), event: None }
}

/// ECS rolled the deployment back on its own (an alarm, a hook's timeout, a stop): recorded once.
fn ended_by_ecs(deployment: &Deployment, record: &VariantRollout) -> Gate {
    let why = if deployment.reason.is_empty() { deployment.status.to_lowercase() } else { deployment.reason.clone() };
    rolled_back(record, &format!("ECS: {why}"), None)
}

fn rolled_back(record: &VariantRollout, why: &str, hook: Option<String>) -> Gate {
    let mut record = record.clone();
    let event = Event {
        warning: true,
        reason: "RolledBack",
        note: format!(
            "revision {} rolled back to {}: {why}",
            record.canary.as_deref().unwrap_or("?"),
            record.stable.as_deref().unwrap_or("?")
        ),
    };
    let first = record.phase != ROLLED_BACK;
    record.phase = ROLLED_BACK.to_owned();
    record.weight = 0;
    record.message.clone_from(&event.note);
    Gate { answer: first.then_some(Answer::Rollback(hook)), record: Some(record), event: first.then_some(event) }
}

/// A new spec arrived while a deployment runs: it goes back to the stable revision first (ECS
/// takes no update meanwhile), and the new revision starts over from there.
#[must_use]
pub fn superseded(deployment: &Deployment, release: &Release) -> Gate {
    let (record, _) = adopted(deployment, release);
    if deployment.rolling_back() {
        return Gate { answer: None, record: Some(record), event: None };
    }
    rolled_back(
        &record,
        "a new spec arrived mid-rollout; it starts over from the stable revision",
        deployment.awaiting.clone(),
    )
}

/// The short name of a task definition ARN, `family:revision`, as the record keeps it.
#[must_use]
pub fn revision_of(task_definition: &str) -> &str {
    task_definition.rsplit_once("task-definition/").map_or(task_definition, |(_, tail)| tail)
}

/// The record once the deployment it follows has ended: succeeded, or rolled back by ECS.
#[must_use]
pub fn finished(latest: &Deployment, record: &VariantRollout) -> Option<(VariantRollout, Event)> {
    let rolling = [PROGRESSING, BAKING, PAUSED].contains(&record.phase.as_str());
    if !rolling || latest.in_flight() || record.deployment.as_deref().is_some_and(|arn| arn != latest.arn) {
        return None;
    }
    if latest.status == "SUCCESSFUL" {
        let mut record = record.clone();
        record.phase = SUCCEEDED.to_owned();
        record.weight = 100;
        record.message = format!("{} serves every reader", record.canary.as_deref().unwrap_or("the new revision"));
        return Some((record.clone(), normal("RolloutSucceeded", record.message)));
    }
    let gate = ended_by_ecs(latest, record);
    gate.record.zip(gate.event)
}

/// A rolled-back revision stays off until the spec changes: the service keeps the stable one.
#[must_use]
pub fn held(record: Option<&VariantRollout>, wanted: &str) -> bool {
    record.is_some_and(|r| r.phase == ROLLED_BACK && r.canary.as_deref() == Some(wanted))
}

fn waiting(record: &VariantRollout) -> String {
    format!(
        "revision {} at {} % (step {}/{}), stable {}",
        record.canary.as_deref().unwrap_or("?"),
        record.weight,
        record.step,
        record.steps,
        record.stable.as_deref().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::RolloutCheck;
    use crate::rollout::policy::resolve;
    use crate::rollout::types::RolloutSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + second).expect("time"))
    }

    fn policy(yaml: &str) -> Policy {
        let spec: RolloutSpec = serde_saphyr::from_str(yaml).expect("spec");
        resolve(Some(&spec), None, "spec.rollout").expect("policy")
    }

    fn canary() -> Policy {
        policy(
            "strategy: Canary\ncanary: {percent: 20, bake: 90s}\nfinalBake: 5m\nanalysis: {interval: 30s, minRequests: 10, maxStepDuration: 10m, failureLimit: 2}\n",
        )
    }

    fn release(record: Option<VariantRollout>, check: Option<&str>, now: i64) -> Release {
        let check = check.map(|verdict| RolloutCheck {
            time: Some(at(now)),
            verdict: verdict.into(),
            ..RolloutCheck::default()
        });
        Release { policy: canary(), record, check, command: None, paused: false, now: at(now) }
    }

    fn at_hook(weight: i32) -> Deployment {
        Deployment {
            arn: "sd/1".into(),
            status: "IN_PROGRESS".into(),
            stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
            awaiting: Some(format!("hook-{weight}")),
            weight,
            reason: String::new(),
        }
    }

    fn begun() -> VariantRollout {
        let targets = targets(&[("tg-blue".into(), 100), ("tg-green".into(), 0)]);
        started("blog:1", "blog:2", targets, &release(None, None, 0)).0
    }

    #[test]
    fn ecs_takes_the_policy_in_whole_minutes_and_all_at_once_stays_rolling() {
        let ecs = ecs_strategy(&canary()).expect("canary");
        assert_eq!((ecs.name, ecs.percent, ecs.step_bake_minutes, ecs.bake_minutes), ("CANARY", 20.0, 2, 5));
        assert_eq!(weights(&canary()), vec![20, 100]);
        let linear = policy("strategy: Linear\nlinear: {stepPercent: 30, stepBake: 0s}\n");
        assert_eq!((ecs_strategy(&linear).map(|e| e.name), weights(&linear)), (Some("LINEAR"), vec![30, 60, 90, 100]));
        let blue_green = policy("strategy: BlueGreen\n");
        assert_eq!((ecs_strategy(&blue_green).map(|e| e.percent), weights(&blue_green)), (Some(100.0), vec![100]));
        assert_eq!(ecs_strategy(&Policy::all_at_once()), None);
    }

    #[test]
    fn the_new_tasks_join_the_target_group_no_reader_reaches() {
        let rule = [("tg-a".to_owned(), 0), ("tg-b".to_owned(), 100)];
        assert_eq!(targets(&rule), Some(("tg-b".into(), "tg-a".into())));
        assert_eq!(targets(&rule[..1]), None, "one group cannot take a second revision");
    }

    #[test]
    fn the_first_hook_shifts_at_once_and_the_next_waits_for_a_passing_verdict() {
        let first = gate(&at_hook(0), &release(Some(begun()), None, 10));
        assert_eq!(first.answer, Some(Answer::Continue("hook-0".into())));
        let record = first.record.expect("record");
        assert_eq!((record.weight, record.step, record.steps, record.deployment.as_deref()), (20, 1, 2, Some("sd/1")));
        let waiting = gate(&at_hook(20), &release(Some(record.clone()), Some(verdict::INCONCLUSIVE), 40));
        assert_eq!(waiting.answer, None, "{:?}", waiting.record);
        let passed = gate(&at_hook(20), &release(Some(record), Some(verdict::PASS), 100));
        assert_eq!(passed.answer, Some(Answer::Continue("hook-20".into())));
        let record = passed.record.expect("record");
        assert_eq!((record.weight, record.step), (100, 2));
        let mut bake = at_hook(100);
        (bake.stage, bake.awaiting) = ("BAKE_TIME".into(), None);
        let baked = gate(&bake, &release(Some(record), None, 120));
        assert_eq!(baked.record.map(|r| r.phase), Some(BAKING.to_owned()));
        assert_eq!(baked.event.map(|e| e.reason), Some("RolloutBaking"));
    }

    #[test]
    fn failed_verdicts_roll_back_at_the_hook_or_between_hooks_once() {
        let mut record = gate(&at_hook(0), &release(Some(begun()), None, 10)).record.expect("record");
        record.failures = 1;
        let mut shifting = at_hook(20);
        shifting.awaiting = None;
        let back = gate(&shifting, &release(Some(record), Some(verdict::FAIL), 40));
        assert_eq!(back.answer, Some(Answer::Rollback(None)));
        let event = back.event.expect("event");
        assert!(event.warning && event.note.contains("blog:2 rolled back to blog:1"), "{}", event.note);
        let record = back.record.expect("record");
        assert!(held(Some(&record), "blog:2") && !held(Some(&record), "blog:3"));
        let mut rolling_back = shifting.clone();
        rolling_back.status = "ROLLBACK_IN_PROGRESS".into();
        let again = gate(&rolling_back, &release(Some(record.clone()), None, 50));
        assert_eq!((again.answer, again.event), (None, None), "said once");
        let mut aborted = release(Some(begun()), None, 10);
        aborted.command = Some(Command::Abort);
        assert_eq!(gate(&at_hook(0), &aborted).answer, Some(Answer::Rollback(Some("hook-0".into()))));
    }

    #[test]
    fn a_pause_holds_the_hook_and_a_promote_answers_it_without_a_verdict() {
        let record = gate(&at_hook(0), &release(Some(begun()), None, 10)).record.expect("record");
        let mut paused = release(Some(record.clone()), None, 20);
        paused.paused = true;
        let held = gate(&at_hook(20), &paused);
        assert_eq!((held.answer, held.record.map(|r| r.phase)), (None, Some(PAUSED.to_owned())));
        let mut promoted = release(Some(record), None, 20);
        promoted.command = Some(Command::Promote);
        assert_eq!(gate(&at_hook(20), &promoted).answer, Some(Answer::Continue("hook-20".into())));
    }

    #[test]
    fn a_lost_record_is_picked_up_from_ecs_and_an_ended_deployment_is_recorded() {
        let picked = gate(&at_hook(20), &release(None, None, 10));
        assert_eq!(picked.event.map(|e| e.reason), Some("RolloutResumed"));
        assert_eq!(picked.record.map(|r| (r.step, r.weight)), Some((1, 20)));
        let mut record = begun();
        record.deployment = Some("sd/1".into());
        let mut done = at_hook(100);
        (done.status, done.awaiting) = ("SUCCESSFUL".into(), None);
        let (succeeded, event) = finished(&done, &record).expect("succeeded");
        assert_eq!((succeeded.phase.as_str(), event.reason), (SUCCEEDED, "RolloutSucceeded"));
        done.status = "ROLLBACK_SUCCESSFUL".into();
        done.reason = "alarm blog-5xx in ALARM".into();
        let (back, event) = finished(&done, &record).expect("rolled back by ECS");
        assert!(back.phase == ROLLED_BACK && event.note.contains("alarm blog-5xx"), "{}", event.note);
        assert_eq!(finished(&done, &succeeded), None, "recorded once");
    }
}
