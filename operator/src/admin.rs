//! The admin servers, apart: probes (`/healthz`: the process runs; `/readyz`: the API server
//! answers) on one address for the kubelet, and `/metrics` (Prometheus text) on another, which can
//! be bound to loopback or opened only to the monitoring namespace.

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

/// Serves the probes on `probes` and `/metrics` on `metrics_addr` until the process stops.
///
/// # Errors
/// When an address cannot be bound.
pub async fn serve(
    probes: SocketAddr,
    metrics_addr: SocketAddr,
    metrics_: Metrics,
    client: kube::Client,
) -> anyhow::Result<()> {
    let state = AdminState { metrics: metrics_, client };
    let probe_routes =
        Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(readyz)).with_state(state.clone());
    let metric_routes = Router::new().route("/metrics", get(metrics)).with_state(state);
    let probe_listener = tokio::net::TcpListener::bind(probes).await?;
    let metrics_listener = tokio::net::TcpListener::bind(metrics_addr).await?;
    tracing::info!(probes = %probe_listener.local_addr()?, metrics = %metrics_listener.local_addr()?, "admin servers listening");
    tokio::try_join!(axum::serve(probe_listener, probe_routes), axum::serve(metrics_listener, metric_routes))?;
    Ok(())
}
