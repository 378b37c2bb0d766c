//! Storage behind one trait: DynamoDB in AWS, an embedded on-disk store everywhere else.

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
    /// The backend failed; the message is for logs, never for clients.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where posts live. Every implementation keeps these promises:
/// - `list` returns posts newest first (by id, which is time-ordered), `limit` at most, and a
///   `next` cursor exactly when more posts follow;
/// - `replace` and `delete` act only on an existing post and report `NotFound` otherwise, atomically
///   (a concurrent delete never lets a replace resurrect the post);
/// - `create` never overwrites.
#[async_trait]
pub trait Store: Send + Sync {
    async fn create(&self, post: &Post) -> StoreResult<()>;
    async fn get(&self, id: &str) -> StoreResult<Option<Post>>;
    async fn list(&self, limit: usize, cursor: Option<&Cursor>) -> StoreResult<PostPage>;
    /// Replaces title, author, body and `updated_at` of an existing post; returns the stored post.
    async fn replace(&self, id: &str, title: &str, author: &str, body: &str, updated_at: &str) -> StoreResult<Post>;
    async fn delete(&self, id: &str) -> StoreResult<()>;
    /// Checks that the backend answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
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
/// more follow.
fn page_of(mut posts: Vec<Post>, limit: usize) -> PostPage {
    let next = if posts.len() > limit {
        posts.truncate(limit);
        posts.last().map(|last| Cursor { after_id: last.id.clone() }.encode())
    } else {
        None
    };
    PostPage { items: posts, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor { after_id: uuid::Uuid::now_v7().to_string() };
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        assert!(matches!(Cursor::decode("%%%"), Err(StoreError::InvalidCursor)));
        assert!(matches!(Cursor::decode(&URL_SAFE_NO_PAD.encode("x")), Err(StoreError::InvalidCursor)));
    }
}
