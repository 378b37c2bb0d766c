//! The rollout's custom-resource types: the policy a spec writes (`spec.rollout`, overridden per
//! variant) and what status reports of each variant's rollout.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration as Kubernetes tools write one: a whole number of seconds, minutes or hours.
const DURATION: &str = r"^[0-9]{1,5}(s|m|h)$";

/// How a new version reaches readers. Every field is optional: a variant's own block
/// (`function.rollout`, `container.rollout`) overrides `spec.rollout` field by field.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// `AllAtOnce` (the default: every reader moves at once), `Canary` (one share, then all),
    /// `Linear` (equal steps), `BlueGreen` (the container only: the new tasks take every reader
    /// at once, the old ones stay for the final bake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_strategy")]
    pub strategy: Option<Strategy>,
    /// The share and how long it bakes, for `Canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRollout>,
    /// The step and how long each step bakes, for `Linear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearRollout>,
    /// How long the new version serves every reader, still judged, before the stable one is let
    /// go (a failed verdict meanwhile moves every reader back), e.g. `10m`; none when omitted. At
    /// most `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub final_bake: Option<String>,
    /// How each step is judged; omitted: steps advance on time alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// A path the new version must answer with 2xx before any reader reaches it (function: the
    /// operator invokes the new version with an HTTP API `GET` event); a failure rolls it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_traffic: Option<PreTraffic>,
}

/// The check before any reader reaches a new version.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreTraffic {
    /// A path of the blog, e.g. `/readyz`.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$"))]
    pub path: String,
}

/// A strategy or none, as the API server takes it (no `null` among the enum's values).
fn optional_strategy(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["AllAtOnce", "Canary", "Linear", "BlueGreen"]})
}

/// The rollout strategies.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Strategy {
    #[default]
    AllAtOnce,
    Canary,
    Linear,
    BlueGreen,
}

/// One canary step: `percent` of readers on the new version for `bake`, then all of them.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryRollout {
    /// The share of readers on the new version, 1 to 99 (%).
    #[serde(default = "default_canary_percent")]
    #[schemars(range(min = 1, max = 99))]
    pub percent: i32,
    /// How long that share bakes, e.g. `10m`.
    #[serde(default = "default_bake")]
    #[schemars(regex(pattern = DURATION))]
    pub bake: String,
}

/// Equal steps: `stepPercent` more readers every `stepBake` until all are on the new version.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinearRollout {
    /// The share each step adds, 3 to 50 (%; ECS takes no less than 3).
    #[serde(default = "default_step_percent")]
    #[schemars(range(min = 3, max = 50))]
    pub step_percent: i32,
    /// How long each step bakes, e.g. `5m`.
    #[serde(default = "default_bake")]
    #[schemars(regex(pattern = DURATION))]
    pub step_bake: String,
}

/// How a step is judged: the new version's own metrics against the stable version's in the same
/// window, every `interval`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// How often a verdict is made, e.g. `1m`: the window read is this long (at least one
    /// minute, CloudWatch's resolution for these metrics).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = DURATION))]
    pub interval: String,
    /// Fewer requests to the new version in a window make no verdict: the step waits, up to
    /// `maxStepDuration`, then the rollout pauses for a person (`promote` or `abort`).
    #[serde(default = "default_min_requests")]
    #[schemars(range(min = 1))]
    pub min_requests: i64,
    /// The longest a step may wait for enough requests, e.g. `1h`.
    #[serde(default = "default_max_step")]
    #[schemars(regex(pattern = DURATION))]
    pub max_step_duration: String,
    /// The most errors the new version may answer, in % of its requests (function: Lambda
    /// `Errors` over `Invocations`).
    #[serde(default = "default_max_error_percent")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub max_error_percent: f64,
    /// The highest p95 latency the new version may show, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "maxP95LatencyMs")]
    #[schemars(range(min = 1))]
    pub max_p95_latency_ms: Option<i64>,
    /// How much higher than the stable version's p95 in the same window the new version's may be,
    /// in %.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "maxP95IncreasePercent")]
    #[schemars(range(min = 0))]
    pub max_p95_increase_percent: Option<i64>,
    /// Failed verdicts in a row that roll the new version back.
    #[serde(default = "default_failure_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_limit: i32,
    /// CloudWatch alarms (names, in the deployment's account and region): one in `ALARM` fails
    /// the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub alarms: Vec<String>,
}

impl Default for CanaryRollout {
    fn default() -> Self {
        Self { percent: default_canary_percent(), bake: default_bake() }
    }
}

impl Default for LinearRollout {
    fn default() -> Self {
        Self { step_percent: default_step_percent(), step_bake: default_bake() }
    }
}

fn default_canary_percent() -> i32 {
    10
}
fn default_step_percent() -> i32 {
    20
}
fn default_bake() -> String {
    "5m".to_owned()
}
fn default_interval() -> String {
    "1m".to_owned()
}
fn default_min_requests() -> i64 {
    100
}
fn default_max_step() -> String {
    "1h".to_owned()
}
fn default_max_error_percent() -> f64 {
    1.0
}
fn default_failure_limit() -> i32 {
    2
}

/// Each variant's rollout, as far as it went.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The phase `kubectl get` shows: the function's, or the container's when only it rolls out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<VariantRollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<VariantRollout>,
}

/// One variant's rollout.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantRollout {
    /// `Progressing`, `Baking` (every reader on the new version, still judged), `Paused`,
    /// `Succeeded`, `RolledBack`.
    pub phase: String,
    /// The strategy in effect, and why another one was used instead of the spec's, if it was.
    pub strategy: Strategy,
    /// The version readers fall back to (function: a published version number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
    /// The version being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
    /// The configuration digest of the stable version, as the operator fingerprints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    /// The configuration digest of the version being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<String>,
    /// Readers on the new version, in %.
    pub weight: i32,
    /// The step (1-based) of `steps`; `steps + 1` is the final bake.
    pub step: i32,
    /// How many weighted steps the strategy has.
    pub steps: i32,
    /// When the current step began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started: Option<Time>,
    /// Failed verdicts in a row.
    #[serde(default)]
    pub failures: i32,
    /// The last verdict and the figures it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<RolloutCheck>,
    /// Why the rollout stands where it does, in a sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The ECS service deployment running it (the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The target group the stable revision serves from (the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_target: Option<String>,
    /// The target group the new revision's tasks join (the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_target: Option<String>,
}

/// One verdict on a window of metrics.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCheck {
    pub time: Option<Time>,
    /// `Pass`, `Fail` or `Inconclusive`.
    pub verdict: String,
    /// The new version's requests in the window.
    pub requests: f64,
    /// The new version's errors, in % of its requests.
    pub error_percent: f64,
    /// The new version's p95 latency in ms (CloudWatch's maximum where it computes no percentile).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "p95Ms")]
    pub p95_ms: Option<f64>,
    /// The stable version's requests in the same window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_requests: Option<f64>,
    /// The stable version's errors, in % of its requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_error_percent: Option<f64>,
    /// The stable version's p95 latency in ms.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "baselineP95Ms")]
    pub baseline_p95_ms: Option<f64>,
    /// Why, in a sentence.
    pub reason: String,
}
