//! The operator's AWS permissions, proven: `manifests/iam/operator-policy.json` grants exactly the
//! actions the code calls, and an IAM policy evaluator (`@cloud-copilot/iam-simulate`, installed by
//! `scripts/tools.sh install`) allows every call the operator makes, with the ARNs and request
//! context it makes it with, and denies every escalation attempt listed here. The roles' boundary
//! (`manifests/iam/role-boundary.json`) is evaluated the same way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use blog_operator::desired::{Names, Owner, ROLE_PATH};
use serde_json::{Value, json};

fn root() -> PathBuf {
    blog_tests::workspace_root()
}

fn policy(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join("manifests/iam").join(file)).expect("policy file");
    serde_json::from_str(&text).expect("policy JSON")
}

/// The operator's policy and the roles' boundary, as evaluated together.
struct Policies {
    operator: Value,
    boundary: Value,
}

/// As shipped in `manifests/iam/` (open: one team's own account).
fn shipped() -> Policies {
    Policies { operator: policy("operator-policy.json"), boundary: policy("role-boundary.json") }
}

/// A platform's tenant policy: two regions, images from its ECR under `blogs/<namespace>/`, names
/// under `<namespace>.blogs.example.com`.
const PLATFORM: &str = "allowedRegions: [us-west-1, eu-central-1]\n\
    allowedImagePrefixes: ['123456789012.dkr.ecr.us-west-1.amazonaws.com/blogs/${namespace}/']\n\
    domains: {allowedZones: [blogs.example.com], hostSuffixes: ['${namespace}.blogs.example.com']}\n";

/// The shipped policies rendered for [`PLATFORM`], as `blog-operator --print-iam-policy` does.
fn rendered() -> Policies {
    let tenants = blog_operator::tenancy::TenantPolicy::parse(PLATFORM).expect("tenant policy");
    let scope = blog_operator::iam_policy::scope(&tenants);
    Policies {
        operator: blog_operator::iam_policy::operator_policy(&scope),
        boundary: blog_operator::iam_policy::role_boundary(&scope),
    }
}

/// Every AWS operation in `operator/src/cloud/` as an IAM action: `map_sdk(SERVICE, "Op")` calls,
/// and the EC2 Query actions `call(region, "Op", ...)`. HTTP APIs are authorised by HTTP method.
fn actions_the_operator_calls() -> std::collections::BTreeSet<String> {
    let mut actions = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root().join("operator/src/cloud")).expect("cloud/") {
        let source = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
        let Some(service) = source.split("const SERVICE: &str = \"").nth(1).and_then(|s| s.split('"').next()) else {
            continue;
        };
        let marker = if service == "ec2" { ".call(region, \"" } else { "map_sdk(SERVICE, \"" };
        for operation in source.split(marker).skip(1).filter_map(|s| s.split('"').next()) {
            let action = match service {
                "apigatewayv2" => {
                    let method = ["Get", "Create", "Update", "Delete"]
                        .iter()
                        .zip(["GET", "POST", "PATCH", "DELETE"])
                        .find(|(prefix, _)| operation.starts_with(*prefix))
                        .map(|(_, method)| method)
                        .unwrap_or_else(|| panic!("no HTTP method known for apigatewayv2 {operation}"));
                    format!("apigateway:{method}")
                }
                service => format!("{service}:{operation}"),
            };
            actions.insert(action);
        }
    }
    actions
}

#[test]
fn the_iam_policy_grants_exactly_what_the_operator_calls() {
    let text = std::fs::read_to_string(root().join("manifests/iam/operator-policy.json")).expect("policy");
    let policy: serde_json::Value = serde_json::from_str(&text).expect("policy JSON");
    let mut granted = std::collections::BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("statements") {
        assert_eq!(statement["Effect"], "Allow");
        granted.extend(blog_operator::iam_policy::actions(statement).into_iter().map(str::to_owned));
    }
    let called = actions_the_operator_calls();
    assert!(called.len() > 60, "the scan found too few calls: {called:?}");
    let missing: Vec<_> = called.difference(&granted).collect();
    assert!(missing.is_empty(), "manifests/iam/operator-policy.json lacks {missing:?}");
    // Granted without a call of that name (tagging on create, handing roles to Lambda and ECS,
    // the service-linked roles, what DynamoDB checks when it fills a replica): declared beside
    // the call that causes it.
    let declared: std::collections::BTreeSet<&str> = blog_operator::cloud::declared_calls().map(|c| c.action).collect();
    let unused: Vec<_> = granted.iter().filter(|a| !called.contains(*a) && !declared.contains(a.as_str())).collect();
    assert!(unused.is_empty(), "the policy grants actions the operator never calls: {unused:?}");
}

const ACCOUNT: &str = "123456789012";
/// A host of namespace `blogs` under [`PLATFORM`]'s suffix.
const HOST: &str = "demo.blogs.blogs.example.com";
const RECORD_NAMES: &str = "route53:ChangeResourceRecordSetsNormalizedRecordNames";
const REGION: &str = "us-west-1";
const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/blog-operator-role-boundary";

/// One request to evaluate: who asks (the operator, or a role it made), what, on what, with what.
#[derive(Clone)]
struct Request {
    name: String,
    action: &'static str,
    resource: String,
    context: BTreeMap<String, Value>,
    /// `None`: the operator; `Some(inline)`: a role the operator made, with this inline policy,
    /// under the shipped boundary.
    role_policy: Option<Value>,
    /// The resource's own policy (a role's trust policy), for a request across accounts.
    resource_policy: Option<Value>,
}

fn op(name: &str, action: &'static str, resource: impl Into<String>, context: &[(&str, Value)]) -> Request {
    let mut context: BTreeMap<String, Value> = context.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    context.insert("aws:PrincipalAccount".into(), json!(ACCOUNT));
    // AWS sets aws:ResourceAccount from the resource's ARN.
    let resource: String = resource.into();
    if let Some(account) = resource.split(':').nth(4).filter(|a| !a.is_empty()) {
        context.insert("aws:ResourceAccount".into(), json!(account));
    }
    // IAM and Route 53 are global (their endpoint is us-east-1); the rest name the resource's region.
    let global = action.starts_with("iam:") || action.starts_with("route53:");
    let region = resource.split(':').nth(3).filter(|r| !r.is_empty()).unwrap_or(REGION);
    context.entry("aws:RequestedRegion".into()).or_insert_with(|| json!(if global { "us-east-1" } else { region }));
    Request { name: name.to_owned(), action, resource, context, role_policy: None, resource_policy: None }
}

fn arn(service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
}

/// A `ChangeResourceRecordSets` request's context: the record types and normalized names it changes.
fn record_change(types: &[&str], names: &[&str]) -> Vec<(&'static str, Value)> {
    vec![("route53:ChangeResourceRecordSetsRecordTypes", json!(types)), (RECORD_NAMES, json!(names))]
}

fn tagged(key: &str) -> (&'static str, Value) {
    (
        if key == "request" {
            "aws:RequestTag/app.kubernetes.io/managed-by"
        } else {
            "aws:ResourceTag/app.kubernetes.io/managed-by"
        },
        json!("blog-operator"),
    )
}

/// The values of the `{placeholders}` in the adapters' declared calls, for the object `n`.
/// How many of [`placeholders`] are not the object's names.
const FIXED: usize = 4;

fn placeholders(n: &Names) -> Vec<(&'static str, String)> {
    let fixed = [("region", REGION), ("account", ACCOUNT), ("host", HOST), ("boundary", BOUNDARY)];
    let named = [
        ("role_path", &ROLE_PATH.to_owned()),
        ("table", &n.table),
        ("function", &n.function),
        ("function_role", &n.function_role),
        ("function_log_group", &n.function_log_group),
        ("write_token_secret", &n.write_token_secret),
        ("api", &n.api),
        ("cluster", &n.cluster),
        ("service", &n.service),
        ("task_family", &n.task_family),
        ("execution_role", &n.execution_role),
        ("task_role", &n.task_role),
        ("container_log_group", &n.container_log_group),
        ("load_balancer", &n.load_balancer),
        ("target_group", &n.target_group),
        ("alternate_target_group", &n.alternate_target_group),
        ("infrastructure_role", &n.infrastructure_role),
    ];
    fixed.into_iter().map(|(k, v)| (k, v.to_owned())).chain(named.into_iter().map(|(k, v)| (k, v.clone()))).collect()
}

fn expand(text: &str, values: &[(&str, String)]) -> String {
    let expanded = values.iter().fold(text.to_owned(), |t, (k, v)| t.replace(&format!("{{{k}}}"), v));
    assert!(!expanded.contains('{') || expanded.starts_with('{'), "a placeholder without a value in {text}");
    expanded
}

/// Every call the operator makes, as it makes it: the calls each adapter declares beside its code
/// ([`blog_operator::cloud::Call`]), for the object `n`.
fn operator_calls(n: &Names) -> Vec<Request> {
    declared_as(&placeholders(n))
}

fn declared_as(values: &[(&str, String)]) -> Vec<Request> {
    blog_operator::cloud::declared_calls()
        .map(|call| {
            let context: Vec<(&str, Value)> = call
                .context
                .iter()
                .map(|(key, value)| (*key, serde_json::from_str(&expand(value, values)).expect("a JSON context value")))
                .collect();
            op(call.what, call.action, expand(call.resource, values), &context)
        })
        .collect()
}

/// The declared calls that name one of the object's resources, made on another app's resource of
/// the same kind (a name the operator did not derive).
fn on_another_apps_resources(n: &Names) -> Vec<Request> {
    let theirs: Vec<(&str, String)> = placeholders(n)
        .into_iter()
        .enumerate()
        .map(|(i, (k, v))| match (i < FIXED, k) {
            (true, _) => (k, v),
            (_, "role_path") => (k, "/payments/".to_owned()),
            _ => (k, format!("payments-{}", k.replace('_', "-"))),
        })
        .collect();
    let ours = operator_calls(n);
    declared_as(&theirs)
        .into_iter()
        .zip(ours)
        .filter(|(theirs, ours)| theirs.resource != ours.resource)
        .map(|(t, _)| t)
        .collect()
}

/// What someone holding the operator's credentials might try; each must be denied.
fn escalations(n: &Names) -> Vec<Request> {
    let ours = |name: &str| format!("arn:aws:iam::{ACCOUNT}:role{ROLE_PATH}{name}");
    let admin = format!("arn:aws:iam::{ACCOUNT}:role/admin");
    let foreign_sg = arn("ec2", "security-group/sg-0fffffffffffffff0");
    let foreign_tag = ("aws:ResourceTag/app.kubernetes.io/managed-by", json!("someone-else"));
    vec![
        op("pushing an image", "ecr:PutImage", arn("ecr", "repository/team/blog"), &[]),
        op("opening a repository to others", "ecr:SetRepositoryPolicy", arn("ecr", "repository/team/blog"), &[]),
        op(
            "reading another account's images",
            "ecr:BatchGetImage",
            format!("arn:aws:ecr:{REGION}:210987654321:repository/team/blog"),
            &[],
        ),
        op("a role without the boundary", "iam:CreateRole", ours(&n.function_role), &[]),
        op(
            "a role with another boundary",
            "iam:CreateRole",
            ours(&n.function_role),
            &[("iam:PermissionsBoundary", json!(format!("arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess")))],
        ),
        op(
            "a role outside the operator's path",
            "iam:CreateRole",
            admin.clone(),
            &[("iam:PermissionsBoundary", json!(BOUNDARY))],
        ),
        op(
            "removing a boundary",
            "iam:DeleteRolePermissionsBoundary",
            ours(&n.function_role),
            &[("iam:PermissionsBoundary", json!(BOUNDARY))],
        ),
        op("widening a trust policy", "iam:UpdateAssumeRolePolicy", ours(&n.function_role), &[]),
        op("an inline policy on a role without the boundary", "iam:PutRolePolicy", ours(&n.task_role), &[]),
        op(
            "an inline policy on another role",
            "iam:PutRolePolicy",
            admin.clone(),
            &[("iam:PermissionsBoundary", json!(BOUNDARY))],
        ),
        op(
            "attaching a managed policy",
            "iam:AttachRolePolicy",
            ours(&n.task_role),
            &[
                ("iam:PermissionsBoundary", json!(BOUNDARY)),
                ("iam:PolicyARN", json!("arn:aws:iam::aws:policy/AdministratorAccess")),
            ],
        ),
        op("passing a foreign role", "iam:PassRole", admin, &[("iam:PassedToService", json!("lambda.amazonaws.com"))]),
        op(
            "passing its role to EC2",
            "iam:PassRole",
            ours(&n.task_role),
            &[("iam:PassedToService", json!("ec2.amazonaws.com"))],
        ),
        op(
            "passing the app's task role to ECS as an infrastructure role",
            "iam:PassRole",
            ours(&n.task_role),
            &[("iam:PassedToService", json!("ecs.amazonaws.com"))],
        ),
        op("tagging a foreign security group", "ec2:CreateTags", &foreign_sg, std::slice::from_ref(&foreign_tag)),
        op(
            "opening a foreign security group",
            "ec2:AuthorizeSecurityGroupIngress",
            &foreign_sg,
            std::slice::from_ref(&foreign_tag),
        ),
        op("deleting a foreign security group", "ec2:DeleteSecurityGroup", &foreign_sg, &[]),
        op("another app's alarm", "cloudwatch:PutMetricAlarm", arn("cloudwatch", "alarm:prod-db-cpu-high"), &[]),
        op("deleting another app's alarm", "cloudwatch:DeleteAlarms", arn("cloudwatch", "alarm:prod-db-cpu-high"), &[]),
        op(
            "scaling another service kind",
            "application-autoscaling:RegisterScalableTarget",
            arn("application-autoscaling", "scalable-target/0ec9ffff"),
            &[("application-autoscaling:service-namespace", json!("dynamodb"))],
        ),
        op(
            "the ECS update another app's scaling target needs",
            "ecs:UpdateService",
            arn("ecs", "service/prod/payments"),
            &[],
        ),
        op(
            "deleting another app's HTTP API",
            "apigateway:DELETE",
            format!("arn:aws:apigateway:{REGION}::/apis/zzz999"),
            std::slice::from_ref(&foreign_tag),
        ),
        op("an untagged HTTP API", "apigateway:POST", format!("arn:aws:apigateway:{REGION}::/apis"), &[]),
        op("another app's function code", "lambda:UpdateFunctionCode", arn("lambda", "function:payments"), &[]),
        op("another app's table", "dynamodb:DeleteTable", arn("dynamodb", "table/payments"), &[]),
        op(
            "tagging another app's load balancer",
            "elasticloadbalancing:AddTags",
            arn("elasticloadbalancing", "loadbalancer/app/prod/1"),
            &[],
        ),
        op(
            "retagging its own load balancer later",
            "elasticloadbalancing:AddTags",
            arn("elasticloadbalancing", &format!("loadbalancer/app/{}/1", n.load_balancer)),
            &[],
        ),
        op("tagging another task definition", "ecs:TagResource", arn("ecs", "task-definition/payments:1"), &[]),
        op("an untagged task definition", "ecs:RegisterTaskDefinition", "*", &[]),
        op(
            "another app's secret",
            "secretsmanager:GetSecretValue",
            arn("secretsmanager", "secret:prod/db-password-AbCdEf"),
            &[],
        ),
        op("an untagged secret", "secretsmanager:CreateSecret", arn("secretsmanager", "secret:blog-x-AbCdEf"), &[]),
        op("an untagged certificate", "acm:RequestCertificate", "*", &[]),
        op(
            "deleting another app's certificate",
            "acm:DeleteCertificate",
            arn("acm", "certificate/ffff0000-0000-4000-8000-000000000000"),
            std::slice::from_ref(&foreign_tag),
        ),
        op(
            "pointing the zone's mail elsewhere",
            "route53:ChangeResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ",
            &[("route53:ChangeResourceRecordSetsRecordTypes", json!(["MX"]))],
        ),
        op(
            "delegating a subdomain",
            "route53:ChangeResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ",
            &[("route53:ChangeResourceRecordSetsRecordTypes", json!(["A", "NS"]))],
        ),
        op("creating a hosted zone", "route53:CreateHostedZone", "*", &[]),
        op("reading another app's table", "dynamodb:GetItem", arn("dynamodb", "table/payments"), &[]),
        op("replicating another app's table", "dynamodb:CreateTableReplica", arn("dynamodb", "table/payments"), &[]),
        op(
            "deleting another app's custom domain",
            "apigateway:DELETE",
            format!("arn:aws:apigateway:{REGION}::/domainnames/shop.example.com"),
            std::slice::from_ref(&foreign_tag),
        ),
        op("an untagged custom domain", "apigateway:POST", format!("arn:aws:apigateway:{REGION}::/domainnames"), &[]),
    ]
}

const UID: &str = "1a2b3c4d-0000-4000-8000-000000000000";

/// A resource tagged as the BlogDeployment `uid`'s.
fn owned_by(uid: &str) -> (&'static str, Value) {
    ("aws:ResourceTag/blogs.serverless.dev/uid", json!(uid))
}

/// A request by a role the operator made for the BlogDeployment [`UID`] (its tags are the
/// principal's), whose inline policy allows everything: only the boundary limits it.
fn as_owners_role(name: &str, action: &'static str, resource: String, context: &[(&str, Value)]) -> Request {
    let everything =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let mut request = op(name, action, resource, context);
    request.context.insert("aws:PrincipalTag/blogs.serverless.dev/uid".into(), json!(UID));
    request.role_policy = Some(everything);
    request
}

/// What a role the operator made can do under the boundary, even if its inline policy said more.
fn bounded_roles(n: &Names) -> (Vec<Request>, Vec<Request>) {
    let as_role = |name: &str, action: &'static str, resource: String| as_owners_role(name, action, resource, &[]);
    let ours = [owned_by(UID)];
    let allowed = vec![
        as_owners_role("write a post", "dynamodb:PutItem", arn("dynamodb", &format!("table/{}", n.table)), &ours),
        as_owners_role(
            "list posts through the index",
            "dynamodb:Query",
            arn("dynamodb", &format!("table/{}/index/byCreated", n.table)),
            &ours,
        ),
        as_owners_role(
            "read its write token",
            "secretsmanager:GetSecretValue",
            arn("secretsmanager", &format!("secret:{}-AbCdEf", n.write_token_secret)),
            &ours,
        ),
        as_role("send X-Ray traces (tracing: XRay)", "xray:PutTraceSegments", "*".to_owned()),
        as_owners_role(
            "write its readers' beacons",
            "cloudwatch:PutMetricData",
            "*".to_owned(),
            &[("cloudwatch:namespace", json!(format!("BlogReaders/{UID}")))],
        ),
        as_role(
            "write its logs",
            "logs:PutLogEvents",
            arn("logs", &format!("log-group:{}:log-stream:x", n.function_log_group)),
        ),
    ];
    let denied = vec![
        as_role("create a user", "iam:CreateUser", format!("arn:aws:iam::{ACCOUNT}:user/mallory")),
        as_role("drop its own table", "dynamodb:DeleteTable", arn("dynamodb", &format!("table/{}", n.table))),
        as_role("read another app's table", "dynamodb:GetItem", arn("dynamodb", "table/payments")),
        as_role("read a bucket", "s3:GetObject", "arn:aws:s3:::payroll/2026.csv".to_owned()),
        as_owners_role(
            "write another blog's readers' beacons",
            "cloudwatch:PutMetricData",
            "*".to_owned(),
            &[("cloudwatch:namespace", json!("BlogReaders/99999999-0000-4000-8000-000000000000"))],
        ),
        as_owners_role(
            "write metrics of another namespace",
            "cloudwatch:PutMetricData",
            "*".to_owned(),
            &[("cloudwatch:namespace", json!("AWS/Lambda"))],
        ),
        as_role("run code elsewhere", "lambda:CreateFunction", arn("lambda", "function:miner")),
        as_role(
            "read another app's secret",
            "secretsmanager:GetSecretValue",
            arn("secretsmanager", "secret:prod/db-AbCdEf"),
        ),
    ];
    (allowed, denied)
}

/// Runs the evaluator over `requests`; returns each request's name and verdict.
fn evaluate(requests: &[Request], policies: &Policies) -> Vec<(String, String, Option<Value>)> {
    evaluate_noting_gaps(requests, policies)
        .into_iter()
        .map(|(name, verdict, errors, _)| (name, verdict, errors))
        .collect()
}

/// As [`evaluate`], with whether the evaluator skipped its resource-type check (its data lacks one).
fn evaluate_noting_gaps(requests: &[Request], given: &Policies) -> Vec<(String, String, Option<Value>, bool)> {
    let mut policies = json!({"operator": given.operator, "boundary": given.boundary});
    let encoded: Vec<Value> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (identity, boundary, role) = match &r.role_policy {
                None => (json!(["operator"]), Value::Null, "blog-operator".to_owned()),
                Some(inline) => {
                    policies[format!("inline{i}")] = inline.clone();
                    (json!([format!("inline{i}")]), json!("boundary"), format!("blog-operator/{}", "blog-x-task"))
                }
            };
            let resource_policy = r.resource_policy.as_ref().map(|p| {
                policies[format!("resource{i}")] = p.clone();
                format!("resource{i}")
            });
            json!({"name": format!("{i}: {} ({} on {})", r.name, r.action, r.resource), "action": r.action, "resource": r.resource,
                   "context": r.context, "identityPolicies": identity, "boundary": boundary, "role": role,
                   "resourcePolicy": resource_policy})
        })
        .collect();
    let file = std::env::temp_dir().join(format!("{}.json", blog_tests::unique_name("iam-requests")));
    std::fs::write(&file, json!({"policies": policies, "requests": encoded}).to_string()).expect("requests file");
    let modules = blog_tests::tool("iam-simulate");
    let out = Command::new("node")
        .arg(root().join("operator/tests/iam/evaluate.cjs"))
        .arg(modules)
        .arg(&file)
        .output()
        .expect("run node");
    assert!(out.status.success(), "the evaluator failed: {}", String::from_utf8_lossy(&out.stderr));
    let verdicts: Vec<Value> = serde_json::from_slice(&out.stdout).expect("verdicts");
    verdicts
        .iter()
        .map(|v| {
            let errors = Some(v["errors"].clone()).filter(|e| !e.is_null());
            let name = v["name"].as_str().unwrap_or("").to_owned();
            (name, v["result"].as_str().unwrap_or("").to_owned(), errors, !v["unvalidated"].is_null())
        })
        .collect()
}

fn names() -> Names {
    Names::for_owner(&Owner { namespace: "blogs".into(), name: "demo".into(), uid: UID.into() })
}

#[test]
fn every_call_the_operator_makes_is_allowed_as_it_makes_it() {
    let calls = operator_calls(&names());
    // The table covers every action the code calls (a new call needs a row here).
    let covered: std::collections::BTreeSet<String> = calls.iter().map(|c| c.action.to_owned()).collect();
    let missing: Vec<_> = actions_the_operator_calls().into_iter().filter(|a| !covered.contains(a)).collect();
    assert!(missing.is_empty(), "no evaluated request for {missing:?}");
    for (which, policies) in [("shipped", shipped()), ("rendered for the platform's tenant policy", rendered())] {
        println!("the {which} policies:");
        every_call_allowed(&calls, &policies);
    }
}

fn every_call_allowed(calls: &[Request], policies: &Policies) {
    let verdicts = evaluate_noting_gaps(calls, policies);
    let gaps: Vec<&str> = verdicts.iter().filter(|v| v.3).map(|v| v.0.as_str()).collect();
    println!(
        "{} calls evaluated; {} without the evaluator's resource-type check:\n{}",
        calls.len(),
        gaps.len(),
        gaps.join("\n")
    );
    let refused: Vec<String> = verdicts
        .into_iter()
        .filter(|(_, verdict, _, _)| verdict != "Allowed")
        .map(|(name, verdict, errors, _)| format!("{name}: {verdict} {}", errors.unwrap_or_default()))
        .collect();
    assert!(refused.is_empty(), "the shipped policy refuses calls the operator makes:\n{}", refused.join("\n"));
}

#[test]
fn every_declared_call_on_another_apps_resource_is_denied() {
    let attempts = on_another_apps_resources(&names());
    assert!(attempts.len() > 40, "too few declared calls name a resource: {}", attempts.len());
    let verdicts = evaluate(&attempts, &rendered());
    let allowed: Vec<String> = verdicts
        .iter()
        .filter(|(_, verdict, _)| !verdict.ends_with("Denied"))
        .map(|(name, verdict, _)| format!("{name}: {verdict}"))
        .collect();
    println!("{} calls on another app's resources evaluated", attempts.len());
    assert!(allowed.is_empty(), "the policy lets the operator at another app's resources:\n{}", allowed.join("\n"));
}

#[test]
fn every_escalation_attempt_is_denied() {
    let attempts = escalations(&names());
    println!("{} escalation attempts evaluated", attempts.len());
    let verdicts = evaluate(&attempts, &rendered());
    let allowed: Vec<String> = verdicts
        .iter()
        .filter(|(_, verdict, _)| !verdict.ends_with("Denied"))
        .map(|(name, verdict, errors)| format!("{name}: {verdict} {}", errors.clone().unwrap_or_default()))
        .collect();
    assert!(allowed.is_empty(), "the shipped policy allows an escalation:\n{}", allowed.join("\n"));
}

#[test]
fn the_boundary_caps_every_role_the_operator_makes() {
    let (allowed, denied) = bounded_roles(&names());
    for policies in [shipped(), rendered()] {
        let verdicts = evaluate(&allowed, &policies);
        assert!(verdicts.iter().all(|(_, v, _)| v == "Allowed"), "{verdicts:#?}");
        let verdicts = evaluate(&denied, &policies);
        assert!(verdicts.iter().all(|(_, v, _)| v.ends_with("Denied")), "{verdicts:#?}");
    }
}

/// The ECS infrastructure role of a progressive container rollout, as the operator makes it
/// (its inline policy under the boundary): it moves this owner's tasks between its two target
/// groups and shifts this load balancer's rules, and nothing of another app's.
#[test]
fn the_ecs_infrastructure_role_shifts_only_its_owners_traffic() {
    let n = names();
    let scope = blog_operator::aws::Scope { partition: "aws".into(), region: REGION.into(), account: ACCOUNT.into() };
    let inline = blog_operator::desired::infrastructure_policy(&scope, &n);
    let as_infrastructure = |name: &str, action: &'static str, resource: String| {
        let mut request = as_owners_role(name, action, resource, &[]);
        request.role_policy = Some(inline.clone());
        request
    };
    let elb = |resource: &str| arn("elasticloadbalancing", resource);
    let allowed = vec![
        as_infrastructure(
            "shift its production rule",
            "elasticloadbalancing:ModifyRule",
            elb(&format!("listener-rule/app/{}/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee", n.load_balancer)),
        ),
        as_infrastructure(
            "register the new tasks in the second group",
            "elasticloadbalancing:RegisterTargets",
            elb(&format!("targetgroup/{}/5d3e0d5a8a1b2c3d", n.alternate_target_group)),
        ),
        as_infrastructure("read the rules", "elasticloadbalancing:DescribeRules", "*".to_owned()),
    ];
    let denied = vec![
        as_infrastructure(
            "shift another blog's rule (the boundary allows every blog's)",
            "elasticloadbalancing:ModifyRule",
            elb("listener-rule/app/b-payments-blog-1234abcd/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"),
        ),
        as_infrastructure(
            "register targets in another blog's group",
            "elasticloadbalancing:RegisterTargets",
            elb("targetgroup/g-payments-blog-1234abcd/5d3e0d5a8a1b2c3d"),
        ),
        as_infrastructure(
            "delete its own load balancer",
            "elasticloadbalancing:DeleteLoadBalancer",
            elb(&format!("loadbalancer/app/{}/50dc6c495c0c9188", n.load_balancer)),
        ),
        as_infrastructure("read its owner's table", "dynamodb:GetItem", arn("dynamodb", &format!("table/{}", n.table))),
    ];
    for policies in [shipped(), rendered()] {
        let verdicts = evaluate(&allowed, &policies);
        assert!(verdicts.iter().all(|(_, v, _)| v == "Allowed"), "{verdicts:#?}");
        let verdicts = evaluate(&denied, &policies);
        assert!(verdicts.iter().all(|(_, v, _)| v.ends_with("Denied")), "{verdicts:#?}");
    }
}

/// The function's role with readers' beacons on, as the operator makes it (its inline policy
/// under the boundary): it writes its owner's beacon metrics, and no other namespace's.
#[test]
fn a_blog_writes_only_its_own_readers_beacons() {
    let table = arn("dynamodb", "table/blog-team-blog-1a2b3c4d");
    let mut inline = blog_operator::desired::function_policy(&table, &arn("logs", "log-group:/aws/lambda/blog-x"));
    let namespace = format!("BlogReaders/{UID}");
    inline["Statement"].as_array_mut().expect("statements").push(blog_operator::desired::beacons_statement(&namespace));
    let as_function = |name: &str, namespace: &str| {
        let mut request = as_owners_role(
            name,
            "cloudwatch:PutMetricData",
            "*".to_owned(),
            &[("cloudwatch:namespace", json!(namespace))],
        );
        request.role_policy = Some(inline.clone());
        request
    };
    let allowed = vec![as_function("write its own beacons", &namespace)];
    let denied = vec![
        as_function("write another blog's beacons", "BlogReaders/99999999-0000-4000-8000-000000000000"),
        as_function("write into AWS's own metrics", "AWS/Lambda"),
    ];
    for policies in [shipped(), rendered()] {
        let verdicts = evaluate(&allowed, &policies);
        assert!(verdicts.iter().all(|(_, v, _)| v == "Allowed"), "{verdicts:#?}");
        let verdicts = evaluate(&denied, &policies);
        assert!(verdicts.iter().all(|(_, v, _)| v.ends_with("Denied")), "{verdicts:#?}");
    }
}

/// What stops a request of the review: IAM (the rendered policies deny it), or, where IAM cannot
/// tell this owner's resource from another's, the code (the test that shows it) or the platform.
enum Guard {
    Iam,
    Elsewhere(&'static str),
}

/// Every request of the security review's findings #1-#5, #9 and #12 (`shared/reviews/
/// security-audit.md`), by finding: team X (the attacker, whose roles carry [`UID`]) against
/// team B, and against what the operator never made.
#[allow(clippy::too_many_lines)]
fn review_requests() -> Vec<(u8, Request, Guard)> {
    use Guard::{Elsewhere, Iam};
    let b = Names::for_owner(&Owner { namespace: "team-b".into(), name: "blog".into(), uid: "b0b0b0b0-0000".into() });
    let x = Names::for_owner(&Owner { namespace: "team-x".into(), name: "shop".into(), uid: UID.into() });
    let b_own = [owned_by("b0b0b0b0-0000")];
    let in_region = |region: &str, resource: &str| format!("arn:aws:{resource}").replace("REGION", region);
    let home = in_region(REGION, &format!("dynamodb:REGION:{ACCOUNT}:table/{}", b.table));
    let replica = in_region("eu-central-1", &format!("dynamodb:REGION:{ACCOUNT}:table/{}", b.table));
    let zone = "arn:aws:route53:::hostedzone/ZCORP0123456789";
    let role = |path: &str| format!("arn:aws:iam::{ACCOUNT}:role/{path}");
    let foreign_tag = [("aws:ResourceTag/app.kubernetes.io/managed-by", json!("someone-else"))];
    let b_token = arn("secretsmanager", &format!("secret:{}-AbCdEf", b.write_token_secret));
    let db_password = arn("secretsmanager", "secret:blog-prod-db-password-AbCdEf");
    let bounded = [("iam:PermissionsBoundary", json!(BOUNDARY))];
    let claim =
        "code: the table claim (e2e tenancy::another_namespace_can_neither_take_a_replica_nor_a_recorded_table)";
    let deputy = "code: names follow the owner, ownership checked by tags (one managed-by tag spans tenants; an account per team separates them)";
    let children =
        "documented: HTTP API routes, integrations and stages carry no tags (an account per team, or an SCP)";
    vec![
        (
            1,
            as_owners_role("query B's untagged replica", "dynamodb:Query", format!("{replica}/index/byCreated"), &[]),
            Iam,
        ),
        (1, as_owners_role("write B's replica", "dynamodb:PutItem", replica.clone(), &b_own), Iam),
        (1, as_owners_role("delete from B's replica", "dynamodb:DeleteItem", replica.clone(), &b_own), Iam),
        (1, as_owners_role("query B's home table", "dynamodb:Query", format!("{home}/index/byCreated"), &b_own), Iam),
        (1, op("describe B's replica", "dynamodb:DescribeTable", &replica, &[]), Elsewhere(claim)),
        (1, op("read its tags", "dynamodb:ListTagsOfResource", &replica, &[]), Elsewhere(claim)),
        (1, op("retag it", "dynamodb:TagResource", &replica, &[]), Elsewhere(claim)),
        (1, op("untag it", "dynamodb:UntagResource", &replica, &[tagged("resource")]), Elsewhere(claim)),
        (
            1,
            op(
                "grant X's function role",
                "iam:PutRolePolicy",
                role(&format!("blog-operator/{}", x.function_role)),
                &bounded,
            ),
            Elsewhere(claim),
        ),
        (1, op("update the replica", "dynamodb:UpdateTable", &replica, &[]), Elsewhere(claim)),
        (1, op("remove B's home through the replica", "dynamodb:DeleteTableReplica", &home, &[]), Elsewhere(claim)),
        (
            1,
            op("delete the adopted replica", "dynamodb:DeleteTable", &replica, &[tagged("resource")]),
            Elsewhere(claim),
        ),
        (
            2,
            op(
                "an alias in the company zone",
                "route53:ChangeResourceRecordSets",
                zone,
                &record_change(&["A", "TXT"], &["login.corp.example.com", "_blog-operator.login.corp.example.com"]),
            ),
            Iam,
        ),
        (
            2,
            op(
                "its validation record",
                "route53:ChangeResourceRecordSets",
                zone,
                &record_change(&["CNAME", "TXT"], &["_0123abcd.login.corp.example.com"]),
            ),
            Iam,
        ),
        (
            2,
            op(
                "an ACME challenge",
                "route53:ChangeResourceRecordSets",
                zone,
                &record_change(&["TXT"], &["_acme-challenge.corp.example.com"]),
            ),
            Iam,
        ),
        (
            2,
            op(
                "a certificate for it",
                "acm:RequestCertificate",
                "*",
                &[tagged("request"), ("acm:DomainNames", json!(["login.corp.example.com"]))],
            ),
            Iam,
        ),
        (
            2,
            op(
                "another namespace's name under the suffix",
                "route53:ChangeResourceRecordSets",
                zone,
                &record_change(&["A"], &["admin.team-b.blogs.example.com"]),
            ),
            Elsewhere(
                "code: the namespace's host suffixes (e2e tenancy::the_tenant_policy_covers_every_field_at_apply_and_in_the_reconciler)",
            ),
        ),
        (
            3,
            as_owners_role(
                "pull B's private image",
                "ecr:BatchGetImage",
                arn("ecr", "repository/team-b/private-app"),
                &[],
            ),
            Iam,
        ),
        (
            3,
            as_owners_role(
                "its layers",
                "ecr:GetDownloadUrlForLayer",
                arn("ecr", "repository/team-b/private-app"),
                &[],
            ),
            Iam,
        ),
        (3, op("read its manifest", "ecr:BatchGetImage", arn("ecr", "repository/team-b/private-app"), &[]), Iam),
        (
            4,
            op("a role trusted from outside", "iam:CreateRole", role("blog-operator/blog-persist"), &bounded),
            Elsewhere(
                "documented: IAM has no condition on a trust policy (an RCP on sts:AssumeRole of /blog-operator/, or pre-made roles)",
            ),
        ),
        (4, as_owners_role("read B's token", "secretsmanager:GetSecretValue", b_token.clone(), &b_own), Iam),
        (
            4,
            as_owners_role(
                "read a secret the operator never made",
                "secretsmanager:GetSecretValue",
                db_password.clone(),
                &[],
            ),
            Iam,
        ),
        (4, as_owners_role("read B's posts", "dynamodb:GetItem", home.clone(), &b_own), Iam),
        (
            4,
            as_owners_role(
                "pull any image of the account",
                "ecr:GetDownloadUrlForLayer",
                arn("ecr", "repository/payments/api"),
                &[],
            ),
            Iam,
        ),
        (
            4,
            op("scan B's table", "dynamodb:Scan", &home, &[]),
            Elsewhere("documented: DynamoDB checks the caller's item actions when it fills a new replica"),
        ),
        (
            4,
            op("overwrite B's posts", "dynamodb:BatchWriteItem", &home, &[]),
            Elsewhere("documented: DynamoDB checks the caller's item actions when it fills a new replica"),
        ),
        (
            5,
            op(
                "repoint the company apex",
                "route53:ChangeResourceRecordSets",
                zone,
                &record_change(&["A"], &["corp.example.com"]),
            ),
            Iam,
        ),
        (
            5,
            op(
                "patch another app's route",
                "apigateway:PATCH",
                format!("arn:aws:apigateway:{REGION}::/apis/zzz999/routes/r1"),
                &foreign_tag,
            ),
            Elsewhere(children),
        ),
        (
            5,
            op(
                "add an integration to it",
                "apigateway:POST",
                format!("arn:aws:apigateway:{REGION}::/apis/zzz999/integrations"),
                &foreign_tag,
            ),
            Elsewhere(children),
        ),
        (
            5,
            op(
                "add a stage to it",
                "apigateway:POST",
                format!("arn:aws:apigateway:{REGION}::/apis/zzz999/stages"),
                &foreign_tag,
            ),
            Elsewhere(children),
        ),
        (
            5,
            op(
                "map onto another app's domain",
                "apigateway:POST",
                format!("arn:aws:apigateway:{REGION}::/domainnames/shop.example.com/apimappings"),
                &foreign_tag,
            ),
            Iam,
        ),
        (
            5,
            op(
                "unmap another app's path",
                "apigateway:DELETE",
                format!("arn:aws:apigateway:{REGION}::/domainnames/shop.example.com/apimappings/m1"),
                &foreign_tag,
            ),
            Iam,
        ),
        (
            9,
            op("health checks without end", "route53:CreateHealthCheck", "*", &[]),
            Elsewhere(
                "code: limits.maxCandidates bounds each BlogDeployment's checks; a namespace ResourceQuota bounds their number",
            ),
        ),
        (12, op("read a secret the operator never made", "secretsmanager:GetSecretValue", &db_password, &[]), Iam),
        (12, op("delete it", "secretsmanager:DeleteSecret", &db_password, &[]), Iam),
        (
            12,
            op("rotate B's token", "secretsmanager:PutSecretValue", &b_token, &[tagged("resource")]),
            Elsewhere(deputy),
        ),
        (12, op("strip a CI role", "iam:DeleteRolePolicy", role("blog-ci-deployer"), &[]), Iam),
        (12, op("delete it", "iam:DeleteRole", role("blog-ci-deployer"), &[]), Iam),
        (
            12,
            op(
                "invoke rights on a legacy function",
                "lambda:AddPermission",
                arn("lambda", "function:blog-legacy"),
                &[],
            ),
            Iam,
        ),
        (12, op("drop a legacy table", "dynamodb:DeleteTable", arn("dynamodb", "table/blog-legacy-orders"), &[]), Iam),
        (
            12,
            op(
                "delete the company's failover check",
                "route53:DeleteHealthCheck",
                "arn:aws:route53:::healthcheck/00000000-0000-4000-8000-000000000000",
                &[],
            ),
            Elsewhere(
                "code: a check is deleted only once its tags name this owner (adapters::a_health_check_id_of_another_owner_is_neither_used_nor_deleted)",
            ),
        ),
        (
            12,
            op(
                "deregister another team's scaling",
                "application-autoscaling:DeregisterScalableTarget",
                arn("application-autoscaling", "scalable-target/0ec9ffff"),
                &[("application-autoscaling:service-namespace", json!("ecs"))],
            ),
            Elsewhere(deputy),
        ),
        (
            12,
            op(
                "delete its policy",
                "application-autoscaling:DeleteScalingPolicy",
                arn("application-autoscaling", "scalable-target/0ec9ffff"),
                &[("application-autoscaling:service-namespace", json!("ecs"))],
            ),
            Elsewhere(deputy),
        ),
        (
            12,
            op("deregister any task definition", "ecs:DeregisterTaskDefinition", "*", &[]),
            Elsewhere("documented: AWS authorises DeregisterTaskDefinition on * only"),
        ),
        (
            12,
            op(
                "replicate to an unapproved region",
                "dynamodb:CreateTableReplica",
                in_region("ap-east-1", &format!("dynamodb:REGION:{ACCOUNT}:table/{}", x.table)),
                &[],
            ),
            Iam,
        ),
        (
            12,
            op(
                "a function in an unapproved region",
                "lambda:CreateFunction",
                in_region("ap-east-1", &format!("lambda:REGION:{ACCOUNT}:function:{}", x.function)),
                &[tagged("request")],
            ),
            Iam,
        ),
        (
            12,
            op(
                "a cluster there",
                "ecs:CreateCluster",
                in_region("ap-east-1", &format!("ecs:REGION:{ACCOUNT}:cluster/{}", x.cluster)),
                &[],
            ),
            Iam,
        ),
        (
            12,
            op(
                "open B's security group",
                "ec2:AuthorizeSecurityGroupIngress",
                arn("ec2", "security-group/sg-0b0b0b0b0b0b0b0b0"),
                &[tagged("resource")],
            ),
            Elsewhere(deputy),
        ),
        (
            12,
            op(
                "repoint B's listener",
                "elasticloadbalancing:ModifyListener",
                arn("elasticloadbalancing", &format!("listener/app/{}/1/2", b.load_balancer)),
                &[],
            ),
            Elsewhere(deputy),
        ),
        (
            12,
            op(
                "delete B's certificate",
                "acm:DeleteCertificate",
                arn("acm", "certificate/b0b0b0b0-0000-4000-8000-000000000000"),
                &[tagged("resource")],
            ),
            Elsewhere(deputy),
        ),
        (
            12,
            op("retag B's role", "iam:TagRole", role(&format!("blog-operator/{}", b.function_role)), &[]),
            Elsewhere(deputy),
        ),
        (
            12,
            op(
                "hand B's role to a function",
                "iam:PassRole",
                role(&format!("blog-operator/{}", b.function_role)),
                &[("iam:PassedToService", json!("lambda.amazonaws.com"))],
            ),
            Elsewhere(deputy),
        ),
        (
            12,
            op("an untagged function of its own", "lambda:CreateFunction", arn("lambda", "function:blog-evil"), &[]),
            Iam,
        ),
        (
            12,
            op("a tagged one", "lambda:CreateFunction", arn("lambda", "function:blog-evil"), &[tagged("request")]),
            Elsewhere(deputy),
        ),
    ]
}

/// Every request of the review against the policies rendered for the platform: IAM denies those it
/// can; the rest stay allowed (so this list stays true) and name what refuses them instead.
/// `IAM_REVIEW_POLICY_DIR=DIR` evaluates that folder's `operator-policy.json` and
/// `role-boundary.json` as they are instead (the figures before the fix, from the reviewed commit).
#[test]
fn the_reviews_requests_are_denied_by_iam_or_refused_elsewhere() {
    let requests = review_requests();
    let policies = match std::env::var_os("IAM_REVIEW_POLICY_DIR") {
        Some(dir) => {
            let read = |f: &str| {
                serde_json::from_str(&std::fs::read_to_string(PathBuf::from(&dir).join(f)).expect(f)).expect(f)
            };
            Policies { operator: read("operator-policy.json"), boundary: read("role-boundary.json") }
        }
        None => rendered(),
    };
    let list: Vec<Request> = requests.iter().map(|(_, r, _)| r.clone()).collect();
    let verdicts = evaluate(&list, &policies);
    let mut wrong = Vec::new();
    let mut denied = 0;
    for ((finding, _, guard), (name, verdict, _)) in requests.iter().zip(&verdicts) {
        let is_denied = verdict.ends_with("Denied");
        denied += usize::from(is_denied);
        let why = match guard {
            Guard::Iam => "IAM",
            Guard::Elsewhere(why) => why,
        };
        println!("#{finding:<3} {verdict:<17} {name} [{why}]");
        if is_denied != matches!(guard, Guard::Iam) {
            wrong.push(format!("#{finding} {name}: {verdict}, expected {why}"));
        }
    }
    println!("{} requests of the review: {denied} denied by IAM, {} allowed", requests.len(), requests.len() - denied);
    if std::env::var_os("IAM_REVIEW_POLICY_DIR").is_none() {
        assert!(wrong.is_empty(), "verdicts other than the guards listed:\n{}", wrong.join("\n"));
    }
}

#[test]
fn the_operator_assumes_only_the_team_account_roles_the_tenant_policy_names() {
    let team_role = "arn:aws:iam::222222222222:role/blog-operator";
    let tenants = format!(
        "{PLATFORM}namespaces:\n  team-b:\n    allowedRegions: [us-west-1]\n    allowedImagePrefixes: [registry.example.com/team-b/]\n    \
         account: {{roleArn: '{team_role}', externalId: team-b-7f3a}}\n"
    );
    let tenants = blog_operator::tenancy::TenantPolicy::parse(&tenants).expect("tenant policy");
    let scope = blog_operator::iam_policy::scope(&tenants);
    let with_accounts = Policies {
        operator: blog_operator::iam_policy::operator_policy(&scope),
        boundary: blog_operator::iam_policy::role_boundary(&scope),
    };
    // The team role's trust policy, as the install guide renders it, names the operator's role.
    let operator_role = format!("arn:aws:iam::{ACCOUNT}:role/blog-operator");
    let trust = blog_operator::iam_policy::team_role_trust(&operator_role, "team-b-7f3a");
    let assume = |name: &str, role: &str, external_id: &str| Request {
        resource_policy: Some(trust.clone()),
        ..op(name, "sts:AssumeRole", role, &[("sts:ExternalId", json!(external_id))])
    };
    let named = [assume("team-b's role", team_role, "team-b-7f3a")];
    let others = [
        assume("another role in team-b's account", "arn:aws:iam::222222222222:role/admin", "team-b-7f3a"),
        assume("the same name in another account", "arn:aws:iam::333333333333:role/blog-operator", "team-b-7f3a"),
        assume("team-b's role without its external id", team_role, "guessed"),
    ];
    let verdicts = evaluate(&named, &with_accounts);
    assert!(verdicts.iter().all(|v| v.1 == "Allowed"), "{verdicts:?}");
    for policies in [&with_accounts, &rendered(), &shipped()] {
        let verdicts = evaluate(&others, policies);
        println!("{verdicts:?}");
        assert!(verdicts.iter().all(|v| v.1.ends_with("Denied")), "{verdicts:?}");
    }
    let verdicts = evaluate(&named, &shipped());
    assert!(verdicts.iter().all(|v| v.1.ends_with("Denied")), "no tenant policy, no role to assume: {verdicts:?}");
}
