//! The `BlogDeployment` custom resource: spec and status types; their doc comments become the
//! CRD schema's descriptions (`crdgen` prints it).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The shape of an ACM certificate ARN, for the schema (`aws_format::acm_certificate_arn` checks it
/// again and says which part is wrong).
const ACM_CERTIFICATE_ARN: &str = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The shape of an Application Auto Scaling schedule, for the schema: `at()`, `rate()` or a
/// six-field `cron()` (`aws_format::schedule` checks each field's values).
const SCHEDULE: &str = r"^(at\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\)|rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)|cron\([^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+\))$";

/// The annotation that pauses a BlogDeployment (`"true"`): the operator keeps reading its AWS
/// resources and reports drift on the conditions, but changes nothing (no create, update or
/// delete, deletion included) until it is removed. The observe-only switch for incidents.
pub const PAUSED_ANNOTATION: &str = "blogs.serverless.dev/paused";

/// Whether `annotations` pause the object.
#[must_use]
pub fn is_paused(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations.get(PAUSED_ANNOTATION).is_some_and(|v| v.trim() == "true")
}

/// A blog application on AWS, run as two serverless variants side by side: an AWS Lambda function
/// behind an API Gateway HTTP API, and an ECS Fargate service behind an Application Load Balancer,
/// both backed by one DynamoDB table.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "blogs.serverless.dev",
    version = "v1alpha1",
    kind = "BlogDeployment",
    plural = "blogdeployments",
    shortname = "bd",
    category = "blogs",
    category = "all",
    namespaced,
    doc = "A blog application on AWS, run as two serverless variants side by side: an AWS Lambda function behind an API Gateway HTTP API, and an ECS Fargate service behind an Application Load Balancer, both backed by one DynamoDB table.",
    status = "BlogDeploymentStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Function URL","type":"string","jsonPath":".status.functionUrl"}"#,
    printcolumn = r#"{"name":"Container URL","type":"string","jsonPath":".status.containerUrl"}"#,
    printcolumn = r#"{"name":"Rollout","type":"string","jsonPath":".status.rollout.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BlogDeploymentSpec {
    /// Container image of the blog service, e.g.
    /// `123456789012.dkr.ecr.us-west-1.amazonaws.com/blog-service:1.0.0`. The Fargate tasks run it,
    /// and so does the Lambda function unless `function.code` names a zip in S3. Lambda accepts
    /// only Amazon ECR images in the function's own region and account.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,

    /// AWS region, e.g. `us-west-1`; the operator's default region when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// The DynamoDB table both variants share.
    #[serde(default)]
    pub table: TableSpec,

    /// The Lambda + API Gateway variant. Omit it, or set `enabled: false`, to skip it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionSpec>,

    /// The ECS Fargate + Application Load Balancer variant. Omit it, or set `enabled: false`, to skip it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSpec>,

    /// How resources are sized: by hand, recommended from metrics, or applied automatically.
    #[serde(default)]
    pub allocation: AllocationSpec,
    /// The token writers must send (`Authorization: Bearer <token>`); reads stay open. The blog never
    /// takes anonymous writes: without `secretName`, the operator generates a token into a Secret it
    /// owns and names it in `status.writeTokenSecret`.
    #[serde(default)]
    pub write_token: WriteTokenSpec,
    /// Environment variables for the blog in both variants (a variant's own `env` wins on the same
    /// name). Names the operator sets itself (`TABLE_NAME`, `PORT`, `WRITE_TOKEN*`, `FUNCTIONS_URL`,
    /// `CONTAINERS_URL`) and `AWS_*` are refused; `CORS_ALLOWED_ORIGINS` adds origins to the two
    /// variants' own. A change rolls the variant out as a new function version or task-definition
    /// revision.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// HTTPS on your own domain: a Route 53 hosted zone, a host name per variant, and an ACM
    /// certificate (requested and validated through the zone when none is given). Both URLs in
    /// status become `https://<host>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Box<DomainSpec>>,
    /// Logs, tracing and metrics of both variants.
    #[serde(default)]
    pub observability: ObservabilitySpec,
    /// Cost-allocation tags copied onto every AWS resource the operator makes, beside its own
    /// ownership tags (which these cannot override): activate them in the Billing console to compare
    /// the cost estimate in status with Cost Explorer. At most 40; keys may not start with `aws:` or
    /// `blogs.serverless.dev/`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 40))]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Several regions: the stack repeated in each chosen region, a DynamoDB global-table replica
    /// of the home region's table in each, and Route 53 latency routing on `host`. Needs
    /// `spec.domain` (its hosted zone holds the records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Box<PlacementSpec>>,
    /// How a new version of either variant reaches readers: at once (the default), or step by
    /// step, each step judged on the new version's own metrics against the stable one's and
    /// rolled back by itself when they fail. `function.rollout` and `container.rollout` override
    /// it field by field. The operator's own changes (Auto sizing) roll out the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<crate::rollout::RolloutSpec>>,
}

/// Where the blog runs: the home region and the candidates, each served by the function, the
/// container or both, chosen by hand or from measured demand, latency and cost.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    /// `Manual` (every candidate serves, with its pinned variant or both), `Recommend` (as Manual,
    /// and the placement the objective asks for is reported in `status.placement`) or `Auto` (that
    /// placement is applied, one region per decision).
    #[serde(default)]
    pub mode: PlacementMode,
    /// The region whose table is the global table's origin: always serving, never removed.
    #[schemars(length(min = 1, max = 32))]
    pub home: String,
    /// The one public name served from every chosen region by latency routing, e.g.
    /// `blog.example.com`; it must lie in `spec.domain.hostedZone`. Each region answers at
    /// `<region>.<host>` too.
    #[schemars(length(min = 1, max = 200))]
    pub host: String,
    /// Up to 6 regions besides home that may serve, each optionally pinned to one variant.
    #[serde(default)]
    #[schemars(length(max = 6))]
    pub candidates: Vec<CandidateRegion>,
    /// What the placement must reach (Recommend and Auto).
    #[serde(default)]
    pub objective: PlacementObjective,
    /// `Local`: each region writes its own replica (last writer wins between regions). `Home`:
    /// every region writes to the home region's table, and reads its own replica.
    #[serde(default)]
    pub writes: PlacementWrites,
    /// The least gain, percent of cost or of the share of demand within the target, worth a change.
    #[serde(default = "default_hysteresis_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub hysteresis_percent: i32,
    /// Least time between two applied changes, in minutes (Auto).
    #[serde(default = "default_placement_cooldown")]
    #[schemars(range(min = 0, max = 10080))]
    pub cooldown_minutes: i32,
    /// Declared share of readers per region (any positive numbers; they are normalised), for regions
    /// not deployed yet: measured requests replace them where a region serves.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 7))]
    pub demand: std::collections::BTreeMap<String, u32>,
}

fn default_hysteresis_percent() -> i32 {
    10
}
fn default_placement_cooldown() -> i32 {
    60
}

/// One region that may serve.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateRegion {
    /// An AWS region, e.g. `eu-central-1`.
    #[schemars(length(min = 1, max = 32))]
    pub region: String,
    /// Serve this region with this variant only: `function` or `container`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_variant")]
    pub variant: Option<PlacementVariant>,
    /// Keep the variant that does not serve here running too, idle and priced, so that a switch
    /// (Auto's, or a pin changed) weighs it in as soon as its health check is green instead of
    /// deploying it first. Not with a pin (a pinned region never switches) and only with both
    /// variants enabled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
}

/// An optional variant: the API server refuses `null` among an enum's values, which schemars
/// writes for an optional enum.
fn optional_variant(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["function", "container"]})
}

/// A variant a region serves with.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum PlacementVariant {
    #[serde(rename = "function")]
    Function,
    #[serde(rename = "container")]
    Container,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PlacementMode {
    #[default]
    Manual,
    Recommend,
    Auto,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PlacementWrites {
    #[default]
    Local,
    Home,
}

/// A p95 latency target for readers and/or a monthly budget.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementObjective {
    /// Readers' p95 latency target, milliseconds: meet it at least cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 10000))]
    pub p95_latency_ms: Option<i32>,
    /// Monthly budget, USD: least latency within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub monthly_budget_usd: Option<i32>,
}

/// The blog on your own domain, over HTTPS.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainSpec {
    /// The Route 53 public hosted zone that holds the host names: its id (`Z0123456789ABC`) or its
    /// name (`example.com`). The operator writes the certificate's validation records and an alias
    /// record per host into it, each beside a TXT record that marks it as this BlogDeployment's; a
    /// record it did not write is never changed.
    #[schemars(length(min = 1, max = 255))]
    pub hosted_zone: String,
    /// The function variant's host name, e.g. `fn.blog.example.com` (an API Gateway custom domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub function_host: Option<String>,
    /// The container variant's host name, e.g. `blog.example.com` (an alias of the load balancer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub container_host: Option<String>,
    /// An ISSUED ACM certificate in the deployment's region that covers both hosts; the operator
    /// requests one (DNS-validated through the zone) when omitted, and deletes only that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048), regex(pattern = ACM_CERTIFICATE_ARN))]
    pub certificate_arn: Option<String>,
}

/// The observability switches of both variants; each changes in place.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    /// Days CloudWatch Logs keeps both variants' logs (the values CloudWatch allows).
    #[serde(default = "default_log_retention")]
    #[schemars(extend("enum" = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]))]
    pub log_retention_days: i32,
    /// `Off` (the default) or `XRay`: Lambda active tracing, and an AWS X-Ray daemon beside the
    /// blog in each task, with the IAM both need.
    #[serde(default)]
    pub tracing: Tracing,
    /// CloudWatch Container Insights on the ECS cluster (its metrics are billed).
    #[serde(default)]
    pub container_insights: bool,
}

impl Default for ObservabilitySpec {
    fn default() -> Self {
        Self { log_retention_days: default_log_retention(), tracing: Tracing::Off, container_insights: false }
    }
}

fn default_log_retention() -> i32 {
    14
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Tracing {
    #[default]
    Off,
    XRay,
}

/// The DynamoDB table.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableSpec {
    /// `PayPerRequest` (on-demand, the default) or `Provisioned` (then set both capacities).
    #[serde(default)]
    pub billing_mode: BillingMode,
    /// Read capacity units, for `Provisioned` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 40000))]
    pub read_capacity_units: Option<i64>,
    /// Write capacity units, for `Provisioned` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 40000))]
    pub write_capacity_units: Option<i64>,
    /// What happens to the table when the BlogDeployment is deleted: `Retain` (the default: the
    /// posts survive, and the table is tagged as retained) or `Delete`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// An existing table to use instead of a new one: a table a deleted BlogDeployment of this
    /// namespace retained (its name is in that one's `status.resources.tableArn`), or, with
    /// `adoptUntagged`, a table the operator did not make. Fixed once the BlogDeployment has a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^[a-zA-Z0-9_.-]+$"))]
    pub name: Option<String>,
    /// Take over the table in `name` even though it carries none of the operator's tags (it must
    /// have the blog's layout: key `id`, index `byCreated`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt_untagged: bool,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BillingMode {
    #[default]
    PayPerRequest,
    Provisioned,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// The Lambda function and its HTTP API.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// Set to `false` to remove this variant's resources and keep the rest.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Memory in MiB, 128 to 10240 (CPU grows with it).
    #[serde(default = "default_function_memory", rename = "memoryMiB")]
    #[schemars(range(min = 128, max = 10240))]
    pub memory_mib: i32,
    /// Timeout in seconds, 1 to 900. API Gateway answers 503 after 30 s whatever this says.
    #[serde(default = "default_function_timeout")]
    #[schemars(range(min = 1, max = 900))]
    pub timeout_seconds: i32,
    /// `arm64` (the default: cheaper per GB-second) or `x86_64`; the image must match.
    #[serde(default)]
    pub architecture: Architecture,
    /// An image for the function instead of `spec.image`, e.g. the single-architecture image of a
    /// multi-architecture one (Lambda runs no image index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Concurrent executions reserved for this function (and its cap); none reserved when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub reserved_concurrency: Option<i32>,
    /// Execution environments kept initialized on the `live` alias (provisioned concurrency), so
    /// that requests up to this concurrency see no cold start; none when omitted. Billed while set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub provisioned_concurrency: Option<i32>,
    /// A zip of the `bootstrap` binary in S3 (`make lambda-zip`) to run instead of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<S3Code>,
    /// Environment variables for the function only; they win over `spec.env` on the same name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// The HTTP API's throttling (its `$default` stage's default route settings): requests beyond
    /// it get 429 from API Gateway and never reach the function, so anonymous traffic cannot take
    /// the account's Lambda concurrency in the region.
    #[serde(default)]
    pub throttle: ThrottleSpec,
    /// This variant's rollout, over `spec.rollout` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<crate::rollout::RolloutSpec>>,
}

/// Requests a second and burst the HTTP API admits (API Gateway's token bucket).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleSpec {
    /// Steady requests a second (`ThrottlingRateLimit`); the account's own quota is 10,000.
    #[serde(default = "default_throttle_rate")]
    #[schemars(range(min = 1, max = 10000))]
    pub rate_per_second: i32,
    /// Requests admitted at once above the rate (`ThrottlingBurstLimit`); the account's is 5,000.
    #[serde(default = "default_throttle_burst")]
    #[schemars(range(min = 0, max = 5000))]
    pub burst: i32,
}

impl Default for ThrottleSpec {
    fn default() -> Self {
        Self { rate_per_second: default_throttle_rate(), burst: default_throttle_burst() }
    }
}

fn default_throttle_rate() -> i32 {
    100
}

fn default_throttle_burst() -> i32 {
    200
}

impl Default for FunctionSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            memory_mib: default_function_memory(),
            timeout_seconds: default_function_timeout(),
            architecture: Architecture::default(),
            image: None,
            reserved_concurrency: None,
            provisioned_concurrency: None,
            code: None,
            env: std::collections::BTreeMap::new(),
            throttle: ThrottleSpec::default(),
            rollout: None,
        }
    }
}

/// A Lambda deployment package in S3, for the `provided.al2023` runtime.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Code {
    /// The bucket holding the package, in the function's region.
    #[schemars(length(min = 3, max = 63), regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub s3_bucket: String,
    /// The object key of the package (a zip with a `bootstrap` executable).
    #[schemars(length(min = 1, max = 1024))]
    pub s3_key: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Architecture {
    #[default]
    #[serde(rename = "arm64")]
    Arm64,
    #[serde(rename = "x86_64")]
    X86_64,
}

/// The Fargate service and its load balancer.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// Set to `false` to remove this variant's resources and keep the rest.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Task CPU in Fargate units (1024 = 1 vCPU). Each value allows only some memory sizes:
    /// 256 → 512, 1024 or 2048; 512 → 1024–4096; 1024 → 2048–8192; 2048 → 4096–16384; 4096 → 8192–30720
    /// (steps of 1024); 8192 → 16384–61440 (steps of 4096); 16384 → 32768–122880 (steps of 8192).
    #[serde(default = "default_container_cpu")]
    #[schemars(extend("enum" = [256, 512, 1024, 2048, 4096, 8192, 16384]))]
    pub cpu: i32,
    /// Task memory in MiB; must suit `cpu` (see there).
    #[serde(default = "default_container_memory", rename = "memoryMiB")]
    #[schemars(range(min = 512, max = 122880))]
    pub memory_mib: i32,
    /// Tasks to run, 0 to 1000 (autoscaling, when set, moves it within its bounds).
    #[serde(default = "default_desired_count")]
    #[schemars(range(min = 0, max = 1000))]
    pub desired_count: i32,
    /// The port the blog service listens on in the task.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// CPU architecture of the tasks (ECS `runtimePlatform`): `arm64` (the default, as for the
    /// function: Graviton, cheaper per vCPU-hour) or `x86_64`; the image must match.
    #[serde(default)]
    pub architecture: Architecture,
    /// An image for the tasks instead of `spec.image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Path the load balancer probes for health: `/` then the characters of a URL path (RFC 3986
    /// `pchar`, `/` and `?`), at most 1024 in all (ELB `CreateTargetGroup` `HealthCheckPath`).
    #[serde(default = "default_health_check_path")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$"))]
    pub health_check_path: String,
    /// Task-count scaling through Application Auto Scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// Where the load balancer and tasks run: the region's default VPC and its subnets unless given.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Who can reach the load balancer: internet-facing from anywhere unless narrowed.
    #[serde(default)]
    pub load_balancer: LoadBalancerSpec,
    /// Environment variables for the tasks only; they win over `spec.env` on the same name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// This variant's rollout, over `spec.rollout` field by field. Until the container's own
    /// strategies are built, its new revisions roll out as ECS's rolling deployment with the
    /// circuit breaker, and status says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<crate::rollout::RolloutSpec>>,
}

/// Where the write token comes from.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteTokenSpec {
    /// An `Opaque` Secret in this namespace, labelled `blogs.serverless.dev/write-token: "true"`
    /// (the operator reads no other), holding a token of at least 32 characters; omitted: the
    /// operator generates one into the Secret `<name>-write-token`, owned by this BlogDeployment,
    /// where the platform lets it make Secrets. A change to the Secret reaches both variants at the
    /// next reconcile (within the resync period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub secret_name: Option<String>,
    /// The key in that Secret.
    #[serde(default = "default_token_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

impl Default for WriteTokenSpec {
    fn default() -> Self {
        Self { secret_name: None, key: default_token_key() }
    }
}

fn default_token_key() -> String {
    "token".to_owned()
}

/// The load balancer's exposure.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    /// `true`: an internal ALB, reachable only inside the VPC. Changing it replaces the load
    /// balancer (AWS cannot change a scheme), and with it the container URL.
    #[serde(default)]
    pub internal: bool,
    /// IPv4 CIDR blocks allowed to reach the listeners (443, and 80, which redirects to it),
    /// e.g. `10.0.0.0/8`.
    #[serde(default = "anywhere")]
    #[schemars(length(min = 1, max = 20))]
    pub ingress_cidrs: Vec<String>,
    /// An ISSUED ACM certificate for the HTTPS:443 listener when `spec.domain` gives the container
    /// no host (you point your own DNS name at the load balancer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048), regex(pattern = ACM_CERTIFICATE_ARN))]
    pub certificate_arn: Option<String>,
    /// Serve plain HTTP on port 80 without a certificate. Writes then cross the network in clear
    /// text; the container URL in status says `http://`. Without it, the container variant needs
    /// a certificate (`spec.domain.containerHost` or `certificateArn`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_http: bool,
    /// An AWS WAF web ACL in front of the load balancer: a rate-based rule that blocks a client IP
    /// past `rateLimit` requests in 5 minutes, then the AWS managed rule groups named. Removing the
    /// field removes the web ACL. WAF bills per web ACL, per rule and per million requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waf: Option<WafSpec>,
}

impl Default for LoadBalancerSpec {
    fn default() -> Self {
        Self { internal: false, ingress_cidrs: anywhere(), certificate_arn: None, plain_http: false, waf: None }
    }
}

/// The load balancer's web ACL (AWS WAF, regional scope).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WafSpec {
    /// Requests one client IP may make in a 5-minute window before WAF blocks it (AWS WAF's
    /// rate-based rule: 10 to 2,000,000,000).
    #[serde(default = "default_rate_limit")]
    #[schemars(range(min = 10, max = 2_000_000_000))]
    pub rate_limit: i64,
    /// AWS managed rule groups to run after the rate rule, by name, e.g.
    /// `AWSManagedRulesCommonRuleSet` or `AWSManagedRulesKnownBadInputsRuleSet`. Their capacity
    /// counts against the web ACL's 1,500 WCU; AWS refuses more, named in the condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(regex(pattern = r"^AWSManagedRules[A-Za-z0-9]{1,100}$")))]
    pub managed_rule_groups: Vec<String>,
}

fn default_rate_limit() -> i64 {
    2000
}

fn anywhere() -> Vec<String> {
    vec!["0.0.0.0/0".to_owned()]
}

impl Default for ContainerSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            cpu: default_container_cpu(),
            memory_mib: default_container_memory(),
            desired_count: default_desired_count(),
            port: default_port(),
            architecture: Architecture::default(),
            image: None,
            health_check_path: default_health_check_path(),
            autoscaling: None,
            network: NetworkSpec::default(),
            load_balancer: LoadBalancerSpec::default(),
            env: std::collections::BTreeMap::new(),
            rollout: None,
        }
    }
}

/// Task-count scaling through Application Auto Scaling: bounds, target tracking and schedules.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// The fewest tasks Application Auto Scaling may run.
    #[schemars(range(min = 0, max = 1000))]
    pub min_tasks: i32,
    /// The most tasks Application Auto Scaling may run.
    #[schemars(range(min = 1, max = 1000))]
    pub max_tasks: i32,
    /// Average CPU utilization to hold, in percent (target tracking).
    #[serde(default = "default_target_cpu")]
    #[schemars(range(min = 10, max = 90))]
    pub target_cpu_percent: i32,
    /// Average memory utilization to hold, in percent (target tracking; off when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 95))]
    pub target_memory_percent: Option<i32>,
    /// Load balancer requests per task to hold (target tracking; off when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub target_requests_per_task: Option<i32>,
    /// Scheduled changes of the bounds, e.g. more tasks on weekday mornings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled: Vec<ScheduledScaling>,
    /// Step scaling: each entry is a CloudWatch alarm on the service's average CPU or memory and the
    /// policy it drives, changing the task count by steps as the metric crosses thresholds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub step_scaling: Vec<StepScaling>,
}

/// One step-scaling policy and the alarm that drives it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepScaling {
    /// Unique within the list; lowercase letters, digits and '-'. Names the policy and its alarm.
    #[schemars(length(min = 1, max = 32))]
    pub name: String,
    /// The service metric the alarm watches (its average over the period).
    pub metric: ScalingMetric,
    /// `Above`: a step applies when the metric is at or above its threshold (scale out);
    /// `Below`: at or below it (scale in).
    pub when: StepDirection,
    /// Thresholds in percent and the task-count change each one brings; the step with the most
    /// extreme threshold crossed applies.
    #[schemars(length(min = 1, max = 10))]
    pub steps: Vec<ScalingStep>,
    /// Seconds per evaluation period of the alarm.
    #[serde(default = "default_step_period")]
    #[schemars(extend("enum" = [10, 30, 60, 120, 300, 600, 900, 3600]))]
    pub period_seconds: i32,
    /// Periods in a row that must breach before the alarm fires.
    #[serde(default = "default_evaluation_periods")]
    #[schemars(range(min = 1, max = 10))]
    pub evaluation_periods: i32,
    /// Seconds after a scaling activity before another may start.
    #[serde(default = "default_step_cooldown")]
    #[schemars(range(min = 0, max = 3600))]
    pub cooldown_seconds: i32,
}

/// A service metric step scaling can watch.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ScalingMetric {
    #[serde(rename = "CPUUtilization")]
    CpuUtilization,
    MemoryUtilization,
}

/// Which side of its thresholds a step-scaling alarm fires on.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum StepDirection {
    Above,
    Below,
}

/// One step: from `threshold` (percent) on, change the task count by `change`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingStep {
    /// The metric's value, in percent, from which this step applies.
    #[schemars(range(min = 0, max = 100))]
    pub threshold: i32,
    /// Tasks to add (positive, with `Above`) or remove (negative, with `Below`).
    #[schemars(range(min = -100, max = 100))]
    pub change: i32,
}

fn default_step_period() -> i32 {
    60
}

fn default_evaluation_periods() -> i32 {
    2
}

fn default_step_cooldown() -> i32 {
    60
}

/// One scheduled action: at `schedule`, set the task bounds.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledScaling {
    /// Unique within the list; letters, digits, '-' and '_'.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// `cron(minutes hours day-of-month month day-of-week year)`, `rate(value unit)` or `at(yyyy-mm-ddThh:mm:ss)`.
    #[schemars(length(min = 1, max = 256), regex(pattern = SCHEDULE))]
    pub schedule: String,
    /// IANA time zone of the schedule, e.g. `Europe/Berlin`; UTC when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z][A-Za-z0-9_+-]*){0,2}$")
    )]
    pub timezone: Option<String>,
    /// The fewest tasks from this time on.
    #[schemars(range(min = 0, max = 1000))]
    pub min_tasks: i32,
    /// The most tasks from this time on.
    #[schemars(range(min = 1, max = 1000))]
    pub max_tasks: i32,
}

/// The VPC and subnets; all empty means the region's default VPC and its default subnets.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// `vpc-...`; required when `subnetIds` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$"))]
    pub vpc_id: Option<String>,
    /// At least two `subnet-...` ids in distinct availability zones (an ALB needs two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")))]
    pub subnet_ids: Vec<String>,
}

/// Right-sizing from observed metrics, with targets and bounds.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationSpec {
    /// `Manual` (sizes exactly as written), `Recommend` (the default: report a recommendation in
    /// status) or `Auto` (apply it within the bounds below).
    #[serde(default)]
    pub mode: AllocationMode,
    /// How far back metrics are read, in minutes.
    #[serde(default = "default_window_minutes")]
    #[schemars(range(min = 5, max = 1440))]
    pub window_minutes: i32,
    /// Least time between two applied changes, in minutes (Auto).
    #[serde(default = "default_cooldown_minutes")]
    #[schemars(range(min = 0, max = 1440))]
    pub cooldown_minutes: i32,
    /// The function's p95 latency target, milliseconds.
    #[serde(default = "default_latency_target")]
    #[schemars(range(min = 10, max = 30000))]
    pub latency_p95_ms: i32,
    /// Average CPU utilization the tasks should stay under, percent.
    #[serde(default = "default_target_cpu")]
    #[schemars(range(min = 10, max = 90))]
    pub cpu_percent: i32,
    /// Average memory utilization the tasks should stay under, percent.
    #[serde(default = "default_target_memory")]
    #[schemars(range(min = 10, max = 95))]
    pub memory_percent: i32,
    /// The least memory Auto gives the function, MiB.
    #[serde(default = "default_min_memory", rename = "minMemoryMiB")]
    #[schemars(range(min = 128, max = 10240))]
    pub min_memory_mib: i32,
    /// The most memory Auto gives the function, MiB; at least `minMemoryMiB`.
    #[serde(default = "default_max_memory", rename = "maxMemoryMiB")]
    #[schemars(range(min = 128, max = 10240))]
    pub max_memory_mib: i32,
    /// The fewest tasks Auto runs.
    #[serde(default = "default_min_tasks")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_tasks: i32,
    /// The most tasks Auto runs; at least `minTasks`.
    #[serde(default = "default_max_tasks")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_tasks: i32,
}

impl Default for AllocationSpec {
    fn default() -> Self {
        Self {
            mode: AllocationMode::default(),
            window_minutes: default_window_minutes(),
            cooldown_minutes: default_cooldown_minutes(),
            latency_p95_ms: default_latency_target(),
            cpu_percent: default_target_cpu(),
            memory_percent: default_target_memory(),
            min_memory_mib: default_min_memory(),
            max_memory_mib: default_max_memory(),
            min_tasks: default_min_tasks(),
            max_tasks: default_max_tasks(),
        }
    }
}

fn default_window_minutes() -> i32 {
    60
}
fn default_cooldown_minutes() -> i32 {
    30
}
fn default_latency_target() -> i32 {
    200
}
fn default_target_memory() -> i32 {
    70
}
fn default_min_memory() -> i32 {
    128
}
fn default_max_memory() -> i32 {
    3008
}
fn default_min_tasks() -> i32 {
    1
}
fn default_max_tasks() -> i32 {
    10
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AllocationMode {
    Manual,
    #[default]
    Recommend,
    Auto,
}

/// What the operator observed and made. `Ready` summarises the other conditions for kstatus,
/// Flux and Argo CD.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlogDeploymentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The function variant's public URL: `https://` + its host, or the HTTP API's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_url: Option<String>,
    /// The container variant's public URL: `https://` + its host (or the load balancer's DNS name),
    /// `http://` only with `loadBalancer.plainHttp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_url: Option<String>,
    /// `Ready`, `TableReady`, `DomainReady`, `FunctionReady`, `ContainerReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Identifiers of the AWS resources the operator made.
    #[serde(default)]
    pub resources: ResourceIds,
    /// The recommendation (Recommend) or the sizes in effect (Auto), and what each variant costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<AllocationStatus>,
    /// The Secret (in this namespace) whose key holds the write token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_token_secret: Option<String>,
    /// The Fargate service's task counts and rollout, as ECS reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_tasks: Option<ContainerTasks>,
    /// Each region serving or on its way in or out, and the placement recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Box<PlacementStatus>>,
    /// Each variant's rollout of its latest version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<crate::rollout::RolloutStatus>>,
}

/// The regions of a placement.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    /// Home first, then the others by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionStatus>,
    /// The placement the objective asks for, and why (Recommend, Auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<PlacementRecommendation>,
    /// When Auto last changed a region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// One region of a placement.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionStatus {
    /// An AWS region.
    pub region: String,
    /// `Deploying` (its stack and replica on the way), `Checking` (health checks not green yet),
    /// `Serving`, `Draining` (out of latency routing, waiting out the records' TTL), `Removing`.
    pub phase: String,
    /// The variant serving readers here (`function` or `container`); none while both do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_variant")]
    pub variant: Option<PlacementVariant>,
    /// Route 53 weight of the function's record at `<region>.<host>` (0-255).
    pub function_weight: i64,
    /// Route 53 weight of the container's record.
    pub container_weight: i64,
    /// The function's regional endpoint (its HTTP API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_url: Option<String>,
    /// The container's regional endpoint (its load balancer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_url: Option<String>,
    /// `Healthy`, `Unhealthy` or `Unknown`, from the Route 53 health checks of the variants here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health: String,
    /// Estimated monthly cost of this region's part, USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    /// What the region waits for, or what failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The reason (as a condition's, such as `AccessDenied`) of the failure that stopped the
    /// region's last step; absent while it works. Any region with one sets `Degraded=True`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// When the region entered its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// The function's Route 53 health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_health_check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The container's health check.
    pub container_health_check: Option<String>,
    /// What was made in this region (home's are in `status.resources`).
    #[serde(default, skip_serializing_if = "ResourceIds::is_empty")]
    pub resources: ResourceIds,
}

/// The placement the objective asks for.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementRecommendation {
    /// `region=variant` for each region of the recommended placement.
    pub regions: Vec<String>,
    /// Its estimated monthly cost, USD (compute, replicated writes, health checks, DNS queries).
    pub monthly_usd: f64,
    /// Readers' p95 latency it gives, ms, from the latency matrix.
    pub p95_ms: f64,
    /// Share of demand served within the latency target, 0-1.
    pub within_target: f64,
    /// Why it is (or is not yet) the placement applied; it says first when readers' beacons were
    /// too few to advise from.
    pub why: String,
    /// Readers' beacons in the window it rests on (at least 30 for demand and latency to come from
    /// them; below, requests per serving region and the declared demand stand in).
    #[serde(default)]
    pub beacons: u64,
}

/// Sizes and costs from observed metrics.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationStatus {
    /// True when the sizes below are in effect (Auto applied them); false when only recommended.
    #[serde(default)]
    pub applied: bool,
    /// Requests per second over the window, both variants together.
    pub requests_per_second: f64,
    /// The function's memory, MiB: recommended, or applied when `applied` is true.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "functionMemoryMiB")]
    pub function_memory_mib: Option<i32>,
    /// The function's p95 duration over the window (the maximum where CloudWatch gives no p95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_p95_ms: Option<f64>,
    /// The task's Fargate CPU units: recommended, or applied when `applied` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_cpu: Option<i32>,
    /// The task's memory, MiB: recommended, or applied when `applied` is true.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "containerMemoryMiB")]
    pub container_memory_mib: Option<i32>,
    /// The task count: recommended, or applied when `applied` is true (with autoscaling on,
    /// Application Auto Scaling sets the count and this is only a recommendation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_tasks: Option<i32>,
    /// Function errors over the window. While errors or throttles are above zero the function's
    /// memory is not shrunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_errors: Option<i64>,
    /// Throttled function invocations over the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_throttles: Option<i64>,
    /// Average CPU utilization of the tasks over the window, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_cpu_percent: Option<f64>,
    /// The load balancer's p95 target response time over the window (the maximum where CloudWatch
    /// gives no p95). While it is above `latencyP95Ms` the tasks are not shrunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_p95_ms: Option<f64>,
    /// Monthly cost of the function variant at the observed traffic, USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_monthly_usd: Option<f64>,
    /// Monthly cost of the container variant at the observed traffic, USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_monthly_usd: Option<f64>,
    /// The request rate at which both cost the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_even_requests_per_second: Option<f64>,
    /// `function` or `container`: the cheaper at the observed traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cheaper: Option<String>,
    /// When Auto last applied a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Why a size is not what the metrics alone would give: missing metrics, a guard (errors,
    /// throttles, slow responses), the cooldown or too small a saving.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Task counts of the container variant.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTasks {
    /// Tasks the service wants, as ECS reports it.
    pub desired: i32,
    /// Tasks running now, as ECS reports it.
    pub running: i32,
    /// The primary deployment's rollout state: `COMPLETED`, `IN_PROGRESS` or `FAILED`.
    pub rollout: String,
}

/// ARNs and ids of what the operator made, for people and tools; the operator itself finds its
/// resources again by name and ownership tags, never only from here.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIds {
    /// The DynamoDB table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_arn: Option<String>,
    /// The Lambda function (unqualified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_arn: Option<String>,
    /// The API Gateway HTTP API's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// The ECS cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    /// The ECS service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_arn: Option<String>,
    /// The task definition revision the service runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    /// The Application Load Balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_arn: Option<String>,
    /// The load balancer's target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    /// The ACM certificate the HTTPS endpoints use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// The Route 53 hosted zone holding the records below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    /// The host names the operator wrote records for (and their validation records): removed when
    /// they leave `spec.domain` or the BlogDeployment is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl ResourceIds {
    /// Nothing recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn yes() -> bool {
    true
}
fn default_function_memory() -> i32 {
    512
}
fn default_function_timeout() -> i32 {
    15
}
fn default_container_cpu() -> i32 {
    256
}
fn default_container_memory() -> i32 {
    512
}
fn default_desired_count() -> i32 {
    2
}
fn default_port() -> i32 {
    8080
}
fn default_health_check_path() -> String {
    "/healthz".to_owned()
}
fn default_target_cpu() -> i32 {
    60
}

impl BlogDeploymentSpec {
    /// The region of the table and of the first stack: a placement's home, else `spec.region`,
    /// else `default`.
    #[must_use]
    pub fn home_region<'a>(&'a self, default: &'a str) -> &'a str {
        self.placement.as_ref().map(|p| p.home.as_str()).or(self.region.as_deref()).unwrap_or(default)
    }

    /// Every region the spec may run in: home, then a placement's candidates.
    #[must_use]
    pub fn regions<'a>(&'a self, default: &'a str) -> Vec<&'a str> {
        let candidates = self.placement.iter().flat_map(|p| &p.candidates).map(|c| c.region.as_str());
        let mut regions = vec![self.home_region(default)];
        regions.extend(candidates.filter(|r| *r != self.home_region(default)));
        regions
    }

    /// The function variant, when it is enabled.
    #[must_use]
    pub fn function_enabled(&self) -> Option<&FunctionSpec> {
        self.function.as_ref().filter(|f| f.enabled)
    }

    /// The container variant, when it is enabled.
    #[must_use]
    pub fn container_enabled(&self) -> Option<&ContainerSpec> {
        self.container.as_ref().filter(|c| c.enabled)
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    /// Every property path under `schema` that has no description, so `kubectl explain` would
    /// show it bare.
    fn undocumented(path: &str, schema: &serde_json::Value, out: &mut Vec<String>) {
        let Some(properties) = schema.get("properties").and_then(serde_json::Value::as_object) else {
            if let Some(items) = schema.get("items") {
                undocumented(&format!("{path}[]"), items, out);
            }
            return;
        };
        for (name, property) in properties {
            let here = format!("{path}.{name}");
            if property.get("description").and_then(serde_json::Value::as_str).is_none_or(str::is_empty) {
                out.push(here.clone());
            }
            undocumented(&here, property, out);
        }
    }

    #[test]
    fn kubectl_shows_the_reason_and_finds_the_kind_by_category() {
        let crd = serde_json::to_value(super::BlogDeployment::crd()).expect("json");
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(columns, ["Ready", "Reason", "Function URL", "Container URL", "Rollout", "Age"]);
        assert_eq!(crd["spec"]["names"]["categories"], serde_json::json!(["blogs", "all"]));
    }

    #[test]
    fn every_field_is_documented() {
        let crd = serde_json::to_value(super::BlogDeployment::crd()).expect("json");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut missing = Vec::new();
        for part in ["spec", "status"] {
            undocumented(part, &schema["properties"][part], &mut missing);
        }
        // The schema's CPU enum is Fargate's table (crate::aws), which it cannot name itself.
        let cpus = &schema["properties"]["spec"]["properties"]["container"]["properties"]["cpu"]["enum"];
        assert_eq!(cpus, &serde_json::json!(crate::aws::fargate_cpus()));
        // Standard Kubernetes types document themselves through their own schema.
        missing.retain(|p| !p.starts_with("status.conditions[]."));
        assert!(missing.is_empty(), "fields without a description: {missing:#?}");
        let root = schema["description"].as_str().unwrap_or_default();
        assert!(!root.starts_with("Auto-generated"), "the root description is schemars' default: {root}");
    }

    /// Kubernetes 1.20's API server refuses an enum holding `null` (what schemars makes of an
    /// optional enum without a `schema_with`).
    #[test]
    fn no_enum_holds_null() {
        fn walk(at: &str, value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if map
                        .get("enum")
                        .and_then(|e| e.as_array())
                        .is_some_and(|e| e.iter().any(serde_json::Value::is_null))
                    {
                        found.push(at.to_owned());
                    }
                    for (key, inner) in map {
                        walk(&format!("{at}.{key}"), inner, found);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|inner| walk(at, inner, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk("", &serde_json::to_value(super::BlogDeployment::crd()).expect("json"), &mut found);
        assert!(found.is_empty(), "enums with null: {found:#?}");
    }
}
