//! Generated files are exactly what the code generates: the CRD (`cargo run -p blog-operator --bin
//! crdgen > crds/blogdeployments.blogs.serverless.dev.yaml`) and the book's reference pages
//! (`cargo run -p blog-operator --bin docgen`).

#[test]
fn checked_in_crd_matches_the_types() {
    let path = blog_tests::workspace_root().join("crds/blogdeployments.blogs.serverless.dev.yaml");
    let checked_in = std::fs::read_to_string(&path).expect("crds/ holds the CRD");
    let generated = blog_operator::crd_yaml().expect("CRD serializes");
    assert!(
        checked_in == generated,
        "crds/blogdeployments.blogs.serverless.dev.yaml is stale: regenerate it with \
         `cargo run -p blog-operator --bin crdgen > crds/blogdeployments.blogs.serverless.dev.yaml`"
    );
}

#[test]
fn checked_in_reference_pages_match_the_code() {
    let dir = blog_tests::workspace_root().join(blog_operator::reference::DIR);
    for (file, generated) in blog_operator::reference::pages().expect("pages generate") {
        let checked_in = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{}/{file} is stale: regenerate it with `cargo run -p blog-operator --bin docgen`",
            blog_operator::reference::DIR
        );
    }
}

#[test]
fn the_troubleshooting_guide_says_what_to_do_about_every_reason() {
    let guide = std::fs::read_to_string(blog_tests::workspace_root().join("docs/src/guides/troubleshooting.md"))
        .expect("the book's troubleshooting guide");
    let table: Vec<&str> = guide.lines().filter(|l| l.starts_with("| `")).collect();
    let status = include_str!("../../core/src/status.rs");
    for (reason, _) in blog_operator::reference::reasons(status) {
        assert!(
            table.iter().any(|row| row.split('|').nth(1).is_some_and(|c| c.contains(&format!("`{reason}`")))),
            "docs/src/guides/troubleshooting.md has no row for reason {reason}"
        );
    }
}
