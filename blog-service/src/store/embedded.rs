//! The embedded store: posts in a redb file on local disk, kept across restarts.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Cursor, Edit, Store, StoreError, StoreResult, page_of};
use crate::model::{Post, PostPage};

/// Post id → the post as JSON. Ids are UUIDv7 text, so key order is creation order.
const POSTS: TableDefinition<'_, &str, &str> = TableDefinition::new("posts");

/// A redb database file; every call runs on the blocking pool, as redb's API is synchronous.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/blog.redb`.
    ///
    /// # Errors
    /// When the folder cannot be made or the file cannot be opened (for example, another process
    /// holds it).
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("blog.redb");
        let db = Database::create(&path).map_err(|e| backend(format!("opening {}: {e}", path.display())))?;
        // Make the table exist so reads on an empty store succeed.
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(POSTS).map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db)).await.map_err(|e| backend(format!("store task failed: {e}")))?
    }
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

fn decode(json: &str) -> StoreResult<Post> {
    serde_json::from_str(json).map_err(|e| backend(format!("corrupt post record: {e}")))
}

fn encode(post: &Post) -> StoreResult<String> {
    serde_json::to_string(post).map_err(backend)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn create(&self, post: &Post) -> StoreResult<()> {
        let post = post.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut table = txn.open_table(POSTS).map_err(backend)?;
                if table.get(post.id.as_str()).map_err(backend)?.is_some() {
                    return Err(StoreError::AlreadyExists);
                }
                table.insert(post.id.as_str(), encode(&post)?.as_str()).map_err(backend)?;
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Post>> {
        let id = id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(POSTS).map_err(backend)?;
            let found = table.get(id.as_str()).map_err(backend)?;
            found.map(|json| decode(json.value())).transpose()
        })
        .await
    }

    async fn list(&self, limit: usize, cursor: Option<&Cursor>) -> StoreResult<PostPage> {
        let after = cursor.map(|c| c.after_id.clone());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(POSTS).map_err(backend)?;
            let range = match after.as_deref() {
                Some(after) => table.range(..after),
                None => table.range::<&str>(..),
            }
            .map_err(backend)?;
            let mut posts = Vec::with_capacity(limit + 1);
            for entry in range.rev().take(limit + 1) {
                let (_, json) = entry.map_err(backend)?;
                posts.push(decode(json.value())?);
            }
            Ok(page_of(posts, limit))
        })
        .await
    }

    async fn replace(&self, id: &str, edit: &Edit<'_>, unchanged: Option<&Post>) -> StoreResult<Post> {
        let (id, title, author, body, updated_at) = (
            id.to_owned(),
            edit.title.to_owned(),
            edit.author.to_owned(),
            edit.body.to_owned(),
            edit.updated_at.to_owned(),
        );
        let unchanged = unchanged.cloned();
        self.blocking(move |db| {
            // One write transaction: redb serializes writers, so the read-check-write is atomic.
            let txn = db.begin_write().map_err(backend)?;
            let post = {
                let mut table = txn.open_table(POSTS).map_err(backend)?;
                let existing = table.get(id.as_str()).map_err(backend)?.map(|json| decode(json.value()));
                let mut post = existing.ok_or(StoreError::NotFound)??;
                if unchanged.as_ref().is_some_and(|seen| *seen != post) {
                    return Err(StoreError::Changed);
                }
                post.title = title;
                post.author = author;
                post.body = body;
                post.updated_at = updated_at;
                table.insert(id.as_str(), encode(&post)?.as_str()).map_err(backend)?;
                post
            };
            txn.commit().map_err(backend)?;
            Ok(post)
        })
        .await
    }

    async fn delete(&self, id: &str, unchanged: Option<&Post>) -> StoreResult<()> {
        let (id, unchanged) = (id.to_owned(), unchanged.cloned());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut table = txn.open_table(POSTS).map_err(backend)?;
                let existing = table.get(id.as_str()).map_err(backend)?.map(|json| decode(json.value()));
                let post = existing.ok_or(StoreError::NotFound)??;
                if unchanged.is_some_and(|seen| seen != post) {
                    return Err(StoreError::Changed);
                }
                table.remove(id.as_str()).map_err(backend)?;
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|db| db.begin_read().map(drop).map_err(backend)).await
    }
}
