//! DynamoDB: the blog's table, found by name and checked for ownership before any change.

use super::{Call, OWN_TAGGED};
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    BillingMode as SdkBillingMode, ProvisionedThroughput, TableDescription, TableStatus, Tag,
};

use super::inventory::Listed;
use super::{AwsClients, CloudError, CloudResult, gone_is_done, map_sdk};
use crate::crd::BillingMode;
use crate::desired::{DesiredTable, Owner, RETAINED_TAG, TableClaim, claim_table};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "Tables",
    "Effect": "Allow",
    "Action": [
      "dynamodb:CreateTable",
      "dynamodb:DescribeTable",
      "dynamodb:UpdateTable",
      "dynamodb:ListTagsOfResource",
      "dynamodb:TagResource"
    ],
    "Resource": [
      "arn:aws:dynamodb:*:*:table/blog-*"
    ]
  },
  {
    "Sid": "ListTables",
    "Effect": "Allow",
    "Action": [
      "dynamodb:ListTables"
    ],
    "Resource": "*"
  },
  {
    "Sid": "DeleteAndUntagOnlyItsTables",
    "Effect": "Allow",
    "Action": [
      "dynamodb:DeleteTable",
      "dynamodb:UntagResource"
    ],
    "Resource": [
      "arn:aws:dynamodb:*:*:table/blog-*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "ReplicasOfItsTables",
    "Effect": "Allow",
    "Action": [
      "dynamodb:CreateTableReplica",
      "dynamodb:DeleteTableReplica",
      "dynamodb:Scan",
      "dynamodb:Query",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem"
    ],
    "Resource": [
      "arn:aws:dynamodb:*:*:table/blog-*"
    ]
  }
]"#;

pub(crate) const SERVICE: &str = "dynamodb";

const TABLE: &str = "arn:aws:dynamodb:{region}:{account}:table/{table}";
/// The table's replica in a placement region.
const REPLICA: &str = "arn:aws:dynamodb:eu-central-1:{account}:table/{table}";
/// What DynamoDB checks on the caller when UpdateTable adds or removes a replica (AWS's
/// "DynamoDB global tables security": CreateTableReplica with item access in the new region).
const FILL: &str = "what DynamoDB checks on the caller when it fills a new replica";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create the table", "dynamodb:CreateTable", TABLE),
    Call::new("describe the table", "dynamodb:DescribeTable", TABLE),
    Call::new("list the region's tables", "dynamodb:ListTables", "*"),
    Call::new("change its billing, add or remove a replica", "dynamodb:UpdateTable", TABLE),
    Call::new("delete the table", "dynamodb:DeleteTable", TABLE).with(&[OWN_TAGGED]),
    Call::new("read the table's tags", "dynamodb:ListTagsOfResource", TABLE),
    Call::new("tag the table", "dynamodb:TagResource", TABLE),
    Call::new("drop the retained mark of a table taken back", "dynamodb:UntagResource", TABLE).with(&[OWN_TAGGED]),
    Call::new("the replica DynamoDB makes", "dynamodb:CreateTableReplica", REPLICA),
    Call::new("the replica DynamoDB removes", "dynamodb:DeleteTableReplica", REPLICA),
    Call::new("read the replica's table", "dynamodb:DescribeTable", REPLICA),
    Call::new(FILL, "dynamodb:Scan", REPLICA),
    Call::new(FILL, "dynamodb:Query", REPLICA),
    Call::new(FILL, "dynamodb:GetItem", REPLICA),
    Call::new(FILL, "dynamodb:PutItem", REPLICA),
    Call::new(FILL, "dynamodb:UpdateItem", REPLICA),
    Call::new(FILL, "dynamodb:DeleteItem", REPLICA),
    Call::new(FILL, "dynamodb:BatchWriteItem", REPLICA),
    Call::new("DynamoDB's replication role, on first use", "iam:CreateServiceLinkedRole", "*")
        .with(&[("iam:AWSServiceName", r#""replication.dynamodb.amazonaws.com""#)]),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, super::ErrorKind)] = &[];

/// What was found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableObserved {
    pub arn: String,
    pub status: String,
}

fn tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    super::tags::sdk_tags(tags, |k, v| Tag::builder().key(k).value(v).build().ok())
}

async fn describe(clients: &AwsClients, name: &str) -> CloudResult<Option<TableDescription>> {
    let out =
        clients.dynamodb.describe_table().table_name(name).send().await.map_err(map_sdk(SERVICE, "DescribeTable"));
    Ok(super::found(out)?.and_then(|out| out.table))
}

async fn owner_tags(clients: &AwsClients, arn: &str) -> CloudResult<BTreeMap<String, String>> {
    let out = clients
        .dynamodb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "ListTagsOfResource"))?;
    Ok(out.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect())
}

fn not_owned(name: &str) -> CloudError {
    let mut err = CloudError::not_owned(SERVICE, "DescribeTable", format!("table {name}"));
    // A table holds data: say plainly that the operator will not touch it.
    err.message.push_str("; rename or remove it");
    err
}

/// The error code of a table the spec names but may not take; [`crate::apply::failure_reason`]
/// turns it into the `TableNotAdoptable` reason.
pub const NOT_ADOPTABLE: &str = "TableNotAdoptable";

fn not_adoptable(message: String) -> CloudError {
    CloudError::refused(SERVICE, "DescribeTable", NOT_ADOPTABLE, message)
}

/// Key `id` and the list index: what the blog service reads and writes.
fn has_blog_layout(found: &TableDescription) -> bool {
    let key = found.key_schema().iter().any(|k| k.attribute_name() == blog_aws::KEY && k.key_type().as_str() == "HASH");
    let index = found.global_secondary_indexes().iter().any(|i| i.index_name() == Some(blog_aws::LIST_INDEX));
    key && index
}

/// Tags a table as this owner's, then drops the retained mark; a cut between the two is finished
/// by the next reconcile, which finds the table ours and still marked.
async fn take(clients: &AwsClients, arn: &str, tag_set: &BTreeMap<String, String>) -> CloudResult<()> {
    clients
        .dynamodb
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags(tag_set)))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "TagResource"))?;
    clients
        .dynamodb
        .untag_resource()
        .resource_arn(arn)
        .tag_keys(RETAINED_TAG)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "UntagResource"))?;
    Ok(())
}

/// Uses the table found under the wanted name when [`claim_table`] allows: this owner's, or one to
/// take back (with the blog's layout only).
async fn claim(
    clients: &AwsClients,
    owner: &Owner,
    table: &DesiredTable,
    found: &TableDescription,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<()> {
    let arn = found.table_arn().unwrap_or_default();
    // Confirmed this owner's a deep period ago at most, for this table (one made again under the
    // name has another creation time): its tags are not read again until then.
    let (resource, confirmed) = (format!("tags of table {arn}"), (&owner.uid, found.creation_date_time()));
    if !clients.inventories.deep.due(&resource, &format!("{confirmed:?}")) {
        return Ok(());
    }
    let found_tags = owner_tags(clients, arn).await?;
    let global = !found.replicas().is_empty() || found.global_table_version().is_some();
    match claim_table(owner, table, &found_tags, global) {
        TableClaim::Ours if found_tags.contains_key(RETAINED_TAG) => take(clients, arn, tag_set).await,
        TableClaim::Ours => {
            clients.inventories.deep.done(&resource, &format!("{confirmed:?}"));
            Ok(())
        }
        TableClaim::Adopt if has_blog_layout(found) => {
            tracing::info!(table = table.name, "taking the table back");
            take(clients, arn, tag_set).await
        }
        TableClaim::Adopt => Err(not_adoptable(format!(
            "table {} does not have the blog's layout (key `{}`, index `{}`)",
            table.name,
            blog_aws::KEY,
            blog_aws::LIST_INDEX
        ))),
        TableClaim::Refuse(_) if !table.named => Err(not_owned(&table.name)),
        TableClaim::Refuse(why) => Err(not_adoptable(why)),
    }
}

fn throughput(table: &DesiredTable) -> Option<ProvisionedThroughput> {
    match table.billing_mode {
        BillingMode::PayPerRequest => None,
        BillingMode::Provisioned => ProvisionedThroughput::builder()
            .read_capacity_units(table.read_capacity_units.unwrap_or(1))
            .write_capacity_units(table.write_capacity_units.unwrap_or(1))
            .build()
            .ok(),
    }
}

/// Finds the table by name and confirms it is this owner's by its tags (every time: an ARN in
/// status is no ownership check), creates it when missing under a name the operator generated, and
/// updates its billing when it differs. Creating it makes exactly the layout the blog service reads.
///
/// # Errors
/// The AWS failure, or a refusal when the name belongs to someone else or a named table is missing.
pub async fn ensure_table(
    clients: &AwsClients,
    owner: &Owner,
    table: &DesiredTable,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<TableObserved> {
    // Read in full a deep period apart while the table is active, listed and wanted the same: it
    // was this owner's then, and only the operator changes its billing.
    let (resource, desired) = (format!("table {}", table.name), format!("{} {table:?}", owner.uid));
    let listed = clients.inventories.tables.look_up("", &table.name, || list_tables(clients.clone())).await;
    let kept = clients.inventories.table_reads.kept(&resource, &desired);
    if let (Listed::Found(()), Some(kept)) = (&listed, kept) {
        return Ok(kept);
    }
    // Not listed, and never seen by this process: made without a look first (one made since the
    // listing answers that its name is taken, and is then read and claimed).
    let seen = format!("table {} seen", table.name);
    let observed = match listed {
        Listed::Absent if !table.must_exist && clients.inventories.deep.due(&seen, &()) => {
            match create_table(clients, table, tag_set).await {
                Err(err) if err.is_name_taken() => read_and_ensure_table(clients, owner, table, tag_set).await,
                created => created,
            }
        }
        _ => read_and_ensure_table(clients, owner, table, tag_set).await,
    }?;
    clients.inventories.deep.done(&seen, &());
    match observed.status.as_str() {
        "ACTIVE" => clients.inventories.table_reads.keep(&resource, &desired, observed.clone()),
        _ => clients.inventories.table_reads.forget(&resource),
    }
    Ok(observed)
}

/// Drops the table as kept by [`ensure_table`]: the operator is about to change it.
fn forget_table(clients: &AwsClients, name: &str) {
    clients.inventories.table_reads.forget(&format!("table {name}"));
}

/// The region's tables by name, in pages of 100 (`ListTables`).
async fn list_tables(clients: AwsClients) -> CloudResult<std::collections::HashMap<String, ()>> {
    let mut names = std::collections::HashMap::new();
    let mut pages = clients.dynamodb.list_tables().limit(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(map_sdk(SERVICE, "ListTables"))?;
        names.extend(page.table_names().iter().map(|name| (name.clone(), ())));
    }
    Ok(names)
}

async fn read_and_ensure_table(
    clients: &AwsClients,
    owner: &Owner,
    table: &DesiredTable,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<TableObserved> {
    let Some(found) = describe(clients, &table.name).await? else {
        if table.must_exist {
            return Err(not_adoptable(format!(
                "table {} does not exist; the operator creates tables only under the names it generates: create \
                 it first, or drop spec.table.name",
                table.name
            )));
        }
        return create_table(clients, table, tag_set).await;
    };
    let arn = found.table_arn().unwrap_or_default().to_owned();
    claim(clients, owner, table, &found, tag_set).await?;
    // DynamoDB refuses an update while the table is not ACTIVE; the next reconcile makes it.
    if found.table_status() == Some(&TableStatus::Active) && billing_differs(&found, table) {
        clients
            .dynamodb
            .update_table()
            .table_name(&table.name)
            .billing_mode(sdk_billing_mode(table.billing_mode))
            .set_provisioned_throughput(throughput(table))
            .send()
            .await
            .map_err(map_sdk(SERVICE, "UpdateTable"))?;
    }
    Ok(TableObserved {
        arn,
        status: found.table_status().map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
    })
}

fn sdk_billing_mode(mode: BillingMode) -> SdkBillingMode {
    match mode {
        BillingMode::PayPerRequest => SdkBillingMode::PayPerRequest,
        BillingMode::Provisioned => SdkBillingMode::Provisioned,
    }
}

fn billing_differs(found: &TableDescription, table: &DesiredTable) -> bool {
    let current_mode =
        found.billing_mode_summary().and_then(|b| b.billing_mode()).cloned().unwrap_or(SdkBillingMode::Provisioned);
    let wanted_mode = sdk_billing_mode(table.billing_mode);
    let current_throughput = found
        .provisioned_throughput()
        .map(|t| (t.read_capacity_units().unwrap_or(0), t.write_capacity_units().unwrap_or(0)));
    let wanted_throughput = (table.read_capacity_units.unwrap_or(0), table.write_capacity_units.unwrap_or(0));
    current_mode != wanted_mode
        || (wanted_mode == SdkBillingMode::Provisioned && current_throughput != Some(wanted_throughput))
}

async fn create_table(
    clients: &AwsClients,
    table: &DesiredTable,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<TableObserved> {
    let mut create =
        blog_aws::table_schema(clients.dynamodb.create_table().table_name(&table.name)).set_tags(Some(tags(tag_set)));
    if let Some(throughput) = throughput(table) {
        create = create.billing_mode(SdkBillingMode::Provisioned).provisioned_throughput(throughput.clone());
        // Provisioned tables need capacity on their index too.
        let indexes: Vec<_> = create
            .get_global_secondary_indexes()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|mut index| {
                index.provisioned_throughput = Some(throughput.clone());
                index
            })
            .collect();
        create = create.set_global_secondary_indexes(Some(indexes));
    }
    let out = create.send().await.map_err(map_sdk(SERVICE, "CreateTable"))?;
    let description = out.table_description();
    Ok(TableObserved {
        arn: description.and_then(|d| d.table_arn()).unwrap_or_default().to_owned(),
        status: description
            .and_then(|d| d.table_status())
            .map_or_else(|| "CREATING".to_owned(), |s| s.as_str().to_owned()),
    })
}

/// Marks a table kept at deletion (`deletionPolicy: Retain`) as retained, so a BlogDeployment of
/// the same namespace may take it back; a table gone or not ours is left as it is.
///
/// # Errors
/// The AWS failure.
pub async fn mark_retained(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    forget_table(clients, name);
    let Some(found) = describe(clients, name).await? else { return Ok(()) };
    let arn = found.table_arn().unwrap_or_default();
    if !owner.owns(&owner_tags(clients, arn).await?) {
        return Ok(());
    }
    let mark = BTreeMap::from([(RETAINED_TAG.to_owned(), "true".to_owned())]);
    let tagged = clients.dynamodb.tag_resource().resource_arn(arn).set_tags(Some(tags(&mark))).send().await;
    gone_is_done(tagged.map_err(map_sdk(SERVICE, "TagResource")))
}

/// Deletes the table if it is there and ours; gone already counts as done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_table(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    forget_table(clients, name);
    let Some(found) = describe(clients, name).await? else { return Ok(()) };
    if !owner.owns(&owner_tags(clients, found.table_arn().unwrap_or_default()).await?) {
        tracing::warn!(table = name, "not deleting a table this BlogDeployment does not own");
        return Ok(());
    }
    gone_is_done(clients.dynamodb.delete_table().table_name(name).send().await.map_err(map_sdk(SERVICE, "DeleteTable")))
}

/// A replica of the home table in another region, as the home table lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaObserved {
    /// `CREATING`, `ACTIVE`, `UPDATING`, `DELETING`, ...; empty once it is gone.
    pub status: String,
}

/// The home table's replica in `region`, by its `Replicas` list (global tables 2019.11.21).
async fn replica_status(home: &AwsClients, name: &str, region: &str) -> CloudResult<Option<String>> {
    let table = describe(home, name).await?;
    let replicas = table.as_ref().map(TableDescription::replicas).unwrap_or_default();
    Ok(replicas
        .iter()
        .find(|r| r.region_name() == Some(region))
        .map(|r| r.replica_status().map(|s| s.as_str().to_owned()).unwrap_or_default()))
}

/// Makes the home table (in `home`'s region, made by this owner) replicate to `region`: one
/// `UpdateTable` replica create, then its state as DynamoDB reports it. A repeat after a lost
/// answer finds the replica listed and sends nothing.
///
/// # Errors
/// The AWS failure; `ResourceInUse` (another replica update still running) is transient.
pub async fn ensure_replica(home: &AwsClients, name: &str, region: &str) -> CloudResult<ReplicaObserved> {
    if let Some(status) = replica_status(home, name, region).await? {
        return Ok(ReplicaObserved { status });
    }
    let create = aws_sdk_dynamodb::types::CreateReplicationGroupMemberAction::builder()
        .region_name(region)
        .build()
        .map_err(|e| CloudError::local(SERVICE, "UpdateTable", super::ErrorKind::Invalid, e.to_string()))?;
    let update = aws_sdk_dynamodb::types::ReplicationGroupUpdate::builder().create(create).build();
    forget_table(home, name);
    home.dynamodb
        .update_table()
        .table_name(name)
        .replica_updates(update)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "UpdateTable"))?;
    Ok(ReplicaObserved { status: TableStatus::Creating.as_str().to_owned() })
}

/// Refuses a region the home table already lists before this owner recorded it: a replica made
/// by someone else is never used (nor, later, removed).
///
/// # Errors
/// A refusal naming the region, or the AWS failure.
pub async fn refuse_listed_replica(home: &AwsClients, name: &str, region: &str) -> CloudResult<()> {
    match replica_status(home, name, region).await? {
        None => Ok(()),
        Some(_) => {
            Err(CloudError::not_owned(SERVICE, "DescribeTable", format!("the replica of table {name} in {region}")))
        }
    }
}

/// Tags the replica in its own region as this owner's once DynamoDB made it (a replica carries
/// none of the home table's tags), so that every later use and removal is a tag check. One carrying
/// someone else's ownership tags is refused.
///
/// # Errors
/// The refusal, or the AWS failure.
pub async fn claim_replica(
    clients: &AwsClients,
    owner: &Owner,
    name: &str,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<Option<TableObserved>> {
    let Some(found) = describe(clients, name).await? else { return Ok(None) };
    let observed = TableObserved {
        arn: found.table_arn().unwrap_or_default().to_owned(),
        status: found.table_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
    };
    if found.table_status() != Some(&TableStatus::Active) {
        return Ok(Some(observed));
    }
    let found_tags = owner_tags(clients, &observed.arn).await?;
    if owner.owns(&found_tags) {
        return Ok(Some(observed));
    }
    if found_tags.contains_key(crate::desired::UID_TAG) {
        return Err(not_owned(name));
    }
    let tagged = clients.dynamodb.tag_resource().resource_arn(&observed.arn).set_tags(Some(tags(tag_set))).send().await;
    tagged.map_err(map_sdk(SERVICE, "TagResource"))?;
    Ok(Some(observed))
}

/// The replica in its own region, only when it carries this owner's tags (or is still being made,
/// before it can be tagged).
///
/// # Errors
/// A refusal when an ACTIVE replica is not tagged as this owner's, or the AWS failure.
pub async fn owned_replica(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<Option<TableObserved>> {
    let Some(found) = describe(clients, name).await? else { return Ok(None) };
    let arn = found.table_arn().unwrap_or_default().to_owned();
    if found.table_status() == Some(&TableStatus::Active) && !owner.owns(&owner_tags(clients, &arn).await?) {
        return Err(not_owned(name));
    }
    let status = found.table_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
    Ok(Some(TableObserved { arn, status }))
}

/// Removes the home table's replica in `region` (never the home table itself) once its tags in
/// `regional` say it is this owner's. `Ok(true)` once the home table no longer lists it.
///
/// # Errors
/// The AWS failure, or a refusal when the replica is someone else's.
pub async fn remove_replica(
    (home, regional): (&AwsClients, &AwsClients),
    owner: &Owner,
    name: &str,
    region: &str,
) -> CloudResult<bool> {
    match replica_status(home, name, region).await?.as_deref() {
        None => return Ok(true),
        Some("DELETING") => return Ok(false),
        Some(_) => {}
    }
    owned_replica(regional, owner, name).await?;
    let delete = aws_sdk_dynamodb::types::DeleteReplicationGroupMemberAction::builder()
        .region_name(region)
        .build()
        .map_err(|e| CloudError::local(SERVICE, "UpdateTable", super::ErrorKind::Invalid, e.to_string()))?;
    let update = aws_sdk_dynamodb::types::ReplicationGroupUpdate::builder().delete(delete).build();
    forget_table(home, name);
    let sent = home.dynamodb.update_table().table_name(name).replica_updates(update).send().await;
    gone_is_done(sent.map(drop).map_err(map_sdk(SERVICE, "UpdateTable")))?;
    Ok(false)
}
