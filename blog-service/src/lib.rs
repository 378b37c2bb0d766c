//! The blog application: one axum router over one storage trait, served as a container or a Lambda.
#![forbid(unsafe_code)]

pub mod api;
pub mod beacons;
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

/// Readers' beacons as the configuration asks: written to CloudWatch in `READERS_REGION` (home)
/// with `sdk`'s credentials, or `None` when they are off.
pub fn open_beacons(config: &Config, sdk: &blog_aws::SdkConfig) -> Option<Arc<beacons::Beacons>> {
    let readers = config.readers.clone()?;
    let mut cloudwatch = aws_sdk_cloudwatch::config::Builder::from(sdk);
    if let Some(region) = &readers.region {
        cloudwatch = cloudwatch.region(aws_sdk_cloudwatch::config::Region::new(region.clone()));
    }
    let sink = Arc::new(beacons::CloudWatchSink(aws_sdk_cloudwatch::Client::from_conf(cloudwatch.build())));
    Some(Arc::new(beacons::Beacons::new(readers, (config.beacons_per_second, config.beacon_flush), sink)))
}

/// Reads the write token from Secrets Manager (with `sdk`'s configuration) when the configuration
/// names a secret and gives no token itself. A service told to guard writes never starts without
/// its token.
///
/// # Errors
/// When the secret cannot be read.
pub async fn resolve_write_token(config: &mut Config, sdk: &blog_aws::SdkConfig) -> anyhow::Result<()> {
    if let (None, Some(arn)) = (&config.write_token, &config.write_token_secret_arn) {
        let token = blog_aws::secret_string(sdk, arn).await.map_err(anyhow::Error::msg)?;
        config.write_token = Some(token.trim().to_owned()).filter(|t| !t.is_empty());
        anyhow::ensure!(config.write_token.is_some(), "the write token secret {arn} is empty");
    }
    check_write_token(config)
}

/// The shortest write token the service accepts: 32 characters, out of reach of online guessing
/// (the operator generates 64 and refuses shorter tenant tokens too).
pub const MIN_WRITE_TOKEN_LENGTH: usize = 32;

/// A configured write token is long enough.
///
/// # Errors
/// When it is shorter than [`MIN_WRITE_TOKEN_LENGTH`].
pub fn check_write_token(config: &Config) -> anyhow::Result<()> {
    let length = config.write_token.as_deref().map_or(usize::MAX, |t| t.chars().count());
    anyhow::ensure!(
        length >= MIN_WRITE_TOKEN_LENGTH,
        "the write token has {length} characters; use a random one of at least {MIN_WRITE_TOKEN_LENGTH}"
    );
    Ok(())
}

/// The store the configuration asks for: DynamoDB when `TABLE_NAME` is set, the embedded one otherwise.
///
/// # Errors
/// When the embedded store's file cannot be opened.
pub async fn open_store(config: &Config) -> StoreResult<Arc<dyn Store>> {
    Ok(match &config.table_name {
        Some(table) => {
            let store = DynamoStore::new(DynamoStore::client_from_env().await, table);
            match &config.table_write_region {
                Some(region) => Arc::new(store.writing_to(DynamoStore::client_in(region).await)),
                None => Arc::new(store),
            }
        }
        None => Arc::new(EmbeddedStore::open(&config.data_dir)?),
    })
}
