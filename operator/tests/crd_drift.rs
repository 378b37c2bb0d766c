//! The checked-in CRD is exactly what the Rust types generate: edit the types, then run
//! `cargo run -p blog-operator --bin crdgen > crds/blogdeployments.blogs.serverless.dev.yaml`.

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
