//! The embedded store's read cache: posts as served (JSON and ETag), so a read of an unchanged post
//! costs neither a transaction nor an encoding. Only a store that is the sole writer of its data
//! may keep one: the writer drops what it changed once the change is durable, before it answers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::PostView;

/// The most bytes of JSON kept; past it the cache starts over.
const MAX_BYTES: usize = 16 << 20;

#[derive(Debug, Default)]
pub struct ReadCache(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Counts the writes committed: a read that began before one may hold what it replaced.
    generation: u64,
    views: HashMap<String, PostView>,
    bytes: usize,
}

impl ReadCache {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[must_use]
    pub fn get(&self, id: &str) -> Option<PostView> {
        self.inner().views.get(id).cloned()
    }

    /// To be taken before a read whose result may be kept.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.inner().generation
    }

    /// Keeps `view`, read after `generation` was taken, unless a write committed since: the read
    /// may have seen the post before that write.
    pub fn keep(&self, id: &str, view: PostView, generation: u64) {
        let mut inner = self.inner();
        if inner.generation != generation {
            return;
        }
        if inner.bytes + view.size() > MAX_BYTES {
            inner.views.clear();
            inner.bytes = 0;
        }
        inner.bytes += view.size();
        if let Some(old) = inner.views.insert(id.to_owned(), view) {
            inner.bytes -= old.size();
        }
    }

    /// Forgets the posts a committed write changed.
    pub fn written<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.inner();
        inner.generation += 1;
        for id in ids {
            if let Some(old) = inner.views.remove(id) {
                inner.bytes -= old.size();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(json: &str) -> PostView {
        PostView { json: json.to_owned().into(), etag: axum::http::HeaderValue::from_static("\"e\"") }
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = ReadCache::default();
        let before = cache.generation();
        cache.written(["a"]);
        cache.keep("a", view("old"), before);
        assert!(cache.get("a").is_none(), "read before the write committed");
        cache.keep("a", view("new"), cache.generation());
        assert_eq!(cache.get("a").map(|v| v.json), Some("new".into()));
        cache.written(["a"]);
        assert!(cache.get("a").is_none(), "a write forgets it");
    }
}
