//! The blog's data: posts, what a client may send, and the rules a post must follow.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest author name, in characters.
pub const MAX_AUTHOR_CHARS: usize = 100;
/// Largest post body, in bytes of UTF-8 (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Page size when the client gives none, and the largest one it may ask for.
pub const DEFAULT_PAGE_LIMIT: usize = 20;
pub const MAX_PAGE_LIMIT: usize = 100;

/// A stored blog post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    /// Server-made identifier (a UUIDv7: ids sort in creation order).
    pub id: String,
    pub title: String,
    pub author: String,
    pub body: String,
    /// RFC 3339 time of creation.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
}

/// What a client sends to create or replace a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostInput {
    /// 1 to 200 characters, not blank.
    pub title: String,
    /// 1 to 100 characters, not blank.
    pub author: String,
    /// 1 byte to 64 KiB of text.
    pub body: String,
}

/// One page of posts, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostPage {
    pub items: Vec<Post>,
    /// Opaque cursor for the next page (`GET /blogs?next=...`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Why a [`PostInput`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPost {
    #[error("{0} must not be blank")]
    Blank(&'static str),
    #[error("title must be at most {MAX_TITLE_CHARS} characters (got {0})")]
    TitleTooLong(usize),
    #[error("author must be at most {MAX_AUTHOR_CHARS} characters (got {0})")]
    AuthorTooLong(usize),
    #[error("body must be at most {MAX_BODY_BYTES} bytes (got {0})")]
    BodyTooLarge(usize),
}

impl PostInput {
    /// Checks the rules every stored post follows.
    ///
    /// # Errors
    /// The first rule the input breaks.
    pub fn validate(&self) -> Result<(), InvalidPost> {
        for (field, value) in [("title", &self.title), ("author", &self.author), ("body", &self.body)] {
            if value.trim().is_empty() {
                return Err(InvalidPost::Blank(field));
            }
        }
        let title_chars = self.title.chars().count();
        if title_chars > MAX_TITLE_CHARS {
            return Err(InvalidPost::TitleTooLong(title_chars));
        }
        let author_chars = self.author.chars().count();
        if author_chars > MAX_AUTHOR_CHARS {
            return Err(InvalidPost::AuthorTooLong(author_chars));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(InvalidPost::BodyTooLarge(self.body.len()));
        }
        Ok(())
    }
}

/// A new post made from valid input: a fresh time-ordered id and both timestamps now.
#[must_use]
pub fn new_post(input: PostInput) -> Post {
    let now = now_rfc3339();
    Post {
        id: uuid::Uuid::now_v7().to_string(),
        title: input.title,
        author: input.author,
        body: input.body,
        created_at: now.clone(),
        updated_at: now,
    }
}

/// The current time as RFC 3339 with millisecond precision, in UTC.
#[must_use]
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// A post id is a UUID; anything else cannot name a post, so it is refused before the store.
#[must_use]
pub fn is_valid_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(title: &str, author: &str, body: &str) -> PostInput {
        PostInput { title: title.into(), author: author.into(), body: body.into() }
    }

    #[test]
    fn accepts_posts_at_the_limits() {
        let post = input(&"é".repeat(MAX_TITLE_CHARS), &"a".repeat(MAX_AUTHOR_CHARS), &"b".repeat(MAX_BODY_BYTES));
        assert_eq!(post.validate(), Ok(()));
    }

    #[test]
    fn refuses_posts_over_the_limits_or_blank() {
        assert_eq!(input(&"t".repeat(201), "a", "b").validate(), Err(InvalidPost::TitleTooLong(201)));
        assert_eq!(input("t", &"a".repeat(101), "b").validate(), Err(InvalidPost::AuthorTooLong(101)));
        assert_eq!(
            input("t", "a", &"b".repeat(MAX_BODY_BYTES + 1)).validate(),
            Err(InvalidPost::BodyTooLarge(MAX_BODY_BYTES + 1))
        );
        assert_eq!(input("  ", "a", "b").validate(), Err(InvalidPost::Blank("title")));
        assert_eq!(input("t", "", "b").validate(), Err(InvalidPost::Blank("author")));
        assert_eq!(input("t", "a", "\n").validate(), Err(InvalidPost::Blank("body")));
    }

    #[test]
    fn new_ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..50).map(|_| new_post(input("t", "a", "b")).id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.iter().all(|id| is_valid_id(id)));
        assert!(!is_valid_id("not-a-uuid"));
    }
}
