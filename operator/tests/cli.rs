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

/// `scripts/render-iam.sh` as a platform runs it on its chart values: the policies it writes are
/// the shipped ones narrowed to the values' host suffixes and regions.
#[test]
fn the_iam_policies_are_rendered_from_the_charts_values() {
    let dir = std::env::temp_dir().join(blog_tests::unique_name("render-iam"));
    let values = dir.join("values.yaml");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        &values,
        "tenantPolicy:\n  allowedRegions: [eu-west-1]\n  domains: {allowedZones: ['*'], hostSuffixes: ['${namespace}.blogs.example.com']}\n",
    )
    .expect("values");
    let out = Command::new("bash")
        .arg(blog_tests::workspace_root().join("scripts/render-iam.sh"))
        .arg(&dir)
        .args(["-f".as_ref(), values.as_os_str()])
        .env("BLOG_OPERATOR_BIN", env!("CARGO_BIN_EXE_blog-operator"))
        .output()
        .expect("run scripts/render-iam.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |file: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect(file)).expect("JSON")
    };
    let operator = read("operator-policy.json").to_string();
    assert!(
        operator.contains(
            r#""route53:ChangeResourceRecordSetsNormalizedRecordNames":["*.*.blogs.example.com","*.blogs.example.com"]"#
        ),
        "{operator}"
    );
    assert!(operator.contains(r#""aws:RequestedRegion":["eu-west-1"]"#), "{operator}");
    assert!(read("role-boundary.json").to_string().contains(r#""aws:RequestedRegion":["eu-west-1"]"#));
}
