//! The OpenAPI document is an exact contract: schemathesis (pinned by `scripts/tools.sh install`)
//! runs every phase (examples, coverage, fuzzing, stateful) with `--checks all`, seeded, against the
//! real binary — as a server on the embedded store and on DynamoDB (moto), and inside Lambda through
//! cargo lambda's runtime API (schema-valid requests only there: see [`Mode::Positive`]) — with and
//! without a write token, and must find nothing.
//! `tests/schemathesis.toml` holds the one allowance: an opaque cursor of the right shape that the
//! service did not make is refused with 400, which no schema can express.

use std::process::Stdio;
use std::time::{Duration, Instant};

use blog_service::store::dynamo;
use blog_tests::{Moto, free_port, unique_name};

const TOKEN: &str = "contract-test-token-0123456789abcdef";

/// The blog service as a server, or inside Lambda behind cargo lambda's runtime API.
struct Service {
    _children: Vec<tokio::process::Child>,
    _data: tempfile::TempDir,
    /// Where the API answers (a path prefix for Lambda's local function URL).
    base: String,
}

fn blog_service(env: &[(&str, String)], data: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_blog-service"));
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("DATA_DIR", data);
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str()))).stdout(Stdio::null()).stderr(Stdio::null());
    command.kill_on_drop(true);
    command
}

fn wait_until_up(addr: &str, path: &str) {
    assert!(blog_tests::answers_ok_within(addr, path, Duration::from_secs(30)), "{addr}{path} did not answer in 30 s");
}

async fn server(env: &[(&str, String)]) -> Service {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut env = env.to_vec();
    env.push(("PORT", port.to_string()));
    let child = blog_service(&env, data.path()).spawn().expect("start blog-service");
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("127.0.0.1:{port}"), "/healthz");
    Service { _children: vec![child], _data: data, base }
}

async fn in_lambda(env: &[(&str, String)]) -> Service {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let apis = tokio::process::Command::new(blog_tests::tool("cargo-lambda"))
        .args(["lambda", "watch", "--only-lambda-apis", "--disable-cors", "--invoke-port", &port.to_string()])
        .current_dir(blog_tests::workspace_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start cargo lambda");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "cargo lambda's runtime API did not listen in 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut env = env.to_vec();
    env.extend([
        ("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt")),
        ("AWS_LAMBDA_FUNCTION_NAME", "_".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
    ]);
    let function = blog_service(&env, data.path()).spawn().expect("start the function");
    let base = format!("http://127.0.0.1:{port}/lambda-url/_");
    wait_until_up(&format!("127.0.0.1:{port}"), "/lambda-url/_/healthz");
    Service { _children: vec![apis, function], _data: data, base }
}

/// Which requests schemathesis makes: all, or only schema-valid ones.
#[derive(Clone, Copy)]
enum Mode {
    All,
    /// For Lambda through cargo lambda: its local endpoint answers 500 by itself to a body that is
    /// not UTF-8 (API Gateway would pass it base64-encoded), so invalid payloads test the
    /// emulator, not the service.
    Positive,
}

/// Runs schemathesis over the whole document and asserts it found nothing.
async fn no_contract_failures(service: &Service, token: Option<&str>, mode: Mode) {
    let config = blog_tests::workspace_root().join("blog-service/tests/schemathesis.toml");
    let mut command = tokio::process::Command::new(blog_tests::tool("schemathesis"));
    command.arg("--config-file").arg(config).arg("run").arg(format!("{}/openapi.json", service.base));
    command.args(["--url", &service.base, "--checks", "all", "--max-examples", "25", "--seed", "1"]);
    command.args(["--phases", "examples,coverage,fuzzing,stateful", "--no-color"]);
    command.args(["--mode", if matches!(mode, Mode::All) { "all" } else { "positive" }]);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let out = command.output().await.expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary = report.rsplit("SUMMARY").next().unwrap_or(&report);
    eprintln!("schemathesis against {}:{summary}", service.base);
    assert!(out.status.success(), "schemathesis found contract failures:\n{report}");
}

#[tokio::test]
async fn server_on_the_embedded_store_without_a_token() {
    no_contract_failures(&server(&[]).await, None, Mode::All).await;
}

#[tokio::test]
async fn server_on_the_embedded_store_with_a_token() {
    no_contract_failures(&server(&[("WRITE_TOKEN", TOKEN.to_owned())]).await, Some(TOKEN), Mode::All).await;
}

/// The server on a fresh table of the emulator, with the write token or without.
async fn on_dynamodb(token: Option<&str>) -> Service {
    let moto = Moto::shared();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = unique_name("contract");
    dynamo::table_schema(client.create_table().table_name(&table)).send().await.expect("create table");
    let mut env = vec![
        ("TABLE_NAME", table),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_REGION", "us-west-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ];
    env.extend(token.map(|t| ("WRITE_TOKEN", t.to_owned())));
    server(&env).await
}

#[tokio::test]
async fn server_on_dynamodb_with_a_token() {
    no_contract_failures(&on_dynamodb(Some(TOKEN)).await, Some(TOKEN), Mode::All).await;
}

#[tokio::test]
async fn server_on_dynamodb_without_a_token() {
    no_contract_failures(&on_dynamodb(None).await, None, Mode::All).await;
}

#[tokio::test]
async fn inside_lambda_through_the_runtime_api_with_and_without_a_token() {
    no_contract_failures(&in_lambda(&[]).await, None, Mode::Positive).await;
    let with_token = in_lambda(&[("WRITE_TOKEN", TOKEN.to_owned())]).await;
    no_contract_failures(&with_token, Some(TOKEN), Mode::Positive).await;
}

#[tokio::test]
async fn a_client_generated_from_the_document_walks_the_api() {
    let service = server(&[("WRITE_TOKEN", TOKEN.to_owned())]).await;
    let venv = std::path::PathBuf::from(blog_tests::tool("schemathesis"));
    let bin = venv.parent().expect("the venv's bin folder");
    let out = tempfile::tempdir().expect("tempdir");
    let generate = tokio::process::Command::new(bin.join("openapi-python-client"))
        .args(["generate", "--url", &format!("{}/openapi.json", service.base), "--meta", "none", "--output-path"])
        .arg(out.path().join("blog_api_client"))
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .output()
        .await
        .expect("run openapi-python-client");
    assert!(generate.status.success(), "generation failed:\n{}", String::from_utf8_lossy(&generate.stdout));
    let walk = tokio::process::Command::new(bin.join("python"))
        .arg(blog_tests::workspace_root().join("blog-service/tests/client_walk.py"))
        .arg(out.path())
        .args([&service.base, TOKEN])
        .output()
        .await
        .expect("run the walk");
    let said = format!("{}{}", String::from_utf8_lossy(&walk.stdout), String::from_utf8_lossy(&walk.stderr));
    assert!(walk.status.success(), "the generated client's walk failed:\n{said}");
}
