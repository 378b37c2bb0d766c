//! The steps every stack has, whichever variants run: the table, the write token's secret, the
//! certificates and the domain binding. Domain decisions live in `domain` and `https`.

use super::{Removal, Stack};
use crate::aws::Scope;
use crate::cloud::{self, AwsClients, CloudError, CloudResult, ErrorKind};
use crate::crd::{DeletionPolicy, ResourceIds};
use crate::desired::{Desired, VariantUrls};
use crate::https;
use crate::status::{self, PartState, reason};

/// The table (or the replica), its state, its ARN and the scope every other ARN is built in.
pub(super) async fn ensure_table(stack: &mut Stack<'_>) -> CloudResult<()> {
    let (clients, desired) = (stack.clients, &stack.desired);
    let (state, arn, scope) = match &desired.table.replica_of {
        Some(home) => replica_table(clients, desired, stack.recorded, home).await?,
        None => own_table(clients, desired).await?,
    };
    stack.resources.table_arn = Some(arn.clone());
    stack.table_arn = arn;
    stack.scope = Some(scope);
    stack.reached.table = Some(state);
    Ok(())
}

async fn own_table(clients: &AwsClients, desired: &Desired) -> CloudResult<(PartState, String, Scope)> {
    let table = cloud::dynamodb::ensure_table(clients, &desired.owner, &desired.table, &desired.tags).await?;
    let scope = Scope::of_arn(&table.arn).ok_or_else(|| {
        CloudError::local("dynamodb", "DescribeTable", ErrorKind::Other, "table ARN has no region or account")
    })?;
    Ok((status::table_state(&desired.table.name, &table.status), table.arn, scope))
}

/// The home table's replica in a placement region: made through the home table (by the placement),
/// read here. Until DynamoDB shows it, the ARN it will have (`recorded`, in this region) scopes the
/// rest of the stack.
async fn replica_table(
    clients: &AwsClients,
    desired: &Desired,
    recorded: &ResourceIds,
    home: &str,
) -> CloudResult<(PartState, String, Scope)> {
    let name = &desired.table.name;
    let found = cloud::dynamodb::owned_replica(clients, &desired.owner, name).await?;
    let arn = found.as_ref().map(|t| t.arn.clone()).or_else(|| recorded.table_arn.clone()).unwrap_or_default();
    let scope = Scope::of_arn(&arn).ok_or_else(|| {
        CloudError::local("dynamodb", "DescribeTable", ErrorKind::Other, "the replica's ARN is not known yet")
    })?;
    let state = match found {
        Some(table) => status::table_state(name, &table.status),
        None => PartState::not_ready(
            reason::CREATING,
            format!("DynamoDB is making the replica of {name} from {home} in {}", desired.region),
        ),
    };
    Ok((state, arn, scope))
}

/// Deletes the home table, or marks it retained for a later BlogDeployment.
pub(super) async fn remove_table(removal: &Removal<'_>) -> CloudResult<()> {
    let (clients, owner) = (removal.clients, &removal.owner);
    match &removal.table {
        Some((table, DeletionPolicy::Delete)) => cloud::dynamodb::delete_table(clients, owner, table).await,
        Some((table, DeletionPolicy::Retain)) => cloud::dynamodb::mark_retained(clients, owner, table).await,
        None => Ok(()),
    }
}

/// The token's secret is shared data, like the table: its ARN goes into both variants' settings
/// and roles, so the roles are known from here on.
pub(super) async fn ensure_write_token(stack: &mut Stack<'_>) -> CloudResult<()> {
    let desired = &stack.desired;
    let secret = &desired.names.write_token_secret;
    let token =
        cloud::secrets::ensure_write_token(stack.clients, &desired.owner, secret, stack.write_token, &desired.tags)
            .await?;
    stack.desired = desired.with_write_token(token);
    stack.roles = Some(stack.desired.roles(stack.scope()?, &stack.table_arn));
    Ok(())
}

pub(super) async fn remove_write_token(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::secrets::delete_write_token(removal.clients, &removal.owner, &removal.names.write_token_secret).await
}

/// The zone and the certificates, before the front doors that use them.
pub(super) async fn ensure_certificates(stack: &mut Stack<'_>) -> CloudResult<()> {
    stack.certificates = https::ensure_certificates(stack.clients, &stack.desired, stack.recorded).await?;
    https::record(&mut stack.resources, &stack.desired, &stack.certificates);
    Ok(())
}

/// Every certificate of this owner, but the validation records of hosts other regions serve.
pub(super) async fn remove_certificates(removal: &Removal<'_>) -> CloudResult<()> {
    let (recorded, kept) = (removal.recorded, &removal.kept_hosts);
    let zone = removal.zone.as_ref();
    let keep = (removal.kept_certificate.as_deref(), zone);
    https::remove_stale_certificates(removal.clients, &removal.owner, recorded, kept, keep).await
}

/// Certificates a changed domain no longer uses. Listing every certificate of the account is for
/// when something changed, not every resync.
pub(super) async fn prune_certificates(removal: &Removal<'_>) -> CloudResult<()> {
    let keep = removal.kept_certificate.as_deref();
    if https::may_have_stale_certificates(removal.recorded, &removal.kept_hosts, keep) {
        return remove_certificates(removal).await;
    }
    Ok(())
}

/// Stale hosts unbound first, then the wanted ones bound to the front doors that stand; the URLs
/// go into both variants' settings.
pub(super) async fn ensure_domain_binding(stack: &mut Stack<'_>) -> CloudResult<()> {
    let (clients, desired) = (stack.clients, &stack.desired);
    let zone = stack.certificates.zone.as_ref();
    https::unbind_stale(clients, &desired.owner, stack.recorded, desired.domain_hosts(), zone).await?;
    let door = stack.container_door();
    let targets = https::Targets {
        api_id: stack.api.as_ref().map(|a| a.id.as_str()),
        balancer: door.map(|b| (b.dns_name.as_str(), b.zone_id.as_str())),
    };
    let bound = https::bind(clients, desired, &stack.certificates, &targets).await?;
    let api_endpoint = stack.api.as_ref().map(|a| a.endpoint.clone()).filter(|e| !e.is_empty());
    let balancer_url = super::container::url(stack);
    let urls = VariantUrls {
        functions: bound.function_url.clone().or(api_endpoint),
        containers: bound.container_url.clone().or(balancer_url),
    };
    stack.desired = desired.with_urls(&urls);
    stack.reached.domain = Some(bound.state.clone());
    stack.urls = urls;
    stack.bound = bound;
    Ok(())
}

/// Every host's alias record and custom domain.
pub(super) async fn remove_domain_binding(removal: &Removal<'_>) -> CloudResult<()> {
    https::unbind_stale(removal.clients, &removal.owner, removal.recorded, &[], None).await
}
