//! Shared support of the end-to-end tests: the CRD, an operator process, waits, AWS clients and
//! resource counts.

pub use std::collections::BTreeMap;
pub use std::path::PathBuf;
pub use std::process::Stdio;
pub use std::time::{Duration, Instant};

pub use blog_operator::crd::BlogDeployment;
pub use blog_operator::desired::{Names, Owner};
pub use blog_tests::{Stack, TestNamespace, free_port};
pub use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
pub use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
pub use kube::runtime::wait::{await_condition, conditions};
pub use kube::{Client, ResourceExt};
pub use serde_json::json;

/// Installs (or updates) the CRD exactly as `crds/` ships it. The YAML is applied as JSON, not
/// through k8s-openapi's typed CRD, so the test installs the very bytes a user would apply.
pub async fn install_crd(client: &Client) {
    let path = blog_tests::workspace_root().join("crds/blogdeployments.blogs.serverless.dev.yaml");
    let crd: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("read CRD")).expect("parse CRD");
    let name = crd["metadata"]["name"].as_str().expect("CRD name").to_owned();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("blog-operator-tests").force();
    crds.patch(&name, &params, &Patch::Apply(&crd)).await.expect("apply CRD");
    tokio::time::timeout(Duration::from_secs(30), await_condition(crds, &name, conditions::is_crd_established()))
        .await
        .expect("CRD established in 30 s")
        .expect("watch CRD");
}

/// One operator process, watching one namespace; killed when dropped.
pub struct Operator {
    pub child: tokio::process::Child,
    pub admin: String,
    pub metrics: String,
    pub log: PathBuf,
}

impl Operator {
    pub async fn start(stack: &Stack, namespace: &str, resync_seconds: u64) -> Self {
        Self::start_with(stack, namespace, resync_seconds, &[], &stack.kubeconfig).await
    }

    pub async fn start_with(
        stack: &Stack,
        namespace: &str,
        resync_seconds: u64,
        extra: &[&str],
        kubeconfig: &std::path::Path,
    ) -> Self {
        Self::spawn(stack, namespace, resync_seconds, extra, (kubeconfig, &stack.aws_endpoint))
    }

    /// An operator whose AWS calls go through `endpoint` (the realism and fault layer).
    pub fn start_behind(stack: &Stack, namespace: &str, resync_seconds: u64, extra: &[&str], endpoint: &str) -> Self {
        Self::spawn(stack, namespace, resync_seconds, extra, (&stack.kubeconfig, endpoint))
    }

    fn spawn(
        stack: &Stack,
        namespace: &str,
        resync_seconds: u64,
        extra: &[&str],
        (kubeconfig, endpoint): (&std::path::Path, &str),
    ) -> Self {
        let admin_port = free_port();
        let metrics_port = free_port();
        let log = stack.dir.join(format!("operator-{namespace}-{admin_port}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("operator log");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_blog-operator"))
            .args(["--namespace", namespace, "--resync-seconds", &resync_seconds.to_string(), "--retry-seconds", "1"])
            .args(["--admin-addr", &format!("127.0.0.1:{admin_port}"), "--log-format", "json"])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            // moto never starts ECS tasks: count the container variant ready once provisioned,
            // unless the test plays ECS through the realism layer.
            .args(
                extra
                    .iter()
                    .all(|a| !a.starts_with("--container-readiness"))
                    .then_some(["--container-readiness", "provisioned"])
                    .into_iter()
                    .flatten(),
            )
            // Roles without a boundary unless the test gives one (the emulator enforces no IAM).
            .args(
                extra
                    .iter()
                    .all(|a| !a.starts_with("--role-permissions-boundary"))
                    .then_some("--allow-roles-without-boundary"),
            )
            // Any spec unless the test gives a tenant policy.
            .args(extra.iter().all(|a| !a.starts_with("--tenant-policy")).then_some("--allow-any-tenant-spec"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("AWS_ENDPOINT_URL", endpoint)
            // The stack's CloudWatch proxy, unless the test puts its own realism layer in front.
            .env(
                "AWS_ENDPOINT_URL_CLOUDWATCH",
                if endpoint == stack.aws_endpoint { &stack.cloudwatch_endpoint } else { endpoint },
            )
            .env("AWS_REGION", "us-west-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("RUST_LOG", "info,blog_operator=debug")
            .stdout(Stdio::from(file.try_clone().expect("dup log")))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the operator");
        Self {
            child,
            admin: format!("http://127.0.0.1:{admin_port}"),
            metrics: format!("http://127.0.0.1:{metrics_port}"),
            log,
        }
    }

    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill operator");
    }

    /// Reconciles this process has started, from its `/metrics`.
    pub async fn reconciles(&self) -> u64 {
        let text = http_get(&format!("{}/metrics", self.metrics)).await;
        text.lines()
            .find(|l| l.starts_with("blog_operator_reconciles_total "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// AWS calls so far, by `service/operation`, from the operator's own `/metrics`.
    pub async fn aws_calls(&self) -> BTreeMap<String, u64> {
        let text = http_get(&format!("{}/metrics", self.metrics)).await;
        let mut calls = BTreeMap::new();
        for line in text.lines().filter(|l| l.starts_with("blog_operator_aws_calls_total{")) {
            let field = |name: &str| {
                line.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("")
                    .to_owned()
            };
            let count: u64 = line.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            *calls.entry(format!("{}/{}", field("service"), field("operation"))).or_default() += count;
        }
        calls
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- {} (last 60 lines) -----\n{}", self.log.display(), blog_tests::tail(&self.log, 60));
        }
    }
}

/// `kubectl apply -f -` of `manifests` against the stack; what kubectl returned.
pub fn kubectl_apply_stdin(stack: &Stack, manifests: &str) -> std::process::Output {
    use std::io::Write;
    let mut apply = stack
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    apply.stdin.take().expect("stdin").write_all(manifests.as_bytes()).expect("manifests");
    apply.wait_with_output().expect("kubectl apply")
}

/// A tiny HTTP GET over a plain socket (the admin server is plain HTTP on loopback).
pub async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    for _ in 0..100 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(host).await {
            let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut body = String::new();
            stream.read_to_string(&mut body).await.expect("read");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer");
}

/// The blog service binary (beside the operator's: `make test` builds both) on `port`, with
/// `variables`, its embedded store in the stack's folder, beacons written every second, and the
/// stack's AWS endpoint in us-west-1; its URL, without a trailing slash.
pub fn blog_service<'a>(
    stack: &Stack,
    port: u16,
    variables: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (tokio::process::Child, String) {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_blog-operator")).with_file_name("blog-service");
    assert!(binary.exists(), "{} is missing: cargo build -p blog-service", binary.display());
    let child = tokio::process::Command::new(binary)
        .envs(variables)
        .env("PORT", port.to_string())
        .env("DATA_DIR", stack.dir.join(format!("blog-service-{port}")))
        .env("BEACON_FLUSH_SECS", "1")
        .env("LOG_FORMAT", "text")
        .env("AWS_ENDPOINT_URL", &stack.aws_endpoint)
        .env("AWS_REGION", "us-west-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the blog service");
    (child, format!("http://127.0.0.1:{port}"))
}

/// A tiny HTTP POST of a JSON body over a plain socket; the answer's status line and body.
pub async fn http_post_json(url: &str, body: &serde_json::Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let body = body.to_string();
    for _ in 0..100 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(host).await {
            let request = format!(
                "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.expect("read");
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer");
}

/// Every AWS verb that changes something: anything but a read.
pub fn is_mutating(operation: &str) -> bool {
    let op = operation.rsplit('/').next().unwrap_or(operation);
    !["Describe", "Get", "List", "BatchGet"].iter().any(|read| op.starts_with(read))
}

/// Waits until the operator has run `resyncs` more reconciles (proof that resyncs happened), then
/// returns the mutating calls made meanwhile, by operation, with how many.
pub async fn mutations_over_resyncs(operator: &Operator, resyncs: u64) -> Vec<(String, u64)> {
    let (before, started) = (operator.aws_calls().await, operator.reconciles().await);
    let deadline = Instant::now() + Duration::from_secs(60);
    while operator.reconciles().await < started + resyncs {
        assert!(Instant::now() < deadline, "fewer than {resyncs} resyncs in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = operator.aws_calls().await;
    after
        .iter()
        .filter(|(op, n)| is_mutating(op) && before.get(*op) != Some(n))
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .collect()
}

pub fn blog(name: &str, spec: serde_json::Value) -> BlogDeployment {
    serde_json::from_value(json!({
        "apiVersion": "blogs.serverless.dev/v1alpha1",
        "kind": "BlogDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("valid BlogDeployment")
}

/// Waits until `check` holds for the object, or fails with the last status seen.
pub async fn wait_for(
    api: &Api<BlogDeployment>,
    name: &str,
    what: &str,
    check: impl Fn(&BlogDeployment) -> bool,
) -> BlogDeployment {
    wait_for_within(api, name, what, Duration::from_secs(90), check).await
}

/// [`wait_for`] with its own time limit (runs behind the realism layer take longer).
pub async fn wait_for_within(
    api: &Api<BlogDeployment>,
    name: &str,
    what: &str,
    limit: Duration,
    check: impl Fn(&BlogDeployment) -> bool,
) -> BlogDeployment {
    let deadline = Instant::now() + limit;
    loop {
        let current = api.get_opt(name).await.expect("get BlogDeployment");
        if let Some(bd) = &current
            && check(bd)
        {
            return bd.clone();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {:#?}", current.map(|b| b.status));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until the object is gone (its finalizer done).
pub async fn wait_gone(api: &Api<BlogDeployment>, name: &str) {
    wait_gone_within(api, name, Duration::from_secs(90)).await;
}

/// [`wait_gone`] with its own time limit.
pub async fn wait_gone_within(api: &Api<BlogDeployment>, name: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while let Some(bd) = api.get_opt(name).await.expect("get BlogDeployment") {
        assert!(Instant::now() < deadline, "{name} still there after {limit:?}: {:#?}", bd.status);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn condition<'a>(
    bd: &'a BlogDeployment,
    kind: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    bd.status.as_ref()?.conditions.iter().find(|c| c.type_ == kind)
}

/// A condition's reason and message, empty when the condition is not there.
pub fn reason_of(bd: &BlogDeployment, kind: &str) -> (String, String) {
    condition(bd, kind).map(|c| (c.reason.clone(), c.message.clone())).unwrap_or_default()
}

pub fn ready(bd: &BlogDeployment) -> bool {
    condition(bd, "Ready").is_some_and(|c| c.status == "True" && c.observed_generation == bd.metadata.generation)
}

pub struct Aws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub apigateway: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// The operator's own clients, for the EC2 calls (no aws-sdk-ec2 in this workspace).
    pub operator_clients: blog_operator::cloud::AwsClients,
}

impl Aws {
    pub async fn new(stack: &Stack) -> Self {
        Self::from_config(&stack.sdk_config().await)
    }

    /// The clients of whichever account `config`'s credentials are in.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        let config = config.clone();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            apigateway: aws_sdk_apigatewayv2::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            operator_clients: blog_operator::cloud::Cloud::from_config(
                config.clone(),
                blog_operator::metrics::Metrics::default(),
            )
            .expect("clients")
            .clients("us-west-1"),
        }
    }

    /// How many of each container-variant resource of `names` exist.
    pub async fn count_container(&self, owner: &Owner, names: &Names) -> BTreeMap<&'static str, usize> {
        let pages = self.elb.describe_load_balancers().into_paginator().send().collect::<Vec<_>>().await;
        let balancers: Vec<_> =
            pages.into_iter().flat_map(|p| p.expect("load balancers").load_balancers.unwrap_or_default()).collect();
        let ours: Vec<_> = balancers.iter().filter(|b| b.load_balancer_name() == Some(&names.load_balancer)).collect();
        let mut listeners = 0;
        for balancer in &ours {
            let found = self
                .elb
                .describe_listeners()
                .load_balancer_arn(balancer.load_balancer_arn().unwrap_or_default())
                .send()
                .await;
            listeners += found.expect("listeners").listeners().len();
        }
        let pages = self.elb.describe_target_groups().into_paginator().send().collect::<Vec<_>>().await;
        let groups: Vec<_> =
            pages.into_iter().flat_map(|p| p.expect("target groups").target_groups.unwrap_or_default()).collect();
        let clusters = self.ecs.describe_clusters().clusters(&names.cluster).send().await.expect("clusters");
        let services = self.ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await;
        let services =
            services.map(|s| s.services().iter().filter(|s| s.status() == Some("ACTIVE")).count()).unwrap_or(0);
        let roles = self.role_names().await;
        let mut security_groups = 0;
        for group in [&names.lb_security_group, &names.task_security_group] {
            security_groups += blog_operator::cloud::ec2::owned_group_vpcs(&self.operator_clients, owner, group)
                .await
                .expect("security groups")
                .len();
        }
        BTreeMap::from([
            ("load balancer", ours.len()),
            ("listener", listeners),
            ("target group", groups.iter().filter(|g| g.target_group_name() == Some(&names.target_group)).count()),
            ("cluster", clusters.clusters().iter().filter(|c| c.status() == Some("ACTIVE")).count()),
            ("service", services),
            ("security group", security_groups),
            ("container role", roles.iter().filter(|r| **r == names.execution_role || **r == names.task_role).count()),
        ])
    }

    /// How many of each resource of `names` exist: table, function, role, log group, APIs. Every
    /// list is read to its last page: other tests' resources share the emulator.
    pub async fn count(&self, names: &Names) -> BTreeMap<&'static str, usize> {
        let tables = self.dynamodb.list_tables().into_paginator().items().send().collect::<Vec<_>>().await;
        let tables = tables.into_iter().map(|t| t.expect("list tables")).filter(|t| *t == names.table).count();
        let functions = self.lambda.list_functions().into_paginator().items().send().collect::<Vec<_>>().await;
        let functions = functions.into_iter().map(|f| f.expect("list functions"));
        let functions = functions.filter(|f| f.function_name() == Some(&names.function)).count();
        let roles = self.role_names().await.iter().filter(|r| **r == names.function_role).count();
        let apis = self.api_names().await.iter().filter(|a| **a == names.api).count();
        let groups = self.logs.describe_log_groups().log_group_name_prefix(&names.function_log_group).send().await;
        let groups = groups.expect("log groups");
        let groups = groups.log_groups().iter().filter(|g| g.log_group_name() == Some(&names.function_log_group));
        BTreeMap::from([
            ("table", tables),
            ("function", functions),
            ("role", roles),
            ("api", apis),
            ("log group", groups.count()),
        ])
    }

    /// Every IAM role's name, all pages.
    pub async fn role_names(&self) -> Vec<String> {
        let roles = self.iam.list_roles().into_paginator().items().send().collect::<Vec<_>>().await;
        roles.into_iter().map(|r| r.expect("list roles").role_name().to_owned()).collect()
    }

    /// Every HTTP API's name (API Gateway's own paging by `NextToken`).
    pub async fn api_names(&self) -> Vec<String> {
        let (mut names, mut token) = (Vec::new(), None);
        loop {
            let page = self.apigateway.get_apis().set_next_token(token).send().await.expect("get apis");
            names.extend(page.items().iter().filter_map(|a| a.name().map(str::to_owned)));
            token = page.next_token;
            if token.is_none() {
                return names;
            }
        }
    }
}

pub fn owner_of(bd: &BlogDeployment) -> Owner {
    Owner { namespace: bd.namespace().expect("namespace"), name: bd.name_any(), uid: bd.uid().expect("uid") }
}

pub fn names_of(bd: &BlogDeployment) -> Names {
    Names::for_owner(&owner_of(bd))
}

pub fn container_each(n: usize) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("cluster", n),
        ("container role", 2 * n),
        ("listener", n),
        ("load balancer", n),
        ("security group", 2 * n),
        ("service", n),
        ("target group", n),
    ])
}

pub fn one_of_each() -> BTreeMap<&'static str, usize> {
    BTreeMap::from([("api", 1), ("function", 1), ("log group", 1), ("role", 1), ("table", 1)])
}

pub async fn setup(prefix: &str) -> (&'static Stack, Client, TestNamespace, Api<BlogDeployment>) {
    let stack = Stack::shared();
    let client = stack.client().await.expect("client");
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, prefix).await.expect("namespace");
    let api = Api::namespaced(client.clone(), &ns.name);
    (stack, client, ns, api)
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image index over `architectures`, or a single-architecture manifest when there are none.
pub fn manifest(architectures: &[&str]) -> (String, &'static str) {
    if architectures.is_empty() {
        let config = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c0", "size": 2});
        return (
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}).to_string(),
            OCI_MANIFEST,
        );
    }
    let entries: Vec<_> = architectures
        .iter()
        .map(|a| {
            json!({"mediaType": OCI_MANIFEST, "digest": format!("sha256:{a}"), "size": 1,
                        "platform": {"os": "linux", "architecture": a}})
        })
        .collect();
    (json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).to_string(), OCI_INDEX)
}

/// Pushes an image's manifest to the emulator's ECR under `tag` (moto keeps no layers).
pub async fn push(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str, architectures: &[&str]) {
    let (body, media_type) = manifest(architectures);
    ecr.put_image()
        .repository_name(repository)
        .image_tag(tag)
        .image_manifest(body)
        .image_manifest_media_type(media_type)
        .send()
        .await
        .expect("put image");
}

/// Applies `manifests` (what users install) and returns a kubeconfig for its ServiceAccount
/// `account` in blog-system, with a token from the TokenRequest API. No pod runs: the stack has no
/// scheduler or kubelet, which is fine, the test runs the operator itself under that identity.
pub async fn service_account_kubeconfig(stack: &Stack, client: &Client, manifests: &str, account: &str) -> PathBuf {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let applied = kubectl_apply_stdin(stack, manifests);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "blog-system");
    let request = TokenRequest {
        spec: TokenRequestSpec { audiences: vec![], expiration_seconds: Some(3600), ..Default::default() },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .expect("token")
        .token;
    let admin = std::fs::read_to_string(&stack.kubeconfig).expect("kubeconfig");
    let server = admin.lines().find_map(|l| l.trim().strip_prefix("server: ")).expect("server").to_owned();
    let path = stack.dir.join(format!("sa-{}.kubeconfig", blog_tests::unique_name("kc")));
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: blog-operator\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context: {{cluster: local, user: blog-operator}}\ncurrent-context: sa\n",
        ca = stack.dir.join("pki/ca.crt").display()
    );
    std::fs::write(&path, config).expect("write kubeconfig");
    path
}
