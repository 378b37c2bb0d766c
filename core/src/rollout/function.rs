//! The function's rollout, decided: where the alias `live` points next (its version and the
//! new version's weight), from what it points at now, the new configuration's version, the
//! rollout recorded in status, the latest verdict and a person's command.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::policy::Policy;
use super::types::{RolloutCheck, Strategy, VariantRollout};
use super::verdict;

pub const PROGRESSING: &str = "Progressing";
/// Every reader on the new version, still judged; the stable one is kept for a rollback.
pub const BAKING: &str = "Baking";
pub const PAUSED: &str = "Paused";
pub const SUCCEEDED: &str = "Succeeded";
pub const ROLLED_BACK: &str = "RolledBack";

/// The Event of a rollout's first step.
pub(super) const STARTED: &str = "RolloutStarted";

/// The alias as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub version: String,
    /// The configuration digest of `version` (the alias's description).
    pub revision: String,
    /// The second version and its weight in %, while one is set.
    pub canary: Option<(String, i32)>,
}

/// A published version and its configuration digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub number: String,
    pub revision: String,
}

/// What a person asked for through the rollout annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Promote,
    Abort,
}

/// The annotation that promotes (`promote`), aborts (`abort`) or holds (`pause`) a rollout
/// without a spec edit. The operator clears `promote` and `abort` once it acted on them.
pub const ANNOTATION: &str = "blogs.serverless.dev/rollout";

/// What the annotation's value asks: a command, and whether the rollout is held.
#[must_use]
pub fn annotation(value: Option<&str>) -> (Option<Command>, bool) {
    match value.map(str::trim) {
        Some("promote") => (Some(Command::Promote), false),
        Some("abort") => (Some(Command::Abort), false),
        Some("pause") => (None, true),
        _ => (None, false),
    }
}

/// The function's release as the build decides it: the policy and every fact the alias's next
/// move depends on but the alias itself and the role check.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub policy: Policy,
    pub record: Option<VariantRollout>,
    pub check: Option<RolloutCheck>,
    pub command: Option<Command>,
    pub paused: bool,
    pub now: Time,
}

impl Release {
    /// Every reader moves at once, nothing recorded: a placement region, or no rollout.
    #[must_use]
    pub fn at_once(now: Time) -> Self {
        Self { policy: Policy::all_at_once(), record: None, check: None, command: None, paused: false, now }
    }

    /// The facts of the next move, given whether both versions share one role.
    #[must_use]
    pub fn facts(&self, same_role: bool) -> Facts<'_> {
        Facts {
            policy: &self.policy,
            record: self.record.as_ref(),
            check: self.check.as_ref(),
            command: self.command,
            paused: self.paused,
            same_role,
            now: &self.now,
        }
    }
}

/// Everything but the alias and the new version that the next move depends on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub policy: &'a Policy,
    /// The rollout the last status recorded.
    pub record: Option<&'a VariantRollout>,
    /// A verdict made in this reconcile, if one was due.
    pub check: Option<&'a RolloutCheck>,
    pub command: Option<Command>,
    /// The rollout annotation says `pause`.
    pub paused: bool,
    /// Both versions run under one execution role: Lambda weights no others.
    pub same_role: bool,
    pub now: &'a Time,
}

/// Where the alias should point: `primary` with its digest, and the new version's weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub primary: Version,
    pub canary: Option<(String, i32)>,
}

/// An Event to record: a warning or not, its reason and note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// The next move: the alias's new route (none: leave it), the rollout to record, an Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub route: Option<Route>,
    pub record: Option<VariantRollout>,
    pub event: Option<Event>,
}

/// The version of configuration `revision` when the alias or the record already names it, so a
/// settled reconcile publishes nothing.
#[must_use]
pub fn known_version(alias: Option<&Alias>, record: Option<&VariantRollout>, revision: &str) -> Option<String> {
    let alias = alias?;
    if alias.revision == revision {
        return Some(alias.version.clone());
    }
    let record = record.filter(|r| r.canary_revision.as_deref() == Some(revision))?;
    let routed = alias.canary.as_ref().map(|(v, _)| v) == record.canary.as_ref();
    (routed || record.phase == ROLLED_BACK).then(|| record.canary.clone()).flatten()
}

/// The next move of the alias toward `target`.
#[must_use]
pub fn next(alias: Option<&Alias>, target: &Version, facts: &Facts<'_>) -> Move {
    let Some(alias) = alias else { return all_at_once(target, None) };
    let record = facts.record.filter(|r| r.canary_revision.as_deref() == Some(target.revision.as_str()));
    if let Some(rolled_back) = record.filter(|r| r.phase == ROLLED_BACK) {
        return hold_back(alias, rolled_back);
    }
    if alias.revision == target.revision && alias.canary.is_none() {
        // Settled: the record of this configuration's rollout stays; one of another (a
        // rolled-back version the spec moved away from) goes.
        return match record.filter(|r| r.phase == BAKING) {
            Some(baking) => bake(target, baking, facts),
            None => Move { route: None, record: record.cloned(), event: None },
        };
    }
    if !facts.policy.is_progressive() {
        return all_at_once(target, None);
    }
    if !facts.same_role {
        let why = "the new version runs under another execution role, and Lambda weights only versions of one role";
        return all_at_once(target, Some(why));
    }
    match (&alias.canary, record) {
        (Some((canary, _)), Some(record)) if *canary == target.number => progress(target, record, facts),
        (Some((canary, weight)), None) if *canary == target.number => {
            // The status (and the Event) of this step were lost: picked up from the alias, the
            // step restarted, and said again.
            let step = facts.policy.weights.iter().position(|w| w == weight).unwrap_or(0);
            let record = fresh(alias, target, facts, step);
            let moved = progress(target, &record, facts);
            let resumed = normal("RolloutResumed", format!("{} (picked up from the alias)", record.message));
            Move { event: moved.event.or(Some(resumed)), ..moved }
        }
        _ => start(alias, target, facts),
    }
}

/// Whether `moved` puts a new version before readers for the first time: the moment a
/// pre-traffic check must pass.
#[must_use]
pub fn reaches_readers(moved: &Move) -> bool {
    moved.event.as_ref().is_some_and(|e| e.reason == STARTED)
}

/// `moved` (a start) turned down because the new version failed its pre-traffic check: the alias
/// stays on the stable version, and the configuration is held as rolled back.
#[must_use]
pub fn refused_before_traffic(moved: Move, why: &str) -> Move {
    let Some(mut record) = moved.record else { return moved };
    record.phase = ROLLED_BACK.to_owned();
    record.weight = 0;
    let version = record.canary.clone().unwrap_or_default();
    record.message = format!("version {version} rolled back before any reader reached it: {why}");
    let event = Event { warning: true, reason: "RolledBack", note: record.message.clone() };
    Move { route: None, record: Some(record), event: Some(event) }
}

/// A rolled-back configuration stays off until the spec changes: finish the rollback if the
/// alias still routes to it (the answer of that `UpdateAlias` was lost).
fn hold_back(alias: &Alias, record: &VariantRollout) -> Move {
    let stable = stable_of(record);
    let off = alias.version == stable.number && alias.canary.is_none();
    let route = (!off).then_some(Route { primary: stable, canary: None });
    Move { route, record: Some(record.clone()), event: None }
}

fn all_at_once(target: &Version, fallback: Option<&str>) -> Move {
    let route = Some(Route { primary: target.clone(), canary: None });
    let record = fallback.map(|why| VariantRollout {
        phase: SUCCEEDED.to_owned(),
        strategy: Strategy::AllAtOnce,
        canary: Some(target.number.clone()),
        canary_revision: Some(target.revision.clone()),
        weight: 100,
        message: format!("all at once: {why}"),
        ..VariantRollout::default()
    });
    let event =
        fallback.map(|why| Event { warning: true, reason: "RolloutFallback", note: format!("all at once: {why}") });
    Move { route, record, event }
}

/// The first step: the stable version keeps most readers, the new one gets the first weight.
fn start(alias: &Alias, target: &Version, facts: &Facts<'_>) -> Move {
    if facts.command == Some(Command::Promote) {
        return promoted(target, &fresh(alias, target, facts, 0), facts, true);
    }
    let record = fresh(alias, target, facts, 0);
    let note = record.message.clone();
    let route = Route { primary: stable_of(&record), canary: Some((target.number.clone(), record.weight)) };
    Move { route: Some(route), record: Some(record), event: Some(normal(STARTED, note)) }
}

/// The record of a rollout at `step` (0-based) starting now, the alias's version as stable.
fn fresh(alias: &Alias, target: &Version, facts: &Facts<'_>, step: usize) -> VariantRollout {
    let weights = &facts.policy.weights;
    let mut record = VariantRollout {
        phase: PROGRESSING.to_owned(),
        strategy: facts.policy.strategy,
        stable: Some(alias.version.clone()),
        canary: Some(target.number.clone()),
        stable_revision: Some(alias.revision.clone()),
        canary_revision: Some(target.revision.clone()),
        weight: weights.get(step).copied().unwrap_or(100),
        step: i32::try_from(step + 1).unwrap_or(1),
        steps: i32::try_from(weights.len()).unwrap_or(1),
        step_started: Some(facts.now.clone()),
        failures: 0,
        last_check: None,
        message: String::new(),
        ..VariantRollout::default()
    };
    record.message = waiting(&record);
    record
}

/// A step under way: a command, the verdict, a pause, then the clock.
fn progress(target: &Version, record: &VariantRollout, facts: &Facts<'_>) -> Move {
    match facts.command {
        Some(Command::Abort) => return rolled_back(record, "aborted by annotation".to_owned()),
        Some(Command::Promote) => return promoted(target, record, facts, true),
        None => {}
    }
    let mut record = judged(record, facts);
    if let Some(why) = failed(&record, facts) {
        return rolled_back(&record, why);
    }
    if facts.paused {
        let event = (record.phase != PAUSED).then(|| normal("RolloutPaused", format!("held at {} %", record.weight)));
        record.phase = PAUSED.to_owned();
        record.message = format!("paused by annotation at {} % (step {}/{})", record.weight, record.step, record.steps);
        return Move { route: None, record: Some(record), event };
    }
    if record.phase == PAUSED {
        // Resumed: the step bakes again in full.
        record.phase = PROGRESSING.to_owned();
        record.step_started = Some(facts.now.clone());
    }
    if !step_done(&record, facts.policy.step_bake, facts) {
        record.message = waiting(&record);
        return Move { route: None, record: Some(record), event: None };
    }
    let next = usize::try_from(record.step).unwrap_or(usize::MAX);
    match facts.policy.weights.get(next) {
        Some(weight) => {
            record.weight = *weight;
            record.step += 1;
            record.step_started = Some(facts.now.clone());
            record.message = waiting(&record);
            let note = format!("version {} at {weight} % (step {}/{})", target.number, record.step, record.steps);
            let route = Route { primary: stable_of(&record), canary: Some((target.number.clone(), *weight)) };
            Move { route: Some(route), record: Some(record), event: Some(normal("RolloutStep", note)) }
        }
        None => promoted(target, &record, facts, false),
    }
}

/// Every reader on the new version: baking first when the policy asks for a final bake (not
/// when a person promoted it).
fn promoted(target: &Version, record: &VariantRollout, facts: &Facts<'_>, by_annotation: bool) -> Move {
    let route = Some(Route { primary: target.clone(), canary: None });
    if by_annotation || facts.policy.final_bake.is_zero() {
        let why = if by_annotation { "promoted by annotation" } else { "every step passed" };
        return Move { route, ..succeeded(target, record, why) };
    }
    let mut record = record.clone();
    record.phase = BAKING.to_owned();
    record.weight = 100;
    record.step = record.steps + 1;
    record.step_started = Some(facts.now.clone());
    record.message = baking(target, &record);
    let event = normal("RolloutBaking", record.message.clone());
    Move { route, record: Some(record), event: Some(event) }
}

fn baking(target: &Version, record: &VariantRollout) -> String {
    let stable = record.stable.as_deref().unwrap_or("?");
    format!("version {} serves every reader; baking before version {stable} is let go", target.number)
}

/// The final bake: the new version alone, still judged.
fn bake(target: &Version, record: &VariantRollout, facts: &Facts<'_>) -> Move {
    match facts.command {
        Some(Command::Abort) => return rolled_back(record, "aborted by annotation".to_owned()),
        Some(Command::Promote) => return succeeded(target, record, "promoted by annotation"),
        None => {}
    }
    let mut record = judged(record, facts);
    if let Some(why) = failed(&record, facts) {
        return rolled_back(&record, why);
    }
    if elapsed(&record, facts.now) >= facts.policy.final_bake {
        return succeeded(target, &record, "the final bake passed");
    }
    record.message = baking(target, &record);
    Move { route: None, record: Some(record), event: None }
}

fn succeeded(target: &Version, record: &VariantRollout, why: &str) -> Move {
    let mut record = record.clone();
    record.phase = SUCCEEDED.to_owned();
    record.weight = 100;
    record.message = format!("version {} serves every reader: {why}", target.number);
    Move { route: None, record: Some(record.clone()), event: Some(normal("RolloutSucceeded", record.message)) }
}

/// Every reader back on the stable version.
fn rolled_back(record: &VariantRollout, why: String) -> Move {
    let stable = stable_of(record);
    let mut record = record.clone();
    record.phase = ROLLED_BACK.to_owned();
    record.weight = 0;
    record.message =
        format!("version {} rolled back to {}: {why}", record.canary.as_deref().unwrap_or("?"), stable.number);
    let event = Event { warning: true, reason: "RolledBack", note: record.message.clone() };
    Move { route: Some(Route { primary: stable, canary: None }), record: Some(record), event: Some(event) }
}

/// The record with this reconcile's verdict counted.
pub(super) fn judged(record: &VariantRollout, facts: &Facts<'_>) -> VariantRollout {
    let mut record = record.clone();
    if let Some(check) = facts.check {
        record.failures = if check.verdict == verdict::FAIL { record.failures + 1 } else { 0 };
        record.last_check = Some(check.clone());
    }
    record
}

/// Why the new version must go: failed verdicts up to the limit, or no verdict for too long.
pub(super) fn failed(record: &VariantRollout, facts: &Facts<'_>) -> Option<String> {
    let judging = facts.policy.judging.as_ref()?;
    let check = record.last_check.as_ref();
    if record.failures >= judging.failure_limit {
        let check = check?;
        return Some(format!(
            "{} failed verdicts in a row; last: {} ({} requests, {} % errors, p95 {} ms)",
            record.failures,
            check.reason,
            check.requests,
            check.error_percent,
            check.p95_ms.map_or_else(|| "-".to_owned(), |p| format!("{p:.0}"))
        ));
    }
    let waiting = check.is_none_or(|c| c.verdict == verdict::INCONCLUSIVE);
    (waiting && elapsed(record, facts.now) > judging.max_step).then(|| {
        let why = check.map_or("no verdict yet", |c| c.reason.as_str());
        format!("no verdict within maxStepDuration ({why})")
    })
}

/// The step has baked long enough and, when judged, its latest verdict since it began passed.
fn step_done(record: &VariantRollout, bake: std::time::Duration, facts: &Facts<'_>) -> bool {
    if elapsed(record, facts.now) < bake {
        return false;
    }
    facts.policy.judging.is_none()
        || record.last_check.as_ref().is_some_and(|c| {
            c.verdict == verdict::PASS && c.time.as_ref().map(|t| t.0) >= record.step_started.as_ref().map(|t| t.0)
        })
}

/// How long the record's current step has run (zero before it started).
#[must_use]
pub fn elapsed(record: &VariantRollout, now: &Time) -> std::time::Duration {
    record.step_started.as_ref().map_or(std::time::Duration::ZERO, |started| between(started, now))
}

/// The whole seconds from `then` to `now` (zero when `then` is later).
#[must_use]
pub fn between(then: &Time, now: &Time) -> std::time::Duration {
    let seconds = now.0.as_second().saturating_sub(then.0.as_second());
    std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

fn waiting(record: &VariantRollout) -> String {
    format!(
        "version {} at {} % (step {}/{}), stable {}",
        record.canary.as_deref().unwrap_or("?"),
        record.weight,
        record.step,
        record.steps,
        record.stable.as_deref().unwrap_or("?")
    )
}

fn stable_of(record: &VariantRollout) -> Version {
    Version {
        number: record.stable.clone().unwrap_or_default(),
        revision: record.stable_revision.clone().unwrap_or_default(),
    }
}

pub(super) fn normal(reason: &'static str, note: String) -> Event {
    Event { warning: false, reason, note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::policy::{Judging, resolve};
    use crate::rollout::types::RolloutSpec;
    use k8s_openapi::jiff::Timestamp;
    use std::time::Duration;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + second).expect("time"))
    }

    fn linear() -> Policy {
        let spec: RolloutSpec = serde_saphyr::from_str(
            "strategy: Linear\nlinear: {stepPercent: 40, stepBake: 60s}\nanalysis: {interval: 30s, minRequests: 10, maxStepDuration: 10m}\n",
        )
        .expect("spec");
        resolve(Some(&spec), None, "spec.rollout").expect("policy")
    }

    fn facts<'a>(policy: &'a Policy, record: Option<&'a VariantRollout>, now: &'a Time) -> Facts<'a> {
        Facts { policy, record, check: None, command: None, paused: false, same_role: true, now }
    }

    fn live(version: &str, canary: Option<(&str, i32)>) -> Alias {
        Alias { version: version.into(), revision: format!("rev{version}"), canary: canary.map(|(v, w)| (v.into(), w)) }
    }

    fn v(number: &str) -> Version {
        Version { number: number.into(), revision: format!("rev{number}") }
    }

    fn check(verdict: &str, now: &Time) -> RolloutCheck {
        RolloutCheck {
            time: Some(now.clone()),
            verdict: verdict.into(),
            requests: 50.0,
            reason: verdict.into(),
            ..RolloutCheck::default()
        }
    }

    #[test]
    fn the_first_version_and_an_all_at_once_policy_move_every_reader() {
        let (policy, now) = (linear(), at(0));
        let first = next(None, &v("1"), &facts(&policy, None, &now));
        assert_eq!(first.route, Some(Route { primary: v("1"), canary: None }));
        let plain = Policy::all_at_once();
        let moved = next(Some(&live("1", None)), &v("2"), &facts(&plain, None, &now));
        assert_eq!((moved.route, moved.record), (Some(Route { primary: v("2"), canary: None }), None));
    }

    #[test]
    fn a_new_version_starts_at_the_first_weight_beside_the_stable_one() {
        let (policy, now) = (linear(), at(0));
        let moved = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &now));
        assert_eq!(moved.route, Some(Route { primary: v("1"), canary: Some(("2".into(), 40)) }));
        let record = moved.record.expect("record");
        assert_eq!((record.phase.as_str(), record.step, record.steps, record.weight), (PROGRESSING, 1, 2, 40));
        // Never empty: the status patch would write it as null, which the API server refuses.
        assert_eq!(record.message, "version 2 at 40 % (step 1/2), stable 1");
        assert_eq!(moved.event.map(|e| e.reason), Some("RolloutStarted"));
    }

    #[test]
    fn a_step_advances_only_once_baked_and_passed_then_promotes() {
        let policy = linear();
        let started = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &at(0))).record.expect("record");
        let alias = live("1", Some(("2", 40)));
        // Baked but not yet judged: held.
        let held = next(Some(&alias), &v("2"), &facts(&policy, Some(&started), &at(61)));
        assert_eq!(held.route, None);
        // Judged Pass but not baked: held, the verdict recorded.
        let (now, pass) = (at(30), check(verdict::PASS, &at(30)));
        let early = next(Some(&alias), &v("2"), &Facts { check: Some(&pass), ..facts(&policy, Some(&started), &now) });
        assert_eq!(early.route, None);
        let judged = early.record.expect("record");
        // Baked with a Pass since the step began: the next weight.
        let step = next(Some(&alias), &v("2"), &facts(&policy, Some(&judged), &at(61)));
        assert_eq!(step.route, Some(Route { primary: v("1"), canary: Some(("2".into(), 80)) }));
        let stepped = step.record.expect("record");
        assert_eq!((stepped.step, stepped.weight), (2, 80));
        // The last step's Pass and bake promote it.
        let (now, pass) = (at(100), check(verdict::PASS, &at(100)));
        let alias = live("1", Some(("2", 80)));
        let last = next(Some(&alias), &v("2"), &Facts { check: Some(&pass), ..facts(&policy, Some(&stepped), &now) });
        let last = last.record.expect("record");
        let done = next(Some(&alias), &v("2"), &facts(&policy, Some(&last), &at(125)));
        assert_eq!(done.route, Some(Route { primary: v("2"), canary: None }));
        assert_eq!(done.record.map(|r| r.phase), Some(SUCCEEDED.to_owned()));
    }

    #[test]
    fn failed_verdicts_up_to_the_limit_roll_back_and_the_version_stays_off() {
        let policy = linear();
        let started = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &at(0))).record.expect("record");
        let alias = live("1", Some(("2", 40)));
        let fail = check(verdict::FAIL, &at(30));
        let once =
            next(Some(&alias), &v("2"), &Facts { check: Some(&fail), ..facts(&policy, Some(&started), &at(30)) });
        assert_eq!(once.route, None, "one failure of two allowed");
        let once = once.record.expect("record");
        let fail = check(verdict::FAIL, &at(60));
        let twice = next(Some(&alias), &v("2"), &Facts { check: Some(&fail), ..facts(&policy, Some(&once), &at(60)) });
        assert_eq!(twice.route, Some(Route { primary: v("1"), canary: None }));
        let event = twice.event.expect("event");
        assert!(event.warning && event.reason == "RolledBack" && event.note.contains("2 failed verdicts"), "{event:?}");
        let record = twice.record.expect("record");
        // The same configuration is not tried again, and no version is published for it.
        assert_eq!(known_version(Some(&live("1", None)), Some(&record), "rev2"), Some("2".into()));
        let held = next(Some(&live("1", None)), &v("2"), &facts(&policy, Some(&record), &at(90)));
        assert_eq!((held.route, held.event), (None, None));
        // A rollback whose answer was lost is finished.
        let lost = next(Some(&alias), &v("2"), &facts(&policy, Some(&record), &at(90)));
        assert_eq!(lost.route, Some(Route { primary: v("1"), canary: None }));
        // The spec back on version 1's configuration: settled, the rollback no longer reported.
        let reverted = next(Some(&live("1", None)), &v("1"), &facts(&policy, Some(&record), &at(95)));
        assert_eq!(reverted, Move { route: None, record: None, event: None });
    }

    #[test]
    fn no_verdict_within_the_longest_step_rolls_back() {
        let policy = linear();
        let started = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &at(0))).record.expect("record");
        let alias = live("1", Some(("2", 40)));
        let thin = check(verdict::INCONCLUSIVE, &at(601));
        let moved =
            next(Some(&alias), &v("2"), &Facts { check: Some(&thin), ..facts(&policy, Some(&started), &at(601)) });
        assert_eq!(moved.route, Some(Route { primary: v("1"), canary: None }));
        assert!(moved.record.expect("record").message.contains("no verdict within maxStepDuration"));
    }

    #[test]
    fn a_new_spec_mid_rollout_starts_over_from_the_stable_version() {
        let policy = linear();
        let started = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &at(0))).record.expect("record");
        let moved = next(Some(&live("1", Some(("2", 40)))), &v("3"), &facts(&policy, Some(&started), &at(10)));
        assert_eq!(moved.route, Some(Route { primary: v("1"), canary: Some(("3".into(), 40)) }));
        assert_eq!(moved.record.map(|r| (r.canary, r.step)), Some((Some("3".into()), 1)));
    }

    #[test]
    fn annotations_promote_abort_and_pause() {
        let policy = linear();
        let started = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &at(0))).record.expect("record");
        let alias = live("1", Some(("2", 40)));
        let five = at(5);
        let base = facts(&policy, Some(&started), &five);
        let promote = next(Some(&alias), &v("2"), &Facts { command: Some(Command::Promote), ..base });
        assert_eq!(promote.route, Some(Route { primary: v("2"), canary: None }));
        let abort = next(Some(&alias), &v("2"), &Facts { command: Some(Command::Abort), ..base });
        assert_eq!(abort.route, Some(Route { primary: v("1"), canary: None }));
        assert_eq!(abort.record.map(|r| r.phase), Some(ROLLED_BACK.to_owned()));
        let paused = next(Some(&alias), &v("2"), &Facts { paused: true, ..facts(&policy, Some(&started), &at(500)) });
        assert_eq!(paused.route, None, "a paused rollout holds past its bake");
        let paused = paused.record.expect("record");
        assert_eq!(paused.phase, PAUSED);
        let resumed = next(Some(&alias), &v("2"), &facts(&policy, Some(&paused), &at(510)));
        assert_eq!((resumed.route, resumed.record.map(|r| r.phase)), (None, Some(PROGRESSING.to_owned())));
    }

    #[test]
    fn a_final_bake_keeps_judging_and_can_still_roll_back() {
        let mut policy = linear();
        policy.final_bake = Duration::from_secs(120);
        policy.weights = vec![40];
        let started = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &at(0))).record.expect("record");
        let pass = check(verdict::PASS, &at(61));
        let alias = live("1", Some(("2", 40)));
        let baking =
            next(Some(&alias), &v("2"), &Facts { check: Some(&pass), ..facts(&policy, Some(&started), &at(61)) });
        assert_eq!(baking.route, Some(Route { primary: v("2"), canary: None }));
        let baking = baking.record.expect("record");
        assert_eq!(baking.phase, BAKING);
        let promoted = live("2", None);
        let fail = check(verdict::FAIL, &at(70));
        let judging = Judging { failure_limit: 1, ..policy.judging.clone().expect("judging") };
        let strict = Policy { judging: Some(judging), ..policy.clone() };
        let back =
            next(Some(&promoted), &v("2"), &Facts { check: Some(&fail), ..facts(&strict, Some(&baking), &at(70)) });
        assert_eq!(back.route, Some(Route { primary: v("1"), canary: None }));
        let done = next(Some(&promoted), &v("2"), &facts(&policy, Some(&baking), &at(190)));
        assert_eq!((done.route, done.record.map(|r| r.phase)), (None, Some(SUCCEEDED.to_owned())));
    }

    #[test]
    fn another_role_or_a_lost_status_are_handled() {
        let policy = linear();
        let other = next(Some(&live("1", None)), &v("2"), &Facts { same_role: false, ..facts(&policy, None, &at(0)) });
        assert_eq!(other.route, Some(Route { primary: v("2"), canary: None }));
        assert!(other.record.expect("record").message.contains("execution role"));
        // The alias routes 80 % to version 2 and the status says nothing: picked up at step 2.
        let resumed = next(Some(&live("1", Some(("2", 80)))), &v("2"), &facts(&policy, None, &at(0)));
        assert_eq!(resumed.route, None);
        let event = resumed.event.clone().expect("the lost Event said again");
        assert_eq!(
            (event.reason, event.note.as_str()),
            ("RolloutResumed", "version 2 at 80 % (step 2/2), stable 1 (picked up from the alias)")
        );
        assert!(!reaches_readers(&resumed), "readers reached it already: no pre-traffic check");
        assert_eq!(resumed.record.map(|r| (r.step, r.weight)), Some((2, 80)));
    }

    #[test]
    fn a_start_refused_before_traffic_leaves_the_alias_and_holds_the_version() {
        let policy = linear();
        let start = next(Some(&live("1", None)), &v("2"), &facts(&policy, None, &at(0)));
        assert!(reaches_readers(&start));
        let refused = refused_before_traffic(start, "GET /readyz answered 503");
        assert_eq!(refused.route, None, "no reader reaches version 2");
        let record = refused.record.expect("record");
        assert_eq!(record.phase, ROLLED_BACK);
        assert!(record.message.ends_with("before any reader reached it: GET /readyz answered 503"));
        let held = next(Some(&live("1", None)), &v("2"), &facts(&policy, Some(&record), &at(5)));
        assert!(!reaches_readers(&held) && held.route.is_none());
    }

    #[test]
    fn a_settled_alias_makes_no_move() {
        let policy = linear();
        let moved = next(Some(&live("2", None)), &v("2"), &facts(&policy, None, &at(0)));
        assert_eq!(moved, Move { route: None, record: None, event: None });
        assert_eq!(known_version(Some(&live("2", None)), None, "rev2"), Some("2".into()));
        assert_eq!(known_version(Some(&live("2", None)), None, "rev3"), None);
    }
}
