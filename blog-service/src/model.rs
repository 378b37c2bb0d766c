//! The blog's data: posts, what a client may send, and the rules a post must follow.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest author name, in characters.
pub const MAX_AUTHOR_CHARS: usize = 100;
/// Largest post body, in bytes of UTF-8 (64 KiB).
pub const MAX_BODY_CHARS: usize = 64 * 1024;
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
#[schema(example = json!({"title": "Two variants", "author": "Ada", "body": "One blog, served twice."}))]
pub struct PostInput {
    /// 1 to 200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub title: String,
    /// 1 to 100 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub author: String,
    /// 1 to 65536 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 65536,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub body: String,
}

/// "Not blank" as a schema pattern: at least one character outside Unicode's White_Space, spelled
/// out (not `\S`), since regex engines disagree on what `\s` holds; [`char::is_whitespace`] is
/// the same set. The `#[schema]` attributes above repeat it (they take literals only); a test
/// checks the served document carries exactly this.
pub const NOT_BLANK: &str =
    "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

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
    #[error("body must be at most {MAX_BODY_CHARS} characters (got {0})")]
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
        let body_chars = self.body.chars().count();
        if body_chars > MAX_BODY_CHARS {
            return Err(InvalidPost::BodyTooLarge(body_chars));
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

/// The post's entity tag (RFC 9110): a digest of what a client sees change (title, author, body,
/// `updatedAt`), quoted. Two versions share a tag only when they hold the same content, so a write
/// conditional on it never overwrites a change the client has not seen.
#[must_use]
pub fn etag(post: &Post) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for part in [&post.title, &post.author, &post.body, &post.updated_at] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    let hex: String = digest.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether an `If-Match` value names `etag` (strong comparison: a weak `W/` tag never matches).
#[must_use]
pub fn if_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag == etag)
}

/// A post id is a UUID; anything else cannot name a post, so it is refused before the store.
#[must_use]
pub fn is_valid_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_follows_every_field_a_reader_sees_and_if_match_compares_strongly() {
        let post = new_post(input("t", "a", "b"));
        let tag = etag(&post);
        assert_eq!(tag, etag(&post.clone()), "stable");
        for changed in [
            Post { title: "t2".into(), ..post.clone() },
            Post { author: "a2".into(), ..post.clone() },
            Post { body: "b2".into(), ..post.clone() },
            Post { updated_at: "later".into(), ..post.clone() },
            // The fields are length-prefixed: moving text from one to the next changes the tag.
            Post { title: "ta".into(), author: String::new(), ..post.clone() },
        ] {
            assert_ne!(etag(&changed), tag, "{changed:?}");
        }
        assert!(if_match(&tag, &tag) && if_match("*", &tag) && if_match(&format!("\"x\", {tag}"), &tag));
        assert!(!if_match(&format!("W/{tag}"), &tag) && !if_match("\"x\"", &tag));
    }

    fn input(title: &str, author: &str, body: &str) -> PostInput {
        PostInput { title: title.into(), author: author.into(), body: body.into() }
    }

    #[test]
    fn accepts_posts_at_the_limits() {
        let post = input(&"é".repeat(MAX_TITLE_CHARS), &"a".repeat(MAX_AUTHOR_CHARS), &"b".repeat(MAX_BODY_CHARS));
        assert_eq!(post.validate(), Ok(()));
    }

    #[test]
    fn the_not_blank_pattern_names_exactly_the_characters_rust_calls_whitespace() {
        let listed: Vec<char> = ['\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{1680}']
            .into_iter()
            .chain('\u{2000}'..='\u{200a}')
            .chain(['\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}'])
            .collect();
        let whitespace: Vec<char> = (0..=0x10_FFFF).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        assert_eq!(listed, whitespace);
        for c in listed {
            let escaped = if c == ' ' { " ".to_owned() } else { format!("\\u{:04x}", u32::from(c)) };
            let named = match c {
                '\t' => "\\t",
                '\n' => "\\n",
                '\u{c}' => "\\f",
                '\r' => "\\r",
                _ => escaped.as_str(),
            };
            let in_range = ('\u{2000}'..='\u{200a}').contains(&c);
            assert!(in_range || NOT_BLANK.contains(named), "{c:?} ({named}) is missing from {NOT_BLANK}");
        }
    }

    #[test]
    fn refuses_posts_over_the_limits_or_blank() {
        assert_eq!(input(&"t".repeat(201), "a", "b").validate(), Err(InvalidPost::TitleTooLong(201)));
        assert_eq!(input("t", &"a".repeat(101), "b").validate(), Err(InvalidPost::AuthorTooLong(101)));
        assert_eq!(
            input("t", "a", &"b".repeat(MAX_BODY_CHARS + 1)).validate(),
            Err(InvalidPost::BodyTooLarge(MAX_BODY_CHARS + 1))
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
