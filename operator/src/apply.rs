//! The apply step: brings AWS to the desired state, one idempotent `ensure_*` after another, and
//! says what it observed; and cleanup, which removes everything in dependency order.
//!
//! Every step may run twice or be cut off halfway: each looks its resource up by name (and checks
//! the ownership tags) before creating it, and a delete answered NotFound is done.

use crate::cloud::{self, AwsClients, CloudError, CloudResult, ErrorKind};
use crate::crd::{DeletionPolicy, ResourceIds};
use crate::desired::{self, Desired, Names, Owner};
use crate::status::PartState;

/// What one apply saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub table: PartState,
    pub function: PartState,
    pub container: PartState,
    pub function_url: Option<String>,
    pub resources: ResourceIds,
}

/// Which part of the deployment an AWS service belongs to, for the condition a failure lands on.
#[must_use]
pub fn part_of(error: &CloudError) -> Part {
    match error.service {
        "dynamodb" => Part::Table,
        _ => Part::Function,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Table,
    Function,
}

/// A condition reason for a failure a person must act on.
#[must_use]
pub fn failure_reason(error: &CloudError) -> &'static str {
    match error.kind {
        ErrorKind::AccessDenied => "AccessDenied",
        ErrorKind::Invalid => "InvalidRequest",
        ErrorKind::NotFound | ErrorKind::AlreadyExists | ErrorKind::Transient | ErrorKind::Other => "AwsError",
    }
}

/// Brings the table and the enabled variants to `desired`, removing disabled variants.
///
/// # Errors
/// The first AWS failure; the caller decides between retry and a condition.
pub async fn apply(clients: &AwsClients, desired: &Desired) -> CloudResult<Applied> {
    let owner = &desired.owner;
    let mut resources = ResourceIds::default();

    let table = cloud::dynamodb::ensure_table(clients, owner, &desired.table, &desired.tags).await?;
    resources.table_arn = Some(table.arn.clone());
    let table_state = if table.status == "ACTIVE" {
        PartState::ready("Active", format!("table {} is ACTIVE", desired.table.name))
    } else {
        PartState::not_ready("Creating", format!("table {} is {}", desired.table.name, table.status))
    };

    let (function_state, function_url) = match &desired.function {
        Some(function) => {
            let (state, url) = apply_function(clients, desired, function, &table.arn, &mut resources).await?;
            (state, url)
        }
        None => {
            remove_function(clients, owner, &desired.names).await?;
            (PartState::ready("Disabled", "the function variant is disabled"), None)
        }
    };

    // The container variant (ECS Fargate + ALB) is not built by this version of the operator: say
    // so plainly instead of pretending.
    let container_state = if desired.container_enabled {
        PartState::not_ready(
            "NotImplemented",
            "this operator version does not yet create the container variant; set spec.container.enabled: false",
        )
    } else {
        PartState::ready("Disabled", "the container variant is disabled")
    };

    Ok(Applied { table: table_state, function: function_state, container: container_state, function_url, resources })
}

async fn apply_function(
    clients: &AwsClients,
    desired: &Desired,
    function: &desired::DesiredFunction,
    table_arn: &str,
    resources: &mut ResourceIds,
) -> CloudResult<(PartState, Option<String>)> {
    let owner = &desired.owner;
    let account = desired::account_of(table_arn)
        .ok_or_else(|| CloudError::local("dynamodb", "DescribeTable", ErrorKind::Other, "table ARN has no account"))?
        .to_owned();
    cloud::logs::ensure_log_group(clients, &function.log_group, desired::LOG_RETENTION_DAYS, &desired.tags).await?;
    let log_group_arn = desired::log_group_arn(&desired.region, &account, &function.log_group);
    let trust = desired::trust_policy("lambda.amazonaws.com");
    let policy = desired::function_policy(table_arn, &log_group_arn);
    let role = cloud::iam::DesiredRole { name: &function.role_name, trust: &trust, policy: &policy };
    let role_arn = cloud::iam::ensure_role(clients, owner, &role, &desired.tags).await?;

    let observed = cloud::lambda::ensure_function(clients, owner, function, &role_arn, &desired.tags).await?;
    resources.function_arn = Some(observed.arn.clone());
    let api = cloud::apigateway::ensure_api(clients, owner, &function.api_name, &observed.arn, &desired.tags).await?;
    resources.api_id = Some(api.id.clone());
    let source_arn = desired::api_source_arn(&desired.region, &account, &api.id);
    cloud::lambda::ensure_invoke_permission(clients, &function.name, &source_arn).await?;

    let url = Some(api.endpoint.clone()).filter(|e| !e.is_empty());
    let state = match observed.state {
        cloud::lambda::FunctionState::Active => PartState::ready("Available", format!("serving at {}", api.endpoint)),
        cloud::lambda::FunctionState::Pending(why) => PartState::not_ready("Progressing", why),
        cloud::lambda::FunctionState::Failed(why) => PartState::not_ready("FunctionFailed", why),
    };
    Ok((state, url))
}

/// Removes the function variant: API (its routes, integration and stage go with it), function (its
/// permission goes with it), log group, role.
async fn remove_function(clients: &AwsClients, owner: &Owner, names: &Names) -> CloudResult<()> {
    cloud::apigateway::delete_api(clients, owner, &names.api).await?;
    cloud::lambda::delete_function(clients, owner, &names.function).await?;
    cloud::logs::delete_log_group(clients, &names.function_log_group).await?;
    cloud::iam::delete_role(clients, owner, &names.function_role).await
}

/// Removes everything the owner may have made, whatever the spec says now; the table only when
/// `deletion_policy` is `Delete`.
///
/// # Errors
/// The first AWS failure; cleanup is retried until it succeeds.
pub async fn cleanup(clients: &AwsClients, owner: &Owner, deletion_policy: DeletionPolicy) -> CloudResult<()> {
    let names = Names::for_owner(owner);
    remove_function(clients, owner, &names).await?;
    if deletion_policy == DeletionPolicy::Delete {
        cloud::dynamodb::delete_table(clients, owner, &names.table).await?;
    }
    Ok(())
}
