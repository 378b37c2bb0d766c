//! The operator under its least-privilege identity, and the permissions boundary on every role it makes.

use crate::support::*;

/// The install of `mode`: `manifests/install.yaml` (cluster-wide) or the chart rendered for one
/// watched namespace; and its ServiceAccount.
fn install_for(mode: &str, namespace: &str) -> (String, &'static str) {
    let root = blog_tests::workspace_root();
    if mode == "cluster" {
        return (std::fs::read_to_string(root.join("manifests/install.yaml")).expect("install.yaml"), "blog-operator");
    }
    let out = std::process::Command::new(blog_tests::tool("helm"))
        .args(["template", "blog-operator-ns"])
        .arg(root.join("charts/blog-operator"))
        .args(["--namespace", "blog-system", "--set", "allowRolesWithoutBoundary=true"])
        .arg("--set")
        .arg(format!("watchNamespace={namespace}"))
        .output()
        .expect("helm template");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: blog-system\n---\n";
    (format!("{namespace}{}", String::from_utf8(out.stdout).expect("utf-8")), "blog-operator-ns")
}

async fn works_under_its_least_privilege_identity(mode: &str) {
    let (stack, client, ns, api) = setup(&format!("rbac-{mode}")).await;
    let _logs = stack.logs_on_failure();
    let (manifests, account) = install_for(mode, &ns.name);
    let kubeconfig = service_account_kubeconfig(stack, &client, &manifests, account).await;
    let election = ["--leader-election", "--lease-namespace", "blog-system", "--lease-name", &ns.name];
    let operator = Operator::start_with(stack, &ns.name, 60, &election, &kubeconfig).await;

    // No Secret create anywhere by default: the tenant makes the token's Secret, opted in.
    use k8s_openapi::api::core::v1::Secret;
    let token = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("token".into()),
            labels: Some(BTreeMap::from([(blog_operator::write_token::OPT_IN_LABEL.to_owned(), "true".to_owned())])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([("token".to_owned(), "0123456789abcdef0123456789abcdef".to_owned())])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns.name).create(&PostParams::default(), &token).await.expect("secret");
    let spec = json!({"image": "blog:1", "function": {}, "container": {"loadBalancer": {"plainHttp": true}},
                      "writeToken": {"secretName": "token"}});
    api.create(&PostParams::default(), &blog("rbac", spec)).await.expect("create");
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
    // A stolen token cannot mint a ServiceAccount token Secret anywhere (kube-system included).
    let minted: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "minted", "annotations": {"kubernetes.io/service-account.name": "default"}},
        "type": "kubernetes.io/service-account-token"}))
    .expect("secret");
    for namespace in ["kube-system", ns.name.as_str()] {
        let there: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(sa.clone(), namespace);
        forbidden(there.create(&PostParams::default(), &minted).await.map(drop), "creating a Secret");
    }
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(sa.clone(), &ns.name);
    forbidden(leases.list(&Default::default()).await.map(drop), "leases outside its namespace");
    let bds: Api<BlogDeployment> = Api::namespaced(sa.clone(), &ns.name);
    forbidden(
        bds.create(&PostParams::default(), &blog("x", json!({"image": "b:1", "function": {}}))).await.map(drop),
        "creating a BlogDeployment",
    );
    if mode == "namespace" {
        let everywhere: Api<BlogDeployment> = Api::all(sa.clone());
        forbidden(everywhere.list(&Default::default()).await.map(drop), "BlogDeployments outside its namespace");
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sa);
    forbidden(namespaces.delete(&ns.name, &DeleteParams::default()).await.map(drop), "deleting a namespace");
    operator.kill().await;
}

#[tokio::test]
async fn the_operator_works_under_its_least_privilege_identity() {
    works_under_its_least_privilege_identity("cluster").await;
}

#[tokio::test]
async fn a_namespace_scoped_install_works_with_roles_in_its_namespace_only() {
    works_under_its_least_privilege_identity("namespace").await;
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
    let role = aws.iam.get_role().role_name(&names.function_role).send().await.expect("role");
    let role = role.role().expect("role");
    assert_eq!(role.path(), "/blog-operator/", "roles live under the operator's own path");
    let trust = percent_encoding::percent_decode_str(role.assume_role_policy_document().unwrap_or_default())
        .decode_utf8_lossy()
        .into_owned();
    assert!(trust.contains("aws:SourceAccount"), "the trust names the account: {trust}");

    // Restarted without a boundary (the explicit opt-out), the operator never removes one.
    operator.kill().await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(role_boundary().await.as_deref(), Some(boundary.as_str()), "a boundary is never removed");

    // A role an earlier version made at path `/` is made again under the operator's path.
    let tags: Vec<aws_sdk_iam::types::Tag> = owner_of(&bd)
        .tags()
        .iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().expect("tag"))
        .collect();
    aws.iam.delete_role_policy().role_name(&names.function_role).policy_name("blog-operator").send().await.ok();
    aws.iam.delete_role().role_name(&names.function_role).send().await.expect("delete the role");
    let legacy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    aws.iam
        .create_role()
        .role_name(&names.function_role)
        .path("/")
        .assume_role_policy_document(legacy.to_string())
        .set_tags(Some(tags))
        .send()
        .await
        .expect("a legacy role");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = aws.iam.get_role().role_name(&names.function_role).send().await;
        if found.as_ref().ok().and_then(|r| r.role()).is_some_and(|r| r.path() == "/blog-operator/") {
            break;
        }
        assert!(Instant::now() < deadline, "{} stayed at path /", names.function_role);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    api.delete("bound", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "bound").await;
    operator.kill().await;
}

#[tokio::test]
async fn the_tenant_policy_refuses_before_any_aws_call_and_shapes_exposure() {
    let (stack, _client, ns, api) = setup("tenant").await;
    let _logs = stack.logs_on_failure();
    let policy = stack.dir.join(format!("tenant-policy-{}.yaml", ns.name));
    std::fs::write(
        &policy,
        "allowedRegions: [us-west-1]\nlimits: {maxTasks: 4}\n\
         exposure: {allowInternetFacing: false, allowedIngressCidrs: [10.0.0.0/8]}\n",
    )
    .expect("policy file");
    let flag = format!("--tenant-policy={}", policy.display());
    let operator = Operator::start_with(stack, &ns.name, 60, &[&flag], &stack.kubeconfig).await;

    // Outside the policy: refused, every broken rule named, and not one AWS call.
    let outside = json!({"image": "blog:1", "region": "eu-west-1", "container": {"loadBalancer": {"plainHttp": true}, "desiredCount": 40}});
    api.create(&PostParams::default(), &blog("outside", outside)).await.expect("the schema accepts it");
    let bd = wait_for(&api, "outside", "PolicyViolation", |bd| {
        condition(bd, "Ready").is_some_and(|c| c.status == "False" && c.reason == "PolicyViolation")
    })
    .await;
    let message = &condition(&bd, "Ready").expect("Ready").message;
    for field in
        ["region eu-west-1", "spec.container.desiredCount 40", "loadBalancer.internal", "ingressCidrs: 0.0.0.0/0"]
    {
        assert!(message.contains(field), "{field} in {message}");
    }
    assert!(operator.aws_calls().await.is_empty(), "a refused spec makes no AWS call");

    // Inside it: an internal load balancer that admits only the allowed block, in a VPC the spec
    // names (here the default one's id), so its tasks get no public IP.
    let aws = Aws::new(stack).await;
    let vpc = blog_operator::cloud::ec2::default_vpc(&aws.operator_clients).await.expect("vpcs").expect("default VPC");
    let inside = json!({"image": "blog:1", "container": {"desiredCount": 2, "network": {"vpcId": vpc},
        "loadBalancer": {"internal": true, "ingressCidrs": ["10.20.0.0/16"], "plainHttp": true}}, "allocation": {"mode": "Manual"}});
    api.create(&PostParams::default(), &blog("inside", inside)).await.expect("create");
    let bd = wait_for(&api, "inside", "Ready", ready).await;
    let config = stack.sdk_config().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let arn = bd.status.as_ref().and_then(|s| s.resources.load_balancer_arn.clone()).expect("balancer ARN");
    let found = elb.describe_load_balancers().load_balancer_arns(&arn).send().await.expect("describe");
    let scheme = found.load_balancers()[0].scheme().map(|s| s.as_str().to_owned());
    assert_eq!(scheme.as_deref(), Some("internal"));
    let names = names_of(&bd);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let services =
        ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await.expect("service");
    let network = services.services()[0].network_configuration().and_then(|n| n.awsvpc_configuration());
    let public_ip = network.and_then(|n| n.assign_public_ip()).map(|a| a.as_str().to_owned());
    assert_eq!(public_ip.as_deref(), Some("DISABLED"), "no public task IP outside the default VPC's subnets");
    let vpcs =
        blog_operator::cloud::ec2::owned_group_vpcs(&aws.operator_clients, &owner_of(&bd), &names.lb_security_group)
            .await
            .expect("groups");
    assert_eq!(vpcs.len(), 1, "one load-balancer security group");
    for name in ["outside", "inside"] {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
        wait_gone(&api, name).await;
    }
    operator.kill().await;
}

#[tokio::test]
async fn the_write_token_reaches_both_variants_as_a_reference_and_rotates() {
    use k8s_openapi::api::core::v1::Secret;
    let (stack, client, ns, api) = setup("token").await;
    let _logs = stack.logs_on_failure();
    let operator = Operator::start(stack, &ns.name, 2).await;
    let config = stack.sdk_config().await;
    let (lambda, ecs) = (aws_sdk_lambda::Client::new(&config), aws_sdk_ecs::Client::new(&config));
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&config);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let labelled = |opt_in: bool| {
        opt_in.then(|| BTreeMap::from([(blog_operator::write_token::OPT_IN_LABEL.to_owned(), "true".to_owned())]))
    };
    let secret_of = |value: &str, opt_in: bool| Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("team-token".into()),
            labels: labelled(opt_in),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([("token".to_owned(), value.to_owned())])),
        ..Default::default()
    };
    let team_secret = |value: &str| secret_of(value, true);
    let (first, second) = ("first-token-0123456789abcdef0123456789", "second-token-0123456789abcdef012345678");

    // Named but missing: refused, no AWS call.
    let spec = json!({"image": "blog:1", "function": {}, "container": {"loadBalancer": {"plainHttp": true}}, "allocation": {"mode": "Manual"},
        "writeToken": {"secretName": "team-token"}});
    api.create(&PostParams::default(), &blog("tok", spec)).await.expect("create");
    wait_for(&api, "tok", "WriteTokenMissing", |bd| {
        condition(bd, "Ready").is_some_and(|c| c.reason == "WriteTokenMissing")
    })
    .await;
    assert!(operator.aws_calls().await.is_empty(), "a missing token makes no AWS call");

    // A Secret that did not opt in (a tenant may not read every Secret of its namespace): refused.
    secrets.create(&PostParams::default(), &secret_of(first, false)).await.expect("secret");
    let refused = wait_for(&api, "tok", "the unlabelled Secret refused", |bd| {
        condition(bd, "Ready").is_some_and(|c| c.reason == "WriteTokenMissing" && c.message.contains("is not labelled"))
    })
    .await;
    println!("{}", condition(&refused, "Ready").map(|c| c.message.clone()).unwrap_or_default());
    assert!(operator.aws_calls().await.is_empty(), "an unlabelled Secret is never copied into AWS");

    // Given: both variants carry a reference, never the value.
    secrets.replace("team-token", &PostParams::default(), &team_secret(first)).await.expect("secret");
    let bd = wait_for(&api, "tok", "Ready", ready).await;
    assert_eq!(bd.status.as_ref().and_then(|s| s.write_token_secret.as_deref()), Some("team-token"));
    let names = names_of(&bd);
    let stored = || async {
        let out = secrets_manager.get_secret_value().secret_id(&names.write_token_secret).send().await.expect("secret");
        (out.secret_string().unwrap_or_default().to_owned(), out.arn().unwrap_or_default().to_owned())
    };
    let (value, secret_arn) = stored().await;
    assert_eq!(value, first);
    let environment = || async {
        let out = lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
        out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default()
    };
    let env = environment().await;
    assert_eq!(env.get("WRITE_TOKEN_SECRET_ARN"), Some(&secret_arn));
    assert!(!env.contains_key("WRITE_TOKEN") && !format!("{env:?}").contains(first), "{env:?}");
    let task_definition = || async {
        let current = api.get("tok").await.expect("bd");
        let arn = current.status.and_then(|s| s.resources.task_definition_arn).expect("task definition");
        let out = ecs.describe_task_definition().task_definition(&arn).send().await.expect("describe");
        (arn, out.task_definition().expect("definition").container_definitions()[0].clone())
    };
    let (first_revision, container) = task_definition().await;
    assert_eq!(
        container.secrets().iter().map(|s| (s.name(), s.value_from())).collect::<Vec<_>>(),
        [("WRITE_TOKEN", secret_arn.as_str())]
    );
    assert!(!format!("{container:?}").contains(first), "the task definition holds no token");

    // Rotated: the secret, a new function configuration and a new task-definition revision.
    secrets.replace("team-token", &PostParams::default(), &team_secret(second)).await.expect("rotate");
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored().await.0 != second || task_definition().await.0 == first_revision {
        assert!(Instant::now() < deadline, "the rotation did not reach both variants");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_ne!(environment().await.get("WRITE_TOKEN_VERSION"), env.get("WRITE_TOKEN_VERSION"));

    // Not named: the operator generates one into a Secret the BlogDeployment owns.
    api.create(&PostParams::default(), &blog("gen", json!({"image": "blog:1", "function": {}}))).await.expect("create");
    let bd = wait_for(&api, "gen", "Ready", ready).await;
    assert_eq!(bd.status.as_ref().and_then(|s| s.write_token_secret.as_deref()), Some("gen-write-token"));
    let generated = secrets.get("gen-write-token").await.expect("generated Secret");
    let owner = generated.metadata.owner_references.unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.uid.as_str()), bd.metadata.uid.as_deref(), "owned by the BlogDeployment");
    let token = generated.data.and_then(|d| d.get("token").map(|b| b.0.len())).unwrap_or_default();
    assert_eq!(token, 64, "a 64-character random token");

    for name in ["tok", "gen"] {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
        wait_gone(&api, name).await;
    }
    let gone = secrets_manager.describe_secret().secret_id(&names.write_token_secret).send().await;
    assert!(gone.is_err(), "the token's secret goes with the BlogDeployment");
    operator.kill().await;
}
