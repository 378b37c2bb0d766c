//! The install artifacts: the chart lints, its CRD and `manifests/install.yaml` match what the code
//! and the chart generate, and the real kube-apiserver of the local stack accepts every rendered
//! object (server-side dry run).

use std::path::PathBuf;
use std::process::Command;

use blog_tests::{Stack, tool};

fn root() -> PathBuf {
    blog_tests::workspace_root()
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_chart_ships_the_generated_crd() {
    let chart =
        std::fs::read_to_string(root().join("charts/blog-operator/crds/blogdeployments.blogs.serverless.dev.yaml"));
    let generated = blog_operator::crd_yaml().expect("CRD");
    assert!(
        chart.expect("chart CRD") == generated,
        "charts/blog-operator/crds/ is stale: copy crds/blogdeployments.blogs.serverless.dev.yaml there"
    );
}

/// The account the chart is rendered for in these tests (as in manifests/install.yaml).
const ACCOUNT: &str = "awsAccountId=123456789012";

#[test]
fn helm_lint_passes_and_install_yaml_is_the_rendered_chart() {
    let helm = tool("helm");
    run(Command::new(&helm).args(["lint", "--strict", "--set", ACCOUNT]).arg(root().join("charts/blog-operator")));
    // Without an account, a boundary or the explicit opt-out, the chart refuses to render.
    let bare =
        Command::new(&helm).args(["template", "x"]).arg(root().join("charts/blog-operator")).output().expect("helm");
    assert!(!bare.status.success() && String::from_utf8_lossy(&bare.stderr).contains("set awsAccountId"));
    let rendered = run(Command::new("bash").arg(root().join("scripts/render-install.sh")));
    let checked_in = std::fs::read_to_string(root().join("manifests/install.yaml")).expect("install.yaml");
    assert!(
        rendered == checked_in,
        "manifests/install.yaml is stale: scripts/render-install.sh > manifests/install.yaml"
    );
    // Probes and metrics on their own ports; the Service and the NetworkPolicy open only metrics.
    assert!(rendered.contains("--admin-addr=0.0.0.0:8081") && rendered.contains("--metrics-addr=0.0.0.0:8082"));
    assert!(rendered.contains("kind: NetworkPolicy") && rendered.contains("ingress: []"));
    // Leader election is on, every role gets the shipped boundary, and the RBAC has no wildcard.
    assert!(rendered.contains("--leader-election"));
    assert!(
        rendered.contains("--role-permissions-boundary=arn:aws:iam::123456789012:policy/blog-operator-role-boundary")
    );
    assert!(!rendered.contains("\"*\""), "no wildcard in the rendered RBAC");
    // The optional ServiceMonitor and the IRSA annotation render when asked for.
    let custom = run(Command::new(&helm).args(["template", "x"]).arg(root().join("charts/blog-operator")).args([
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "serviceAccount.roleArn=arn:aws:iam::123456789012:role/blog-operator",
        "--set",
        "replicas=2",
        "--set",
        "rolePermissionsBoundary=arn:aws:iam::123456789012:policy/blog-boundary",
    ]));
    assert!(custom.contains("--role-permissions-boundary=arn:aws:iam::123456789012:policy/blog-boundary"));
    assert!(custom.contains("kind: ServiceMonitor"));
    assert!(custom.contains("eks.amazonaws.com/role-arn: \"arn:aws:iam::123456789012:role/blog-operator\""));
    assert!(custom.contains("replicas: 2"));

    // A price override renders into a ConfigMap the operator can read.
    let priced = run(Command::new(&helm).args(["template", "x"]).arg(root().join("charts/blog-operator")).args([
        "--set",
        ACCOUNT,
        "--set-json",
        r#"prices={"fargateVcpuHour":0.04656,"albHour":0.0252}"#,
    ]));
    assert!(priced.contains("--prices=/etc/blog-operator/prices.json"));
    let json =
        priced.lines().find_map(|l| l.trim().strip_prefix("prices.json: ")).expect("prices.json in the ConfigMap");
    let json: String = serde_json::from_str(json).expect("a quoted JSON document");
    let prices: blog_operator::allocation::pricing::PriceTable = serde_json::from_str(&json).expect("a price table");
    assert_eq!((prices.fargate_vcpu_hour, prices.alb_hour), (0.04656, 0.0252));
    assert_eq!(prices.lambda_per_million_requests, 0.20, "unset prices keep their defaults");

    // A tenant policy renders into the same ConfigMap, parses as the operator parses it, and a
    // change to it changes the pod template (the operator reads it at start).
    let policy = r#"tenantPolicy={"allowedRegions":["us-west-1"],"limits":{"maxTasks":4}}"#;
    let guarded = run(Command::new(&helm).args(["template", "x"]).arg(root().join("charts/blog-operator")).args([
        "--set",
        ACCOUNT,
        "--set-json",
        policy,
    ]));
    assert!(guarded.contains("--tenant-policy=/etc/blog-operator/tenant-policy.json"));
    let json = guarded.lines().find_map(|l| l.trim().strip_prefix("tenant-policy.json: ")).expect("in the ConfigMap");
    let json: String = serde_json::from_str(json).expect("a quoted JSON document");
    let parsed: blog_operator::tenancy::TenantPolicy = serde_saphyr::from_str(&json).expect("a tenant policy");
    assert_eq!(
        (parsed.allowed_regions.as_slice(), parsed.limits.max_tasks),
        (["us-west-1".to_owned()].as_slice(), Some(4))
    );
    let checksum = |text: &str| text.lines().find(|l| l.contains("checksum/config:")).map(str::to_owned);
    assert_ne!(checksum(&guarded), checksum(&priced), "the pod template follows the configuration");
}

#[test]
fn a_namespace_scoped_install_has_no_cluster_wide_rbac() {
    let helm = tool("helm");
    let rendered = run(Command::new(&helm).args(["template", "x"]).arg(root().join("charts/blog-operator")).args([
        "--set",
        ACCOUNT,
        "--set",
        r"watchNamespace=team-a\,team-b",
    ]));
    assert!(!rendered.contains("kind: ClusterRole"), "no ClusterRole or ClusterRoleBinding");
    for ns in ["team-a", "team-b"] {
        let role = format!("kind: Role\nmetadata:\n  name: x-blog-operator\n  namespace: {ns}");
        let binding = format!("kind: RoleBinding\nmetadata:\n  name: x-blog-operator\n  namespace: {ns}");
        assert!(rendered.contains(&role) && rendered.contains(&binding), "Role and RoleBinding in {ns}:\n{rendered}");
    }
    assert!(rendered.contains("--namespace=team-a,team-b"));
    let cluster = run(Command::new(&helm)
        .args(["template", "x"])
        .arg(root().join("charts/blog-operator"))
        .args(["--set", ACCOUNT]));
    assert!(
        cluster.contains("kind: ClusterRole\n")
            && !cluster.contains("kind: RoleBinding\nmetadata:\n  name: x-blog-operator\n")
    );
}

#[test]
fn the_chart_wires_the_admission_webhook_with_a_certificate() {
    let helm = tool("helm");
    let chart = root().join("charts/blog-operator");
    // Without cert-manager: a certificate generated at install, its CA in the configuration.
    let generated = run(Command::new(&helm).args(["template", "x"]).arg(&chart).args(["--set", ACCOUNT]));
    for needed in [
        "kind: ValidatingWebhookConfiguration",
        "caBundle: ",
        "kind: Secret\ntype: kubernetes.io/tls",
        "--webhook-addr=0.0.0.0:9443",
        "failurePolicy: Fail",
        "timeoutSeconds: 5",
    ] {
        assert!(generated.contains(needed), "{needed} missing");
    }
    // With cert-manager: its Certificate, and the CA injected by it.
    let managed = run(Command::new(&helm).args(["template", "x"]).arg(&chart).args([
        "--set",
        ACCOUNT,
        "--api-versions",
        "cert-manager.io/v1",
    ]));
    for needed in
        ["kind: Certificate", "kind: Issuer", "cert-manager.io/inject-ca-from: default/x-blog-operator-webhook"]
    {
        assert!(managed.contains(needed), "{needed} missing");
    }
    assert!(!managed.contains("caBundle: "));
    // Namespace-scoped: the webhook sees only the watched namespaces.
    let scoped = run(Command::new(&helm).args(["template", "x"]).arg(&chart).args([
        "--set",
        ACCOUNT,
        "--set",
        r"watchNamespace=team-a\,team-b",
    ]));
    assert!(scoped.contains(r#"values: ["team-a","team-b"]"#), "namespaceSelector");
    // The real API server accepts every object of the default render, webhook included.
    let stack = Stack::shared();
    let _ = stack.kubectl().args(["create", "namespace", "default"]).output();
    let file = stack.dir.join(format!("chart-{}.yaml", std::process::id()));
    std::fs::write(&file, &generated).expect("write");
    let out = run(stack.kubectl().args(["apply", "--dry-run=server", "-n", "default", "-f"]).arg(&file));
    assert!(
        out.contains(
            "validatingwebhookconfiguration.admissionregistration.k8s.io/x-blog-operator created (server dry run)"
        ),
        "{out}"
    );
}

#[test]
fn the_chart_refuses_wrong_values() {
    let helm = tool("helm");
    let fixtures = root().join("operator/tests/fixtures/chart-values");
    let mut checked = 0;
    for entry in std::fs::read_dir(&fixtures).expect("fixtures") {
        let path = entry.expect("entry").path();
        for verb in [&["lint", "--strict"][..], &["template", "x"][..]] {
            let out = Command::new(&helm)
                .args(verb)
                .arg(root().join("charts/blog-operator"))
                .args(["--set", "allowRolesWithoutBoundary=true", "-f"])
                .arg(&path)
                .output()
                .expect("helm");
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(!out.status.success(), "{verb:?} accepted {}", path.display());
            assert!(said.contains("schema"), "{verb:?} {}: not refused by the schema: {said}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures");
}

#[test]
fn the_api_server_accepts_every_rendered_object() {
    let stack = Stack::shared();
    let _logs = stack.logs_on_failure();
    let install = root().join("manifests/install.yaml");
    // The dry run of namespaced objects needs their namespace and CRD to exist for real.
    run(stack.kubectl().args(["create", "namespace", "blog-system", "--dry-run=client", "-o", "yaml"]));
    let _ = stack.kubectl().args(["create", "namespace", "blog-system"]).output();
    let out = run(stack.kubectl().args(["apply", "--dry-run=server", "-f"]).arg(&install));
    for kind in [
        "customresourcedefinition",
        "serviceaccount",
        "clusterrole",
        "clusterrolebinding",
        "role",
        "rolebinding",
        "service",
        "deployment",
        "networkpolicy",
    ] {
        let accepted = out.lines().any(|l| l.starts_with(&format!("{kind}/")) || l.starts_with(&format!("{kind}.")));
        assert!(accepted, "{kind} missing from the dry run:\n{out}");
    }
    assert!(out.contains("(server dry run)"), "{out}");
}

/// Every key of `given` is in `parsed` (which may add defaults): a key the types do not know would
/// be dropped silently, by serde here and by the API server's pruning there.
fn keys_survive(given: &serde_json::Value, parsed: &serde_json::Value, at: &str) -> Vec<String> {
    match (given, parsed) {
        (serde_json::Value::Object(given), serde_json::Value::Object(parsed)) => given
            .iter()
            .flat_map(|(key, value)| match parsed.get(key) {
                Some(found) => keys_survive(value, found, &format!("{at}.{key}")),
                None => vec![format!("{at}.{key}")],
            })
            .collect(),
        (serde_json::Value::Array(given), serde_json::Value::Array(parsed)) => given
            .iter()
            .zip(parsed)
            .enumerate()
            .flat_map(|(i, (g, p))| keys_survive(g, p, &format!("{at}[{i}]")))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_example_passes_the_schema_and_the_operators_validation() {
    let stack = Stack::shared();
    let _logs = stack.logs_on_failure();
    run(stack.kubectl().args(["apply", "-f"]).arg(root().join("crds/blogdeployments.blogs.serverless.dev.yaml")));
    run(stack.kubectl().args(["wait", "--for=condition=Established", "crd/blogdeployments.blogs.serverless.dev"]));
    let _ = stack.kubectl().args(["create", "namespace", "blogs"]).output();
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("manifests/examples")).expect("examples") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("example");
        for document in text.split("\n---\n") {
            let value: serde_json::Value = serde_saphyr::from_str(document).expect("YAML");
            if value["kind"] != "BlogDeployment" {
                continue;
            }
            let typed: blog_operator::crd::BlogDeployment =
                serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let lost = keys_survive(&value["spec"], &serde_json::to_value(&typed.spec).expect("spec"), "spec");
            assert!(lost.is_empty(), "{}: unknown fields {lost:?}", path.display());
            assert_eq!(blog_operator::validate::validate(&typed.spec), Ok(()), "{}", path.display());
            checked += 1;
        }
        let out = run(stack.kubectl().args(["apply", "--dry-run=server", "-f"]).arg(&path));
        assert!(out.contains("blogdeployment.blogs.serverless.dev/"), "{}: {out}", path.display());
    }
    assert!(checked >= 2, "only {checked} BlogDeployments in manifests/examples");
}

/// The chart ships the dashboard as a ConfigMap for the Grafana sidecar only when asked, and every
/// CloudWatch query in it reads a metric the operator reads for sizing, by the same dimensions,
/// with values the operator's `deployment_info` series gives (the live check of its Prometheus
/// queries is the sizing end-to-end test).
#[test]
fn the_grafana_dashboard_ships_on_request_and_reads_what_the_operator_reads() {
    let helm = tool("helm");
    let chart = root().join("charts/blog-operator");
    let plain = run(Command::new(&helm).args(["template", "x", "--set", ACCOUNT]).arg(&chart));
    assert!(!plain.contains("grafana_dashboard"), "off by default");
    let rendered = run(Command::new(&helm).args(["template", "x", "--set", ACCOUNT]).arg(&chart).args([
        "--set",
        "grafanaDashboard.enabled=true",
        "--set",
        "grafanaDashboard.folder=Platform",
    ]));
    let config_map =
        rendered.split("\n---").find(|doc| doc.contains("blog-operator.json")).expect("a dashboard ConfigMap");
    assert!(config_map.contains("grafana_dashboard: \"1\"") && config_map.contains("grafana_folder: \"Platform\""));
    let parsed: serde_json::Value = serde_saphyr::from_str(config_map).expect("ConfigMap YAML");
    let json = parsed["data"]["blog-operator.json"].as_str().expect("dashboard JSON");
    let dashboard: serde_json::Value = serde_json::from_str(json).expect("the dashboard is JSON");
    assert_eq!(dashboard, blog_tests::dashboard::shipped());

    let variables = blog_tests::dashboard::variables(&dashboard);
    let info = blog_operator::metrics::Metrics::sample().render();
    for query in blog_tests::dashboard::cloudwatch_queries(&dashboard) {
        let read = blog_operator::allocation::SIZING_METRICS
            .iter()
            .find(|(_, namespace, metric, ..)| *namespace == query.namespace && *metric == query.metric);
        let Some((_, _, _, dimensions, percentile)) = read else {
            panic!("{query:?}: the operator does not read this metric")
        };
        assert_eq!(query.dimensions.keys().collect::<Vec<_>>(), dimensions.iter().collect::<Vec<_>>(), "{query:?}");
        let statistics: &[&str] = if *percentile { &["p95"] } else { &["Sum", "Average"] };
        assert!(statistics.contains(&query.statistic.as_str()), "{query:?}: the operator reads {statistics:?}");
        for value in query.dimensions.values() {
            let variable = value.strip_prefix('$').expect("a dimension's value is a variable");
            assert!(variables.iter().any(|v| v == variable), "{query:?}: no variable {variable}");
            assert!(info.contains(&format!("{variable}=")), "{query:?}: deployment_info has no label {variable}");
        }
    }
}
