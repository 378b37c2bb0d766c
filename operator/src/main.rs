//! Runs the BlogDeployment operator: the controller plus the admin server.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use blog_operator::cli::{Args, IamDocument, LogFormat};
use blog_operator::cloud::Cloud;
use blog_operator::controller::{self, Context, Settings};
use blog_operator::leader;
use blog_operator::metrics::Metrics;
use clap::Parser;

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
        reader_probe_url: args.reader_probe_url.clone(),
        container_readiness: args.container_readiness.into(),
        prices: match &args.prices {
            Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)
                .map_err(|e| anyhow::anyhow!("{}: not a price table: {e}", path.display()))?,
            None => blog_operator::allocation::pricing::PriceTable::default(),
        },
        role_permissions_boundary: args.role_permissions_boundary.clone(),
        tenant_policy: tenant_policy(args)?,
    })
}

/// The policy file, or anything goes when asked for explicitly; never a silent "allow all".
fn tenant_policy(args: &Args) -> anyhow::Result<blog_operator::tenancy::TenantPolicy> {
    use blog_operator::tenancy::TenantPolicy;
    match &args.tenant_policy {
        Some(path) => TenantPolicy::parse(&std::fs::read_to_string(path)?)
            .map_err(|e| anyhow::anyhow!("{}: not a tenant policy: {e}", path.display())),
        None if args.allow_any_tenant_spec => Ok(TenantPolicy::open()),
        None => Err(anyhow::anyhow!(
            "no tenant policy: pass --tenant-policy FILE (the platform's guardrails on every BlogDeployment), or \
             --allow-any-tenant-spec to let every spec use any region, image, domain and table"
        )),
    }
}

/// The shipped IAM document narrowed to the tenant policy, on stdout.
fn print_iam_policy(document: IamDocument, policy: &blog_operator::tenancy::TenantPolicy) -> anyhow::Result<()> {
    use blog_operator::iam_policy::{operator_policy, role_boundary, scope};
    let scope = scope(policy);
    let rendered = match document {
        IamDocument::Operator => operator_policy(&scope),
        IamDocument::Boundary => role_boundary(&scope),
    };
    println!("{}", serde_json::to_string_pretty(&rendered)?);
    Ok(())
}

/// The admission webhook when an address is given; otherwise a future that never ends.
async fn webhook(args: &Args, settings: &Settings) -> anyhow::Result<()> {
    match args.webhook_addr {
        Some(addr) => blog_operator::webhook::serve(addr, &args.webhook_cert_dir, settings.clone()).await,
        None => std::future::pending().await,
    }
}

/// Runs the controller until `stop`: at once, or while holding the Lease when leader election is
/// on, which it gives up when it stops so that a follower takes over at once.
async fn run(args: &Args, ctx: Arc<Context>, client: kube::Client, stop: controller::Stop) -> anyhow::Result<()> {
    let namespaces = &args.namespace;
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    if !args.leader_election {
        controller::run(ctx, namespaces, stop, grace).await;
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
    tokio::select! {
        () = election.acquire(&leases) => {}
        // A follower has nothing to hand over.
        () = stop.clone() => return Ok(()),
    }
    tokio::select! {
        () = controller::run(ctx, namespaces, stop, grace) => {
            election.release(&leases).await;
            Ok(())
        }
        // Stop at once: another replica may act from now on.
        () = election.hold(&leases) => Err(anyhow::anyhow!("lost leadership; exiting so that only the leader acts")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(document) = args.print_iam_policy {
        return print_iam_policy(document, &tenant_policy(&args)?);
    }
    let stop = controller::stop_signal()?;
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
    let cloud = cloud.with_read_periods(blog_operator::cloud::inventory::ReadPeriods {
        listing: settings.resync,
        deep: settings.resync * args.deep_read_resyncs.max(1),
    });
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
        peers: blog_operator::peers::Peers::default(),
    });
    let admin = tokio::spawn(blog_operator::admin::serve(args.admin_addr, args.metrics_addr, metrics, client.clone()));
    // Every replica answers admission requests, leader or not.
    let settings = ctx.settings.clone();
    let webhook = webhook(&args, &settings);
    tokio::select! {
        result = run(&args, ctx, client, stop) => result?,
        result = admin => result??,
        result = webhook => result?,
    }
    tracing::info!("stopped");
    Ok(())
}
