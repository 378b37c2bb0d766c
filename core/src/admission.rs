//! One validation, two doors: why a spec is refused before any AWS call, asked by the admission
//! webhook at `kubectl apply` and again by the reconciler, which never trusts that the webhook ran.
//! Pure.

use crate::crd::BlogDeploymentSpec;
use crate::status::reason;
use crate::tenancy::{Facts, TenantPolicy};
use crate::validate;

/// Every kind of refusal a spec meets, in order (invalid, outside the tenant policy, moving a
/// deployed region, switching tables), each with its reason and a message naming every broken rule of that kind.
#[must_use]
pub fn refusals(spec: &BlogDeploymentSpec, policy: &TenantPolicy, facts: &Facts<'_>) -> Vec<(&'static str, String)> {
    let (default_region, recorded_table_arn) = (facts.default_region, facts.recorded_table_arn);
    let mut found = Vec::new();
    if let Err(invalid) = validate::validate(spec) {
        found.push((reason::INVALID_SPEC, invalid.to_string()));
    }
    if let Err(broken) = policy.check(spec, facts) {
        found.push((
            reason::POLICY_VIOLATION,
            format!("refused by the platform's tenant policy: {}", broken.join("; ")),
        ));
    }
    let region = spec.home_region(default_region);
    if let Err(why) = validate::check_region_unchanged(region, recorded_table_arn) {
        found.push((reason::REGION_CHANGE_REFUSED, why));
    }
    if let Err(why) = validate::check_table_unchanged(spec.table.name.as_deref(), recorded_table_arn) {
        found.push((reason::TABLE_CHANGE_REFUSED, why));
    }
    found
}

/// The first refusal: the reason the reconciler's conditions carry.
#[must_use]
pub fn refusal(spec: &BlogDeploymentSpec, policy: &TenantPolicy, facts: &Facts<'_>) -> Option<(&'static str, String)> {
    refusals(spec, policy, facts).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(default_region: &'a str, recorded_table_arn: Option<&'a str>) -> Facts<'a> {
        Facts { namespace: "team", default_region, recorded_table_arn, reserved_elsewhere: None }
    }

    fn spec(yaml: &str) -> BlogDeploymentSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    #[test]
    fn the_first_kind_of_refusal_wins_and_names_every_rule_of_it() {
        let policy: TenantPolicy = serde_saphyr::from_str("allowedRegions: [us-west-1]\n").expect("policy");
        let bad =
            spec("image: blog:1\ncontainer: {cpu: 1024, memoryMiB: 512}\nallocation: {minTasks: 5, maxTasks: 1}\n");
        let (why, message) = refusal(&bad, &policy, &at("us-west-1", None)).expect("invalid");
        assert_eq!(why, reason::INVALID_SPEC);
        assert!(message.contains("memoryMiB 512") && message.contains("minTasks 5"), "{message}");
        let elsewhere = spec("image: blog:1\nregion: eu-west-1\nfunction: {}\n");
        assert_eq!(refusal(&elsewhere, &policy, &at("us-west-1", None)).map(|r| r.0), Some(reason::POLICY_VIOLATION));
        let moved = spec("image: blog:1\nregion: us-east-1\nfunction: {}\n");
        let arn = Some("arn:aws:dynamodb:us-west-1:1:table/blog-x");
        let open = TenantPolicy::default();
        assert_eq!(refusal(&moved, &open, &at("us-west-1", arn)).map(|r| r.0), Some(reason::REGION_CHANGE_REFUSED));
        assert_eq!(refusal(&spec("image: blog:1\nfunction: {}\n"), &policy, &at("us-west-1", None)), None);
        // Invalid and outside the policy at once: both kinds, for the webhook's one message.
        let both = spec("image: blog:1\nregion: eu-west-1\nfunction: {enabled: false}\n");
        let kinds: Vec<_> = refusals(&both, &policy, &at("us-west-1", None)).into_iter().map(|r| r.0).collect();
        assert_eq!(kinds, [reason::INVALID_SPEC, reason::POLICY_VIOLATION]);
    }
}
