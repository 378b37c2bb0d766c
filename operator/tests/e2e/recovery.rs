//! Restarts, drift and leadership: a cut-off or replaced operator converges without duplicates.

use crate::support::*;

#[tokio::test]
async fn a_restarted_operator_converges_without_duplicates() {
    let (stack, _client, ns, api) = setup("restart").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;

    api.create(
        &PostParams::default(),
        &blog("again", json!({"image": "blog:1", "function": {}, "container": {"loadBalancer": {"plainHttp": true}}})),
    )
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while operator.reconciles().await == 0 {
        assert!(Instant::now() < deadline, "the restarted operator did not reconcile in 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

    let leases = Api::namespaced(client.clone(), &ns.name);
    let leader = holder_other_than(&leases, "", Duration::from_secs(10)).await;

    // Kill the leader; the follower must take the Lease and carry on.
    first.kill().await;
    let killed = Instant::now();
    holder_other_than(&leases, &leader, Duration::from_secs(30)).await;
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

#[tokio::test]
async fn a_leader_asked_to_stop_releases_the_lease_at_once() {
    let (stack, client, ns, _api) = setup("release").await;
    let _logs = stack.logs_on_failure();
    // A long lease: without the release, a follower would wait 30 s for it to expire.
    let election = ["--leader-election", "--lease-namespace", &ns.name, "--lease-duration-seconds", "30"];
    let mut first = Operator::start_with(stack, &ns.name, 60, &election, &stack.kubeconfig).await;
    let leases = Api::namespaced(client.clone(), &ns.name);
    let leader = holder_other_than(&leases, "", Duration::from_secs(30)).await;
    let second = Operator::start_with(stack, &ns.name, 60, &election, &stack.kubeconfig).await;

    let stopped = stop_with_sigterm(&mut first).await;
    // Well before the 30 s lease could run out.
    holder_other_than(&leases, &leader, Duration::from_secs(25)).await;
    eprintln!("handover after SIGTERM took {:?} (lease duration 30 s, renew every 10 s)", stopped.elapsed());
    second.kill().await;
}

/// A leader whose watch never fills its cache (here: it may hold the Lease but not list
/// BlogDeployments; in CI once, a slow first list) still stops at SIGTERM and hands over: kube's
/// own graceful shutdown waited for the cache, without end.
#[tokio::test]
async fn a_leader_whose_cache_never_fills_still_stops_and_hands_over() {
    let (stack, client, ns, _api) = setup("unlisted").await;
    let _logs = stack.logs_on_failure();
    let account = blog_tests::unique_name("lease-only");
    let manifests = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: blog-system}}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {account}, namespace: blog-system}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {account}, namespace: {ns}}}\n\
         rules: [{{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, create, update]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {account}, namespace: {ns}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {account}}}\n\
         subjects: [{{kind: ServiceAccount, name: {account}, namespace: blog-system}}]\n",
        ns = ns.name
    );
    let kubeconfig = service_account_kubeconfig(stack, &client, &manifests, &account).await;
    let election = ["--leader-election", "--lease-namespace", &ns.name, "--lease-duration-seconds", "30"];
    let mut leader = Operator::start_with(stack, &ns.name, 60, &election, &kubeconfig).await;
    let leases = Api::namespaced(client.clone(), &ns.name);
    let holder = holder_other_than(&leases, "", Duration::from_secs(30)).await;

    let stopped = stop_with_sigterm(&mut leader).await;
    let lease = leases.get("blog-operator").await.expect("lease").spec.expect("spec");
    assert_ne!(lease.holder_identity.as_deref(), Some(holder.as_str()), "the Lease is released");
    eprintln!("stopped {:?} after SIGTERM with an unfilled cache", stopped.elapsed());
}

/// Resyncs read log groups from one listing per period, shared by all objects, and confirm a
/// group's tags once; a group deleted behind the operator's back still comes back.
#[tokio::test]
async fn resyncs_read_log_groups_from_one_listing_and_a_deleted_one_comes_back() {
    let (stack, _client, ns, api) = setup("listed").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    let objects = ["listed-a", "listed-b", "listed-c"];
    // Both variants: a disabled one's log group is looked for on its own at every resync (a
    // listing taken before it was made would say it is gone, and it would be left behind).
    let spec = json!({"image": "blog:1", "function": {}, "container": {"loadBalancer": {"plainHttp": true}}});
    for name in objects {
        api.create(&PostParams::default(), &blog(name, spec.clone())).await.expect("create");
    }
    for name in objects {
        wait_for(&api, name, "Ready", ready).await;
    }
    let logs =
        |calls: &BTreeMap<String, u64>, op: &str| calls.get(&format!("CloudWatch Logs/{op}")).copied().unwrap_or(0);
    let (before, reconciles_before) = (operator.aws_calls().await, operator.reconciles().await);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (after, reconciles_after) = (operator.aws_calls().await, operator.reconciles().await);
    let resyncs = reconciles_after - reconciles_before;
    let listed = logs(&after, "DescribeLogGroups") - logs(&before, "DescribeLogGroups");
    let tags = logs(&after, "ListTagsForResource") - logs(&before, "ListTagsForResource");
    eprintln!("{resyncs} resyncs of 3 objects in 9 s: DescribeLogGroups {listed}, ListTagsForResource {tags}");
    assert!(resyncs >= 6, "each object resynced about every 2 s: {resyncs}");
    assert_eq!(tags, 0, "a group's tags are confirmed once, not at every resync");
    // A listing a period, give or take one, of as many pages of 50 as the account holds groups
    // under the prefix (other tests' too), where a resync read its own group.
    let mut pages = 0;
    for prefix in ["/aws/lambda/blog-", "/ecs/blog-"] {
        let mut under_prefix = 0;
        let mut token = None;
        loop {
            let page = aws.logs.describe_log_groups().log_group_name_prefix(prefix).set_next_token(token);
            let page = page.send().await.expect("describe");
            under_prefix += page.log_groups().len();
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        pages += u64::try_from(under_prefix.div_ceil(50).max(1)).expect("pages");
    }
    assert!(listed <= (9 / 2 + 2) * pages, "{listed} calls for {resyncs} resyncs, {pages} pages a listing of both");

    // A platform team sees the listing's size and time.
    let metrics = http_get(&format!("{}/metrics", operator.metrics)).await;
    let series =
        r#"blog_operator_inventory_entries{inventory="log_groups",listing="/aws/lambda/blog-",region="us-west-1"}"#;
    let entries = metrics.lines().find_map(|l| l.strip_prefix(series)).and_then(|v| v.trim().parse::<u64>().ok());
    assert!(entries.is_some_and(|n| n >= 3), "{series} in {metrics}");
    assert!(metrics.contains("blog_operator_inventory_listed_timestamp_seconds{inventory=\"log_groups\""));

    let bd = api.get("listed-b").await.expect("get");
    let group = names_of(&bd).function_log_group;
    aws.logs.delete_log_group().log_group_name(&group).send().await.expect("delete behind its back");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = aws.logs.describe_log_groups().log_group_name_prefix(&group).send().await.expect("describe");
        if found.log_groups().iter().any(|g| g.log_group_name() == Some(group.as_str())) {
            break;
        }
        assert!(Instant::now() < deadline, "the deleted log group did not come back in 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    operator.kill().await;
}

/// Calls of `operation`, whatever the service.
fn calls_of(calls: &BTreeMap<String, u64>, operation: &str) -> u64 {
    calls.iter().filter(|(key, _)| key.rsplit('/').next() == Some(operation)).map(|(_, n)| n).sum()
}

#[tokio::test]
async fn resyncs_take_roles_and_load_balancers_from_listings_and_read_the_rest_a_deep_period_apart() {
    let (stack, _client, ns, api) = setup("deep").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    // Resyncs every 2 s; what no listing shows is read in full every 100 resyncs (200 s). ECS as
    // AWS runs it (moto never finishes a deployment): the tasks start and the deployment completes.
    let realism =
        blog_tests::Realism::start(&stack.aws_endpoint, &json!({"seed": 7, "ecs_start": 1})).expect("realism");
    let flags = ["--deep-read-resyncs", "100", "--container-readiness", "running"];
    let operator = Operator::start_behind(stack, &ns.name, 2, &flags, &realism.endpoint);
    let objects = ["deep-a", "deep-b", "deep-c"];
    let spec = json!({"image": "blog:1", "function": {}, "container": {"loadBalancer": {"plainHttp": true}}});
    for name in objects {
        api.create(&PostParams::default(), &blog(name, spec.clone())).await.expect("create");
    }
    for name in objects {
        wait_for(&api, name, "Ready", ready).await;
    }
    // A period for every listing to have been taken after the last role and balancer were made.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (before, reconciles_before) = (operator.aws_calls().await, operator.reconciles().await);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (after, reconciles_after) = (operator.aws_calls().await, operator.reconciles().await);
    let resyncs = reconciles_after - reconciles_before;
    let made = |op: &str| calls_of(&after, op) - calls_of(&before, op);
    // Read a deep period apart: what no listing shows, and what a spec without it has none of.
    let deep = [
        "GetRole",
        "GetRolePolicy",
        "ListRoleTags",
        "DescribeListeners",
        "DescribeTags",
        "GetApi",
        "GetIntegrations",
        "GetRoutes",
        "GetStages",
        "GetFunction",
        "GetFunctionConcurrency",
        "GetPolicy",
        "GetProvisionedConcurrencyConfig",
        "DescribeSecret",
        "DescribeTaskDefinition",
        "ListTagsOfResource",
        "DescribeScalableTargets",
        "DescribeAlarms",
        "ListWebACLs",
        "GetAlias",
        "DescribeServices",
        "DescribeTable",
    ];
    // Listings: about one a period each, however many objects share them, of as many pages as the
    // listing holds (other tests' resources too): by operation, its inventory and page size.
    let listings = [
        ("ListRoles", "roles", 1000),
        ("DescribeLoadBalancers", "load_balancers", 400),
        ("DescribeTargetGroups", "target_groups", 400),
        ("GetApis", "apis", 500),
        ("ListFunctions", "functions", 50),
        ("ListClusters", "clusters", 100),
        ("DescribeClusters", "clusters", 100),
        ("DescribeSecurityGroups", "security_groups", 1000),
        ("ListSecrets", "secrets", 100),
        ("ListTables", "tables", 100),
        ("GetMetricData", "sizing_metrics", 19),
    ];
    let metrics = http_get(&format!("{}/metrics", operator.metrics)).await;
    let entries = |inventory: &str| {
        let series = format!("blog_operator_inventory_entries{{inventory=\"{inventory}\"");
        let sizes = metrics.lines().filter(|l| l.starts_with(&series));
        sizes.filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).max()
    };
    let listed = listings.iter().map(|(op, ..)| op);
    let reads: BTreeMap<&str, u64> = deep.iter().chain(listed).map(|op| (*op, made(op))).collect();
    eprintln!("{resyncs} resyncs of 3 objects in 9 s: {reads:?}");
    assert!(resyncs >= 6, "each object resynced about every 2 s: {resyncs}");
    for op in deep {
        assert_eq!(reads[op], 0, "{op} waits for the deep read");
    }
    // Clusters are described by the ARNs listed, inactive ones too (the emulator keeps them).
    let mut cluster_arns = 0;
    let mut listed_clusters = aws.ecs.list_clusters().into_paginator().send();
    while let Some(page) = listed_clusters.next().await {
        let ours = |arn: &&String| arn.contains("cluster/blog-");
        cluster_arns += page.expect("clusters").cluster_arns().iter().filter(ours).count() as u64;
    }
    for (op, inventory, page) in listings {
        let entries = entries(inventory).unwrap_or_else(|| panic!("{inventory}: no size in {metrics}"));
        let entries = if op == "DescribeClusters" { cluster_arns } else { entries };
        let pages = entries.div_ceil(page).max(1);
        assert!(reads[op] <= (9 / 2 + 2) * pages, "{op}: {} for {resyncs} resyncs, {pages} pages", reads[op]);
    }

    // A role deleted behind its back is missing from the next listing and made again.
    let role = names_of(&api.get("deep-b").await.expect("get")).function_role;
    aws.iam.delete_role_policy().role_name(&role).policy_name("blog-operator").send().await.expect("policy");
    aws.iam.delete_role().role_name(&role).send().await.expect("delete behind its back");
    let deadline = Instant::now() + Duration::from_secs(30);
    while aws.iam.get_role_policy().role_name(&role).policy_name("blog-operator").send().await.is_err() {
        assert!(Instant::now() < deadline, "the deleted role and its policy did not come back in 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    operator.kill().await;
}

#[tokio::test]
async fn its_own_status_writes_do_not_cause_reconciles() {
    let (stack, _client, ns, api) = setup("quiet").await;
    let _logs = stack.logs_on_failure();
    let operator = Operator::start(stack, &ns.name, 60).await;
    api.create(&PostParams::default(), &blog("quiet", json!({"image": "blog:1", "function": {}})))
        .await
        .expect("create");
    wait_for(&api, "quiet", "Ready", ready).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // One: it adds the finalizer and applies; neither that nor the status patch that says Ready
    // starts another.
    assert_eq!(operator.reconciles().await, 1, "reconciles for one create");
    api.patch("quiet", &PatchParams::default(), &Patch::Merge(json!({"spec": {"function": {"memoryMiB": 768}}})))
        .await
        .expect("patch");
    wait_for(&api, "quiet", "Ready at generation 2", |bd| ready(bd) && bd.metadata.generation == Some(2)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // One for the change and one after Lambda's update settled (the requeue while it is
    // InProgress); none for the two status patches (Progressing, then Ready).
    assert_eq!(operator.reconciles().await, 3, "reconciles for one spec change");
    operator.kill().await;
}

/// Waits until the Lease names a holder other than `not` (any holder when `not` is empty), within
/// `limit`; returns it.
/// Sends the operator SIGTERM and waits (at most 20 s) for its clean exit; returns when it was sent.
async fn stop_with_sigterm(operator: &mut Operator) -> Instant {
    let pid = operator.child.id().expect("pid").to_string();
    let stopped = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let exit = tokio::time::timeout(Duration::from_secs(20), operator.child.wait()).await.expect("exits on SIGTERM");
    assert!(exit.expect("wait").success(), "a clean exit on SIGTERM");
    stopped
}

async fn holder_other_than(
    leases: &Api<k8s_openapi::api::coordination::v1::Lease>,
    not: &str,
    limit: Duration,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let lease = leases.get_opt("blog-operator").await.expect("lease");
        let holder = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity).unwrap_or_default();
        if !holder.is_empty() && holder != not {
            return holder;
        }
        assert!(Instant::now() < deadline, "no holder other than {not:?} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
