//! Apply: the plan of resource steps for every region the build wants, home first. Under a
//! placement, the home region's routing steps go around the other regions' stacks: replicas and
//! the routing out of leaving regions before, health checks, records and phases after.

use crate::apply::{self as plan, Applied, ApplyError, ContainerReadiness};
use crate::cloud::Cloud;
use crate::crd::{PlacementSpec, PlacementStatus};
use crate::placement::{Region, Routing, StackWork, routing};

use super::build::Built;

/// What applying takes from the operator and the dereference.
pub struct Stage<'a> {
    /// The account the object's calls run in.
    pub cloud: &'a Cloud,
    pub readiness: ContainerReadiness,
    pub write_token: &'a str,
    /// How long a region leaving stays out of latency routing before it is removed.
    pub drain: std::time::Duration,
}

/// The home region's stack: the plan with home's desired state and the ids its status records.
///
/// # Errors
/// A failure, with the part it lands on.
pub async fn home(
    stage: &Stage<'_>,
    built: &Built,
    (recorded, first): (&crate::crd::ResourceIds, bool),
) -> Result<Applied, ApplyError> {
    let home = built.home();
    let clients = stage.cloud.clients(&home.region);
    plan::apply(&clients, home, (recorded, first), stage.readiness, stage.write_token).await
}

/// What a placement reconcile leaves: the status to write, whether every region is settled, and
/// the note of an Event (Auto changed a region, or the recommendation changed).
pub struct Placing {
    pub status: PlacementStatus,
    pub settled: bool,
    pub note: Option<String>,
}

/// Every placement region after home's apply: routing before, each region's stack, routing after.
/// `None` without a placement; without a zone (no `spec.domain`, which validation refuses) the
/// previous status stays.
pub async fn placement(
    stage: &Stage<'_>,
    (spec, built): (Option<&PlacementSpec>, &Built),
    home_applied: &Applied,
    previous: Option<&PlacementStatus>,
) -> Option<Placing> {
    let (spec, placed) = (spec?, built.placement.as_ref()?);
    let kept = previous.cloned().unwrap_or_default();
    // Home's domain step found the zone; without it nothing can be routed.
    let Some(zone) = home_applied.zone.as_ref() else {
        return Some(Placing { status: kept, settled: false, note: None });
    };
    let home = built.home();
    let table_arn = home_applied.resources.table_arn.as_deref();
    let routing =
        Routing { cloud: stage.cloud, home, home_table_arn: table_arn, host: &spec.host, zone, drain: stage.drain };
    let mut regions = routing::regions(&home.region, &placed.wanted, previous);
    if let Some(at_home) = regions.iter_mut().find(|r| r.is_home()) {
        at_home.applied(Ok(home_applied));
    }
    routing::before_stacks(&routing, &mut regions).await;
    for region in &mut regions {
        stack(stage, (built, &spec.host), region).await;
    }
    let (mut list, settled) = routing::after_stacks(&routing, regions).await;
    for region in &mut list {
        region.monthly_usd = placed.costs.get(&region.region).map(|usd| (usd * 100.0).round() / 100.0);
    }
    let mut status = PlacementStatus { regions: list, ..kept };
    if placed.changed(spec.mode) {
        status.last_change_time =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
    }
    if let Some((_, recommendation)) = &placed.decided {
        status.recommendation = Some(recommendation.clone());
    }
    Some(Placing { status, settled, note: placed.note(spec.mode, previous) })
}

/// A placement region's stack step: the plan with its desired state, or backward once it leaves.
async fn stack(stage: &Stage<'_>, (built, host): (&Built, &str), region: &mut Region) {
    let clients = stage.cloud.clients(region.name());
    match region.stack_work() {
        StackWork::Keep => {}
        StackWork::Apply => {
            let Some(desired) = built.region(region.name()) else { return };
            let recorded = &region.status.resources;
            let applied = plan::apply(&clients, desired, (recorded, false), stage.readiness, stage.write_token).await;
            region.applied(applied.as_ref());
        }
        StackWork::Remove => {
            let owner = &built.home().owner;
            let removed = plan::cleanup_region(&clients, owner, host, &region.status.resources).await;
            region.removed(removed);
        }
    }
}
