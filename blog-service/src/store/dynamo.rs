//! The DynamoDB store: one item per post, listed newest first through a global secondary index.
//!
//! Table layout (the operator creates exactly this; `blog_aws::table_schema` says it in one place):
//! - partition key `id` (S);
//! - index `byCreated`: partition key `listKey` (S, always `"post"`), sort key `id` (S). Ids are
//!   UUIDv7, so a descending query on the index pages newest first without a scan.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{Cursor, Edit, Store, StoreError, StoreResult, page_of};
use crate::model::{Post, PostPage};

pub use blog_aws::{KEY, LIST_INDEX, LIST_KEY, LIST_KEY_VALUE, table_schema};

/// Posts in one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    /// Writes go here: the same client, or (a placement with `writes: Home`) one for the home
    /// region, whose table replicates them to this region's replica.
    writer: Client,
    table: String,
}

impl DynamoStore {
    /// Why a conditional write was refused: the post is gone, or it changed (read where the write
    /// went: a replica may not have it yet).
    async fn why_refused(&self, id: &str) -> StoreError {
        let at_writer = Self { client: self.writer.clone(), ..self.clone() };
        match at_writer.get(id).await {
            Ok(Some(_)) => StoreError::Changed,
            Ok(None) => StoreError::NotFound,
            Err(err) => err,
        }
    }

    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { writer: client.clone(), client, table: table.into() }
    }

    /// This store with its writes sent through `writer` (another region's table of the same name).
    #[must_use]
    pub fn writing_to(self, writer: Client) -> Self {
        Self { writer, ..self }
    }

    /// The client from the standard AWS configuration chain (environment, profile, IRSA,
    /// container or instance role), with `AWS_ENDPOINT_URL` honoured, over rustls.
    pub async fn client_from_env() -> Client {
        Client::new(&crate::aws_sdk_config().await)
    }

    /// The same configuration, for another region's endpoint.
    pub async fn client_in(region: &str) -> Client {
        let config = aws_sdk_dynamodb::config::Builder::from(&crate::aws_sdk_config().await)
            .region(aws_sdk_dynamodb::config::Region::new(region.to_owned()))
            .build();
        Client::from_conf(config)
    }
}

/// Maps an SDK error once: a failed condition means the item was (or was not) there.
fn map_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    on_condition_failed: StoreError,
) -> impl FnOnce(SdkError<E, R>) -> StoreError {
    move |err| match err.code() {
        Some("ConditionalCheckFailedException") => on_condition_failed,
        _ => StoreError::Backend(format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(err))),
    }
}

/// The condition of a write: the post exists, and, when the write is conditional, still holds what
/// the client saw (every field a client sees change, so nothing it has not seen is overwritten).
fn condition(unchanged: Option<&Post>) -> (&'static str, HashMap<String, String>, HashMap<String, AttributeValue>) {
    let mut names = HashMap::from([("#id".to_owned(), KEY.to_owned())]);
    let Some(seen) = unchanged else { return ("attribute_exists(#id)", names, HashMap::new()) };
    let mut values = HashMap::new();
    for (field, value) in
        [("title", &seen.title), ("author", &seen.author), ("body", &seen.body), ("updatedAt", &seen.updated_at)]
    {
        names.insert(format!("#{field}"), field.to_owned());
        values.insert(format!(":seen_{field}"), AttributeValue::S(value.clone()));
    }
    let condition = "attribute_exists(#id) AND #title = :seen_title AND #author = :seen_author \
                     AND #body = :seen_body AND #updatedAt = :seen_updatedAt";
    (condition, names, values)
}

fn backend_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: SdkError<E, R>,
) -> StoreError {
    StoreError::Backend(format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(err)))
}

fn to_item(post: &Post) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    HashMap::from([
        (KEY.to_owned(), s(&post.id)),
        (LIST_KEY.to_owned(), s(LIST_KEY_VALUE)),
        ("title".to_owned(), s(&post.title)),
        ("author".to_owned(), s(&post.author)),
        ("body".to_owned(), s(&post.body)),
        ("createdAt".to_owned(), s(&post.created_at)),
        ("updatedAt".to_owned(), s(&post.updated_at)),
    ])
}

fn from_item(item: &HashMap<String, AttributeValue>) -> StoreResult<Post> {
    let s = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::Backend(format!("item lacks string attribute {name}")))
    };
    Ok(Post {
        id: s(KEY)?,
        title: s("title")?,
        author: s("author")?,
        body: s("body")?,
        created_at: s("createdAt")?,
        updated_at: s("updatedAt")?,
    })
}

fn key_of(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(KEY.to_owned(), AttributeValue::S(id.to_owned()))])
}

#[async_trait]
impl Store for DynamoStore {
    async fn create(&self, post: &Post) -> StoreResult<()> {
        self.writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(post)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", KEY)
            .send()
            .await
            .map_err(map_err(StoreError::AlreadyExists))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Post>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend_err)?;
        out.item().map(from_item).transpose()
    }

    async fn list(&self, limit: usize, cursor: Option<&Cursor>) -> StoreResult<PostPage> {
        let mut posts = Vec::with_capacity(limit + 1);
        let mut start = cursor.map(|c| {
            HashMap::from([
                (KEY.to_owned(), AttributeValue::S(c.after_id.clone())),
                (LIST_KEY.to_owned(), AttributeValue::S(LIST_KEY_VALUE.to_owned())),
            ])
        });
        // A query page stops at 1 MB, which large posts reach before `limit`: keep asking until
        // the page is full (plus one, to know whether more follow) or the index is exhausted.
        loop {
            let wanted = limit + 1 - posts.len();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(LIST_INDEX)
                .key_condition_expression("#lk = :lk")
                .expression_attribute_names("#lk", LIST_KEY)
                .expression_attribute_values(":lk", AttributeValue::S(LIST_KEY_VALUE.to_owned()))
                .scan_index_forward(false)
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend_err)?;
            for item in out.items() {
                posts.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if posts.len() <= limit => start = Some(key),
                _ => break,
            }
        }
        Ok(page_of(posts, limit))
    }

    async fn replace(&self, id: &str, edit: &Edit<'_>, unchanged: Option<&Post>) -> StoreResult<Post> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let (condition, names, values) = condition(unchanged);
        let out = self
            .writer
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .update_expression("SET #title = :title, #author = :author, #body = :body, #updatedAt = :updatedAt")
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .expression_attribute_names("#title", "title")
            .expression_attribute_names("#author", "author")
            .expression_attribute_names("#body", "body")
            .expression_attribute_names("#updatedAt", "updatedAt")
            .set_expression_attribute_values(Some(values))
            .expression_attribute_values(":title", s(edit.title))
            .expression_attribute_values(":author", s(edit.author))
            .expression_attribute_values(":body", s(edit.body))
            .expression_attribute_values(":updatedAt", s(edit.updated_at))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => {
                return Err(self.why_refused(id).await);
            }
            Err(err) => return Err(backend_err(err)),
        };
        from_item(out.attributes().ok_or_else(|| StoreError::Backend("UpdateItem returned no attributes".into()))?)
    }

    async fn delete(&self, id: &str, unchanged: Option<&Post>) -> StoreResult<()> {
        let (condition, names, values) = condition(unchanged);
        let out = self
            .writer
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Err(self.why_refused(id).await),
            Err(err) => Err(backend_err(err)),
        }
    }

    /// A read of a key that never exists: it proves the table answers using only the item-level
    /// permission the function's role has (no `DescribeTable`).
    async fn ping(&self) -> StoreResult<()> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of("readiness-probe")))
            .send()
            .await
            .map_err(backend_err)?;
        Ok(())
    }
}
