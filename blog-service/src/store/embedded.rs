//! The embedded store: posts in a redb file on local disk, kept across restarts. Writes go to one
//! writer thread that commits every write waiting at that moment in one durable transaction (group
//! commit): a write is acknowledged only once its commit is on disk, and concurrent writes share
//! one fsync instead of queueing for one each.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::cache::ReadCache;
use super::{Cursor, Edit, PostView, Store, StoreError, StoreResult, page_of};
use crate::model::{Post, PostPage};

/// Post id → the post as JSON. Ids are UUIDv7 text, so key order is creation order.
const POSTS: TableDefinition<'_, &str, &str> = TableDefinition::new("posts");

/// Most writes one transaction takes: bounds the latency a write waits behind others.
const MAX_BATCH: usize = 512;

/// A redb database file. Reads run on the blocking pool (redb's API is synchronous), unless the
/// post is in the read cache; writes go to the writer thread.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: Arc<Writer>,
    cache: Arc<ReadCache>,
}

/// The writer thread's queue; dropping the last clone of the store stops the thread and waits for
/// it, so the file is closed when the store is gone (a reopen right after must find it free).
struct Writer {
    queue: Option<mpsc::UnboundedSender<Pending>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One write and where its outcome goes once the transaction holding it is committed.
struct Pending {
    write: Write,
    reply: oneshot::Sender<StoreResult<Option<Post>>>,
}

/// A write, owning what it writes.
enum Write {
    Create(Post),
    Replace { id: String, edit: OwnedEdit, unchanged: Option<Post> },
    Delete { id: String, unchanged: Option<Post> },
}

impl Write {
    fn id(&self) -> &str {
        match self {
            Self::Create(post) => &post.id,
            Self::Replace { id, .. } | Self::Delete { id, .. } => id,
        }
    }
}

struct OwnedEdit {
    title: String,
    author: String,
    body: String,
    updated_at: String,
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
        let db = Arc::new(db);
        let (sender, queue) = mpsc::unbounded_channel();
        let for_writer = Arc::clone(&db);
        let cache = Arc::new(ReadCache::default());
        let written = Arc::clone(&cache);
        let thread = std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || write_loop(&for_writer, &written, queue))
            .map_err(|e| backend(format!("starting the writer: {e}")))?;
        let writer = Arc::new(Writer { queue: Some(sender), thread: Some(thread) });
        Ok(Self { db, writer, cache })
    }

    /// Hands a write to the writer thread; the answer comes once its transaction is durable.
    async fn write(&self, write: Write) -> StoreResult<Option<Post>> {
        let (reply, answer) = oneshot::channel();
        let queue = self.writer.queue.as_ref().ok_or_else(|| backend("the store writer stopped"))?;
        queue.send(Pending { write, reply }).map_err(|_| backend("the store writer stopped"))?;
        answer.await.map_err(|_| backend("the store writer stopped"))?
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db)).await.map_err(|e| backend(format!("store task failed: {e}")))?
    }
}

/// The writer thread: takes every write waiting (up to [`MAX_BATCH`]), applies them in order in one
/// transaction, commits once, then answers each. A write that fails its own check (not found,
/// changed, taken) changes nothing and does not stop the others; a failed commit fails them all.
/// Ends when the store (every sender) is dropped.
fn write_loop(db: &Arc<Database>, cache: &ReadCache, mut queue: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let outcomes = commit_batch(db, &batch);
        // Before any answer: a reader told "written" must not be served the post as it was.
        cache.written(batch.iter().map(|p| p.write.id()));
        for (pending, outcome) in batch.into_iter().zip(outcomes) {
            // A caller that went away (a dropped request) needs no answer.
            let _ = pending.reply.send(outcome);
        }
    }
}

/// Applies `batch` in one transaction; each write's outcome, all failed if the commit fails.
fn commit_batch(db: &Database, batch: &[Pending]) -> Vec<StoreResult<Option<Post>>> {
    let failed_all = |e: String| batch.iter().map(|_| Err(backend(&e))).collect();
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return failed_all(e.to_string()),
    };
    let outcomes: Vec<_> = match txn.open_table(POSTS) {
        Ok(mut table) => batch.iter().map(|p| apply(&mut table, &p.write)).collect(),
        Err(e) => return failed_all(e.to_string()),
    };
    match txn.commit() {
        Ok(()) => outcomes,
        Err(e) => failed_all(e.to_string()),
    }
}

/// One write inside the open transaction: every check before any change, so a refused write
/// leaves nothing behind.
fn apply(table: &mut Table<'_, &str, &str>, write: &Write) -> StoreResult<Option<Post>> {
    let stored = |table: &Table<'_, &str, &str>, id: &str| -> StoreResult<Option<Post>> {
        table.get(id).map_err(backend)?.map(|json| decode(json.value())).transpose()
    };
    match write {
        Write::Create(post) => {
            if stored(table, &post.id)?.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            table.insert(post.id.as_str(), encode(post)?.as_str()).map_err(backend)?;
            Ok(None)
        }
        Write::Replace { id, edit, unchanged } => {
            let mut post = stored(table, id)?.ok_or(StoreError::NotFound)?;
            if unchanged.as_ref().is_some_and(|seen| *seen != post) {
                return Err(StoreError::Changed);
            }
            post.title.clone_from(&edit.title);
            post.author.clone_from(&edit.author);
            post.body.clone_from(&edit.body);
            post.updated_at.clone_from(&edit.updated_at);
            table.insert(id.as_str(), encode(&post)?.as_str()).map_err(backend)?;
            Ok(Some(post))
        }
        Write::Delete { id, unchanged } => {
            let post = stored(table, id)?.ok_or(StoreError::NotFound)?;
            if unchanged.as_ref().is_some_and(|seen| *seen != post) {
                return Err(StoreError::Changed);
            }
            table.remove(id.as_str()).map_err(backend)?;
            Ok(None)
        }
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
        self.write(Write::Create(post.clone())).await.map(drop)
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

    async fn get_view(&self, id: &str) -> StoreResult<Option<PostView>> {
        if let Some(view) = self.cache.get(id) {
            return Ok(Some(view));
        }
        let generation = self.cache.generation();
        let Some(post) = self.get(id).await? else { return Ok(None) };
        let view = PostView::of(&post)?;
        self.cache.keep(id, view.clone(), generation);
        Ok(Some(view))
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
        let edit = OwnedEdit {
            title: edit.title.to_owned(),
            author: edit.author.to_owned(),
            body: edit.body.to_owned(),
            updated_at: edit.updated_at.to_owned(),
        };
        let write = Write::Replace { id: id.to_owned(), edit, unchanged: unchanged.cloned() };
        self.write(write).await?.ok_or_else(|| backend("a replace answered without the post"))
    }

    async fn delete(&self, id: &str, unchanged: Option<&Post>) -> StoreResult<()> {
        self.write(Write::Delete { id: id.to_owned(), unchanged: unchanged.cloned() }).await.map(drop)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|db| db.begin_read().map(drop).map_err(backend)).await
    }
}
