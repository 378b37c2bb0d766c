//! The operator binary's command line: a value it does not know is refused before anything runs.

use std::process::Command;

#[test]
fn an_unknown_log_format_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_blog-operator"))
        .args(["--log-format", "jsno"])
        .env_remove("BLOG_OPERATOR_LOG_FORMAT")
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .expect("run blog-operator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "clap's usage error, not a later failure: {stderr}");
    assert!(stderr.contains("invalid value 'jsno' for '--log-format"), "{stderr}");
    assert!(stderr.contains("json") && stderr.contains("text"), "names the choices: {stderr}");
}

#[test]
fn without_a_boundary_or_the_explicit_opt_out_the_operator_does_not_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_blog-operator"))
        .args(["--log-format", "text"])
        .env_remove("BLOG_OPERATOR_ROLE_PERMISSIONS_BOUNDARY")
        .env_remove("BLOG_OPERATOR_ALLOW_ROLES_WITHOUT_BOUNDARY")
        .env("AWS_REGION", "us-west-1")
        .env("KUBECONFIG", blog_tests::workspace_root().join("operator/tests/cli.rs")) // not a kubeconfig
        .output()
        .expect("run blog-operator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no --role-permissions-boundary"), "{stderr}");
}
