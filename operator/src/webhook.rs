//! The validating admission webhook: at `kubectl apply`, the reconciler's own refusal (validation,
//! tenant policy, a moved region) answers before the object is stored. Served over HTTPS by every
//! replica, leader or not.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::controller::Settings;
use crate::crd::BlogDeployment;
use crate::tenancy::Facts;

/// The answer to one admission request. Updates that leave the spec as it was (finalizers, labels:
/// the operator's own writes) always pass, as do deletions.
#[must_use]
pub fn review(request: &AdmissionRequest<DynamicObject>, settings: &Settings) -> AdmissionResponse {
    let allowed = AdmissionResponse::from(request);
    if request.operation == Operation::Delete {
        return allowed;
    }
    let parse = |o: &DynamicObject| serde_json::to_value(o).and_then(serde_json::from_value::<BlogDeployment>);
    let Some(object) = request.object.as_ref() else { return allowed };
    let bd = match parse(object) {
        Ok(bd) => bd,
        Err(e) => return allowed.deny(format!("not a BlogDeployment: {e}")),
    };
    let old = request.old_object.as_ref().and_then(|o| parse(o).ok());
    if old.as_ref().is_some_and(|old| old.spec == bd.spec) {
        return allowed;
    }
    let recorded = old.as_ref().and_then(|o| o.status.as_ref()).and_then(|s| s.resources.table_arn.as_deref());
    let namespace = request.namespace.as_deref().or(bd.metadata.namespace.as_deref()).unwrap_or_default();
    // The namespace's reserved-concurrency total is the reconciler's to check: it sees the others.
    let facts = Facts {
        namespace,
        default_region: &settings.default_region,
        recorded_table_arn: recorded,
        reserved_elsewhere: None,
    };
    let refusals = crate::admission::refusals(&bd.spec, &settings.tenant_policy, &facts);
    if refusals.is_empty() {
        return allowed;
    }
    // Every broken rule of every kind in one message, so one edit can fix them all.
    let message: Vec<String> = refusals.into_iter().map(|(reason, message)| format!("{reason}: {message}")).collect();
    allowed.deny(message.join(" | "))
}

async fn validate(
    State(settings): State<Arc<Settings>>,
    Json(review_in): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request: Result<AdmissionRequest<DynamicObject>, _> = review_in.try_into();
    let response = match request {
        Ok(request) => review(&request, &settings),
        Err(e) => AdmissionResponse::invalid(format!("not an admission review: {e}")),
    };
    Json(response.into_review())
}

fn tls_config(cert_dir: &Path) -> anyhow::Result<tokio_rustls::rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert_dir.join("tls.crt"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(cert_dir.join("tls.key"))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

/// Serves `/validate` over HTTPS on `addr` with `tls.crt` and `tls.key` from `cert_dir` (read at
/// start: a rotated certificate arrives with the rollout the chart's upgrade makes).
///
/// # Errors
/// When the certificate cannot be read or the address bound.
pub async fn serve(addr: SocketAddr, cert_dir: &Path, settings: Settings) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(cert_dir)?));
    let app = Router::new().route("/validate", post(validate)).with_state(Arc::new(settings));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "admission webhook listening");
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // At most MAX_CONNECTIONS at once: a peer holding connections open waits its turn instead
        // of growing the operator's memory past its limit.
        let permit = Arc::clone(&open).acquire_owned().await?;
        let (stream, _) = listener.accept().await?;
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else { return };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            // The API server's own timeout is at most 30 s; nothing legitimate takes longer.
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Err(e)) => tracing::debug!(error = %e, "webhook connection ended"),
                Err(_) => tracing::debug!("webhook connection cut off after {CONNECTION_TIMEOUT:?}"),
                Ok(Ok(())) => {}
            }
        });
    }
}

/// Connections served at once (the API server keeps a few alive; each costs a TLS session).
const MAX_CONNECTIONS: usize = 64;
/// How long a peer has for the TLS handshake and for each request's headers.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest a connection stays open (the API server reconnects as it needs).
const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            default_region: "us-west-1".into(),
            resync: std::time::Duration::from_secs(300),
            retry: std::time::Duration::from_secs(5),
            retry_max: std::time::Duration::from_secs(300),
            placement_drain: std::time::Duration::from_secs(60),
            reader_probe_url: blog_core::desired::DEFAULT_PROBE_URL.to_owned(),
            container_readiness: crate::status::ContainerReadiness::Running,
            prices: crate::allocation::pricing::PriceTable::default(),
            role_permissions_boundary: None,
            tenant_policy: crate::tenancy::TenantPolicy::open(),
        }
    }

    fn request(
        operation: &str,
        spec: serde_json::Value,
        old_spec: Option<serde_json::Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let object = |spec: serde_json::Value| {
            serde_json::json!({"apiVersion": "blogs.serverless.dev/v1alpha1", "kind": "BlogDeployment",
                               "metadata": {"name": "b", "namespace": "n"}, "spec": spec})
        };
        let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "1", "kind": {"group": "blogs.serverless.dev", "version": "v1alpha1", "kind": "BlogDeployment"},
            "resource": {"group": "blogs.serverless.dev", "version": "v1alpha1", "resource": "blogdeployments"},
            "operation": operation, "userInfo": {}, "object": object(spec), "oldObject": old_spec.map(object),
            "name": "b", "namespace": "n"}});
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).expect("review");
        review.try_into().expect("request")
    }

    #[test]
    fn a_bad_spec_is_refused_but_an_update_that_leaves_it_alone_passes() {
        let bad = serde_json::json!({"image": "blog:1", "function": {"enabled": false}});
        let refused = review(&request("CREATE", bad.clone(), None), &settings());
        assert!(!refused.allowed);
        assert!(refused.result.message.contains("enable at least one variant"), "{}", refused.result.message);
        // The operator adding its finalizer to an object stored before a stricter rule came in.
        assert!(review(&request("UPDATE", bad.clone(), Some(bad.clone())), &settings()).allowed);
        let good = serde_json::json!({"image": "blog:1", "function": {}});
        assert!(review(&request("CREATE", good, None), &settings()).allowed);
    }
}
