//! HTTPS on the user's own domain, end to end behind the realism layer (which issues a certificate
//! only once its validation records are in the zone, and refuses an unissued one as AWS does): the
//! certificate, the custom domain and its mapping, the listeners, the records and their markers,
//! the observability switches and cost tags; then the domain removed, leaving what was there before.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use blog_tests::Realism;

use super::support::*;

struct Dns {
    route53: aws_sdk_route53::Client,
    acm: aws_sdk_acm::Client,
}

impl Dns {
    async fn new(stack: &Stack) -> Self {
        let config = stack.sdk_config().await;
        Self { route53: aws_sdk_route53::Client::new(&config), acm: aws_sdk_acm::Client::new(&config) }
    }

    /// A public zone of this name, with a record someone else wrote in it.
    async fn zone_with_records(&self, zone: &str, theirs: &[(&str, &str, &str)]) -> String {
        let created = self
            .route53
            .create_hosted_zone()
            .name(zone)
            .caller_reference(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .expect("hosted zone");
        let id = created.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_owned();
        for (name, kind, value) in theirs {
            let record = ResourceRecordSet::builder()
                .name(*name)
                .r#type(RrType::from(*kind))
                .ttl(60)
                .resource_records(ResourceRecord::builder().value(*value).build().expect("record"))
                .build()
                .expect("record set");
            let change =
                Change::builder().action(ChangeAction::Create).resource_record_set(record).build().expect("change");
            let batch = ChangeBatch::builder().changes(change).build().expect("batch");
            self.route53
                .change_resource_record_sets()
                .hosted_zone_id(&id)
                .change_batch(batch)
                .send()
                .await
                .expect("write");
        }
        id
    }

    /// Every record in the zone as `(name, type, target)`: the alias target or the values.
    async fn records(&self, zone_id: &str) -> Vec<(String, String, String)> {
        let out = self.route53.list_resource_record_sets().hosted_zone_id(zone_id).send().await.expect("records");
        out.resource_record_sets()
            .iter()
            .filter(|r| !matches!(r.r#type(), RrType::Ns | RrType::Soa))
            .map(|r| {
                let target = r.alias_target().map_or_else(
                    || r.resource_records().iter().map(|v| v.value().to_owned()).collect::<Vec<_>>().join(" "),
                    |a| a.dns_name().trim_end_matches('.').to_owned(),
                );
                (r.name().trim_end_matches('.').to_owned(), r.r#type().as_str().to_owned(), target)
            })
            .collect()
    }

    async fn certificate_exists(&self, arn: &str) -> bool {
        self.acm.describe_certificate().certificate_arn(arn).send().await.is_ok()
    }
}

fn resources(bd: &BlogDeployment) -> blog_operator::crd::ResourceIds {
    bd.status.as_ref().map(|s| s.resources.clone()).unwrap_or_default()
}

/// The listeners of a load balancer: `(port, protocol, action, certificate)`.
async fn listeners(aws: &Aws, arn: &str) -> Vec<(i32, String, String, String)> {
    let found = aws.elb.describe_listeners().load_balancer_arn(arn).send().await.expect("listeners");
    let mut all: Vec<_> = found
        .listeners()
        .iter()
        .map(|l| {
            let action = l.default_actions().first().and_then(|a| a.r#type()).map_or("", |t| t.as_str()).to_owned();
            let certificate = l.certificates().first().and_then(|c| c.certificate_arn()).unwrap_or_default().to_owned();
            (l.port().unwrap_or_default(), l.protocol().map_or("", |p| p.as_str()).to_owned(), action, certificate)
        })
        .collect();
    all.sort();
    all
}

/// The mutating calls the operator made between two snapshots of its counters.
fn mutations(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    after
        .iter()
        .filter(|(op, n)| is_mutating(op) && before.get(*op) != Some(n))
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .collect()
}

#[tokio::test]
async fn a_domain_gives_both_variants_https_and_removing_it_leaves_only_what_was_there() {
    let (stack, _client, ns, api) = setup("domain").await;
    let _logs = stack.logs_on_failure();
    let (aws, dns) = (Aws::new(stack).await, Dns::new(stack).await);
    let zone = format!("{}.example.com", ns.name);
    let (fn_host, blog_host) = (format!("fn.{zone}"), format!("blog.{zone}"));
    let theirs = [(format!("www.{zone}"), "A", "192.0.2.10"), (zone.clone(), "TXT", "\"v=spf1 -all\"")];
    let theirs_ref: Vec<(&str, &str, &str)> = theirs.iter().map(|(n, k, v)| (n.as_str(), *k, *v)).collect();
    let zone_id = dns.zone_with_records(&zone, &theirs_ref).await;
    let before_records = dns.records(&zone_id).await;

    let realism = Realism::start(&stack.aws_endpoint, &json!({"seed": 7, "acm_dns_validation": 3})).expect("realism");
    let operator = Operator::start_behind(stack, &ns.name, 3, &[], &realism.endpoint);
    let spec = json!({
        "image": "blog:1", "function": {}, "container": {}, "table": {"deletionPolicy": "Delete"},
        "domain": {"hostedZone": zone, "functionHost": fn_host, "containerHost": blog_host},
        "observability": {"logRetentionDays": 30, "tracing": "XRay", "containerInsights": true},
        "tags": {"cost-center": "4711"},
    });
    let calls_before = operator.aws_calls().await;
    api.create(&PostParams::default(), &blog("site", spec)).await.expect("create");
    let bd = wait_for_within(&api, "site", "Ready on its own domain", Duration::from_secs(120), ready).await;
    let status = bd.status.clone().expect("status");
    assert_eq!(
        (status.function_url.as_deref(), status.container_url.as_deref()),
        (Some(format!("https://{fn_host}").as_str()), Some(format!("https://{blog_host}").as_str()))
    );
    let shown = stack.kubectl().args(["get", "bd", "-n", &ns.name]).output().expect("kubectl get bd");
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    eprintln!("kubectl get bd:\n{shown}");
    assert!(
        shown.contains(&format!("https://{fn_host}")) && shown.contains(&format!("https://{blog_host}")),
        "{shown}"
    );
    let stats = realism.stats();
    let injected = stats["faults"].as_object().cloned().unwrap_or_default();
    assert!(injected.contains_key("shown acm_pending_validation DescribeCertificate"), "pending shown: {injected:?}");
    assert!(
        !injected.keys().any(|k| k.starts_with("certificate not issued")),
        "never used before ISSUED: {injected:?}"
    );
    let added = mutations(&calls_before, &operator.aws_calls().await);
    eprintln!("calls to make the blog with its domain: {added:?}");

    // The certificate covers both hosts, carries the cost tag, and is what the listener and the
    // custom domain use; the mapping points at this API.
    let recorded = resources(&bd);
    let certificate = recorded.certificate_arn.clone().expect("certificate recorded");
    assert_eq!(recorded.hosts, [fn_host.clone(), blog_host.clone()]);
    let described = dns.acm.describe_certificate().certificate_arn(&certificate).send().await.expect("certificate");
    let mut covered = described.certificate().expect("detail").subject_alternative_names().to_vec();
    covered.sort();
    assert_eq!(covered, [blog_host.clone(), fn_host.clone()]);
    let tags = dns.acm.list_tags_for_certificate().certificate_arn(&certificate).send().await.expect("tags");
    assert!(tags.tags().iter().any(|t| t.key() == "cost-center" && t.value() == Some("4711")), "{tags:?}");
    let balancer = recorded.load_balancer_arn.clone().expect("load balancer");
    assert_eq!(
        listeners(&aws, &balancer).await,
        [
            (80, "HTTP".to_owned(), "redirect".to_owned(), String::new()),
            (443, "HTTPS".to_owned(), "forward".to_owned(), certificate.clone()),
        ]
    );
    // Read through the layer, which gives the domain name the regional endpoint AWS would.
    let through = aws_sdk_apigatewayv2::Client::new(&blog_tests::sdk_config_for(&realism.endpoint).await);
    let custom = through.get_domain_name().domain_name(&fn_host).send().await.expect("custom domain");
    let config = custom.domain_name_configurations().first().expect("configuration");
    assert_eq!(config.certificate_arn(), Some(certificate.as_str()));
    let mappings = aws.apigateway.get_api_mappings().domain_name(&fn_host).send().await.expect("mappings");
    let mapped: Vec<_> = mappings.items().iter().map(|m| (m.api_id(), m.stage())).collect();
    assert_eq!(mapped, [(recorded.api_id.as_deref(), Some("$default"))]);

    // The records: an alias per host to its front door, each with its marker, the validation
    // CNAMEs, and the records that were there before, untouched.
    let records = dns.records(&zone_id).await;
    let alias_of = |host: &str| records.iter().find(|(n, k, _)| n == host && k == "A").map(|(_, _, t)| t.clone());
    assert_eq!(alias_of(&fn_host).as_deref(), config.api_gateway_domain_name());
    let lb = aws.elb.describe_load_balancers().load_balancer_arns(&balancer).send().await.expect("lb");
    let lb_dns = lb.load_balancers().first().and_then(|b| b.dns_name()).expect("dns name").to_owned();
    assert_eq!(alias_of(&blog_host), Some(format!("dualstack.{lb_dns}")));
    for host in [&fn_host, &blog_host] {
        let marker = format!("_blog-operator.{host}");
        let found = records.iter().find(|(n, k, _)| *n == marker && k == "TXT").expect("a marker per record");
        let expected = blog_operator::domain::marker(&owner_of(&bd), host);
        let blog_operator::domain::RecordValue::Values { values, .. } = expected.value else { panic!("a TXT value") };
        assert_eq!(values, std::slice::from_ref(&found.2), "the marker names its owner");
        assert!(!found.2.contains(&bd.uid().expect("uid")), "the UID stays private: {found:?}");
    }
    assert!(records.iter().filter(|(_, k, _)| k == "CNAME").count() >= 2, "validation records: {records:?}");
    for record in &before_records {
        assert!(records.contains(record), "{record:?} was there before and stays");
    }

    // The switches: retention, tracing, Container Insights, the daemon, the cost tag.
    let names = names_of(&bd);
    let group = aws.logs.describe_log_groups().log_group_name_prefix(&names.function_log_group).send().await;
    assert_eq!(group.expect("log group").log_groups().first().and_then(|g| g.retention_in_days()), Some(30));
    let function = aws.lambda.get_function().function_name(&names.function).send().await.expect("function");
    let mode = function.configuration().and_then(|c| c.tracing_config()).and_then(|t| t.mode()).cloned();
    assert_eq!(mode, Some(aws_sdk_lambda::types::TracingMode::Active));
    assert_eq!(function.tags().and_then(|t| t.get("cost-center")).map(String::as_str), Some("4711"));
    let cluster = aws
        .ecs
        .describe_clusters()
        .clusters(&names.cluster)
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .expect("cluster");
    let settings = cluster.clusters().first().map(|c| c.settings().to_vec()).unwrap_or_default();
    assert!(settings.iter().any(|s| s.value() == Some("enabled")), "Container Insights: {settings:?}");
    let definition = recorded.task_definition_arn.clone().expect("task definition");
    let described = aws.ecs.describe_task_definition().task_definition(definition).send().await.expect("td");
    let containers: Vec<_> =
        described.task_definition().expect("td").container_definitions().iter().filter_map(|c| c.name()).collect();
    assert_eq!(containers, ["blog", "xray-daemon"]);

    let reads_before = operator.aws_calls().await;
    assert_eq!(mutations_over_resyncs(&operator, 2).await, [], "a no-op resync changes nothing");
    let list = |calls: &BTreeMap<String, u64>| calls.get("ACM/ListCertificates").copied().unwrap_or(0);
    assert_eq!(
        list(&operator.aws_calls().await),
        list(&reads_before),
        "the recorded certificate is read, not searched for"
    );

    // The domain removed (plain HTTP chosen instead): what it made goes, the rest stays.
    let calls_before = operator.aws_calls().await;
    let patch = json!({"spec": {"domain": null, "container": {"loadBalancer": {"plainHttp": true}}}});
    api.patch("site", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    let bd = wait_for_within(&api, "site", "Ready without its domain", Duration::from_secs(90), |bd| {
        ready(bd) && resources(bd).hosts.is_empty() && bd.metadata.generation == Some(2)
    })
    .await;
    let removed = mutations(&calls_before, &operator.aws_calls().await);
    eprintln!("calls to remove the domain: {removed:?}");
    let status = bd.status.clone().expect("status");
    assert!(status.container_url.as_deref().is_some_and(|u| u == format!("http://{lb_dns}")), "{status:?}");
    assert!(status.function_url.as_deref().is_some_and(|u| u.contains("execute-api")), "{status:?}");
    assert_eq!(dns.records(&zone_id).await, before_records, "only what was there before is left");
    assert!(aws.apigateway.get_domain_name().domain_name(&fn_host).send().await.is_err(), "custom domain gone");
    assert!(!dns.certificate_exists(&certificate).await, "the certificate it requested is gone");
    assert_eq!(listeners(&aws, &balancer).await, [(80, "HTTP".to_owned(), "forward".to_owned(), String::new())]);

    api.delete("site", &DeleteParams::default()).await.expect("delete");
    wait_gone_within(&api, "site", Duration::from_secs(90)).await;
    assert_eq!(dns.records(&zone_id).await, before_records);
    operator.kill().await;
}

#[tokio::test]
async fn a_name_someone_else_holds_is_a_conflict_and_stays_theirs() {
    let (stack, _client, ns, api) = setup("taken").await;
    let _logs = stack.logs_on_failure();
    let dns = Dns::new(stack).await;
    let zone = format!("{}.example.com", ns.name);
    let taken = format!("blog.{zone}");
    let zone_id = dns.zone_with_records(&zone, &[(&taken, "A", "192.0.2.20")]).await;
    let before = dns.records(&zone_id).await;
    let realism = Realism::start(&stack.aws_endpoint, &json!({"seed": 7, "acm_dns_validation": 1})).expect("realism");
    let operator = Operator::start_behind(stack, &ns.name, 3, &[], &realism.endpoint);
    let spec = json!({"image": "blog:1", "container": {}, "table": {"deletionPolicy": "Delete"},
                      "domain": {"hostedZone": zone_id, "containerHost": taken}});
    api.create(&PostParams::default(), &blog("late", spec)).await.expect("create");
    let bd = wait_for_within(&api, "late", "the conflict reported", Duration::from_secs(90), |bd| {
        reason_of(bd, "DomainReady").0 == "DomainConflict"
    })
    .await;
    let (_, message) = reason_of(&bd, "DomainReady");
    assert!(message.contains(&format!("A record {taken} that this BlogDeployment did not write")), "{message}");
    let after = dns.records(&zone_id).await;
    assert!(
        after.contains(&(taken.clone(), "A".to_owned(), "192.0.2.20".to_owned())),
        "theirs is untouched: {after:?}"
    );
    assert!(!after.iter().any(|(n, _, _)| *n == format!("_blog-operator.{taken}")), "no marker on theirs");

    api.delete("late", &DeleteParams::default()).await.expect("delete");
    wait_gone_within(&api, "late", Duration::from_secs(90)).await;
    assert_eq!(dns.records(&zone_id).await, before, "deleting the BlogDeployment leaves their record");
    operator.kill().await;
}
