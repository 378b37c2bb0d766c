//! Teams cannot reach each other: the security review's attacks, each played on the local stack
//! (another namespace adopting a replica or a recorded table, image overrides and hosts outside
//! the policy, Auto outside the size ceilings), refused before anything of the victim changes.

use aws_sdk_dynamodb::types::{AttributeValue, CreateReplicationGroupMemberAction, ReplicationGroupUpdate};
use blog_tests::{Realism, TestNamespace};

use crate::support::*;

const REPLICA_REGION: &str = "eu-west-1";

/// A replica of `table` in [`REPLICA_REGION`], made through the home table as a placement makes it
/// (and, as in AWS, untagged in its own region); waits until DynamoDB lists it ACTIVE.
async fn replicate(home: &aws_sdk_dynamodb::Client, table: &str) {
    let create = CreateReplicationGroupMemberAction::builder().region_name(REPLICA_REGION).build().expect("action");
    let update = ReplicationGroupUpdate::builder().create(create).build();
    home.update_table().table_name(table).replica_updates(update).send().await.expect("add the replica");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = home.describe_table().table_name(table).send().await.expect("describe");
        let replicas = found.table().map(|t| t.replicas().to_vec()).unwrap_or_default();
        if replicas.iter().any(|r| r.replica_status().is_some_and(|s| s.as_str() == "ACTIVE")) {
            return;
        }
        assert!(Instant::now() < deadline, "the replica never turned ACTIVE: {replicas:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn tags_of(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> BTreeMap<String, String> {
    let found = dynamodb.describe_table().table_name(table).send().await.expect("the table is still there");
    let arn = found.table().and_then(|t| t.table_arn()).expect("arn").to_owned();
    let tags = dynamodb.list_tags_of_resource().resource_arn(arn).send().await.expect("tags");
    tags.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
}

fn refused_table(bd: &BlogDeployment) -> bool {
    condition(bd, "Ready").is_some_and(|c| c.status == "False" && c.reason == "TableNotAdoptable")
}

#[tokio::test]
async fn another_namespace_can_neither_take_a_replica_nor_a_recorded_table() {
    let (stack, client, victims_ns, victims) = setup("victim").await;
    let _logs = stack.logs_on_failure();
    let attackers_ns = TestNamespace::create(&client, "attacker").await.expect("namespace");
    let attackers: Api<BlogDeployment> = Api::namespaced(client.clone(), &attackers_ns.name);
    let realism = Realism::start(&stack.aws_endpoint, &json!({"seed": 5, "dynamodb_replica": 1})).expect("realism");
    let through = blog_tests::sdk_config_for(&realism.endpoint).await;
    let home = aws_sdk_dynamodb::Client::new(&through);
    let in_replica_region = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&through).region(aws_config::Region::new(REPLICA_REGION)).build(),
    );
    // Open policy: the claim path alone refuses. First each team under its own operator (a
    // namespace-scoped install sees nothing of the other team), then one operator for both.
    let victims_operator = Operator::start_behind(stack, &victims_ns.name, 2, &[], &realism.endpoint);
    let attackers_operator = Operator::start_behind(stack, &attackers_ns.name, 2, &[], &realism.endpoint);

    // The victim: a blog with a post, its table replicated to another region.
    for name in ["blog", "plain"] {
        victims
            .create(&PostParams::default(), &blog(name, json!({"image": "blog:1", "function": {}})))
            .await
            .expect("create");
    }
    let victim = wait_for(&victims, "blog", "the victim Ready", ready).await;
    let table = names_of(&victim).table;
    let post = AttributeValue::S("victim-post".into());
    home.put_item().table_name(&table).item("id", post.clone()).send().await.expect("a post");
    replicate(&home, &table).await;
    assert!(tags_of(&in_replica_region, &table).await.is_empty(), "a replica carries no tags in its region");

    // 1. The replica, named with adoptUntagged from another namespace: refused, left untagged.
    let adopt = json!({"image": "blog:1", "region": REPLICA_REGION, "function": {},
                       "table": {"name": table, "adoptUntagged": true}});
    attackers.create(&PostParams::default(), &blog("shop", adopt)).await.expect("create");
    let shop = wait_for(&attackers, "shop", "the replica refused", refused_table).await;
    let message = &condition(&shop, "Ready").expect("Ready").message;
    assert!(message.contains("part of a global table"), "{message}");
    assert!(tags_of(&in_replica_region, &table).await.is_empty(), "the replica was not retagged");

    // 2. The same from the replica's region as a placement home, reaching for the victim's home
    //    region: the home table is refused first, so no placement step ever runs.
    let placed = json!({"image": "blog:1", "function": {}, "table": {"name": table, "adoptUntagged": true},
        "domain": {"hostedZone": "example.com"},
        "placement": {"home": REPLICA_REGION, "host": "shop.example.com", "candidates": [{"region": "us-west-1"}]}});
    attackers.create(&PostParams::default(), &blog("reach", placed)).await.expect("create");
    wait_for(&attackers, "reach", "the placement's home refused", refused_table).await;

    // 3. One operator for both teams (the cluster-wide install): a table another BlogDeployment
    //    records, its tags gone (as a replica's are), is refused.
    victims_operator.kill().await;
    attackers_operator.kill().await;
    let both = ["--namespace", attackers_ns.name.as_str()];
    let operator = Operator::start_behind(stack, &victims_ns.name, 2, &both, &realism.endpoint);
    let plain = wait_for(&victims, "plain", "the second victim Ready", ready).await;
    let plain_table = names_of(&plain).table;
    let arn = plain.status.as_ref().and_then(|s| s.resources.table_arn.clone()).expect("recorded");
    let keys: Vec<String> = tags_of(&home, &plain_table).await.into_keys().collect();
    home.untag_resource().resource_arn(&arn).set_tag_keys(Some(keys)).send().await.expect("untag");
    let recorded = json!({"image": "blog:1", "function": {}, "table": {"name": plain_table, "adoptUntagged": true}});
    attackers.create(&PostParams::default(), &blog("take", recorded)).await.expect("create");
    let take = wait_for(&attackers, "take", "the recorded table refused", refused_table).await;
    let message = &condition(&take, "Ready").expect("Ready").message;
    assert!(message.contains("in use by another BlogDeployment"), "{message}");
    assert!(tags_of(&home, &plain_table).await.is_empty(), "not retagged as the attacker's");

    // The attackers leave: every table of the victim is still there, the post too.
    for name in ["shop", "reach", "take"] {
        attackers.delete(name, &DeleteParams::default()).await.expect("delete");
        wait_gone(&attackers, name).await;
    }
    let kept = home.get_item().table_name(&table).key("id", post).send().await.expect("get");
    assert!(kept.item().is_some(), "the victim's post is untouched");
    assert!(!tags_of(&home, &table).await.is_empty(), "the victim's home table is still there, still tagged");
    tags_of(&in_replica_region, &table).await;
    tags_of(&home, &plain_table).await;
    operator.kill().await;
}

#[tokio::test]
async fn the_tenant_policy_covers_every_field_at_apply_and_in_the_reconciler() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Namespace;
    let (stack, client, ns, api) = setup("policy").await;
    let _logs = stack.logs_on_failure();
    let label = json!({"metadata": {"labels": {"blog-webhook-test": ns.name}}});
    Api::<Namespace>::all(client.clone())
        .patch(&ns.name, &PatchParams::default(), &Patch::Merge(label))
        .await
        .expect("label");
    let policy = stack.dir.join(format!("tenant-policy-{}.yaml", ns.name));
    std::fs::write(
        &policy,
        "allowedImagePrefixes: ['registry.example.com/${namespace}/']\n\
         domains: {allowedZones: [blogs.example.com], hostSuffixes: ['${namespace}.blogs.example.com']}\n",
    )
    .expect("policy file");
    let dir = stack.dir.join(format!("webhook-{}", ns.name));
    let ca = crate::admission::certificates(&dir);
    let port = free_port();
    let flags = [
        format!("--tenant-policy={}", policy.display()),
        format!("--webhook-addr=127.0.0.1:{port}"),
        format!("--webhook-cert-dir={}", dir.display()),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let operator = Operator::start_with(stack, &ns.name, 60, &flags, &stack.kubeconfig).await;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let config_name = format!("blog-operator-{}", ns.name);
    let config = crate::admission::webhook_config(&config_name, &ns.name, port, &ca, "Fail");
    configs.create(&PostParams::default(), &config).await.expect("config");

    let image = format!("registry.example.com/{}/blog:1", ns.name);
    let attacks = [
        // #3: an image override outside the prefixes (another team's private image).
        (
            "override",
            format!("  image: {image}\n  function: {{image: 'registry.example.com/team-b/private:1'}}\n"),
            "spec.function.image \"registry.example.com/team-b/private:1\" does not start with an allowed prefix",
        ),
        // #2: a host on the company's zone, and one under another namespace's suffix.
        (
            "phish",
            format!(
                "  image: {image}\n  function: {{}}\n  domain: {{hostedZone: corp.example.com, functionHost: login.corp.example.com}}\n"
            ),
            "spec.domain.hostedZone corp.example.com is not a zone the platform lets tenants use",
        ),
        (
            "squat",
            format!(
                "  image: {image}\n  function: {{}}\n  domain: {{hostedZone: blogs.example.com, functionHost: shop.team-b.blogs.example.com}}\n"
            ),
            "spec.domain.functionHost shop.team-b.blogs.example.com is not under a host suffix the platform allows",
        ),
        // #1: table adoption is the platform's to allow.
        (
            "adopt",
            format!(
                "  image: {image}\n  function: {{}}\n  table: {{name: blog-team-b-blog-1a2b3c4d, adoptUntagged: true}}\n"
            ),
            "spec.table.adoptUntagged: the platform does not let tenants take tables",
        ),
    ];
    for (name, spec, expected) in &attacks {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (accepted, said) = loop {
            let (accepted, said) = crate::admission::kubectl_apply(stack, &ns.name, name, spec);
            if !accepted || Instant::now() > deadline {
                break (accepted, said);
            }
            api.delete(name, &DeleteParams::default()).await.ok();
            wait_gone(&api, name).await;
        };
        println!("$ kubectl apply -f {name}.yaml\n{said}");
        assert!(!accepted && said.contains("PolicyViolation") && said.contains(expected), "{name}: {said}");
    }

    // The same specs past the webhook (it is down, or was bypassed): the reconciler refuses each,
    // with not one AWS call.
    configs.delete(&config_name, &DeleteParams::default()).await.expect("delete config");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !crate::admission::kubectl_apply(stack, &ns.name, attacks[0].0, &attacks[0].1).0 {
        assert!(Instant::now() < deadline, "the webhook still answers");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (name, spec, expected) in &attacks[1..] {
        let (accepted, said) = crate::admission::kubectl_apply(stack, &ns.name, name, spec);
        assert!(accepted, "{said}");
        let bd = wait_for(&api, name, "PolicyViolation", |bd| {
            condition(bd, "Ready").is_some_and(|c| c.reason == "PolicyViolation")
        })
        .await;
        assert!(condition(&bd, "Ready").is_some_and(|c| c.message.contains(expected)), "{name}");
    }
    wait_for(&api, attacks[0].0, "PolicyViolation", |bd| {
        condition(bd, "Ready").is_some_and(|c| c.reason == "PolicyViolation" && c.message.contains(attacks[0].2))
    })
    .await;
    assert!(operator.aws_calls().await.is_empty(), "a refused spec makes no AWS call");
    for (name, _, _) in &attacks {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
        wait_gone(&api, name).await;
    }
    operator.kill().await;
}

#[tokio::test]
async fn auto_sizing_stays_inside_the_platforms_task_ceilings() {
    let (stack, _client, ns, api) = setup("ceiling").await;
    let _logs = stack.logs_on_failure();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let policy = stack.dir.join(format!("tenant-policy-{}.yaml", ns.name));
    std::fs::write(&policy, "limits: {maxTaskCpu: 512, maxTaskMemoryMiB: 2048, maxTasks: 2}\n").expect("policy file");
    let flag = format!("--tenant-policy={}", policy.display());
    let operator = Operator::start_with(stack, &ns.name, 2, &[&flag], &stack.kubeconfig).await;
    let spec = json!({"image": "blog:1", "container": {"loadBalancer": {"plainHttp": true}, "cpu": 256, "memoryMiB": 512},
                      "allocation": {"mode": "Auto", "cooldownMinutes": 0, "maxTasks": 2}});
    api.create(&PostParams::default(), &blog("busy", spec)).await.expect("create");
    let bd = wait_for(&api, "busy", "Ready", ready).await;
    let names = names_of(&bd);
    // A task at its limits: without the ceilings Auto would grow it to 4 vCPU and 8 GiB or more.
    let service = [("ClusterName", names.cluster.as_str()), ("ServiceName", names.service.as_str())];
    crate::sizing::put_metrics(&cloudwatch, "AWS/ECS", "CPUUtilization", &service, &[98.0, 99.0, 99.0]).await;
    crate::sizing::put_metrics(&cloudwatch, "AWS/ECS", "MemoryUtilization", &service, &[97.0, 98.0, 99.0]).await;
    let decided = wait_for(&api, "busy", "an Auto decision", |bd| {
        bd.status.as_ref().and_then(|s| s.allocation.as_ref()).is_some_and(|a| a.last_change_time.is_some())
    })
    .await;
    let allocation = decided.status.as_ref().and_then(|s| s.allocation.clone()).expect("allocation");
    eprintln!("decided: {allocation:?}");
    // CPU-bound: the most CPU and tasks the ceilings allow, and never more memory than they allow.
    assert_eq!((allocation.container_cpu, allocation.container_tasks), (Some(512), Some(2)), "{allocation:?}");
    assert!(allocation.container_memory_mib <= Some(2048), "{allocation:?}");
    api.delete("busy", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "busy").await;
    operator.kill().await;
}

/// The role the tenant policy maps team B's namespace to, in an account of its own.
const TEAM_ACCOUNT_ROLE: &str = "arn:aws:iam::222222222222:role/blog-operator";
const TEAM_EXTERNAL_ID: &str = "team-b-7f3a";

/// Clients in team B's account, through the same role the operator assumes (the emulator keeps
/// accounts apart by the credentials an AssumeRole returns).
async fn in_team_account(own: &aws_config::SdkConfig) -> Aws {
    let provider = aws_config::sts::AssumeRoleProvider::builder(TEAM_ACCOUNT_ROLE)
        .external_id(TEAM_EXTERNAL_ID)
        .session_name("e2e-inspector")
        .configure(own)
        .build()
        .await;
    let shared = aws_credential_types::provider::SharedCredentialsProvider::new(provider);
    Aws::from_config(&own.clone().into_builder().credentials_provider(shared).build())
}

#[tokio::test]
async fn a_namespace_mapped_to_its_own_account_runs_only_there() {
    let (stack, client, own_ns, own_api) = setup("own-account").await;
    let _logs = stack.logs_on_failure();
    let team_ns = TestNamespace::create(&client, "team-account").await.expect("namespace");
    let team_api: Api<BlogDeployment> = Api::namespaced(client.clone(), &team_ns.name);
    let policy = stack.dir.join(format!("tenant-policy-{}.yaml", team_ns.name));
    std::fs::write(
        &policy,
        format!(
            "namespaces:\n  {}:\n    account: {{roleArn: '{TEAM_ACCOUNT_ROLE}', externalId: {TEAM_EXTERNAL_ID}}}\n",
            team_ns.name
        ),
    )
    .expect("policy file");
    let flags = [format!("--tenant-policy={}", policy.display()), "--namespace".into(), team_ns.name.clone()];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let operator = Operator::start_with(stack, &own_ns.name, 2, &flags, &stack.kubeconfig).await;
    let spec = json!({"image": "blog:1", "function": {}, "table": {"deletionPolicy": "Delete"}});
    own_api.create(&PostParams::default(), &blog("blog", spec.clone())).await.expect("create");
    team_api.create(&PostParams::default(), &blog("blog", spec)).await.expect("create");
    let own = wait_for(&own_api, "blog", "Ready in the operator's account", ready).await;
    let team = wait_for(&team_api, "blog", "Ready in the team's account", ready).await;

    let own_account = Aws::new(stack).await;
    let team_account = in_team_account(&stack.sdk_config().await).await;
    let none = one_of_each().into_keys().map(|kind| (kind, 0)).collect::<BTreeMap<_, _>>();
    assert_eq!(team_account.count(&names_of(&team)).await, one_of_each(), "team B's resources are in B's account");
    assert_eq!(own_account.count(&names_of(&team)).await, none, "and nothing of B's in the operator's account");
    assert_eq!(own_account.count(&names_of(&own)).await, one_of_each());
    assert_eq!(team_account.count(&names_of(&own)).await, none, "nothing of the other team is visible from B's");
    let table_arn = team.status.as_ref().and_then(|s| s.resources.table_arn.clone()).expect("table ARN");
    assert!(table_arn.contains(":222222222222:table/"), "{table_arn}");

    // One session per object, kept across its reconciles: AssumeRole is not called per reconcile.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let calls = operator.aws_calls().await;
    let assumed: u64 = calls.iter().filter(|(call, _)| call.contains("AssumeRole")).map(|(_, n)| n).sum();
    println!("AssumeRole calls: {assumed}, reconciles: {}", operator.reconciles().await);
    assert_eq!(assumed, 1, "{calls:?}");

    team_api.delete("blog", &DeleteParams::default()).await.expect("delete");
    wait_gone(&team_api, "blog").await;
    assert_eq!(team_account.count(&names_of(&team)).await, none, "deletion ran in B's account");
    own_api.delete("blog", &DeleteParams::default()).await.expect("delete");
    wait_gone(&own_api, "blog").await;
    operator.kill().await;
}
