//! The admin server: `/healthz` (the process runs), `/readyz` (the API server answers) and
//! `/metrics` (Prometheus text).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    client: kube::Client,
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    match state.client.apiserver_version().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the Kubernetes API server does not answer"),
    }
}

/// Serves the admin endpoints on `addr` until the process stops.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(addr: SocketAddr, metrics_: Metrics, client: kube::Client) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState { metrics: metrics_, client });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "admin server listening");
    axum::serve(listener, app).await?;
    Ok(())
}
