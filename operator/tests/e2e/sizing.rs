//! Right-sizing from metrics and autoscaling, created, updated and removed with the spec.

use crate::support::*;

/// Writes datapoints (now) into the emulator's CloudWatch.
pub(crate) async fn put_metrics(
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
        "container": {"loadBalancer": {"plainHttp": true}, "cpu": 1024, "memoryMiB": 2048, "desiredCount": 3},
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
    // moto answers a percentile with the maximum (60, 50); fakecloud computes it from the values, as
    // CloudWatch does for raw data points (58.5 and 48 here). Either way: above the median, at most
    // the maximum.
    let p95 = (allocation.function_p95_ms.unwrap_or(0.0), allocation.container_p95_ms.unwrap_or(0.0));
    assert!(p95.0 > 50.0 && p95.0 <= 60.0 && p95.1 > 30.0 && p95.1 <= 50.0, "p95s {p95:?}");
    assert_eq!((allocation.function_errors, allocation.function_throttles), (Some(0), Some(0)));
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
    dashboard_reads_the_live_metrics(&operator, &ns.name, &names.function, balancer).await;
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
    let mutated = mutations_over_resyncs(&operator, 2).await;
    assert!(mutated.is_empty(), "Auto flapped: {mutated:?}");
    let after = operator.aws_calls().await;
    let reads = after.get("CloudWatch/GetMetricData").copied().unwrap_or(0);
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
    let spec = json!({"image": "blog:1", "container": {"loadBalancer": {"plainHttp": true}, "desiredCount": 2, "autoscaling": scaling}, "allocation": {"mode": "Manual"}});
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
    let mutated = mutations_over_resyncs(&operator, 2).await;
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

/// The chart's Grafana dashboard asks the running operator's `/metrics` only for metrics and labels
/// it exports. A family with no series yet is not in the exposition at all (no reconcile failed, no
/// `spec.placement` here): those are held against the registry's own declaration of them. And the
/// series the CloudWatch panels take their dimensions from names this BlogDeployment's function and
/// load balancer.
async fn dashboard_reads_the_live_metrics(operator: &Operator, namespace: &str, function: &str, balancer: &str) {
    let live = http_get(&format!("{}/metrics", operator.metrics)).await;
    let declared = blog_operator::reference::metric_families(&blog_operator::metrics::Metrics::sample().render());
    let live_families = blog_operator::reference::metric_families(&live);
    for expected in ["blog_operator_reconciles_total", "blog_operator_aws_calls_total", "blog_operator_allocation"] {
        assert!(live_families.iter().any(|f| f.sample_name == expected), "{expected} is not live: {live}");
    }
    let mut families = std::collections::BTreeMap::new();
    for family in declared.into_iter().filter(|d| !live_families.iter().any(|l| l.sample_name == d.sample_name)) {
        families.insert(family.sample_name, family.labels);
    }
    for family in live_families {
        families.insert(family.sample_name, family.labels);
    }
    let problems = blog_tests::dashboard::unknown_prometheus_names(&blog_tests::dashboard::shipped(), &families);
    assert!(problems.is_empty(), "the dashboard asks for what /metrics does not have: {problems:#?}");
    let info = live
        .lines()
        .find(|l| l.starts_with("blog_operator_deployment_info{") && l.contains(&format!("namespace=\"{namespace}\"")))
        .unwrap_or_else(|| panic!("no deployment_info for {namespace} in {live}"));
    for expected in [format!("function_name=\"{function}\""), format!("load_balancer=\"{balancer}\"")] {
        assert!(info.contains(&expected), "{expected} not in {info}");
    }
    assert!(live.contains(&format!("blog_operator_monthly_cost_usd{{namespace=\"{namespace}\"")), "{live}");
}

/// The schedules and time zones of `fixtures/aws-formats.yaml`, which AWS refuses.
fn refused_schedules() -> Vec<(String, String, Option<String>)> {
    let path = blog_tests::workspace_root().join("operator/tests/fixtures/aws-formats.yaml");
    let corpus: Vec<serde_json::Value> =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("corpus")).expect("YAML");
    corpus
        .iter()
        .filter_map(|case| {
            let action = case["spec"]["container"]["autoscaling"]["scheduled"].get(0)?;
            let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            Some((text(&case["name"])?, text(&action["schedule"])?, text(&action["timezone"])))
        })
        .collect()
}

/// Why the operator checks schedules itself: moto stores every one of the corpus's schedules and
/// time zones that AWS refuses, so a test against the emulator alone would pass with them.
#[tokio::test]
async fn the_emulator_stores_schedules_aws_refuses() {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ScalableTargetAction, ServiceNamespace};
    let stack = Stack::shared();
    let autoscaling = aws_sdk_applicationautoscaling::Client::new(&stack.sdk_config().await);
    let cases = refused_schedules();
    assert!(cases.len() >= 8, "{cases:?}");
    let mut stored = Vec::new();
    for (name, schedule, timezone) in &cases {
        let put = autoscaling
            .put_scheduled_action()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id("service/format-probe/format-probe")
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .scheduled_action_name(format!("probe-{name}"))
            .schedule(schedule)
            .set_timezone(timezone.clone())
            .scalable_target_action(ScalableTargetAction::builder().min_capacity(1).max_capacity(2).build())
            .send()
            .await;
        if put.is_ok() {
            stored.push(format!("{schedule} {}", timezone.as_deref().unwrap_or("")));
        }
    }
    println!("{} stored {} of {} schedules AWS refuses: {stored:#?}", stack.emulator, stored.len(), cases.len());
    if stack.emulator == "moto" {
        assert_eq!(stored.len(), cases.len(), "moto now refuses some: the corpus's note on it is out of date");
    }
}
