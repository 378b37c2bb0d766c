//! Prints the BlogDeployment CRD as YAML: `cargo run -p blog-operator --bin crdgen > crds/blogdeployments.blogs.serverless.dev.yaml`.

fn main() -> anyhow::Result<()> {
    print!("{}", blog_operator::crd_yaml()?);
    Ok(())
}
