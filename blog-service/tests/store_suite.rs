//! One store test suite, run against both backends: the embedded store on a temporary folder, and
//! DynamoDB on the moto AWS emulator (started by the test set-up; a failure to start fails the test).

use std::sync::Arc;

use blog_service::model::{Post, PostInput, new_post};
use blog_service::store::{Cursor, DynamoStore, Edit, EmbeddedStore, Store, StoreError, dynamo};
use blog_tests::{Moto, unique_name};

fn edit<'a>(title: &'a str, author: &'a str, body: &'a str, updated_at: &'a str) -> Edit<'a> {
    Edit { title, author, body, updated_at }
}

fn input(title: &str) -> PostInput {
    PostInput { title: title.into(), author: "ada".into(), body: format!("body of {title}") }
}

async fn create_n(store: &dyn Store, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let post = new_post(input(&format!("post {i}")));
        store.create(&post).await.expect("create");
        ids.push(post.id);
    }
    ids
}

async fn create_get_and_never_overwrite(store: Arc<dyn Store>) {
    let post = new_post(input("hello <world>"));
    store.create(&post).await.expect("create");
    assert_eq!(store.get(&post.id).await.expect("get"), Some(post.clone()));
    assert_eq!(store.get(&uuid::Uuid::now_v7().to_string()).await.expect("get missing"), None);
    let mut clash = new_post(input("other"));
    clash.id = post.id.clone();
    assert!(matches!(store.create(&clash).await, Err(StoreError::AlreadyExists)));
    assert_eq!(store.get(&post.id).await.expect("get").map(|p| p.title), Some("hello <world>".into()));
}

async fn lists_newest_first_in_pages(store: Arc<dyn Store>) {
    let empty = store.list(10, None).await.expect("list empty");
    assert!(empty.items.is_empty() && empty.next.is_none());

    let mut ids = create_n(&*store, 5).await;
    ids.reverse(); // newest first
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = store.list(2, cursor.as_ref()).await.expect("list");
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|p| p.id.clone()));
        match page.next {
            Some(next) => cursor = Some(Cursor::decode(&next).expect("cursor the store made")),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every post once, newest first");
    assert_eq!(pages, 3, "5 posts in pages of 2: the last page says there is no next");

    let exact = store.list(5, None).await.expect("list all");
    assert_eq!(exact.items.len(), 5);
    assert!(exact.next.is_none(), "a full last page has no next cursor");
}

async fn replace_only_existing(store: Arc<dyn Store>) {
    let post = new_post(input("draft"));
    store.create(&post).await.expect("create");
    let replaced = store
        .replace(&post.id, &edit("final", "grace", "new body", "2030-01-01T00:00:00.000Z"), None)
        .await
        .expect("replace");
    assert_eq!(
        (replaced.title.as_str(), replaced.author.as_str(), replaced.body.as_str()),
        ("final", "grace", "new body")
    );
    assert_eq!(replaced.created_at, post.created_at, "creation time is kept");
    assert_eq!(replaced.updated_at, "2030-01-01T00:00:00.000Z");
    assert_eq!(store.get(&post.id).await.expect("get"), Some(replaced));

    let missing = uuid::Uuid::now_v7().to_string();
    assert!(matches!(store.replace(&missing, &edit("t", "a", "b", "now"), None).await, Err(StoreError::NotFound)));
    assert_eq!(store.get(&missing).await.expect("get"), None, "replace never creates");
}

/// The post as served (a store may keep it between reads) follows every acknowledged write.
async fn the_served_post_follows_every_write(store: Arc<dyn Store>) {
    let served = |store: Arc<dyn Store>, id: String| async move {
        store.get_view(&id).await.expect("get_view").map(|v| serde_json::from_slice::<Post>(&v.json).expect("json"))
    };
    let post = new_post(input("first"));
    store.create(&post).await.expect("create");
    assert_eq!(served(store.clone(), post.id.clone()).await, Some(post.clone()));
    assert_eq!(served(store.clone(), post.id.clone()).await, Some(post.clone()), "read twice");
    let replaced = store.replace(&post.id, &edit("second", "a", "b", "2031-01-01T00:00:00.000Z"), None).await;
    let replaced = replaced.expect("replace");
    let view = store.get_view(&post.id).await.expect("get_view").expect("view");
    assert_eq!(view.etag.to_str().ok(), Some(blog_service::model::etag(&replaced).as_str()));
    assert_eq!(served(store.clone(), post.id.clone()).await, Some(replaced));
    store.delete(&post.id, None).await.expect("delete");
    assert_eq!(served(store.clone(), post.id.clone()).await, None);
}

async fn delete_only_existing(store: Arc<dyn Store>) {
    let post = new_post(input("doomed"));
    store.create(&post).await.expect("create");
    store.delete(&post.id, None).await.expect("delete");
    assert_eq!(store.get(&post.id).await.expect("get"), None);
    assert!(matches!(store.delete(&post.id, None).await, Err(StoreError::NotFound)));
    assert!(matches!(store.replace(&post.id, &edit("t", "a", "b", "now"), None).await, Err(StoreError::NotFound)));
}

async fn conditional_writes_act_only_on_the_version_seen(store: Arc<dyn Store>) {
    let post = new_post(input("v1"));
    store.create(&post).await.expect("create");
    let v2 = store.replace(&post.id, &edit("v2", "a", "b", "t2"), Some(&post)).await.expect("the version seen");
    let stale = store.replace(&post.id, &edit("v3", "a", "b", "t3"), Some(&post)).await;
    assert!(matches!(stale, Err(StoreError::Changed)), "a write on a stale version: {stale:?}");
    assert!(matches!(store.delete(&post.id, Some(&post)).await, Err(StoreError::Changed)));
    assert_eq!(store.get(&post.id).await.expect("get"), Some(v2.clone()), "neither stale write acted");
    store.delete(&post.id, Some(&v2)).await.expect("delete the version seen");
    let gone = store.replace(&post.id, &edit("v4", "a", "b", "t4"), Some(&v2)).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
}

/// Many clients, each reading the post and writing it back with its own mark appended, through the
/// HTTP API with `If-Match`; a 412 makes a client read again. Every write the API acknowledged must
/// be in the final post: no lost update that was not reported as a conflict.
async fn concurrent_conditional_writes_lose_no_update(store: Arc<dyn Store>) {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let router = blog_service::app(blog_service::AppState::new(store.clone(), Arc::default()));
    let post = new_post(input("shared"));
    store.create(&post).await.expect("create");
    let uri = format!("/blogs/{}", post.id);
    let clients = (0..12).map(|client| {
        let (router, uri) = (router.clone(), uri.clone());
        tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let read = router.clone().oneshot(Request::get(&uri).body(Body::empty()).expect("GET")).await;
                let read = read.expect("infallible");
                let etag = read.headers()[header::ETAG].to_str().expect("ETag").to_owned();
                let seen: serde_json::Value =
                    serde_json::from_slice(&read.into_body().collect().await.expect("body").to_bytes()).expect("JSON");
                let body = format!("{} [{client}]", seen["body"].as_str().expect("body"));
                let put = Request::put(&uri)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::IF_MATCH, &etag)
                    .body(Body::from(
                        serde_json::json!({"title": "shared", "author": "many", "body": body}).to_string(),
                    ))
                    .expect("PUT");
                match router.clone().oneshot(put).await.expect("infallible").status() {
                    StatusCode::OK => return conflicts,
                    StatusCode::PRECONDITION_FAILED => conflicts += 1,
                    other => panic!("client {client}: {other}"),
                }
            }
        })
    });
    let mut conflicts = 0;
    for client in clients.collect::<Vec<_>>() {
        conflicts += client.await.expect("client");
    }
    let last = store.get(&post.id).await.expect("get").expect("post");
    for client in 0..12 {
        assert_eq!(last.body.matches(&format!(" [{client}]")).count(), 1, "client {client}'s update: {}", last.body);
    }
    eprintln!("12 acknowledged updates, all kept; {conflicts} conflicts reported as 412");
}

async fn large_posts_page_fully(store: Arc<dyn Store>) {
    // 20 posts of 60 KiB exceed DynamoDB's 1 MB query page: the store must keep reading.
    for i in 0..20 {
        let mut post = new_post(input(&format!("big {i}")));
        post.body = "x".repeat(60 * 1024);
        store.create(&post).await.expect("create big");
    }
    let page = store.list(20, None).await.expect("list");
    assert_eq!(page.items.len(), 20);
    assert!(page.next.is_none());
    let shorter = store.list(19, None).await.expect("list");
    assert_eq!(shorter.items.len(), 19);
    assert!(shorter.next.is_some());
}

async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}

fn embedded() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    (Arc::new(EmbeddedStore::open(dir.path()).expect("open")), dir)
}

/// A fresh table of the blog's layout on the emulator, reached through the realism layer, which
/// applies each item write atomically as DynamoDB does (the emulator's threads can let two
/// conditional writes of one item both pass: one test in five lost an update without it).
async fn dynamodb() -> Arc<dyn Store> {
    static REALISM: std::sync::OnceLock<blog_tests::Realism> = std::sync::OnceLock::new();
    let moto = Moto::shared();
    let realism = REALISM
        .get_or_init(|| blog_tests::Realism::start(&moto.endpoint, &serde_json::json!({})).expect("realism layer"));
    let client = aws_sdk_dynamodb::Client::new(&blog_tests::sdk_config_for(&realism.endpoint).await);
    let table = unique_name("blog-test");
    dynamo::table_schema(client.create_table().table_name(&table)).send().await.expect("create table on the emulator");
    Arc::new(DynamoStore::new(client, table))
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod embedded_store {
            $(#[tokio::test] async fn $case() { let (store, _dir) = super::embedded(); super::$case(store).await; })*
        }
        mod dynamodb_store {
            $(#[tokio::test] async fn $case() { super::$case(super::dynamodb().await).await; })*
        }
    };
}

suite!(
    create_get_and_never_overwrite,
    lists_newest_first_in_pages,
    replace_only_existing,
    the_served_post_follows_every_write,
    delete_only_existing,
    conditional_writes_act_only_on_the_version_seen,
    concurrent_conditional_writes_lose_no_update,
    large_posts_page_fully,
    ping_answers,
);

#[tokio::test]
async fn embedded_store_keeps_posts_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let post = new_post(input("durable"));
    {
        let store = EmbeddedStore::open(dir.path()).expect("open");
        store.create(&post).await.expect("create");
    }
    let reopened = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(reopened.get(&post.id).await.expect("get"), Some(post));
}

#[tokio::test]
async fn dynamodb_ping_fails_for_a_missing_table() {
    let moto = Moto::shared();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = DynamoStore::new(client, unique_name("no-such-table"));
    assert!(matches!(store.ping().await, Err(StoreError::Backend(_))));
}

/// `writes: Home`: the store reads its own region's table and sends every write, and the check of
/// a refused write, to the home region's table of the same name (which replicates on AWS; the
/// emulator does not, so the two tables show where each call went).
#[tokio::test]
async fn dynamodb_writes_go_to_the_home_region_and_reads_stay_local() {
    let moto = Moto::shared();
    let config = moto.sdk_config().await;
    let in_region = |region: &str| {
        let conf = aws_sdk_dynamodb::config::Builder::from(&config)
            .region(aws_sdk_dynamodb::config::Region::new(region.to_owned()))
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    };
    let (local, home) = (in_region("eu-central-1"), in_region("us-east-1"));
    let table = unique_name("blog-home-writes");
    for client in [&local, &home] {
        dynamo::table_schema(client.create_table().table_name(&table)).send().await.expect("create table");
    }
    let store = DynamoStore::new(local.clone(), &table).writing_to(home.clone());
    let post = new_post(input("written at home"));
    store.create(&post).await.expect("create");
    let at_home = DynamoStore::new(home, &table);
    assert_eq!(at_home.get(&post.id).await.expect("get at home"), Some(post.clone()), "the write went home");
    assert_eq!(store.get(&post.id).await.expect("get here"), None, "reads stay on this region's replica");
    // A conditional write refused at home is explained from home, where the post is.
    let stale = Post { title: "not what home holds".into(), ..post.clone() };
    let refused = store.replace(&post.id, &edit("t", "a", "b", "2026-01-01T00:00:00Z"), Some(&stale)).await;
    assert!(matches!(refused, Err(StoreError::Changed)), "{refused:?}");
}
