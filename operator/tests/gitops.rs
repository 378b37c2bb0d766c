//! The Argo CD health check (`manifests/gitops/blogdeployment-health.lua`) run by a real Lua
//! interpreter (Debian's lua5.4) against BlogDeployment status fixtures.

use std::process::Command;

use serde_json::{Value, json};

fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields.iter().map(|(k, v)| format!("[{k:?}] = {}", lua_literal(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `(status, message)` the health check gives for `object`.
fn health(object: &Value) -> (String, String) {
    let root = blog_tests::workspace_root();
    let lua = blog_tests::tool("lua");
    let script = root.join("manifests/gitops/blogdeployment-health.lua");
    let program = format!(
        "obj = {}\nlocal hs = dofile({:?})\nio.write(hs.status, \"\\t\", hs.message or \"\")",
        lua_literal(object),
        script.display().to_string()
    );
    let out = Command::new(lua).arg("-e").arg(program).output().expect("run lua");
    assert!(out.status.success(), "lua failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (status, message) = text.split_once('\t').expect("status and message");
    (status.to_owned(), message.to_owned())
}

fn blog(generation: i64, observed: Option<i64>, ready: Option<(&str, &str, &str)>) -> Value {
    let mut object = json!({"apiVersion": "blogs.serverless.dev/v1alpha1", "kind": "BlogDeployment",
        "metadata": {"name": "demo", "namespace": "blogs", "generation": generation}});
    if let Some((status, reason, message)) = ready {
        object["status"] = json!({
            "observedGeneration": observed,
            "conditions": [
                {"type": "TableReady", "status": "True", "reason": "Active", "message": "table is ACTIVE"},
                {"type": "Ready", "status": status, "reason": reason, "message": message}
            ]
        });
    }
    object
}

#[test]
fn healthy_when_ready_for_the_current_generation() {
    let (status, message) = health(&blog(3, Some(3), Some(("True", "Reconciled", "every enabled variant is ready"))));
    assert_eq!(status, "Healthy");
    assert_eq!(message, "Reconciled: every enabled variant is ready");
}

#[test]
fn progressing_without_status_for_an_old_generation_or_while_aws_works() {
    assert_eq!(health(&blog(1, None, None)).0, "Progressing");
    let (status, message) = health(&blog(4, Some(3), Some(("True", "Reconciled", "ready"))));
    assert_eq!((status.as_str(), message.as_str()), ("Progressing", "The operator has not yet seen generation 4"));
    assert_eq!(health(&blog(2, Some(2), Some(("False", "Progressing", "function: updating")))).0, "Progressing");
    assert_eq!(health(&blog(2, Some(2), Some(("False", "Creating", "table is CREATING")))).0, "Progressing");
    let canary = ("False", "RollingOut", "version 8 at 10 % (step 1/1), stable 7");
    assert_eq!(health(&blog(2, Some(2), Some(canary))).0, "Progressing");
}

#[test]
fn degraded_with_the_operators_reason() {
    let (status, message) =
        health(&blog(2, Some(2), Some(("False", "InvalidSpec", "spec.image is not an image reference"))));
    assert_eq!((status.as_str(), message.as_str()), ("Degraded", "InvalidSpec: spec.image is not an image reference"));
    assert_eq!(health(&blog(2, Some(2), Some(("False", "AccessDenied", "iam CreateRole failed")))).0, "Degraded");
    assert_eq!(health(&blog(2, Some(2), Some(("False", "RolloutFailed", "rolled back")))).0, "Degraded");
    let held = ("False", "RolloutPaused", "paused by annotation at 40 % (step 1/2)");
    assert_eq!(health(&blog(2, Some(2), Some(held))).0, "Suspended");
    let paused = ("False", "Paused", "paused: drift not repaired (lambda UpdateFunctionConfiguration would change it)");
    assert_eq!(health(&blog(2, Some(2), Some(paused))).0, "Suspended");
    let rolled_back = ("False", "RolledBack", "version 8 rolled back to 7: 2 failed verdicts in a row");
    assert_eq!(health(&blog(2, Some(2), Some(rolled_back))).0, "Degraded");
}

#[test]
fn the_argocd_config_map_embeds_the_tested_script() {
    let root = blog_tests::workspace_root();
    let script = std::fs::read_to_string(root.join("manifests/gitops/blogdeployment-health.lua")).expect("lua");
    let application = std::fs::read_to_string(root.join("manifests/gitops/argocd-application.yaml")).expect("yaml");
    let embedded: String = application
        .split("resource.customizations.health.blogs.serverless.dev_BlogDeployment: |\n")
        .nth(1)
        .expect("the health key")
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(embedded, script, "argocd-application.yaml embeds a different health script");
}
