//! Prints the operator's IAM policy, assembled from the statements each adapter declares beside
//! its calls: `cargo run -p blog-operator --bin iamgen > manifests/iam/operator-policy.json`.

fn main() {
    print!("{}", blog_operator::cloud::operator_policy_file());
}
