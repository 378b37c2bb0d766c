//! End to end on the local stack: a real kube-apiserver + etcd, the CRD from `crds/`, the operator
//! binary running against it, AWS served by moto. Each test has its own namespace and its own
//! operator process watching only that namespace.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use blog_operator::crd::BlogDeployment;
use blog_operator::desired::{Names, Owner};
use blog_tests::{Stack, TestNamespace, free_port};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use serde_json::json;

/// Installs (or updates) the CRD exactly as `crds/` ships it.
async fn install_crd(client: &Client) {
    let path = blog_tests::workspace_root().join("crds/blogdeployments.blogs.serverless.dev.yaml");
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("read CRD")).expect("parse CRD");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("blog-operator-tests").force();
    crds.patch(&crd.name_any(), &params, &Patch::Apply(&crd)).await.expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &crd.name_any(), conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in 30 s")
    .expect("watch CRD");
}

/// One operator process, watching one namespace; killed when dropped.
struct Operator {
    child: tokio::process::Child,
    admin: String,
    log: PathBuf,
}

impl Operator {
    async fn start(stack: &Stack, namespace: &str, resync_seconds: u64) -> Self {
        Self::start_with(stack, namespace, resync_seconds, &[], &stack.kubeconfig).await
    }

    async fn start_with(
        stack: &Stack,
        namespace: &str,
        resync_seconds: u64,
        extra: &[&str],
        kubeconfig: &std::path::Path,
    ) -> Self {
        let admin_port = free_port();
        let log = stack.dir.join(format!("operator-{namespace}-{admin_port}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("operator log");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_blog-operator"))
            .args(["--namespace", namespace, "--resync-seconds", &resync_seconds.to_string(), "--retry-seconds", "1"])
            .args(["--admin-addr", &format!("127.0.0.1:{admin_port}"), "--log-format", "json"])
            // moto never starts ECS tasks: count the container variant ready once provisioned.
            .args(["--container-readiness", "provisioned"])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("AWS_ENDPOINT_URL", &stack.aws_endpoint)
            .env("AWS_REGION", "us-west-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("RUST_LOG", "info,blog_operator=debug")
            .stdout(Stdio::from(file.try_clone().expect("dup log")))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the operator");
        Self { child, admin: format!("http://127.0.0.1:{admin_port}"), log }
    }

    async fn kill(mut self) {
        self.child.kill().await.expect("kill operator");
    }

    /// Reconciles this process has started, from its `/metrics`.
    async fn reconciles(&self) -> u64 {
        let text = http_get(&format!("{}/metrics", self.admin)).await;
        text.lines()
            .find(|l| l.starts_with("blog_operator_reconciles_total "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// AWS calls so far, by `service/operation`, from the operator's own `/metrics`.
    async fn aws_calls(&self) -> BTreeMap<String, u64> {
        let text = http_get(&format!("{}/metrics", self.admin)).await;
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

/// A tiny HTTP GET over a plain socket (the admin server is plain HTTP on loopback).
async fn http_get(url: &str) -> String {
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

fn is_mutating(operation: &str) -> bool {
    let op = operation.rsplit('/').next().unwrap_or(operation);
    ["Create", "Update", "Put", "Delete", "Add", "Remove", "Tag", "Untag", "Authorize", "Register", "Modify", "Publish"]
        .iter()
        .any(|prefix| op.starts_with(prefix))
}

fn blog(name: &str, spec: serde_json::Value) -> BlogDeployment {
    serde_json::from_value(json!({
        "apiVersion": "blogs.serverless.dev/v1alpha1",
        "kind": "BlogDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("valid BlogDeployment")
}

/// Waits until `check` holds for the object, or fails with the last status seen.
async fn wait_for(
    api: &Api<BlogDeployment>,
    name: &str,
    what: &str,
    check: impl Fn(&BlogDeployment) -> bool,
) -> BlogDeployment {
    let deadline = Instant::now() + Duration::from_secs(90);
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
async fn wait_gone(api: &Api<BlogDeployment>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while let Some(bd) = api.get_opt(name).await.expect("get BlogDeployment") {
        assert!(Instant::now() < deadline, "{name} still there after 90 s: {:#?}", bd.status);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn condition<'a>(
    bd: &'a BlogDeployment,
    kind: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    bd.status.as_ref()?.conditions.iter().find(|c| c.type_ == kind)
}

fn ready(bd: &BlogDeployment) -> bool {
    condition(bd, "Ready").is_some_and(|c| c.status == "True" && c.observed_generation == bd.metadata.generation)
}

struct Aws {
    dynamodb: aws_sdk_dynamodb::Client,
    lambda: aws_sdk_lambda::Client,
    iam: aws_sdk_iam::Client,
    apigateway: aws_sdk_apigatewayv2::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ec2: blog_operator::cloud::ec2::Ec2,
}

impl Aws {
    async fn new(stack: &Stack) -> Self {
        let config = stack.sdk_config().await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            apigateway: aws_sdk_apigatewayv2::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            ec2: blog_operator::cloud::ec2::Ec2::new(&config, blog_operator::metrics::Metrics::default()).expect("ec2"),
        }
    }

    /// How many of each container-variant resource of `names` exist.
    async fn count_container(&self, owner: &Owner, names: &Names) -> BTreeMap<&'static str, usize> {
        let balancers = self.elb.describe_load_balancers().send().await.expect("load balancers");
        let ours: Vec<_> = balancers
            .load_balancers()
            .iter()
            .filter(|b| b.load_balancer_name() == Some(&names.load_balancer))
            .collect();
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
        let groups = self.elb.describe_target_groups().send().await.expect("target groups");
        let clusters = self.ecs.describe_clusters().clusters(&names.cluster).send().await.expect("clusters");
        let services = self.ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await;
        let services =
            services.map(|s| s.services().iter().filter(|s| s.status() == Some("ACTIVE")).count()).unwrap_or(0);
        let roles = self.iam.list_roles().send().await.expect("list roles");
        let mut security_groups = 0;
        for group in [&names.lb_security_group, &names.task_security_group] {
            security_groups +=
                self.ec2.owned_group_vpcs("us-west-1", owner, group).await.expect("security groups").len();
        }
        BTreeMap::from([
            ("load balancer", ours.len()),
            ("listener", listeners),
            (
                "target group",
                groups.target_groups().iter().filter(|g| g.target_group_name() == Some(&names.target_group)).count(),
            ),
            ("cluster", clusters.clusters().iter().filter(|c| c.status() == Some("ACTIVE")).count()),
            ("service", services),
            ("security group", security_groups),
            (
                "container role",
                roles
                    .roles()
                    .iter()
                    .filter(|r| r.role_name() == names.execution_role || r.role_name() == names.task_role)
                    .count(),
            ),
        ])
    }

    /// How many of each resource of `names` exist: table, function, role, log group, APIs.
    async fn count(&self, names: &Names) -> BTreeMap<&'static str, usize> {
        let tables = self.dynamodb.list_tables().send().await.expect("list tables");
        let functions = self.lambda.list_functions().send().await.expect("list functions");
        let roles = self.iam.list_roles().send().await.expect("list roles");
        let apis = self.apigateway.get_apis().send().await.expect("get apis");
        let groups = self.logs.describe_log_groups().send().await.expect("log groups");
        BTreeMap::from([
            ("table", tables.table_names().iter().filter(|t| **t == names.table).count()),
            ("function", functions.functions().iter().filter(|f| f.function_name() == Some(&names.function)).count()),
            ("role", roles.roles().iter().filter(|r| r.role_name() == names.function_role).count()),
            ("api", apis.items().iter().filter(|a| a.name() == Some(&names.api)).count()),
            (
                "log group",
                groups.log_groups().iter().filter(|g| g.log_group_name() == Some(&names.function_log_group)).count(),
            ),
        ])
    }
}

fn owner_of(bd: &BlogDeployment) -> Owner {
    Owner { namespace: bd.namespace().expect("namespace"), name: bd.name_any(), uid: bd.uid().expect("uid") }
}

fn names_of(bd: &BlogDeployment) -> Names {
    Names::for_owner(&owner_of(bd))
}

fn container_each(n: usize) -> BTreeMap<&'static str, usize> {
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

fn one_of_each() -> BTreeMap<&'static str, usize> {
    BTreeMap::from([("api", 1), ("function", 1), ("log group", 1), ("role", 1), ("table", 1)])
}

async fn setup(prefix: &str) -> (&'static Stack, Client, TestNamespace, Api<BlogDeployment>) {
    let stack = Stack::shared();
    let client = stack.client().await.expect("client");
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, prefix).await.expect("namespace");
    let api = Api::namespaced(client.clone(), &ns.name);
    (stack, client, ns, api)
}

#[tokio::test]
async fn function_variant_lifecycle_create_noop_update_delete() {
    let (stack, client, ns, api) = setup("life").await;
    let _logs = stack.logs_on_failure();
    let operator = Operator::start(stack, &ns.name, 2).await;
    let aws = Aws::new(stack).await;

    let started = Instant::now();
    api.create(&PostParams::default(), &blog("demo", json!({"image": "blog-service:1.0.0", "function": {}})))
        .await
        .expect("create");
    let bd = wait_for(&api, "demo", "Ready", ready).await;
    eprintln!("apply to Ready: {:?}", started.elapsed());
    let status = bd.status.clone().expect("status");
    let url = status.function_url.clone().expect("function URL");
    assert!(url.starts_with("https://") || url.starts_with("http://"), "{url}");
    assert!(status.resources.table_arn.as_deref().is_some_and(|a| a.contains(":table/")));
    assert!(status.resources.api_id.is_some() && status.resources.function_arn.is_some());
    assert_eq!(condition(&bd, "ContainerReady").map(|c| c.reason.as_str()), Some("Disabled"));
    assert!(bd.finalizers().iter().any(|f| f == "blogs.serverless.dev/cleanup"));

    let names = names_of(&bd);
    assert_eq!(aws.count(&names).await, one_of_each());
    let function = aws.lambda.get_function().function_name(&names.function).send().await.expect("function");
    let config = function.configuration().expect("configuration");
    assert_eq!(config.memory_size(), Some(512));
    assert_eq!(config.environment().and_then(|e| e.variables()).and_then(|v| v.get("TABLE_NAME")), Some(&names.table));
    // The API invokes the alias `live`, which serves version 1, published from this configuration.
    let alias = || async {
        let alias = aws.lambda.get_alias().function_name(&names.function).name("live").send().await.expect("alias");
        alias.function_version().unwrap_or_default().to_owned()
    };
    assert_eq!(alias().await, "1");
    let policy = aws.lambda.get_policy().function_name(&names.function).qualifier("live").send().await;
    let policy = policy.expect("invoke permission on the alias");
    assert!(policy.policy().is_some_and(|p| p.contains(status.resources.api_id.as_deref().unwrap_or("?"))));
    let api_id = status.resources.api_id.as_deref().unwrap_or_default();
    let routes = aws.apigateway.get_routes().api_id(api_id).send().await;
    assert!(routes.expect("routes").items().iter().any(|r| r.route_key() == Some("$default")));
    let integrations = aws.apigateway.get_integrations().api_id(api_id).send().await.expect("integrations");
    let uris: Vec<&str> = integrations.items().iter().filter_map(|i| i.integration_uri()).collect();
    assert!(uris.len() == 1 && uris[0].ends_with(&format!(":function:{}:live", names.function)), "{uris:?}");
    let inline = aws.iam.get_role_policy().role_name(&names.function_role).policy_name("blog-operator").send().await;
    assert!(inline.expect("inline policy").policy_document().contains(&names.table));

    // A resync with nothing to change makes no mutating call.
    let before = operator.aws_calls().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = operator.aws_calls().await;
    let resyncs =
        after.get("Lambda/GetFunction").copied().unwrap_or(0) - before.get("Lambda/GetFunction").copied().unwrap_or(0);
    assert!(resyncs >= 1, "at least one resync ran in 5 s: {before:?} → {after:?}");
    let mutated: Vec<_> = after
        .iter()
        .filter(|(op, n)| is_mutating(op) && before.get(*op) != Some(n))
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .collect();
    assert!(mutated.is_empty(), "no-op resyncs mutated AWS: {mutated:?}");
    eprintln!("calls after create and {resyncs} no-op resyncs: {after:?}");

    // Update memory and timeout: the function's configuration follows.
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"function": {"memoryMiB": 1024, "timeoutSeconds": 30}}})),
    )
    .await
    .expect("patch");
    wait_for(&api, "demo", "Ready at generation 2", |bd| ready(bd) && bd.metadata.generation == Some(2)).await;
    let config = aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
    assert_eq!((config.memory_size(), config.timeout()), (Some(1024), Some(30)));
    // Published as version 2, which the alias now serves.
    assert_eq!(alias().await, "2");
    let live = aws.lambda.get_function_configuration().function_name(&names.function).qualifier("live").send().await;
    assert_eq!(live.expect("live configuration").memory_size(), Some(1024));

    // Reserved concurrency follows the spec, and goes when the spec drops it.
    let concurrency = || async {
        aws.lambda
            .get_function_concurrency()
            .function_name(&names.function)
            .send()
            .await
            .expect("concurrency")
            .reserved_concurrent_executions
    };
    assert_eq!(concurrency().await, None);
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"function": {"reservedConcurrency": 5}}})),
    )
    .await
    .expect("patch");
    wait_for(&api, "demo", "generation 3", |bd| ready(bd) && bd.metadata.generation == Some(3)).await;
    assert_eq!(concurrency().await, Some(5));
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"function": {"reservedConcurrency": null}}})),
    )
    .await
    .expect("patch");
    wait_for(&api, "demo", "generation 4", |bd| ready(bd) && bd.metadata.generation == Some(4)).await;
    assert_eq!(concurrency().await, None);
    // Concurrency is not part of a version: nothing was published for it.
    assert_eq!(alias().await, "2");

    // Disable the function variant (the container variant on instead): its resources go, the table stays.
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"function": {"enabled": false}, "container": {"enabled": true}}})),
    )
    .await
    .expect("patch");
    let bd = wait_for(&api, "demo", "FunctionReady Disabled", |bd| {
        condition(bd, "FunctionReady").is_some_and(|c| c.reason == "Disabled" && c.observed_generation == Some(5))
    })
    .await;
    assert_eq!(
        aws.count(&names).await,
        BTreeMap::from([("api", 0), ("function", 0), ("log group", 0), ("role", 0), ("table", 1)])
    );
    assert!(bd.status.as_ref().and_then(|s| s.function_url.as_ref()).is_none(), "no URL for a removed variant");
    let bd = wait_for(&api, "demo", "Ready with the container variant", ready).await;
    assert!(bd.status.as_ref().and_then(|s| s.container_url.as_deref()).is_some_and(|u| u.starts_with("http://")));
    assert_eq!(aws.count_container(&owner_of(&bd), &names).await, container_each(1));

    // Delete: everything goes but the table (deletionPolicy Retain by default).
    let before_delete = operator.aws_calls().await;
    api.delete("demo", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "demo").await;
    let counts = aws.count(&names).await;
    assert_eq!(counts, BTreeMap::from([("api", 0), ("function", 0), ("log group", 0), ("role", 0), ("table", 1)]));
    assert_eq!(aws.count_container(&owner_of(&bd), &names).await, container_each(0));
    let after_delete = operator.aws_calls().await;
    let deleting: Vec<_> = after_delete
        .iter()
        .filter(|(op, n)| before_delete.get(*op) != Some(n))
        .map(|(op, n)| (op.clone(), n - before_delete.get(op).copied().unwrap_or(0)))
        .collect();
    eprintln!("calls on delete: {deleting:?}");
    // Every log line of a reconcile names the object (JSON logs, a tracing span).
    let log = std::fs::read_to_string(&operator.log).expect("operator log");
    let reconciled: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "reconciled")
        .collect();
    assert!(!reconciled.is_empty(), "no reconcile logged");
    for line in &reconciled {
        assert_eq!(
            (line["span"]["namespace"].as_str(), line["span"]["blogdeployment"].as_str()),
            (Some(ns.name.as_str()), Some("demo"))
        );
    }

    // Events mark the transitions: Ready, and the deletion.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns.name);
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo"))
        .filter_map(|e| e.reason)
        .collect();
    for expected in ["Reconciled", "Updated", "Deleted"] {
        assert!(reasons.iter().any(|r| r == expected), "no {expected} event in {reasons:?}");
    }
    operator.kill().await;
}

#[tokio::test]
async fn invalid_specs_are_refused_by_the_schema_or_get_invalid_spec() {
    let (stack, _client, ns, api) = setup("invalid").await;
    let _logs = stack.logs_on_failure();
    let operator = Operator::start(stack, &ns.name, 60).await;

    // What the schema can say, the API server refuses.
    for (name, spec, field) in [
        ("tiny", json!({"image": "b:1", "function": {"memoryMiB": 64}}), "spec.function.memoryMiB"),
        ("slow", json!({"image": "b:1", "function": {"timeoutSeconds": 901}}), "spec.function.timeoutSeconds"),
        ("odd-cpu", json!({"image": "b:1", "container": {"cpu": 300}}), "spec.container.cpu"),
        ("empty-image", json!({"image": "", "function": {}}), "spec.image"),
    ] {
        match api.create(&PostParams::default(), &blog(name, spec)).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{name}: {status:?}");
                assert!(status.message.contains(field), "{name}: {}", status.message);
            }
            other => panic!("{name} should be refused by the schema, got {other:?}"),
        }
    }

    // What it cannot, the operator reports as InvalidSpec without touching AWS.
    let calls_before = operator.aws_calls().await;
    api.create(
        &PostParams::default(),
        &blog("pair", json!({"image": "Not An Image", "container": {"cpu": 1024, "memoryMiB": 512}})),
    )
    .await
    .expect("the schema accepts it");
    let bd = wait_for(&api, "pair", "InvalidSpec", |bd| {
        condition(bd, "Ready").is_some_and(|c| c.status == "False" && c.reason == "InvalidSpec")
    })
    .await;
    let message = &condition(&bd, "Ready").expect("Ready").message;
    assert!(message.contains("spec.image") && message.contains("memoryMiB 512"), "{message}");
    let calls_after = operator.aws_calls().await;
    assert_eq!(calls_before, calls_after, "an invalid spec makes no AWS call");

    // Fixing the spec lets it proceed; deleting works whatever the spec said.
    api.patch(
        "pair",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": "blog:1", "function": {}, "container": {"enabled": false}}})),
    )
    .await
    .expect("fix");
    wait_for(&api, "pair", "Ready after the fix", ready).await;
    api.delete("pair", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "pair").await;
    operator.kill().await;
}

#[tokio::test]
async fn a_restarted_operator_converges_without_duplicates() {
    let (stack, _client, ns, api) = setup("restart").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;

    api.create(&PostParams::default(), &blog("again", json!({"image": "blog:1", "function": {}, "container": {}})))
        .await
        .expect("create");
    // Start the operator and kill it after a growing delay, so each run is cut off at a different
    // point of the create; every later run must pick up where the last one stopped.
    let mut names = None;
    for delay_ms in [300, 600, 900, 1200, 1500, 1800] {
        let operator = Operator::start(stack, &ns.name, 60).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        operator.kill().await;
        if names.is_none() {
            names =
                api.get("again").await.ok().filter(|bd| bd.uid().is_some()).map(|bd| (owner_of(&bd), names_of(&bd)));
        }
        if let Some((owner, names)) = &names {
            eprintln!(
                "killed after {delay_ms} ms: {:?} {:?}",
                aws.count(names).await,
                aws.count_container(owner, names).await
            );
        }
    }
    let (owner, names) = names.expect("the object exists");
    assert!(aws.count(&names).await.values().all(|n| *n <= 1), "no duplicate after the kills");

    let operator = Operator::start(stack, &ns.name, 60).await;
    wait_for(&api, "again", "Ready after the restart", ready).await;
    assert_eq!(aws.count(&names).await, one_of_each());
    assert_eq!(aws.count_container(&owner, &names).await, container_each(1));

    // And a third start, with everything in place, still makes nothing new.
    operator.kill().await;
    let operator = Operator::start(stack, &ns.name, 60).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(aws.count(&names).await, one_of_each());
    assert_eq!(aws.count_container(&owner, &names).await, container_each(1));
    let calls = operator.aws_calls().await;
    assert!(calls.keys().all(|op| !is_mutating(op)), "a converged restart mutates nothing: {calls:?}");
    operator.kill().await;
}

#[tokio::test]
async fn resources_deleted_behind_its_back_come_back() {
    let (stack, _client, ns, api) = setup("drift").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    api.create(
        &PostParams::default(),
        &blog("drift", json!({"image": "blog:1", "function": {}, "table": {"deletionPolicy": "Delete"}})),
    )
    .await
    .expect("create");
    let bd = wait_for(&api, "drift", "Ready", ready).await;
    let names = names_of(&bd);
    let old_api = bd.status.as_ref().and_then(|s| s.resources.api_id.clone()).expect("api id");

    aws.lambda.delete_function().function_name(&names.function).send().await.expect("delete function");
    aws.apigateway.delete_api().api_id(&old_api).send().await.expect("delete api");
    let back = wait_for(&api, "drift", "a new API after the resync", |bd| {
        ready(bd) && bd.status.as_ref().and_then(|s| s.resources.api_id.as_deref()).is_some_and(|id| id != old_api)
    })
    .await;
    assert_eq!(aws.count(&names).await, one_of_each());
    assert!(back.status.and_then(|s| s.function_url).is_some());

    // deletionPolicy Delete takes the table too.
    api.delete("drift", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "drift").await;
    assert_eq!(
        aws.count(&names).await,
        BTreeMap::from([("api", 0), ("function", 0), ("log group", 0), ("role", 0), ("table", 0)])
    );
    operator.kill().await;
}

#[tokio::test]
async fn both_variants_update_disable_and_delete() {
    let (stack, _client, ns, api) = setup("both").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    let spec = json!({
        "image": "blog-service:1.0.0",
        "function": {},
        "container": {"cpu": 256, "memoryMiB": 512, "desiredCount": 2, "port": 8080},
        "table": {"deletionPolicy": "Delete"}
    });
    api.create(&PostParams::default(), &blog("both", spec)).await.expect("create");
    let bd = wait_for(&api, "both", "Ready", ready).await;
    let status = bd.status.clone().expect("status");
    assert!(status.function_url.is_some());
    assert!(
        status.container_url.as_deref().is_some_and(|u| u.starts_with("http://") && u.contains("elb")),
        "{status:?}"
    );
    let tasks = status.container_tasks.clone().expect("task counts");
    assert_eq!((tasks.desired, tasks.running), (2, 0), "moto never starts tasks, and the status says so");
    let container_ready = condition(&bd, "ContainerReady").expect("ContainerReady");
    assert_eq!(container_ready.reason, "Provisioned");
    assert!(container_ready.message.contains("0 of 2 tasks running"), "{}", container_ready.message);

    let (owner, names) = (owner_of(&bd), names_of(&bd));
    assert_eq!(aws.count(&names).await, one_of_each());
    assert_eq!(aws.count_container(&owner, &names).await, container_each(1));
    let service =
        aws.ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await.expect("service");
    let service = &service.services()[0];
    // (moto drops deploymentConfiguration; the circuit breaker is checked on the request in a unit test.)
    let first_revision = service.task_definition().expect("task definition").to_owned();

    // A no-op resync mutates nothing, for the container variant too.
    let before = operator.aws_calls().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = operator.aws_calls().await;
    let mutated: Vec<_> = after.iter().filter(|(op, n)| is_mutating(op) && before.get(*op) != Some(n)).collect();
    assert!(mutated.is_empty(), "no-op resyncs mutated AWS: {mutated:?}");
    eprintln!("calls after creating both variants and resyncing: {after:?}");

    // cpu, memory and image: a new task-definition revision, and the service moves to it.
    let patch = json!({"spec": {"image": "blog-service:1.1.0", "container": {"cpu": 512, "memoryMiB": 1024, "desiredCount": 3}}});
    api.patch("both", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    let bd = wait_for(&api, "both", "Ready at generation 2", |bd| ready(bd) && bd.metadata.generation == Some(2)).await;
    let service =
        aws.ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await.expect("service");
    let service = &service.services()[0];
    let revision = service.task_definition().expect("task definition").to_owned();
    assert_ne!(revision, first_revision, "a new revision");
    assert_eq!(service.desired_count(), 3);
    let definition = aws.ecs.describe_task_definition().task_definition(&revision).send().await.expect("describe");
    let definition = definition.task_definition().expect("definition");
    assert_eq!((definition.cpu(), definition.memory()), (Some("512"), Some("1024")));
    assert_eq!(definition.container_definitions()[0].image(), Some("blog-service:1.1.0"));
    assert_eq!(bd.status.and_then(|s| s.resources.task_definition_arn), Some(revision));
    // The function follows the image too.
    let function = aws.lambda.get_function().function_name(&names.function).send().await.expect("function");
    assert_eq!(function.code().and_then(|c| c.image_uri()), Some("blog-service:1.1.0"));

    // Disable the container: its resources go, the function stays untouched.
    let function_before =
        aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
    api.patch("both", &PatchParams::default(), &Patch::Merge(json!({"spec": {"container": {"enabled": false}}})))
        .await
        .expect("patch");
    let bd = wait_for(&api, "both", "ContainerReady Disabled", |bd| {
        ready(bd) && condition(bd, "ContainerReady").is_some_and(|c| c.reason == "Disabled")
    })
    .await;
    assert_eq!(aws.count_container(&owner, &names).await, container_each(0));
    assert_eq!(aws.count(&names).await, one_of_each());
    let function_after =
        aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
    assert_eq!(function_before.revision_id(), function_after.revision_id(), "the function was not touched");
    assert!(bd.status.as_ref().is_some_and(|s| s.container_url.is_none() && s.container_tasks.is_none()));

    // Delete: everything goes, the table too (deletionPolicy Delete).
    api.delete("both", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "both").await;
    assert_eq!(
        aws.count(&names).await,
        BTreeMap::from([("api", 0), ("function", 0), ("log group", 0), ("role", 0), ("table", 0)])
    );
    assert_eq!(aws.count_container(&owner, &names).await, container_each(0));
    operator.kill().await;
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_follower_takes_over() {
    let (stack, client, ns, api) = setup("leader").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let election = ["--leader-election", "--lease-namespace", &ns.name, "--lease-duration-seconds", "3"];
    let first = Operator::start_with(stack, &ns.name, 60, &election, &stack.kubeconfig).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = Operator::start_with(stack, &ns.name, 60, &election, &stack.kubeconfig).await;

    api.create(&PostParams::default(), &blog("led", json!({"image": "blog:1", "function": {}}))).await.expect("create");
    let bd = wait_for(&api, "led", "Ready", ready).await;
    let names = names_of(&bd);
    let (a, b) = (first.reconciles().await, second.reconciles().await);
    assert!(a > 0 && b == 0, "only the first (the leader) reconciles: first {a}, second {b}");
    assert!(second.aws_calls().await.is_empty(), "the follower made no AWS call");

    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), &ns.name);
    let holder = |lease: Option<k8s_openapi::api::coordination::v1::Lease>| {
        lease.and_then(|l| l.spec).and_then(|s| s.holder_identity).unwrap_or_default()
    };
    let leader = holder(leases.get_opt("blog-operator").await.expect("lease"));

    // Kill the leader; the follower must take the Lease and carry on.
    first.kill().await;
    let killed = Instant::now();
    loop {
        let now = holder(leases.get_opt("blog-operator").await.expect("lease"));
        if !now.is_empty() && now != leader {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no handover within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let handover = killed.elapsed();
    eprintln!("leader handover took {handover:?} (lease duration 3 s)");
    assert!(handover <= Duration::from_secs(3 + 1 + 2), "handover within lease duration + renew period: {handover:?}");

    api.patch("led", &PatchParams::default(), &Patch::Merge(json!({"spec": {"function": {"memoryMiB": 768}}})))
        .await
        .expect("patch");
    wait_for(&api, "led", "Ready at generation 2 under the new leader", |bd| {
        ready(bd) && bd.metadata.generation == Some(2)
    })
    .await;
    assert!(second.reconciles().await > 0, "the new leader reconciles");
    assert_eq!(aws.count(&names).await, one_of_each(), "nothing made twice across the handover");
    second.kill().await;
}

/// A kubeconfig for the chart's ServiceAccount, with a token from the TokenRequest API.
async fn service_account_kubeconfig(stack: &Stack, client: &Client) -> PathBuf {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    // Install exactly what users install: manifests/install.yaml (no pod runs: the stack has no
    // scheduler or kubelet, which is fine, the test runs the operator itself under that identity).
    let applied = stack
        .kubectl()
        .args(["apply", "-f"])
        .arg(blog_tests::workspace_root().join("manifests/install.yaml"))
        .output()
        .expect("kubectl apply");
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "blog-system");
    let request = TokenRequest {
        spec: TokenRequestSpec { audiences: vec![], expiration_seconds: Some(3600), ..Default::default() },
        ..Default::default()
    };
    let token = accounts
        .create_token_request("blog-operator", &PostParams::default(), &request)
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

#[tokio::test]
async fn the_operator_works_under_its_least_privilege_identity() {
    let (stack, client, ns, api) = setup("rbac").await;
    let _logs = stack.logs_on_failure();
    let kubeconfig = service_account_kubeconfig(stack, &client).await;
    let election = ["--leader-election", "--lease-namespace", "blog-system", "--lease-name", &ns.name];
    let operator = Operator::start_with(stack, &ns.name, 60, &election, &kubeconfig).await;

    api.create(&PostParams::default(), &blog("rbac", json!({"image": "blog:1", "function": {}, "container": {}})))
        .await
        .expect("create");
    wait_for(&api, "rbac", "Ready under the ServiceAccount", ready).await;
    api.delete("rbac", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "rbac").await;

    // Anything outside its role is refused.
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).expect("read"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let sa = Client::try_from(config).expect("client");
    let forbidden = |result: Result<(), kube::Error>, what: &str| match result {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{what}: {status:?}"),
        other => panic!("{what} should be forbidden, got {other:?}"),
    };
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(sa.clone());
    forbidden(secrets.list(&Default::default()).await.map(drop), "listing secrets");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(sa.clone(), &ns.name);
    forbidden(leases.list(&Default::default()).await.map(drop), "leases outside its namespace");
    let bds: Api<BlogDeployment> = Api::namespaced(sa.clone(), &ns.name);
    forbidden(
        bds.create(&PostParams::default(), &blog("x", json!({"image": "b:1", "function": {}}))).await.map(drop),
        "creating a BlogDeployment",
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sa);
    forbidden(namespaces.delete(&ns.name, &DeleteParams::default()).await.map(drop), "deleting a namespace");
    operator.kill().await;
}

/// Writes datapoints (now) into the emulator's CloudWatch.
async fn put_metrics(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    values: &[f64],
) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let dimensions: Vec<Dimension> =
        dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(*v).build()).collect();
    let data: Vec<MetricDatum> = values
        .iter()
        .map(|v| {
            MetricDatum::builder()
                .metric_name(metric)
                .set_dimensions(Some(dimensions.clone()))
                .value(*v)
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now()))
                .build()
        })
        .collect();
    cloudwatch
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("put metric data");
}

#[tokio::test]
async fn allocation_recommends_from_metrics_then_auto_applies_and_holds() {
    let (stack, _client, ns, api) = setup("alloc").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let operator = Operator::start(stack, &ns.name, 2).await;
    let spec = json!({
        "image": "blog:1",
        "function": {"memoryMiB": 1024},
        "container": {"cpu": 1024, "memoryMiB": 2048, "desiredCount": 3},
        "allocation": {"mode": "Recommend", "cooldownMinutes": 0}
    });
    api.create(&PostParams::default(), &blog("alloc", spec)).await.expect("create");
    let bd = wait_for(&api, "alloc", "Ready", ready).await;
    let names = names_of(&bd);

    // A light load: 40–60 ms handlers at 1024 MiB, 5 % CPU on three 1-vCPU tasks.
    put_metrics(&cloudwatch, "AWS/Lambda", "Duration", &[("FunctionName", &names.function)], &[40.0, 45.0, 50.0, 60.0])
        .await;
    put_metrics(
        &cloudwatch,
        "AWS/Lambda",
        "Invocations",
        &[("FunctionName", &names.function)],
        &[900.0, 900.0, 900.0, 900.0],
    )
    .await;
    let service = [("ClusterName", names.cluster.as_str()), ("ServiceName", names.service.as_str())];
    put_metrics(&cloudwatch, "AWS/ECS", "CPUUtilization", &service, &[4.0, 5.0, 6.0]).await;
    put_metrics(&cloudwatch, "AWS/ECS", "MemoryUtilization", &service, &[30.0, 30.0, 30.0]).await;
    // No errors or throttles, and 20–50 ms at the load balancer: nothing holds the shrink back.
    put_metrics(&cloudwatch, "AWS/Lambda", "Errors", &[("FunctionName", &names.function)], &[0.0, 0.0]).await;
    put_metrics(&cloudwatch, "AWS/Lambda", "Throttles", &[("FunctionName", &names.function)], &[0.0]).await;
    let balancer_arn = bd.status.as_ref().and_then(|s| s.resources.load_balancer_arn.clone()).expect("balancer ARN");
    let balancer = balancer_arn.split_once("loadbalancer/").expect("ALB ARN").1;
    put_metrics(
        &cloudwatch,
        "AWS/ApplicationELB",
        "TargetResponseTime",
        &[("LoadBalancer", balancer)],
        &[0.02, 0.03, 0.05],
    )
    .await;

    let recommended = wait_for(&api, "alloc", "a recommendation in status", |bd| {
        bd.status.as_ref().and_then(|s| s.allocation.as_ref()).and_then(|a| a.function_memory_mib) == Some(384)
    })
    .await;
    let allocation = recommended.status.as_ref().and_then(|s| s.allocation.clone()).expect("allocation");
    eprintln!("recommendation: {allocation:?}");
    assert_eq!(allocation.function_p95_ms, Some(60.0), "moto has no percentiles: the maximum stands in");
    assert_eq!((allocation.function_errors, allocation.function_throttles), (Some(0), Some(0)));
    assert_eq!(allocation.container_p95_ms, Some(50.0));
    // The notes of the first reconciles (no metrics yet) are gone from the status, not merged in.
    assert!(allocation.notes.is_empty(), "{:?}", allocation.notes);
    assert_eq!(
        (allocation.container_cpu, allocation.container_memory_mib, allocation.container_tasks),
        (Some(512), Some(2048), Some(1))
    );
    assert!(
        (allocation.requests_per_second - 1.0).abs() < 1e-9,
        "3,600 invocations in an hour: {}",
        allocation.requests_per_second
    );
    assert!(allocation.function_monthly_usd.is_some() && allocation.container_monthly_usd.is_some());
    assert!(allocation.cheaper.is_some() && allocation.break_even_requests_per_second.is_some());
    // Recommend changes nothing in AWS.
    let config = aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
    assert_eq!(config.memory_size(), Some(1024));

    // Auto applies it: new function memory, a new task-definition revision, fewer tasks.
    api.patch("alloc", &PatchParams::default(), &Patch::Merge(json!({"spec": {"allocation": {"mode": "Auto"}}})))
        .await
        .expect("patch");
    wait_for(&api, "alloc", "Auto applied", |bd| {
        ready(bd)
            && bd.metadata.generation == Some(2)
            && bd.status.as_ref().and_then(|s| s.allocation.as_ref()).is_some_and(|a| a.last_change_time.is_some())
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let config =
            aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
        let live =
            aws.lambda.get_function_configuration().function_name(&names.function).qualifier("live").send().await;
        // Applied means served: the alias moved to a version with the new memory too.
        if config.memory_size() == Some(384) && live.is_ok_and(|l| l.memory_size() == Some(384)) {
            break;
        }
        assert!(Instant::now() < deadline, "function memory not applied: {:?}", config.memory_size());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let service_now =
        aws.ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await.expect("service");
    let service_now = &service_now.services()[0];
    assert_eq!(service_now.desired_count(), 1);
    let definition = aws
        .ecs
        .describe_task_definition()
        .task_definition(service_now.task_definition().unwrap_or_default())
        .send()
        .await;
    let definition = definition.expect("task definition");
    assert_eq!(definition.task_definition().and_then(|d| d.cpu()), Some("512"));

    // The next reconciles on the same data change nothing.
    let before = operator.aws_calls().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = operator.aws_calls().await;
    let mutated: Vec<_> = after.iter().filter(|(op, n)| is_mutating(op) && before.get(*op) != Some(n)).collect();
    assert!(mutated.is_empty(), "Auto flapped: {mutated:?}");
    let reads = after.get("CloudWatch/GetMetricStatistics").copied().unwrap_or(0);
    let reconciles = after.get("Lambda/GetFunction").copied().unwrap_or(0);
    eprintln!("CloudWatch reads over the test: {reads} in {reconciles} reconciles");
    operator.kill().await;
}

#[tokio::test]
async fn autoscaling_is_created_updated_and_removed_with_the_spec() {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let (stack, _client, ns, api) = setup("scale").await;
    let _logs = stack.logs_on_failure();
    let aas = aws_sdk_applicationautoscaling::Client::new(&stack.sdk_config().await);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let operator = Operator::start(stack, &ns.name, 2).await;
    let scaling = json!({
        "minTasks": 1, "maxTasks": 6, "targetCpuPercent": 55, "targetMemoryPercent": 70, "targetRequestsPerTask": 500,
        "scheduled": [{"name": "weekday-mornings", "schedule": "cron(0 8 ? * MON-FRI *)", "timezone": "Europe/Berlin", "minTasks": 2, "maxTasks": 8}],
        "stepScaling": [
            {"name": "cpu-out", "metric": "CPUUtilization", "when": "Above", "steps": [{"threshold": 90, "change": 3}, {"threshold": 70, "change": 1}]},
            {"name": "memory-in", "metric": "MemoryUtilization", "when": "Below", "steps": [{"threshold": 30, "change": -1}], "periodSeconds": 300, "evaluationPeriods": 3}
        ]
    });
    let spec = json!({"image": "blog:1", "container": {"desiredCount": 2, "autoscaling": scaling}, "allocation": {"mode": "Manual"}});
    api.create(&PostParams::default(), &blog("scale", spec)).await.expect("create");
    let bd = wait_for(&api, "scale", "Ready", ready).await;
    let names = names_of(&bd);
    let id = format!("service/{}/{}", names.cluster, names.service);
    let state = || async {
        let targets = aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&id)
            .send()
            .await
            .expect("targets");
        let policies = aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .send()
            .await
            .expect("policies");
        let actions = aas
            .describe_scheduled_actions()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .send()
            .await
            .expect("actions");
        let bounds = targets.scalable_targets().first().map(|t| (t.min_capacity(), t.max_capacity()));
        let mut tracking: Vec<(String, f64)> = Vec::new();
        // A step policy as "name: lower..upper=change ...", and its ARN.
        let mut steps: Vec<(String, String)> = Vec::new();
        for p in policies.scaling_policies() {
            if let Some(c) = p.target_tracking_scaling_policy_configuration() {
                tracking.push((p.policy_name().to_owned(), c.target_value()));
            }
            if let Some(c) = p.step_scaling_policy_configuration() {
                let bound = |b: Option<f64>| b.map(|b| b.to_string()).unwrap_or_default();
                let intervals: Vec<String> = c
                    .step_adjustments()
                    .iter()
                    .map(|s| {
                        let (lower, upper) = (s.metric_interval_lower_bound(), s.metric_interval_upper_bound());
                        format!("{}..{}={}", bound(lower), bound(upper), s.scaling_adjustment())
                    })
                    .collect();
                steps.push((format!("{}: {}", p.policy_name(), intervals.join(" ")), p.policy_arn().to_owned()));
            }
        }
        tracking.sort_by(|a, b| a.0.cmp(&b.0));
        steps.sort();
        let actions: Vec<String> = actions
            .scheduled_actions()
            .iter()
            .map(|a| format!("{} {}", a.scheduled_action_name(), a.schedule()))
            .collect();
        (bounds, tracking, steps, actions)
    };
    // Each alarm as "name metric comparison threshold period×periods", with the policy ARN it fires.
    let alarms = || async {
        let out = cloudwatch.describe_alarms().alarm_name_prefix(&names.service).send().await.expect("alarms");
        let mut alarms: Vec<(String, Vec<String>)> = out
            .metric_alarms()
            .iter()
            .map(|a| {
                let summary = format!(
                    "{} {} {} {} {}x{}",
                    a.alarm_name().unwrap_or_default().trim_start_matches(&names.service),
                    a.metric_name().unwrap_or_default(),
                    a.comparison_operator().map(|c| c.as_str()).unwrap_or_default(),
                    a.threshold().unwrap_or_default(),
                    a.period().unwrap_or_default(),
                    a.evaluation_periods().unwrap_or_default(),
                );
                (summary, a.alarm_actions().to_vec())
            })
            .collect();
        alarms.sort();
        alarms
    };
    let (bounds, tracking, steps, actions) = state().await;
    assert_eq!(bounds, Some((1, 6)));
    assert_eq!(
        tracking,
        [("blog-cpu".to_owned(), 55.0), ("blog-memory".to_owned(), 70.0), ("blog-requests".to_owned(), 500.0)]
    );
    let step_names: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(step_names, ["blog-step-cpu-out: 0..20=1 20..=3", "blog-step-memory-in: ..0=-1"]);
    assert_eq!(actions, ["blog-schedule-weekday-mornings cron(0 8 ? * MON-FRI *)"]);
    let found = alarms().await;
    assert_eq!(
        found,
        [
            ("-step-cpu-out CPUUtilization GreaterThanOrEqualToThreshold 70 60x2".to_owned(), vec![steps[0].1.clone()]),
            (
                "-step-memory-in MemoryUtilization LessThanOrEqualToThreshold 30 300x3".to_owned(),
                vec![steps[1].1.clone()]
            ),
        ]
    );
    let alarm_arn = cloudwatch
        .describe_alarms()
        .alarm_names(format!("{}-step-cpu-out", names.service))
        .send()
        .await
        .expect("alarm")
        .metric_alarms()[0]
        .alarm_arn()
        .expect("arn")
        .to_owned();
    let tags = cloudwatch.list_tags_for_resource().resource_arn(alarm_arn).send().await.expect("tags");
    assert!(tags.tags().iter().any(|t| t.key() == Some("blogs.serverless.dev/uid")), "alarm tags: {:?}", tags.tags());

    // Nothing to change: no mutating call (Register/Put/Delete would show).
    let before = operator.aws_calls().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = operator.aws_calls().await;
    let mutated: Vec<_> = after.iter().filter(|(op, n)| is_mutating(op) && before.get(*op) != Some(n)).collect();
    assert!(mutated.is_empty(), "no-op resyncs mutated AWS: {mutated:?}");

    // A platform team's own action on the same target: not the operator's to delete.
    aas.put_scheduled_action()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&id)
        .scalable_dimension(aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount)
        .scheduled_action_name("platform-freeze")
        .schedule("cron(0 0 1 12 ? *)")
        .send()
        .await
        .expect("a foreign scheduled action");

    // Change the CPU target, the bounds and the scale-out steps; drop the memory policy, the
    // scale-in step policy and the schedule.
    let changed = json!({"spec": {"container": {"autoscaling": {"minTasks": 2, "maxTasks": 5, "targetCpuPercent": 65, "targetMemoryPercent": null, "targetRequestsPerTask": 500, "scheduled": [],
        "stepScaling": [{"name": "cpu-out", "metric": "CPUUtilization", "when": "Above", "steps": [{"threshold": 80, "change": 2}]}]}}}});
    api.patch("scale", &PatchParams::default(), &Patch::Merge(changed)).await.expect("patch");
    wait_for(&api, "scale", "Ready at generation 2", |bd| ready(bd) && bd.metadata.generation == Some(2)).await;
    let (bounds, tracking, steps, actions) = state().await;
    assert_eq!(bounds, Some((2, 5)));
    assert_eq!(tracking, [("blog-cpu".to_owned(), 65.0), ("blog-requests".to_owned(), 500.0)]);
    assert_eq!(steps.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["blog-step-cpu-out: 0..=2"]);
    assert_eq!(actions, ["platform-freeze cron(0 0 1 12 ? *)"], "only the operator's own schedule goes");
    let found = alarms().await;
    assert_eq!(
        found.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["-step-cpu-out CPUUtilization GreaterThanOrEqualToThreshold 80 60x2"]
    );

    // Remove autoscaling: the scalable target (and its policies) go.
    let off = json!({"spec": {"container": {"autoscaling": null}}});
    api.patch("scale", &PatchParams::default(), &Patch::Merge(off)).await.expect("patch");
    wait_for(&api, "scale", "Ready at generation 3", |bd| ready(bd) && bd.metadata.generation == Some(3)).await;
    let (bounds, tracking, steps, _) = state().await;
    assert_eq!(bounds, None);
    assert!(tracking.is_empty() && steps.is_empty(), "{tracking:?} {steps:?}");
    assert!(alarms().await.is_empty(), "alarms outlived autoscaling");
    api.delete("scale", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "scale").await;
    operator.kill().await;
}

#[tokio::test]
async fn roles_carry_the_permissions_boundary_the_operator_is_given() {
    let (stack, _client, ns, api) = setup("bound").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let document =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]});
    let policy = aws
        .iam
        .create_policy()
        .policy_name(blog_tests::unique_name("boundary"))
        .policy_document(document.to_string())
        .send()
        .await
        .expect("boundary policy");
    let boundary = policy.policy().and_then(|p| p.arn()).expect("policy ARN").to_owned();
    let operator =
        Operator::start_with(stack, &ns.name, 2, &["--role-permissions-boundary", &boundary], &stack.kubeconfig).await;
    api.create(&PostParams::default(), &blog("bound", json!({"image": "b:1", "function": {}}))).await.expect("create");
    let bd = wait_for(&api, "bound", "Ready", ready).await;
    let names = names_of(&bd);
    let role_boundary = || async {
        let role = aws.iam.get_role().role_name(&names.function_role).send().await.expect("role");
        role.role().and_then(|r| r.permissions_boundary()).and_then(|b| b.permissions_boundary_arn()).map(str::to_owned)
    };
    assert_eq!(role_boundary().await.as_deref(), Some(boundary.as_str()));

    // Restarted without a boundary, the operator removes it from the roles it made.
    operator.kill().await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while role_boundary().await.is_some() {
        assert!(Instant::now() < deadline, "the boundary stayed on {}", names.function_role);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    api.delete("bound", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "bound").await;
    operator.kill().await;
}
