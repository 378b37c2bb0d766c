//! The shipped IAM policies narrowed to a tenant policy: record changes and certificate requests
//! to the host suffixes it allows, every regional statement to its regions, image pulls to its ECR repositories.
//!
//! `manifests/iam/*.json` are the open policies (one team's own account); a platform that runs
//! with a tenant policy renders its own from the same values (`blog-operator --print-iam-policy`),
//! so IAM refuses what the webhook and the reconciler refuse, should the operator's credentials
//! leak. Where a list allows anything (empty or `*`), the rendered policy stays open there too.

use serde_json::{Value, json};

use crate::tenancy::{ANY, TenantPolicy};

/// The operator's own policy as shipped (every name the operator makes, in any region).
pub const OPERATOR_POLICY: &str = include_str!("../../manifests/iam/operator-policy.json");
/// The boundary of every role the operator makes, as shipped.
pub const ROLE_BOUNDARY: &str = include_str!("../../manifests/iam/role-boundary.json");

/// How far a tenant policy lets the rendered policies reach; `None`: anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// `aws:RequestedRegion` values of every regional statement.
    pub regions: Option<Vec<String>>,
    /// Normalized record names `ChangeResourceRecordSets` may touch (`StringLike` patterns).
    pub record_names: Option<Vec<String>>,
    /// ECR repository ARNs images may come from (`StringLike` patterns).
    pub repositories: Option<Vec<String>>,
    /// Roles in team accounts the operator assumes (the tenant policy's `account`s).
    pub account_roles: Vec<String>,
}

/// The union of what every namespace may do under `policy` (`${namespace}` becomes `*` in the
/// common rules and the namespace's name in its own).
#[must_use]
pub fn scope(policy: &TenantPolicy) -> Scope {
    let rules: Vec<TenantPolicy> = std::iter::once(policy.for_namespace("*"))
        .chain(policy.namespaces.keys().map(|ns| policy.for_namespace(ns)))
        .collect();
    Scope {
        regions: union(&rules, |r| any_if_empty(r.allowed_regions.clone())),
        record_names: union(&rules, |r| r.domains.host_suffixes.iter().flat_map(|s| record_names(s)).collect()),
        repositories: union(&rules, |r| match r.allowed_image_prefixes.as_slice() {
            [] => vec![ANY.to_owned()],
            prefixes => repositories(prefixes),
        }),
        account_roles: {
            let mut roles: Vec<String> =
                rules.iter().filter_map(|r| Some(r.account.as_ref()?.role_arn.clone())).collect();
            roles.sort();
            roles.dedup();
            roles
        },
    }
}

/// An empty list of regions allows any.
fn any_if_empty(list: Vec<String>) -> Vec<String> {
    if list.is_empty() { vec![ANY.to_owned()] } else { list }
}

/// Every rule set's list, merged; `None` when one allows anything (`*`).
fn union(rules: &[TenantPolicy], list: impl Fn(&TenantPolicy) -> Vec<String>) -> Option<Vec<String>> {
    let mut all = Vec::new();
    for entries in rules.iter().map(list) {
        if entries.iter().any(|e| e == ANY) {
            return None;
        }
        all.extend(entries);
    }
    all.sort();
    all.dedup();
    Some(all)
}

/// A host suffix as Route 53's normalized record names: itself and every name below it.
fn record_names(suffix: &str) -> Vec<String> {
    if suffix == ANY {
        return vec![ANY.to_owned()];
    }
    let name = suffix.trim_end_matches('.').to_ascii_lowercase();
    vec![format!("*.{name}"), name]
}

/// The ECR repositories the image prefixes name (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/PATH`);
/// other registries need no IAM permission. `*` when a prefix is only a host or allows any.
fn repositories(prefixes: &[String]) -> Vec<String> {
    let mut arns = Vec::new();
    for prefix in prefixes {
        let (host, path) = prefix.split_once('/').unwrap_or((prefix.as_str(), ""));
        let labels: Vec<&str> = host.split('.').collect();
        match labels.as_slice() {
            [account, "dkr", "ecr", region, "amazonaws", "com"] if !account.contains('*') => {
                arns.push(format!("arn:aws:ecr:{region}:{account}:repository/{path}*"));
            }
            _ if prefix == ANY || prefix.contains(".dkr.ecr.") => return vec![ANY.to_owned()],
            _ => {}
        }
    }
    arns
}

/// The operator's policy for `scope`.
///
/// # Panics
/// Never: the shipped policy is checked JSON (a test parses it).
#[must_use]
pub fn operator_policy(scope: &Scope) -> Value {
    let mut policy: Value = serde_json::from_str(OPERATOR_POLICY).expect("the shipped operator policy");
    narrow(&mut policy, scope, "ImageManifestReadsInThisAccount");
    if let Some(names) = &scope.record_names {
        let statements = policy["Statement"].as_array_mut().expect("statements");
        if names.is_empty() {
            statements.retain(|s| s["Sid"] != RECORD_CHANGES);
        }
        for statement in statements.iter_mut() {
            let key = match statement["Sid"].as_str() {
                Some(RECORD_CHANGES) => "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                Some(CERTIFICATE_REQUESTS) => "acm:DomainNames",
                _ => continue,
            };
            statement["Condition"]["ForAllValues:StringLike"] = json!({ key: names });
        }
    }
    if !scope.account_roles.is_empty() {
        let assume = json!({"Sid": ASSUME_TEAM_ROLES, "Effect": "Allow", "Action": "sts:AssumeRole",
                            "Resource": scope.account_roles});
        policy["Statement"].as_array_mut().expect("statements").push(assume);
    }
    policy
}

/// The trust policy of the role in a team account: only the operator's role may assume it, and
/// only with the external id the tenant policy gives for that team.
#[must_use]
pub fn team_role_trust(operator_role_arn: &str, external_id: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyTheBlogOperatorWithThisTeamsExternalId",
        "Effect": "Allow",
        "Principal": {"AWS": operator_role_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
    }]})
}

/// The statement that lets the operator act in the team accounts the tenant policy names, and no
/// other role. The role in each team account trusts the operator's role with the external id, and
/// carries this same policy without this statement.
pub const ASSUME_TEAM_ROLES: &str = "AssumeTheTeamAccountRoles";

/// The roles' boundary for `scope`.
///
/// # Panics
/// Never: the shipped boundary is checked JSON (a test parses it).
#[must_use]
pub fn role_boundary(scope: &Scope) -> Value {
    let mut policy: Value = serde_json::from_str(ROLE_BOUNDARY).expect("the shipped boundary");
    narrow(&mut policy, scope, "PullImagesOfThisAccount");
    policy
}

const RECORD_CHANGES: &str = "OnlyAliasValidationAndMarkerRecords";
const CERTIFICATE_REQUESTS: &str = "CertificatesRequestedTagged";

/// Regions on every regional statement; the ECR statement `image_sid` to the named repositories
/// (dropped when only other registries are allowed).
fn narrow(policy: &mut Value, scope: &Scope, image_sid: &str) {
    let statements = policy["Statement"].as_array_mut().expect("statements");
    if let Some(repositories) = &scope.repositories {
        if repositories.is_empty() {
            statements.retain(|s| s["Sid"] != image_sid);
        }
        for statement in statements.iter_mut().filter(|s| s["Sid"] == image_sid) {
            statement["Resource"] = json!(repositories);
            statement.as_object_mut().expect("statement").remove("Condition");
        }
    }
    let Some(regions) = &scope.regions else { return };
    for statement in statements.iter_mut().filter(|s| regional(s)) {
        let condition = statement.as_object_mut().expect("statement").entry("Condition").or_insert_with(|| json!({}));
        condition["StringEquals"]["aws:RequestedRegion"] = json!(regions);
    }
}

/// Whether every action of a statement is of a regional service (IAM and Route 53 are global:
/// their requests name us-east-1, whatever the resource).
fn regional(statement: &Value) -> bool {
    !actions(statement).iter().any(|a| a.starts_with("iam:") || a.starts_with("route53:") || a.starts_with("sts:"))
}

/// A statement's actions, whether IAM's JSON gives one as a string or several as a list.
#[must_use]
pub fn actions(statement: &Value) -> Vec<&str> {
    match &statement["Action"] {
        Value::String(action) => vec![action.as_str()],
        actions => actions.as_array().into_iter().flatten().filter_map(Value::as_str).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> TenantPolicy {
        TenantPolicy::parse(yaml).expect("policy")
    }

    #[test]
    fn an_open_policy_leaves_the_shipped_ones_as_they_are() {
        let scope = scope(&TenantPolicy::open());
        assert_eq!(scope, Scope::default());
        let shipped: Value = serde_json::from_str(OPERATOR_POLICY).expect("json");
        assert_eq!(operator_policy(&scope), shipped);
        let shipped: Value = serde_json::from_str(ROLE_BOUNDARY).expect("json");
        assert_eq!(role_boundary(&scope), shipped);
    }

    #[test]
    fn suffixes_regions_and_repositories_of_every_namespace_are_merged() {
        let scope = scope(&policy(
            "allowedRegions: [us-west-1]\n\
             allowedImagePrefixes: ['123456789012.dkr.ecr.us-west-1.amazonaws.com/${namespace}/', 'ghcr.io/acme/']\n\
             domains: {allowedZones: [blogs.example.com], hostSuffixes: ['${namespace}.blogs.example.com']}\n\
             namespaces:\n  team-x:\n    allowedRegions: [eu-central-1, us-west-1]\n    \
             domains: {allowedZones: [x.example.com], hostSuffixes: [X.Example.com.]}\n",
        ));
        assert_eq!(scope.regions, Some(vec!["eu-central-1".to_owned(), "us-west-1".to_owned()]));
        let names = ["*.*.blogs.example.com", "*.blogs.example.com", "*.x.example.com", "x.example.com"];
        assert_eq!(scope.record_names, Some(names.map(str::to_owned).to_vec()));
        // team-x's own rules allow any image: the repositories stay open.
        assert_eq!(scope.repositories, None);
    }

    #[test]
    fn the_rendered_policies_carry_the_scope() {
        let scope = Scope {
            regions: Some(vec!["us-west-1".into()]),
            record_names: Some(vec!["*.blogs.example.com".into()]),
            repositories: Some(vec!["arn:aws:ecr:us-west-1:123456789012:repository/blogs/*".into()]),
            account_roles: Vec::new(),
        };
        let operator = operator_policy(&scope);
        let statements = operator["Statement"].as_array().expect("statements");
        let sid = |sid: &str| statements.iter().find(|s| s["Sid"] == sid).expect(sid).clone();
        let records = sid(RECORD_CHANGES);
        let names =
            &records["Condition"]["ForAllValues:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"];
        assert_eq!(names, &json!(["*.blogs.example.com"]));
        assert!(records["Condition"].get("StringEquals").is_none(), "Route 53 is global");
        let requests = sid(CERTIFICATE_REQUESTS);
        assert_eq!(requests["Condition"]["ForAllValues:StringLike"]["acm:DomainNames"], json!(["*.blogs.example.com"]));
        assert_eq!(sid("Tables")["Condition"]["StringEquals"]["aws:RequestedRegion"], json!(["us-west-1"]));
        let images = sid("ImageManifestReadsInThisAccount");
        assert_eq!(images["Resource"], json!(["arn:aws:ecr:us-west-1:123456789012:repository/blogs/*"]));
        let boundary = role_boundary(&scope);
        let pulls = boundary["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .find(|s| s["Sid"] == "PullImagesOfThisAccount");
        assert_eq!(pulls.expect("pulls")["Resource"], images["Resource"]);
    }

    #[test]
    fn no_suffix_means_no_record_changes_and_no_ecr_prefix_means_no_pulls() {
        let scope = Scope { record_names: Some(vec![]), repositories: Some(vec![]), ..Scope::default() };
        let operator = operator_policy(&scope);
        let sids: Vec<&Value> =
            operator["Statement"].as_array().expect("statements").iter().map(|s| &s["Sid"]).collect();
        assert!(!sids.contains(&&json!(RECORD_CHANGES)) && !sids.contains(&&json!("ImageManifestReadsInThisAccount")));
    }

    #[test]
    fn ecr_prefixes_become_repository_arns() {
        let prefixes =
            ["123456789012.dkr.ecr.eu-west-1.amazonaws.com/blogs/".to_owned(), "docker.io/library/".to_owned()];
        assert_eq!(repositories(&prefixes), ["arn:aws:ecr:eu-west-1:123456789012:repository/blogs/*"]);
        assert_eq!(repositories(&["*.dkr.ecr.eu-west-1.amazonaws.com/".to_owned()]), ["*"]);
    }
}
