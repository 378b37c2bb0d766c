//! The SDK clients: one set per region, made on first use from the standard configuration chain,
//! each counting its calls for `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::timeout::TimeoutConfig;

use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::budget::{Budget, BudgetedClient};
use super::ec2;
use super::{CloudError, CloudResult, ErrorKind};
use crate::metrics::Metrics;
use aws_credential_types::provider::SharedCredentialsProvider;
use blog_core::account::AccountRole;

/// Counts every AWS call by service, operation and outcome, for `/metrics` and the reports; for
/// an object paused to observe only, refuses every call that would change something before it is
/// sent ([`Withheld`]).
#[derive(Debug, Clone)]
struct CallCounter {
    metrics: Metrics,
    observe_only: bool,
}

/// A call a paused object's clients did not send: it would have changed something.
#[derive(Debug, Clone, thiserror::Error)]
#[error("paused (observe only): {service} {operation} not sent")]
pub struct Withheld {
    pub service: String,
    pub operation: String,
}

/// Whether an operation only reads, by the verbs AWS names its reads with.
#[must_use]
pub fn only_reads(operation: &str) -> bool {
    ["Get", "Describe", "List", "BatchGet", "Query", "Scan"].iter().any(|verb| operation.starts_with(verb))
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "blog-operator-call-counter"
    }

    fn read_before_serialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        match cfg.load::<Metadata>() {
            Some(meta) if self.observe_only && !only_reads(meta.name()) => {
                Err(Box::new(Withheld { service: meta.service().to_owned(), operation: meta.name().to_owned() }))
            }
            _ => Ok(()),
        }
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        // The operation error is type-erased here, so the outcome is the HTTP status class.
        let outcome = match (context.output_or_error(), context.response()) {
            (Some(Ok(_)), _) => "ok".to_owned(),
            (_, Some(response)) => format!("http_{}", response.status().as_u16()),
            _ => "unreachable".to_owned(),
        };
        // A withheld call was never sent: it is no AWS call.
        if let Some(meta) = cfg.load::<Metadata>().filter(|m| !self.observe_only || only_reads(m.name())) {
            self.metrics.aws_call(meta.service(), meta.name(), &outcome);
        }
        Ok(())
    }
}

/// The SDK clients of one region, all counting their calls.
#[derive(Clone)]
pub struct AwsClients {
    pub region: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub acm: aws_sdk_acm::Client,
    /// Route 53 is global; the SDK picks its partition's endpoint whatever the region.
    pub route53: aws_sdk_route53::Client,
    pub ec2: ec2::Ec2,
    /// The region's reads worth keeping between reconciles.
    pub memo: Arc<super::memo::Memo>,
    /// The region's resources listed for all objects at once.
    pub inventories: Arc<super::inventory::Inventories>,
    /// The region's configuration, for an adapter that makes its client on use ([`sdk_client!`]).
    pub config: aws_config::SdkConfig,
    counter: CallCounter,
}

impl AwsClients {
    /// What every client of this region counts its calls with.
    #[must_use]
    pub fn counter(&self) -> impl Intercept + Clone + 'static {
        self.counter.clone()
    }
}

/// The `$sdk` client of a region's [`AwsClients`], counting its calls like the others: an adapter
/// makes its service's client with it, so adding a service needs no field here.
#[macro_export]
macro_rules! sdk_client {
    ($clients:expr, $sdk:ident) => {
        $sdk::Client::from_conf($sdk::config::Builder::from(&$clients.config).interceptor($clients.counter()).build())
    };
}

/// How long one AWS call may take: a stalled answer must not hold a reconcile worker forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One attempt: connect, send, and read the whole answer.
    pub attempt: Duration,
    /// The call with the SDK's retries.
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { attempt: Duration::from_secs(20), operation: Duration::from_secs(60) }
    }
}

impl Timeouts {
    fn config(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5).min(self.attempt))
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// More regions than any account uses: past this the cache starts over, so tenant-chosen region
/// names cannot grow it without bound.
const MAX_REGIONS: usize = 32;

/// Clients per region, made on first use from one base configuration: the operator's own account,
/// or (through [`Cloud::acting_for`]) a team's account by a role it assumes.
#[derive(Clone)]
pub struct Cloud {
    base: aws_config::SdkConfig,
    metrics: Metrics,
    ec2: ec2::Ec2,
    by_region: Arc<Mutex<HashMap<String, AwsClients>>>,
    /// Assumed sessions by role and session name, shared by every view.
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Reads only: every other call is refused before it is sent ([`Cloud::observing`]).
    observe_only: bool,
    /// How old an inventory's listing may be (the resync period), and a full read.
    read_periods: super::inventory::ReadPeriods,
}

/// An assumed role's clients while its credentials last.
#[derive(Clone)]
struct Session {
    cloud: Cloud,
    expires: SystemTime,
}

/// Sessions are renewed this long before they expire, so no reconcile runs on stale credentials.
const RENEW_BEFORE: Duration = Duration::from_secs(15 * 60);

/// Sessions kept at once; past this they start over (each costs one AssumeRole to make again).
const MAX_SESSIONS: usize = 1024;

impl Cloud {
    /// The standard AWS configuration chain (environment, profile, IRSA, container or instance
    /// role; `AWS_ENDPOINT_URL` for emulators) over a rustls (ring) client.
    ///
    /// # Errors
    /// When the system's root certificates cannot be loaded.
    pub async fn from_env(metrics: Metrics, timeouts: Timeouts, budget: Option<Arc<Budget>>) -> anyhow::Result<Self> {
        let base = blog_aws::aws_sdk_config().await.into_builder().timeout_config(timeouts.config()).build();
        Self::from_config_with_budget(base, metrics, budget)
    }

    /// Clients from a given base configuration (tests point it at an emulator); without timeouts
    /// of its own, it gets the default [`Timeouts`].
    ///
    /// # Errors
    /// When the system's root certificates cannot be loaded.
    pub fn from_config(base: aws_config::SdkConfig, metrics: Metrics) -> anyhow::Result<Self> {
        Self::from_config_with_budget(base, metrics, None)
    }

    /// [`Cloud::from_config`] with every call (SDK and EC2) waiting its turn in `budget`.
    ///
    /// # Errors
    /// When the system's root certificates cannot be loaded.
    pub fn from_config_with_budget(
        base: aws_config::SdkConfig,
        metrics: Metrics,
        budget: Option<Arc<Budget>>,
    ) -> anyhow::Result<Self> {
        let base = if base.timeout_config().and_then(TimeoutConfig::operation_timeout).is_some() {
            base
        } else {
            base.into_builder().timeout_config(Timeouts::default().config()).build()
        };
        let mut ec2 = ec2::Ec2::new(&base, metrics.clone())?;
        let base = match (budget, base.http_client()) {
            (Some(budget), Some(inner)) => {
                ec2 = ec2.with_budget(Arc::clone(&budget));
                base.into_builder().http_client(BudgetedClient::new(inner, budget)).build()
            }
            _ => base,
        };
        Ok(Self {
            base,
            metrics,
            ec2,
            by_region: Arc::default(),
            sessions: Arc::default(),
            observe_only: false,
            read_periods: super::inventory::ReadPeriods::default(),
        })
    }

    /// The clients for one BlogDeployment whose namespace runs in `account`: its role assumed with
    /// the external id, the session named for the object. Credentials are fetched here, once per
    /// session and again shortly before they expire, so a role the operator cannot assume fails
    /// here with STS's answer, before any call.
    ///
    /// # Errors
    /// STS refused or could not be reached.
    pub async fn acting_for(&self, account: &AccountRole, session_name: &str) -> CloudResult<Self> {
        let key = format!("{} {session_name}", account.role_arn);
        let now = SystemTime::now();
        if let Some(session) = self.locked_sessions().get(&key).filter(|s| s.expires > now + RENEW_BEFORE) {
            return Ok(session.cloud.clone());
        }
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.base)
                .interceptor(CallCounter { metrics: self.metrics.clone(), observe_only: false })
                .build(),
        );
        let assumed = sts
            .assume_role()
            .role_arn(&account.role_arn)
            .external_id(&account.external_id)
            .role_session_name(session_name)
            .send()
            .await
            .map_err(super::error::map_sdk("sts", "AssumeRole"))?;
        let given = assumed.credentials.ok_or_else(|| {
            CloudError::local("sts", "AssumeRole", ErrorKind::Other, "STS answered without credentials")
        })?;
        let expires = SystemTime::try_from(given.expiration).unwrap_or(now + RENEW_BEFORE * 2);
        let credentials = aws_credential_types::Credentials::new(
            given.access_key_id,
            given.secret_access_key,
            Some(given.session_token),
            Some(expires),
            "blog-operator-assumed-role",
        );
        let shared = SharedCredentialsProvider::new(credentials);
        let cloud = Self {
            base: self.base.clone().into_builder().credentials_provider(shared.clone()).build(),
            metrics: self.metrics.clone(),
            ec2: self.ec2.clone().with_credentials(shared),
            by_region: Arc::default(),
            sessions: Arc::clone(&self.sessions),
            observe_only: false,
            read_periods: self.read_periods,
        };
        let mut sessions = self.locked_sessions();
        if sessions.len() >= MAX_SESSIONS {
            sessions.clear();
        }
        sessions.insert(key, Session { cloud: cloud.clone(), expires });
        Ok(cloud)
    }

    fn locked_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The clients for `region`.
    pub fn clients(&self, region: &str) -> AwsClients {
        let mut cache = self.by_region.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_REGIONS && !cache.contains_key(region) {
            cache.clear();
        }
        cache
            .entry(region.to_owned())
            .or_insert_with(|| {
                let region_cfg = aws_config::Region::new(region.to_owned());
                let counter = CallCounter { metrics: self.metrics.clone(), observe_only: self.observe_only };
                macro_rules! client {
                    ($sdk:ident) => {
                        $sdk::Client::from_conf(
                            $sdk::config::Builder::from(&self.base)
                                .region(region_cfg.clone())
                                .interceptor(counter.clone())
                                .build(),
                        )
                    };
                }
                AwsClients {
                    region: region.to_owned(),
                    dynamodb: client!(aws_sdk_dynamodb),
                    iam: client!(aws_sdk_iam),
                    lambda: client!(aws_sdk_lambda),
                    apigateway: client!(aws_sdk_apigatewayv2),
                    logs: client!(aws_sdk_cloudwatchlogs),
                    ecs: client!(aws_sdk_ecs),
                    ecr: client!(aws_sdk_ecr),
                    elb: client!(aws_sdk_elasticloadbalancingv2),
                    cloudwatch: client!(aws_sdk_cloudwatch),
                    autoscaling: client!(aws_sdk_applicationautoscaling),
                    secrets: client!(aws_sdk_secretsmanager),
                    acm: client!(aws_sdk_acm),
                    route53: client!(aws_sdk_route53),
                    ec2: self.ec2.clone(),
                    memo: Arc::default(),
                    inventories: Arc::new(super::inventory::Inventories::new(self.read_periods, &self.metrics, region)),
                    config: self.base.clone().into_builder().region(region_cfg).build(),
                    counter,
                }
            })
            .clone()
    }

    /// These clients for an object paused to observe only: they read as usual and refuse every
    /// call that would change something ([`Withheld`]), so drift is seen and not repaired.
    #[must_use]
    pub fn observing(&self) -> Self {
        Self { ec2: self.ec2.clone().observing(), by_region: Arc::default(), observe_only: true, ..self.clone() }
    }

    /// These clients with inventories listed at most once a `periods.listing` (the resync period)
    /// and what no listing shows read once a `periods.deep`.
    #[must_use]
    pub fn with_read_periods(self, periods: super::inventory::ReadPeriods) -> Self {
        Self { read_periods: periods, by_region: Arc::default(), ..self }
    }

    /// The region of the base configuration, if the environment names one.
    #[must_use]
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(ToString::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listens on this port: a call that is sent fails as unreachable, one withheld never
    /// gets that far.
    fn cloud() -> Cloud {
        let base = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(SharedCredentialsProvider::new(aws_credential_types::Credentials::for_tests()))
            .build();
        Cloud::from_config(base, Metrics::default()).expect("cloud")
    }

    #[tokio::test]
    async fn an_observing_cloud_withholds_changes_and_sends_reads() {
        let clients = cloud().observing().clients("us-east-1");
        let update = clients.lambda.update_function_configuration().function_name("blog-x").memory_size(256).send();
        let err =
            update.await.map_err(crate::cloud::map_sdk("lambda", "UpdateFunctionConfiguration")).expect_err("withheld");
        assert_eq!(err.code, crate::cloud::WITHHELD, "{err}");
        let read = clients.lambda.get_function().function_name("blog-x").send().await;
        let err = read.map_err(crate::cloud::map_sdk("lambda", "GetFunction")).expect_err("unreachable");
        assert_eq!(err.code, "Unreachable", "a read is sent: {err}");
        let plain = cloud().clients("us-east-1");
        let update = plain.lambda.update_function_configuration().function_name("blog-x").send().await;
        let err =
            update.map_err(crate::cloud::map_sdk("lambda", "UpdateFunctionConfiguration")).expect_err("unreachable");
        assert_eq!(err.code, "Unreachable", "not paused: sent");
    }
}
