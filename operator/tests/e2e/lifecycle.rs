//! Create, no-op resync, update, disable and delete of both variants, and the specs refused on the way.

use crate::support::*;

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

    // Two resyncs with nothing to change make no mutating call.
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "no-op resyncs mutated AWS: {mutated:?}");
    eprintln!("calls after create and two no-op resyncs: {:?}", operator.aws_calls().await);

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
        &Patch::Merge(json!({"spec": {"function": {"enabled": false}, "container": {"enabled": true, "loadBalancer": {"plainHttp": true}}}})),
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

    // Probes and metrics answer on their own ports, each only its own paths.
    let status =
        |reply: String| reply.lines().next().unwrap_or_default().split(' ').nth(1).unwrap_or_default().to_owned();
    assert_eq!(status(http_get(&format!("{}/healthz", operator.admin)).await), "200");
    assert_eq!(status(http_get(&format!("{}/metrics", operator.admin)).await), "404", "no metrics on the probe port");
    assert!(http_get(&format!("{}/metrics", operator.metrics)).await.contains("blog_operator_reconciles_total"));
    assert_eq!(
        status(http_get(&format!("{}/healthz", operator.metrics)).await),
        "404",
        "no probes on the metrics port"
    );

    // What the schema can say, the API server refuses.
    for (name, spec, field) in [
        ("tiny", json!({"image": "b:1", "function": {"memoryMiB": 64}}), "spec.function.memoryMiB"),
        ("slow", json!({"image": "b:1", "function": {"timeoutSeconds": 901}}), "spec.function.timeoutSeconds"),
        (
            "odd-cpu",
            json!({"image": "b:1", "container": {"loadBalancer": {"plainHttp": true}, "cpu": 300}}),
            "spec.container.cpu",
        ),
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
        &blog("pair", json!({"image": "Not An Image", "container": {"loadBalancer": {"plainHttp": true}, "cpu": 1024, "memoryMiB": 512}})),
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

    // Its resources live in us-west-1 now: moving the region is refused, with no AWS call.
    let moved = json!({"spec": {"region": "eu-west-1"}});
    api.patch("pair", &PatchParams::default(), &Patch::Merge(moved)).await.expect("move");
    let bd = wait_for(&api, "pair", "RegionChangeRefused", |bd| {
        condition(bd, "Ready").is_some_and(|c| c.reason == "RegionChangeRefused" && c.status == "False")
    })
    .await;
    let message = &condition(&bd, "Ready").expect("Ready").message;
    assert!(message.contains("resources live in us-west-1") && message.contains("create a new BlogDeployment"));
    // The reconciles that follow (its own status patch, a retry) stay refused and call nothing.
    let calls_before = operator.aws_calls().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(calls_before, operator.aws_calls().await, "a refused region change makes no AWS call");
    let back = json!({"spec": {"region": "us-west-1"}});
    api.patch("pair", &PatchParams::default(), &Patch::Merge(back)).await.expect("move back");
    wait_for(&api, "pair", "Ready back home", ready).await;
    api.delete("pair", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "pair").await;
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
        "env": {"BLOG_TITLE": "Ours", "LOG_FORMAT": "json"},
        "function": {"env": {"LOG_FORMAT": "text"}},
        "container": {"loadBalancer": {"plainHttp": true}, "cpu": 256, "memoryMiB": 512, "desiredCount": 2, "port": 8080, "env": {"TASKS_ONLY": "1"}},
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
    // The spec's environment, merged per variant, beside the operator's own variables.
    let config = aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
    let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    let stored = api.get("both").await.expect("bd").spec.env;
    assert_eq!(
        (env.get("BLOG_TITLE").map(String::as_str), env.get("LOG_FORMAT").map(String::as_str)),
        (Some("Ours"), Some("text")),
        "function environment {env:?}; the stored spec's env {stored:?}"
    );
    assert!(!env.contains_key("TASKS_ONLY") && env.contains_key("TABLE_NAME"));
    let definition =
        aws.ecs.describe_task_definition().task_definition(&first_revision).send().await.expect("definition");
    let container_env: BTreeMap<String, String> =
        definition.task_definition().expect("definition").container_definitions()[0]
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value()?.to_owned())))
            .collect();
    assert_eq!(container_env.get("LOG_FORMAT").map(String::as_str), Some("json"));
    assert_eq!(container_env.get("TASKS_ONLY").map(String::as_str), Some("1"));
    let platform = definition.task_definition().and_then(|d| d.runtime_platform());
    let architecture = platform.and_then(|p| p.cpu_architecture()).map(|a| a.as_str());
    assert_eq!(architecture, Some("ARM64"), "the tasks run on the architecture the function does by default");
    // Both URLs reach both variants, and a first create made one version and one revision: the
    // API and the load balancer came before the function and the task definition.
    let urls = (status.function_url.as_deref(), status.container_url.as_deref());
    let function_env: BTreeMap<String, String> = env.clone().into_iter().collect();
    for (variant, env) in [("function", &function_env), ("tasks", &container_env)] {
        let seen = (env.get("FUNCTIONS_URL").map(String::as_str), env.get("CONTAINERS_URL").map(String::as_str));
        assert_eq!(seen, urls, "the {variant}' environment names both URLs");
    }
    let calls = operator.aws_calls().await;
    let made = |op: &str| calls.get(op).copied().unwrap_or(0);
    assert_eq!((made("Lambda/PublishVersion"), made("ECS/RegisterTaskDefinition")), (1, 1), "{calls:?}");

    // A no-op resync mutates nothing, for the container variant too.
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "no-op resyncs mutated AWS: {mutated:?}");
    eprintln!("calls after creating both variants and resyncing: {:?}", operator.aws_calls().await);

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

    // Disable the container: its resources go, the function is updated once, to drop its URL.
    let published = operator.aws_calls().await.get("Lambda/PublishVersion").copied();
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
    let env = function_after.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert!(env.contains_key("FUNCTIONS_URL") && !env.contains_key("CONTAINERS_URL"), "{env:?}");
    let published_after = operator.aws_calls().await.get("Lambda/PublishVersion").copied();
    assert_eq!(published_after, published.map(|n| n + 1), "one new version, not more");
    assert!(bd.status.as_ref().is_some_and(|s| s.container_url.is_none() && s.container_tasks.is_none()));

    // Enable it again: the function is updated once more, to learn the new load balancer's URL.
    api.patch("both", &PatchParams::default(), &Patch::Merge(json!({"spec": {"container": {"enabled": true}}})))
        .await
        .expect("patch");
    let bd = wait_for(&api, "both", "both variants again", |bd| {
        ready(bd) && bd.status.as_ref().is_some_and(|s| s.container_url.is_some())
    })
    .await;
    let config = aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
    let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(env.get("CONTAINERS_URL"), bd.status.and_then(|s| s.container_url).as_ref());
    let published_again = operator.aws_calls().await.get("Lambda/PublishVersion").copied();
    assert_eq!(published_again, published.map(|n| n + 2), "one new version per change of the other variant");

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

/// The web ACL on the load balancer (`container.loadBalancer.waf`), as WAF itself reads it.
async fn web_acl(stack: &Stack, names: &blog_operator::desired::Names) -> Option<(i64, Vec<String>, bool)> {
    use aws_sdk_wafv2::types::Scope;
    let waf = aws_sdk_wafv2::Client::new(&stack.sdk_config().await);
    let listed = waf.list_web_acls().scope(Scope::Regional).limit(100).send().await.expect("web ACLs");
    let summary = listed.web_acls().iter().find(|s| s.name() == Some(names.load_balancer.as_str()))?.clone();
    let (name, id, arn) = (summary.name()?, summary.id()?, summary.arn()?);
    let read = waf.get_web_acl().scope(Scope::Regional).name(name).id(id).send().await.expect("web ACL");
    let rules = read.web_acl().map(|w| w.rules().to_vec()).unwrap_or_default();
    let limit = rules.iter().find_map(|r| r.statement()?.rate_based_statement()).map_or(0, |s| s.limit());
    let groups = rules.iter().filter_map(|r| Some(r.statement()?.managed_rule_group_statement()?.name().to_owned()));
    let balancers = Aws::new(stack).await.elb.describe_load_balancers().names(&names.load_balancer).send().await;
    let balancer = balancers.expect("load balancer").load_balancers()[0].load_balancer_arn().map(str::to_owned);
    let guarding = waf.get_web_acl_for_resource().resource_arn(balancer.unwrap_or_default()).send().await;
    let guards = guarding.ok().and_then(|g| g.web_acl().map(|w| w.arn().to_owned())).as_deref() == Some(arn);
    Some((limit, groups.collect(), guards))
}

#[tokio::test]
async fn a_web_acl_guards_the_load_balancer_as_the_spec_says_and_goes_with_the_field() {
    let (stack, _client, ns, api) = setup("waf").await;
    let _logs = stack.logs_on_failure();
    let operator = Operator::start(stack, &ns.name, 2).await;
    let waf = json!({"rateLimit": 500});
    let spec = json!({"image": "blog-service:1.0.0", "function": {"enabled": false},
                      "container": {"loadBalancer": {"plainHttp": true, "waf": waf}}, "table": {"deletionPolicy": "Delete"}});
    api.create(&PostParams::default(), &blog("waf", spec)).await.expect("create");
    let bd = wait_for(&api, "waf", "Ready", ready).await;
    let names = names_of(&bd);
    assert_eq!(web_acl(stack, &names).await, Some((500, vec![], true)), "made with the rate rule, in front of the ALB");
    let mutated = mutations_over_resyncs(&operator, 1).await;
    assert!(mutated.is_empty(), "a no-op resync mutated AWS: {mutated:?}");

    let changed = json!({"rateLimit": 1000, "managedRuleGroups": ["AWSManagedRulesCommonRuleSet"]});
    let patch = json!({"spec": {"container": {"loadBalancer": {"waf": changed}}}});
    api.patch("waf", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    wait_for(&api, "waf", "Ready at generation 2", |bd| ready(bd) && bd.metadata.generation == Some(2)).await;
    let expected = Some((1000, vec!["AWSManagedRulesCommonRuleSet".to_owned()], true));
    assert_eq!(web_acl(stack, &names).await, expected, "the same web ACL, its rules changed");

    let patch = json!({"spec": {"container": {"loadBalancer": {"waf": null}}}});
    api.patch("waf", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    wait_for(&api, "waf", "Ready at generation 3", |bd| ready(bd) && bd.metadata.generation == Some(3)).await;
    assert_eq!(web_acl(stack, &names).await, None, "the web ACL went with the field");
    let refused = api
        .patch(
            "waf",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"container": {"loadBalancer": {"waf": {"rateLimit": 5}}}}})),
        )
        .await;
    assert!(refused.is_err(), "a rate limit AWS refuses is refused at kubectl apply");
    api.delete("waf", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "waf").await;
    operator.kill().await;
}

/// The operator's Event recorder against the real apiserver: a repeat of a reason within minutes
/// becomes a count on the first Event (a merge patch of its series), a repeat whose note is news
/// stays an Event of its own, and another object's same reason is its own Event.
#[tokio::test]
async fn repeated_events_become_a_count_on_the_first_and_news_stays_its_own() {
    use k8s_openapi::api::core::v1::ObjectReference;
    use kube::runtime::events::{Event, EventType};
    let (_stack, client, ns, _api) = setup("events").await;
    let recorder = blog_operator::events::Recorder::new(client.clone(), "blog-operator", None);
    let object = |name: &str| ObjectReference {
        api_version: Some("blogs.serverless.dev/v1alpha1".into()),
        kind: Some("BlogDeployment".into()),
        name: Some(name.into()),
        namespace: Some(ns.name.clone()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    };
    let event = |reason: &str, note: &str| Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    for note in ["first", "second", "third"] {
        recorder.publish(&event("AwsError", note), &object("a"), true).await.expect("folded");
    }
    recorder.publish(&event("AwsError", "first"), &object("b"), true).await.expect("other object");
    for note in ["step 1", "step 2"] {
        recorder.publish(&event("RolloutStep", note), &object("a"), false).await.expect("each");
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns.name);
    let listed = events.list(&Default::default()).await.expect("list events").items;
    let of = |name: &str, reason: &str| -> Vec<_> {
        listed
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect()
    };
    let folded = of("a", "AwsError");
    assert_eq!(folded.len(), 1, "one Event for three repeats: {folded:?}");
    assert_eq!(folded[0].note.as_deref(), Some("first"));
    assert_eq!(folded[0].series.as_ref().map(|s| s.count), Some(3), "{:?}", folded[0].series);
    assert_eq!(of("b", "AwsError").len(), 1);
    assert!(of("b", "AwsError")[0].series.is_none(), "its first");
    let mut steps: Vec<_> = of("a", "RolloutStep").iter().filter_map(|e| e.note.clone()).collect();
    steps.sort();
    assert_eq!(steps, ["step 1", "step 2"]);
}
