//! The Lambda path, driven the way AWS drives it: the real `blog-service` binary polls a local
//! Lambda runtime API (`/2018-06-01/runtime/invocation/next`), gets API Gateway HTTP API (payload
//! 2.0) events, and posts its responses back.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

/// What the runtime API saw come back for one invocation.
#[derive(Debug)]
#[expect(dead_code, reason = "the fields are read through Debug when a test fails")]
enum Outcome {
    Response(String, Value),
    Error(String, String),
}

#[derive(Clone)]
struct RuntimeApi {
    events: Arc<Mutex<mpsc::Receiver<(String, Value)>>>,
    outcomes: mpsc::Sender<Outcome>,
}

async fn next_invocation(State(api): State<RuntimeApi>) -> impl IntoResponse {
    // Like AWS, hold the poll open until an event is there.
    let Some((request_id, event)) = api.events.lock().await.recv().await else {
        return std::future::pending::<(StatusCode, HeaderMap, String)>().await;
    };
    let mut headers = HeaderMap::new();
    let deadline =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() + 30_000;
    headers.insert("lambda-runtime-aws-request-id", request_id.parse().expect("header"));
    headers.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().expect("header"));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-west-1:123456789012:function:blog".parse().expect("header"),
    );
    headers.insert("lambda-runtime-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793".parse().expect("header"));
    (StatusCode::OK, headers, event.to_string())
}

async fn invocation_response(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = api.outcomes.send(Outcome::Response(id, value)).await;
    StatusCode::ACCEPTED
}

async fn invocation_error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = api.outcomes.send(Outcome::Error(id, String::from_utf8_lossy(&body).into_owned())).await;
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    let _ = api.outcomes.send(Outcome::Error("init".into(), String::from_utf8_lossy(&body).into_owned())).await;
    StatusCode::ACCEPTED
}

/// An API Gateway HTTP API (payload format 2.0) event.
fn http_event(method: &str, path: &str, query: &str, body: Option<&str>) -> Value {
    let mut headers = json!({"host": "abc123.execute-api.us-west-1.amazonaws.com", "user-agent": "lambda-test"});
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "lambda-test"},
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:22:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

struct Harness {
    events: mpsc::Sender<(String, Value)>,
    outcomes: mpsc::Receiver<Outcome>,
    next_id: usize,
    _child: tokio::process::Child,
    _data: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        let (event_tx, event_rx) = mpsc::channel(8);
        let (outcome_tx, outcome_rx) = mpsc::channel(8);
        let api = RuntimeApi { events: Arc::new(Mutex::new(event_rx)), outcomes: outcome_tx };
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });

        let data = tempfile::tempdir().expect("tempdir");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_blog-service"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "blog")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/blog")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("DATA_DIR", data.path())
            .env("CONTAINERS_URL", "http://ctr.example.com")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the blog-service binary");
        Self { events: event_tx, outcomes: outcome_rx, next_id: 0, _child: child, _data: data }
    }

    /// Hands one event to the function and returns its API Gateway response.
    async fn invoke(&mut self, event: Value) -> Value {
        self.next_id += 1;
        let id = format!("invocation-{}", self.next_id);
        self.events.send((id.clone(), event)).await.expect("runtime API is up");
        let outcome = tokio::time::timeout(Duration::from_secs(30), self.outcomes.recv())
            .await
            .expect("the function answers within 30 s")
            .expect("runtime API is up");
        match outcome {
            Outcome::Response(got, response) if got == id => response,
            other => panic!("expected a response to {id}, got {other:?}"),
        }
    }
}

fn body_json(response: &Value) -> Value {
    let body = response["body"].as_str().expect("body is a string");
    assert_ne!(response["isBase64Encoded"], json!(true), "JSON bodies are sent as text");
    serde_json::from_str(body).expect("JSON body")
}

#[tokio::test]
async fn the_binary_serves_api_gateway_events_through_the_runtime_api() {
    let mut lambda = Harness::start().await;

    let created = lambda
        .invoke(http_event("POST", "/blogs", "", Some(r#"{"title":"From Lambda","author":"ada","body":"hi"}"#)))
        .await;
    assert_eq!(created["statusCode"], 201, "{created}");
    let post = body_json(&created);
    let id = post["id"].as_str().expect("id").to_owned();
    let location =
        created["headers"]["location"].as_str().or_else(|| created["multiValueHeaders"]["location"][0].as_str());
    assert_eq!(location, Some(format!("/blogs/{id}").as_str()));

    let got = lambda.invoke(http_event("GET", &format!("/blogs/{id}"), "", None)).await;
    assert_eq!(got["statusCode"], 200);
    assert_eq!(body_json(&got)["title"], "From Lambda");
    assert_eq!(got["headers"]["x-blog-variant"], "functions", "inside Lambda it is the functions variant");

    let listed = lambda.invoke(http_event("GET", "/blogs", "limit=1", None)).await;
    assert_eq!(listed["statusCode"], 200);
    assert_eq!(body_json(&listed)["items"][0]["id"], id.as_str());

    let bad_query = lambda.invoke(http_event("GET", "/blogs", "limit=0", None)).await;
    assert_eq!(
        (bad_query["statusCode"].as_u64(), body_json(&bad_query)["error"].as_str()),
        (Some(400), Some("invalid_query"))
    );

    let malformed = lambda.invoke(http_event("POST", "/blogs", "", Some("{oops"))).await;
    assert_eq!(
        (malformed["statusCode"].as_u64(), body_json(&malformed)["error"].as_str()),
        (Some(400), Some("malformed_json"))
    );

    // A body that is not UTF-8 reaches Lambda base64-encoded, as API Gateway sends it: 400, not 500.
    let mut binary = http_event("POST", "/blogs", "", Some("/0j+"));
    binary["isBase64Encoded"] = json!(true);
    let binary = lambda.invoke(binary).await;
    assert_eq!(
        (binary["statusCode"].as_u64(), body_json(&binary)["error"].as_str()),
        (Some(400), Some("malformed_json")),
        "{binary}"
    );

    let missing = lambda.invoke(http_event("GET", "/no/such/route", "", None)).await;
    assert_eq!(missing["statusCode"], 404);

    let page = lambda.invoke(http_event("GET", "/", "", None)).await;
    assert_eq!(page["statusCode"], 200);
    assert!(page["body"].as_str().is_some_and(|html| html.contains("From Lambda") && html.contains("ctr.example.com")));

    let deleted = lambda.invoke(http_event("DELETE", &format!("/blogs/{id}"), "", None)).await;
    assert_eq!(deleted["statusCode"], 204);
}
