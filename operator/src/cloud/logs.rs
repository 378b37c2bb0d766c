//! CloudWatch Logs: one log group per variant, with a retention, so logs neither vanish nor pile up.

use super::Call;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatchlogs::types::LogGroup;

use super::inventory::Listed;
use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::desired::Owner;

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "LogGroups",
    "Effect": "Allow",
    "Action": [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:ListTagsForResource",
      "logs:PutRetentionPolicy",
      "logs:TagResource"
    ],
    "Resource": [
      "arn:aws:logs:*:*:log-group:/aws/lambda/blog-*",
      "arn:aws:logs:*:*:log-group:/ecs/blog-*"
    ]
  },
  {
    "Sid": "LogGroupLookup",
    "Effect": "Allow",
    "Action": [
      "logs:DescribeLogGroups"
    ],
    "Resource": "*"
  }
]"#;

pub(crate) const SERVICE: &str = "logs";

const LOG_GROUP: &str = "arn:aws:logs:{region}:{account}:log-group:{function_log_group}";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create a log group", "logs:CreateLogGroup", LOG_GROUP),
    Call::new("set its retention", "logs:PutRetentionPolicy", LOG_GROUP),
    Call::new("tag it", "logs:TagResource", LOG_GROUP),
    Call::new("read its tags, to claim it", "logs:ListTagsForResource", LOG_GROUP),
    Call::new("delete it", "logs:DeleteLogGroup", LOG_GROUP),
    Call::new("find log groups", "logs:DescribeLogGroups", "*"),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, ErrorKind)] = &[];

/// Makes the log group exist with this retention; returns its ARN (without the trailing `:*`).
/// One found under the name is used only when its tags say `owner` made it.
///
/// # Errors
/// The AWS failure; [`CloudError::not_owned`] for another owner's log group.
pub async fn ensure_log_group(
    clients: &AwsClients,
    owner: &Owner,
    name: &str,
    retention_days: i32,
    tags: &BTreeMap<String, String>,
) -> CloudResult<String> {
    let group = match observe_log_group(clients, name).await? {
        Some(group) => {
            claim_once(clients, owner, &group).await?;
            group
        }
        None => {
            let created = clients
                .logs
                .create_log_group()
                .log_group_name(name)
                .set_tags(Some(tags.clone().into_iter().collect::<HashMap<_, _>>()))
                .send()
                .await
                .map_err(map_sdk(SERVICE, "CreateLogGroup"));
            // Taken already: a lost answer of ours, or another owner's made in between.
            let taken = match created {
                Err(err) if !err.is_name_taken() => return Err(err),
                created => created.is_err(),
            };
            let group = find_log_group(clients, name).await?.ok_or_else(|| {
                CloudError::local(
                    SERVICE,
                    "CreateLogGroup",
                    ErrorKind::Transient,
                    format!("log group {name} not visible yet"),
                )
            })?;
            if taken {
                claim(clients, owner, &group).await?;
            }
            // Made with the owner's tags, or its tags just confirmed: no need to read them again.
            clients.memo.remember_confirmed(&claim_key(owner, &group));
            clients.inventories.deep.done(&seen(name), &());
            group
        }
    };
    if group.retention != Some(retention_days) {
        clients
            .logs
            .put_retention_policy()
            .log_group_name(name)
            .retention_in_days(retention_days)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "PutRetentionPolicy"))?;
        // The listing still shows the old retention: read this group on its own until the next.
        if let Some(prefix) = listing_prefix(name) {
            clients.inventories.log_groups.forget(&prefix, name).await;
        }
    }
    Ok(group.arn.trim_end_matches(":*").to_owned())
}

/// [`claim`], once per log group and process: its tags were confirmed when it was first found,
/// and a restarted operator confirms them again.
async fn claim_once(clients: &AwsClients, owner: &Owner, group: &FoundLogGroup) -> CloudResult<()> {
    let key = claim_key(owner, group);
    if clients.memo.confirmed(&key) {
        return Ok(());
    }
    claim(clients, owner, group).await?;
    clients.memo.remember_confirmed(&key);
    Ok(())
}

/// The owner and the log group; a group of the same name made again by someone else has another
/// creation time, so it is claimed anew.
fn claim_key(owner: &Owner, group: &FoundLogGroup) -> String {
    format!("{} {} {}", owner.uid, group.arn, group.created)
}

/// Ok when the log group's tags say `owner` made it (a log group made here is tagged at create).
async fn claim(clients: &AwsClients, owner: &Owner, group: &FoundLogGroup) -> CloudResult<()> {
    let name = &group.name;
    let arn = group.arn.trim_end_matches(":*");
    let found = clients
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ListTagsForResource"))?;
    let found: BTreeMap<String, String> = found.tags.unwrap_or_default().into_iter().collect();
    super::tags::claim(owner, &found, SERVICE, "ListTagsForResource", format!("log group {name}"))
}

/// The listing of the operator's log groups a name belongs to: its path up to the `blog-` every
/// name the operator makes starts with (`/aws/lambda/blog-`, `/ecs/blog-`).
fn listing_prefix(name: &str) -> Option<String> {
    let (path, leaf) = name.rsplit_once('/')?;
    leaf.starts_with("blog-").then(|| format!("{path}/blog-"))
}

/// The log group of this name from the region's inventory, or read on its own when the inventory
/// has not seen it (made since the last listing, or changed by the operator since).
async fn observe_log_group(clients: &AwsClients, name: &str) -> CloudResult<Option<FoundLogGroup>> {
    let listed = match listing_prefix(name) {
        Some(prefix) => clients.inventories.log_groups.look_up(&prefix, name, || list_log_groups(clients.clone(), prefix.clone())).await,
        None => Listed::Unknown,
    };
    // Not listed and never seen by this process: it is made without a look first (one made since
    // the listing answers that the name is taken, and is then read and claimed).
    let group = match listed {
        Listed::Found(group) => Some(group),
        Listed::Absent if clients.inventories.deep.due(&seen(name), &()) => None,
        Listed::Absent | Listed::Unknown => find_log_group(clients, name).await?,
    };
    if group.is_some() {
        clients.inventories.deep.done(&seen(name), &());
    }
    Ok(group)
}

/// The record that this process saw or made the group (a deep period ago at most).
fn seen(name: &str) -> String {
    format!("log group {name}")
}

/// Every log group whose name starts with `prefix`, by name, in pages of 50.
async fn list_log_groups(clients: AwsClients, prefix: String) -> CloudResult<HashMap<String, FoundLogGroup>> {
    let mut groups = HashMap::new();
    let mut pages = clients.logs.describe_log_groups().log_group_name_prefix(&prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(map_sdk(SERVICE, "DescribeLogGroups"))?;
        for group in page.log_groups() {
            if let Some(name) = group.log_group_name() {
                groups.insert(name.to_owned(), FoundLogGroup::of(group));
            }
        }
    }
    Ok(groups)
}

/// What is read of a log group, and what the region's listing holds of it until the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundLogGroup {
    name: Box<str>,
    /// As the API gives it, with the trailing `:*`.
    arn: Box<str>,
    retention: Option<i32>,
    /// Milliseconds since the epoch: a group made again under the name has another.
    created: i64,
}

impl FoundLogGroup {
    fn of(group: &LogGroup) -> Self {
        Self {
            name: group.log_group_name().unwrap_or_default().into(),
            arn: group.arn().unwrap_or_default().into(),
            retention: group.retention_in_days(),
            created: group.creation_time().unwrap_or_default(),
        }
    }
}

/// The log group of exactly this name (the API matches by prefix).
async fn find_log_group(clients: &AwsClients, name: &str) -> CloudResult<Option<FoundLogGroup>> {
    let out = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeLogGroups"))?;
    Ok(out.log_groups().iter().find(|g| g.log_group_name() == Some(name)).map(FoundLogGroup::of))
}

/// Deletes the owner's log group; gone already, or another owner's, counts as done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_log_group(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    // Look first: a reconcile of a disabled variant must make no mutating call. Read on its own:
    // a listing taken before the group was made would say it is not there, and it would be left.
    let Some(group) = find_log_group(clients, name).await? else { return Ok(()) };
    match claim(clients, owner, &group).await {
        Err(err) if err.is_not_owned() => return Ok(()),
        claimed => claimed?,
    }
    gone_is_done(
        clients.logs.delete_log_group().log_group_name(name).send().await.map_err(map_sdk(SERVICE, "DeleteLogGroup")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_the_operator_makes_belongs_to_its_prefix_listing_and_no_other_name_does() {
        assert_eq!(listing_prefix("/aws/lambda/blog-team-1a2b3c4d").as_deref(), Some("/aws/lambda/blog-"));
        assert_eq!(listing_prefix("/ecs/blog-team-1a2b3c4d").as_deref(), Some("/ecs/blog-"));
        assert_eq!(listing_prefix("/ecs/other-team"), None, "read on its own");
        assert_eq!(listing_prefix("blog-no-path"), None);
    }
}
