//! Conditions computed from what a reconcile observed. Pure: the caller patches the result only
//! when [`same_status`] says it changed, and a condition keeps its `lastTransitionTime` while its
//! status stays the same.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{BlogDeploymentStatus, ContainerTasks, RegionStatus};

pub const READY: &str = "Ready";
pub const TABLE_READY: &str = "TableReady";
pub const DOMAIN_READY: &str = "DomainReady";
pub const FUNCTION_READY: &str = "FunctionReady";
pub const CONTAINER_READY: &str = "ContainerReady";
/// Only with a placement: True while a region's last step failed, whatever `Ready` says of home.
pub const DEGRADED: &str = "Degraded";

/// Every condition reason the operator writes, in one place: kstatus, Flux, Argo CD, alerts and
/// people match on them.
pub mod reason {
    /// `Ready`: every enabled part is ready.
    pub const RECONCILED: &str = "Reconciled";
    pub const ACTIVE: &str = "Active";
    pub const CREATING: &str = "Creating";
    pub const AVAILABLE: &str = "Available";
    /// The container variant exists as desired; readiness mode `provisioned` (emulators).
    pub const PROVISIONED: &str = "Provisioned";
    pub const DISABLED: &str = "Disabled";
    pub const PROGRESSING: &str = "Progressing";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// `spec.region` changed after resources were made in another region.
    pub const REGION_CHANGE_REFUSED: &str = "RegionChangeRefused";
    /// The spec is outside the platform team's tenant policy.
    pub const POLICY_VIOLATION: &str = "PolicyViolation";
    /// The Secret `spec.writeToken` names, or its key, is missing.
    pub const WRITE_TOKEN_MISSING: &str = "WriteTokenMissing";
    /// STS refused the role the tenant policy maps the namespace to (trust policy, external id).
    pub const ACCOUNT_ROLE_NOT_ASSUMABLE: &str = "AccountRoleNotAssumable";
    /// A part not reconciled because an earlier step failed.
    pub const BLOCKED: &str = "Blocked";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    pub const AWS_ERROR: &str = "AwsError";
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
    pub const FUNCTION_FAILED: &str = "FunctionFailed";
    pub const PROVISIONED_CONCURRENCY_FAILED: &str = "ProvisionedConcurrencyFailed";
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    /// A new version is reaching readers step by step (`spec.rollout`).
    pub const ROLLING_OUT: &str = "RollingOut";
    /// The new version failed its verdicts (or was aborted): every reader is back on the stable
    /// one, and this configuration is not tried again until the spec changes.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// The rollout annotation holds the rollout at its step.
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// The object is paused (`blogs.serverless.dev/paused`): this part drifted from the spec, and
    /// the change that would repair it was not made.
    pub const PAUSED: &str = "Paused";
    pub const LOAD_BALANCER_FAILED: &str = "LoadBalancerFailed";
    /// The image is missing from ECR, or its manifest cannot run where the variant puts it.
    pub const IMAGE_NOT_RUNNABLE: &str = "ImageNotRunnable";
    /// `spec.table.name` names a table the operator may not take (see `desired::claim_table`).
    pub const TABLE_NOT_ADOPTABLE: &str = "TableNotAdoptable";
    /// `spec.table.name` names another table than the one in use.
    pub const TABLE_CHANGE_REFUSED: &str = "TableChangeRefused";
    /// ACM has not issued the certificate yet: DNS validation is under way.
    pub const CERTIFICATE_PENDING: &str = "CertificatePending";
    /// ACM will not issue the certificate (validation failed or timed out), or a given one is not
    /// ISSUED.
    pub const CERTIFICATE_FAILED: &str = "CertificateFailed";
    /// A name the domain needs holds a record, or an API Gateway domain, the operator did not make.
    pub const DOMAIN_CONFLICT: &str = "DomainConflict";
    /// `spec.domain.hostedZone` names no zone the operator can see, or more than one.
    pub const HOSTED_ZONE_NOT_FOUND: &str = "HostedZoneNotFound";
    /// `Degraded`: a placement region's last step failed; the message names each such region.
    pub const REGION_FAILING: &str = "RegionFailing";
    /// `Degraded` is False: every placement region's last step went through.
    pub const REGIONS_WORKING: &str = "RegionsWorking";

    /// Reasons that mean "wait, AWS is on it", not "a person must act".
    #[must_use]
    pub fn is_progress(reason: &str) -> bool {
        matches!(reason, PROGRESSING | CREATING | CERTIFICATE_PENDING | ROLLING_OUT)
    }
}

/// The parts of a deployment, each with its own condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Table,
    /// The certificate, custom domain and records of `spec.domain`.
    Domain,
    Function,
    Container,
}

impl Part {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Domain => "domain",
            Self::Function => "function",
            Self::Container => "container",
        }
    }
}

/// A step that failed in a way a person must act on: the part whose step it was, a reason from
/// [`reason`], and what AWS said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub part: Part,
    pub reason: &'static str,
    pub message: String,
}

/// What one apply observed of the other parts when a step failed: a shared part's failure (table,
/// domain) stops the plan, so the parts after it are not reached; a variant's failure skips only
/// that variant, so the other one is observed (or failed too: then it carries its own reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    pub table: Option<PartState>,
    pub domain: Option<PartState>,
    pub function: Option<PartState>,
    pub container: Option<PartState>,
}

impl Reached {
    /// What was observed of `part`.
    pub fn part_mut(&mut self, part: Part) -> &mut Option<PartState> {
        match part {
            Part::Table => &mut self.table,
            Part::Domain => &mut self.domain,
            Part::Function => &mut self.function,
            Part::Container => &mut self.container,
        }
    }
}

/// When the container variant counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerReadiness {
    /// Every desired task runs and the rollout is COMPLETED (what real AWS reaches).
    Running,
    /// The service, load balancer and listener exist as desired, whatever runs; for emulators,
    /// which never start tasks. The message still reports running/desired.
    Provisioned,
}

/// Provisioned concurrency on the function's alias, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    /// None wanted, none configured.
    Off,
    Ready(i32),
    /// Lambda is preparing the environments (minutes on AWS).
    Allocating(i32),
    Failed(String),
}

/// How one part of the deployment stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    pub domain: PartState,
    pub function: PartState,
    pub container: PartState,
    /// With a placement: whether its regions work (see [`regions_state`]), shown as `Degraded`.
    pub regions: Option<PartState>,
}

/// The placement's regions as one state: not ready (so `Degraded=True`) while any region's last
/// step failed, naming each with what failed.
#[must_use]
pub fn regions_state(regions: &[RegionStatus]) -> PartState {
    let failing: Vec<String> = regions
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| format!("{} ({}): {}", r.region, r.failure.as_deref().unwrap_or_default(), r.message))
        .collect();
    if failing.is_empty() {
        return PartState::ready(reason::REGIONS_WORKING, format!("{} regions placed", regions.len()));
    }
    PartState::not_ready(reason::REGION_FAILING, format!("failing: {}", failing.join("; ")))
}

/// A condition never carries an empty message: Kubernetes 1.20's API server reads `""` there as
/// `null` and refuses the whole status patch, so the reason stands in.
fn condition(kind: &str, state: &PartState, generation: Option<i64>, now: &Time) -> Condition {
    let message = if state.message.is_empty() { state.reason.clone() } else { state.message.clone() };
    Condition {
        type_: kind.to_owned(),
        status: if state.ready { "True" } else { "False" }.to_owned(),
        reason: state.reason.clone(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// `Ready` summarises the parts: true when all are ready; otherwise it carries the first part
/// that is not, so `kubectl get bd` and kstatus show the reason that matters.
#[must_use]
pub fn summary(observed: &Observed) -> PartState {
    let parts = [
        ("table", &observed.table),
        ("domain", &observed.domain),
        ("function", &observed.function),
        ("container", &observed.container),
    ];
    match parts.iter().find(|(_, state)| !state.ready) {
        None => PartState::ready(reason::RECONCILED, "every enabled variant is ready"),
        // A refused spec blocks every part alike: say it once, without a part name.
        Some((_, state)) if [&observed.function, &observed.container].iter().all(|s| *s == *state) => (*state).clone(),
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
        (DOMAIN_READY, &observed.domain),
        (FUNCTION_READY, &observed.function),
        (CONTAINER_READY, &observed.container),
    ]
    .into_iter()
    .map(|(kind, state)| condition(kind, state, observed.generation, now))
    .chain(observed.regions.as_ref().map(|regions| degraded(regions, observed.generation, now)))
    .map(|mut new| {
        if let Some(old) = previous.iter().find(|c| c.type_ == new.type_ && c.status == new.status) {
            new.last_transition_time = old.last_transition_time.clone();
        }
        new
    })
    .collect()
}

/// `Degraded` says the opposite of its state's readiness: True when something is wrong.
fn degraded(regions: &PartState, generation: Option<i64>, now: &Time) -> Condition {
    let mut condition = condition(DEGRADED, regions, generation, now);
    condition.status = if regions.ready { "False" } else { "True" }.to_owned();
    condition
}

/// A spec refused before any AWS call: every condition false with `reason` and `message`.
#[must_use]
pub fn refused(generation: Option<i64>, reason: &str, message: &str) -> Observed {
    let state = PartState::not_ready(reason, message);
    let (table, domain, function) = (state.clone(), state.clone(), state.clone());
    Observed { generation, table, domain, function, container: state, regions: None }
}

/// The conditions after a step failed: the failed part says why; a part finished before the
/// failure keeps what was observed of it; a part not reached says it waits on the failed one.
#[must_use]
pub fn failed(generation: Option<i64>, failure: &Failure, reached: &Reached) -> Observed {
    let failed = PartState::not_ready(failure.reason, tenant_message(&failure.message));
    let waiting = PartState::not_ready(
        reason::BLOCKED,
        format!("not reconciled: the {} step failed first (see its condition)", failure.part.name()),
    );
    let state = |part: Part, seen: Option<&PartState>| {
        if part == failure.part { failed.clone() } else { seen.cloned().unwrap_or_else(|| waiting.clone()) }
    };
    Observed {
        generation,
        table: state(Part::Table, reached.table.as_ref()),
        domain: state(Part::Domain, reached.domain.as_ref()),
        function: state(Part::Function, reached.function.as_ref()),
        container: state(Part::Container, reached.container.as_ref()),
        regions: None,
    }
}

/// An AWS error as a tenant may read it: ARNs and account ids (the operator's role, the account)
/// replaced, and EC2's encoded authorization message dropped. The full text goes to the operator's
/// log only.
#[must_use]
pub fn tenant_message(text: &str) -> String {
    let text = text.split(" Encoded authorization failure message:").next().unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("arn:aws") {
        out.push_str(&mask_accounts(&rest[..start]));
        let end = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ')' | ';'))
            .map_or(rest.len(), |e| start + e);
        out.push_str("<arn>");
        rest = &rest[end..];
    }
    out.push_str(&mask_accounts(rest));
    out
}

/// Every run of exactly 12 digits (an AWS account id) as `<account>`.
fn mask_accounts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        out.push_str(if digits.len() == 12 { "<account>" } else { digits });
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Whether every part has settled (ready, or stuck on something only a person can fix), so the
/// next look can wait for the resync; otherwise AWS is still working and the retry pace applies.
#[must_use]
pub fn settled(observed: &Observed) -> bool {
    [&observed.table, &observed.domain, &observed.function, &observed.container]
        .iter()
        .all(|s| s.ready || !reason::is_progress(&s.reason))
}

/// The table's condition from the status DynamoDB reports.
#[must_use]
pub fn table_state(name: &str, table_status: &str) -> PartState {
    if table_status == "ACTIVE" {
        PartState::ready(reason::ACTIVE, format!("table {name} is ACTIVE"))
    } else {
        PartState::not_ready(reason::CREATING, format!("table {name} is {table_status}"))
    }
}

/// The function variant's condition once `$LATEST` is Active and alias `alias` serves `version`:
/// ready unless provisioned concurrency is still being allocated or failed.
#[must_use]
pub fn function_state(endpoint: &str, alias: &str, version: &str, provisioned: &Provisioned) -> PartState {
    let serving = format!("serving at {endpoint} (alias {alias} = version {version})");
    match provisioned {
        Provisioned::Off => PartState::ready(reason::AVAILABLE, serving),
        Provisioned::Ready(n) => {
            PartState::ready(reason::AVAILABLE, format!("{serving}; {n} provisioned environments ready"))
        }
        Provisioned::Allocating(n) => {
            PartState::not_ready(reason::PROGRESSING, format!("{serving}; allocating {n} provisioned environments"))
        }
        Provisioned::Failed(why) => PartState::not_ready(
            reason::PROVISIONED_CONCURRENCY_FAILED,
            format!("{serving}; provisioned concurrency: {}", tenant_message(why)),
        ),
    }
}

/// A variant's condition while its rollout is not done: rolling out, paused or rolled back;
/// `None` once the new version serves every reader (the variant's own state applies).
#[must_use]
pub fn rollout_state(rollout: &crate::rollout::VariantRollout) -> Option<PartState> {
    use crate::rollout::function::{BAKING, PAUSED, PROGRESSING, ROLLED_BACK};
    let why = rollout.message.clone();
    match rollout.phase.as_str() {
        PROGRESSING | BAKING => Some(PartState::not_ready(reason::ROLLING_OUT, why)),
        PAUSED => Some(PartState::not_ready(reason::ROLLOUT_PAUSED, why)),
        ROLLED_BACK => Some(PartState::not_ready(reason::ROLLED_BACK, why)),
        _ => None,
    }
}

/// The container variant's condition from what ECS and ELB report; `url` is `None` while the
/// HTTPS listener waits for its certificate.
#[must_use]
pub fn container_state(
    readiness: ContainerReadiness,
    tasks: &ContainerTasks,
    balancer_state: &str,
    url: Option<&str>,
) -> PartState {
    let Some(url) = url else {
        return PartState::not_ready(
            reason::CERTIFICATE_PENDING,
            "the HTTPS listener waits for ACM to issue the certificate (see DomainReady)",
        );
    };
    let counts = format!("{} of {} tasks running, rollout {}", tasks.running, tasks.desired, tasks.rollout);
    if tasks.rollout == "FAILED" {
        return PartState::not_ready(
            reason::ROLLOUT_FAILED,
            format!("the deployment failed and was rolled back; {counts}"),
        );
    }
    if balancer_state != "active" && balancer_state != "provisioning" {
        return PartState::not_ready(reason::LOAD_BALANCER_FAILED, format!("load balancer is {balancer_state}"));
    }
    match readiness {
        ContainerReadiness::Running if tasks.running >= tasks.desired && tasks.rollout == "COMPLETED" => {
            PartState::ready(reason::AVAILABLE, format!("serving at {url}; {counts}"))
        }
        ContainerReadiness::Running => PartState::not_ready(reason::PROGRESSING, counts),
        ContainerReadiness::Provisioned => PartState::ready(
            reason::PROVISIONED,
            format!("service, load balancer and listener exist (readiness: provisioned); {counts}"),
        ),
    }
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
    let progress = reason::is_progress(&now.reason);
    Some((!progress, now.reason.clone(), now.message.clone()))
}

/// The `Ready` condition of a status, if any.
#[must_use]
pub fn ready_condition(status: &BlogDeploymentStatus) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == READY)
}

/// Whether a reconcile of this generation only checks on an object that was settled: its last
/// status answered this very spec and said Ready. Such a resync's AWS calls yield to a change's.
#[must_use]
pub fn is_resync(generation: Option<i64>, previous: &BlogDeploymentStatus) -> bool {
    let ready = ready_condition(previous).is_some_and(|c| c.status == "True");
    generation.is_some() && previous.observed_generation == generation && ready
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_condition_has_an_empty_message() {
        let quiet = Observed { container: PartState::not_ready(reason::PROGRESSING, ""), ..observed(true) };
        let written = conditions(&quiet, &[], &at(5));
        let container = written.iter().find(|c| c.type_ == CONTAINER_READY).expect("ContainerReady");
        assert_eq!(container.message, "Progressing");
        assert!(written.iter().all(|c| !c.message.is_empty()), "{written:?}");
    }

    #[test]
    fn a_resync_is_a_settled_object_at_the_generation_it_answered() {
        let now = at(100);
        let ready = BlogDeploymentStatus {
            observed_generation: Some(3),
            conditions: conditions(&observed(true), &[], &now),
            ..BlogDeploymentStatus::default()
        };
        assert!(is_resync(Some(3), &ready));
        assert!(!is_resync(Some(4), &ready), "an edited spec is a change");
        let progressing = BlogDeploymentStatus { conditions: conditions(&observed(false), &[], &now), ..ready.clone() };
        assert!(!is_resync(Some(3), &progressing), "not settled yet");
        assert!(!is_resync(Some(1), &BlogDeploymentStatus::default()), "a new object");
    }

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid time"))
    }

    fn observed(function_ready: bool) -> Observed {
        Observed {
            generation: Some(3),
            table: PartState::ready("Active", "table blog-x is ACTIVE"),
            domain: PartState::ready("Disabled", "no spec.domain"),
            function: if function_ready {
                PartState::ready("Available", "https://abc.execute-api")
            } else {
                PartState::not_ready("Creating", "waiting for the function to become Active")
            },
            container: PartState::ready("Disabled", "the container variant is disabled"),
            regions: None,
        }
    }

    #[test]
    fn a_failing_region_degrades_a_ready_deployment_and_names_the_region() {
        let region = |name: &str, failure: Option<&str>, message: &str| RegionStatus {
            region: name.into(),
            phase: "Deploying".into(),
            failure: failure.map(str::to_owned),
            message: message.into(),
            ..RegionStatus::default()
        };
        let placed = [region("us-west-1", None, ""), region("ap-northeast-1", Some("AccessDenied"), "lambda denied")];
        let seen = Observed { regions: Some(regions_state(&placed)), ..observed(true) };
        let all = conditions(&seen, &[], &at(1));
        let of = |kind: &str| all.iter().find(|c| c.type_ == kind).cloned().expect(kind);
        assert_eq!(of(READY).status, "True", "home serves");
        let degraded = of(DEGRADED);
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", reason::REGION_FAILING));
        assert_eq!(degraded.message, "failing: ap-northeast-1 (AccessDenied): lambda denied");

        let healed = Observed { regions: Some(regions_state(&placed[..1])), ..observed(true) };
        let later = conditions(&healed, &all, &at(2));
        let degraded = later.iter().find(|c| c.type_ == DEGRADED).expect("still shown");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("False", reason::REGIONS_WORKING));
        assert_eq!(degraded.last_transition_time, at(2), "it changed");
        assert!(!conditions(&observed(true), &[], &at(1)).iter().any(|c| c.type_ == DEGRADED), "no placement");
    }

    #[test]
    fn ready_is_true_only_when_every_part_is() {
        let all = conditions(&observed(true), &[], &at(10));
        assert_eq!(all.len(), 5);
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
            conditions: conditions(&refused(Some(3), reason::INVALID_SPEC, "bad"), &[], &at(1)),
            ..Default::default()
        };
        assert_eq!(
            transition_event(&status(true, 2), &invalid).map(|e| (e.0, e.1)),
            Some((true, "InvalidSpec".into()))
        );
    }

    #[test]
    fn a_failure_lands_on_the_part_whose_step_failed() {
        // An IAM failure while making the container variant's roles: the function, reconciled
        // before, stays as it was seen; the table keeps its real state (still creating).
        let reached = Reached {
            table: Some(table_state("blog-x", "CREATING")),
            domain: None,
            function: Some(PartState::ready(reason::AVAILABLE, "serving")),
            container: None,
        };
        let denied = Failure { part: Part::Container, reason: reason::ACCESS_DENIED, message: "iam CreateRole".into() };
        let seen = failed(Some(2), &denied, &reached);
        assert_eq!((seen.container.ready, seen.container.reason.as_str()), (false, reason::ACCESS_DENIED));
        assert_eq!(seen.function, PartState::ready(reason::AVAILABLE, "serving"));
        assert_eq!((seen.table.ready, seen.table.reason.as_str()), (false, reason::CREATING));
        // Ready names the first part not ready: the table, still creating.
        assert_eq!(summary(&seen).reason, reason::CREATING);

        // A failed table step: nothing after it was reached.
        let throttled = Failure { part: Part::Table, reason: reason::AWS_ERROR, message: "dynamodb".into() };
        let seen = failed(None, &throttled, &Reached::default());
        assert_eq!(seen.table.reason, reason::AWS_ERROR);
        for waiting in [&seen.function, &seen.container] {
            assert_eq!((waiting.ready, waiting.reason.as_str()), (false, reason::BLOCKED));
            assert!(waiting.message.contains("the table step failed first"), "{}", waiting.message);
        }
        assert!(settled(&seen), "a failure a person must fix waits for the resync");
    }

    #[test]
    fn tenants_never_read_the_operators_arns_or_account() {
        let aws = "iam CreateRole failed: AccessDenied: User: arn:aws:sts::123456789012:assumed-role/blog-operator/i-1 \
                   is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::123456789012:role/blog-x-fn \
                   (account 123456789012, request 1234). Encoded authorization failure message: AbCdEf123";
        let shown = tenant_message(aws);
        assert_eq!(
            shown,
            "iam CreateRole failed: AccessDenied: User: <arn> is not authorized to perform: iam:CreateRole on \
             resource: <arn> (account <account>, request 1234)."
        );
        let failure = Failure { part: Part::Function, reason: reason::ACCESS_DENIED, message: aws.into() };
        let seen = failed(None, &failure, &Reached::default());
        assert!(!seen.function.message.contains("123456789012"), "{}", seen.function.message);
    }

    #[test]
    fn the_function_is_ready_once_provisioned_concurrency_is() {
        let state = |p: Provisioned| function_state("https://api", "live", "7", &p);
        let off = state(Provisioned::Off);
        assert!(off.ready);
        assert_eq!(off.message, "serving at https://api (alias live = version 7)");
        assert!(state(Provisioned::Ready(5)).ready);
        let allocating = state(Provisioned::Allocating(5));
        assert_eq!((allocating.ready, allocating.reason.as_str()), (false, reason::PROGRESSING));
        assert!(allocating.message.ends_with("allocating 5 provisioned environments"));
        let failed = state(Provisioned::Failed("account limit".into()));
        assert_eq!((failed.ready, failed.reason.as_str()), (false, reason::PROVISIONED_CONCURRENCY_FAILED));
        assert!(failed.message.ends_with("provisioned concurrency: account limit"));
    }

    #[test]
    fn the_container_is_ready_by_the_readiness_mode() {
        let tasks = |running, rollout: &str| ContainerTasks { desired: 2, running, rollout: rollout.into() };
        let state = |mode, t: &ContainerTasks, lb: &str| container_state(mode, t, lb, Some("http://lb"));
        let up = state(ContainerReadiness::Running, &tasks(2, "COMPLETED"), "active");
        assert_eq!(
            (up.ready, up.message.as_str()),
            (true, "serving at http://lb; 2 of 2 tasks running, rollout COMPLETED")
        );
        let starting = state(ContainerReadiness::Running, &tasks(1, "IN_PROGRESS"), "provisioning");
        assert_eq!((starting.ready, starting.reason.as_str()), (false, reason::PROGRESSING));
        let emulated = state(ContainerReadiness::Provisioned, &tasks(0, "IN_PROGRESS"), "active");
        assert_eq!((emulated.ready, emulated.reason.as_str()), (true, reason::PROVISIONED));
        let rolled_back = state(ContainerReadiness::Provisioned, &tasks(0, "FAILED"), "active");
        assert_eq!(rolled_back.reason, reason::ROLLOUT_FAILED);
        assert_eq!(
            state(ContainerReadiness::Running, &tasks(2, "COMPLETED"), "failed").reason,
            reason::LOAD_BALANCER_FAILED
        );
        let waiting = container_state(ContainerReadiness::Provisioned, &tasks(0, "COMPLETED"), "active", None);
        assert_eq!((waiting.ready, waiting.reason.as_str()), (false, reason::CERTIFICATE_PENDING));
    }

    #[test]
    fn invalid_spec_says_why_everywhere() {
        let all = conditions(&refused(Some(4), reason::INVALID_SPEC, "spec.image is empty"), &[], &at(1));
        assert!(all.iter().all(|c| c.status == "False" && c.reason == "InvalidSpec"));
        assert_eq!(all[0].message, "spec.image is empty");
    }
}
