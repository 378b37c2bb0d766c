//! Storage behind one trait: DynamoDB in AWS, an embedded on-disk store everywhere else.

mod cache;
pub mod dynamo;
pub mod embedded;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::{Post, PostPage};

pub use dynamo::DynamoStore;
pub use embedded::EmbeddedStore;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("post not found")]
    NotFound,
    #[error("a post with this id already exists")]
    AlreadyExists,
    #[error("the page cursor is not valid")]
    InvalidCursor,
    /// A conditional write found the post changed since the version it was given.
    #[error("the post changed since the version the request names (If-Match)")]
    Changed,
    /// The backend failed; the message is for logs, never for clients.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A post as `GET /blogs/{id}` serves it: its JSON and its `ETag`.
#[derive(Debug, Clone)]
pub struct PostView {
    pub json: axum::body::Bytes,
    pub etag: axum::http::HeaderValue,
}

impl PostView {
    /// # Errors
    /// `Backend` when the post cannot be encoded (it always can).
    pub fn of(post: &Post) -> StoreResult<Self> {
        let json = serde_json::to_vec(post).map_err(|e| StoreError::Backend(e.to_string()))?;
        let etag = axum::http::HeaderValue::from_str(&crate::model::etag(post))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Self { json: json.into(), etag })
    }

    /// What it weighs in a cache.
    #[must_use]
    pub fn size(&self) -> usize {
        self.json.len() + self.etag.len()
    }
}

/// Where posts live. Every implementation keeps these promises:
/// - `list` returns posts newest first (by id, which is time-ordered), `limit` at most, and a
///   `next` cursor exactly when more posts follow;
/// - `replace` and `delete` act only on an existing post and report `NotFound` otherwise, atomically
///   (a concurrent delete never lets a replace resurrect the post);
/// - `create` never overwrites;
/// - with `unchanged: Some(post)`, `replace` and `delete` act only while the stored post still is
///   `post` (in the same atomic step), and report `Changed` otherwise.
#[async_trait]
pub trait Store: Send + Sync {
    async fn create(&self, post: &Post) -> StoreResult<()>;
    async fn get(&self, id: &str) -> StoreResult<Option<Post>>;
    /// The post as served; a store that is the only writer of its data may keep it between reads.
    async fn get_view(&self, id: &str) -> StoreResult<Option<PostView>> {
        self.get(id).await?.map(|post| PostView::of(&post)).transpose()
    }
    async fn list(&self, limit: usize, cursor: Option<&Cursor>) -> StoreResult<PostPage>;
    /// Replaces title, author, body and `updated_at` of an existing post; returns the stored post.
    async fn replace(&self, id: &str, edit: &Edit<'_>, unchanged: Option<&Post>) -> StoreResult<Post>;
    async fn delete(&self, id: &str, unchanged: Option<&Post>) -> StoreResult<()>;
    /// Checks that the backend answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
}

/// What a replace writes.
#[derive(Debug, Clone, Copy)]
pub struct Edit<'a> {
    pub title: &'a str,
    pub author: &'a str,
    pub body: &'a str,
    pub updated_at: &'a str,
}

/// A position in the newest-first listing: the id of the last post of the previous page.
/// Clients see it only as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub after_id: String,
}

impl Cursor {
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.after_id.as_bytes())
    }

    /// # Errors
    /// `InvalidCursor` when the text is not a cursor this service made.
    pub fn decode(text: &str) -> StoreResult<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| StoreError::InvalidCursor)?;
        let after_id = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
        if !crate::model::is_valid_id(&after_id) {
            return Err(StoreError::InvalidCursor);
        }
        Ok(Self { after_id })
    }
}

/// Cuts a newest-first run of up to `limit + 1` posts into a page: the extra post only says that
/// more follow. A page also stops before its JSON would pass [`MAX_PAGE_BYTES`], so that a list
/// always fits in a Lambda response (6 MB) whatever the posts hold; the cursor then continues
/// after the last post that fit.
fn page_of(mut posts: Vec<Post>, limit: usize) -> PostPage {
    let mut bytes = 0;
    let fit = posts
        .iter()
        .take(limit)
        .position(|post| {
            bytes += serde_json::to_vec(post).map_or(usize::MAX / 2, |json| json.len() + 1);
            bytes > MAX_PAGE_BYTES
        })
        .map_or(limit, |over| over.max(1));
    let next = if posts.len() > fit {
        posts.truncate(fit);
        posts.last().map(|last| Cursor { after_id: last.id.clone() }.encode())
    } else {
        None
    };
    PostPage { items: posts, next }
}

/// The most JSON one page of posts carries: under Lambda's 6 MB response limit with room for the
/// API Gateway envelope and the page's own fields.
pub const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stays_under_the_lambda_payload_limit_whatever_the_posts_hold() {
        // 101 posts of 64 KiB bodies of quotes, each escaped to 128 KiB of JSON: 12.9 MB in all.
        let body = "\"".repeat(crate::model::MAX_BODY_CHARS);
        let posts: Vec<Post> = (0..101)
            .map(|i| Post {
                id: uuid::Uuid::now_v7().to_string(),
                title: format!("post {i}"),
                author: "ada".into(),
                body: body.clone(),
                created_at: "2026-11-22T00:00:00Z".into(),
                updated_at: "2026-11-22T00:00:00Z".into(),
            })
            .collect();
        let page = page_of(posts.clone(), 100);
        let json = serde_json::to_vec(&page).expect("json");
        assert!(json.len() <= MAX_PAGE_BYTES + 1024, "{} bytes", json.len());
        assert!(page.items.len() < 100 && !page.items.is_empty(), "{} posts", page.items.len());
        let last = page.items.last().expect("a post");
        assert_eq!(page.next, Some(Cursor { after_id: last.id.clone() }.encode()), "the rest follows");
        // Small posts still fill a page by count.
        let small: Vec<Post> = posts.into_iter().map(|p| Post { body: "x".into(), ..p }).collect();
        assert_eq!(page_of(small, 100).items.len(), 100);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor { after_id: uuid::Uuid::now_v7().to_string() };
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        assert!(matches!(Cursor::decode("%%%"), Err(StoreError::InvalidCursor)));
        assert!(matches!(Cursor::decode(&URL_SAFE_NO_PAD.encode("x")), Err(StoreError::InvalidCursor)));
    }
}
