//! Routing a placement: the home region's steps around the regions' stacks, which the plan of
//! resource steps brings up like home's. Before the stacks: each wanted region's table replica
//! (recorded, then asked for through the home table) and the routing out of a region being
//! removed. After them: the health checks, the weighted and latency records, each region's phase as
//! `blog_core::placement::regions` moves it, and the replica of a region whose stack is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::apply::{Applied, ApplyError, Doors};
use crate::cloud::route53::{Probe, Zone};
use crate::cloud::{self, AwsClients, CloudError, CloudResult, ErrorKind};
use crate::crd::{PlacementStatus, PlacementVariant, RegionStatus};
use crate::desired::{Desired, Owner};
use crate::domain::RecordValue;
use blog_core::placement::regions::{self, Phase, Seen, Target, Wanted};

/// Where the health checks probe: the blog's readiness, which fails while its table is unreachable.
pub const HEALTH_PATH: &str = "/readyz";

/// What the home region's routing steps work from.
pub struct Routing<'a> {
    pub cloud: &'a cloud::Cloud,
    pub home: &'a Desired,
    /// The home table's ARN, as home's apply recorded it: a replica's ARN is made from it.
    pub home_table_arn: Option<&'a str>,
    /// The host every region serves.
    pub host: &'a str,
    pub zone: &'a Zone,
    /// How long a region leaving stays out of latency routing before it is removed: the records' TTL.
    pub drain: Duration,
}

impl Routing<'_> {
    fn clients(&self) -> AwsClients {
        self.cloud.clients(&self.home.region)
    }
    fn owner(&self) -> &Owner {
        &self.home.owner
    }
    fn enabled(&self) -> regions::Enabled {
        (self.home.function.is_some(), self.home.container.is_some())
    }
}

/// What the region's stack step is to do in this reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackWork {
    /// Nothing: home's stack is the ordinary apply, a draining region keeps its stack as it is,
    /// and a region waits for its replica to be recorded.
    Keep,
    /// Run the plan with the region's desired state.
    Apply,
    /// Run the plan backward: the region's routing is gone.
    Remove,
}

/// One region through a placement reconcile: its status as it will be written, and what the steps
/// saw of it on the way.
pub struct Region {
    pub status: RegionStatus,
    is_home: bool,
    phase: Phase,
    since: Option<Time>,
    /// `Some(variant)` while the placement wants the region (`None` inside: both variants).
    wanted: Option<Option<PlacementVariant>>,
    /// The (function, container) weights in effect before this reconcile.
    weights_before: (i64, i64),
    replica: Option<String>,
    stack: Option<(bool, Doors)>,
    stack_gone: bool,
    failed: bool,
}

impl Region {
    fn new(before: RegionStatus, wanted: Option<Option<PlacementVariant>>, is_home: bool) -> Self {
        let phase = Phase::parse(&before.phase);
        let since = before.since.clone();
        let weights_before = (before.function_weight, before.container_weight);
        let status = RegionStatus { message: String::new(), failure: None, ..before };
        Self {
            status,
            is_home,
            phase,
            since,
            wanted,
            weights_before,
            replica: None,
            stack: None,
            stack_gone: false,
            failed: false,
        }
    }

    #[must_use]
    pub fn is_home(&self) -> bool {
        self.is_home
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.status.region
    }

    /// What the stack step does for this region now; home's stack is applied before placement.
    #[must_use]
    pub fn stack_work(&self) -> StackWork {
        match (self.wanted, self.phase) {
            _ if self.is_home || self.failed => StackWork::Keep,
            (Some(_), _) if self.replica.is_some() => StackWork::Apply,
            (None, Phase::Removing) => StackWork::Remove,
            _ => StackWork::Keep,
        }
    }

    /// Takes what the plan saw of the region's stack (home's too).
    pub fn applied(&mut self, outcome: Result<&Applied, &ApplyError>) {
        match outcome {
            Ok(applied) => {
                // Home's ids are the object's own status; a region's are recorded in its entry.
                if !self.is_home {
                    self.status.resources = applied.resources.clone();
                }
                let replica_active = self.replica.as_deref().is_none_or(|s| s == "ACTIVE");
                self.stack = Some((stack_ready(applied) && replica_active, applied.front.clone()));
            }
            Err(failed) => self.fail(&failed.error),
        }
    }

    /// Takes the outcome of running the plan backward for a region leaving.
    pub fn removed(&mut self, outcome: CloudResult<()>) {
        match outcome {
            Ok(()) => self.stack_gone = true,
            Err(err) => self.fail(&err),
        }
    }

    /// Says what stopped the region, for its status and the `Degraded` condition.
    fn fail(&mut self, err: &CloudError) {
        tracing::warn!(region = self.status.region, error = %err, "placement step failed");
        self.failed = true;
        self.status.message = crate::status::tenant_message(&err.to_string());
        self.status.failure = Some(crate::apply::failure_reason(err).to_owned());
    }
}

fn stack_ready(applied: &Applied) -> bool {
    [&applied.table, &applied.domain, &applied.function, &applied.container].iter().all(|p| p.ready)
}

/// Every region wanted now or still recorded, home first, then the others by name.
#[must_use]
pub fn regions(home: &str, wanted: &Wanted, previous: Option<&PlacementStatus>) -> Vec<Region> {
    let recorded: BTreeMap<&str, &RegionStatus> =
        previous.iter().flat_map(|p| &p.regions).map(|r| (r.region.as_str(), r)).collect();
    let all: BTreeSet<&str> = wanted.keys().map(String::as_str).chain(recorded.keys().copied()).collect();
    let mut out: Vec<Region> = all
        .into_iter()
        .map(|name| {
            let before = recorded.get(name).map_or_else(|| fresh(name), |r| (*r).clone());
            Region::new(before, wanted.get(name).copied(), name == home)
        })
        .collect();
    out.sort_by_key(|r| (r.name() != home, r.name().to_owned()));
    out
}

fn fresh(region: &str) -> RegionStatus {
    RegionStatus { region: region.to_owned(), phase: Phase::Deploying.as_str().to_owned(), ..RegionStatus::default() }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn in_phase(since: Option<&Time>) -> Duration {
    let elapsed = since.map(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t.0).as_secs_f64());
    Duration::from_secs_f64(elapsed.unwrap_or(0.0).max(0.0))
}

/// The home steps before the stacks: each wanted region's replica, and the routing out of a
/// region being removed (records and health checks go before its stack).
pub async fn before_stacks(routing: &Routing<'_>, regions: &mut [Region]) {
    for region in regions.iter_mut().filter(|r| r.name() != routing.home.region) {
        let outcome = match region.wanted {
            Some(_) => fill_replica(routing, region).await,
            None if region.phase == Phase::Removing => {
                let zone = (routing.zone.id.as_str(), routing.host);
                remove_routing(&routing.clients(), routing.owner(), zone, &mut region.status).await
            }
            None => Ok(()),
        };
        if let Err(err) = outcome {
            region.fail(&err);
        }
    }
}

/// A region's table replica, through the home table. Its ARN is recorded (in status) before the
/// replica is asked for, so a region the home table lists but this owner never recorded is
/// someone else's.
async fn fill_replica(routing: &Routing<'_>, region: &mut Region) -> CloudResult<()> {
    let home = routing.clients();
    let table = &routing.home.table.name;
    let name = region.status.region.clone();
    if region.status.resources.table_arn.is_none() {
        cloud::dynamodb::refuse_listed_replica(&home, table, &name).await?;
        region.status.resources.table_arn = replica_arn(routing, &name);
        region.status.message = "the table replica is recorded; it is asked for next".to_owned();
        return Ok(());
    }
    let replica = cloud::dynamodb::ensure_replica(&home, table, &name).await?;
    let clients = routing.cloud.clients(&name);
    cloud::dynamodb::claim_replica(&clients, routing.owner(), table, &routing.home.tags).await?;
    if replica.status != "ACTIVE" {
        region.status.message = format!("the table replica is {}", replica.status);
    }
    region.replica = Some(replica.status);
    Ok(())
}

fn replica_arn(routing: &Routing<'_>, region: &str) -> Option<String> {
    let scope = crate::aws::Scope::of_arn(routing.home_table_arn?)?;
    let scope = crate::aws::Scope { region: region.to_owned(), ..scope };
    Some(scope.arn("dynamodb", &format!("table/{}", routing.home.table.name)))
}

/// The home steps after the stacks, for every region: serve (variant, weights, URLs, health
/// checks), move its phase, weigh it in or out of latency routing; a region leaving loses its
/// replica once its stack is gone, and leaves the list once the replica is gone too. Returns the
/// regions' status and whether all of them are settled (serving, nothing on its way in or out).
pub async fn after_stacks(routing: &Routing<'_>, regions: Vec<Region>) -> (Vec<RegionStatus>, bool) {
    let mut out = Vec::new();
    for region in regions {
        if let Some(next) = route(routing, region).await {
            out.push(next);
        }
    }
    let settled = out.iter().all(|r| r.phase == Phase::Serving.as_str());
    (out, settled)
}

/// One region's routing after its stack step; `None` once a leaving region is gone.
async fn route(routing: &Routing<'_>, mut region: Region) -> Option<RegionStatus> {
    let seen = match region.wanted {
        _ if region.failed => Ok((Seen::default(), Vec::new())),
        Some(variant) => serve(routing, &mut region, variant).await,
        None if region.phase == Phase::Removing => {
            release_replica(routing, &region).await.map(|gone| (Seen { gone, ..Seen::default() }, Vec::new()))
        }
        None => Ok((Seen::default(), Vec::new())),
    };
    let (seen, mut replaced) = seen.unwrap_or_else(|err| {
        region.fail(&err);
        (Seen::default(), Vec::new())
    });
    let in_phase = in_phase(region.since.as_ref());
    let moved = regions::next_phase(region.phase, region.wanted.is_some(), seen, in_phase, routing.drain)?;
    if moved != region.phase {
        region.status.phase = moved.as_str().to_owned();
        region.status.since = Some(now());
    }
    let mut retired = Vec::new();
    let routed = match (moved, &region.stack) {
        (Phase::Serving, Some((_, doors))) if !region.failed => {
            weigh_in(routing, (&region.status, region.weights_before), doors).await.map(|out| retired = out)
        }
        (Phase::Draining, _) => weigh_out(routing, region.name()).await,
        _ => Ok(()),
    };
    replaced.extend(retired.iter().filter_map(|v| health_check(&region.status, *v).clone()));
    // Checks replaced (their endpoint changed) or weighted out go once no record names them.
    let routed = match routed {
        Ok(()) => cloud::route53::delete_health_checks(&routing.clients(), routing.owner(), &replaced).await,
        failed => failed,
    };
    if routed.is_ok() {
        for variant in retired {
            match variant {
                PlacementVariant::Function => region.status.function_health_check = None,
                PlacementVariant::Container => region.status.container_health_check = None,
            }
        }
    }
    if let Err(err) = routed {
        region.fail(&err);
    }
    if region.status.message.is_empty() {
        region.status.message = waiting_for(moved).to_owned();
    }
    Some(region.status)
}

fn waiting_for(phase: Phase) -> &'static str {
    match phase {
        Phase::Deploying => "waiting for the stack and the table replica",
        Phase::Checking => "waiting for Route 53's health checks to report healthy",
        Phase::Serving => "",
        Phase::Draining => "out of latency routing; waiting out the records' TTL",
        Phase::Removing => "removing the records, the stack, then the table replica",
    }
}

/// A wanted region: its variant, weights and URLs, then its health checks once the stack is
/// ready. Returns what was seen and the health checks replaced.
async fn serve(
    routing: &Routing<'_>,
    region: &mut Region,
    variant: Option<PlacementVariant>,
) -> CloudResult<(Seen, Vec<String>)> {
    let (ready, doors) = region.stack.clone().unwrap_or_default();
    let next = &mut region.status;
    let (function_weight, container_weight) = regions::weights(variant, routing.enabled());
    let before = (next.variant, next.function_weight, next.container_weight);
    next.variant = variant;
    next.function_weight = function_weight;
    next.container_weight = container_weight;
    next.function_url.clone_from(&doors.api_endpoint);
    next.container_url = doors.balancer_dns.as_ref().map(|d| format!("https://{d}"));
    let mut seen = Seen { stack_ready: ready, ..Seen::default() };
    let mut replaced = Vec::new();
    // Checks are made once the stack answers: a check of a stack on its way only reports failure.
    if ready && region.phase != Phase::Deploying {
        (seen.healthy, replaced) = check(routing, next, &doors).await?;
    }
    // A serving region switching variants keeps its weights until the new variant's check is green.
    if region.phase == Phase::Serving && !seen.healthy && before != (variant, function_weight, container_weight) {
        (next.variant, next.function_weight, next.container_weight) = before;
        next.message = "the variant taking over waits for its health check".to_owned();
    }
    Ok((seen, replaced))
}

/// The health checks of the region's variants, made or kept; whether every weighted-in variant
/// is healthy, and the checks replaced by new ones (their endpoint changed).
async fn check(routing: &Routing<'_>, next: &mut RegionStatus, doors: &Doors) -> CloudResult<(bool, Vec<String>)> {
    let (clients, owner) = (routing.clients(), routing.owner());
    let function = doors.api_endpoint.as_deref().map(|e| e.trim_start_matches("https://").trim_end_matches('/'));
    let probes = [
        (PlacementVariant::Function, function, next.function_weight, next.function_health_check.clone()),
        (
            PlacementVariant::Container,
            doors.balancer_dns.as_deref(),
            next.container_weight,
            next.container_health_check.clone(),
        ),
    ];
    let (mut healthy, mut replaced) = (true, Vec::new());
    for (variant, fqdn, weight, known) in probes {
        let Some(fqdn) = fqdn.filter(|_| weight > 0) else { continue };
        let probe = Probe { fqdn: fqdn.to_owned(), path: HEALTH_PATH.to_owned() };
        let name = format!("{}/{} {}", owner.key(), next.region, regions::variant_name(variant));
        let id = cloud::route53::ensure_health_check(&clients, owner, known.as_deref(), &probe, &name).await?;
        let state = cloud::route53::is_healthy(&clients, &id).await?;
        healthy &= state == Some(true);
        replaced.extend(known.filter(|k| *k != id));
        match variant {
            PlacementVariant::Function => next.function_health_check = Some(id),
            PlacementVariant::Container => next.container_health_check = Some(id),
        }
    }
    next.health = if healthy { "Healthy" } else { "Unhealthy" }.to_owned();
    Ok((healthy, replaced))
}

/// The region's weighted pair, then its latency record: traffic comes only once both exist. A
/// variant weighted out has no record; its stack goes once nothing routes to it. Returns the
/// variants whose record went now: their health checks go next, once no record names them (again
/// later, while a check is recorded for a variant that no longer runs here).
async fn weigh_in(
    routing: &Routing<'_>,
    (region, before): (&RegionStatus, (i64, i64)),
    doors: &Doors,
) -> CloudResult<Vec<PlacementVariant>> {
    let (clients, owner) = (routing.clients(), routing.owner());
    let pair = regions::region_name(&region.region, routing.host);
    let variants = [
        (PlacementVariant::Function, &doors.function_alias, region.function_weight, before.0),
        (PlacementVariant::Container, &doors.container_alias, region.container_weight, before.1),
    ];
    let mut retired = Vec::new();
    for (variant, alias, weight, was) in variants {
        let check = health_check(region, variant);
        if weight == 0 {
            if was > 0 || (check.is_some() && alias.is_none()) {
                let id = format!("{}-{}", region.region, regions::variant_name(variant));
                cloud::route53::delete_routed_record(&clients, &routing.zone.id, owner, (&pair, "A", &id)).await?;
                retired.push(variant);
            }
            continue;
        }
        let Some(RecordValue::Alias { zone_id, dns_name, .. }) = alias.clone() else { continue };
        let target = Target { zone_id, dns_name, health_check_id: check.clone() };
        let record = regions::weighted_record(routing.host, &region.region, variant, &target, weight);
        cloud::route53::ensure_routed_record(&clients, routing.zone, owner, &record).await?;
    }
    let latency = regions::latency_record(routing.host, &region.region, &routing.zone.id);
    cloud::route53::ensure_routed_record(&clients, routing.zone, owner, &latency).await?;
    Ok(retired)
}

fn health_check(region: &RegionStatus, variant: PlacementVariant) -> &Option<String> {
    match variant {
        PlacementVariant::Function => &region.function_health_check,
        PlacementVariant::Container => &region.container_health_check,
    }
}

/// Out of latency routing: resolvers stop being sent here once their cached answer expires.
async fn weigh_out(routing: &Routing<'_>, region: &str) -> CloudResult<()> {
    let name = crate::domain::fqdn(routing.host);
    let key = (name.as_str(), "A", region);
    cloud::route53::delete_routed_record(&routing.clients(), &routing.zone.id, routing.owner(), key).await
}

/// A region leaving whose stack is gone: its replica, through the home table. `Ok(true)` once the
/// replica is gone too (home: at once, its table is the object's own).
async fn release_replica(routing: &Routing<'_>, region: &Region) -> CloudResult<bool> {
    if !region.stack_gone && !region.is_home {
        return Ok(false);
    }
    remove_replica(routing.cloud, (routing.owner(), &routing.home.region, &routing.home.table.name), &region.status)
        .await
}

/// A region's replica, once its stack is gone. Only a replica this owner recorded (before asking
/// for it) is ever removed. `Ok(true)` once it is gone.
///
/// # Errors
/// The AWS failure.
pub async fn remove_replica(
    cloud: &cloud::Cloud,
    (owner, home_region, table): (&Owner, &str, &str),
    region: &RegionStatus,
) -> CloudResult<bool> {
    if region.region == home_region || region.resources.table_arn.is_none() {
        return Ok(true);
    }
    let (home, clients) = (cloud.clients(home_region), cloud.clients(&region.region));
    cloud::dynamodb::remove_replica((&home, &clients), owner, table, &region.region).await
}

/// The region's records and health checks, whatever its phase: they go before its stack.
///
/// # Errors
/// The AWS failure.
pub async fn remove_routing(
    clients: &AwsClients,
    owner: &Owner,
    (zone_id, host): (&str, &str),
    region: &mut RegionStatus,
) -> CloudResult<()> {
    let latency = crate::domain::fqdn(host);
    cloud::route53::delete_routed_record(clients, zone_id, owner, (&latency, "A", &region.region)).await?;
    let pair = regions::region_name(&region.region, host);
    for variant in [PlacementVariant::Function, PlacementVariant::Container] {
        let id = format!("{}-{}", region.region, regions::variant_name(variant));
        cloud::route53::delete_routed_record(clients, zone_id, owner, (&pair, "A", &id)).await?;
    }
    let recorded: Vec<_> =
        [region.function_health_check.take(), region.container_health_check.take()].into_iter().flatten().collect();
    cloud::route53::delete_health_checks(clients, owner, &recorded).await
}

/// The error that keeps a deletion waiting for replicas DynamoDB is still deleting.
#[must_use]
pub fn replicas_pending() -> CloudError {
    CloudError::local("dynamodb", "UpdateTable", ErrorKind::Transient, "waiting for the table replicas to be deleted")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(region: &str, phase: Phase) -> RegionStatus {
        RegionStatus { region: region.to_owned(), phase: phase.as_str().to_owned(), ..RegionStatus::default() }
    }

    #[test]
    fn home_comes_first_and_only_a_region_leaving_after_its_drain_has_its_stack_removed() {
        let wanted = Wanted::from([("us-east-1".to_owned(), None), ("eu-central-1".to_owned(), None)]);
        let previous = PlacementStatus {
            regions: vec![
                recorded("ap-south-1", Phase::Removing),
                recorded("eu-west-1", Phase::Draining),
                recorded("us-east-1", Phase::Serving),
            ],
            ..PlacementStatus::default()
        };
        let all = regions("us-east-1", &wanted, Some(&previous));
        let seen: Vec<(&str, StackWork)> = all.iter().map(|r| (r.name(), r.stack_work())).collect();
        assert_eq!(
            seen,
            [
                ("us-east-1", StackWork::Keep),
                ("ap-south-1", StackWork::Remove),
                ("eu-central-1", StackWork::Keep),
                ("eu-west-1", StackWork::Keep),
            ],
            "home's stack is the ordinary apply; a new region waits for its replica; a draining one still serves"
        );
        assert!(all[0].is_home() && !all[1].is_home());
    }

    #[test]
    fn a_region_applies_its_stack_once_its_replica_is_there_and_not_after_a_failed_step() {
        let wanted = Wanted::from([("us-east-1".to_owned(), None), ("eu-central-1".to_owned(), None)]);
        let mut all = regions("us-east-1", &wanted, None);
        let region = &mut all[1];
        region.replica = Some("CREATING".to_owned());
        assert_eq!(region.stack_work(), StackWork::Apply);
        region.fail(&CloudError::local("dynamodb", "UpdateTable", ErrorKind::AccessDenied, "denied"));
        assert_eq!(region.stack_work(), StackWork::Keep);
        assert_eq!(region.status.failure.as_deref(), Some(crate::status::reason::ACCESS_DENIED));
    }
}
