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

pub use blog_aws::aws_sdk_config;

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
