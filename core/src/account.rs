//! An AWS account per team: the role the operator assumes for a namespace's BlogDeployments (the
//! tenant policy's `account`), checked against IAM's and STS's formats, and the session name and
//! role boundary that follow from it. Pure.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::Arn;

/// A role in a team's account: every AWS call for the namespace's objects runs as it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRole {
    /// `arn:aws:iam::<account>:role/<name>`; its trust policy names the operator's role and
    /// requires `externalId`.
    pub role_arn: String,
    /// The `sts:ExternalId` the role's trust policy requires (the confused-deputy guard).
    pub external_id: String,
    /// The boundary of the roles the operator makes there; by default the operator's own boundary
    /// with this account's id (the same policy name in every team account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
}

/// STS `RoleSessionName`: 2 to 64 of these characters (STS API reference, AssumeRole).
const SESSION_NAME_MAX: usize = 64;

impl AccountRole {
    /// What is wrong with it, as IAM and STS document the formats.
    ///
    /// # Errors
    /// Each broken rule, naming the field.
    pub fn check(&self, at: &str) -> Result<(), Vec<String>> {
        let mut broken = Vec::new();
        if let Err(why) = check_role_arn(&self.role_arn) {
            broken.push(format!("{at}.roleArn {:?}: {why}", self.role_arn));
        }
        // STS AssumeRole: ExternalId is 2-1224 characters of [\w+=,.@:/-].
        let id_chars = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
        if !(2..=1224).contains(&self.external_id.len()) || !self.external_id.chars().all(id_chars) {
            broken.push(format!(
                "{at}.externalId must be 2 to 1224 letters, digits or _+=,.@:/- (STS AssumeRole ExternalId)"
            ));
        }
        if let Some(boundary) = &self.permissions_boundary
            && !is_policy_arn_in(boundary, self.account())
        {
            broken.push(format!(
                "{at}.permissionsBoundary {boundary:?} must be an IAM policy ARN in the role's account {}",
                self.account()
            ));
        }
        if broken.is_empty() { Ok(()) } else { Err(broken) }
    }

    /// The account id the role belongs to (checked by [`AccountRole::check`]).
    #[must_use]
    pub fn account(&self) -> &str {
        Arn::parse(&self.role_arn).map_or("", |arn| arn.account)
    }

    /// The boundary for roles made in this account: the given one, else `operators` (an IAM policy
    /// ARN) with this account's id in place of its own.
    #[must_use]
    pub fn boundary(&self, operators: Option<&str>) -> Option<String> {
        if let Some(own) = &self.permissions_boundary {
            return Some(own.clone());
        }
        let arn = Arn::parse(operators?)?;
        Some(format!("arn:{}:iam::{}:{}", arn.partition, self.account(), arn.resource))
    }
}

/// IAM: `arn:<partition>:iam::<12 digits>:role/<path><name>`, the name 1-64 of `[\w+=,.@-]`, the
/// path `/` or `/…/` (IAM identifiers reference).
fn check_role_arn(arn: &str) -> Result<(), &'static str> {
    let parsed = Arn::parse(arn).ok_or("not an ARN")?;
    if parsed.service != "iam" || !parsed.region.is_empty() {
        return Err("not an IAM ARN");
    }
    if !crate::aws_format::is_account_id(parsed.account) {
        return Err("the account must be 12 digits");
    }
    let path_and_name = parsed.resource.strip_prefix("role/").ok_or("not a role")?;
    let name = path_and_name.rsplit('/').next().unwrap_or_default();
    let name_chars = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(name_chars) {
        return Err("the role name must be 1 to 64 letters, digits or _+=,.@-");
    }
    if path_and_name.len() > 512 + 64 {
        return Err("the role path is longer than 512 characters");
    }
    Ok(())
}

fn is_policy_arn_in(arn: &str, account: &str) -> bool {
    Arn::parse(arn).is_some_and(|a| {
        a.service == "iam" && a.region.is_empty() && a.account == account && a.resource.starts_with("policy/")
    })
}

/// The STS session name for one BlogDeployment, so the team account's CloudTrail says which object
/// each call was for: `blog.<namespace>.<name>`, cut to 64 characters with a digest of the whole
/// kept at the end when it is longer. Kubernetes names use only characters STS allows.
#[must_use]
pub fn session_name(namespace: &str, name: &str) -> String {
    let full = format!("blog.{namespace}.{name}");
    if full.len() <= SESSION_NAME_MAX {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let suffix: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}-{suffix}", &full[..SESSION_NAME_MAX - suffix.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(arn: &str, external_id: &str) -> AccountRole {
        AccountRole { role_arn: arn.into(), external_id: external_id.into(), permissions_boundary: None }
    }

    #[test]
    fn a_role_arn_and_external_id_follow_iam_and_sts() {
        assert_eq!(role("arn:aws:iam::222222222222:role/teams/blog-operator", "team-b-7f3a").check("account"), Ok(()));
        let cases = [
            ("arn:aws:iam::22222222222:role/x", "the account must be 12 digits"),
            ("arn:aws:iam::222222222222:user/x", "not a role"),
            ("arn:aws:iam:us-east-1:222222222222:role/x", "not an IAM ARN"),
            ("arn:aws:iam::222222222222:role/", "the role name must be"),
            ("arn:aws:iam::222222222222:role/a b", "the role name must be"),
            ("role/x", "not an ARN"),
        ];
        for (arn, why) in cases {
            let broken = role(arn, "team-b").check("account").expect_err(arn);
            assert!(broken[0].contains(why), "{arn}: {broken:?}");
        }
        for id in ["x", "has space", &"a".repeat(1225)] {
            let broken = role("arn:aws:iam::222222222222:role/r", id).check("account").expect_err(id);
            assert!(broken[0].contains("externalId"), "{broken:?}");
        }
    }

    #[test]
    fn roles_made_in_a_team_account_get_the_boundary_of_that_account() {
        let team = role("arn:aws:iam::222222222222:role/blog-operator", "team-b");
        assert_eq!(
            team.boundary(Some("arn:aws:iam::111111111111:policy/blog-boundary")).as_deref(),
            Some("arn:aws:iam::222222222222:policy/blog-boundary")
        );
        assert_eq!(team.boundary(None), None);
        let own = AccountRole {
            permissions_boundary: Some("arn:aws:iam::222222222222:policy/team-b-boundary".into()),
            ..team.clone()
        };
        assert_eq!(own.boundary(None).as_deref(), Some("arn:aws:iam::222222222222:policy/team-b-boundary"));
        let elsewhere = AccountRole { permissions_boundary: Some("arn:aws:iam::111111111111:policy/b".into()), ..team };
        assert!(elsewhere.check("account").expect_err("another account")[0].contains("permissionsBoundary"));
    }

    #[test]
    fn a_session_name_names_the_object_within_the_sts_limit() {
        assert_eq!(session_name("team-b", "blog"), "blog.team-b.blog");
        let long = session_name("a-rather-long-namespace-name", &"n".repeat(80));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("blog.a-rather-long-namespace-name.nnn"), "{long}");
        assert_ne!(long, session_name("a-rather-long-namespace-name", &"n".repeat(81)), "distinct objects differ");
    }
}
