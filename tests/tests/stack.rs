//! The local stack is real: a CRD is installed, objects are created, watched, refused by the
//! schema and given status through the status subresource, and DynamoDB tables are made on the
//! emulator.

use std::time::Duration;

use blog_tests::{Stack, TestNamespace, unique_name};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

const GROUP: &str = "stack-test.blogs.serverless.dev";

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}}
                        },
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
                    }
                }}
            }]
        }
    }))
    .expect("a valid CRD")
}

/// Installs the test CRD (already there is fine: test binaries share a stack) and waits until
/// the API server serves it.
async fn install_widget_crd(client: &kube::Client) -> ApiResource {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.create(&PostParams::default(), &widget_crd()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("creating the CRD: {err}"),
    }
    let name = format!("widgets.{GROUP}");
    tokio::time::timeout(Duration::from_secs(30), await_condition(crds, &name, conditions::is_crd_established()))
        .await
        .expect("CRD established within 30 s")
        .expect("watching the CRD");
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", "Widget"), "widgets")
}

fn widget(name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size}
    }))
    .expect("a valid object")
}

#[tokio::test]
async fn crd_objects_are_created_watched_and_get_status() {
    let stack = Stack::shared();
    let _logs = stack.logs_on_failure();
    let client = stack.client().await.expect("client");
    let resource = install_widget_crd(&client).await;
    let ns = TestNamespace::create(&client, "stack").await.expect("namespace");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);

    // Start watching before creating, as a controller would.
    let mut events = watcher(widgets.clone(), watcher::Config::default()).applied_objects().boxed();
    widgets.create(&PostParams::default(), &widget("first", 3)).await.expect("create");
    let seen = tokio::time::timeout(Duration::from_secs(20), events.try_next())
        .await
        .expect("the watch delivers the object within 20 s")
        .expect("watch stream")
        .expect("an object");
    assert_eq!(seen.metadata.name.as_deref(), Some("first"));
    assert_eq!(seen.data["spec"]["size"], 3);

    let patch = Patch::Merge(json!({"status": {"phase": "Ready"}}));
    widgets.patch_status("first", &PatchParams::default(), &patch).await.expect("patch status");
    let stored = widgets.get("first").await.expect("get");
    assert_eq!(stored.data["status"]["phase"], "Ready");
    assert_eq!(stored.data["spec"]["size"], 3, "the status patch leaves the spec alone");

    // The status subresource ignores spec changes and the main resource ignores status changes.
    let sneaky = Patch::Merge(json!({"spec": {"size": 9}, "status": {"phase": "Sneaky"}}));
    widgets.patch("first", &PatchParams::default(), &sneaky).await.expect("patch main resource");
    let stored = widgets.get("first").await.expect("get");
    assert_eq!(
        (stored.data["spec"]["size"].as_i64(), stored.data["status"]["phase"].as_str()),
        (Some(9), Some("Ready"))
    );

    ns.delete(&client).await.expect("delete namespace");
}

#[tokio::test]
async fn the_schema_refuses_invalid_objects() {
    let stack = Stack::shared();
    let _logs = stack.logs_on_failure();
    let client = stack.client().await.expect("client");
    let resource = install_widget_crd(&client).await;
    let ns = TestNamespace::create(&client, "schema").await.expect("namespace");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);

    for (name, size) in [("too-small", 0), ("too-big", 11)] {
        match widgets.create(&PostParams::default(), &widget(name, size)).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{status:?}");
                assert!(status.message.contains("spec.size"), "the refusal names the field: {}", status.message);
            }
            other => panic!("size {size} should be refused by the schema, got {other:?}"),
        }
    }
    let mut missing = widget("no-size", 1);
    missing.data["spec"] = json!({});
    assert!(
        matches!(widgets.create(&PostParams::default(), &missing).await, Err(kube::Error::Api(s)) if s.code == 422)
    );
    assert!(widgets.list(&Default::default()).await.expect("list").items.is_empty(), "nothing invalid was stored");

    ns.delete(&client).await.expect("delete namespace");
}

#[tokio::test]
async fn dynamodb_tables_are_made_on_the_emulator() {
    let stack = Stack::shared();
    let _logs = stack.logs_on_failure();
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk_config().await);
    let table = unique_name("stack-table");
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    dynamodb
        .create_table()
        .table_name(&table)
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("key"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    let described = dynamodb.describe_table().table_name(&table).send().await.expect("describe table");
    let description = described.table().expect("table description");
    assert_eq!(description.table_name(), Some(table.as_str()));
    assert!(description.table_arn().is_some_and(|arn| arn.starts_with("arn:aws:dynamodb:us-west-1:")));
    // Every page: on a stack other tests share, the table may be past the first 100 names.
    let mut pages = dynamodb.list_tables().into_paginator().send();
    let mut listed = Vec::new();
    while let Some(page) = pages.next().await {
        listed.extend(page.expect("list tables").table_names().iter().cloned());
    }
    assert!(listed.contains(&table), "{table} among {} tables", listed.len());

    dynamodb.delete_table().table_name(&table).send().await.expect("delete table");
    let gone = dynamodb.describe_table().table_name(&table).send().await;
    assert!(gone.is_err_and(|e| e.into_service_error().is_resource_not_found_exception()));
}
