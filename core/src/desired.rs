//! The full desired AWS state of one BlogDeployment: names, tags, policies and settings of every
//! resource. Pure: no client, no clock; the apply step compares it with what it observes.
//!
//! Names derive from namespace, name and UID only — never from the spec — so cleanup can find every
//! resource even when the spec is invalid or a variant was disabled, and a BlogDeployment deleted and
//! made again under the same name never adopts its predecessor's leftovers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::aws::Scope;
use crate::crd::{Architecture, BillingMode, BlogDeploymentSpec, DeletionPolicy, Tracing};
pub use crate::domain::{CertificateSource, ContainerTls, DesiredDomain};

pub use crate::owner::{MANAGED_BY, MANAGED_BY_TAG, OWNER_TAG, Owner, UID_TAG};

/// The shared variables with a variant's own on top.
#[must_use]
pub fn merged_env(shared: &BTreeMap<String, String>, own: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    shared.iter().chain(own).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Set to `true` on a table kept (`deletionPolicy: Retain`) when its BlogDeployment was deleted:
/// a BlogDeployment of the same namespace may take it back by naming it in `spec.table.name`.
pub const RETAINED_TAG: &str = "blogs.serverless.dev/retained";

/// What the operator may do with a table found under the name it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableClaim {
    /// This owner's table.
    Ours,
    /// Take it: retag it as this owner's.
    Adopt,
    /// Leave it alone; the message says why and what to do.
    Refuse(String),
}

/// Whether `owner` may use the table `name` that carries `tags` (`global`: DynamoDB lists replicas
/// of it, so it is part of a global table). A table it did not make is taken only when the spec
/// named it, no other BlogDeployment records it, it is no global table, and it was retained by a
/// BlogDeployment of the same namespace or carries none of the operator's tags and the spec says
/// `adoptUntagged`. Another namespace's table, or one still in use, is never taken; a refusal never
/// names another namespace's BlogDeployment.
#[must_use]
pub fn claim_table(owner: &Owner, table: &DesiredTable, tags: &BTreeMap<String, String>, global: bool) -> TableClaim {
    let name = &table.name;
    if owner.owns(tags) {
        return TableClaim::Ours;
    }
    if !table.named {
        return TableClaim::Refuse(format!("table {name} exists but is not tagged as this BlogDeployment's"));
    }
    if table.used_elsewhere {
        return TableClaim::Refuse(format!("table {name} is in use by another BlogDeployment"));
    }
    if global {
        return TableClaim::Refuse(format!(
            "table {name} is part of a global table (it has replicas in other regions); the operator never takes one"
        ));
    }
    let made_by = tags.get(OWNER_TAG).filter(|_| tags.get(MANAGED_BY_TAG).map(String::as_str) == Some(MANAGED_BY));
    let retained = tags.get(RETAINED_TAG).is_some_and(|v| v == "true");
    match made_by {
        Some(from) if from.split_once('/').map(|(ns, _)| ns) != Some(owner.namespace.as_str()) => {
            TableClaim::Refuse(format!(
                "table {name} was kept by a BlogDeployment of another namespace; only its own namespace can take it back"
            ))
        }
        Some(from) if !retained => {
            TableClaim::Refuse(format!("table {name} belongs to BlogDeployment {from}, which still uses it"))
        }
        Some(_) => TableClaim::Adopt,
        None if table.adopt_untagged => TableClaim::Adopt,
        None => TableClaim::Refuse(format!(
            "table {name} carries none of the operator's tags; set spec.table.adoptUntagged: true to take it over"
        )),
    }
}

/// Every name the operator uses for one owner, enabled or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub table: String,
    pub function: String,
    pub function_role: String,
    pub function_log_group: String,
    /// The Secrets Manager secret holding the write token.
    pub write_token_secret: String,
    pub api: String,
    pub cluster: String,
    pub service: String,
    pub task_family: String,
    pub execution_role: String,
    pub task_role: String,
    pub container_log_group: String,
    /// ALB and target group names: at most 32 characters.
    pub load_balancer: String,
    pub target_group: String,
    /// The second target group a progressive container rollout starts the new tasks in.
    pub alternate_target_group: String,
    /// The role ECS assumes to shift the production listener rule between the two target groups.
    pub infrastructure_role: String,
    pub lb_security_group: String,
    pub task_security_group: String,
}

/// Lowercase letters, digits and single hyphens; at most `max` characters, no hyphen at either end.
fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_end_matches('-').to_owned()
}

impl Names {
    #[must_use]
    pub fn for_owner(owner: &Owner) -> Self {
        let uid8: String = owner.uid.chars().filter(char::is_ascii_hexdigit).take(8).collect::<String>().to_lowercase();
        let who = format!("{}-{}", owner.namespace, owner.name);
        // IAM role names stop at 64 characters, Lambda function names at 64, ALB/TG names at 32.
        let base = format!("blog-{}-{uid8}", slug(&who, 40));
        let short = format!("b-{}-{uid8}", slug(&who, 20));
        let alternate = format!("g-{}-{uid8}", slug(&who, 20));
        Self {
            table: base.clone(),
            function: base.clone(),
            function_role: format!("{base}-fn"),
            function_log_group: format!("/aws/lambda/{base}"),
            write_token_secret: format!("{base}-write-token"),
            api: base.clone(),
            cluster: base.clone(),
            service: base.clone(),
            task_family: base.clone(),
            execution_role: format!("{base}-exec"),
            task_role: format!("{base}-task"),
            container_log_group: format!("/ecs/{base}"),
            load_balancer: short.clone(),
            target_group: short,
            alternate_target_group: alternate,
            infrastructure_role: format!("{base}-ecs"),
            lb_security_group: format!("{base}-alb"),
            task_security_group: format!("{base}-tasks"),
        }
    }

    /// The names in a placement region other than home. Only the roles change: IAM is global, so
    /// each region's roles (whose policies name that region's table and log groups) carry the
    /// region; every other resource is regional and keeps its name, and the table is the home
    /// table's replica under the same name.
    #[must_use]
    pub fn in_region(owner: &Owner, region: &str) -> Self {
        let code: String = region.chars().filter(char::is_ascii_alphanumeric).collect();
        let uid8: String = owner.uid.chars().filter(char::is_ascii_hexdigit).take(8).collect::<String>().to_lowercase();
        let who = slug(&format!("{}-{}", owner.namespace, owner.name), 40 - code.len().min(14) - 1);
        // At most 5 + 26 + 1 + 8 + 1 + 14 + 5 = 60 characters.
        let base = format!("blog-{who}-{uid8}-{code}");
        Self {
            function_role: format!("{base}-fn"),
            execution_role: format!("{base}-exec"),
            task_role: format!("{base}-task"),
            infrastructure_role: format!("{base}-ecs"),
            ..Self::for_owner(owner)
        }
    }
}

/// The DynamoDB table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTable {
    pub name: String,
    /// The spec named the table: a table found under that name may be taken back
    /// ([`claim_table`]) instead of refused.
    pub named: bool,
    /// A name the operator did not generate for this owner: the table must exist already (the
    /// operator creates tables only under its own names, so nobody squats another's).
    pub must_exist: bool,
    /// Another BlogDeployment records this table in its status: never taken.
    pub used_elsewhere: bool,
    pub adopt_untagged: bool,
    pub billing_mode: BillingMode,
    pub read_capacity_units: Option<i64>,
    pub write_capacity_units: Option<i64>,
    pub deletion_policy: DeletionPolicy,
    /// In a placement region other than home: the region of the table this one is a replica of.
    /// The replica is added through the home table (`UpdateTable`), never created here.
    pub replica_of: Option<String>,
}

/// Where the Lambda function's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionCode {
    Image(String),
    S3 { bucket: String, key: String },
}

/// The Lambda variant: role, log group, function and HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredFunction {
    pub name: String,
    pub role_name: String,
    pub log_group: String,
    pub api_name: String,
    pub code: FunctionCode,
    pub memory_mib: i32,
    pub timeout_seconds: i32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<i32>,
    pub provisioned_concurrency: Option<i32>,
    /// The HTTP API's throttling.
    pub throttle: crate::crd::ThrottleSpec,
    /// Its host on the user's domain (an API Gateway custom domain), if any.
    pub host: Option<String>,
    /// Lambda active tracing (X-Ray).
    pub tracing: bool,
    /// How the alias moves to a new version; none: at once (the build sets it for home).
    pub release: Option<crate::rollout::function::Release>,
}

/// The container variant: roles, log group, cluster, task definition, security groups, load
/// balancer, target group, listener and service.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredContainer {
    pub image: String,
    pub architecture: Architecture,
    pub cpu: i32,
    pub memory_mib: i32,
    pub port: i32,
    pub desired_count: i32,
    pub health_check_path: String,
    /// The VPC and subnets named in the spec; `None` means the region's default VPC.
    pub vpc_id: Option<String>,
    pub subnet_ids: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// The load balancer as the spec writes it: its scheme (`internal`), the CIDR blocks its
    /// security group admits, and what stands in front of it.
    pub load_balancer: crate::crd::LoadBalancerSpec,
    /// Environment variables ECS fills from Secrets Manager (name → secret ARN).
    pub secrets: BTreeMap<String, String>,
    /// Task-count scaling, planned in full; when set, Application Auto Scaling owns the running count.
    pub scaling: Option<crate::scaling::ScalingPlan>,
    /// HTTPS:443 with a certificate (HTTP:80 redirecting to it), or plain HTTP by the spec's choice.
    pub tls: ContainerTls,
    /// Its host on the user's domain (an alias of the load balancer), if any.
    pub host: Option<String>,
    /// An X-Ray daemon beside the blog in each task.
    pub tracing: bool,
    /// CloudWatch Container Insights on the cluster.
    pub container_insights: bool,
    /// How a new revision reaches readers; none: ECS's rolling deployment (the build sets it
    /// for home).
    pub release: Option<crate::rollout::function::Release>,
}

/// The one container in the task definition.
pub const CONTAINER_NAME: &str = "blog";
/// The load balancer's plain HTTP port (forwarding with `plainHttp`, else redirecting to HTTPS).
pub const LISTENER_PORT: i32 = 80;
/// The load balancer's HTTPS port.
pub const HTTPS_PORT: i32 = 443;

/// Everything one BlogDeployment should have in AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub region: String,
    pub owner: Owner,
    pub names: Names,
    pub tags: BTreeMap<String, String>,
    pub table: DesiredTable,
    pub function: Option<DesiredFunction>,
    pub container: Option<DesiredContainer>,
    /// The permissions boundary of the roles (an operator setting, not the spec's).
    pub role_permissions_boundary: Option<String>,
    /// The write token's secret, once it exists: see [`Desired::with_write_token`].
    pub write_token: Option<WriteTokenRef>,
    /// HTTPS on the user's domain: zone, hosts, certificate.
    pub domain: Option<DesiredDomain>,
    /// Days both variants' log groups keep logs.
    pub log_retention_days: i32,
    /// The region whose table takes the writes, when it is not this one's (`writes: Home`).
    pub writes_to: Option<String>,
    /// The CloudWatch namespace readers' beacons are written to, once they are on: see
    /// [`Desired::with_beacons`].
    pub beacons_namespace: Option<String>,
}

/// The write token's Secrets Manager secret, as it stands: the function reads it by ARN at start,
/// ECS injects it into the tasks, and the version in each variant's environment rolls both when it
/// changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTokenRef {
    pub secret_arn: String,
    pub version: String,
}

/// The environment variable that carries the token's version into both variants.
pub const WRITE_TOKEN_VERSION: &str = "WRITE_TOKEN_VERSION";

impl Desired {
    /// Sets `variables` in the environment of each variant this state runs: the settings both
    /// variants share (table, URLs, beacons).
    fn set_in_both<'a>(&mut self, variables: impl IntoIterator<Item = (&'a str, String)> + Clone) {
        let function = self.function.as_mut().map(|f| &mut f.environment);
        let container = self.container.as_mut().map(|c| &mut c.environment);
        for environment in [function, container].into_iter().flatten() {
            environment.extend(variables.clone().into_iter().map(|(name, value)| (name.to_owned(), value)));
        }
    }

    /// This desired state with the write token wired in: the function gets the secret's ARN (never
    /// the value), the container gets it through ECS `secrets`, both get its version.
    #[must_use]
    pub fn with_write_token(&self, token: WriteTokenRef) -> Self {
        let mut next = self.clone();
        if let Some(function) = next.function.as_mut() {
            function.environment.insert("WRITE_TOKEN_SECRET_ARN".to_owned(), token.secret_arn.clone());
            function.environment.insert(WRITE_TOKEN_VERSION.to_owned(), token.version.clone());
        }
        if let Some(container) = next.container.as_mut() {
            container.secrets.insert("WRITE_TOKEN".to_owned(), token.secret_arn.clone());
            container.environment.insert(WRITE_TOKEN_VERSION.to_owned(), token.version.clone());
        }
        next.write_token = Some(token);
        next
    }
}

impl Desired {
    /// The hosts of `spec.domain` (none without one).
    #[must_use]
    pub fn domain_hosts(&self) -> &[String] {
        self.domain.as_ref().map_or(&[], |d| &d.hosts)
    }
}

/// The environment variable naming the region whose table takes the writes (a placement with
/// `writes: Home`); reads stay on the region's own replica.
pub const TABLE_WRITE_REGION: &str = "TABLE_WRITE_REGION";

impl Desired {
    /// The desired state of a placement region other than home: the same stack, roles named for
    /// the region, and the table a replica of the home table (same name). With `writes_home`, both
    /// variants send their writes to the home region's table.
    #[must_use]
    pub fn in_region(&self, region: &str, writes_home: bool) -> Self {
        let mut next = self.clone();
        next.names = Names::in_region(&self.owner, region);
        next.table.replica_of = Some(self.region.clone());
        if let Some(function) = next.function.as_mut() {
            function.role_name.clone_from(&next.names.function_role);
            // Status records home's rollout only: other regions take a new version at once.
            function.release = None;
        }
        if let Some(container) = next.container.as_mut() {
            container.release = None;
        }
        if writes_home {
            next.writes_to = Some(self.region.clone());
            next.set_in_both([(TABLE_WRITE_REGION, self.region.clone())]);
        }
        region.clone_into(&mut next.region);
        next
    }
}

impl Desired {
    /// This desired state with only the variants `running` says run, of those enabled: a
    /// placement region pays for what serves there.
    #[must_use]
    pub fn running_only(mut self, (function, container): (bool, bool)) -> Self {
        if !function {
            self.function = None;
        }
        if !container {
            self.container = None;
        }
        self
    }
}

/// The two variants' public URLs, as far as their front doors (the HTTP API, the load balancer)
/// exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantUrls {
    pub functions: Option<String>,
    pub containers: Option<String>,
}

impl Desired {
    /// This desired state with both URLs in each variant's environment: the page offers both, and
    /// the service admits their origins by CORS. The front doors are made before the function and
    /// the task definition, so a first create publishes one version and registers one revision.
    #[must_use]
    pub fn with_urls(&self, urls: &VariantUrls) -> Self {
        let mut next = self.clone();
        let pairs = [("FUNCTIONS_URL", &urls.functions), ("CONTAINERS_URL", &urls.containers)];
        next.set_in_both(pairs.into_iter().filter_map(|(name, url)| Some((name, url.clone()?))));
        next
    }
}

/// Readers' beacons of a placement that decides from them (Recommend, Auto): the page times a
/// request to every candidate region and sends the round trips home, where the service adds them
/// up, counts only, into CloudWatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderBeacons {
    /// The namespace of the aggregates: [`readers_namespace`].
    pub namespace: String,
    /// The region whose CloudWatch holds them: home, where the operator reads them.
    pub region: String,
    /// Every candidate region, home first.
    pub candidates: Vec<String>,
    /// The URL each candidate is timed with, `{region}` standing for the candidate.
    pub probe_url: String,
}

/// What the page times in each candidate region unless the operator is told otherwise: DynamoDB's
/// regional `/ping`, public, free, and answering without credentials (the endpoint cloudping uses).
pub const DEFAULT_PROBE_URL: &str = "https://dynamodb.{region}.amazonaws.com/ping";

/// The CloudWatch namespace of one owner's reader beacons: its uid makes it its own, and the
/// roles' boundary admits a role to its owner's namespace only.
#[must_use]
pub fn readers_namespace(owner: &Owner) -> String {
    format!("BlogReaders/{}", owner.uid)
}

impl Desired {
    /// This desired state with readers' beacons on: both variants learn where to send what the
    /// page measures, and their roles may write that one namespace's metrics.
    #[must_use]
    pub fn with_beacons(&self, beacons: &ReaderBeacons) -> Self {
        let mut next = self.clone();
        next.set_in_both([
            ("READERS_NAMESPACE", beacons.namespace.clone()),
            ("READERS_REGION", beacons.region.clone()),
            ("READER_CANDIDATES", beacons.candidates.join(",")),
            ("READER_PROBE_URL", beacons.probe_url.clone()),
        ]);
        next.beacons_namespace = Some(beacons.namespace.clone());
        next
    }
}

/// Everything besides the spec and the owner that shapes the desired state: operator settings and
/// the sizes Auto allocation settled on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// Region for specs that name none.
    pub default_region: &'a str,
    /// The permissions boundary of every role (an operator setting, not the spec's).
    pub role_permissions_boundary: Option<&'a str>,
    /// In Auto mode, the sizes the allocation decided; they replace the spec's.
    pub auto_sizes: Option<&'a crate::crd::AllocationStatus>,
    /// The platform's network for specs that name none (the tenant policy's `network.default`).
    pub default_network: Option<&'a crate::crd::NetworkSpec>,
    /// The table this BlogDeployment already uses (from `status.resources.tableArn`): it stays the
    /// table when the spec stops naming one.
    pub recorded_table: Option<&'a str>,
    /// Another BlogDeployment records the table the spec names.
    pub table_used_elsewhere: bool,
}

impl<'a> Inputs<'a> {
    /// Only a default region: the spec's own sizes, no boundary.
    #[must_use]
    pub fn region(default_region: &'a str) -> Self {
        Self { default_region, ..Self::default() }
    }
}

/// The desired state of a validated spec: one pure call, final when it returns.
#[must_use]
pub fn desired(owner: &Owner, spec: &BlogDeploymentSpec, inputs: &Inputs<'_>) -> Desired {
    let mut desired = from_spec(owner, spec, inputs.default_region, inputs.recorded_table);
    desired.table.used_elsewhere = inputs.table_used_elsewhere;
    if let (Some(container), Some(network)) = (desired.container.as_mut(), inputs.default_network)
        && container.vpc_id.is_none()
        && container.subnet_ids.is_empty()
    {
        container.vpc_id.clone_from(&network.vpc_id);
        container.subnet_ids.clone_from(&network.subnet_ids);
    }
    desired.role_permissions_boundary = inputs.role_permissions_boundary.map(str::to_owned);
    if let Some(sizes) = inputs.auto_sizes {
        with_sizes(&mut desired, sizes);
    }
    desired
}

/// Auto's sizes in place of the spec's.
pub fn with_sizes(desired: &mut Desired, decided: &crate::crd::AllocationStatus) {
    if let (Some(function), Some(memory)) = (desired.function.as_mut(), decided.function_memory_mib) {
        function.memory_mib = memory;
    }
    if let Some(container) = desired.container.as_mut() {
        if let (Some(cpu), Some(memory)) = (decided.container_cpu, decided.container_memory_mib) {
            container.cpu = cpu;
            container.memory_mib = memory;
        }
        // With autoscaling on, the count is Application Auto Scaling's to set.
        if let (Some(tasks), None) = (decided.container_tasks, &container.scaling) {
            container.desired_count = tasks;
        }
    }
}

fn from_spec(owner: &Owner, spec: &BlogDeploymentSpec, default_region: &str, recorded_table: Option<&str>) -> Desired {
    let names = Names::for_owner(owner);
    let domain = crate::domain::desired_domain(owner, spec);
    let tracing = spec.observability.tracing == Tracing::XRay;
    // The spec's table, else the one in use (it stays when the spec stops naming one), else a new one.
    let table_name = spec.table.name.as_deref().or(recorded_table).map_or_else(|| names.table.clone(), str::to_owned);
    let table = DesiredTable {
        must_exist: table_name != names.table,
        name: table_name,
        named: spec.table.name.is_some(),
        used_elsewhere: false,
        adopt_untagged: spec.table.adopt_untagged,
        billing_mode: spec.table.billing_mode,
        read_capacity_units: spec.table.read_capacity_units,
        write_capacity_units: spec.table.write_capacity_units,
        deletion_policy: spec.table.deletion_policy,
        replica_of: None,
    };
    let function = desired_function(spec, (&names, &table.name), domain.as_ref(), tracing);
    let container = desired_container(spec, (&names, &table.name), domain.as_ref(), tracing);
    Desired {
        region: spec.home_region(default_region).to_owned(),
        owner: owner.clone(),
        // The user's cost tags, then the owner's: ownership cannot be overridden.
        tags: spec.tags.clone().into_iter().chain(owner.tags()).collect(),
        names,
        table,
        function,
        container,
        role_permissions_boundary: None,
        write_token: None,
        domain,
        log_retention_days: spec.observability.log_retention_days,
        writes_to: None,
        beacons_namespace: None,
    }
}

/// The function variant as the spec writes it, when enabled.
fn desired_function(
    spec: &BlogDeploymentSpec,
    (names, table): (&Names, &str),
    domain: Option<&DesiredDomain>,
    tracing: bool,
) -> Option<DesiredFunction> {
    spec.function_enabled().map(|f| DesiredFunction {
        release: None,
        name: names.function.clone(),
        role_name: names.function_role.clone(),
        log_group: names.function_log_group.clone(),
        api_name: names.api.clone(),
        code: match &f.code {
            Some(s3) => FunctionCode::S3 { bucket: s3.s3_bucket.clone(), key: s3.s3_key.clone() },
            None => FunctionCode::Image(f.image.clone().unwrap_or_else(|| spec.image.clone())),
        },
        memory_mib: f.memory_mib,
        timeout_seconds: f.timeout_seconds,
        architecture: f.architecture,
        environment: merged_env(&spec.env, &f.env)
            .into_iter()
            .chain([("TABLE_NAME".to_owned(), table.to_owned())])
            .collect(),
        reserved_concurrency: f.reserved_concurrency,
        provisioned_concurrency: f.provisioned_concurrency,
        throttle: f.throttle,
        host: domain.and_then(|d| d.function_host.clone()),
        tracing,
    })
}

/// The container variant as the spec writes it, when enabled.
fn desired_container(
    spec: &BlogDeploymentSpec,
    (names, table): (&Names, &str),
    domain: Option<&DesiredDomain>,
    tracing: bool,
) -> Option<DesiredContainer> {
    spec.container_enabled().map(|c| DesiredContainer {
        image: c.image.clone().unwrap_or_else(|| spec.image.clone()),
        architecture: c.architecture,
        cpu: c.cpu,
        memory_mib: c.memory_mib,
        port: c.port,
        desired_count: c.desired_count,
        health_check_path: c.health_check_path.clone(),
        load_balancer: c.load_balancer.clone(),
        secrets: BTreeMap::new(),
        vpc_id: c.network.vpc_id.clone(),
        subnet_ids: c.network.subnet_ids.clone(),
        scaling: c.autoscaling.as_ref().map(|a| crate::scaling::plan(&names.cluster, &names.service, a)),
        environment: merged_env(&spec.env, &c.env)
            .into_iter()
            .chain([("TABLE_NAME".to_owned(), table.to_owned()), ("PORT".to_owned(), c.port.to_string())])
            .collect(),
        tls: crate::domain::container_tls(spec, domain),
        host: domain.and_then(|d| d.container_host.clone()),
        tracing,
        container_insights: spec.observability.container_insights,
        release: None,
    })
}

/// The IAM path of every role the operator makes: the operator's own policy lets it create, pass
/// and change roles under this path only (and only with the permissions boundary attached).
pub const ROLE_PATH: &str = "/blog-operator/";

/// One IAM role as it should be: name, trust policy, inline policy, boundary (under [`ROLE_PATH`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRole {
    pub name: String,
    pub trust: Value,
    pub policy: Value,
    pub boundary: Option<String>,
}

/// The roles of the enabled variants, whose policies name ARNs that exist only once the table
/// does: built from the table's ARN, whose scope (partition, region, account) every ARN shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub function: Option<DesiredRole>,
    pub execution: Option<DesiredRole>,
    pub task: Option<DesiredRole>,
    /// The role ECS assumes to shift a progressive container rollout's traffic.
    pub infrastructure: Option<DesiredRole>,
}

impl Desired {
    /// The roles for a table at `table_arn` in `scope`. The function and execution roles may also
    /// read the write token's secret, once it is wired in; the task role (the app's own) never does.
    #[must_use]
    pub fn roles(&self, scope: &Scope, table_arn: &str) -> Roles {
        let token = self.write_token.as_ref().map(|t| t.secret_arn.as_str());
        // Writes sent to the home region's table need the same actions there.
        let home_table = self.writes_to.as_ref().map(|home| {
            let home = Scope { region: home.clone(), ..scope.clone() };
            home.arn("dynamodb", &format!("table/{}", self.table.name))
        });
        // Each role: whether it reads the write token, whether it runs the app (writes the beacons).
        let role = |name: &str, service: &str, mut policy: Value, (reads_token, runs_app): (bool, bool)| {
            let statements = policy["Statement"].as_array_mut().into_iter().flatten();
            let table_statement = statements.into_iter().find(|s| s["Sid"] == "BlogTable");
            if let (Some(arn), Some(tables)) = (&home_table, table_statement.and_then(|s| s["Resource"].as_array_mut()))
            {
                tables.extend([json!(arn), json!(format!("{arn}/index/*"))]);
            }
            if let (true, Some(arn), Some(statements)) = (reads_token, token, policy["Statement"].as_array_mut()) {
                statements.push(json!({"Sid": "WriteToken", "Effect": "Allow",
                                       "Action": ["secretsmanager:GetSecretValue"], "Resource": [arn]}));
            }
            if let (true, Some(namespace), Some(statements)) =
                (runs_app, &self.beacons_namespace, policy["Statement"].as_array_mut())
            {
                statements.push(beacons_statement(namespace));
            }
            DesiredRole {
                name: name.to_owned(),
                trust: trust_policy(service, &scope.account),
                policy,
                boundary: self.role_permissions_boundary.clone(),
            }
        };
        let function = self.function.as_ref().map(|f| {
            let logs = log_group_arn(scope, &f.log_group);
            let policy = with_tracing(function_policy(table_arn, &logs), f.tracing);
            role(&f.role_name, "lambda.amazonaws.com", policy, (true, true))
        });
        let logs = log_group_arn(scope, &self.names.container_log_group);
        let ecs = "ecs-tasks.amazonaws.com";
        let execution = self
            .container
            .as_ref()
            .map(|c| role(&self.names.execution_role, ecs, execution_policy(&logs, &c.image), (true, false)));
        let task = self
            .container
            .as_ref()
            .map(|c| role(&self.names.task_role, ecs, with_tracing(task_policy(table_arn), c.tracing), (false, true)));
        let infrastructure = self.container.as_ref().filter(|c| c.progressive()).map(|_| DesiredRole {
            name: self.names.infrastructure_role.clone(),
            // ECS documents this trust without a source condition for its infrastructure role.
            trust: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            policy: infrastructure_policy(scope, &self.names),
            boundary: self.role_permissions_boundary.clone(),
        });
        Roles { function, execution, task, infrastructure }
    }
}

impl DesiredContainer {
    /// A new revision rolls out under ECS's canary, linear or blue/green strategy (two target
    /// groups, the production listener rule, the infrastructure role), not its rolling one.
    #[must_use]
    pub fn progressive(&self) -> bool {
        self.release.as_ref().is_some_and(|r| crate::rollout::container::ecs_strategy(&r.policy).is_some())
    }
}

/// What ECS needs to run a progressive deployment of this owner's service (AWS's
/// `AmazonECSInfrastructureRolePolicyForLoadBalancers`, narrowed): read the load balancing, move
/// tasks between the two target groups, and shift this load balancer's listener rules.
#[must_use]
pub fn infrastructure_policy(scope: &Scope, names: &Names) -> Value {
    let elb = |resource: String| scope.arn("elasticloadbalancing", &resource);
    let balancer = &names.load_balancer;
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadLoadBalancing", "Effect": "Allow", "Resource": "*", "Action": [
                "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"]},
            {"Sid": "OwnTargetGroups", "Effect": "Allow",
             "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
             "Resource": [elb(format!("targetgroup/{}/*", names.target_group)),
                          elb(format!("targetgroup/{}/*", names.alternate_target_group))]},
            {"Sid": "OwnListenerRules", "Effect": "Allow",
             "Action": ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"],
             "Resource": [elb(format!("listener/app/{balancer}/*")), elb(format!("listener-rule/app/{balancer}/*"))]}
        ]
    })
}

/// Writing the metrics of readers' beacons to one namespace (`PutMetricData` has no resource; the
/// namespace is its only scope).
#[must_use]
pub fn beacons_statement(namespace: &str) -> Value {
    json!({"Sid": "ReaderBeacons", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
           "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}}})
}

/// The X-Ray actions a traced function or the X-Ray daemon needs (AWS's `AWSXRayDaemonWriteAccess`);
/// X-Ray has no resource-level permissions for them, so the resource is `*`.
pub const XRAY_ACTIONS: [&str; 4] =
    ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"];

/// `policy` with the X-Ray statement when tracing is on.
fn with_tracing(mut policy: Value, tracing: bool) -> Value {
    if let (true, Some(statements)) = (tracing, policy["Statement"].as_array_mut()) {
        statements.push(json!({"Sid": "XRay", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"}));
    }
    policy
}

/// The task role's policy: the blog's item actions on this one table and its index.
#[must_use]
pub fn task_policy(table_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "BlogTable", "Effect": "Allow", "Action": TABLE_ACTIONS,
             "Resource": [table_arn, format!("{table_arn}/index/*")]}
        ]
    })
}

/// The task execution role's policy: write the service's log group, and pull the image when it
/// lives in Amazon ECR (that one repository only; `GetAuthorizationToken` has no resource scope).
#[must_use]
pub fn execution_policy(log_group_arn: &str, image: &str) -> Value {
    let mut statements = vec![json!({
        "Sid": "OwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [format!("{log_group_arn}:*")]
    })];
    if let Some(repository) = ecr_repository_arn(image) {
        statements.push(
            json!({"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}),
        );
        statements.push(json!({
            "Sid": "PullImage", "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": [repository]
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The ARN of the ECR repository an image reference names, if it names one
/// (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`).
#[must_use]
pub fn ecr_repository_arn(image: &str) -> Option<String> {
    let found = crate::image::ecr_image(image)?;
    let (region, account, repository) = (&found.region, &found.account, &found.repository);
    let partition = crate::aws::partition_of_region(region);
    Some(format!("arn:{partition}:ecr:{region}:{account}:repository/{repository}"))
}

/// The item actions the blog service uses, and nothing else.
pub const TABLE_ACTIONS: [&str; 5] =
    ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"];

/// Trust policy letting one AWS service assume a role.
#[must_use]
pub fn trust_policy(service: &str, account: &str) -> Value {
    // `aws:SourceAccount`: the service may assume the role only on behalf of this account (the
    // confused-deputy guard AWS recommends for service roles).
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
                       "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]
    })
}

/// The function role's inline policy: the blog's item actions on this one table (and its list
/// index), and writing to its own log group.
#[must_use]
pub fn function_policy(table_arn: &str, log_group_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "BlogTable", "Effect": "Allow", "Action": TABLE_ACTIONS,
             "Resource": [table_arn, format!("{table_arn}/index/*")]},
            {"Sid": "OwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [format!("{log_group_arn}:*")]}
        ]
    })
}

/// The ARN of a log group from its name (`arn:<partition>:logs:<region>:<account>:log-group:<name>`).
#[must_use]
pub fn log_group_arn(scope: &Scope, name: &str) -> String {
    scope.arn("logs", &format!("log-group:{name}"))
}

/// The region inside an ARN (`arn:partition:service:region:account:...`).
#[must_use]
pub fn region_of_arn(arn: &str) -> Option<&str> {
    crate::aws::Arn::parse(arn).map(|a| a.region).filter(|r| !r.is_empty())
}

/// The table name in a DynamoDB table ARN (`...:table/<name>`).
#[must_use]
pub fn table_of_arn(arn: &str) -> Option<&str> {
    crate::aws::Arn::parse(arn)?.resource.strip_prefix("table/").filter(|n| !n.is_empty())
}

/// Whether a status records the table `name`, in its home region or any placement region.
#[must_use]
pub fn records_table(status: &crate::crd::BlogDeploymentStatus, name: &str) -> bool {
    let regions = status.placement.iter().flat_map(|p| &p.regions).map(|r| &r.resources);
    std::iter::once(&status.resources)
        .chain(regions)
        .filter_map(|r| r.table_arn.as_deref())
        .any(|arn| table_of_arn(arn) == Some(name))
}

/// The `execute-api` source ARN that may invoke the function: any stage, method and route of one API.
#[must_use]
pub fn api_source_arn(scope: &Scope, api_id: &str) -> String {
    scope.arn("execute-api", &format!("{api_id}/*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner { namespace: "blogs".into(), name: "demo".into(), uid: "1A2B3C4D-0000-4000-8000-000000000000".into() }
    }

    fn spec(yaml: &str) -> BlogDeploymentSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    #[test]
    fn a_named_table_is_taken_back_only_when_retained_here_or_untagged_and_asked() {
        let me = owner();
        let named = |adopt_untagged| DesiredTable {
            name: "blog-kept".into(),
            named: true,
            must_exist: true,
            used_elsewhere: false,
            adopt_untagged,
            billing_mode: BillingMode::PayPerRequest,
            read_capacity_units: None,
            write_capacity_units: None,
            deletion_policy: DeletionPolicy::Retain,
            replica_of: None,
        };
        let before = Owner { name: "old".into(), uid: "u0".into(), ..me.clone() };
        let mut kept = before.tags();
        kept.insert(RETAINED_TAG.into(), "true".into());
        assert_eq!(claim_table(&me, &named(false), &me.tags(), false), TableClaim::Ours);
        assert_eq!(claim_table(&me, &named(false), &kept, false), TableClaim::Adopt);
        let in_use = claim_table(&me, &named(false), &before.tags(), false);
        assert_eq!(
            in_use,
            TableClaim::Refuse(format!(
                "table blog-kept belongs to BlogDeployment {}/old, which still uses it",
                me.namespace
            ))
        );
        let elsewhere = Owner { namespace: "other".into(), ..before };
        let mut theirs = elsewhere.tags();
        theirs.insert(RETAINED_TAG.into(), "true".into());
        assert!(
            matches!(claim_table(&me, &named(false), &theirs, false), TableClaim::Refuse(m) if m.contains("another namespace"))
        );
        let untagged = BTreeMap::from([("team".to_owned(), "blue".to_owned())]);
        assert!(
            matches!(claim_table(&me, &named(false), &untagged, false), TableClaim::Refuse(m) if m.contains("adoptUntagged: true"))
        );
        assert_eq!(claim_table(&me, &named(true), &untagged, false), TableClaim::Adopt);
        let generated = DesiredTable { named: false, ..named(true) };
        assert!(
            matches!(claim_table(&me, &generated, &kept, false), TableClaim::Refuse(_)),
            "only a named table is taken"
        );
        // A replica (untagged in its region) and a table another BlogDeployment records: never taken.
        let replica = claim_table(&me, &named(true), &untagged, true);
        assert!(matches!(&replica, TableClaim::Refuse(m) if m.contains("part of a global table")), "{replica:?}");
        let recorded = DesiredTable { used_elsewhere: true, ..named(true) };
        let used = claim_table(&me, &recorded, &untagged, false);
        assert_eq!(used, TableClaim::Refuse("table blog-kept is in use by another BlogDeployment".into()));
    }

    #[test]
    fn only_the_generated_name_may_be_created() {
        let generated = desired(&owner(), &spec("image: b:1\nfunction: {}\n"), &Inputs::region("r"));
        assert!(!generated.table.must_exist);
        let named = desired(
            &owner(),
            &spec("image: b:1\nfunction: {}\ntable: {name: blog-team-b-blog-1a2b3c4d}\n"),
            &Inputs::region("r"),
        );
        assert!(named.table.must_exist, "a named table is never created: no squatting on another's name");
    }

    #[test]
    fn cost_tags_go_everywhere_but_never_replace_the_ownership_tags() {
        let d = desired(
            &owner(),
            &spec("image: b:1\nfunction: {}\ntags: {team: blog, 'blogs.serverless.dev/uid': forged}\n"),
            &Inputs::region("us-west-1"),
        );
        assert_eq!(d.tags.get("team").map(String::as_str), Some("blog"));
        assert_eq!(d.tags.get(UID_TAG), Some(&owner().uid), "validation refuses the key; the merge keeps ours anyway");
        assert!(owner().owns(&d.tags));
    }

    #[test]
    fn tracing_adds_x_ray_to_the_roles_and_the_observability_switches_reach_the_variants() {
        let scope = Scope { partition: "aws".into(), region: "us-west-1".into(), account: "123456789012".into() };
        let table = "arn:aws:dynamodb:us-west-1:123456789012:table/t";
        let plain = desired(&owner(), &spec("image: b:1\nfunction: {}\ncontainer: {}\n"), &Inputs::region("us-west-1"));
        let traced = desired(
            &owner(),
            &spec(
                "image: b:1\nfunction: {}\ncontainer: {}\nobservability: {tracing: XRay, logRetentionDays: 90, containerInsights: true}\n",
            ),
            &Inputs::region("us-west-1"),
        );
        let xray = |roles: &Roles| {
            [&roles.function, &roles.execution, &roles.task]
                .map(|r| r.as_ref().expect("role").policy.to_string().contains("xray:PutTraceSegments"))
        };
        assert_eq!(xray(&plain.roles(&scope, table)), [false, false, false]);
        assert_eq!(xray(&traced.roles(&scope, table)), [true, false, true], "the function and the task role only");
        assert_eq!((plain.log_retention_days, traced.log_retention_days), (14, 90));
        let container = traced.container.as_ref().expect("container");
        assert!(
            container.tracing && container.container_insights && traced.function.as_ref().is_some_and(|f| f.tracing)
        );
    }

    #[test]
    fn beacons_reach_both_variants_and_only_the_app_roles_write_their_namespace() {
        let scope = Scope { partition: "aws".into(), region: "us-west-1".into(), account: "123456789012".into() };
        let table = "arn:aws:dynamodb:us-west-1:123456789012:table/t";
        let plain = desired(&owner(), &spec("image: b:1\nfunction: {}\ncontainer: {}\n"), &Inputs::region("us-west-1"));
        let beacons = ReaderBeacons {
            namespace: readers_namespace(&owner()),
            region: "us-west-1".into(),
            candidates: vec!["us-west-1".into(), "eu-central-1".into()],
            probe_url: DEFAULT_PROBE_URL.into(),
        };
        let on = plain.with_beacons(&beacons);
        let writes = |roles: &Roles| {
            [&roles.function, &roles.execution, &roles.task].map(|r| {
                let statements = r.as_ref().expect("role").policy["Statement"].as_array().cloned().unwrap_or_default();
                statements.iter().any(|s| *s == beacons_statement(&beacons.namespace))
            })
        };
        assert_eq!(writes(&plain.roles(&scope, table)), [false, false, false]);
        assert_eq!(writes(&on.roles(&scope, table)), [true, false, true], "the function and the task role only");
        assert_eq!(beacons.namespace, format!("BlogReaders/{}", owner().uid));
        for environment in
            [&on.function.as_ref().expect("fn").environment, &on.container.as_ref().expect("ct").environment]
        {
            assert_eq!(environment.get("READER_CANDIDATES").map(String::as_str), Some("us-west-1,eu-central-1"));
            assert_eq!(environment.get("READERS_NAMESPACE"), Some(&beacons.namespace));
        }
    }

    #[test]
    fn both_urls_reach_both_variants_and_a_missing_one_is_left_out() {
        let d = desired(&owner(), &spec("image: b:1\nfunction: {}\ncontainer: {}\n"), &Inputs::region("us-west-1"));
        let urls = VariantUrls { functions: Some("https://a.example".into()), containers: None };
        let with = d.with_urls(&urls);
        for env in
            [&with.function.as_ref().expect("fn").environment, &with.container.as_ref().expect("ctr").environment]
        {
            assert_eq!(env.get("FUNCTIONS_URL").map(String::as_str), Some("https://a.example"));
            assert!(!env.contains_key("CONTAINERS_URL"));
        }
        let both = VariantUrls { functions: urls.functions, containers: Some("http://b.example".into()) };
        let env = &d.with_urls(&both).function.expect("fn").environment;
        assert_eq!(env.get("CONTAINERS_URL").map(String::as_str), Some("http://b.example"));
    }

    #[test]
    fn a_placement_region_has_its_own_roles_and_the_home_table_by_name() {
        let long = Owner {
            namespace: "a-very-long-namespace-name-for-testing".into(),
            name: "n".repeat(60),
            uid: owner().uid,
        };
        for region in ["eu-central-1", "ap-southeast-2", "us-gov-west-1"] {
            let names = Names::in_region(&long, region);
            let home = Names::for_owner(&long);
            for role in [&names.function_role, &names.execution_role, &names.task_role] {
                assert!(role.len() <= 64 && role.starts_with("blog-"), "{role}");
            }
            assert_ne!(names.function_role, home.function_role);
            assert_eq!((names.table, names.function), (home.table, home.function), "regional names stay");
        }
        assert_ne!(
            Names::in_region(&owner(), "eu-central-1").task_role,
            Names::in_region(&owner(), "eu-west-1").task_role
        );
    }

    #[test]
    fn names_are_deterministic_and_within_aws_limits() {
        let names = Names::for_owner(&owner());
        assert_eq!(names.table, "blog-blogs-demo-1a2b3c4d");
        assert_eq!(names.function_role, "blog-blogs-demo-1a2b3c4d-fn");
        assert_eq!(names.load_balancer, "b-blogs-demo-1a2b3c4d");
        assert_eq!(names.function_log_group, "/aws/lambda/blog-blogs-demo-1a2b3c4d");
        assert_eq!(Names::for_owner(&owner()), names);

        let long = Owner {
            namespace: "a-very-long-namespace-name-for-testing".into(),
            name: "Some.Blog_With--odd---characters-and-a-long-name-too".into(),
            uid: owner().uid,
        };
        let names = Names::for_owner(&long);
        for role in [&names.function_role, &names.execution_role, &names.task_role] {
            assert!(role.len() <= 64, "{role}");
        }
        assert!(names.function.len() <= 64);
        for short in [&names.load_balancer, &names.target_group] {
            assert!(short.len() <= 32 && !short.contains("--") && !short.ends_with('-'), "{short}");
        }
        assert!(names.table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }

    #[test]
    fn the_uid_separates_same_named_owners() {
        let again = Owner { uid: "ffffffff-0000-4000-8000-000000000000".into(), ..owner() };
        assert_ne!(Names::for_owner(&owner()).table, Names::for_owner(&again).table);
    }

    #[test]
    fn ownership_needs_both_tags() {
        let owner = owner();
        assert!(owner.owns(&owner.tags()));
        let mut other = owner.tags();
        other.insert(UID_TAG.into(), "someone-else".into());
        assert!(!owner.owns(&other));
        assert!(!owner.owns(&BTreeMap::new()));
    }

    #[test]
    fn desired_state_follows_the_spec() {
        let d = desired(
            &owner(),
            &spec("image: repo/blog:2\nfunction: {memoryMiB: 1024, timeoutSeconds: 30, architecture: x86_64}\n"),
            &Inputs::region("us-east-1"),
        );
        assert_eq!(d.region, "us-east-1");
        assert_eq!(d.table.deletion_policy, DeletionPolicy::Retain);
        let f = d.function.expect("function enabled");
        assert_eq!(f.code, FunctionCode::Image("repo/blog:2".into()));
        assert_eq!((f.memory_mib, f.timeout_seconds, f.architecture), (1024, 30, Architecture::X86_64));
        assert_eq!(f.environment["TABLE_NAME"], "blog-blogs-demo-1a2b3c4d");

        let s3 = desired(
            &owner(),
            &spec("image: blog:1\nregion: eu-west-1\nfunction: {code: {s3Bucket: b, s3Key: k.zip}}\n"),
            &Inputs::region("us-east-1"),
        );
        assert_eq!(s3.region, "eu-west-1");
        assert_eq!(s3.function.map(|f| f.code), Some(FunctionCode::S3 { bucket: "b".into(), key: "k.zip".into() }));
        assert!(
            desired(&owner(), &spec("image: b\nfunction: {enabled: false}\n"), &Inputs::region("r")).function.is_none()
        );
    }

    #[test]
    fn the_container_policies_name_only_their_table_logs_and_repository() {
        let table = "arn:aws:dynamodb:us-west-1:123456789012:table/blog-x";
        let task = task_policy(table);
        assert_eq!(task["Statement"].as_array().map(Vec::len), Some(1));
        let exec = execution_policy(
            "arn:aws:logs:us-west-1:1:log-group:/ecs/x",
            "123456789012.dkr.ecr.us-west-1.amazonaws.com/team/blog:1.0",
        );
        assert_eq!(
            exec["Statement"][2]["Resource"],
            json!(["arn:aws:ecr:us-west-1:123456789012:repository/team/blog"])
        );
        let public = execution_policy("arn:aws:logs:us-west-1:1:log-group:/ecs/x", "blog-service:1");
        assert_eq!(public["Statement"].as_array().map(Vec::len), Some(1), "no ECR rights for a non-ECR image");
        assert_eq!(
            ecr_repository_arn("1.dkr.ecr.eu-west-1.amazonaws.com/b@sha256:00").as_deref(),
            Some("arn:aws:ecr:eu-west-1:1:repository/b")
        );
    }

    #[test]
    fn the_container_follows_the_spec() {
        let d = desired(
            &owner(),
            &spec("image: repo/blog:2\ncontainer: {cpu: 512, memoryMiB: 1024, port: 9000}\n"),
            &Inputs::region("us-west-1"),
        );
        let c = d.container.expect("container enabled");
        assert_eq!((c.cpu, c.memory_mib, c.port, c.desired_count), (512, 1024, 9000, 2));
        assert_eq!(c.environment["PORT"], "9000");
        let images = spec("image: b:1\nfunction: {image: fn:1}\ncontainer: {image: ctr:1, architecture: x86_64}\n");
        let d3 = desired(&owner(), &images, &Inputs::region("us-west-1"));
        assert_eq!(d3.function.expect("function").code, FunctionCode::Image("fn:1".into()));
        let c3 = d3.container.expect("container");
        assert_eq!((c3.image.as_str(), c3.architecture), ("ctr:1", Architecture::X86_64));
        assert_eq!(c.architecture, Architecture::Arm64, "arm64 by default, as the function");
        let with_env =
            spec("image: b:1\nenv: {A: shared, B: shared}\nfunction: {env: {B: fn}}\ncontainer: {env: {C: tasks}}\n");
        let d2 = desired(&owner(), &with_env, &Inputs::region("us-west-1"));
        let f = d2.function.expect("function");
        assert_eq!((f.environment["A"].as_str(), f.environment["B"].as_str()), ("shared", "fn"));
        assert!(!f.environment.contains_key("C"));
        let c2 = d2.container.expect("container");
        assert_eq!((c2.environment["B"].as_str(), c2.environment["C"].as_str()), ("shared", "tasks"));
        assert_eq!(
            (c.load_balancer.internal, c.load_balancer.ingress_cidrs.as_slice()),
            (false, ["0.0.0.0/0".to_owned()].as_slice())
        );
        let inside = spec("image: b:1\ncontainer: {loadBalancer: {internal: true, ingressCidrs: [10.0.0.0/8]}}\n");
        let c = desired(&owner(), &inside, &Inputs::region("us-west-1")).container.expect("container");
        assert_eq!(
            (c.load_balancer.internal, c.load_balancer.ingress_cidrs.as_slice()),
            (true, ["10.0.0.0/8".to_owned()].as_slice())
        );
        assert_eq!(c.environment["TABLE_NAME"], d.names.table);
        assert!(d.function.is_none());
    }

    #[test]
    fn every_outside_input_is_in_the_one_call() {
        let sizes = crate::crd::AllocationStatus {
            function_memory_mib: Some(384),
            container_cpu: Some(512),
            container_memory_mib: Some(1024),
            container_tasks: Some(3),
            ..Default::default()
        };
        let inputs = Inputs {
            default_region: "us-west-1",
            role_permissions_boundary: Some("arn:aws:iam::123456789012:policy/b"),
            auto_sizes: Some(&sizes),
            default_network: None,
            recorded_table: Some("blog-kept"),
            table_used_elsewhere: false,
        };
        let d = desired(&owner(), &spec("image: blog:1\nfunction: {}\ncontainer: {}\n"), &inputs);
        assert_eq!(d.function.as_ref().map(|f| f.memory_mib), Some(384));
        // The table in use stays the table when the spec names none.
        assert_eq!(d.table.name, "blog-kept");
        assert_eq!(d.container.as_ref().map(|c| c.environment["TABLE_NAME"].as_str()), Some("blog-kept"));
        assert_eq!(d.container.as_ref().map(|c| (c.cpu, c.memory_mib, c.desired_count)), Some((512, 1024, 3)));
        let table = "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/blog-x";
        let roles = d.roles(&Scope::of_arn(table).expect("scope"), table);
        let all = [roles.function, roles.execution, roles.task].map(|r| r.expect("every variant's role"));
        assert!(!all[0].policy.to_string().contains("secretsmanager"), "no token wired in yet");
        let token = WriteTokenRef {
            secret_arn: "arn:aws:secretsmanager:us-west-1:1:secret:t-AbCdEf".into(),
            version: "v2".into(),
        };
        let wired = d.with_write_token(token);
        let f = wired.function.as_ref().expect("function");
        assert_eq!(f.environment["WRITE_TOKEN_SECRET_ARN"], "arn:aws:secretsmanager:us-west-1:1:secret:t-AbCdEf");
        assert!(!f.environment.contains_key("WRITE_TOKEN"), "never the value itself");
        let c = wired.container.as_ref().expect("container");
        assert_eq!(
            (c.secrets["WRITE_TOKEN"].as_str(), c.environment[WRITE_TOKEN_VERSION].as_str()),
            ("arn:aws:secretsmanager:us-west-1:1:secret:t-AbCdEf", "v2")
        );
        let wired_roles = wired.roles(&Scope::of_arn(table).expect("scope"), table);
        let reads =
            |r: Option<DesiredRole>| r.expect("role").policy.to_string().contains("secretsmanager:GetSecretValue");
        assert!(
            reads(wired_roles.function.clone())
                && reads(wired_roles.execution.clone())
                && !reads(wired_roles.task.clone())
        );
        assert!(all.iter().all(|r| r.boundary.as_deref() == Some("arn:aws:iam::123456789012:policy/b")));
        assert_eq!(all[0].trust["Statement"][0]["Principal"]["Service"], "lambda.amazonaws.com");
        assert_eq!(all[1].trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012");
        assert_eq!(
            all[1].policy["Statement"][0]["Resource"],
            json!([format!(
                "arn:aws-us-gov:logs:us-gov-west-1:123456789012:log-group:{}:*",
                d.names.container_log_group
            )])
        );
        assert_eq!(all[2].policy["Statement"][0]["Resource"][0], table);
        // Without the variant, no role.
        let only = desired(&owner(), &spec("image: blog:1\nfunction: {}\n"), &Inputs::region("us-west-1"));
        assert!(only.roles(&Scope::of_arn(table).expect("scope"), table).task.is_none());
    }

    #[test]
    fn the_function_policy_names_only_its_table_and_log_group() {
        let table = "arn:aws:dynamodb:us-west-1:123456789012:table/blog-x";
        let scope = Scope::of_arn(table).expect("scope");
        let logs = log_group_arn(&scope, "/aws/lambda/blog-x");
        let policy = function_policy(table, &logs);
        let statements = policy["Statement"].as_array().expect("statements");
        assert_eq!(statements[0]["Resource"], json!([table, format!("{table}/index/*")]));
        assert_eq!(statements[0]["Action"].as_array().map(Vec::len), Some(5));
        assert!(
            !policy.to_string().contains('*') || policy.to_string().matches('*').count() == 2,
            "no wildcard actions"
        );
        assert_eq!(
            statements[1]["Resource"],
            json!(["arn:aws:logs:us-west-1:123456789012:log-group:/aws/lambda/blog-x:*"])
        );
        assert_eq!(api_source_arn(&scope, "abc"), "arn:aws:execute-api:us-west-1:123456789012:abc/*");
        // GovCloud: the partition comes from the table's real ARN, never a hard-coded `aws`.
        let gov = Scope::of_arn("arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/blog-x").expect("scope");
        assert_eq!(api_source_arn(&gov, "abc"), "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:abc/*");
        assert!(log_group_arn(&gov, "/ecs/x").starts_with("arn:aws-us-gov:logs:us-gov-west-1:"));
        assert_eq!(
            ecr_repository_arn("123456789012.dkr.ecr.us-gov-west-1.amazonaws.com/blog:1").as_deref(),
            Some("arn:aws-us-gov:ecr:us-gov-west-1:123456789012:repository/blog")
        );
    }
}
