//! What the blog service and the operator share about AWS, without either pulling in the other:
//! the SDK configuration both load, the layout of the blog's DynamoDB table, which the operator
//! creates and the service reads and writes, and the write token's secret, which the operator
//! keeps in Secrets Manager and the function variant reads at start.

use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};

pub use aws_config::SdkConfig;

/// The environment variable naming the Secrets Manager secret (ARN) that holds the write token.
pub const WRITE_TOKEN_SECRET_ARN: &str = "WRITE_TOKEN_SECRET_ARN";

/// The string value of a Secrets Manager secret.
///
/// # Errors
/// The call's failure, or a secret without a string value.
pub async fn secret_string(config: &aws_config::SdkConfig, secret_id: &str) -> Result<String, String> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
        format!("GetSecretValue {secret_id}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e))
    })?;
    out.secret_string.ok_or_else(|| format!("secret {secret_id} holds no string"))
}

/// The AWS configuration from the standard chain, over a rustls (ring) HTTPS client.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await
}

/// The table's partition key.
pub const KEY: &str = "id";
/// The index that lists posts newest first.
pub const LIST_INDEX: &str = "byCreated";
/// The index's partition key, and the one value every post carries in it.
pub const LIST_KEY: &str = "listKey";
pub const LIST_KEY_VALUE: &str = "post";

/// The key schema, attributes and index of a blog table, for whoever creates it.
#[must_use]
pub fn table_schema(builder: CreateTableFluentBuilder) -> CreateTableFluentBuilder {
    let key = |name: &str, key_type| {
        KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().expect("name and type are set")
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    builder
        .key_schema(key(KEY, KeyType::Hash))
        .attribute_definitions(attribute(KEY))
        .attribute_definitions(attribute(LIST_KEY))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(LIST_INDEX)
                .key_schema(key(LIST_KEY, KeyType::Hash))
                .key_schema(key(KEY, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("name and key schema are set"),
        )
        .billing_mode(BillingMode::PayPerRequest)
}

pub mod beacons;
