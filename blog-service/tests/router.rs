//! The router end to end in process (`tower::ServiceExt::oneshot`), on the embedded store: every
//! endpoint, every error case, CORS, the write token and HTML escaping.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use blog_service::{AppState, Config, app, store::EmbeddedStore};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct TestApp {
    router: Router,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Asserts an error reply: the status, and the JSON shape `{"error": code, "message": text}`.
    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        let body = self.json();
        assert_eq!(body["error"], code, "body: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "body: {body}");
    }
}

impl TestApp {
    fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(EmbeddedStore::open(dir.path()).expect("open store"));
        Self { router: app(AppState::new(store, Arc::new(config))), _dir: dir }
    }

    fn new() -> Self {
        Self::with_config(Config::default())
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        Reply { status, headers, body }
    }

    async fn call(&self, method: Method, uri: &str, json: Option<Value>) -> Reply {
        let builder = Request::builder().method(method).uri(uri);
        let request = match json {
            Some(json) => builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(json.to_string())),
            None => builder.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    async fn create(&self, title: &str) -> Value {
        let reply =
            self.call(Method::POST, "/blogs", Some(json!({"title": title, "author": "ada", "body": "text"}))).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()
    }
}

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup(|name| vars.get(name).cloned())
}

#[tokio::test]
async fn create_then_read_update_delete() {
    let app = TestApp::new();
    let reply =
        app.call(Method::POST, "/blogs", Some(json!({"title": "First", "author": "Ada", "body": "Hello"}))).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let post = reply.json();
    let id = post["id"].as_str().expect("id").to_owned();
    assert_eq!(reply.headers[header::LOCATION], format!("/blogs/{id}").as_str());
    assert_eq!(
        (post["title"].as_str(), post["author"].as_str(), post["body"].as_str()),
        (Some("First"), Some("Ada"), Some("Hello"))
    );
    assert_eq!(post["createdAt"], post["updatedAt"]);

    let got = app.call(Method::GET, &format!("/blogs/{id}"), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), post);

    let put = app
        .call(Method::PUT, &format!("/blogs/{id}"), Some(json!({"title": "Second", "author": "Grace", "body": "Bye"})))
        .await;
    assert_eq!(put.status, StatusCode::OK);
    let updated = put.json();
    assert_eq!((updated["title"].as_str(), updated["id"].as_str()), (Some("Second"), Some(id.as_str())));
    assert_eq!(updated["createdAt"], post["createdAt"]);

    let deleted = app.call(Method::DELETE, &format!("/blogs/{id}"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    app.call(Method::GET, &format!("/blogs/{id}"), None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::DELETE, &format!("/blogs/{id}"), None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn writes_with_if_match_act_only_on_the_version_read() {
    let app = TestApp::new();
    let created = app.call(Method::POST, "/blogs", Some(json!({"title": "v1", "author": "a", "body": "b"}))).await;
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let uri = format!("/blogs/{id}");
    let read = app.call(Method::GET, &uri, None).await;
    let etag = read.headers[header::ETAG].to_str().expect("ETag").to_owned();
    assert_eq!(created.headers[header::ETAG], etag.as_str(), "POST and GET name the same version");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong, quoted tag: {etag}");
    let put = |tag: &str, title: &str| {
        Request::put(&uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, tag)
            .body(Body::from(json!({"title": title, "author": "a", "body": "b"}).to_string()))
            .expect("PUT")
    };
    let first = app.send(put(&etag, "v2")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_ne!(first.headers[header::ETAG], etag.as_str(), "a new version, a new tag");
    app.send(put(&etag, "v3")).await.assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    app.send(put(&format!("W/{etag}"), "v3"))
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    assert_eq!(app.call(Method::GET, &uri, None).await.json()["title"], "v2", "no stale write acted");
    assert_eq!(app.send(put("*", "v4")).await.status, StatusCode::OK, "* needs only the post to exist");
    let stale_delete = Request::delete(&uri).header(header::IF_MATCH, &etag).body(Body::empty()).expect("DELETE");
    app.send(stale_delete).await.assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    let current = app.call(Method::GET, &uri, None).await.headers[header::ETAG].to_str().expect("tag").to_owned();
    let delete = Request::delete(&uri).header(header::IF_MATCH, &current).body(Body::empty()).expect("DELETE");
    assert_eq!(app.send(delete).await.status, StatusCode::NO_CONTENT);
    app.send(put("*", "v5")).await.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn put_never_creates() {
    let app = TestApp::new();
    let id = uuid::Uuid::now_v7();
    let body = json!({"title": "t", "author": "a", "body": "b"});
    app.call(Method::PUT, &format!("/blogs/{id}"), Some(body.clone()))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::PUT, "/blogs/not-a-uuid", Some(body)).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::GET, &format!("/blogs/{id}"), None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn list_pages_newest_first() {
    let app = TestApp::new();
    let mut titles = Vec::new();
    for i in 0..5 {
        app.create(&format!("post {i}")).await;
        titles.push(format!("post {i}"));
    }
    titles.reverse();

    let mut seen = Vec::new();
    let mut uri = "/blogs?limit=2".to_owned();
    loop {
        let reply = app.call(Method::GET, &uri, None).await;
        assert_eq!(reply.status, StatusCode::OK);
        let page = reply.json();
        seen.extend(
            page["items"].as_array().expect("items").iter().map(|p| p["title"].as_str().expect("title").to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => uri = format!("/blogs?limit=2&next={next}"),
            None => break,
        }
    }
    assert_eq!(seen, titles);

    let default = app.call(Method::GET, "/blogs", None).await.json();
    assert_eq!(default["items"].as_array().map(Vec::len), Some(5));
    assert!(default.get("next").is_none());
}

#[tokio::test]
async fn list_rejects_bad_parameters() {
    let app = TestApp::new();
    for uri in ["/blogs?limit=0", "/blogs?limit=101", "/blogs?limit=ten", "/blogs?limit=-1"] {
        app.call(Method::GET, uri, None).await.assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
    app.call(Method::GET, "/blogs?next=garbage!", None).await.assert_error(StatusCode::BAD_REQUEST, "invalid_cursor");
}

#[tokio::test]
async fn invalid_posts_get_422_with_the_reason() {
    let app = TestApp::new();
    let cases = [
        (json!({"author": "a", "body": "b"}), "invalid_body", "title"),
        (json!({"title": "t", "author": "a"}), "invalid_body", "body"),
        (json!({"title": 5, "author": "a", "body": "b"}), "invalid_body", "title"),
        (json!({"title": "t", "author": "a", "body": "b", "extra": 1}), "invalid_body", "extra"),
        (json!({"title": "   ", "author": "a", "body": "b"}), "validation_failed", "title must not be blank"),
        (json!({"title": "t".repeat(201), "author": "a", "body": "b"}), "validation_failed", "at most 200 characters"),
        (
            json!({"title": "t", "author": "a", "body": "b".repeat(64 * 1024 + 1)}),
            "validation_failed",
            "at most 65536 characters",
        ),
        (json!("just a string"), "invalid_body", ""),
    ];
    for (body, code, hint) in cases {
        let reply = app.call(Method::POST, "/blogs", Some(body.clone())).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, code);
        assert!(reply.json()["message"].as_str().is_some_and(|m| m.contains(hint)), "{body}: {}", reply.text());
    }
    // Exactly at the limits is fine.
    let ok = json!({"title": "é".repeat(200), "author": "a", "body": "b".repeat(64 * 1024)});
    assert_eq!(app.call(Method::POST, "/blogs", Some(ok)).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_wrong_type_and_oversized_bodies() {
    let app = TestApp::new();
    let raw = |content_type: &str, body: Body| {
        Request::post("/blogs").header(header::CONTENT_TYPE, content_type).body(body).expect("request")
    };
    app.send(raw("application/json", Body::from("{\"title\": ")))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    app.send(raw("text/plain", Body::from("{}")))
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let no_type = Request::post("/blogs").body(Body::from("{}")).expect("request");
    app.send(no_type).await.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let huge = format!("{{\"title\":\"t\",\"author\":\"a\",\"body\":\"{}\"}}", "x".repeat(1100 * 1024));
    app.send(raw("application/json", Body::from(huge)))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let put = Request::put(format!("/blogs/{}", uuid::Uuid::now_v7()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("nope"))
        .expect("request");
    app.send(put).await.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::new();
    app.call(Method::GET, "/nope", None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::GET, "/blogs/not-a-uuid", None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::DELETE, "/blogs/not-a-uuid", None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    let patch = app.call(Method::PATCH, "/blogs", None).await;
    patch.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(patch.headers.contains_key(header::ALLOW));
}

#[tokio::test]
async fn health_readiness_and_openapi() {
    let app = TestApp::new();
    let health = app.call(Method::GET, "/healthz", None).await;
    assert_eq!((health.status, health.json()["status"].as_str()), (StatusCode::OK, Some("ok")));
    let ready = app.call(Method::GET, "/readyz", None).await;
    assert_eq!((ready.status, ready.json()["status"].as_str()), (StatusCode::OK, Some("ready")));

    let spec = app.call(Method::GET, "/openapi.json", None).await.json();
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (path, method) in [
        ("/blogs", "get"),
        ("/blogs", "post"),
        ("/blogs/{id}", "get"),
        ("/blogs/{id}", "put"),
        ("/blogs/{id}", "delete"),
    ] {
        assert!(spec["paths"][path][method].is_object(), "{method} {path} missing from the spec");
    }
    assert_eq!(spec["components"]["schemas"]["PostInput"]["required"], json!(["title", "author", "body"]));
    // No write token here: the document names no bearer scheme (the openapi unit test covers one).
    assert!(spec["components"].get("securitySchemes").is_none_or(|s| s.get("bearer").is_none()), "{spec}");
}

#[tokio::test]
async fn write_token_guards_writes_only() {
    let app = TestApp::with_config(config(&[("WRITE_TOKEN", "s3cret")]));
    let body = json!({"title": "t", "author": "a", "body": "b"});
    let post = |auth: Option<&str>| {
        let mut builder = Request::post("/blogs").header(header::CONTENT_TYPE, "application/json");
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        builder.body(Body::from(body.to_string())).expect("request")
    };
    let denied = app.send(post(None)).await;
    denied.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(denied.headers[header::WWW_AUTHENTICATE], "Bearer");
    app.send(post(Some("Bearer wrong"))).await.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.send(post(Some("s3cret"))).await.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let created = app.send(post(Some("Bearer s3cret"))).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_str().expect("id").to_owned();

    assert_eq!(app.call(Method::GET, "/blogs", None).await.status, StatusCode::OK, "reads stay open");
    assert_eq!(app.call(Method::GET, &format!("/blogs/{id}"), None).await.status, StatusCode::OK);
    app.call(Method::DELETE, &format!("/blogs/{id}"), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let put = app.call(Method::PUT, &format!("/blogs/{id}"), Some(body.clone())).await;
    put.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn cors_allows_the_two_variant_origins() {
    let app = TestApp::with_config(config(&[
        ("FUNCTIONS_URL", "https://fn.example.com"),
        ("CONTAINERS_URL", "http://ctr.example.com/"),
    ]));
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/blogs")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,authorization")
            .body(Body::empty())
            .expect("request")
    };
    for origin in ["https://fn.example.com", "http://ctr.example.com"] {
        let reply = app.send(preflight(origin)).await;
        assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        let allowed = reply.headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().expect("ascii").to_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    }
    let stranger = app.send(preflight("https://evil.example.com")).await;
    assert!(!stranger.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    // The page reads which variant answered from a header CORS lets it see.
    let get = Request::builder()
        .uri("/blogs")
        .header(header::ORIGIN, "https://fn.example.com")
        .body(Body::empty())
        .expect("request");
    let reply = app.send(get).await;
    assert_eq!(reply.headers["x-blog-variant"], "containers", "a server is the containers variant");
    let exposed = reply.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().expect("ascii").to_lowercase();
    assert!(exposed.contains("x-blog-variant"), "{exposed}");
}

#[tokio::test]
async fn html_page_escapes_user_content_and_offers_both_urls() {
    let app = TestApp::with_config(config(&[
        ("FUNCTIONS_URL", "https://fn.example.com"),
        ("CONTAINERS_URL", "http://ctr.example.com\"><script>alert(2)</script>"),
    ]));
    let evil =
        json!({"title": "<script>alert(1)</script>", "author": "\"><img src=x onerror=alert(1)>", "body": "a & b < c"});
    assert_eq!(app.call(Method::POST, "/blogs", Some(evil)).await.status, StatusCode::CREATED);
    let page = app.call(Method::GET, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers[header::CONTENT_TYPE].to_str().is_ok_and(|t| t.starts_with("text/html")));
    let html = page.text();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("a &amp; b &lt; c"));
    assert!(!html.contains("<script>alert"), "no user or configured text reaches the page unescaped");
    assert!(!html.contains("<img src=x"));
    assert!(html.contains(r#"data-functions-url="https://fn.example.com""#));
    assert!(html.contains("data-containers-url=\"http://ctr.example.com&quot;&gt;&lt;script&gt;"));
    assert!(!html.contains("innerHTML"), "the script renders posts with textContent only");
}

#[tokio::test]
async fn responses_carry_the_headers_browsers_expect() {
    let app = TestApp::new();
    let page = app.call(Method::GET, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let policy = page.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").to_owned();
    for directive in ["default-src 'none'", "frame-ancestors 'none'", "script-src 'sha256-", "style-src 'sha256-"] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    // The hash is the page's own inline script's: a browser would run it, and nothing else.
    let html = page.text();
    let script = html.split("<script>").nth(1).and_then(|s| s.split("</script>").next()).expect("inline script");
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert!(policy.contains(&format!("script-src 'sha256-{digest}'")), "{policy}");
    for uri in ["/", "/blogs", "/nowhere"] {
        let reply = app.call(Method::GET, uri, None).await;
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
    }
}

/// What a beacon-taking app wrote, in place of CloudWatch.
struct Written(std::sync::Mutex<Vec<blog_service::beacons::Datum>>);

#[async_trait::async_trait]
impl blog_service::beacons::MetricSink for Written {
    async fn put(&self, _namespace: &str, data: Vec<blog_service::beacons::Datum>) -> Result<(), String> {
        self.0.lock().expect("lock").extend(data);
        Ok(())
    }
}

#[tokio::test]
async fn beacons_are_taken_checked_and_limited_and_the_page_measures_the_candidates() {
    let off = TestApp::new();
    let beacon = json!({"regions": [{"region": "us-west-1", "ms": 21.5}, {"region": "eu-central-1", "ms": 160}],
                        "variants": [{"variant": "containers", "ms": 30}]});
    off.call(Method::POST, "/beacon", Some(beacon.clone())).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    let page = off.call(Method::GET, "/", None).await.text();
    assert!(page.contains(r#"data-candidates="""#), "no candidates, nothing measured");

    let settings = config(&[
        ("READERS_NAMESPACE", "BlogReaders/u"),
        ("READER_CANDIDATES", "us-west-1,eu-central-1"),
        ("READER_PROBE_URL", "./healthz?region={region}"),
        ("BEACONS_PER_SECOND", "1"),
    ]);
    let written = Arc::new(Written(std::sync::Mutex::new(Vec::new())));
    let readers = settings.readers.clone().expect("beacons on");
    let beacons = blog_service::beacons::Beacons::new(readers, (1, settings.beacon_flush), written.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("open store"));
    let state = AppState { beacons: Some(Arc::new(beacons)), ..AppState::new(store, Arc::new(settings)) };
    let on = TestApp { router: app(state), _dir: dir };
    let page = on.call(Method::GET, "/", None).await.text();
    assert!(page.contains(r#"data-candidates="us-west-1,eu-central-1" data-probe-url="./healthz?region={region}""#));

    let taken = on.call(Method::POST, "/beacon", Some(beacon.clone())).await;
    assert_eq!(taken.status, StatusCode::NO_CONTENT, "{}", taken.text());
    let data = written.0.lock().expect("lock").clone();
    assert_eq!(data.len(), 3, "two regions from us-west-1's reader and one variant: {data:?}");
    assert!(data.iter().all(|d| d.dimensions.iter().all(|(_, v)| !v.contains('.'))), "no address in any dimension");

    let unknown = json!({"regions": [{"region": "ap-south-1", "ms": 20}]});
    on.call(Method::POST, "/beacon", Some(unknown))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let extra = json!({"regions": [{"region": "us-west-1", "ms": 20}], "ip": "203.0.113.9"});
    on.call(Method::POST, "/beacon", Some(extra)).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let huge = json!({"regions": [{"region": "us-west-1", "ms": 20}], "variants": "x".repeat(5000)});
    on.call(Method::POST, "/beacon", Some(huge)).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // One a second, bursts of two: the first beacon and this one use the burst.
    on.call(Method::POST, "/beacon", Some(beacon.clone())).await;
    let limited = on.call(Method::POST, "/beacon", Some(beacon)).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(limited.headers[header::RETRY_AFTER], "1");
}
