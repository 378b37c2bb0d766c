//! The corpus of values AWS refuses (`fixtures/aws-formats.yaml`): each is refused by validation
//! before any AWS call, naming the field, whatever the emulators would have taken. No stack.

use blog_operator::crd::BlogDeploymentSpec;

/// One entry of the corpus.
#[derive(serde::Deserialize)]
pub struct Case {
    pub name: String,
    pub field: String,
    pub rule: String,
    pub spec: serde_json::Value,
}

fn corpus() -> Vec<Case> {
    let path = blog_tests::workspace_root().join("operator/tests/fixtures/aws-formats.yaml");
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("corpus")).expect("YAML")
}

#[test]
fn every_value_aws_refuses_is_refused_before_any_call_naming_the_field() {
    let corpus = corpus();
    assert!(corpus.len() >= 25, "the corpus holds {} cases", corpus.len());
    let mut passed = Vec::new();
    for case in &corpus {
        let spec: BlogDeploymentSpec = serde_json::from_value(case.spec.clone()).expect(&case.name);
        match blog_operator::validate::validate(&spec) {
            Err(invalid) if invalid.0.iter().any(|p| p.contains(&case.field)) => {
                println!("| {} | {} | {} |", case.name, invalid.0.join("; "), case.rule);
            }
            outcome => passed.push(format!("{} ({}): {outcome:?}", case.name, case.rule)),
        }
    }
    assert!(passed.is_empty(), "AWS refuses these, validation let them through:\n{}", passed.join("\n"));
}
