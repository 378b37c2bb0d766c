//! AWS as it behaves, not as the emulator answers: the operator behind the realism and fault layer
//! (`tests/aws-realism.py`). Short runs here, in `make test`; `make chaos` runs the same tests with
//! the sizes (`CHAOS_KILLS=20 CHAOS_CYCLES=50 CHAOS_OBJECTS=50 ...`) and prints the table.

use blog_tests::Realism;

use super::support::*;

/// A knob of the chaos run, from the environment, with the short run's default.
fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub(crate) fn seed() -> u64 {
    knob("CHAOS_SEED", 7)
}

/// What AWS does that moto does not, all at once, with throttling and errors on top.
fn aws_as_it_behaves(throttle: f64) -> serde_json::Value {
    json!({
        "seed": seed(),
        "iam_propagation": 4, "lambda_pending": 2, "alb_provisioning": 4, "dynamodb_creating": 2, "ecs_start": 3,
        "throttle": throttle, "error5xx": 0.03, "after_effect": 0.5, "latency_ms": 40,
        "stall": 0.005, "stall_seconds": 6,
    })
}

/// Operator flags for a run behind the layer: tasks must really run; short timeouts meet the stalls.
const BEHIND: [&str; 6] =
    ["--container-readiness", "running", "--aws-attempt-timeout-seconds", "3", "--aws-operation-timeout-seconds", "10"];

fn both(image: &str) -> serde_json::Value {
    json!({"image": image, "function": {}, "container": {"loadBalancer": {"plainHttp": true}}, "table": {"deletionPolicy": "Delete"}})
}

/// Every resource of these owners still in the emulator, by kind, counted by each service's own
/// list calls (security groups by the operator's EC2 lookup: there is no EC2 SDK in the workspace).
async fn left_behind(aws: &Aws, owners: &[(Owner, Names)]) -> BTreeMap<&'static str, usize> {
    let mut left = BTreeMap::new();
    for (owner, names) in owners {
        let counts = aws.count(names).await.into_iter().chain(aws.count_container(owner, names).await);
        for (kind, n) in counts {
            *left.entry(kind).or_default() += n;
        }
    }
    left.retain(|_, n| *n > 0);
    left
}

fn requests(stats: &serde_json::Value) -> u64 {
    stats["requests"].as_object().map_or(0, |ops| ops.values().filter_map(serde_json::Value::as_u64).sum())
}

/// Faults injected, by kind (the proxy counts them by kind and operation).
fn faults(stats: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut by_kind = BTreeMap::new();
    for (key, n) in stats["faults"].as_object().into_iter().flatten() {
        let kind = key.rsplit_once(' ').map_or(key.as_str(), |(kind, _operation)| kind);
        *by_kind.entry(kind.to_owned()).or_default() += n.as_u64().unwrap_or(0);
    }
    by_kind
}

#[tokio::test]
async fn both_variants_become_ready_as_aws_behaves_with_tasks_running() {
    let (stack, _client, ns, api) = setup("realism").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let realism = Realism::start(&stack.aws_endpoint, &aws_as_it_behaves(0.1)).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 60, &BEHIND, &realism.endpoint);

    api.create(&PostParams::default(), &blog("real", both("blog:1"))).await.expect("create");
    let bd = wait_for_within(&api, "real", "Ready with its tasks running", Duration::from_secs(150), ready).await;
    let tasks = bd.status.as_ref().and_then(|s| s.container_tasks.clone()).expect("tasks in status");
    assert_eq!((tasks.running, tasks.rollout.as_str()), (tasks.desired, "COMPLETED"), "{tasks:?}");
    let stats = realism.stats();
    let injected = faults(&stats);
    // What the operator met on its way (whether an update also came too early depends on timing).
    for kind in ["iam_propagation", "shown lambda_pending", "shown alb_provisioning", "shown ecs_start"] {
        assert!(injected.get(kind).is_some_and(|n| *n > 0), "{kind} was played: {injected:?}");
    }
    let (owner, names) = (owner_of(&bd), names_of(&bd));
    assert_eq!(aws.count(&names).await, one_of_each());
    assert_eq!(aws.count_container(&owner, &names).await, container_each(1));
    eprintln!("Ready behind the realism layer: {} requests, faults {injected:?}", requests(&stats));

    api.delete("real", &DeleteParams::default()).await.expect("delete");
    wait_gone_within(&api, "real", Duration::from_secs(150)).await;
    assert_eq!(left_behind(&aws, &[(owner, names)]).await, BTreeMap::new(), "nothing left after the delete");
    operator.kill().await;
}

#[tokio::test]
async fn a_rollout_the_circuit_breaker_rolls_back_is_reported_and_the_function_serves() {
    let (stack, _client, ns, api) = setup("rollback").await;
    let _logs = stack.logs_on_failure();
    let mut config = aws_as_it_behaves(0.0);
    config["ecs_health"] = json!("fail");
    let realism = Realism::start(&stack.aws_endpoint, &config).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 60, &BEHIND, &realism.endpoint);

    api.create(&PostParams::default(), &blog("broken", both("blog:1"))).await.expect("create");
    let bd = wait_for_within(&api, "broken", "the rollback reported", Duration::from_secs(120), |bd| {
        let serving = condition(bd, "FunctionReady").is_some_and(|c| c.status == "True");
        reason_of(bd, "ContainerReady").0 == "RolloutFailed" && serving
    })
    .await;
    let ready = condition(&bd, "Ready").expect("Ready");
    assert_eq!(ready.status, "False", "a failed rollout is not Ready: {ready:?}");
    api.delete("broken", &DeleteParams::default()).await.expect("delete");
    wait_gone_within(&api, "broken", Duration::from_secs(120)).await;
    operator.kill().await;
}

/// A seeded sequence of delays: where each kill -9 lands.
fn kill_points(n: u64) -> Vec<Duration> {
    let mut state = seed().wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            Duration::from_millis(200 + (state >> 33) % 3800)
        })
        .collect()
}

#[tokio::test]
async fn kill_9_at_seeded_points_under_throttling_converges_to_one_of_each_and_leaves_nothing() {
    let (stack, _client, ns, api) = setup("kills").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let realism = Realism::start(&stack.aws_endpoint, &aws_as_it_behaves(0.2)).expect("realism layer");
    api.create(&PostParams::default(), &blog("killed", both("blog:1"))).await.expect("create");
    let points = kill_points(knob("CHAOS_KILLS", 3));
    for delay in &points {
        let operator = Operator::start_behind(stack, &ns.name, 60, &BEHIND, &realism.endpoint);
        tokio::time::sleep(*delay).await;
        operator.kill().await;
    }
    let operator = Operator::start_behind(stack, &ns.name, 60, &BEHIND, &realism.endpoint);
    let bd = wait_for_within(&api, "killed", "Ready after the kills", Duration::from_secs(180), ready).await;
    let (owner, names) = (owner_of(&bd), names_of(&bd));
    let made = (aws.count(&names).await, aws.count_container(&owner, &names).await);
    assert_eq!(made, (one_of_each(), container_each(1)), "exactly one of each after {} kills", points.len());
    api.delete("killed", &DeleteParams::default()).await.expect("delete");
    wait_gone_within(&api, "killed", Duration::from_secs(150)).await;
    let left = left_behind(&aws, &[(owner, names)]).await;
    let stats = realism.stats();
    eprintln!(
        "| kill -9 | {} kills at {:?} | 20 % throttling | {} requests | faults {:?} | left {left:?} |",
        points.len(),
        points,
        requests(&stats),
        faults(&stats)
    );
    assert_eq!(left, BTreeMap::new(), "nothing leaked");
    operator.kill().await;
}

#[tokio::test]
async fn create_delete_cycles_leave_nothing_in_the_emulator() {
    let (stack, _client, ns, api) = setup("cycles").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let realism = Realism::start(&stack.aws_endpoint, &aws_as_it_behaves(0.05)).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 60, &BEHIND, &realism.endpoint);
    let cycles = knob("CHAOS_CYCLES", 2);
    let mut owners = Vec::new();
    for cycle in 0..cycles {
        let name = format!("cycle-{cycle}");
        api.create(&PostParams::default(), &blog(&name, both("blog:1"))).await.expect("create");
        let bd = wait_for_within(&api, &name, "Ready", Duration::from_secs(150), ready).await;
        owners.push((owner_of(&bd), names_of(&bd)));
        api.delete(&name, &DeleteParams::default()).await.expect("delete");
        wait_gone_within(&api, &name, Duration::from_secs(150)).await;
    }
    let left = left_behind(&aws, &owners).await;
    eprintln!("| create/delete | {cycles} cycles | {} requests | left {left:?} |", requests(&realism.stats()));
    assert_eq!(left, BTreeMap::new(), "nothing left after {cycles} cycles");
    operator.kill().await;
}

#[tokio::test]
async fn an_outage_backs_off_instead_of_hot_looping_and_recovers() {
    let (stack, _client, ns, api) = setup("outage").await;
    let _logs = stack.logs_on_failure();
    let objects = knob("CHAOS_OBJECTS", 4);
    let outage = knob("CHAOS_OUTAGE_SECONDS", 40);
    let cap = knob("CHAOS_RETRY_MAX_SECONDS", 8);
    let realism =
        Realism::start(&stack.aws_endpoint, &json!({"seed": seed(), "outage": [0, outage]})).expect("realism layer");
    let flags = ["--retry-max-seconds", &cap.to_string(), "--aws-attempt-timeout-seconds", "3"];
    let operator = Operator::start_behind(stack, &ns.name, 60, &flags, &realism.endpoint);
    for i in 0..objects {
        let spec = json!({"image": "b:1", "function": {}, "table": {"deletionPolicy": "Delete"}});
        api.create(&PostParams::default(), &blog(&format!("down-{i}"), spec)).await.expect("create");
    }
    // The second half of the outage, when every object has backed off to the cap.
    let half = Duration::from_secs(outage / 2);
    tokio::time::sleep(half.saturating_sub(realism_age(&realism))).await;
    let (reconciles_half, requests_half) = (operator.reconciles().await, requests(&realism.stats()));
    tokio::time::sleep(Duration::from_secs(outage).saturating_sub(realism_age(&realism))).await;
    let (reconciles_end, requests_end) = (operator.reconciles().await, requests(&realism.stats()));
    let per_object = |n: u64, seconds: u64| {
        #[allow(clippy::cast_precision_loss)]
        let rate = n as f64 / objects as f64 / (seconds as f64 / 60.0);
        rate
    };
    let steady = per_object(reconciles_end - reconciles_half, outage - outage / 2);
    eprintln!(
        "| outage | {objects} objects, {outage} s of 503s, backoff cap {cap} s | {:.1} requests/object/minute overall, \
         {:.1} in the second half | {steady:.1} reconciles/object/minute in the second half |",
        per_object(requests_end, outage),
        per_object(requests_end - requests_half, outage - outage / 2),
    );
    // At the cap, an object retries at most once per `cap` seconds (jitter only lengthens it); a
    // fixed retry would be once per few seconds.
    #[allow(clippy::cast_precision_loss)]
    let bound = 60.0 / cap as f64 + 60.0 / (outage - outage / 2) as f64;
    assert!(steady <= bound, "a hot loop: {steady:.1} reconciles/object/minute at the cap, bound {bound:.1}");
    let recovery = Instant::now();
    for i in 0..objects {
        let limit = Duration::from_secs(2 * cap + 90);
        wait_for_within(&api, &format!("down-{i}"), "Ready after the outage", limit, ready).await;
    }
    eprintln!("| recovery | all {objects} Ready {:?} after the outage ended |", recovery.elapsed());
    for i in 0..objects {
        api.delete(&format!("down-{i}"), &DeleteParams::default()).await.expect("delete");
    }
    for i in 0..objects {
        wait_gone_within(&api, &format!("down-{i}"), Duration::from_secs(120)).await;
    }
    operator.kill().await;
}

fn realism_age(realism: &Realism) -> Duration {
    Duration::from_secs_f64(realism.stats()["uptime"].as_f64().unwrap_or(0.0))
}

/// One entry of `operator/tests/fixtures/hostile-specs.yaml` or `aws-formats.yaml`.
#[derive(serde::Deserialize)]
struct Hostile {
    name: String,
    field: String,
    spec: serde_json::Value,
}

#[tokio::test]
async fn hostile_specs_are_refused_naming_the_field_without_an_aws_call() {
    let (stack, _client, ns, api) = setup("hostile").await;
    let _logs = stack.logs_on_failure();
    let operator = Operator::start(stack, &ns.name, 60).await;
    let read = |file: &str, prefix: &str| {
        let path = blog_tests::workspace_root().join("operator/tests/fixtures").join(file);
        let cases: Vec<Hostile> =
            serde_saphyr::from_str(&std::fs::read_to_string(path).expect("corpus")).expect("YAML");
        let prefix = prefix.to_owned();
        cases.into_iter().map(move |c| Hostile { name: format!("{prefix}-{}", c.name), ..c })
    };
    // The hostile specs, and the values AWS refuses that the emulators take.
    let corpus: Vec<Hostile> =
        read("hostile-specs.yaml", "hostile").chain(read("aws-formats.yaml", "format")).collect();
    assert!(corpus.len() >= 60, "the corpora hold {} specs", corpus.len());
    let (mut by_schema, mut by_operator) = (Vec::new(), Vec::new());
    for case in &corpus {
        let manifest = json!({
            "apiVersion": "blogs.serverless.dev/v1alpha1", "kind": "BlogDeployment",
            "metadata": {"name": case.name, "namespace": ns.name}, "spec": case.spec,
        });
        let applied = kubectl_apply_stdin(stack, &manifest.to_string());
        let said = String::from_utf8_lossy(&applied.stderr).into_owned();
        if applied.status.success() {
            by_operator.push(case);
        } else {
            assert!(said.contains(&case.field), "{}: kubectl's refusal names {}: {said}", case.name, case.field);
            by_schema.push(case.name.as_str());
        }
    }
    for case in &by_operator {
        let bd = wait_for(&api, &case.name, "InvalidSpec", |bd| {
            condition(bd, "Ready").is_some_and(|c| c.status == "False" && c.reason == "InvalidSpec")
        })
        .await;
        let message = &condition(&bd, "Ready").expect("Ready").message;
        assert!(message.contains(&case.field), "{}: the condition names {}: {message}", case.name, case.field);
    }
    eprintln!("refused by the schema: {}", by_schema.join(", "));
    eprintln!(
        "| hostile specs | {} in the corpus | {} refused by the schema | {} InvalidSpec | {} AWS calls |",
        corpus.len(),
        by_schema.len(),
        by_operator.len(),
        operator.aws_calls().await.values().sum::<u64>()
    );
    assert_eq!(operator.aws_calls().await, BTreeMap::new(), "no AWS call for any of them");
    let log = std::fs::read_to_string(&operator.log).expect("operator log");
    assert!(!log.contains("panicked"), "the operator panicked:\n{}", blog_tests::tail(&operator.log, 40));
    operator.kill().await;
}

#[tokio::test]
async fn a_load_balancer_whose_create_answer_is_lost_is_made_once() {
    let (stack, _client, ns, api) = setup("lostlb").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    // Every CreateLoadBalancer takes effect and its answer is lost, so the SDK sends it again: AWS
    // answers a repeat with the load balancer that exists (the layer plays that; moto would make a
    // second one that a lookup by name cannot see, and it would outlive the delete).
    let config = json!({"seed": seed(), "throttle": {"CreateLoadBalancer": 1.0}, "after_effect": 1.0});
    let realism = Realism::start(&stack.aws_endpoint, &config).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 60, &[], &realism.endpoint);
    let spec = json!({"image": "blog:1", "container": {"loadBalancer": {"plainHttp": true}}, "table": {"deletionPolicy": "Delete"}});
    api.create(&PostParams::default(), &blog("lost", spec)).await.expect("create");
    let bd = wait_for_within(&api, "lost", "Ready", Duration::from_secs(120), ready).await;
    let (owner, names) = (owner_of(&bd), names_of(&bd));
    assert_eq!(aws.count_container(&owner, &names).await, container_each(1), "one load balancer in the full list");
    let answered = faults(&realism.stats()).get("idempotent CreateLoadBalancer").copied().unwrap_or(0);
    assert!(answered > 0, "the repeats were answered with the existing one");
    api.delete("lost", &DeleteParams::default()).await.expect("delete");
    wait_gone_within(&api, "lost", Duration::from_secs(120)).await;
    assert_eq!(left_behind(&aws, &[(owner, names)]).await, BTreeMap::new(), "nothing left after the delete");
    operator.kill().await;
}

#[tokio::test]
async fn the_call_budget_holds_every_service_under_its_rate() {
    let (stack, _client, ns, api) = setup("budget").await;
    let _logs = stack.logs_on_failure();
    let realism = Realism::start(&stack.aws_endpoint, &json!({"seed": seed()})).expect("realism layer");
    let budget = ["--aws-calls-per-second", "4", "--aws-calls-per-second-for", "lambda=2,iam=3"];
    let operator = Operator::start_behind(stack, &ns.name, 60, &budget, &realism.endpoint);
    for name in ["paced-a", "paced-b", "paced-c"] {
        api.create(&PostParams::default(), &blog(name, both("blog:1"))).await.expect("create");
    }
    for name in ["paced-a", "paced-b", "paced-c"] {
        wait_for_within(&api, name, "Ready under the budget", Duration::from_secs(240), ready).await;
    }
    // Counted by the proxy, not by the operator: the most requests each service saw in one second.
    // A bucket holds a second's worth, so one second may see its burst and its refill: twice the
    // rate, and one call more where the network bunched two seconds' edges together.
    let stats = realism.stats();
    let peaks: BTreeMap<String, u64> = stats["peak_per_second"]
        .as_object()
        .expect("peaks")
        .iter()
        .map(|(service, n)| (service.clone(), n.as_u64().unwrap_or(0)))
        .collect();
    // The built-in limits (route53, logs, apigateway, acm: 5) never raise the default of 4.
    let rate = |service: &str| match service {
        "lambda" => 2,
        "iam" => 3,
        _ => 4,
    };
    eprintln!("peak calls per second by service under the budget: {peaks:?}");
    for (service, peak) in &peaks {
        assert!(*peak <= 2 * rate(service) + 1, "{service}: {peak} calls in one second, budget {}/s", rate(service));
    }
    let text = http_get(&format!("{}/metrics", operator.metrics)).await;
    assert!(text.contains("blog_operator_aws_budget_wait_seconds_total{service="), "waits are counted: {text}");
    for name in ["paced-a", "paced-b", "paced-c"] {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
    }
    for name in ["paced-a", "paced-b", "paced-c"] {
        wait_gone_within(&api, name, Duration::from_secs(240)).await;
    }
    operator.kill().await;
}

/// Every create the two variants make, as the realism layer names them.
const CREATES: [&str; 22] = [
    "CreateTable",
    "CreateRole",
    "CreateLogGroup",
    "CreateSecret",
    "CreateFunction",
    "PublishVersion",
    "CreateAlias",
    "AddPermission",
    "CreateApi",
    "CreateIntegration",
    "CreateRoute",
    "CreateStage",
    "CreateCluster",
    "RegisterTaskDefinition",
    "CreateService",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "CreateLoadBalancer",
    "CreateTargetGroup",
    "CreateListener",
    "PutRolePolicy",
    "CreateWebACL",
];

/// How many web ACLs each owner's load balancer name holds (WAF lists them by name only).
async fn web_acls(stack: &Stack, owners: &[(Owner, Names)]) -> Vec<usize> {
    let waf = aws_sdk_wafv2::Client::new(&stack.sdk_config().await);
    let scope = aws_sdk_wafv2::types::Scope::Regional;
    let listed = waf.list_web_acls().scope(scope).limit(100).send().await.expect("web ACLs");
    let count = |name: &str| listed.web_acls().iter().filter(|s| s.name() == Some(name)).count();
    owners.iter().map(|(_, names)| count(&names.load_balancer)).collect()
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_for_every_kind() {
    let (stack, _client, ns, api) = setup("lostanswers").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    // The first call of every create takes effect and its answer is lost: the SDK's retry then
    // finds the name taken (InvalidGroup.Duplicate, DuplicateTargetGroupName, ConflictException...),
    // which must mean "look it up and claim it", not a refusal that waits for the resync.
    let lose: serde_json::Map<String, serde_json::Value> =
        CREATES.iter().map(|op| ((*op).to_owned(), json!(1))).collect();
    let realism = Realism::start(&stack.aws_endpoint, &json!({"seed": seed(), "lose_first": lose})).expect("realism");
    let operator = Operator::start_behind(stack, &ns.name, 300, &[], &realism.endpoint);
    let names: Vec<String> = (1..=5).map(|i| format!("lost-{i}")).collect();
    let mut spec = both("blog:1");
    spec["container"]["loadBalancer"]["waf"] = json!({"rateLimit": 1000});
    for name in &names {
        api.create(&PostParams::default(), &blog(name, spec.clone())).await.expect("create");
    }
    let mut owners = Vec::new();
    for name in &names {
        // Well inside the 300 s resync: a refusal would wait for it.
        let bd = wait_for_within(&api, name, "Ready", Duration::from_secs(150), ready).await;
        owners.push((owner_of(&bd), names_of(&bd)));
    }
    let stats = realism.stats();
    let lost: BTreeMap<&str, u64> =
        CREATES.iter().map(|op| (*op, stats["faults"][format!("lost answer {op}")].as_u64().unwrap_or(0))).collect();
    println!("answers lost: {lost:?}");
    let never: Vec<&&str> = CREATES.iter().filter(|op| lost[**op] == 0).collect();
    assert!(never.is_empty(), "these creates were never called: {never:?}");
    let mut each = one_of_each();
    each.extend(container_each(1));
    let each: BTreeMap<&str, usize> = each.into_iter().map(|(kind, n)| (kind, n * owners.len())).collect();
    assert_eq!(left_behind(&aws, &owners).await, each, "exactly one of each per object");
    assert_eq!(web_acls(stack, &owners).await, vec![1; owners.len()], "one web ACL per object");
    for name in &names {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
    }
    for name in &names {
        wait_gone_within(&api, name, Duration::from_secs(150)).await;
    }
    assert_eq!(left_behind(&aws, &owners).await, BTreeMap::new(), "nothing left after the delete");
    assert_eq!(web_acls(stack, &owners).await, vec![0; owners.len()], "no web ACL left after the delete");
    operator.kill().await;
}
