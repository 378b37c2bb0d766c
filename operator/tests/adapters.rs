//! The cloud adapter against the AWS emulator, one tier below the end-to-end tests: every `ensure_*`
//! run twice makes its resource once and the second run changes nothing; every `delete_*` on
//! nothing is done; a name another BlogDeployment holds is refused, and never deleted.

use std::collections::BTreeMap;

use blog_operator::cloud::ec2::{IngressRule, Source};
use blog_operator::cloud::{self, AwsClients, Cloud, ErrorKind};
use blog_operator::desired::{self, Desired, Inputs, Owner};
use blog_operator::metrics::Metrics;

/// Clients on the emulator, counting their calls, and the desired state of a fresh owner.
async fn setup(prefix: &str) -> (AwsClients, Metrics, Desired) {
    let metrics = Metrics::default();
    let config = blog_tests::Moto::shared().sdk_config().await;
    let cloud = Cloud::from_config(config, metrics.clone()).expect("clients");
    let name = blog_tests::unique_name(prefix);
    let uid = name.rsplit('-').next().expect("hex id").to_owned();
    let owner = Owner { namespace: "adapters".into(), name, uid };
    let spec = serde_json::from_value(
        serde_json::json!({"image": "blog:1", "function": {}, "container": {"loadBalancer": {"plainHttp": true}}}),
    )
    .expect("spec");
    let desired = desired::desired(&owner, &spec, &Inputs::region("us-west-1"));
    (cloud.clients("us-west-1"), metrics, desired)
}

/// AWS calls that may change something, summed over `/metrics`' counters.
fn mutating_calls(metrics: &Metrics) -> u64 {
    let reads = ["Describe", "Get", "List"];
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("blog_operator_aws_calls_total{"))
        .filter(|l| {
            let operation = l.split("operation=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("");
            !reads.iter().any(|r| operation.starts_with(r))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Calls of one operation so far.
fn calls_of(metrics: &Metrics, operation: &str) -> u64 {
    let wanted = format!("operation=\"{operation}\"");
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("blog_operator_aws_calls_total{") && l.contains(&wanted))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// One round of every `ensure_*` the variants use, in apply's order; returns what each reported.
/// `known_api` is the API id a status would have recorded.
async fn ensure_all(clients: &AwsClients, d: &Desired, known_api: Option<&str>) -> Vec<String> {
    let (owner, names, tags) = (&d.owner, &d.names, &d.tags);
    let table = cloud::dynamodb::ensure_table(clients, owner, &d.table, tags).await.expect("table");
    let secret = &names.write_token_secret;
    let token = cloud::secrets::ensure_write_token(clients, owner, secret, "t0ken", tags).await.expect("token");
    let scope = blog_operator::aws::Scope::of_arn(&table.arn).expect("scope");
    let roles = d.roles(&scope, &table.arn);
    let log_group =
        cloud::logs::ensure_log_group(clients, owner, &names.function_log_group, 14, tags).await.expect("logs");
    let role = roles.function.as_ref().expect("function role");
    let role_arn = cloud::iam::ensure_role(clients, owner, role, tags).await.expect("role");
    let function = d.function.as_ref().expect("function");
    let lambda = cloud::lambda::ensure_function(clients, owner, function, &role_arn, tags).await.expect("function");
    let known = known_api.map_or(cloud::apigateway::Known::Unknown, cloud::apigateway::Known::Id);
    let settings = (tags, blog_operator::crd::ThrottleSpec::default());
    let api = cloud::apigateway::ensure_api(clients, owner, (&names.api, known), &lambda.arn, settings);
    let api = api.await.expect("api");
    let cluster = cloud::ecs::ensure_cluster(clients, owner, &names.cluster, false, tags).await.expect("cluster");
    let vpc = cloud::ec2::default_vpc(clients).await.expect("vpcs").expect("a default VPC");
    let anywhere = [IngressRule { port: 80, source: Source::Cidr("0.0.0.0/0".into()) }];
    let group = cloud::ec2::ensure_security_group(clients, owner, &vpc, &names.lb_security_group, &anywhere, tags)
        .await
        .expect("security group");
    let target_group =
        cloud::elb::ensure_target_group(clients, (owner, None), &names.target_group, &vpc, "/healthz", tags)
            .await
            .expect("target group");
    vec![
        table.arn,
        token.secret_arn,
        token.version,
        log_group,
        role_arn,
        lambda.arn,
        api.id,
        cluster,
        group,
        target_group,
    ]
}

#[tokio::test]
async fn every_ensure_makes_its_resource_once_and_then_changes_nothing() {
    let (clients, metrics, desired) = setup("twice").await;
    let first = ensure_all(&clients, &desired, None).await;
    // Not in the listings, never seen: made without a look of their own first.
    let looks = ["GetRole", "GetRolePolicy", "DescribeTable", "GetFunction", "DescribeSecret"];
    let looked: Vec<(&str, u64)> = looks.iter().map(|op| (*op, calls_of(&metrics, op))).collect();
    assert!(looked.iter().all(|(_, n)| *n == 0), "a new owner's resources were looked up first: {looked:?}");
    let after_first = mutating_calls(&metrics);
    assert!(after_first >= 8, "the first round creates each resource ({after_first} mutating calls)");
    let second = ensure_all(&clients, &desired, None).await;
    assert_eq!(second, first, "the same resources are found again");
    assert_eq!(mutating_calls(&metrics), after_first, "the second round changed something:\n{}", metrics.render());
    // The HTTP API admits what the spec's throttle says (the default: 100 a second, 200 at once).
    let stages = clients.apigateway.get_stages().api_id(&first[6]).send().await.expect("stages");
    let settings = stages.items().first().and_then(|s| s.default_route_settings()).expect("route settings");
    assert_eq!((settings.throttling_rate_limit(), settings.throttling_burst_limit()), (Some(100.0), Some(200)));
    // With the API's id recorded, it is found by its id in the region's listing, taken once a
    // period for every object (one page here), not searched for by name each time.
    let searches = calls_of(&metrics, "GetApis");
    let third = ensure_all(&clients, &desired, Some(&first[6])).await;
    assert_eq!((third, calls_of(&metrics, "GetApis")), (first.clone(), searches + 1), "one listing");
    let fourth = ensure_all(&clients, &desired, Some(&first[6])).await;
    assert_eq!((fourth, calls_of(&metrics, "GetApis")), (first.clone(), searches + 1), "the listing is reused");
    // A recorded id that is gone (deleted behind the operator's back) falls back to the search.
    let stale = ensure_all(&clients, &desired, Some("gone0000")).await;
    assert_eq!(stale, first);
    blog_operator::apply::cleanup(
        &clients,
        &desired.owner,
        &blog_operator::desired::Names::for_owner(&desired.owner),
        (Some((&desired.table.name, blog_operator::crd::DeletionPolicy::Delete)), &[]),
        &Default::default(),
    )
    .await
    .expect("cleanup");
}

#[tokio::test]
async fn every_delete_on_nothing_is_done() {
    let (clients, _metrics, d) = setup("nothing").await;
    let (owner, names) = (&d.owner, &d.names);
    cloud::apigateway::delete_api(&clients, owner, &names.api).await.expect("api");
    cloud::lambda::delete_function(&clients, owner, &names.function).await.expect("function");
    cloud::logs::delete_log_group(&clients, owner, &names.function_log_group).await.expect("log group");
    cloud::iam::delete_role(&clients, owner, &names.function_role).await.expect("role");
    cloud::autoscaling::remove_scaling(&clients, &names.cluster, &names.service).await.expect("scaling");
    cloud::ecs::delete_service(&clients, owner, &names.cluster, &names.service).await.expect("service");
    cloud::elb::delete_load_balancers(&clients, owner, &names.load_balancer).await.expect("load balancers");
    cloud::elb::delete_target_group(&clients, owner, &names.target_group).await.expect("target group");
    cloud::ecs::deregister_task_definitions(&clients, &names.task_family).await.expect("task definitions");
    cloud::ecs::delete_cluster(&clients, owner, &names.cluster).await.expect("cluster");
    let vpcs = cloud::ec2::owned_group_vpcs(&clients, owner, &names.lb_security_group).await.expect("groups");
    assert!(vpcs.is_empty());
    cloud::dynamodb::delete_table(&clients, owner, &names.table).await.expect("table");
    cloud::secrets::delete_write_token(&clients, owner, &names.write_token_secret).await.expect("token secret");
    cloud::wafv2::delete_web_acl(&clients, owner, &names.load_balancer, async { Ok(Vec::new()) })
        .await
        .expect("web ACL");
    // And the whole cleanup, which walks them all in dependency order.
    blog_operator::apply::cleanup(
        &clients,
        owner,
        &blog_operator::desired::Names::for_owner(owner),
        (Some((&names.table, blog_operator::crd::DeletionPolicy::Delete)), &[]),
        &Default::default(),
    )
    .await
    .expect("cleanup");
}

#[tokio::test]
async fn a_name_another_owner_holds_is_refused_and_kept() {
    let (clients, _metrics, d) = setup("held").await;
    let table = cloud::dynamodb::ensure_table(&clients, &d.owner, &d.table, &d.tags).await.expect("table");
    let scope = blog_operator::aws::Scope::of_arn(&table.arn).expect("scope");
    let role = d.roles(&scope, &table.arn).function.expect("function role");
    cloud::iam::ensure_role(&clients, &d.owner, &role, &d.tags).await.expect("role");
    cloud::ecs::ensure_cluster(&clients, &d.owner, &d.names.cluster, false, &d.tags).await.expect("cluster");
    let group = &d.names.function_log_group;
    cloud::logs::ensure_log_group(&clients, &d.owner, group, 14, &d.tags).await.expect("log group");

    let other = Owner { uid: "ffffffff".into(), ..d.owner.clone() };
    let tags: BTreeMap<String, String> = other.tags();
    let refused = cloud::iam::ensure_role(&clients, &other, &role, &tags).await.expect_err("someone else's role");
    assert_eq!(refused.kind, ErrorKind::Invalid);
    assert!(refused.message.contains("is not tagged as this BlogDeployment's"), "{refused}");
    let refused =
        cloud::ecs::ensure_cluster(&clients, &other, &d.names.cluster, false, &tags).await.expect_err("cluster");
    assert_eq!(refused.kind, ErrorKind::Invalid);
    let refused = cloud::dynamodb::ensure_table(&clients, &other, &d.table, &tags).await.expect_err("table");
    assert_eq!(refused.kind, ErrorKind::Invalid);
    let refused = cloud::logs::ensure_log_group(&clients, &other, group, 3, &tags).await.expect_err("log group");
    assert!(refused.is_not_owned(), "{refused}");

    // The other owner's deletes, aimed at these names, leave them alone.
    cloud::iam::delete_role(&clients, &other, &d.names.function_role).await.expect("skipped");
    cloud::ecs::delete_cluster(&clients, &other, &d.names.cluster).await.expect("skipped");
    cloud::dynamodb::delete_table(&clients, &other, &d.names.table).await.expect("skipped");
    cloud::logs::delete_log_group(&clients, &other, group).await.expect("skipped");
    cloud::logs::ensure_log_group(&clients, &d.owner, group, 14, &d.tags).await.expect("the log group is still ours");
    cloud::ecs::ensure_cluster(&clients, &d.owner, &d.names.cluster, false, &d.tags)
        .await
        .expect("the cluster is still ours");
    cloud::iam::ensure_role(&clients, &d.owner, &role, &d.tags).await.expect("the role is still ours");
    let still = cloud::dynamodb::ensure_table(&clients, &d.owner, &d.table, &d.tags).await.expect("table kept");
    assert_eq!(still.arn, table.arn);
    blog_operator::apply::cleanup(
        &clients,
        &d.owner,
        &blog_operator::desired::Names::for_owner(&d.owner),
        (Some((&d.table.name, blog_operator::crd::DeletionPolicy::Delete)), &[]),
        &Default::default(),
    )
    .await
    .expect("cleanup");
}

/// A health-check id is only a hint (a status may name any check of the account): another owner's
/// check is neither taken over nor deleted through it.
#[tokio::test]
async fn a_health_check_id_of_another_owner_is_neither_used_nor_deleted() {
    let (clients, _metrics, d) = setup("checks").await;
    let probe = cloud::route53::Probe { fqdn: format!("{}.example.com", d.owner.uid), path: "/healthz".into() };
    let theirs = cloud::route53::ensure_health_check(&clients, &d.owner, None, &probe, "theirs").await.expect("check");
    let other = Owner { uid: "ffffffff".into(), ..d.owner.clone() };

    let mine = cloud::route53::ensure_health_check(&clients, &other, Some(&theirs), &probe, "mine").await.expect("own");
    assert_ne!(mine, theirs, "a recorded id that is not this owner's is not used");
    cloud::route53::delete_health_checks(&clients, &other, std::slice::from_ref(&theirs)).await.expect("left alone");
    let kept = clients.route53.get_health_check().health_check_id(&theirs).send().await;
    assert!(kept.is_ok(), "another owner's check is not deleted: {kept:?}");

    cloud::route53::delete_health_checks(&clients, &other, std::slice::from_ref(&mine)).await.expect("own deleted");
    cloud::route53::delete_health_checks(&clients, &d.owner, std::slice::from_ref(&theirs))
        .await
        .expect("deleted by its owner");
    for id in [&mine, &theirs] {
        let gone = clients.route53.get_health_check().health_check_id(id).send().await;
        assert!(gone.is_err(), "{id} is deleted by its owner");
    }
    cloud::route53::delete_health_checks(&clients, &d.owner, std::slice::from_ref(&theirs))
        .await
        .expect("a check already gone is done");
}

#[tokio::test]
async fn the_web_acl_is_made_once_then_changed_only_when_its_rules_differ_and_refused_to_another_owner() {
    let (clients, metrics, d) = setup("waf").await;
    let balancer = format!(
        "arn:aws:elasticloadbalancing:us-west-1:123456789012:loadbalancer/app/{}/50dc6c495c0c9188",
        d.names.load_balancer
    );
    let target = (d.names.load_balancer.as_str(), balancer.as_str());
    let spec = blog_operator::crd::WafSpec { rate_limit: 500, managed_rule_groups: vec![] };
    let first = cloud::wafv2::ensure_web_acl(&clients, &d.owner, target, &spec, &d.tags).await.expect("web ACL");
    let after_first = mutating_calls(&metrics);
    let second = cloud::wafv2::ensure_web_acl(&clients, &d.owner, target, &spec, &d.tags).await.expect("again");
    assert_eq!((second.as_str(), mutating_calls(&metrics)), (first.as_str(), after_first), "found, nothing changed");
    let changed = blog_operator::crd::WafSpec { rate_limit: 900, ..spec.clone() };
    cloud::wafv2::ensure_web_acl(&clients, &d.owner, target, &changed, &d.tags).await.expect("changed");
    assert_eq!(calls_of(&metrics, "UpdateWebACL"), 1, "one update for the new limit");
    let other = Owner { uid: "ffffffff-0000-4000-8000-000000000000".into(), ..d.owner.clone() };
    let refused = cloud::wafv2::ensure_web_acl(&clients, &other, target, &spec, &d.tags).await.expect_err("not theirs");
    assert!(refused.is_not_owned(), "{refused}");
    cloud::wafv2::delete_web_acl(&clients, &other, &d.names.load_balancer, async { Ok(vec![balancer.clone()]) })
        .await
        .expect("kept");
    assert_eq!(calls_of(&metrics, "DeleteWebACL"), 0, "another owner's delete leaves it");
    cloud::wafv2::delete_web_acl(&clients, &d.owner, &d.names.load_balancer, async { Ok(vec![balancer]) })
        .await
        .expect("deleted");
    assert_eq!(calls_of(&metrics, "DeleteWebACL"), 1);
}

#[tokio::test]
async fn many_objects_metrics_are_read_19_to_a_request_and_each_gets_its_own_values() {
    let (clients, metrics, d) = setup("gather").await;
    let namespace = format!("Blog/Gather/{}", d.owner.uid);
    let metric = |i: usize| format!("M{i}");
    for i in 0..40 {
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder().metric_name(metric(i)).value(i as f64).build();
        clients.cloudwatch.put_metric_data().namespace(&namespace).metric_data(datum).send().await.expect("put");
    }
    // The emulator leaves out a datapoint of the second a read ends in.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // 40 objects of 5 metrics (15 queries each): 33 fill a request of 500, 7 go in a second. (No
    // p95: moto fails to answer a percentile of data put without one.)
    let names: Vec<String> = (0..40).map(metric).collect();
    let many: Vec<Vec<cloud::cloudwatch::MetricRead<'_>>> = names
        .iter()
        .map(|name| {
            let read = cloud::cloudwatch::MetricRead {
                namespace: &namespace,
                metric: name,
                dimensions: &[],
                percentile: false,
            };
            let other = cloud::cloudwatch::MetricRead { metric: "None", ..read };
            vec![read, other, other, other, other]
        })
        .collect();
    let window = std::time::Duration::from_secs(600);
    let read = cloud::cloudwatch::summaries_of_many(&clients, &many, window).await.expect("read");
    assert_eq!(calls_of(&metrics, "GetMetricData"), 2, "40 objects in two requests");
    assert_eq!(read.len(), 40);
    for (i, summaries) in read.iter().enumerate() {
        assert_eq!(summaries[0].map(|s| s.sum), Some(i as f64), "object {i} got its own metric's values");
        assert!(summaries[1..].iter().all(Option::is_none), "no data for the others");
    }
}
