//! Runs the blog service: inside Lambda when its runtime API is present, as an HTTP server otherwise.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use blog_service::{AppState, Config, app, open_store};
use tracing_subscriber::EnvFilter;

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::from_env();
    init_logs(config.json_logs);
    // Loaded once, for the write token's secret and the beacons' CloudWatch, when either is used.
    let reads_secret = config.write_token.is_none() && config.write_token_secret_arn.is_some();
    let sdk = if reads_secret || config.readers.is_some() { Some(blog_service::aws_sdk_config().await) } else { None };
    if let (true, Some(sdk)) = (reads_secret, &sdk) {
        blog_service::resolve_write_token(&mut config, sdk).await?;
    }
    blog_service::check_write_token(&config)?;
    let store = open_store(&config).await?;
    let backend = config
        .table_name
        .as_deref()
        .map_or_else(|| format!("embedded:{}", config.data_dir.display()), |t| format!("dynamodb:{t}"));
    let in_lambda = config.in_lambda;
    let port = config.port;
    let beacons = sdk.as_ref().and_then(|sdk| blog_service::open_beacons(&config, sdk));
    let router = app(AppState { store, config: Arc::new(config), beacons: beacons.clone() });

    if in_lambda {
        tracing::info!(%backend, "serving through the Lambda runtime API");
        return lambda_http::run(router).await.map_err(|e| anyhow::anyhow!("lambda runtime failed: {e}"));
    }
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%backend, address = %listener.local_addr()?, "listening");
    // A server lives on between beacons: it writes what it added up on time, and at the end.
    if let Some(beacons) = beacons.clone() {
        let every = beacons.flush_every();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                beacons.flush(std::time::Instant::now(), false).await;
            }
        });
    }
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    if let Some(beacons) = beacons {
        beacons.flush(std::time::Instant::now(), true).await;
    }
    Ok(())
}
