//! The function variant's write token, read from Secrets Manager at start (on the emulator): the
//! configuration carries only the secret's ARN, and writes then need the token.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use blog_service::store::EmbeddedStore;
use blog_service::{AppState, Config, app, resolve_write_token};
use tower::ServiceExt;

#[tokio::test]
async fn the_token_comes_from_the_secret_the_configuration_names() {
    let sdk = blog_tests::Moto::shared().sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let created = secrets
        .create_secret()
        .name(blog_tests::unique_name("blog-token"))
        .secret_string("s3cret-token-of-32-characters-at-least")
        .send()
        .await
        .expect("secret");
    let arn = created.arn().expect("ARN").to_owned();
    let mut config = Config { write_token_secret_arn: Some(arn.clone()), ..Config::default() };
    resolve_write_token(&mut config, &sdk).await.expect("resolve");
    assert_eq!(config.write_token.as_deref(), Some("s3cret-token-of-32-characters-at-least"));

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
    let router = app(AppState::new(store, Arc::new(config)));
    let post = |token: Option<&str>| {
        let mut request = Request::post("/blogs").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(Body::from(r#"{"title":"t","author":"a","body":"b"}"#)).expect("request")
    };
    assert_eq!(router.clone().oneshot(post(None)).await.expect("reply").status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        router.clone().oneshot(post(Some("s3cret-token-of-32-characters-at-least"))).await.expect("reply").status(),
        StatusCode::CREATED
    );

    // A secret that cannot be read stops the start: never a blog that takes anonymous writes.
    let short = Config { write_token: Some("s3cret".into()), ..Config::default() };
    let refused = blog_service::check_write_token(&short).expect_err("too short");
    assert!(refused.to_string().contains("at least 32"), "{refused}");
    assert!(!format!("{short:?}").contains("s3cret"), "Debug leaves the token out");

    let mut missing = Config { write_token_secret_arn: Some(format!("{arn}-gone")), ..Config::default() };
    assert!(resolve_write_token(&mut missing, &sdk).await.is_err());
}
