//! The page, in a real browser: headless Chromium (Debian's, through ChromeDriver) opens the
//! function variant's page served by the local data plane (`scripts/data-plane.py`), writes a
//! post through it, switches to the Containers URL, sees the post there, deletes it there, and back
//! on the Functions URL it is gone. A write is refused until the write token is typed in. A
//! screenshot is kept in `target/test-artifacts/`.

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use k8s_openapi::api::core::v1::Secret;

use crate::support::*;

/// The data plane of one BlogDeployment, running until dropped.
struct DataPlane {
    _child: tokio::process::Child,
    /// Its standard output, kept open: the script prints until it ends.
    _output: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    functions: String,
    containers: String,
}

async fn data_plane(stack: &Stack, bd: &BlogDeployment) -> DataPlane {
    let root = blog_tests::workspace_root();
    let state = stack.dir.join(format!("data-plane-{}", bd.metadata.uid.as_deref().unwrap_or("x")));
    std::fs::create_dir_all(&state).expect("state folder");
    let status = state.join("bd.json");
    std::fs::write(&status, serde_json::to_vec(bd).expect("json")).expect("write status");
    let moto = std::process::Command::new("bash").arg(root.join("scripts/local-stack.sh")).arg("moto-path").output();
    let moto = String::from_utf8(moto.expect("moto-path").stdout).expect("utf-8");
    let python = std::path::Path::new(moto.trim()).with_file_name("python");
    // The blog service binary sits beside the operator's in the target folder (make test builds both).
    let blog_service = std::path::Path::new(env!("CARGO_BIN_EXE_blog-operator")).with_file_name("blog-service");
    assert!(blog_service.exists(), "{} is missing: cargo build -p blog-service", blog_service.display());
    let mut child = tokio::process::Command::new(python)
        .arg(root.join("scripts/data-plane.py"))
        .args([status.as_os_str(), state.join("run").as_os_str()])
        .arg("--blog-service")
        .arg(&blog_service)
        .args(["--cargo-lambda", &blog_tests::tool("cargo-lambda"), "--haproxy", &blog_tests::tool("haproxy")])
        .env("AWS_ENDPOINT_URL", &stack.aws_endpoint)
        .env("AWS_REGION", "us-west-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the data plane");
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut url = async || {
        let line = lines.next_line().await.expect("read").expect("the data plane printed its URLs");
        line.split_once(' ').expect("name url").1.to_owned()
    };
    let (functions, containers, _tasks) =
        tokio::time::timeout(Duration::from_secs(120), async { (url().await, url().await, url().await) })
            .await
            .expect("the data plane is up in 120 s");
    DataPlane { _child: child, _output: lines, functions, containers }
}

/// ChromeDriver on a free port and a headless Chromium session through it.
async fn browser() -> (tokio::process::Child, Browser) {
    let port = free_port();
    let driver = tokio::process::Command::new(blog_tests::tool("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let mut capabilities = serde_json::Map::new();
    let args =
        ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1400"];
    capabilities.insert("goog:chromeOptions".into(), json!({"args": args}));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let connected = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match connected {
            Ok(client) => return (driver, client),
            Err(e) => assert!(Instant::now() < deadline, "no browser session in 30 s: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn post_titled(title: &str) -> Locator<'static> {
    Locator::XPath(Box::leak(format!("//article[h2[text()='{title}']]").into_boxed_str()))
}

async fn answered(page: &Browser) -> String {
    page.find(Locator::Id("answered")).await.expect("#answered").text().await.expect("text")
}

/// Clicks an API choice and waits until the page has listed the posts through it.
async fn choose(page: &Browser, choice: &str, variant: &str) {
    page.find(Locator::Css(&format!("input[name=api][value={choice}]")))
        .await
        .expect("choice")
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !answered(page).await.starts_with(&format!("GET /blogs: answered by {variant}")) {
        assert!(Instant::now() < deadline, "no answer from {variant}: {:?}", answered(page).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(page: &Browser, title: &str, token: &str) {
    for (field, value) in [("title", title), ("author", "Browser"), ("body", "Written through the page.")] {
        let input = page.find(Locator::Css(&format!("#new-post [name={field}]"))).await.expect("field");
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }
    let token_field = page.find(Locator::Id("token")).await.expect("token field");
    token_field.clear().await.expect("clear");
    token_field.send_keys(token).await.expect("type");
    page.find(Locator::Css("#new-post button[type=submit]")).await.expect("button").click().await.expect("submit");
}

#[tokio::test]
async fn the_page_writes_through_one_variant_and_deletes_through_the_other() {
    let (stack, client, ns, api) = setup("browser").await;
    let _logs = stack.logs_on_failure();
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    ecr.create_repository().repository_name(&ns.name).send().await.expect("repository");
    push(&ecr, &ns.name, "1.0", &[]).await;
    let image = format!("123456789012.dkr.ecr.us-west-1.amazonaws.com/{}:1.0", ns.name);
    let operator = Operator::start(stack, &ns.name, 30).await;
    let spec = json!({"image": image, "function": {}, "container": {"loadBalancer": {"plainHttp": true}, "desiredCount": 2}, "table": {"deletionPolicy": "Delete"}});
    api.create(&PostParams::default(), &blog("page", spec)).await.expect("create");
    let bd = wait_for(&api, "page", "Ready", ready).await;
    let secret = bd.status.as_ref().and_then(|s| s.write_token_secret.clone()).expect("a generated write token");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let token = secrets.get(&secret).await.expect("secret").data.expect("data")["token"].0.clone();
    let token = String::from_utf8(token).expect("utf-8");
    let plane = data_plane(stack, &bd).await;
    let (_driver, page) = browser().await;

    // The function variant's page, talking to its own API.
    page.goto(&plane.functions).await.expect("open the function's page");
    choose(&page, "functions", "functions").await;
    // Without the token the write is refused, and the page says so.
    publish(&page, "Through Lambda", "").await;
    let status =
        page.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#status")).await.expect("status");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !status.text().await.expect("text").starts_with("Could not publish") {
        assert!(Instant::now() < deadline, "no refusal shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publish(&page, "Through Lambda", &token).await;
    page.wait().at_most(Duration::from_secs(20)).for_element(post_titled("Through Lambda")).await.expect("posted");
    assert!(answered(&page).await.contains("answered by functions"), "{}", answered(&page).await);

    // The same page, switched to the Containers URL: the post is there, and goes from there.
    choose(&page, "containers", "containers").await;
    let post = page.wait().at_most(Duration::from_secs(20)).for_element(post_titled("Through Lambda")).await;
    let artifacts = blog_tests::workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");
    std::fs::write(artifacts.join("blog-page.png"), page.screenshot().await.expect("screenshot")).expect("save");
    post.expect("the post, seen through the containers")
        .find(Locator::Css("button"))
        .await
        .expect("delete")
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !page.find_all(post_titled("Through Lambda")).await.expect("find").is_empty() {
        assert!(Instant::now() < deadline, "the post did not go");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered(&page).await.starts_with("DELETE /blogs/"), "{}", answered(&page).await);
    assert!(answered(&page).await.contains("answered by containers"));

    // Back on the Functions URL, it is gone there too.
    choose(&page, "functions", "functions").await;
    assert!(
        page.find_all(post_titled("Through Lambda")).await.expect("find").is_empty(),
        "still listed by the function"
    );
    eprintln!("functions {} containers {}; screenshot in {}", plane.functions, plane.containers, artifacts.display());

    page.close().await.expect("close the browser");
    drop(plane);
    api.delete("page", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "page").await;
    operator.kill().await;
}

/// The blog service with readers' beacons on, as the operator configures a placement's variants
/// (`probe` standing for `--reader-probe-url`), its Functions URL its own; the page's URL.
fn service_with_beacons(stack: &Stack, namespace: &str, probe: &str) -> (tokio::process::Child, String) {
    let port = free_port();
    let own = format!("http://127.0.0.1:{port}/");
    let variables = [
        ("FUNCTIONS_URL", own.clone()),
        ("READERS_NAMESPACE", namespace.to_owned()),
        ("READERS_REGION", "us-west-1".to_owned()),
        ("READER_CANDIDATES", "us-west-1,eu-central-1".to_owned()),
        ("READER_PROBE_URL", probe.to_owned()),
    ];
    let (child, _) = blog_service(stack, port, variables.iter().map(|(name, value)| (*name, value.as_str())));
    (child, own)
}

/// Beacons readers of `area` (a nearest candidate and band) sent about `candidate` in the last 10
/// minutes, as the placement reads them (home's CloudWatch, the blog's namespace, by area and
/// candidate).
async fn beacons_seen(stack: &Stack, namespace: &str, (area, candidate): (&str, &str)) -> f64 {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    use blog_aws::beacons::{CANDIDATE, NEAREST, ROUND_TRIP};
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(ROUND_TRIP)
        .dimensions(dimension(NEAREST, area))
        .dimensions(dimension(CANDIDATE, candidate))
        .build();
    let query = MetricDataQuery::builder()
        .id("n")
        .metric_stat(MetricStat::builder().metric(metric).period(600).stat("SampleCount").build())
        .build();
    let now = std::time::SystemTime::now();
    let out = cloudwatch
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(aws_sdk_cloudwatch::primitives::DateTime::from(now - Duration::from_secs(600)))
        .end_time(aws_sdk_cloudwatch::primitives::DateTime::from(now + Duration::from_secs(60)))
        .send()
        .await
        .expect("GetMetricData");
    out.metric_data_results().iter().flat_map(|r| r.values()).sum()
}

/// The page of a placed blog times each candidate region and the function variant, draws them,
/// and its beacon reaches the metrics the placement reads. With its probes unreachable (blocked),
/// the page works as before and shows no chart.
#[tokio::test]
async fn the_page_measures_the_candidates_and_its_beacon_reaches_the_placements_metrics() {
    let stack = Stack::shared();
    let namespace = format!("BlogReaders/{}", blog_tests::unique_name("page"));
    // Every region is on loopback here: the probe is the page's own server.
    let (_service, url) = service_with_beacons(stack, &namespace, "./healthz?region={region}");
    let (_driver, page) = browser().await;
    page.goto(&url).await.expect("open the page");
    let deadline = Instant::now() + Duration::from_secs(30);
    let bars = loop {
        let bars = page.find_all(Locator::Css("#chart rect")).await.expect("find");
        if bars.len() == 3 {
            break bars;
        }
        assert!(Instant::now() < deadline, "{} bars drawn, not 3", bars.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut drawn = Vec::new();
    for bar in bars {
        drawn.push(bar.attr("data-name").await.expect("attr").unwrap_or_default());
    }
    assert_eq!(drawn, ["us-west-1", "eu-central-1", "functions"], "each candidate, then the variant");
    let artifacts = blog_tests::workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");
    std::fs::write(artifacts.join("blog-page-readers.png"), page.screenshot().await.expect("screenshot"))
        .expect("save");
    // The nearest candidate is whichever answered first; its beacon counts once under it, in the
    // band of its round trip (a probe of a loaded machine may take 50 ms or more).
    let deadline = Instant::now() + Duration::from_secs(30);
    let areas: Vec<String> = ["us-west-1", "eu-central-1"].into_iter().flat_map(blog_aws::beacons::areas_of).collect();
    loop {
        let mut seen = 0.0;
        for area in &areas {
            seen += beacons_seen(stack, &namespace, (area, "eu-central-1")).await;
        }
        if seen >= 1.0 {
            eprintln!("beacons in {namespace}: {seen} about eu-central-1");
            break;
        }
        assert!(Instant::now() < deadline, "the page's beacon never reached CloudWatch");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Probes that never answer (blocked): the posts load, only the variant is drawn, no beacon is
    // sent (it would hold no region) and no error is shown.
    let blocked_namespace = format!("{namespace}-blocked");
    let (_blocked, blocked_url) = service_with_beacons(stack, &blocked_namespace, "http://127.0.0.1:9/{region}");
    page.goto(&blocked_url).await.expect("open the page");
    // A server, not a function: it answers as the container variant does.
    choose(&page, "same", "containers").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while page.find_all(Locator::Css("#chart rect")).await.expect("find").len() != 1 {
        assert!(Instant::now() < deadline, "the variant's bar was never drawn");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = page.find(Locator::Id("status")).await.expect("status").text().await.expect("text");
    assert!(status.is_empty(), "the page shows no error: {status:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Listed by namespace: moto's GetMetricData matches dimensions across namespaces.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let listed = cloudwatch.list_metrics().namespace(&blocked_namespace).send().await.expect("ListMetrics");
    assert!(listed.metrics().is_empty(), "no beacon without regions: {:?}", listed.metrics());
    page.close().await.expect("close the browser");
}
