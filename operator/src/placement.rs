//! Runs a placement across regions: each wanted region's stack and table replica, the Route 53
//! health checks and records, and the order regions come and go in, as
//! `blog_core::placement::regions` decides. Home's stack is the ordinary apply; this adds the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::apply::{self, Applied, Doors};
use crate::cloud::route53::{Probe, Zone};
use crate::cloud::{self, CloudError, CloudResult, ErrorKind};
use crate::crd::{
    PlacementMode, PlacementRecommendation, PlacementSpec, PlacementStatus, PlacementVariant, RegionStatus,
};
use crate::desired::{Desired, Names, Owner};
use crate::domain::RecordValue;
use blog_core::placement::regions::{self, Enabled, Phase, Seen, Target, Wanted};
use blog_core::placement::{Decision, Model};

/// Where the health checks probe: the blog's readiness, which fails while its table is unreachable.
pub const HEALTH_PATH: &str = "/readyz";

/// What a placement reconcile takes from the operator: the account to act in, its settings, and
/// the metrics cache it shares with sizing.
pub struct Runtime<'a> {
    pub cloud: &'a cloud::Cloud,
    pub readiness: crate::status::ContainerReadiness,
    /// How long a region leaving stays out of latency routing before it is removed.
    pub drain: Duration,
    pub prices: &'a crate::allocation::pricing::PriceTable,
    /// How old a metrics reading may be before it is read again.
    pub metrics_max_age: Duration,
    pub metrics_cache: &'a crate::allocation::MetricsCache,
}

/// Everything one placement reconcile works from.
pub struct Plan<'a> {
    pub cloud: &'a cloud::Cloud,
    pub spec: &'a PlacementSpec,
    pub home: &'a Desired,
    pub home_applied: &'a Applied,
    pub zone: Zone,
    pub token: &'a str,
    pub readiness: crate::status::ContainerReadiness,
    /// How long a region leaving stays out of latency routing before it is removed: the records' TTL.
    pub drain: Duration,
    /// Auto's applied placement (`None` outside Auto).
    pub applied: Option<Wanted>,
}

impl Plan<'_> {
    fn enabled(&self) -> Enabled {
        (self.home.function.is_some(), self.home.container.is_some())
    }
    fn host(&self) -> &str {
        &self.spec.host
    }
}

/// One pass over every region wanted or still recorded. Returns the regions' status and whether
/// all of them are settled (serving, nothing on its way in or out).
pub async fn run(plan: &Plan<'_>, previous: Option<&PlacementStatus>) -> (Vec<RegionStatus>, bool) {
    let wanted = regions::wanted(plan.spec, plan.applied.as_ref());
    let recorded: BTreeMap<&str, &RegionStatus> =
        previous.iter().flat_map(|p| &p.regions).map(|r| (r.region.as_str(), r)).collect();
    let all: BTreeSet<&str> = wanted.keys().map(String::as_str).chain(recorded.keys().copied()).collect();
    let mut out = Vec::new();
    for region in all {
        let before = recorded.get(region).map_or_else(|| fresh(region), |r| (*r).clone());
        if let Some(next) = step(plan, before, wanted.get(region).copied()).await {
            out.push(next);
        }
    }
    // Home first, then the others by name.
    out.sort_by_key(|r| (r.region != plan.home.region, r.region.clone()));
    let settled = out.iter().all(|r| r.phase == Phase::Serving.as_str());
    (out, settled)
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

/// One region's step: act on its phase, observe, and move to the next phase; `None` once a
/// leaving region is gone.
async fn step(plan: &Plan<'_>, before: RegionStatus, wanted: Option<Option<PlacementVariant>>) -> Option<RegionStatus> {
    let phase = Phase::parse(&before.phase);
    let mut next = RegionStatus { message: String::new(), failure: None, ..before.clone() };
    let (mut doors, mut replaced) = (None, Vec::new());
    let seen = match wanted {
        Some(variant) => serve(plan, &mut next, phase, variant).await.map(|(seen, found, stale)| {
            (doors, replaced) = (Some(found), stale);
            seen
        }),
        None if phase == Phase::Removing => remove(plan, &mut next).await.map(|gone| Seen { gone, ..Seen::default() }),
        None => Ok(Seen::default()),
    };
    let seen = seen.unwrap_or_else(|err| {
        tracing::warn!(region = next.region, error = %err, "placement step failed");
        failing(&mut next, &err);
        Seen::default()
    });
    let moved = regions::next_phase(phase, wanted.is_some(), seen, in_phase(before.since.as_ref()), plan.drain)?;
    if moved != phase {
        next.phase = moved.as_str().to_owned();
        next.since = Some(now());
    }
    let routed = match (moved, &doors) {
        (Phase::Serving, Some(doors)) => weigh_in(plan, &next, doors).await,
        (Phase::Draining, _) => weigh_out(plan, &next.region).await,
        _ => Ok(()),
    };
    // Checks replaced (their endpoint changed) go once no record names them any more.
    let routed = match routed {
        Ok(()) => {
            cloud::route53::delete_health_checks(&plan.cloud.clients(&plan.home.region), &plan.home.owner, &replaced)
                .await
        }
        failed => failed,
    };
    if let Err(err) = routed {
        failing(&mut next, &err);
    }
    if next.message.is_empty() {
        next.message = waiting_for(moved).to_owned();
    }
    Some(next)
}

/// Says what stopped the region, for its status and the `Degraded` condition.
fn failing(region: &mut RegionStatus, err: &CloudError) {
    region.message = crate::status::tenant_message(&err.to_string());
    region.failure = Some(apply::failure_reason(err).to_owned());
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

/// A wanted region: its stack (home's is already applied), then its health checks once the stack
/// is ready. Returns what was seen, the front doors, and the health checks replaced.
async fn serve(
    plan: &Plan<'_>,
    next: &mut RegionStatus,
    phase: Phase,
    variant: Option<PlacementVariant>,
) -> CloudResult<(Seen, Doors, Vec<String>)> {
    let (ready, doors) = if next.region == plan.home.region {
        (stack_ready(plan.home_applied), plan.home_applied.front.clone())
    } else {
        deploy(plan, next).await?
    };
    let (function_weight, container_weight) = regions::weights(variant, plan.enabled());
    let before = (next.variant, next.function_weight, next.container_weight);
    next.variant = variant;
    next.function_weight = function_weight;
    next.container_weight = container_weight;
    next.function_url.clone_from(&doors.api_endpoint);
    next.container_url = doors.balancer_dns.as_ref().map(|d| format!("https://{d}"));
    let mut seen = Seen { stack_ready: ready, ..Seen::default() };
    let mut replaced = Vec::new();
    // Checks are made once the stack answers: a check of a stack on its way only reports failure.
    if ready && phase != Phase::Deploying {
        (seen.healthy, replaced) = check(plan, next, &doors).await?;
    }
    // A serving region switching variants keeps its weights until the new variant's check is green.
    if phase == Phase::Serving && !seen.healthy && before != (variant, function_weight, container_weight) {
        (next.variant, next.function_weight, next.container_weight) = before;
        next.message = "the variant taking over waits for its health check".to_owned();
    }
    Ok((seen, doors, replaced))
}

fn stack_ready(applied: &Applied) -> bool {
    [&applied.table, &applied.domain, &applied.function, &applied.container].iter().all(|p| p.ready)
}

/// A region other than home: the replica through the home table, then the stack, with the ids
/// this region recorded. The replica's ARN is recorded (in status) before the replica is asked
/// for, so a region the home table lists but this owner never recorded is someone else's.
async fn deploy(plan: &Plan<'_>, next: &mut RegionStatus) -> CloudResult<(bool, Doors)> {
    let home = plan.cloud.clients(&plan.home.region);
    let table = &plan.home.table.name;
    if next.resources.table_arn.is_none() {
        cloud::dynamodb::refuse_listed_replica(&home, table, &next.region).await?;
        next.resources.table_arn = replica_arn(plan, &next.region);
        next.message = "the table replica is recorded; it is asked for next".to_owned();
        return Ok((false, Doors::default()));
    }
    let replica = cloud::dynamodb::ensure_replica(&home, table, &next.region).await?;
    let clients = plan.cloud.clients(&next.region);
    cloud::dynamodb::claim_replica(&clients, &plan.home.owner, table, &plan.home.tags).await?;
    let desired = plan.home.in_region(&next.region, plan.spec.writes == crate::crd::PlacementWrites::Home);
    let applied = apply::apply(&clients, &desired, (&next.resources, false), plan.readiness, plan.token)
        .await
        .map_err(|failed| failed.error)?;
    next.resources = applied.resources.clone();
    let ready = stack_ready(&applied) && replica.status == "ACTIVE";
    if replica.status != "ACTIVE" {
        next.message = format!("the table replica is {}", replica.status);
    }
    Ok((ready, applied.front))
}

fn replica_arn(plan: &Plan<'_>, region: &str) -> Option<String> {
    let home = plan.home_applied.resources.table_arn.as_deref()?;
    let scope = crate::aws::Scope::of_arn(home)?;
    let scope = crate::aws::Scope { region: region.to_owned(), ..scope };
    Some(scope.arn("dynamodb", &format!("table/{}", plan.home.table.name)))
}

/// The health checks of the region's variants, made or kept; whether every weighted-in variant
/// is healthy, and the checks replaced by new ones (their endpoint changed).
async fn check(plan: &Plan<'_>, next: &mut RegionStatus, doors: &Doors) -> CloudResult<(bool, Vec<String>)> {
    let owner = &plan.home.owner;
    let clients = plan.cloud.clients(&plan.home.region);
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

/// The region's weighted pair, then its latency record: traffic comes only once both exist.
async fn weigh_in(plan: &Plan<'_>, region: &RegionStatus, doors: &Doors) -> CloudResult<()> {
    let (clients, owner) = (plan.cloud.clients(&plan.home.region), &plan.home.owner);
    let variants = [
        (PlacementVariant::Function, &doors.function_alias, region.function_weight, &region.function_health_check),
        (PlacementVariant::Container, &doors.container_alias, region.container_weight, &region.container_health_check),
    ];
    for (variant, alias, weight, health_check_id) in variants {
        let Some(RecordValue::Alias { zone_id, dns_name, .. }) = alias.clone() else { continue };
        let target = Target { zone_id, dns_name, health_check_id: health_check_id.clone() };
        let record = regions::weighted_record(plan.host(), &region.region, variant, &target, weight);
        cloud::route53::ensure_routed_record(&clients, &plan.zone, owner, &record).await?;
    }
    let latency = regions::latency_record(plan.host(), &region.region, &plan.zone.id);
    cloud::route53::ensure_routed_record(&clients, &plan.zone, owner, &latency).await
}

/// Out of latency routing: resolvers stop being sent here once their cached answer expires.
async fn weigh_out(plan: &Plan<'_>, region: &str) -> CloudResult<()> {
    let clients = plan.cloud.clients(&plan.home.region);
    let name = crate::domain::fqdn(plan.host());
    cloud::route53::delete_routed_record(&clients, &plan.zone.id, &plan.home.owner, (&name, "A", region)).await
}

/// A region leaving, after its drain: the latency record, the weighted pair and the health checks,
/// then the stack, then the replica. `Ok(true)` once the replica is gone too.
async fn remove(plan: &Plan<'_>, region: &mut RegionStatus) -> CloudResult<bool> {
    let home = (&plan.home.owner, plan.home.region.as_str(), plan.home.table.name.as_str());
    remove_region(plan.cloud, home, (&plan.zone.id, plan.host()), region).await
}

/// One region's part: its records and health checks, then (but for home) its stack and then its
/// replica. `Ok(true)` once the replica is gone too (home: once its routing is).
async fn remove_region(
    cloud: &cloud::Cloud,
    (owner, home_region, table): (&Owner, &str, &str),
    (zone_id, host): (&str, &str),
    region: &mut RegionStatus,
) -> CloudResult<bool> {
    remove_routing(cloud, home_region, (zone_id, host), owner, region).await?;
    if region.region == home_region {
        return Ok(true);
    }
    let clients = cloud.clients(&region.region);
    let names = Names::in_region(owner, &region.region);
    // The host's validation record stays for the regions still serving it.
    apply::cleanup(&clients, owner, &names, (None, &[crate::domain::host(host)]), &region.resources).await?;
    // Only a replica this owner recorded (before asking for it) is ever removed.
    if region.resources.table_arn.is_none() {
        return Ok(true);
    }
    let home = cloud.clients(home_region);
    cloud::dynamodb::remove_replica((&home, &clients), owner, table, &region.region).await
}

/// The region's records and health checks, whatever its phase.
async fn remove_routing(
    cloud: &cloud::Cloud,
    home_region: &str,
    (zone_id, host): (&str, &str),
    owner: &Owner,
    region: &mut RegionStatus,
) -> CloudResult<()> {
    let clients = cloud.clients(home_region);
    let latency = crate::domain::fqdn(host);
    cloud::route53::delete_routed_record(&clients, zone_id, owner, (&latency, "A", &region.region)).await?;
    let pair = regions::region_name(&region.region, host);
    for variant in [PlacementVariant::Function, PlacementVariant::Container] {
        let id = format!("{}-{}", region.region, regions::variant_name(variant));
        cloud::route53::delete_routed_record(&clients, zone_id, owner, (&pair, "A", &id)).await?;
    }
    let recorded: Vec<_> =
        [region.function_health_check.take(), region.container_health_check.take()].into_iter().flatten().collect();
    cloud::route53::delete_health_checks(&clients, owner, &recorded).await
}

/// Everything of every region but home's stack and table, for a BlogDeployment being deleted.
/// `Ok(false)` while a replica is still being deleted (the home table cannot go before).
///
/// # Errors
/// The AWS failure.
pub async fn remove_all(
    cloud: &cloud::Cloud,
    (owner, home_region, table): (&Owner, &str, &str),
    (zone_id, host): (&str, &str),
    status: &mut PlacementStatus,
) -> CloudResult<bool> {
    let mut all_gone = true;
    for region in &mut status.regions {
        all_gone &= remove_region(cloud, (owner, home_region, table), (zone_id, host), region).await?;
    }
    Ok(all_gone)
}

/// The error that keeps a deletion waiting for replicas DynamoDB is still deleting.
#[must_use]
pub fn replicas_pending() -> CloudError {
    CloudError::local("dynamodb", "UpdateTable", ErrorKind::Transient, "waiting for the table replicas to be deleted")
}

/// The placement part of one reconcile, after home's apply: the zone, the decision (Recommend,
/// Auto), then every region. Returns the status to write, whether every region is settled, and the
/// note of an Event when Auto changed a region or the recommendation changed. Without a zone (no
/// `spec.domain`, which validation refuses) the previous status stays.
pub async fn reconcile(
    runtime: &Runtime<'_>,
    spec: &crate::crd::BlogDeploymentSpec,
    (home, home_applied): (&Desired, &Applied),
    token: &str,
    previous: Option<&PlacementStatus>,
) -> (PlacementStatus, bool, Option<String>) {
    let kept = previous.cloned().unwrap_or_default();
    let Some(placement) = &spec.placement else { return (kept, true, None) };
    // Home's domain step found the zone; without it (no spec.domain) nothing can be routed.
    let Some(zone) = home_applied.zone.clone() else { return (kept, false, None) };
    // Manual decides nothing, but the same reading prices each region for its status.
    let (decision, recommendation, costs) = recommend(runtime, (spec, placement), (home, home_applied), previous).await;
    let decided = (placement.mode != PlacementMode::Manual).then_some((decision, recommendation));
    let auto = placement.mode == PlacementMode::Auto;
    let plan = Plan {
        cloud: runtime.cloud,
        spec: placement,
        home,
        home_applied,
        zone,
        token,
        readiness: runtime.readiness,
        drain: runtime.drain,
        applied: decided.as_ref().filter(|_| auto).map(|(d, _)| regions::as_wanted(&d.placement)),
    };
    let (mut regions, settled) = run(&plan, previous).await;
    for region in &mut regions {
        region.monthly_usd = costs.get(&region.region).map(|usd| (usd * 100.0).round() / 100.0);
    }
    let mut next = PlacementStatus { regions, ..kept };
    let mut note = None;
    if let Some((decision, recommendation)) = decided {
        if auto && decision.change.is_some() {
            next.last_change_time = Some(now());
            note = Some(format!("placement changed: {}", decision.why));
        } else if !auto && next.recommendation.as_ref().map(|r| &r.regions) != Some(&recommendation.regions) {
            note = Some(format!("placement recommended: {}", decision.why));
        }
        next.recommendation = Some(recommendation);
    }
    (next, settled, note)
}

/// The placement the objective asks for, from demand measured where regions serve (one
/// `GetMetricData` per region per window, cached like the sizing's) and declared elsewhere; and
/// what each region of the current placement costs a month at that demand.
async fn recommend(
    runtime: &Runtime<'_>,
    (spec, placement): (&crate::crd::BlogDeploymentSpec, &PlacementSpec),
    (home, home_applied): (&Desired, &Applied),
    previous: Option<&PlacementStatus>,
) -> (Decision, PlacementRecommendation, BTreeMap<String, f64>) {
    let current = previous.map_or(&[][..], |p| p.regions.as_slice());
    let window = Duration::from_secs(u64::try_from(spec.allocation.window_minutes).unwrap_or(60) * 60);
    let mut measured = BTreeMap::new();
    for region in current.iter().filter(|r| r.phase == Phase::Serving.as_str()) {
        let at_home = region.region == home.region;
        let desired = if at_home { home.clone() } else { home.in_region(&region.region, false) };
        let resources = if at_home { &home_applied.resources } else { &region.resources };
        // Home's reading is the sizing's (same key): one GetMetricData serves both.
        let key = if at_home { home.owner.uid.clone() } else { format!("{}/{}", home.owner.uid, region.region) };
        if let Some(rps) = requests(runtime, &key, (&desired, resources.load_balancer_arn.as_deref()), window).await {
            measured.insert(region.region.clone(), rps);
        }
    }
    let cooldown = Duration::from_secs(u64::try_from(placement.cooldown_minutes).unwrap_or(60) * 60);
    let cooldown_over =
        previous.and_then(|p| p.last_change_time.as_ref()).is_none_or(|t| in_phase(Some(t)) >= cooldown);
    let model = Model::sized_as(runtime.prices.clone(), home);
    let regions::Decided { decision, demand, current } =
        regions::decision(placement, &model, (current, &measured), cooldown_over);
    let objective = blog_core::placement::Objective {
        p95_ms: placement.objective.p95_latency_ms.map(f64::from),
        monthly_budget: placement.objective.monthly_budget_usd.map(f64::from),
    };
    tracing::debug!(?measured, ?demand, why = decision.why, "placement decision");
    let evaluation = blog_core::placement::evaluate(&model, &decision.target, &demand, &objective);
    // Auto applies the decision now; otherwise the placement in effect stays.
    let costed = if placement.mode == PlacementMode::Auto { &decision.placement } else { &current };
    let costs = blog_core::placement::evaluate(&model, costed, &demand, &objective).regional;
    let recommendation = PlacementRecommendation {
        regions: decision.target.iter().map(|(r, v)| format!("{r}={}", format!("{v:?}").to_lowercase())).collect(),
        monthly_usd: (evaluation.cost.total() * 100.0).round() / 100.0,
        p95_ms: evaluation.p95_ms.round(),
        within_target: (evaluation.within_target * 1000.0).round() / 1000.0,
        why: decision.why.clone(),
    };
    (decision, recommendation, costs)
}

/// Requests per second a region served over the window; `None` when its metrics cannot be read.
async fn requests(
    runtime: &Runtime<'_>,
    key: &str,
    (desired, balancer): (&Desired, Option<&str>),
    window: Duration,
) -> Option<f64> {
    let max_age = runtime.metrics_max_age;
    let now = std::time::Instant::now();
    if let Some(cached) = runtime.metrics_cache.fresh(key, window, max_age, now) {
        return cached.map(|m| m.requests_per_second());
    }
    let clients = runtime.cloud.clients(&desired.region);
    let variants = (desired.function.is_some(), desired.container.is_some());
    let observed = crate::allocation::observe(&clients, (&desired.names, variants), balancer, window).await;
    if let Err(err) = &observed {
        tracing::warn!(region = desired.region, error = %err, "placement: cannot read the region's metrics");
    }
    let observed = observed.ok();
    runtime.metrics_cache.store(key, window, observed, now);
    observed.map(|m| m.requests_per_second())
}

/// For a BlogDeployment being deleted: every placement region's part, then any health check of
/// this owner's left (found by caller reference and tags), before home's stack and table go.
/// `Ok(())` once nothing but home's stack is left.
///
/// # Errors
/// The AWS failure, or [`replicas_pending`] while DynamoDB still deletes a replica.
pub async fn remove_for_deletion(
    cloud: &cloud::Cloud,
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
    let gone = remove_all(cloud, (owner, home_region, table), (&zone.id, host), &mut status).await?;
    if !gone {
        return Err(replicas_pending());
    }
    // Health checks status no longer names (a replacement whose status write was lost).
    cloud::route53::delete_health_checks(&clients, owner, &cloud::route53::owned_health_checks(&clients, owner).await?)
        .await
}
