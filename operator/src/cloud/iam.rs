//! IAM: service roles with one inline policy each, found by name and checked for ownership.

use super::{Call, OWN_TAGGED};
use std::collections::{BTreeMap, HashMap};

use aws_sdk_iam::types::{Role, Tag};
use serde_json::Value;

use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use super::inventory::Listed;
use crate::desired::Owner;

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "RoleLookup",
    "Effect": "Allow",
    "Action": [
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListRoleTags"
    ],
    "Resource": [
      "arn:aws:iam::*:role/blog-operator/blog-*",
      "arn:aws:iam::*:role/blog-*"
    ]
  },
  {
    "Sid": "RoleListing",
    "Effect": "Allow",
    "Action": [
      "iam:ListRoles"
    ],
    "Resource": "*"
  },
  {
    "Sid": "RolesOnlyWithTheShippedBoundary",
    "Effect": "Allow",
    "Action": [
      "iam:CreateRole",
      "iam:PutRolePolicy",
      "iam:PutRolePermissionsBoundary"
    ],
    "Resource": [
      "arn:aws:iam::*:role/blog-operator/blog-*"
    ],
    "Condition": {
      "StringLike": {
        "iam:PermissionsBoundary": "arn:*:iam::${aws:PrincipalAccount}:policy/blog-operator-role-boundary"
      }
    }
  },
  {
    "Sid": "TagRolesOnItsPath",
    "Effect": "Allow",
    "Action": [
      "iam:TagRole"
    ],
    "Resource": [
      "arn:aws:iam::*:role/blog-operator/blog-*"
    ]
  },
  {
    "Sid": "RoleCleanupOnlyOfItsRoles",
    "Effect": "Allow",
    "Action": [
      "iam:DeleteRolePolicy",
      "iam:DeleteRole"
    ],
    "Resource": [
      "arn:aws:iam::*:role/blog-operator/blog-*",
      "arn:aws:iam::*:role/blog-*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "PassOnlyItsRolesToLambdaAndEcsTasks",
    "Effect": "Allow",
    "Action": [
      "iam:PassRole"
    ],
    "Resource": [
      "arn:aws:iam::*:role/blog-operator/blog-*"
    ],
    "Condition": {
      "StringEquals": {
        "iam:PassedToService": [
          "lambda.amazonaws.com",
          "ecs-tasks.amazonaws.com"
        ]
      }
    }
  },
  {
    "Sid": "PassOnlyItsInfrastructureRolesToEcs",
    "Effect": "Allow",
    "Action": [
      "iam:PassRole"
    ],
    "Resource": [
      "arn:aws:iam::*:role/blog-operator/blog-*-ecs"
    ],
    "Condition": {
      "StringEquals": {
        "iam:PassedToService": "ecs.amazonaws.com"
      }
    }
  },
  {
    "Sid": "ServiceLinkedRolesOnFirstUse",
    "Effect": "Allow",
    "Action": [
      "iam:CreateServiceLinkedRole"
    ],
    "Resource": "*",
    "Condition": {
      "StringEquals": {
        "iam:AWSServiceName": [
          "ecs.amazonaws.com",
          "elasticloadbalancing.amazonaws.com",
          "ecs.application-autoscaling.amazonaws.com",
          "replication.dynamodb.amazonaws.com"
        ]
      }
    }
  }
]"#;

pub(crate) const SERVICE: &str = "iam";

const FUNCTION_ROLE: &str = "arn:aws:iam::{account}:role{role_path}{function_role}";
const TASK_ROLE: &str = "arn:aws:iam::{account}:role{role_path}{task_role}";
const EXECUTION_ROLE: &str = "arn:aws:iam::{account}:role{role_path}{execution_role}";
const INFRASTRUCTURE_ROLE: &str = "arn:aws:iam::{account}:role{role_path}{infrastructure_role}";
/// A role an earlier version made outside the role path.
const EARLIER_ROLE: &str = "arn:aws:iam::{account}:role/{function_role}";
const BOUNDED: (&str, &str) = ("iam:PermissionsBoundary", r#""{boundary}""#);

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create a role with the boundary", "iam:CreateRole", FUNCTION_ROLE).with(&[BOUNDED]),
    Call::new("read a role", "iam:GetRole", FUNCTION_ROLE),
    Call::new("read an earlier version's role", "iam:GetRole", EARLIER_ROLE),
    Call::new("read a role's tags", "iam:ListRoleTags", TASK_ROLE),
    Call::new("list the roles under its path", "iam:ListRoles", "*"),
    Call::new("read its inline policy", "iam:GetRolePolicy", TASK_ROLE),
    Call::new("put its inline policy", "iam:PutRolePolicy", TASK_ROLE).with(&[BOUNDED]),
    Call::new("set the boundary", "iam:PutRolePermissionsBoundary", EXECUTION_ROLE).with(&[BOUNDED]),
    Call::new("tag a new role", "iam:TagRole", FUNCTION_ROLE),
    Call::new("delete its inline policy", "iam:DeleteRolePolicy", FUNCTION_ROLE).with(&[OWN_TAGGED]),
    Call::new("delete a role", "iam:DeleteRole", FUNCTION_ROLE).with(&[OWN_TAGGED]),
    Call::new("delete an earlier version's role", "iam:DeleteRole", EARLIER_ROLE).with(&[OWN_TAGGED]),
    Call::new("pass the function role to Lambda", "iam:PassRole", FUNCTION_ROLE)
        .with(&[("iam:PassedToService", r#""lambda.amazonaws.com""#)]),
    Call::new("pass the task role to ECS", "iam:PassRole", TASK_ROLE)
        .with(&[("iam:PassedToService", r#""ecs-tasks.amazonaws.com""#)]),
    Call::new("pass the infrastructure role to ECS", "iam:PassRole", INFRASTRUCTURE_ROLE)
        .with(&[("iam:PassedToService", r#""ecs.amazonaws.com""#)]),
];

/// IAM's own codes.
pub const CODES: &[(&str, ErrorKind)] =
    &[("NoSuchEntity", ErrorKind::NotFound), ("EntityAlreadyExists", ErrorKind::AlreadyExists)];
/// The one inline policy each role carries.
pub const POLICY_NAME: &str = "blog-operator";

pub use crate::desired::DesiredRole;

/// Sets the role's permissions boundary. A boundary is never removed: the operator's policy does
/// not allow it, since removing one is how a role would gain power.
async fn put_boundary(clients: &AwsClients, role: &str, boundary: &str) -> CloudResult<()> {
    clients
        .iam
        .put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(boundary)
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "PutRolePermissionsBoundary"))
}

/// IAM returns policy documents URL-encoded: the JSON value, `None` when it is not JSON.
fn decoded_document(found: &str) -> Option<Value> {
    serde_json::from_str(&percent_encoding::percent_decode_str(found).decode_utf8_lossy()).ok()
}

/// Compares a document IAM returned with `wanted` as JSON values.
fn same_document(found: &str, wanted: &Value) -> bool {
    decoded_document(found).is_some_and(|v| &v == wanted)
}

async fn role_tags(clients: &AwsClients, name: &str) -> CloudResult<BTreeMap<String, String>> {
    let out = clients.iam.list_role_tags().role_name(name).send().await.map_err(map_sdk(SERVICE, "ListRoleTags"))?;
    Ok(tag_map(out.tags()))
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
}

/// Makes the role exist with exactly this trust and inline policy; returns its ARN. Between full
/// reads (a deep period apart, or when `role` changes) a role its listing shows as the operator's,
/// under its path, with the trust it made, is taken as it is.
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_role(
    clients: &AwsClients,
    owner: &Owner,
    role: &DesiredRole,
    tags: &BTreeMap<String, String>,
) -> CloudResult<String> {
    let resource = format!("iam role {}", role.name);
    let desired = (&role.boundary, role.trust.to_string(), role.policy.to_string());
    let due = clients.inventories.deep.due(&resource, &desired);
    let listed = listed_role(clients, &role.name).await;
    if !due
        && let Listed::Found(found) = &listed
        && found.under_operator_path
        && claim_once(clients, owner, found).await?
    {
        check_trust(found.trust, role)?;
        return Ok(found.arn.to_string());
    }
    // Never read in full by this process and not in the listing: made without a look first (a
    // role made since the listing was taken answers that its name is taken, and is read).
    let arn = match (due, listed) {
        (true, Listed::Absent) => create_unless_taken(clients, owner, role, tags).await?,
        _ => read_and_ensure_role(clients, owner, role, tags).await?,
    };
    clients.inventories.deep.done(&resource, &desired);
    Ok(arn)
}

/// Creates the role with its inline policy; a name taken is read and ensured as a found role.
async fn create_unless_taken(
    clients: &AwsClients,
    owner: &Owner,
    role: &DesiredRole,
    tags: &BTreeMap<String, String>,
) -> CloudResult<String> {
    match create_role(clients, owner, role, tags).await {
        Ok(arn) => {
            put_inline_policy(clients, role).await?;
            Ok(arn)
        }
        Err(err) if err.is_name_taken() => read_and_ensure_role(clients, owner, role, tags).await,
        Err(err) => Err(err),
    }
}

/// [`ensure_role`]'s full read: the role (`GetRole`, with its tags and boundary) and its policy.
async fn read_and_ensure_role(
    clients: &AwsClients,
    owner: &Owner,
    role: &DesiredRole,
    tags: &BTreeMap<String, String>,
) -> CloudResult<String> {
    let found = clients.iam.get_role().role_name(&role.name).send().await.map_err(map_sdk(SERVICE, "GetRole"));
    let arn = match super::found(found)? {
        Some(found) => {
            let found = found.role.ok_or_else(|| CloudError::local(SERVICE, "GetRole", ErrorKind::Other, "no role"))?;
            // GetRole answers with the role's tags; ListRoleTags only where an emulator leaves them out.
            let found_tags = match found.tags() {
                [] => role_tags(clients, &role.name).await?,
                tags => tag_map(tags),
            };
            super::tags::claim(owner, &found_tags, SERVICE, "GetRole", format!("IAM role {}", role.name))?;
            if found.path != crate::desired::ROLE_PATH {
                return move_under_role_path(clients, owner, &role.name).await;
            }
            clients.memo.remember_confirmed(&claim_key(owner, &found.role_id));
            update_role(clients, &found, role).await?;
            found.arn
        }
        None => create_role(clients, owner, role, tags).await?,
    };
    ensure_inline_policy(clients, role).await?;
    Ok(arn)
}

/// What a role's listing holds of it until the next: the few fields read, and its trust policy as
/// a fingerprint (the document is most of a listed role's size, kept for every object).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedRole {
    name: Box<str>,
    id: Box<str>,
    arn: Box<str>,
    under_operator_path: bool,
    trust: Option<u64>,
}

impl ListedRole {
    fn of(role: &Role) -> Self {
        Self {
            name: role.role_name.as_str().into(),
            id: role.role_id.as_str().into(),
            arn: role.arn.as_str().into(),
            under_operator_path: role.path == crate::desired::ROLE_PATH,
            trust: role.assume_role_policy_document().and_then(document_fingerprint),
        }
    }
}

/// A policy document (as IAM returns it, percent-encoded) by its meaning: the same JSON value gives
/// the same fingerprint whatever its spacing or key order. `None` when it is not JSON.
fn document_fingerprint(found: &str) -> Option<u64> {
    decoded_document(found).map(|v| super::inventory::fingerprint(&v.to_string()))
}

/// The role of this name as its listing (the roles under the operator's path) shows it, listed at
/// most a resync period ago.
async fn listed_role(clients: &AwsClients, name: &str) -> Listed<ListedRole> {
    let path = crate::desired::ROLE_PATH;
    clients.inventories.roles.look_up(path, name, || list_roles(clients.clone(), path)).await
}

/// Every role under `path`, by name, in pages of up to 1,000.
async fn list_roles(clients: AwsClients, path: &'static str) -> CloudResult<HashMap<String, ListedRole>> {
    let mut roles = HashMap::new();
    let mut pages = clients.iam.list_roles().path_prefix(path).max_items(1000).into_paginator().send();
    while let Some(page) = pages.next().await {
        for role in page.map_err(map_sdk(SERVICE, "ListRoles"))?.roles {
            roles.insert(role.role_name.clone(), ListedRole::of(&role));
        }
    }
    Ok(roles)
}

/// The owner and the role; a role of the same name made again has another id, so it is claimed anew.
fn claim_key(owner: &Owner, role_id: &str) -> String {
    format!("{} {role_id}", owner.uid)
}

/// Whether the listed role is `owner`'s: its tags are read (`ListRoleTags`, which a listing leaves
/// out) once per role and process. `false` when they are not `owner`'s, for the full read to say why.
async fn claim_once(clients: &AwsClients, owner: &Owner, role: &ListedRole) -> CloudResult<bool> {
    let key = claim_key(owner, &role.id);
    if clients.memo.confirmed(&key) {
        return Ok(true);
    }
    let Some(tags) = super::found(role_tags(clients, &role.name).await)? else { return Ok(false) };
    let owned = owner.owns(&tags);
    if owned {
        clients.memo.remember_confirmed(&key);
    }
    Ok(owned)
}

/// Checks an existing role's trust policy and brings its boundary to `role`'s.
async fn update_role(clients: &AwsClients, found: &Role, role: &DesiredRole) -> CloudResult<()> {
    check_trust(found.assume_role_policy_document().and_then(document_fingerprint), role)?;
    let found_boundary = found.permissions_boundary().and_then(|b| b.permissions_boundary_arn());
    match role.boundary.as_deref() {
        Some(wanted) if found_boundary != Some(wanted) => put_boundary(clients, &role.name, wanted).await,
        _ => Ok(()),
    }
}

/// Trust is set once, at creation: the operator's policy cannot change it (so it can never widen
/// it), and a trust changed by someone else is refused, not repaired.
fn check_trust(found: Option<u64>, role: &DesiredRole) -> CloudResult<()> {
    if found == Some(super::inventory::fingerprint(&role.trust.to_string())) {
        return Ok(());
    }
    let why = format!(
        "the trust policy of IAM role {} is not the one the operator made (it never changes trust): delete the role \
         and the operator makes it again",
        role.name
    );
    Err(CloudError::local(SERVICE, "GetRole", ErrorKind::Invalid, why))
}

/// A role an earlier version made at path `/`: deleted, so that the next reconcile makes it again
/// under the operator's path (IAM cannot move a role, and names are unique whatever the path).
async fn move_under_role_path(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<String> {
    tracing::info!(role = name, path = crate::desired::ROLE_PATH, "re-making an IAM role under the operator's path");
    delete_role(clients, owner, name).await?;
    let why = format!("re-making IAM role {name} under {}; the next reconcile creates it", crate::desired::ROLE_PATH);
    Err(CloudError::local(SERVICE, "CreateRole", ErrorKind::Transient, why))
}

async fn create_role(
    clients: &AwsClients,
    owner: &Owner,
    role: &DesiredRole,
    tags: &BTreeMap<String, String>,
) -> CloudResult<String> {
    let tags = super::tags::sdk_tags(tags, |k, v| Tag::builder().key(k).value(v).build().ok());
    let created = clients
        .iam
        .create_role()
        .role_name(&role.name)
        .path(crate::desired::ROLE_PATH)
        .assume_role_policy_document(role.trust.to_string())
        .description(format!("blog-operator: {}", owner.key()))
        .set_permissions_boundary(role.boundary.clone())
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateRole"))?;
    let Some(created) = created.role else { return Ok(String::new()) };
    // Made with the owner's tags: its listing needs no tag read to claim it.
    clients.memo.remember_confirmed(&claim_key(owner, &created.role_id));
    Ok(created.arn)
}

/// The role's one inline policy, put only when it differs.
async fn ensure_inline_policy(clients: &AwsClients, role: &DesiredRole) -> CloudResult<()> {
    let current = clients
        .iam
        .get_role_policy()
        .role_name(&role.name)
        .policy_name(POLICY_NAME)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "GetRolePolicy"));
    let current = super::found(current)?.map(|out| out.policy_document);
    if current.is_some_and(|doc| same_document(&doc, &role.policy)) {
        return Ok(());
    }
    put_inline_policy(clients, role).await
}

/// Puts the role's one inline policy.
async fn put_inline_policy(clients: &AwsClients, role: &DesiredRole) -> CloudResult<()> {
    clients
        .iam
        .put_role_policy()
        .role_name(&role.name)
        .policy_name(POLICY_NAME)
        .policy_document(role.policy.to_string())
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "PutRolePolicy"))
}

/// Deletes the role and its inline policy if the role is ours; gone already counts as done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_role(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    let Some(tags) = super::found(role_tags(clients, name).await)? else { return Ok(()) };
    if !owner.owns(&tags) {
        tracing::warn!(role = name, "not deleting an IAM role this BlogDeployment does not own");
        return Ok(());
    }
    gone_is_done(
        clients
            .iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(POLICY_NAME)
            .send()
            .await
            .map(drop)
            .map_err(map_sdk(SERVICE, "DeleteRolePolicy")),
    )?;
    gone_is_done(
        clients.iam.delete_role().role_name(name).send().await.map(drop).map_err(map_sdk(SERVICE, "DeleteRole")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_compare_decoded() {
        let wanted = serde_json::json!({"Version": "2012-10-17", "Statement": []});
        assert!(same_document("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D", &wanted));
        assert!(same_document(r#"{"Statement": [], "Version": "2012-10-17"}"#, &wanted));
        assert!(!same_document(r#"{"Version": "2008-10-17", "Statement": []}"#, &wanted));
    }

    #[test]
    fn a_listed_trust_policy_matches_by_meaning_not_by_text() {
        let role = DesiredRole {
            name: "blog-x".into(),
            trust: serde_json::json!({"Version": "2012-10-17", "Statement": []}),
            policy: Value::Null,
            boundary: None,
        };
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert!(check_trust(document_fingerprint(encoded), &role).is_ok());
        assert!(check_trust(document_fingerprint(r#"{"Statement": [], "Version": "2012-10-17"}"#), &role).is_ok());
        assert!(check_trust(document_fingerprint(r#"{"Version": "2008-10-17", "Statement": []}"#), &role).is_err());
        assert!(check_trust(document_fingerprint("not json"), &role).is_err());
        assert!(check_trust(None, &role).is_err());
    }
}
