//! Runs the BlogDeployment operator: the controller plus the admin server.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blog_operator::cloud::Cloud;
use blog_operator::controller::{self, Context, Settings};
use blog_operator::leader;
use blog_operator::metrics::Metrics;
use clap::Parser;

/// Kubernetes operator that runs a blog on AWS as Lambda + API Gateway and ECS Fargate + ALB.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Region for BlogDeployments that name none; defaults to the AWS configuration's region.
    #[arg(long, env = "BLOG_OPERATOR_DEFAULT_REGION")]
    default_region: Option<String>,
    /// Seconds between checks of a healthy BlogDeployment against AWS (drift repair).
    #[arg(long, env = "BLOG_OPERATOR_RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
    /// Seconds before the first retry of a failed or still-progressing reconcile; each object then
    /// backs off exponentially, with jitter.
    #[arg(long, env = "BLOG_OPERATOR_RETRY_SECONDS", default_value_t = 5)]
    retry_seconds: u64,
    /// The longest backoff, in seconds, after repeated failures that clear up by themselves
    /// (throttling, outages); jitter adds up to as much again.
    #[arg(long, env = "BLOG_OPERATOR_RETRY_MAX_SECONDS", default_value_t = 300)]
    retry_max_seconds: u64,
    /// Seconds a placement region leaving stays out of latency routing before its records and stack
    /// are removed: the records' TTL (Route 53 aliases of API Gateway and ELB answer with 60 s).
    #[arg(long, env = "BLOG_OPERATOR_PLACEMENT_DRAIN_SECONDS", default_value_t = 60)]
    placement_drain_seconds: u64,
    /// Seconds one attempt of an AWS call may take (connect, send, read the whole answer).
    #[arg(long, env = "BLOG_OPERATOR_AWS_ATTEMPT_TIMEOUT_SECONDS", default_value_t = 20)]
    aws_attempt_timeout_seconds: u64,
    /// Seconds an AWS call may take with the SDK's own retries (3 attempts).
    #[arg(long, env = "BLOG_OPERATOR_AWS_OPERATION_TIMEOUT_SECONDS", default_value_t = 60)]
    aws_operation_timeout_seconds: u64,
    /// The AWS call budget: calls per second to each AWS service, shared by all workers (a call
    /// over it waits its turn); 0 turns the budget off.
    #[arg(long, env = "BLOG_OPERATOR_AWS_CALLS_PER_SECOND", default_value_t = blog_operator::cloud::budget::DEFAULT_PER_SECOND)]
    aws_calls_per_second: f64,
    /// A service's own budget, `SERVICE=CALLS_PER_SECOND` by AWS signing name (`route53=5`,
    /// `elasticloadbalancing=8`), over the built-in ones (route53, logs, apigateway and acm: 5).
    #[arg(long, env = "BLOG_OPERATOR_AWS_CALLS_PER_SECOND_FOR", value_delimiter = ',', value_parser = service_rate)]
    aws_calls_per_second_for: Vec<(String, f64)>,
    /// BlogDeployments reconciled at once.
    #[arg(long, env = "BLOG_OPERATOR_CONCURRENCY", default_value_t = 4)]
    concurrency: u16,
    /// Address of the probes (/healthz, /readyz).
    #[arg(long, env = "BLOG_OPERATOR_ADMIN_ADDR", default_value = "0.0.0.0:8081")]
    admin_addr: SocketAddr,
    /// Address of /metrics, apart from the probes (e.g. 127.0.0.1:8082 to keep it in the pod).
    #[arg(long, env = "BLOG_OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8082")]
    metrics_addr: SocketAddr,
    /// Serve the validating admission webhook (`/validate`, HTTPS) on this address, in every replica.
    #[arg(long, env = "BLOG_OPERATOR_WEBHOOK_ADDR")]
    webhook_addr: Option<SocketAddr>,
    /// The folder with the webhook's `tls.crt` and `tls.key`.
    #[arg(long, env = "BLOG_OPERATOR_WEBHOOK_CERT_DIR", default_value = "/etc/blog-operator-webhook")]
    webhook_cert_dir: std::path::PathBuf,
    /// When the container variant counts as ready: `running` (every desired task runs, rollout
    /// COMPLETED) or `provisioned` (its resources exist; for emulators, which never run tasks).
    #[arg(long, env = "BLOG_OPERATOR_CONTAINER_READINESS", value_enum, default_value = "running")]
    container_readiness: Readiness,
    /// A JSON file of unit prices overriding the defaults (us-east-1 public prices), e.g. mounted
    /// from a ConfigMap: {"fargateVcpuHour": 0.04656, ...}.
    #[arg(long, env = "BLOG_OPERATOR_PRICES")]
    prices: Option<std::path::PathBuf>,
    /// An IAM policy ARN set as the permissions boundary of every role the operator creates, so
    /// that no role it makes can hold more than the boundary allows, whatever its inline policy.
    /// Required, unless --allow-roles-without-boundary opts out.
    #[arg(long, env = "BLOG_OPERATOR_ROLE_PERMISSIONS_BOUNDARY", value_parser = policy_arn)]
    role_permissions_boundary: Option<String>,
    /// Explicit opt-out: create roles without a permissions boundary (emulators, or an account whose
    /// own IAM policy bounds the operator). The shipped operator policy refuses such roles.
    #[arg(long, env = "BLOG_OPERATOR_ALLOW_ROLES_WITHOUT_BOUNDARY", conflicts_with = "role_permissions_boundary")]
    allow_roles_without_boundary: bool,
    /// The platform team's guardrails (YAML or JSON): allowed regions, image prefixes, code buckets
    /// and networks, size ceilings, load-balancer exposure. A spec outside them is refused with
    /// reason PolicyViolation before any AWS call.
    #[arg(long, env = "BLOG_OPERATOR_TENANT_POLICY")]
    tenant_policy: Option<std::path::PathBuf>,
    /// Watch only these namespaces (comma-separated; all namespaces when unset).
    #[arg(long, env = "BLOG_OPERATOR_NAMESPACE", value_delimiter = ',')]
    namespace: Vec<String>,
    /// Reconcile only while holding a Lease, so that of several replicas exactly one acts.
    #[arg(long, env = "BLOG_OPERATOR_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the Lease (the operator's own namespace in the chart).
    #[arg(long, env = "BLOG_OPERATOR_LEASE_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, env = "BLOG_OPERATOR_LEASE_NAME", default_value = "blog-operator")]
    lease_name: String,
    /// Seconds a Lease stays valid without renewal: the longest a handover can take.
    #[arg(long, env = "BLOG_OPERATOR_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// `json` (one object a line, for log pipelines) or `text` (for people); anything else is refused.
    #[arg(long, env = "BLOG_OPERATOR_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
}

/// The command line's spelling of [`blog_operator::status::ContainerReadiness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Readiness {
    Running,
    Provisioned,
}

impl From<Readiness> for blog_operator::status::ContainerReadiness {
    fn from(readiness: Readiness) -> Self {
        match readiness {
            Readiness::Running => Self::Running,
            Readiness::Provisioned => Self::Provisioned,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

/// `arn:<partition>:iam::<account>:policy/<path/name>`.
fn policy_arn(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit()) || parts[4] == "aws")
        && parts[5].strip_prefix("policy/").is_some_and(|name| !name.is_empty());
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err("not an IAM policy ARN (arn:aws:iam::123456789012:policy/name)".into())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "blog-operator".to_owned(), |h| h.trim().to_owned())
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,aws=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// Every role the operator creates carries a boundary, unless the operator is told not to.
fn require_boundary(args: &Args) -> anyhow::Result<()> {
    if args.role_permissions_boundary.is_none() && !args.allow_roles_without_boundary {
        anyhow::bail!(
            "no --role-permissions-boundary: every role the operator creates carries one (the policy of \
             manifests/iam/role-boundary.json); pass --allow-roles-without-boundary to opt out explicitly"
        );
    }
    Ok(())
}

fn settings(args: &Args, cloud: &Cloud) -> anyhow::Result<Settings> {
    let default_region = args
        .default_region
        .clone()
        .or_else(|| cloud.default_region())
        .ok_or_else(|| anyhow::anyhow!("no default region: pass --default-region or set AWS_REGION"))?;
    Ok(Settings {
        default_region,
        resync: Duration::from_secs(args.resync_seconds),
        retry: Duration::from_secs(args.retry_seconds),
        retry_max: Duration::from_secs(args.retry_max_seconds),
        placement_drain: Duration::from_secs(args.placement_drain_seconds),
        container_readiness: args.container_readiness.into(),
        prices: match &args.prices {
            Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)
                .map_err(|e| anyhow::anyhow!("{}: not a price table: {e}", path.display()))?,
            None => blog_operator::allocation::pricing::PriceTable::default(),
        },
        role_permissions_boundary: args.role_permissions_boundary.clone(),
        tenant_policy: match &args.tenant_policy {
            Some(path) => serde_saphyr::from_str(&std::fs::read_to_string(path)?)
                .map_err(|e| anyhow::anyhow!("{}: not a tenant policy: {e}", path.display()))?,
            None => blog_operator::tenancy::TenantPolicy::default(),
        },
    })
}

/// The admission webhook when an address is given; otherwise a future that never ends.
async fn webhook(args: &Args, settings: &Settings) -> anyhow::Result<()> {
    match args.webhook_addr {
        Some(addr) => blog_operator::webhook::serve(addr, &args.webhook_cert_dir, settings.clone()).await,
        None => std::future::pending().await,
    }
}

/// Runs the controller: at once, or while holding the Lease when leader election is on.
async fn run(args: &Args, ctx: Arc<Context>, client: kube::Client) -> anyhow::Result<()> {
    let namespaces = &args.namespace;
    if !args.leader_election {
        controller::run(ctx, namespaces).await;
        return Ok(());
    }
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id()));
    let election = leader::Election {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity,
        lease_duration: Duration::from_secs(args.lease_duration_seconds),
        renew: Duration::from_secs((args.lease_duration_seconds / 3).max(1)),
    };
    let leases = kube::Api::namespaced(client, &election.namespace);
    election.acquire(&leases).await;
    tokio::select! {
        // Asked to stop (SIGTERM): the reconciles in flight have finished; hand over at once.
        () = controller::run(ctx, namespaces) => {
            election.release(&leases).await;
            Ok(())
        }
        // Stop at once: another replica may act from now on.
        () = election.hold(&leases) => Err(anyhow::anyhow!("lost leadership; exiting so that only the leader acts")),
    }
}

/// `SERVICE=CALLS_PER_SECOND`, a positive rate.
fn service_rate(text: &str) -> Result<(String, f64), String> {
    let (service, rate) = text.split_once('=').ok_or("expected SERVICE=CALLS_PER_SECOND")?;
    let rate: f64 = rate.parse().map_err(|e| format!("{rate}: {e}"))?;
    if service.is_empty() || !rate.is_finite() || rate <= 0.0 {
        return Err("expected a service name and a positive rate".to_owned());
    }
    Ok((service.to_owned(), rate))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(args.log_format);
    require_boundary(&args)?;
    let metrics = Metrics::default();
    let client = kube::Client::try_default().await?;
    let timeouts = blog_operator::cloud::Timeouts {
        attempt: Duration::from_secs(args.aws_attempt_timeout_seconds),
        operation: Duration::from_secs(args.aws_operation_timeout_seconds),
    };
    // The built-in limits only ever lower the default; a service named on the command line wins.
    let mut limits = blog_operator::cloud::budget::built_in_limits();
    limits.values_mut().for_each(|rate| *rate = rate.min(args.aws_calls_per_second));
    limits.extend(args.aws_calls_per_second_for.iter().cloned());
    let budget = blog_operator::cloud::budget::Budget::new(args.aws_calls_per_second, limits, metrics.clone());
    let cloud = if args.aws_calls_per_second > 0.0 {
        Cloud::from_env(metrics.clone(), timeouts, Some(budget)).await?
    } else {
        Cloud::from_env(metrics.clone(), timeouts, None).await?
    };
    let settings = settings(&args, &cloud)?;
    let (failures, waits) = Context::backoffs(&settings);
    tracing::info!(?settings, concurrency = args.concurrency, "starting");
    let ctx = Arc::new(Context {
        recorder: controller::recorder(client.clone()),
        client: client.clone(),
        cloud,
        metrics: metrics.clone(),
        settings,
        metrics_cache: blog_operator::allocation::MetricsCache::default(),
        failures,
        waits,
        workers: controller::Workers::new(args.concurrency),
    });
    let admin = tokio::spawn(blog_operator::admin::serve(args.admin_addr, args.metrics_addr, metrics, client.clone()));
    // Every replica answers admission requests, leader or not.
    let settings = ctx.settings.clone();
    let webhook = webhook(&args, &settings);
    tokio::select! {
        result = run(&args, ctx, client) => result?,
        result = admin => result??,
        result = webhook => result?,
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::policy_arn;

    #[test]
    fn permissions_boundaries_are_policy_arns() {
        for ok in [
            "arn:aws:iam::123456789012:policy/blog-boundary",
            "arn:aws:iam::123456789012:policy/teams/blog/boundary",
            "arn:aws-us-gov:iam::123456789012:policy/b",
            "arn:aws:iam::aws:policy/PowerUserAccess",
        ] {
            assert_eq!(policy_arn(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "blog-boundary",
            "arn:aws:iam::123456789012:role/blog",
            "arn:aws:iam::12345:policy/b",
            "arn:aws:iam::123456789012:policy/",
            "arn:aws:s3:::bucket",
        ] {
            assert!(policy_arn(bad).is_err(), "{bad}");
        }
    }
}
