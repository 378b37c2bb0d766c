//! The operator's command line: every setting as a flag and an environment variable (clap), so the
//! binary parses it and the book's reference lists it from one definition.

use std::net::SocketAddr;

use clap::Parser;

/// Kubernetes operator that runs a blog on AWS as Lambda + API Gateway and ECS Fargate + ALB.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Region for BlogDeployments that name none; defaults to the AWS configuration's region.
    #[arg(long, env = "BLOG_OPERATOR_DEFAULT_REGION")]
    pub default_region: Option<String>,
    /// Seconds between checks of a healthy BlogDeployment against AWS (drift repair).
    #[arg(long, env = "BLOG_OPERATOR_RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,
    /// Resync periods between full reads of what no listing shows (a role's inline policy, a
    /// function's alias and reserved concurrency): drift there is repaired within this many
    /// periods, drift a listing shows within one. 1 reads everything at every resync.
    #[arg(long, env = "BLOG_OPERATOR_DEEP_READ_RESYNCS", default_value_t = crate::cloud::inventory::DEFAULT_DEEP_READ_RESYNCS)]
    pub deep_read_resyncs: u32,
    /// Seconds before the first retry of a failed or still-progressing reconcile; each object then
    /// backs off exponentially, with jitter.
    #[arg(long, env = "BLOG_OPERATOR_RETRY_SECONDS", default_value_t = 5)]
    pub retry_seconds: u64,
    /// The longest backoff, in seconds, after repeated failures that clear up by themselves
    /// (throttling, outages); jitter adds up to as much again.
    #[arg(long, env = "BLOG_OPERATOR_RETRY_MAX_SECONDS", default_value_t = 300)]
    pub retry_max_seconds: u64,
    /// Seconds a placement region leaving stays out of latency routing before its records and stack
    /// are removed: the records' TTL (Route 53 aliases of API Gateway and ELB answer with 60 s).
    #[arg(long, env = "BLOG_OPERATOR_PLACEMENT_DRAIN_SECONDS", default_value_t = 60)]
    pub placement_drain_seconds: u64,
    /// The URL a reader's page times in each candidate region of a placement that decides from
    /// readers' beacons, `{region}` standing for the region: DynamoDB's public `/ping` by default,
    /// which costs nothing and needs no credentials. A relative URL is timed against the page's own
    /// server (the local stack, where every region is on loopback).
    #[arg(long, env = "BLOG_OPERATOR_READER_PROBE_URL", default_value = blog_core::desired::DEFAULT_PROBE_URL, value_parser = probe_url)]
    pub reader_probe_url: String,
    /// Seconds one attempt of an AWS call may take (connect, send, read the whole answer).
    #[arg(long, env = "BLOG_OPERATOR_AWS_ATTEMPT_TIMEOUT_SECONDS", default_value_t = 20)]
    pub aws_attempt_timeout_seconds: u64,
    /// Seconds an AWS call may take with the SDK's own retries (3 attempts).
    #[arg(long, env = "BLOG_OPERATOR_AWS_OPERATION_TIMEOUT_SECONDS", default_value_t = 60)]
    pub aws_operation_timeout_seconds: u64,
    /// The AWS call budget: calls per second to each AWS service, shared by all workers (a call
    /// over it waits its turn); 0 turns the budget off.
    #[arg(long, env = "BLOG_OPERATOR_AWS_CALLS_PER_SECOND", default_value_t = crate::cloud::budget::DEFAULT_PER_SECOND)]
    pub aws_calls_per_second: f64,
    /// A service's own budget, `SERVICE=CALLS_PER_SECOND` by AWS signing name (`route53=5`,
    /// `elasticloadbalancing=8`), over the built-in ones (route53: 2, of the account's 5; logs,
    /// apigateway and acm: 5).
    #[arg(long, env = "BLOG_OPERATOR_AWS_CALLS_PER_SECOND_FOR", value_delimiter = ',', value_parser = service_rate)]
    pub aws_calls_per_second_for: Vec<(String, f64)>,
    /// BlogDeployments reconciled at once.
    #[arg(long, env = "BLOG_OPERATOR_CONCURRENCY", default_value_t = 4)]
    pub concurrency: u16,
    /// Address of the probes (/healthz, /readyz).
    #[arg(long, env = "BLOG_OPERATOR_ADMIN_ADDR", default_value = "0.0.0.0:8081")]
    pub admin_addr: SocketAddr,
    /// Address of /metrics, apart from the probes (e.g. 127.0.0.1:8082 to keep it in the pod).
    #[arg(long, env = "BLOG_OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8082")]
    pub metrics_addr: SocketAddr,
    /// Serve the validating admission webhook (`/validate`, HTTPS) on this address, in every replica.
    #[arg(long, env = "BLOG_OPERATOR_WEBHOOK_ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// The folder with the webhook's `tls.crt` and `tls.key`.
    #[arg(long, env = "BLOG_OPERATOR_WEBHOOK_CERT_DIR", default_value = "/etc/blog-operator-webhook")]
    pub webhook_cert_dir: std::path::PathBuf,
    /// When the container variant counts as ready: `running` (every desired task runs, rollout
    /// COMPLETED) or `provisioned` (its resources exist; for emulators, which never run tasks).
    #[arg(long, env = "BLOG_OPERATOR_CONTAINER_READINESS", value_enum, default_value = "running")]
    pub container_readiness: Readiness,
    /// A JSON file of unit prices overriding the defaults (us-east-1 public prices), e.g. mounted
    /// from a ConfigMap: {"fargateVcpuHour": 0.04656, ..., "regions": {"sa-east-1": {...}}}, a
    /// region's own table under `regions`.
    #[arg(long, env = "BLOG_OPERATOR_PRICES")]
    pub prices: Option<std::path::PathBuf>,
    /// An IAM policy ARN set as the permissions boundary of every role the operator creates, so
    /// that no role it makes can hold more than the boundary allows, whatever its inline policy.
    /// Required, unless --allow-roles-without-boundary opts out.
    #[arg(long, env = "BLOG_OPERATOR_ROLE_PERMISSIONS_BOUNDARY", value_parser = policy_arn)]
    pub role_permissions_boundary: Option<String>,
    /// Explicit opt-out: create roles without a permissions boundary (emulators, or an account whose
    /// own IAM policy bounds the operator). The shipped operator policy refuses such roles.
    #[arg(long, env = "BLOG_OPERATOR_ALLOW_ROLES_WITHOUT_BOUNDARY", conflicts_with = "role_permissions_boundary")]
    pub allow_roles_without_boundary: bool,
    /// The platform team's guardrails (YAML or JSON): allowed regions, image prefixes, code buckets
    /// and networks, domains, certificates, tag keys, table adoption, size ceilings and counts,
    /// load-balancer exposure, and a namespace's own rules. A spec outside them is refused with
    /// reason PolicyViolation before any AWS call. Required, unless --allow-any-tenant-spec.
    #[arg(long, env = "BLOG_OPERATOR_TENANT_POLICY")]
    pub tenant_policy: Option<std::path::PathBuf>,
    /// Explicit opt-out of a tenant policy: every spec may use any region, image, domain,
    /// certificate or table (one team's own cluster, the local demo and the tests).
    #[arg(long, env = "BLOG_OPERATOR_ALLOW_ANY_TENANT_SPEC", conflicts_with = "tenant_policy")]
    pub allow_any_tenant_spec: bool,
    /// Print the IAM policy (`operator`) or the roles' boundary (`boundary`) narrowed to the tenant
    /// policy (record names to its host suffixes, regions, ECR repositories), then exit.
    #[arg(long, value_enum)]
    pub print_iam_policy: Option<IamDocument>,
    /// Watch only these namespaces (comma-separated; all namespaces when unset).
    #[arg(long, env = "BLOG_OPERATOR_NAMESPACE", value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// Reconcile only while holding a Lease, so that of several replicas exactly one acts.
    #[arg(long, env = "BLOG_OPERATOR_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the Lease (the operator's own namespace in the chart).
    #[arg(long, env = "BLOG_OPERATOR_LEASE_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, env = "BLOG_OPERATOR_LEASE_NAME", default_value = "blog-operator")]
    pub lease_name: String,
    /// Seconds a Lease stays valid without renewal: the longest a handover can take.
    #[arg(long, env = "BLOG_OPERATOR_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Seconds the reconciles running at SIGTERM get to finish before they are cut off (each step
    /// may be; the next leader resumes). Keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "BLOG_OPERATOR_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    /// `json` (one object a line, for log pipelines) or `text` (for people); anything else is refused.
    #[arg(long, env = "BLOG_OPERATOR_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
}

/// The command line's spelling of [`blog_operator::status::ContainerReadiness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Readiness {
    Running,
    Provisioned,
}

impl From<Readiness> for crate::status::ContainerReadiness {
    fn from(readiness: Readiness) -> Self {
        match readiness {
            Readiness::Running => Self::Running,
            Readiness::Provisioned => Self::Provisioned,
        }
    }
}

/// Which IAM document `--print-iam-policy` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IamDocument {
    Operator,
    Boundary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// A probe URL: it names `{region}`, and the page may fetch it (http(s), or relative to the page).
fn probe_url(text: &str) -> Result<String, String> {
    let fetchable = ["https://", "http://", "./"].iter().any(|start| text.starts_with(start));
    if !text.contains("{region}") || !fetchable || text.chars().any(|c| c.is_whitespace() || c == '"') {
        return Err(format!("{text:?}: a URL with {{region}} in it (https://, http:// or ./), no spaces or quotes"));
    }
    Ok(text.to_owned())
}

/// `arn:<partition>:iam::<account>:policy/<path/name>`.
pub fn policy_arn(value: &str) -> Result<String, String> {
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

/// `SERVICE=CALLS_PER_SECOND`, a positive rate.
pub fn service_rate(text: &str) -> Result<(String, f64), String> {
    let (service, rate) = text.split_once('=').ok_or("expected SERVICE=CALLS_PER_SECOND")?;
    let rate: f64 = rate.parse().map_err(|e| format!("{rate}: {e}"))?;
    if service.is_empty() || !rate.is_finite() || rate <= 0.0 {
        return Err("expected a service name and a positive rate".to_owned());
    }
    Ok((service.to_owned(), rate))
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
