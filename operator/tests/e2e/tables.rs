//! A retained table can be taken back: deleted with `deletionPolicy: Retain`, the table is marked
//! retained; a new BlogDeployment of the same namespace that names it adopts it with its posts,
//! while another namespace, a table still in use and an untagged table without consent are refused.

use crate::support::*;

async fn tags_of(dynamodb: &aws_sdk_dynamodb::Client, arn: &str) -> BTreeMap<String, String> {
    let out = dynamodb.list_tags_of_resource().resource_arn(arn).send().await.expect("tags");
    out.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
}

#[tokio::test]
async fn a_retained_table_is_taken_back_with_its_posts_and_only_here() {
    let (stack, client, ns, api) = setup("tables").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let other = TestNamespace::create(&client, "tables-other").await.expect("namespace");
    let elsewhere: Api<BlogDeployment> = Api::namespaced(client.clone(), &other.name);
    let operator = Operator::start(stack, &format!("{},{}", ns.name, other.name), 2).await;
    let spec = |table: Option<&str>| {
        let mut spec = json!({"image": "blog-service:1.0.0", "function": {}, "table": {"deletionPolicy": "Retain"}});
        if let Some(name) = table {
            spec["table"]["name"] = json!(name);
        }
        spec
    };

    // A first BlogDeployment writes a post, and is deleted: the table stays, marked retained.
    api.create(&PostParams::default(), &blog("first", spec(None))).await.expect("create");
    let first = wait_for(&api, "first", "Ready", ready).await;
    let arn = first.status.as_ref().and_then(|s| s.resources.table_arn.clone()).expect("table ARN");
    let table = arn.rsplit('/').next().expect("table name").to_owned();
    let post = BTreeMap::from([
        ("id".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S("p1".into())),
        ("title".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S("kept".into())),
    ]);
    aws.dynamodb.put_item().table_name(&table).set_item(Some(post.into_iter().collect())).send().await.expect("post");

    // While it is in use, another BlogDeployment of the namespace cannot take it.
    api.create(&PostParams::default(), &blog("grabber", spec(Some(&table)))).await.expect("create");
    let grabber =
        wait_for(&api, "grabber", "TableNotAdoptable", |bd| reason_of(bd, "TableReady").0 == "TableNotAdoptable").await;
    assert!(
        reason_of(&grabber, "TableReady").1.contains("in use by another BlogDeployment"),
        "{:?}",
        reason_of(&grabber, "TableReady")
    );
    api.delete("grabber", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "grabber").await;

    api.delete("first", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "first").await;
    assert_eq!(
        tags_of(&aws.dynamodb, &arn).await.get("blogs.serverless.dev/retained").map(String::as_str),
        Some("true")
    );

    // Another namespace may not take it back.
    elsewhere.create(&PostParams::default(), &blog("thief", spec(Some(&table)))).await.expect("create");
    let thief =
        wait_for(&elsewhere, "thief", "TableNotAdoptable", |bd| reason_of(bd, "TableReady").0 == "TableNotAdoptable")
            .await;
    assert!(reason_of(&thief, "TableReady").1.contains("another namespace"), "{:?}", reason_of(&thief, "TableReady"));
    elsewhere.delete("thief", &DeleteParams::default()).await.expect("delete");
    wait_gone(&elsewhere, "thief").await;

    // Re-created under the same name (a new UID), naming the table: it is taken back, posts and all.
    api.create(&PostParams::default(), &blog("first", spec(Some(&table)))).await.expect("re-create");
    let again = wait_for(&api, "first", "Ready on the kept table", ready).await;
    assert_eq!(again.status.as_ref().and_then(|s| s.resources.table_arn.as_deref()), Some(arn.as_str()));
    let tags = tags_of(&aws.dynamodb, &arn).await;
    assert_eq!(tags.get("blogs.serverless.dev/uid"), again.metadata.uid.as_ref(), "{tags:?}");
    assert!(!tags.contains_key("blogs.serverless.dev/retained"), "{tags:?}");
    let names = names_of(&again);
    let config = aws.lambda.get_function_configuration().function_name(&names.function).send().await.expect("config");
    let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(env.get("TABLE_NAME"), Some(&table), "the new function reads the kept table");
    let key = aws_sdk_dynamodb::types::AttributeValue::S("p1".into());
    let item = aws.dynamodb.get_item().table_name(&table).key("id", key).send().await.expect("get");
    assert!(item.item().is_some(), "the post is still there");

    // Naming another table now is refused: the posts are in this one.
    let patch = json!({"spec": {"table": {"name": "blog-somewhere-else"}}});
    api.patch("first", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    wait_for(&api, "first", "TableChangeRefused", |bd| reason_of(bd, "Ready").0 == "TableChangeRefused").await;
    let patch = json!({"spec": {"table": {"name": table, "deletionPolicy": "Delete"}}});
    api.patch("first", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    wait_for(&api, "first", "Ready at generation 3", |bd| ready(bd) && bd.metadata.generation == Some(3)).await;
    api.delete("first", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "first").await;
    assert!(aws.dynamodb.describe_table().table_name(&table).send().await.is_err(), "deleted with the policy Delete");

    // An untagged table is taken only with consent, and only with the blog's layout.
    let untagged = format!("blog-untagged-{}", ns.name);
    let create = aws.dynamodb.create_table().table_name(&untagged);
    blog_aws::table_schema(create).send().await.expect("untagged table");
    api.create(&PostParams::default(), &blog("mine", spec(Some(&untagged)))).await.expect("create");
    let mine =
        wait_for(&api, "mine", "TableNotAdoptable", |bd| reason_of(bd, "TableReady").0 == "TableNotAdoptable").await;
    assert!(reason_of(&mine, "TableReady").1.contains("adoptUntagged: true"), "{:?}", reason_of(&mine, "TableReady"));
    let patch = json!({"spec": {"table": {"adoptUntagged": true, "deletionPolicy": "Delete"}}});
    api.patch("mine", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    wait_for(&api, "mine", "Ready on the adopted table", ready).await;
    api.delete("mine", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "mine").await;
    operator.kill().await;
}
