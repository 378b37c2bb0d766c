//! Deletion: every AWS resource of a BlogDeployment, in the account that holds them, by the plan
//! backward: placement regions first (routing, stack, replica), then home's stack and table.

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::{dereference, owner_of, reporter};
use crate::apply;
use crate::cloud::{self, Cloud, CloudError, CloudResult};
use crate::context::{Context, Error};
use crate::crd::{BlogDeployment, PlacementStatus};
use crate::desired::{self, Owner};
use crate::placement::routing;
use crate::status;

/// The region a BlogDeployment's resources live in: the one its recorded ARNs name, else the spec's,
/// else the default. Cleanup uses the ARN first, so a later spec edit never strands resources.
fn region_of(bd: &BlogDeployment, default_region: &str) -> String {
    let from_arn = bd.status.as_ref().and_then(|s| s.resources.table_arn.as_deref()).and_then(desired::region_of_arn);
    from_arn.map(str::to_owned).or_else(|| bd.spec.region.clone()).unwrap_or_else(|| default_region.to_owned())
}

/// The table's name: the one in the recorded ARN first (what was made or taken), then the spec's,
/// then the generated one.
fn table_of(bd: &BlogDeployment, owner: &Owner) -> String {
    let recorded = bd.status.as_ref().and_then(|s| s.resources.table_arn.as_deref()).and_then(desired::table_of_arn);
    recorded
        .map(str::to_owned)
        .or_else(|| bd.spec.table.name.clone())
        .unwrap_or_else(|| desired::Names::for_owner(owner).table)
}

/// Every AWS resource of a BlogDeployment being deleted, in the account that holds them: placement
/// regions first, then home's stack and table.
async fn remove_everything(bd: &BlogDeployment, ctx: &Context, owner: &Owner) -> Result<(), CloudError> {
    let recorded = bd.status.as_ref().map(|s| s.resources.clone()).unwrap_or_default();
    let policy = &ctx.settings.tenant_policy;
    if let Some(moved) = policy.account_moved(&owner.namespace, recorded.table_arn.as_deref()) {
        return Err(CloudError::refused("sts", "AssumeRole", "AccountMoved", moved));
    }
    let rules = policy.for_namespace(&owner.namespace);
    let cloud = dereference::cloud_for(bd, (&ctx.cloud, &rules), owner).await?;
    // Paused: deletion waits too, saying what it would remove first.
    let cloud = if crate::crd::is_paused(bd.annotations()) { cloud.observing() } else { cloud };
    let clients = cloud.clients(&region_of(bd, &ctx.settings.default_region));
    let table = table_of(bd, owner);
    let placement = bd.status.as_ref().and_then(|s| s.placement.as_deref());
    let home = (clients.region.as_str(), table.as_str());
    remove_placement(&cloud, &bd.spec, owner, home, placement).await?;
    let names = desired::Names::for_owner(owner);
    apply::cleanup(&clients, owner, &names, (Some((&table, bd.spec.table.deletion_policy)), &[]), &recorded).await
}

/// Removes everything the object made. Never waits on validation: a broken spec must not block
/// deletion.
///
/// # Errors
/// The AWS failure, after saying on every condition why the deletion cannot finish.
#[tracing::instrument(skip_all, fields(namespace = bd.namespace(), blogdeployment = bd.name_any()))]
pub async fn cleanup(bd: &BlogDeployment, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(bd)?;
    let report = reporter(bd, ctx);
    if let Err(err) = remove_everything(bd, ctx, &owner).await {
        tracing::warn!(error = %err, "deletion blocked");
        let previous = bd.status.clone().unwrap_or_default();
        let why = status::tenant_message(&err.to_string());
        let observed = status::refused(bd.metadata.generation, status::reason::DELETION_BLOCKED, &why);
        report.publish(&previous, previous.clone(), &observed).await?;
        return Err(err.into());
    }
    ctx.metrics.set_ready(&format!("{}/{}", owner.namespace, owner.name), None);
    ctx.metrics.set_deployment(&owner.namespace, &owner.name, None);
    ctx.metrics_cache.forget(&owner.uid);
    ctx.settled(&owner.uid);
    report.record(EventType::Normal, "Deleted", "every AWS resource of this BlogDeployment is gone").await;
    Ok(Action::await_change())
}

/// Every placement region's part, each as it leaves a placement (routing, then its stack by the
/// plan backward, then its replica), then any health check of this owner's left (found by caller
/// reference and tags). `Ok(())` once nothing but home's stack and table is left.
async fn remove_placement(
    cloud: &Cloud,
    spec: &crate::crd::BlogDeploymentSpec,
    owner: &Owner,
    (home_region, table): (&str, &str),
    previous: Option<&PlacementStatus>,
) -> CloudResult<()> {
    let (Some(mut status), Some(placement), Some(domain)) = (previous.cloned(), &spec.placement, &spec.domain) else {
        return Ok(());
    };
    let clients = cloud.clients(home_region);
    let zone = cloud::route53::find_zone(&clients, &crate::domain::ZoneRef::parse(&domain.hosted_zone)).await?;
    let host = placement.host.as_str();
    let mut all_gone = true;
    for region in &mut status.regions {
        routing::remove_routing(&clients, owner, (&zone.id, host), region).await?;
        if region.region != home_region {
            apply::cleanup_region(&cloud.clients(&region.region), owner, host, &region.resources).await?;
        }
        all_gone &= routing::remove_replica(cloud, (owner, home_region, table), region).await?;
    }
    if !all_gone {
        return Err(routing::replicas_pending());
    }
    // Health checks status no longer names (a replacement whose status write was lost).
    cloud::route53::delete_health_checks(&clients, owner, &cloud::route53::owned_health_checks(&clients, owner).await?)
        .await
}
