//! Progressive delivery of the function: a good version promoted through every step, a bad one
//! rolled back on its own metrics, a restart mid-rollout, a spec change mid-rollout, and the
//! promote / abort / pause annotations. Lambda's metrics by `ExecutedVersion` are written into the
//! emulator's CloudWatch, as Lambda publishes them for each version behind the weighted alias.

use crate::sizing::put_metrics;
use crate::support::*;
use blog_core::rollout::VariantRollout;

const ANNOTATION: &str = "blogs.serverless.dev/rollout";

/// Linear 40 % → 80 % → all, `bake` per step, a verdict every 3 s from at least 20 requests.
fn spec(bake: &str, release: &str) -> serde_json::Value {
    json!({
        "image": "blog-service:1.0.0",
        "function": {},
        "env": {"RELEASE": release},
        "rollout": {
            "strategy": "Linear",
            "linear": {"stepPercent": 40, "stepBake": bake},
            "analysis": {"interval": "3s", "minRequests": 20, "maxErrorPercent": 5, "failureLimit": 2, "maxStepDuration": "5m"}
        }
    })
}

fn rollout_of(bd: &BlogDeployment) -> Option<VariantRollout> {
    bd.status.as_ref()?.rollout.as_ref()?.function.clone()
}

fn phase_is(bd: &BlogDeployment, phase: &str, canary: &str) -> bool {
    rollout_of(bd).is_some_and(|r| r.phase == phase && r.canary.as_deref() == Some(canary))
}

/// The alias `live`: its version and the weighted second version (% of readers).
async fn alias(aws: &Aws, function: &str) -> (String, Vec<(String, i64)>) {
    let alias = aws.lambda.get_alias().function_name(function).name("live").send().await.expect("alias");
    let weights = alias.routing_config().and_then(|r| r.additional_version_weights()).cloned().unwrap_or_default();
    #[allow(clippy::cast_possible_truncation)]
    let weights = weights.into_iter().map(|(v, w)| (v, (w * 100.0).round() as i64)).collect();
    (alias.function_version().unwrap_or_default().to_owned(), weights)
}

/// Writes, every second until aborted, what Lambda would publish for each `(version, errors)`
/// behind the alias: 30 invocations, `errors` of them failed, 40 ms.
fn feed(stack: &'static Stack, function: String, versions: Vec<(&'static str, f64)>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
        let alias = format!("{function}:live");
        loop {
            for (version, errors) in &versions {
                let dims =
                    [("FunctionName", function.as_str()), ("Resource", alias.as_str()), ("ExecutedVersion", *version)];
                put_metrics(&cloudwatch, "AWS/Lambda", "Invocations", &dims, &[30.0]).await;
                put_metrics(&cloudwatch, "AWS/Lambda", "Errors", &dims, &[*errors]).await;
                put_metrics(&cloudwatch, "AWS/Lambda", "Duration", &dims, &[40.0]).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn event_notes(client: &Client, namespace: &str, name: &str) -> Vec<(String, String)> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), namespace);
    let mut listed: Vec<_> = events.list(&Default::default()).await.expect("list events").items;
    listed.retain(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name));
    listed.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
    listed.into_iter().map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default())).collect()
}

async fn set_release(api: &Api<BlogDeployment>, release: &str) {
    let patch = json!({"spec": {"env": {"RELEASE": release}}});
    api.patch("blog", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
}

async fn annotate(api: &Api<BlogDeployment>, value: &str) {
    let patch = json!({"metadata": {"annotations": {ANNOTATION: value}}});
    api.patch("blog", &PatchParams::default(), &Patch::Merge(patch)).await.expect("annotate");
}

#[tokio::test]
async fn a_good_version_is_promoted_step_by_step_and_a_bad_one_rolled_back() {
    let (stack, client, ns, api) = setup("canary").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    api.create(&PostParams::default(), &blog("blog", spec("6s", "1"))).await.expect("create");
    let bd = wait_for(&api, "blog", "Ready", ready).await;
    let function = names_of(&bd).function;
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![]), "the first version goes out at once");

    // Version 2 is good: 0 errors, as the stable version.
    set_release(&api, "2").await;
    let started = wait_for(&api, "blog", "version 2 at its first step", |bd| phase_is(bd, "Progressing", "2")).await;
    assert_eq!(reason_of(&started, "FunctionReady").0, "RollingOut");
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![("2".to_owned(), 40)]));
    let feeder = feed(stack, function.clone(), vec![("1", 0.0), ("2", 0.0)]);
    let mut weights = Vec::new();
    let promoted = wait_for_within(&api, "blog", "version 2 promoted", Duration::from_secs(120), |bd| {
        eprintln!("rollout: {:?}", rollout_of(bd).map(|r| (r.phase, r.weight, r.step)));
        phase_is(bd, "Succeeded", "2")
    })
    .await;
    feeder.abort();
    let record = rollout_of(&promoted).expect("record");
    let check = record.last_check.clone().expect("a verdict");
    eprintln!("last verdict of version 2: {check:?}");
    assert_eq!((check.verdict.as_str(), check.error_percent), ("Pass", 0.0));
    assert!(check.requests >= 20.0 && check.baseline_requests.is_some_and(|r| r >= 20.0), "{check:?}");
    assert_eq!(alias(&aws, &function).await, ("2".to_owned(), vec![]), "every reader on version 2");
    let notes = event_notes(&client, &ns.name, "blog").await;
    for (reason, note) in &notes {
        if reason.starts_with("Rollout") {
            weights.push(note.clone());
        }
    }
    eprintln!("events of version 2: {weights:#?}");
    assert!(weights.iter().any(|n| n.contains("version 2 at 40 % (step 1/2)")), "{weights:?}");
    assert!(weights.iter().any(|n| n.contains("version 2 at 80 % (step 2/2)")), "{weights:?}");
    wait_for(&api, "blog", "Ready on version 2", ready).await;
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "a promoted rollout's resyncs mutated AWS: {mutated:?}");

    // Version 3 fails a third of its requests; the stable version 2 none.
    set_release(&api, "3").await;
    wait_for(&api, "blog", "version 3 at its first step", |bd| phase_is(bd, "Progressing", "3")).await;
    assert_eq!(alias(&aws, &function).await, ("2".to_owned(), vec![("3".to_owned(), 40)]));
    let feeder = feed(stack, function.clone(), vec![("2", 0.0), ("3", 10.0)]);
    let first_fail = Instant::now();
    let rolled_back = wait_for_within(&api, "blog", "version 3 rolled back", Duration::from_secs(60), |bd| {
        phase_is(bd, "RolledBack", "3")
    })
    .await;
    feeder.abort();
    eprintln!("version 3 rolled back {:?} after its metrics began", first_fail.elapsed());
    let record = rollout_of(&rolled_back).expect("record");
    let check = record.last_check.clone().expect("the failing verdict");
    eprintln!("verdict on version 3: {check:?}");
    assert_eq!(check.verdict, "Fail");
    assert!(check.error_percent > 30.0 && check.baseline_error_percent == Some(0.0), "{check:?}");
    let (reason, message) = reason_of(&rolled_back, "FunctionReady");
    assert_eq!(reason, "RolledBack", "{message}");
    assert!(message.contains("rolled back to 2") && message.contains("failed verdicts"), "{message}");
    assert_eq!(alias(&aws, &function).await, ("2".to_owned(), vec![]), "no reader reaches version 3");
    let notes = event_notes(&client, &ns.name, "blog").await;
    let warning = notes.iter().find(|(reason, _)| reason == "RolledBack").expect("a RolledBack Event");
    assert!(warning.1.contains("% errors"), "{warning:?}");

    let calls = operator.aws_calls().await;
    let rollout_calls: Vec<_> =
        calls.iter().filter(|(op, _)| ["Lambda/", "CloudWatch/"].iter().any(|p| op.starts_with(p))).collect();
    eprintln!("Lambda and CloudWatch calls over both rollouts: {rollout_calls:?}");
    // Held: resyncs neither retry version 3 nor change anything.
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "a settled rollback's resyncs mutated AWS: {mutated:?}");
    assert_eq!(alias(&aws, &function).await, ("2".to_owned(), vec![]));

    // The spec reverted to version 2's settings: Ready again, the rollback no longer reported.
    set_release(&api, "2").await;
    let reverted = wait_for(&api, "blog", "Ready on the reverted spec", ready).await;
    assert_eq!(rollout_of(&reverted), None, "{:?}", reverted.status.as_ref().map(|s| &s.rollout));
    operator.kill().await;
}

#[tokio::test]
async fn a_rollout_resumes_after_a_restart_starts_over_on_a_new_spec_and_obeys_annotations() {
    let (stack, client, ns, api) = setup("rollctl").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    // Steps bake for 10 minutes: only the annotations end this rollout within the test.
    api.create(&PostParams::default(), &blog("blog", spec("10m", "1"))).await.expect("create");
    let bd = wait_for(&api, "blog", "Ready", ready).await;
    let function = names_of(&bd).function;

    set_release(&api, "2").await;
    let before = wait_for(&api, "blog", "version 2 rolling out", |bd| phase_is(bd, "Progressing", "2")).await;
    let started = rollout_of(&before).and_then(|r| r.step_started);
    // A restarted operator picks the rollout up where it was: same step, same start, no new Event.
    operator.kill().await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    let resumed = operator.reconciles().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while operator.reconciles().await < resumed + 3 {
        assert!(Instant::now() < deadline, "the restarted operator did not reconcile");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after = api.get("blog").await.expect("get");
    let record = rollout_of(&after).expect("record");
    assert_eq!((record.step, record.weight, record.step_started), (1, 40, started));
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![("2".to_owned(), 40)]));
    // Started once (or, when that apply's status was lost, picked up once from the alias).
    let said = ["RolloutStarted", "RolloutResumed"];
    let starts = event_notes(&client, &ns.name, "blog").await.into_iter().filter(|(r, _)| said.contains(&r.as_str()));
    assert_eq!(starts.count(), 1, "the restart did not start the rollout again");

    // A new spec mid-rollout starts over from the stable version 1.
    set_release(&api, "3").await;
    wait_for(&api, "blog", "version 3 rolling out", |bd| phase_is(bd, "Progressing", "3")).await;
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![("3".to_owned(), 40)]));

    // abort: every reader back on version 1, the annotation cleared.
    annotate(&api, "abort").await;
    let aborted = wait_for(&api, "blog", "version 3 aborted", |bd| phase_is(bd, "RolledBack", "3")).await;
    assert!(rollout_of(&aborted).is_some_and(|r| r.message.contains("aborted by annotation")));
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![]));
    wait_for(&api, "blog", "the abort annotation cleared", |bd| !bd.annotations().contains_key(ANNOTATION)).await;

    // pause holds version 4 at its step; promote then puts every reader on it.
    set_release(&api, "4").await;
    wait_for(&api, "blog", "version 4 rolling out", |bd| phase_is(bd, "Progressing", "4")).await;
    annotate(&api, "pause").await;
    let paused = wait_for(&api, "blog", "version 4 paused", |bd| phase_is(bd, "Paused", "4")).await;
    assert_eq!(reason_of(&paused, "FunctionReady").0, "RolloutPaused");
    annotate(&api, "promote").await;
    wait_for(&api, "blog", "version 4 promoted", |bd| phase_is(bd, "Succeeded", "4") && ready(bd)).await;
    assert_eq!(alias(&aws, &function).await, ("4".to_owned(), vec![]));
    wait_for(&api, "blog", "the promote annotation cleared", |bd| !bd.annotations().contains_key(ANNOTATION)).await;
    let reasons: Vec<String> = event_notes(&client, &ns.name, "blog").await.into_iter().map(|(r, _)| r).collect();
    for expected in ["RolloutStarted", "RolledBack", "RolloutPaused", "RolloutSucceeded"] {
        assert!(reasons.iter().any(|r| r == expected), "no {expected} Event in {reasons:?}");
    }
    operator.kill().await;
}

#[tokio::test]
async fn a_paused_object_reports_drift_and_changes_nothing_until_resumed() {
    let (stack, _client, ns, api) = setup("paused").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let operator = Operator::start(stack, &ns.name, 2).await;
    let spec = json!({"image": "blog-service:1.0.0", "function": {"memoryMiB": 512}});
    api.create(&PostParams::default(), &blog("blog", spec)).await.expect("create");
    let bd = wait_for(&api, "blog", "Ready", ready).await;
    let function = names_of(&bd).function;
    let memory = || async {
        let config = aws.lambda.get_function_configuration().function_name(&function).send().await.expect("config");
        config.memory_size().unwrap_or_default()
    };

    let patch = json!({"metadata": {"annotations": {"blogs.serverless.dev/paused": "true"}}});
    api.patch("blog", &PatchParams::default(), &Patch::Merge(patch)).await.expect("pause");
    // Someone changes the function by hand, and the spec asks for more memory: neither is repaired.
    aws.lambda.update_function_configuration().function_name(&function).memory_size(1024).send().await.expect("drift");
    let patch = json!({"spec": {"function": {"memoryMiB": 768}}});
    api.patch("blog", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    let drifted = wait_for(&api, "blog", "drift reported", |bd| reason_of(bd, "FunctionReady").0 == "Paused").await;
    let message = reason_of(&drifted, "FunctionReady").1;
    assert!(message.contains("UpdateFunctionConfiguration"), "{message}");
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "a paused object's reconciles mutated AWS: {mutated:?}");
    assert_eq!(memory().await, 1024, "the drift stays while paused");

    let patch = json!({"metadata": {"annotations": {"blogs.serverless.dev/paused": null}}});
    api.patch("blog", &PatchParams::default(), &Patch::Merge(patch)).await.expect("resume");
    wait_for(&api, "blog", "Ready once resumed", ready).await;
    assert_eq!(memory().await, 768, "the spec's memory once resumed");
    operator.kill().await;
}

/// Auto sizing's own change goes through the rollout: a memory it chose that fails its verdicts
/// is rolled back like a bad image, every reader back on the spec's size.
#[tokio::test]
async fn an_auto_sizing_change_rolls_out_and_a_bad_one_is_rolled_back() {
    let (stack, _client, ns, api) = setup("autoroll").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let operator = Operator::start(stack, &ns.name, 2).await;
    let spec = json!({
        "image": "blog-service:1.0.0",
        "function": {"memoryMiB": 1024},
        "allocation": {"mode": "Auto", "cooldownMinutes": 0},
        "rollout": {
            "strategy": "Canary",
            "canary": {"percent": 50, "bake": "4s"},
            "analysis": {"interval": "3s", "minRequests": 20, "maxErrorPercent": 5, "failureLimit": 1, "maxStepDuration": "5m"}
        }
    });
    api.create(&PostParams::default(), &blog("blog", spec)).await.expect("create");
    let bd = wait_for(&api, "blog", "Ready", ready).await;
    let function = names_of(&bd).function;
    let served_memory = || async {
        let live = aws.lambda.get_function_configuration().function_name(&function).qualifier("live").send().await;
        live.expect("live").memory_size().unwrap_or_default()
    };
    assert_eq!(served_memory().await, 1024);

    // A light load: Auto shrinks the function to 384 MiB, which becomes version 2 at 50 %.
    let by_name = [("FunctionName", function.as_str())];
    put_metrics(&cloudwatch, "AWS/Lambda", "Duration", &by_name, &[40.0, 45.0, 50.0, 60.0]).await;
    put_metrics(&cloudwatch, "AWS/Lambda", "Invocations", &by_name, &[900.0, 900.0, 900.0, 900.0]).await;
    put_metrics(&cloudwatch, "AWS/Lambda", "Errors", &by_name, &[0.0]).await;
    put_metrics(&cloudwatch, "AWS/Lambda", "Throttles", &by_name, &[0.0]).await;
    wait_for_within(&api, "blog", "Auto's size rolling out", Duration::from_secs(120), |bd| {
        phase_is(bd, "Progressing", "2")
    })
    .await;
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![("2".to_owned(), 50)]));
    let canary = aws.lambda.get_function_configuration().function_name(&function).qualifier("2").send().await;
    assert_eq!(canary.expect("version 2").memory_size(), Some(384), "version 2 is Auto's size");

    // At 384 MiB the function fails: rolled back, every reader on 1024 MiB again.
    let feeder = feed(stack, function.clone(), vec![("1", 0.0), ("2", 12.0)]);
    let rolled_back = wait_for(&api, "blog", "Auto's size rolled back", |bd| phase_is(bd, "RolledBack", "2")).await;
    feeder.abort();
    let message = reason_of(&rolled_back, "FunctionReady").1;
    assert!(message.contains("rolled back to 1"), "{message}");
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![]));
    assert_eq!(served_memory().await, 1024, "every reader on the size that worked");
    operator.kill().await;
}

/// Every alias move's answer lost at first (the move took effect; the SDK retries it), the new
/// version's publish too, and Lambda `InProgress` after each update: the rollout ends the same,
/// with one version per configuration.
#[tokio::test]
async fn a_rollout_whose_answers_are_lost_ends_the_same() {
    let (stack, _client, ns, api) = setup("lostalias").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let config = json!({
        "seed": crate::chaos::seed(),
        "lose_first": {"UpdateAlias": 3, "PublishVersion": 2, "CreateAlias": 1},
        "lambda_pending": 2
    });
    let realism = blog_tests::Realism::start(&stack.aws_endpoint, &config).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 2, &[], &realism.endpoint);
    api.create(&PostParams::default(), &blog("blog", spec("4s", "1"))).await.expect("create");
    let bd = wait_for_within(&api, "blog", "Ready", Duration::from_secs(120), ready).await;
    let function = names_of(&bd).function;
    set_release(&api, "2").await;
    wait_for(&api, "blog", "version 2 rolling out", |bd| phase_is(bd, "Progressing", "2")).await;
    let feeder = feed(stack, function.clone(), vec![("1", 0.0), ("2", 0.0)]);
    wait_for_within(&api, "blog", "version 2 promoted", Duration::from_secs(120), |bd| {
        phase_is(bd, "Succeeded", "2") && ready(bd)
    })
    .await;
    feeder.abort();
    assert_eq!(alias(&aws, &function).await, ("2".to_owned(), vec![]));
    let versions = aws.lambda.list_versions_by_function().function_name(&function).send().await.expect("versions");
    let numbers: Vec<&str> = versions.versions().iter().filter_map(|v| v.version()).collect();
    assert_eq!(numbers, ["$LATEST", "1", "2"], "one version per configuration");
    let stats = realism.stats();
    let lost = |op: &str| stats["faults"][format!("lost answer {op}")].as_u64().unwrap_or(0);
    println!("answers lost: UpdateAlias {}, PublishVersion {}", lost("UpdateAlias"), lost("PublishVersion"));
    assert!(lost("UpdateAlias") >= 2 && lost("PublishVersion") >= 1, "the faults were played: {stats}");
    operator.kill().await;
}

/// A new version that does not answer the pre-traffic path reaches no reader: rolled back before
/// its first weight; the next one that answers rolls out.
#[tokio::test]
async fn a_version_failing_its_pre_traffic_check_reaches_no_reader() {
    let (stack, _client, ns, api) = setup("pretraffic").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    // The layer plays the invoke: moto runs no function.
    let realism =
        blog_tests::Realism::start(&stack.aws_endpoint, &json!({"seed": crate::chaos::seed()})).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 2, &[], &realism.endpoint);
    let mut spec = spec("10m", "1");
    spec["rollout"]["preTraffic"] = json!({"path": "/readyz"});
    api.create(&PostParams::default(), &blog("blog", spec)).await.expect("create");
    let bd = wait_for(&api, "blog", "Ready", ready).await;
    let function = names_of(&bd).function;

    let moves = operator.aws_calls().await.get("Lambda/UpdateAlias").copied().unwrap_or(0);
    let patch = json!({"spec": {"env": {"RELEASE": "2", "REALISM_INVOKE_STATUS": "503"}}});
    api.patch("blog", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    let refused = wait_for(&api, "blog", "version 2 refused", |bd| phase_is(bd, "RolledBack", "2")).await;
    let message = rollout_of(&refused).map(|r| r.message).unwrap_or_default();
    assert!(message.contains("before any reader reached it: GET /readyz answered 503"), "{message}");
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![]));
    let moved = operator.aws_calls().await.get("Lambda/UpdateAlias").copied().unwrap_or(0);
    assert_eq!(moved, moves, "the alias never weighted version 2");

    let patch = json!({"spec": {"env": {"RELEASE": "3", "REALISM_INVOKE_STATUS": null}}});
    api.patch("blog", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    wait_for(&api, "blog", "version 3 rolling out", |bd| phase_is(bd, "Progressing", "3")).await;
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![("3".to_owned(), 40)]));
    let played = realism.stats()["faults"].clone();
    println!("invokes played: {played}");
    operator.kill().await;
}

/// An alarm the analysis names, in `ALARM`, fails the verdicts however good the figures are.
#[tokio::test]
async fn a_named_alarm_in_alarm_rolls_the_new_version_back() {
    let (stack, _client, ns, api) = setup("alarmed").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let operator = Operator::start(stack, &ns.name, 2).await;
    let alarm = format!("{}-checkout-slo", ns.name);
    let mut spec = spec("1m", "1");
    spec["rollout"]["analysis"]["alarms"] = json!([alarm]);
    api.create(&PostParams::default(), &blog("blog", spec)).await.expect("create");
    let bd = wait_for(&api, "blog", "Ready", ready).await;
    let function = names_of(&bd).function;
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("Team")
        .metric_name("CheckoutErrors")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("alarm");
    cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("checkout failing")
        .send()
        .await
        .expect("alarm state");

    set_release(&api, "2").await;
    wait_for(&api, "blog", "version 2 rolling out", |bd| phase_is(bd, "Progressing", "2")).await;
    let feeder = feed(stack, function.clone(), vec![("1", 0.0), ("2", 0.0)]);
    let rolled_back = wait_for(&api, "blog", "version 2 rolled back", |bd| phase_is(bd, "RolledBack", "2")).await;
    feeder.abort();
    let check = rollout_of(&rolled_back).and_then(|r| r.last_check).expect("verdict");
    assert_eq!((check.verdict.as_str(), check.error_percent), ("Fail", 0.0), "{check:?}");
    assert_eq!(check.reason, format!("alarm {alarm} is in ALARM"));
    assert_eq!(alias(&aws, &function).await, ("1".to_owned(), vec![]));
    operator.kill().await;
}

/// Canary 25 % then all, through ECS's own deployment (played by the realism layer, 2 s a stage),
/// a verdict every 3 s from at least 20 requests on the new revision's target group.
fn container_spec(release: &str) -> serde_json::Value {
    json!({
        "image": "blog-service:1.0.0",
        "container": {"loadBalancer": {"plainHttp": true}},
        "env": {"RELEASE": release},
        "rollout": {
            "strategy": "Canary",
            "canary": {"percent": 25, "bake": "0s"},
            "analysis": {"interval": "3s", "minRequests": 20, "maxErrorPercent": 5, "failureLimit": 2, "maxStepDuration": "5m"}
        }
    })
}

fn container_rollout(bd: &BlogDeployment) -> Option<VariantRollout> {
    bd.status.as_ref()?.rollout.as_ref()?.container.clone()
}

fn container_phase_is(bd: &BlogDeployment, phase: &str, revision: &str) -> bool {
    container_rollout(bd)
        .is_some_and(|r| r.phase == phase && r.canary.as_deref().is_some_and(|c| c.ends_with(revision)))
}

/// The production rule's weights by target group ARN, as ECS (here the realism layer) set them.
async fn production_weights(aws: &Aws, balancer: &str) -> Vec<(String, i32)> {
    let listeners = aws.elb.describe_listeners().load_balancer_arn(balancer).send().await.expect("listeners");
    let listener = listeners.listeners().iter().find(|l| l.port() == Some(80)).expect("the HTTP listener");
    let rules = aws.elb.describe_rules().listener_arn(listener.listener_arn().unwrap_or_default()).send().await;
    let rules = rules.expect("rules");
    let rule = rules.rules().iter().find(|r| r.priority() == Some("50000")).expect("the production rule");
    let forward = rule.actions().iter().filter_map(|a| a.forward_config()).flat_map(|f| f.target_groups());
    forward.map(|t| (t.target_group_arn().unwrap_or_default().to_owned(), t.weight().unwrap_or(0))).collect()
}

/// Writes, every second until aborted, what the load balancer would publish for each
/// `(target group ARN, 5xx)`: 30 requests, `errors` of them 5xx, 40 ms.
fn feed_targets(stack: &'static Stack, balancer: String, groups: Vec<(String, f64)>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
        let balancer = balancer.split_once("loadbalancer/").map(|(_, tail)| tail.to_owned()).unwrap_or_default();
        loop {
            for (group, errors) in &groups {
                let group = group.rsplit_once(':').map_or(group.as_str(), |(_, tail)| tail);
                let dims = [("LoadBalancer", balancer.as_str()), ("TargetGroup", group)];
                put_metrics(&cloudwatch, "AWS/ApplicationELB", "RequestCount", &dims, &[30.0]).await;
                put_metrics(&cloudwatch, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", &dims, &[*errors]).await;
                put_metrics(&cloudwatch, "AWS/ApplicationELB", "TargetResponseTime", &dims, &[0.04]).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

#[tokio::test]
async fn a_container_revision_rolls_out_through_ecs_canary_and_a_bad_one_is_rolled_back() {
    let (stack, client, ns, api) = setup("ecs-canary").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    // The layer plays ECS's service deployments: moto keeps no strategy and has no hooks.
    let config = json!({"seed": crate::chaos::seed(), "ecs_step": 2});
    let realism = blog_tests::Realism::start(&stack.aws_endpoint, &config).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 2, &[], &realism.endpoint);
    api.create(&PostParams::default(), &blog("blog", container_spec("1"))).await.expect("create");
    let bd = wait_for_within(&api, "blog", "Ready", Duration::from_secs(120), ready).await;
    let names = names_of(&bd);
    let resources = bd.status.as_ref().map(|s| s.resources.clone()).unwrap_or_default();
    let balancer = resources.load_balancer_arn.clone().expect("load balancer");
    let blue = resources.target_group_arn.clone().expect("target group");
    let found =
        aws.elb.describe_target_groups().names(&names.alternate_target_group).send().await.expect("second group");
    let green = found.target_groups()[0].target_group_arn().unwrap_or_default().to_owned();
    assert_eq!(production_weights(&aws, &balancer).await, vec![(blue.clone(), 1), (green.clone(), 0)]);
    aws.iam.get_role().role_name(&names.infrastructure_role).send().await.expect("the ECS infrastructure role");
    assert_eq!(container_rollout(&bd), None, "the first revision goes out at once");

    // Revision 2 is good: no 5xx, as the stable one.
    set_release(&api, "2").await;
    let started =
        wait_for(&api, "blog", "revision 2 rolling out", |bd| container_phase_is(bd, "Progressing", ":2")).await;
    assert_eq!(reason_of(&started, "ContainerReady").0, "RollingOut");
    let record = container_rollout(&started).expect("record");
    assert_eq!(
        (record.stable_target.as_deref(), record.canary_target.as_deref()),
        (Some(blue.as_str()), Some(green.as_str()))
    );
    let feeder = feed_targets(stack, balancer.clone(), vec![(blue.clone(), 0.0), (green.clone(), 0.0)]);
    let promoted = wait_for_within(&api, "blog", "revision 2 promoted", Duration::from_secs(120), |bd| {
        eprintln!("container rollout: {:?}", container_rollout(bd).map(|r| (r.phase, r.weight, r.step, r.message)));
        container_phase_is(bd, "Succeeded", ":2")
    })
    .await;
    feeder.abort();
    let check = container_rollout(&promoted).and_then(|r| r.last_check).expect("a verdict");
    eprintln!("last verdict of revision 2: {check:?}");
    assert_eq!((check.verdict.as_str(), check.error_percent), ("Pass", 0.0));
    assert_eq!(production_weights(&aws, &balancer).await, vec![(blue.clone(), 0), (green.clone(), 100)]);
    let notes: Vec<String> = event_notes(&client, &ns.name, "blog")
        .await
        .into_iter()
        .filter(|(r, _)| r.starts_with("Rollout"))
        .map(|(_, n)| n)
        .collect();
    eprintln!("events of revision 2: {notes:#?}");
    assert!(notes.iter().any(|n| n.ends_with(":2 at 25 % (step 1/2)")), "{notes:?}");
    assert!(notes.iter().any(|n| n.ends_with(":2 at 100 % (step 2/2)")), "{notes:?}");
    wait_for(&api, "blog", "Ready on revision 2", ready).await;
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "a promoted rollout's resyncs mutated AWS: {mutated:?}");

    // Revision 3 fails a third of its requests in the group the new tasks join (the first one now).
    set_release(&api, "3").await;
    let started =
        wait_for(&api, "blog", "revision 3 rolling out", |bd| container_phase_is(bd, "Progressing", ":3")).await;
    assert_eq!(container_rollout(&started).and_then(|r| r.canary_target), Some(blue.clone()));
    let feeder = feed_targets(stack, balancer.clone(), vec![(green.clone(), 0.0), (blue.clone(), 10.0)]);
    let rolled_back = wait_for_within(&api, "blog", "revision 3 rolled back", Duration::from_secs(90), |bd| {
        container_phase_is(bd, "RolledBack", ":3")
    })
    .await;
    feeder.abort();
    let record = container_rollout(&rolled_back).expect("record");
    eprintln!("rolled back: {record:?}");
    assert!(record.last_check.as_ref().is_some_and(|c| c.verdict == "Fail" && c.error_percent > 5.0), "{record:?}");
    let (reason, message) = reason_of(&rolled_back, "ContainerReady");
    assert_eq!(reason, "RolledBack", "{message}");
    assert_eq!(
        production_weights(&aws, &balancer).await,
        vec![(green.clone(), 100), (blue.clone(), 0)],
        "no reader reaches revision 3"
    );
    let service =
        aws.ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await.expect("service");
    let task_definition = service.services()[0].task_definition().unwrap_or_default().to_owned();
    assert!(task_definition.ends_with(":2"), "the service runs revision 2 again: {task_definition}");
    let warning = event_notes(&client, &ns.name, "blog").await.into_iter().find(|(r, _)| r == "RolledBack");
    eprintln!("{warning:?}");
    assert!(warning.is_some_and(|(_, note)| note.contains(":3 rolled back to") && note.contains("failed verdicts")));
    // Held: resyncs neither retry revision 3 nor change anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "a settled rollback's resyncs mutated AWS: {mutated:?}");
    let calls = operator.aws_calls().await;
    let ecs: Vec<_> = calls.iter().filter(|(op, _)| op.starts_with("ECS/") || op.starts_with("Elastic")).collect();
    eprintln!("ECS and ELB calls over both rollouts: {ecs:?}");
    println!("played: {}", realism.stats()["faults"]);
    operator.kill().await;
}

#[tokio::test]
async fn a_container_rollout_resumes_after_a_restart_starts_over_on_a_new_spec_and_obeys_annotations() {
    let (stack, client, ns, api) = setup("ecs-ctl").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let config = json!({"seed": crate::chaos::seed(), "ecs_step": 2});
    let realism = blog_tests::Realism::start(&stack.aws_endpoint, &config).expect("realism layer");
    let operator = Operator::start_behind(stack, &ns.name, 2, &[], &realism.endpoint);
    api.create(&PostParams::default(), &blog("blog", container_spec("1"))).await.expect("create");
    let bd = wait_for_within(&api, "blog", "Ready", Duration::from_secs(120), ready).await;
    let balancer = bd.status.as_ref().and_then(|s| s.resources.load_balancer_arn.clone()).expect("load balancer");
    let at_step_one = |revision: &'static str| {
        move |bd: &BlogDeployment| {
            container_phase_is(bd, "Progressing", revision) && container_rollout(bd).is_some_and(|r| r.step == 1)
        }
    };

    // No metrics: revision 2 waits at 25 % for a verdict. A restarted operator picks it up there.
    set_release(&api, "2").await;
    let before = wait_for(&api, "blog", "revision 2 at 25 %", at_step_one(":2")).await;
    let started = container_rollout(&before).and_then(|r| r.step_started);
    operator.kill().await;
    let operator = Operator::start_behind(stack, &ns.name, 2, &[], &realism.endpoint);
    let resumed = operator.reconciles().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while operator.reconciles().await < resumed + 3 {
        assert!(Instant::now() < deadline, "the restarted operator did not reconcile");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let record = container_rollout(&api.get("blog").await.expect("get")).expect("record");
    assert_eq!((record.step, record.weight, record.step_started), (1, 25, started));
    let said = ["RolloutStarted", "RolloutResumed"];
    let starts = event_notes(&client, &ns.name, "blog").await.into_iter().filter(|(r, _)| said.contains(&r.as_str()));
    assert_eq!(starts.count(), 1, "the restart did not start the rollout again");

    // A new spec mid-rollout: ECS rolls revision 2 back first, then revision 3 starts over.
    set_release(&api, "3").await;
    wait_for(&api, "blog", "revision 3 at 25 %", at_step_one(":3")).await;
    let notes = event_notes(&client, &ns.name, "blog").await;
    let superseded = notes.iter().find(|(r, n)| r == "RolledBack" && n.contains(":2 rolled back"));
    assert!(superseded.is_some_and(|(_, n)| n.contains("a new spec arrived")), "{notes:?}");
    let stable = container_rollout(&api.get("blog").await.expect("get")).and_then(|r| r.stable);
    assert!(stable.is_some_and(|s| s.ends_with(":1")), "revision 3 starts from the stable revision 1");

    // abort: ECS rolls back, every reader on the stable group, the annotation cleared.
    annotate(&api, "abort").await;
    let aborted = wait_for(&api, "blog", "revision 3 aborted", |bd| container_phase_is(bd, "RolledBack", ":3")).await;
    assert!(container_rollout(&aborted).is_some_and(|r| r.message.contains("aborted by annotation")));
    wait_for(&api, "blog", "the abort annotation cleared", |bd| !bd.annotations().contains_key(ANNOTATION)).await;
    let weights = production_weights(&aws, &balancer).await;
    assert!(weights.iter().all(|(_, w)| *w == 0 || *w == 100) && weights.iter().any(|(_, w)| *w == 0), "{weights:?}");

    // pause holds revision 4 at its hook; promote answers every hook without a verdict.
    set_release(&api, "4").await;
    wait_for(&api, "blog", "revision 4 at 25 %", at_step_one(":4")).await;
    annotate(&api, "pause").await;
    let paused = wait_for(&api, "blog", "revision 4 paused", |bd| container_phase_is(bd, "Paused", ":4")).await;
    assert_eq!(reason_of(&paused, "ContainerReady").0, "RolloutPaused");
    annotate(&api, "promote").await;
    wait_for_within(&api, "blog", "revision 4 promoted", Duration::from_secs(60), |bd| {
        container_phase_is(bd, "Succeeded", ":4") && ready(bd)
    })
    .await;
    wait_for(&api, "blog", "the promote annotation cleared", |bd| !bd.annotations().contains_key(ANNOTATION)).await;
    operator.kill().await;
}
