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
        match &statement["Action"] {
            serde_json::Value::String(action) => {
                granted.insert(action.clone());
            }
            actions => granted
                .extend(actions.as_array().expect("actions").iter().map(|a| a.as_str().expect("action").to_owned())),
        }
    }
    let called = actions_the_operator_calls();
    assert!(called.len() > 60, "the scan found too few calls: {called:?}");
    let missing: Vec<_> = called.difference(&granted).collect();
    assert!(missing.is_empty(), "manifests/iam/operator-policy.json lacks {missing:?}");
    // Granted without a call of that name: tagging on create, handing roles to Lambda and ECS,
    // and the service-linked roles ECS, ELB and Application Auto Scaling make on first use.
    let implied = [
        "iam:TagRole",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        "logs:TagResource",
        "ecs:TagResource",
        "elasticloadbalancing:AddTags",
        "ec2:CreateTags",
        "cloudwatch:TagResource",
        "secretsmanager:TagResource",
        "acm:AddTagsToCertificate",
        // What DynamoDB checks on the caller when UpdateTable adds or removes a replica (AWS's
        // "DynamoDB global tables security": CreateTableReplica with item access in the new region).
        "dynamodb:CreateTableReplica",
        "dynamodb:DeleteTableReplica",
    ];
    let implied: Vec<&str> = implied.into_iter().chain(REPLICA_FILL).collect();
    let unused: Vec<_> = granted.iter().filter(|a| !called.contains(*a) && !implied.contains(&a.as_str())).collect();
    assert!(unused.is_empty(), "the policy grants actions the operator never calls: {unused:?}");
}

/// The item actions DynamoDB checks on the caller when it fills a new replica.
const REPLICA_FILL: [&str; 7] = [
    "dynamodb:Scan",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
];

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-west-1";
const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/blog-operator-role-boundary";

/// One request to evaluate: who asks (the operator, or a role it made), what, on what, with what.
struct Request {
    name: String,
    action: &'static str,
    resource: String,
    context: BTreeMap<String, Value>,
    /// `None`: the operator; `Some(inline)`: a role the operator made, with this inline policy,
    /// under the shipped boundary.
    role_policy: Option<Value>,
}

fn op(name: &str, action: &'static str, resource: impl Into<String>, context: &[(&str, Value)]) -> Request {
    let mut context: BTreeMap<String, Value> = context.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    context.insert("aws:PrincipalAccount".into(), json!(ACCOUNT));
    // AWS sets aws:ResourceAccount from the resource's ARN.
    let resource: String = resource.into();
    if let Some(account) = resource.split(':').nth(4).filter(|a| !a.is_empty()) {
        context.insert("aws:ResourceAccount".into(), json!(account));
    }
    Request { name: name.to_owned(), action, resource, context, role_policy: None }
}

fn arn(service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
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

/// Every call the operator makes, as it makes it.
fn operator_calls(n: &Names) -> Vec<Request> {
    let role = |name: &str| format!("arn:aws:iam::{ACCOUNT}:role{ROLE_PATH}{name}");
    let table = arn("dynamodb", &format!("table/{}", n.table));
    let function = arn("lambda", &format!("function:{}", n.function));
    let alias = format!("{function}:live");
    let logs = arn("logs", &format!("log-group:{}", n.function_log_group));
    let api = format!("arn:aws:apigateway:{REGION}::/apis/a1b2c3");
    let cluster = arn("ecs", &format!("cluster/{}", n.cluster));
    let service = arn("ecs", &format!("service/{}/{}", n.cluster, n.service));
    let lb = arn("elasticloadbalancing", &format!("loadbalancer/app/{}/50dc6c495c0c9188", n.load_balancer));
    let tg = arn("elasticloadbalancing", &format!("targetgroup/{}/943f017f100becff", n.target_group));
    let listener =
        arn("elasticloadbalancing", &format!("listener/app/{}/50dc6c495c0c9188/f2f7dc8efc522ab2", n.load_balancer));
    let sg = arn("ec2", "security-group/sg-0123456789abcdef0");
    let alarm = arn("cloudwatch", &format!("alarm:{}-step-cpu-out", n.service));
    let target = arn("application-autoscaling", "scalable-target/0ec9a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let secret = arn("secretsmanager", &format!("secret:{}-AbCdEf", n.write_token_secret));
    let boundary = ("iam:PermissionsBoundary", json!(BOUNDARY));
    let ecs_ns = ("application-autoscaling:service-namespace", json!("ecs"));
    let certificate = arn("acm", "certificate/0a1b2c3d-0000-4000-8000-000000000000");
    let zone = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ".to_owned();
    let replica = format!("arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/{}", n.table);
    let health_check = "arn:aws:route53:::healthcheck/6a0e2b1c-0000-4000-8000-000000000000".to_owned();
    let domain_name = format!("arn:aws:apigateway:{REGION}::/domainnames/fn.blog.example.com");
    let mut calls = vec![
        op("read an image's manifest", "ecr:BatchGetImage", arn("ecr", "repository/team/blog"), &[]),
        op("create the table", "dynamodb:CreateTable", &table, &[]),
        op("describe the table", "dynamodb:DescribeTable", &table, &[]),
        op("update its billing", "dynamodb:UpdateTable", &table, &[]),
        op("delete the table", "dynamodb:DeleteTable", &table, &[]),
        op("read the table's tags", "dynamodb:ListTagsOfResource", &table, &[]),
        op("tag the table", "dynamodb:TagResource", &table, &[]),
        op("drop the retained mark of a table taken back", "dynamodb:UntagResource", &table, &[]),
        op(
            "create a role with the boundary",
            "iam:CreateRole",
            role(&n.function_role),
            std::slice::from_ref(&boundary),
        ),
        op("read a role", "iam:GetRole", role(&n.function_role), &[]),
        op(
            "read an earlier version's role",
            "iam:GetRole",
            format!("arn:aws:iam::{ACCOUNT}:role/{}", n.function_role),
            &[],
        ),
        op("read a role's tags", "iam:ListRoleTags", role(&n.task_role), &[]),
        op("read its inline policy", "iam:GetRolePolicy", role(&n.task_role), &[]),
        op("put its inline policy", "iam:PutRolePolicy", role(&n.task_role), std::slice::from_ref(&boundary)),
        op(
            "set the boundary",
            "iam:PutRolePermissionsBoundary",
            role(&n.execution_role),
            std::slice::from_ref(&boundary),
        ),
        op("tag a new role", "iam:TagRole", role(&n.function_role), &[]),
        op("delete its inline policy", "iam:DeleteRolePolicy", role(&n.function_role), &[]),
        op("delete a role", "iam:DeleteRole", role(&n.function_role), &[]),
        op(
            "delete an earlier version's role",
            "iam:DeleteRole",
            format!("arn:aws:iam::{ACCOUNT}:role/{}", n.function_role),
            &[],
        ),
        op(
            "pass the function role to Lambda",
            "iam:PassRole",
            role(&n.function_role),
            &[("iam:PassedToService", json!("lambda.amazonaws.com"))],
        ),
        op(
            "pass the task role to ECS",
            "iam:PassRole",
            role(&n.task_role),
            &[("iam:PassedToService", json!("ecs-tasks.amazonaws.com"))],
        ),
        op(
            "ECS's service-linked role",
            "iam:CreateServiceLinkedRole",
            format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"),
            &[("iam:AWSServiceName", json!("ecs.amazonaws.com"))],
        ),
        op("create a log group", "logs:CreateLogGroup", &logs, &[]),
        op("set its retention", "logs:PutRetentionPolicy", &logs, &[]),
        op("tag it", "logs:TagResource", &logs, &[]),
        op("delete it", "logs:DeleteLogGroup", &logs, &[]),
        op("find log groups", "logs:DescribeLogGroups", "*", &[]),
        op(
            "create the HTTP API",
            "apigateway:POST",
            format!("arn:aws:apigateway:{REGION}::/apis"),
            &[tagged("request")],
        ),
        op(
            "tag the stage it creates",
            "apigateway:POST",
            format!("arn:aws:apigateway:{REGION}::/tags/{}", "a1b2c3"),
            &[tagged("request")],
        ),
        op("list HTTP APIs", "apigateway:GET", format!("arn:aws:apigateway:{REGION}::/apis"), &[]),
        op("read an API's integrations", "apigateway:GET", format!("{api}/integrations"), &[]),
        op("create its integration", "apigateway:POST", format!("{api}/integrations"), &[]),
        op("create its route", "apigateway:POST", format!("{api}/routes"), &[]),
        op("point its route", "apigateway:PATCH", format!("{api}/routes/r1"), &[]),
        op("create its stage", "apigateway:POST", format!("{api}/stages"), &[]),
        op("delete its own API", "apigateway:DELETE", &api, &[tagged("resource")]),
        op("create the cluster", "ecs:CreateCluster", &cluster, &[]),
        op("describe it", "ecs:DescribeClusters", &cluster, &[]),
        op("delete it", "ecs:DeleteCluster", &cluster, &[]),
        op("tag it", "ecs:TagResource", &cluster, &[]),
        op("create the service", "ecs:CreateService", &service, &[]),
        op("describe it", "ecs:DescribeServices", &service, &[]),
        op("update it", "ecs:UpdateService", &service, &[]),
        op("delete it", "ecs:DeleteService", &service, &[]),
        op("register a tagged task definition", "ecs:RegisterTaskDefinition", "*", &[tagged("request")]),
        op(
            "tag it as it is registered",
            "ecs:TagResource",
            arn("ecs", &format!("task-definition/{}:3", n.task_family)),
            &[("ecs:CreateAction", json!("RegisterTaskDefinition"))],
        ),
        op("describe a task definition", "ecs:DescribeTaskDefinition", "*", &[]),
        op("list task definitions", "ecs:ListTaskDefinitions", "*", &[]),
        op("deregister a task definition", "ecs:DeregisterTaskDefinition", "*", &[]),
        op("create the load balancer", "elasticloadbalancing:CreateLoadBalancer", &lb, &[]),
        op(
            "tag it as it is created",
            "elasticloadbalancing:AddTags",
            &lb,
            &[("elasticloadbalancing:CreateAction", json!("CreateLoadBalancer"))],
        ),
        op("delete it", "elasticloadbalancing:DeleteLoadBalancer", &lb, &[]),
        op("create the target group", "elasticloadbalancing:CreateTargetGroup", &tg, &[]),
        op(
            "tag it as it is created",
            "elasticloadbalancing:AddTags",
            &tg,
            &[("elasticloadbalancing:CreateAction", json!("CreateTargetGroup"))],
        ),
        op("change its health check", "elasticloadbalancing:ModifyTargetGroup", &tg, &[]),
        op("delete it", "elasticloadbalancing:DeleteTargetGroup", &tg, &[]),
        op("create the listener", "elasticloadbalancing:CreateListener", &lb, &[]),
        op("point the listener", "elasticloadbalancing:ModifyListener", &listener, &[]),
        op("delete the listener", "elasticloadbalancing:DeleteListener", &listener, &[]),
        op("create a tagged security group", "ec2:CreateSecurityGroup", &sg, &[tagged("request")]),
        op("in a VPC", "ec2:CreateSecurityGroup", arn("ec2", "vpc/vpc-0a1b2c3d"), &[]),
        op("tag it as it is created", "ec2:CreateTags", &sg, &[("ec2:CreateAction", json!("CreateSecurityGroup"))]),
        op("open its port", "ec2:AuthorizeSecurityGroupIngress", &sg, &[tagged("resource")]),
        op("close a port", "ec2:RevokeSecurityGroupIngress", &sg, &[tagged("resource")]),
        op("delete it", "ec2:DeleteSecurityGroup", &sg, &[tagged("resource")]),
        op(
            "register the scalable target",
            "application-autoscaling:RegisterScalableTarget",
            &target,
            std::slice::from_ref(&ecs_ns),
        ),
        op("deregister it", "application-autoscaling:DeregisterScalableTarget", &target, std::slice::from_ref(&ecs_ns)),
        op("put a scaling policy", "application-autoscaling:PutScalingPolicy", &target, std::slice::from_ref(&ecs_ns)),
        op(
            "delete a scaling policy",
            "application-autoscaling:DeleteScalingPolicy",
            &target,
            std::slice::from_ref(&ecs_ns),
        ),
        op(
            "put a scheduled action",
            "application-autoscaling:PutScheduledAction",
            &target,
            std::slice::from_ref(&ecs_ns),
        ),
        op(
            "delete a scheduled action",
            "application-autoscaling:DeleteScheduledAction",
            &target,
            std::slice::from_ref(&ecs_ns),
        ),
        op("put a step alarm", "cloudwatch:PutMetricAlarm", &alarm, &[]),
        op("tag it", "cloudwatch:TagResource", &alarm, &[]),
        op("delete it", "cloudwatch:DeleteAlarms", &alarm, &[]),
        op(
            "target tracking's alarm",
            "cloudwatch:PutMetricAlarm",
            arn("cloudwatch", &format!("alarm:TargetTracking-service/{}/{}-AlarmHigh-1", n.cluster, n.service)),
            &[],
        ),
        op("read metrics", "cloudwatch:GetMetricData", "*", &[]),
        op("create the token's secret, tagged", "secretsmanager:CreateSecret", &secret, &[tagged("request")]),
        op("tag it as it is created", "secretsmanager:TagResource", &secret, &[tagged("request")]),
        op("find it", "secretsmanager:DescribeSecret", &secret, &[]),
        op("compare its value", "secretsmanager:GetSecretValue", &secret, &[]),
        op("rotate it", "secretsmanager:PutSecretValue", &secret, &[]),
        op("delete it", "secretsmanager:DeleteSecret", &secret, &[]),
        op("turn Container Insights on", "ecs:UpdateClusterSettings", &cluster, &[]),
        op("request a tagged certificate", "acm:RequestCertificate", "*", &[tagged("request")]),
        op("tag it as it is requested", "acm:AddTagsToCertificate", &certificate, &[tagged("request")]),
        op("describe a certificate", "acm:DescribeCertificate", &certificate, &[]),
        op("read its tags", "acm:ListTagsForCertificate", &certificate, &[]),
        op("list certificates", "acm:ListCertificates", "*", &[]),
        op("delete its own certificate", "acm:DeleteCertificate", &certificate, &[tagged("resource")]),
        op("find the zone by name", "route53:ListHostedZonesByName", "*", &[]),
        op("read the zone", "route53:GetHostedZone", &zone, &[]),
        op("read its records", "route53:ListResourceRecordSets", &zone, &[]),
        op(
            "write an alias and its marker",
            "route53:ChangeResourceRecordSets",
            &zone,
            &[("route53:ChangeResourceRecordSetsRecordTypes", json!(["A", "TXT"]))],
        ),
        op(
            "write a validation record and its marker",
            "route53:ChangeResourceRecordSets",
            &zone,
            &[("route53:ChangeResourceRecordSetsRecordTypes", json!(["CNAME", "TXT"]))],
        ),
        op(
            "create the custom domain, tagged",
            "apigateway:POST",
            format!("arn:aws:apigateway:{REGION}::/domainnames"),
            &[tagged("request")],
        ),
        op("read it", "apigateway:GET", &domain_name, &[]),
        op("move its certificate", "apigateway:PATCH", &domain_name, &[tagged("resource")]),
        op("delete its own custom domain", "apigateway:DELETE", &domain_name, &[tagged("resource")]),
        op("read its mappings", "apigateway:GET", format!("{domain_name}/apimappings"), &[]),
        op("map the API", "apigateway:POST", format!("{domain_name}/apimappings"), &[]),
        op("remove a stray mapping", "apigateway:DELETE", format!("{domain_name}/apimappings/m1"), &[]),
        op("add or remove a replica through the home table", "dynamodb:UpdateTable", &table, &[]),
        op("the replica DynamoDB makes", "dynamodb:CreateTableReplica", &replica, &[]),
        op("the replica DynamoDB removes", "dynamodb:DeleteTableReplica", &replica, &[]),
        op("read the replica's table", "dynamodb:DescribeTable", &replica, &[]),
        op(
            "DynamoDB's replication role, on first use",
            "iam:CreateServiceLinkedRole",
            "*",
            &[("iam:AWSServiceName", json!("replication.dynamodb.amazonaws.com"))],
        ),
        op("create a health check", "route53:CreateHealthCheck", "*", &[]),
        op("read it", "route53:GetHealthCheck", &health_check, &[]),
        op("read its status", "route53:GetHealthCheckStatus", &health_check, &[]),
        op("tag it", "route53:ChangeTagsForResource", &health_check, &[]),
        op("delete it", "route53:DeleteHealthCheck", &health_check, &[]),
        op("find the checks a lost status forgot", "route53:ListHealthChecks", "*", &[]),
        op("and their owner's tags", "route53:ListTagsForResources", &health_check, &[]),
    ];
    for action in REPLICA_FILL {
        calls.push(op("what DynamoDB checks on the caller when it fills a new replica", action, &replica, &[]));
    }
    for (action, resource) in [
        ("lambda:CreateFunction", function.clone()),
        ("lambda:GetFunction", function.clone()),
        ("lambda:UpdateFunctionConfiguration", function.clone()),
        ("lambda:UpdateFunctionCode", function.clone()),
        ("lambda:DeleteFunction", function.clone()),
        ("lambda:TagResource", function.clone()),
        ("lambda:PublishVersion", function.clone()),
        ("lambda:GetAlias", alias.clone()),
        ("lambda:CreateAlias", alias.clone()),
        ("lambda:UpdateAlias", alias.clone()),
        ("lambda:GetPolicy", alias.clone()),
        ("lambda:AddPermission", alias.clone()),
        ("lambda:RemovePermission", alias.clone()),
        ("lambda:GetFunctionConcurrency", function.clone()),
        ("lambda:PutFunctionConcurrency", function.clone()),
        ("lambda:DeleteFunctionConcurrency", function.clone()),
        ("lambda:GetProvisionedConcurrencyConfig", alias.clone()),
        ("lambda:PutProvisionedConcurrencyConfig", alias.clone()),
        ("lambda:DeleteProvisionedConcurrencyConfig", alias.clone()),
    ] {
        calls.push(op("the function", action, resource, &[]));
    }
    for action in [
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTags",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "cloudwatch:DescribeAlarms",
    ] {
        calls.push(op("a read that takes no resource", action, "*", &[]));
    }
    for action in [
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:DescribeScheduledActions",
    ] {
        calls.push(op("an ECS scaling read", action, "*", std::slice::from_ref(&ecs_ns)));
    }
    calls
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

/// What a role the operator made can do under the boundary, even if its inline policy said more.
fn bounded_roles(n: &Names) -> (Vec<Request>, Vec<Request>) {
    let everything =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let as_role = |name: &str, action: &'static str, resource: String| Request {
        role_policy: Some(everything.clone()),
        ..op(name, action, resource, &[])
    };
    let allowed = vec![
        as_role("write a post", "dynamodb:PutItem", arn("dynamodb", &format!("table/{}", n.table))),
        as_role(
            "list posts through the index",
            "dynamodb:Query",
            arn("dynamodb", &format!("table/{}/index/byCreated", n.table)),
        ),
        as_role("send X-Ray traces (tracing: XRay)", "xray:PutTraceSegments", "*".to_owned()),
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
fn evaluate(requests: &[Request]) -> Vec<(String, String, Option<Value>)> {
    evaluate_noting_gaps(requests).into_iter().map(|(name, verdict, errors, _)| (name, verdict, errors)).collect()
}

/// As [`evaluate`], with whether the evaluator skipped its resource-type check (its data lacks one).
fn evaluate_noting_gaps(requests: &[Request]) -> Vec<(String, String, Option<Value>, bool)> {
    let mut policies = json!({"operator": policy("operator-policy.json"), "boundary": policy("role-boundary.json")});
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
            json!({"name": format!("{i}: {} ({} on {})", r.name, r.action, r.resource), "action": r.action, "resource": r.resource,
                   "context": r.context, "identityPolicies": identity, "boundary": boundary, "role": role})
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
    Names::for_owner(&Owner {
        namespace: "blogs".into(),
        name: "demo".into(),
        uid: "1a2b3c4d-0000-4000-8000-000000000000".into(),
    })
}

#[test]
fn every_call_the_operator_makes_is_allowed_as_it_makes_it() {
    let calls = operator_calls(&names());
    // The table covers every action the code calls (a new call needs a row here).
    let covered: std::collections::BTreeSet<String> = calls.iter().map(|c| c.action.to_owned()).collect();
    let missing: Vec<_> = actions_the_operator_calls().into_iter().filter(|a| !covered.contains(a)).collect();
    assert!(missing.is_empty(), "no evaluated request for {missing:?}");
    let verdicts = evaluate_noting_gaps(&calls);
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
fn every_escalation_attempt_is_denied() {
    let attempts = escalations(&names());
    println!("{} escalation attempts evaluated", attempts.len());
    let verdicts = evaluate(&attempts);
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
    let verdicts = evaluate(&allowed);
    assert!(verdicts.iter().all(|(_, v, _)| v == "Allowed"), "{verdicts:#?}");
    let verdicts = evaluate(&denied);
    assert!(verdicts.iter().all(|(_, v, _)| v.ends_with("Denied")), "{verdicts:#?}");
}
