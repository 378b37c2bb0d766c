//! The blog application: one axum router over one storage trait, served as a container or a Lambda.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod error;
pub mod model;
pub mod openapi;
pub mod page;
pub mod store;

use std::sync::Arc;

pub use api::{AppState, app};
pub use config::Config;
use store::{DynamoStore, EmbeddedStore, Store, StoreResult};

/// The AWS configuration from the standard chain, over a rustls (ring) HTTPS client.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await
}

/// The store the configuration asks for: DynamoDB when `TABLE_NAME` is set, the embedded one otherwise.
///
/// # Errors
/// When the embedded store's file cannot be opened.
pub async fn open_store(config: &Config) -> StoreResult<Arc<dyn Store>> {
    Ok(match &config.table_name {
        Some(table) => Arc::new(DynamoStore::new(DynamoStore::client_from_env().await, table)),
        None => Arc::new(EmbeddedStore::open(&config.data_dir)?),
    })
}
