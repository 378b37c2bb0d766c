//! The regions of a running placement and the order they come and go in. A region is deployed,
//! checked healthy by Route 53, then weighted in; a region leaving is taken out of latency routing,
//! waited out for the records' TTL, and only then are its records, stack and replica removed (the
//! replica last; home never leaves). Pure: the operator's `placement` module does what this says.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::crd::{PlacementMode, PlacementSpec, PlacementVariant, RegionStatus};
use crate::domain::{RecordSet, RecordValue, Routing, RoutingPolicy, fqdn};

/// Where a region stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its stack and replica are on the way; no record names it.
    Deploying,
    /// Its stack is ready; Route 53's health checks are not green yet.
    Checking,
    /// In latency routing, its variants weighted as wanted.
    Serving,
    /// Out of latency routing; resolvers may still hold its answer until the TTL runs out.
    Draining,
    /// Its records, health checks, stack and then replica are being removed.
    Removing,
}

impl Phase {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploying => "Deploying",
            Self::Checking => "Checking",
            Self::Serving => "Serving",
            Self::Draining => "Draining",
            Self::Removing => "Removing",
        }
    }

    /// The phase a status names; anything unknown starts over as `Deploying`.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        [Self::Checking, Self::Serving, Self::Draining, Self::Removing]
            .into_iter()
            .find(|p| p.as_str() == text)
            .unwrap_or(Self::Deploying)
    }
}

/// Which variants the spec enables: (function, container).
pub type Enabled = (bool, bool);

/// Region → the variant it serves with (`None`: both enabled variants, equally weighted).
pub type Wanted = BTreeMap<String, Option<PlacementVariant>>;

/// The regions that should serve: in Manual and Recommend, home and every candidate (with its
/// pin); in Auto, the placement applied so far (`applied`), home always among them.
#[must_use]
pub fn wanted(spec: &PlacementSpec, applied: Option<&Wanted>) -> Wanted {
    let pin = |region: &str| spec.candidates.iter().find(|c| c.region == region).and_then(|c| c.variant);
    let mut wanted: Wanted = match (spec.mode, applied) {
        (PlacementMode::Auto, Some(applied)) => applied.clone(),
        (PlacementMode::Auto, None) => Wanted::new(),
        _ => spec.candidates.iter().map(|c| (c.region.clone(), c.variant)).collect(),
    };
    wanted.entry(spec.home.clone()).or_insert_with(|| pin(&spec.home));
    wanted
}

/// Route 53 weights of a region's (function, container) records: 100 for each variant serving,
/// 0 for the other. A pin to a disabled variant cannot pass validation; it serves with both here.
#[must_use]
pub fn weights(variant: Option<PlacementVariant>, (function, container): Enabled) -> (i64, i64) {
    let on = |yes: bool| if yes { 100 } else { 0 };
    match variant {
        Some(PlacementVariant::Function) if function => (100, 0),
        Some(PlacementVariant::Container) if container => (0, 100),
        _ => (on(function), on(container)),
    }
}

/// The variants a placement region other than home runs: the one it serves with (both, when it
/// serves with both, or the candidate keeps the other `warm`), and while a serving region switches,
/// the one still weighted in until the other's health check is green. Only what serves, or what
/// the spec asks to keep warm, is paid for.
#[must_use]
pub fn running(variant: Option<PlacementVariant>, before: Option<&RegionStatus>, warm: bool) -> Enabled {
    if warm {
        return (true, true);
    }
    let serving = before.filter(|r| Phase::parse(&r.phase) == Phase::Serving);
    let (function, container) = serving.map_or((false, false), |r| (r.function_weight > 0, r.container_weight > 0));
    match variant {
        None => (true, true),
        Some(PlacementVariant::Function) => (true, container),
        Some(PlacementVariant::Container) => (function, true),
    }
}

/// What one reconcile saw of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    /// Its stack (and replica) answered ready.
    pub stack_ready: bool,
    /// Every health check of a weighted-in variant reports healthy.
    pub healthy: bool,
    /// Its stack, records, health checks and replica are gone.
    pub gone: bool,
}

/// The phase a region moves to after what this reconcile saw; `None` once a leaving region is
/// gone. `in_phase` is how long it has been in `phase`; `ttl` the records' TTL.
#[must_use]
pub fn next_phase(phase: Phase, wanted: bool, seen: Seen, in_phase: Duration, ttl: Duration) -> Option<Phase> {
    Some(match (phase, wanted) {
        (Phase::Deploying, true) if seen.stack_ready => Phase::Checking,
        (Phase::Deploying, true) => Phase::Deploying,
        (Phase::Checking, true) if seen.stack_ready && seen.healthy => Phase::Serving,
        (Phase::Checking, true) => Phase::Checking,
        (Phase::Serving, true) => Phase::Serving,
        // Wanted again while leaving: its stack is (re)applied and checked before it serves.
        (Phase::Draining | Phase::Removing, true) => Phase::Deploying,
        // Never in latency routing: nothing to drain.
        (Phase::Deploying | Phase::Checking, false) => Phase::Removing,
        (Phase::Serving, false) => Phase::Draining,
        (Phase::Draining, false) if in_phase >= ttl => Phase::Removing,
        (Phase::Draining, false) => Phase::Draining,
        (Phase::Removing, false) if seen.gone => return None,
        (Phase::Removing, false) => Phase::Removing,
    })
}

/// The name each region answers at: `<region>.<host>`, the weighted pair's name.
#[must_use]
pub fn region_name(region: &str, host: &str) -> String {
    fqdn(&format!("{region}.{host}"))
}

/// Where a variant's weighted record points: an alias of its regional endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub zone_id: String,
    pub dns_name: String,
    pub health_check_id: Option<String>,
}

/// The weighted record of one variant in `region`.
#[must_use]
pub fn weighted_record(host: &str, region: &str, variant: PlacementVariant, target: &Target, weight: i64) -> RecordSet {
    RecordSet {
        name: region_name(region, host),
        kind: "A".to_owned(),
        value: RecordValue::Alias {
            zone_id: target.zone_id.clone(),
            dns_name: fqdn(&target.dns_name),
            evaluate_health: false,
        },
        routing: Some(Routing {
            set_identifier: format!("{region}-{}", variant_name(variant)),
            policy: RoutingPolicy::Weighted(weight),
            health_check_id: target.health_check_id.clone(),
        }),
    }
}

/// The latency record of `region` at `host`: an alias of the region's weighted pair in the same
/// zone, evaluating its health, so a region whose variants all fail falls out of routing.
#[must_use]
pub fn latency_record(host: &str, region: &str, zone_id: &str) -> RecordSet {
    RecordSet {
        name: fqdn(host),
        kind: "A".to_owned(),
        value: RecordValue::Alias {
            zone_id: zone_id.to_owned(),
            dns_name: region_name(region, host),
            evaluate_health: true,
        },
        routing: Some(Routing {
            set_identifier: region.to_owned(),
            policy: RoutingPolicy::Latency(region.to_owned()),
            health_check_id: None,
        }),
    }
}

/// `function` or `container`.
#[must_use]
pub fn variant_name(variant: PlacementVariant) -> &'static str {
    match variant {
        PlacementVariant::Function => "function",
        PlacementVariant::Container => "container",
    }
}

/// Demand by reader area for the decision: measured requests per second where a region serves
/// (its readers are nearest it), and the spec's declared shares, scaled to the measured total,
/// for regions that do not serve yet (not deployed, or on their way in). A region serving or
/// leaving is measured, never declared: its readers are counted where they are served. Without
/// any traffic measured, the declared shares are read as requests per second: a blog nobody has
/// read yet is placed by what its owner expects.
#[must_use]
pub fn demand(
    declared: &BTreeMap<String, u32>,
    measured: &BTreeMap<String, f64>,
    settled: &std::collections::BTreeSet<String>,
) -> super::Demand {
    let total_measured: f64 = measured.values().sum();
    let total_declared: f64 = declared.values().map(|v| f64::from(*v)).sum();
    let scale = if total_measured > 0.0 && total_declared > 0.0 { total_measured / total_declared } else { 1.0 };
    let mut demand: super::Demand = declared
        .iter()
        .filter(|(region, _)| total_measured <= 0.0 || !settled.contains(*region))
        .map(|(region, share)| (region.clone(), f64::from(*share) * scale))
        .collect();
    if total_measured > 0.0 {
        demand.extend(measured.iter().map(|(region, rps)| (region.clone(), *rps)));
    }
    demand
}

/// The variant a region counts as in the decision: its own, else the one its weights favour
/// (both at once count as the function, the variant that costs nothing idle).
#[must_use]
pub fn counted_variant(region: &RegionStatus) -> super::Variant {
    match region.variant {
        Some(PlacementVariant::Container) => super::Variant::Container,
        Some(PlacementVariant::Function) => super::Variant::Function,
        None if region.function_weight == 0 && region.container_weight > 0 => super::Variant::Container,
        None => super::Variant::Function,
    }
}

fn core_variant(variant: PlacementVariant) -> super::Variant {
    match variant {
        PlacementVariant::Function => super::Variant::Function,
        PlacementVariant::Container => super::Variant::Container,
    }
}

/// The placement decision for a spec, and the demand it saw: candidates and pins from the spec;
/// with enough beacons from readers, demand shared out by where readers are and their measured
/// round trips ([`super::readers`]), else [`demand`] from what serving regions measured and what the
/// spec declares; the current placement from the regions in status (those not leaving; home alone
/// before any), and the spec's hysteresis; `cooldown_over` from the last change.
#[must_use]
pub fn decision(
    (spec, enabled): (&PlacementSpec, Enabled),
    model: &super::Model,
    (current_regions, measured, readers): (&[RegionStatus], &BTreeMap<String, f64>, &super::readers::Readings),
    cooldown_over: bool,
) -> Decided {
    // A variant the spec disables is never chosen: with one enabled, every region is pinned to it.
    let only = match enabled {
        (true, false) => Some(super::Variant::Function),
        (false, true) => Some(super::Variant::Container),
        _ => None,
    };
    let pinned = |variant: Option<PlacementVariant>| variant.map(core_variant).or(only);
    let pin = |region: &str| spec.candidates.iter().find(|c| c.region == region).and_then(|c| c.variant);
    let home = super::Candidate { region: spec.home.clone(), pinned: pinned(pin(&spec.home)) };
    let others: Vec<super::Candidate> = spec
        .candidates
        .iter()
        .filter(|c| c.region != spec.home)
        .map(|c| super::Candidate { region: c.region.clone(), pinned: pinned(c.variant) })
        .collect();
    let staying = [Phase::Deploying, Phase::Checking, Phase::Serving];
    let mut current: super::Placement = current_regions
        .iter()
        .filter(|r| staying.contains(&Phase::parse(&r.phase)))
        .map(|r| (r.region.clone(), counted_variant(r)))
        .collect();
    current.entry(spec.home.clone()).or_insert_with(|| home.pinned.unwrap_or(super::Variant::Function));
    let objective = super::Objective {
        p95_ms: spec.objective.p95_latency_ms.map(f64::from),
        monthly_budget: spec.objective.monthly_budget_usd.map(f64::from),
    };
    let settled: std::collections::BTreeSet<String> = current_regions
        .iter()
        .filter(|r| matches!(Phase::parse(&r.phase), Phase::Serving | Phase::Draining | Phase::Removing))
        .map(|r| r.region.clone())
        .collect();
    let measured_model = super::readers::measured_model(model, readers);
    let (demand, model) = match &measured_model {
        Some(measured_model) => {
            (super::readers::demand(readers, measured.values().sum(), &spec.demand), measured_model)
        }
        None => (demand(&spec.demand, measured, &settled), model),
    };
    let decided = super::decide(&super::Input {
        model,
        home: &home,
        candidates: &others,
        demand: &demand,
        objective,
        current: &current,
        hysteresis: f64::from(spec.hysteresis_percent) / 100.0,
        cooldown_over,
    });
    Decided { decision: decided, demand, current, beacons: super::readers::beacons(readers), measured_model }
}

/// A decision with what it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision: super::Decision,
    pub demand: super::Demand,
    /// The placement in effect before the decision.
    pub current: super::Placement,
    /// Beacons from readers in the window.
    pub beacons: f64,
    /// The model with readers' measured round trips it decided with, when the beacons were enough
    /// to decide from.
    pub measured_model: Option<super::Model>,
}

impl Decided {
    /// Whether demand and latency came from readers' beacons.
    #[must_use]
    pub fn from_readers(&self) -> bool {
        self.measured_model.is_some()
    }
}

/// Auto's placement as the regions to serve.
#[must_use]
pub fn as_wanted(placement: &super::Placement) -> Wanted {
    placement
        .iter()
        .map(|(region, variant)| {
            let variant = match variant {
                super::Variant::Function => PlacementVariant::Function,
                super::Variant::Container => PlacementVariant::Container,
            };
            (region.clone(), Some(variant))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);
    const BOTH: Enabled = (true, true);

    fn spec(yaml: &str) -> PlacementSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    #[test]
    fn a_region_serves_only_after_its_stack_is_ready_and_its_checks_are_green() {
        let ready = Seen { stack_ready: true, ..Seen::default() };
        let healthy = Seen { stack_ready: true, healthy: true, gone: false };
        let step = |phase, seen| next_phase(phase, true, seen, Duration::ZERO, TTL);
        assert_eq!(step(Phase::Deploying, Seen::default()), Some(Phase::Deploying));
        assert_eq!(step(Phase::Deploying, healthy), Some(Phase::Checking), "checks are made before they are read");
        assert_eq!(step(Phase::Checking, ready), Some(Phase::Checking));
        assert_eq!(step(Phase::Checking, healthy), Some(Phase::Serving));
        assert_eq!(step(Phase::Serving, Seen::default()), Some(Phase::Serving), "a serving region stays in");
    }

    #[test]
    fn a_leaving_region_drains_for_the_ttl_and_is_forgotten_only_once_gone() {
        let leave = |phase, seen, waited| next_phase(phase, false, seen, waited, TTL);
        assert_eq!(leave(Phase::Serving, Seen::default(), Duration::ZERO), Some(Phase::Draining));
        assert_eq!(leave(Phase::Draining, Seen::default(), Duration::from_secs(59)), Some(Phase::Draining));
        assert_eq!(leave(Phase::Draining, Seen::default(), TTL), Some(Phase::Removing));
        assert_eq!(leave(Phase::Removing, Seen::default(), TTL), Some(Phase::Removing));
        assert_eq!(leave(Phase::Removing, Seen { gone: true, ..Seen::default() }, TTL), None);
        assert_eq!(leave(Phase::Checking, Seen::default(), TTL), Some(Phase::Removing), "never routed: no drain");
        assert_eq!(next_phase(Phase::Draining, true, Seen::default(), TTL, TTL), Some(Phase::Deploying));
    }

    #[test]
    fn manual_serves_home_and_every_candidate_auto_only_what_it_applied() {
        let manual = spec(
            "home: us-east-1\nhost: blog.example.com\ncandidates:\n- {region: eu-central-1, variant: container}\n- {region: ap-northeast-1}\n",
        );
        let got = wanted(&manual, None);
        let expected = Wanted::from([
            ("ap-northeast-1".to_owned(), None),
            ("eu-central-1".to_owned(), Some(PlacementVariant::Container)),
            ("us-east-1".to_owned(), None),
        ]);
        assert_eq!(got, expected);
        let auto = PlacementSpec { mode: PlacementMode::Auto, ..manual };
        assert_eq!(wanted(&auto, None), Wanted::from([("us-east-1".to_owned(), None)]), "home always serves");
        let applied = Wanted::from([("eu-central-1".to_owned(), Some(PlacementVariant::Function))]);
        assert_eq!(wanted(&auto, Some(&applied)).len(), 2);
    }

    #[test]
    fn weights_follow_the_variant_and_what_is_enabled() {
        assert_eq!(weights(None, (true, true)), (100, 100));
        assert_eq!(weights(Some(PlacementVariant::Container), (true, true)), (0, 100));
        assert_eq!(weights(Some(PlacementVariant::Function), (true, false)), (100, 0));
        assert_eq!(weights(None, (false, true)), (0, 100));
    }

    #[test]
    fn records_alias_the_region_pair_and_each_variant_endpoint() {
        let target = Target {
            zone_id: "ZAPI".into(),
            dns_name: "d-1.execute-api.eu-central-1.amazonaws.com".into(),
            health_check_id: Some("hc".into()),
        };
        let weighted = weighted_record("Blog.Example.com", "eu-central-1", PlacementVariant::Function, &target, 100);
        assert_eq!(weighted.name, "eu-central-1.blog.example.com.");
        let routing = weighted.routing.expect("routed");
        assert_eq!(routing.set_identifier, "eu-central-1-function");
        assert_eq!(routing.policy, RoutingPolicy::Weighted(100));
        let latency = latency_record("blog.example.com", "eu-central-1", "ZONE");
        assert_eq!(latency.name, "blog.example.com.");
        assert!(
            matches!(latency.value, RecordValue::Alias { ref dns_name, evaluate_health: true, .. } if dns_name == "eu-central-1.blog.example.com.")
        );
    }

    #[test]
    fn auto_starts_at_home_and_moves_one_region_toward_far_demand() {
        let yaml = "mode: Auto\nhome: us-east-1\nhost: blog.example.com\ncandidates:\n- {region: ap-northeast-1}\n- {region: eu-central-1}\nobjective: {p95LatencyMs: 120}\ndemand: {us-east-1: 10, ap-northeast-1: 300, eu-central-1: 300}\n";
        let spec = spec(yaml);
        let model = super::super::Model::default();
        let first = decision((&spec, BOTH), &model, (&[], &BTreeMap::new(), &BTreeMap::new()), true).decision;
        assert!(first.change.is_some(), "{}", first.why);
        assert_eq!(first.placement.len(), 2, "one region added to home: {:?}", first.placement);
        assert!(first.placement.contains_key("us-east-1"));
        let waiting = decision((&spec, BOTH), &model, (&[], &BTreeMap::new(), &BTreeMap::new()), false).decision;
        assert_eq!(waiting.change, None, "the cooldown holds it: {}", waiting.why);
        assert_eq!(waiting.placement.len(), 1);
    }

    #[test]
    fn a_variant_the_spec_disables_is_never_chosen() {
        // Light traffic everywhere: with both enabled, functions are the cheaper choice.
        let yaml = "mode: Auto\nhome: us-east-1\nhost: blog.example.com\ncandidates:\n- {region: ap-northeast-1}\nobjective: {p95LatencyMs: 120}\ndemand: {us-east-1: 1, ap-northeast-1: 1}\n";
        let spec = spec(yaml);
        let model = super::super::Model::default();
        let chosen = |enabled| {
            let decided = decision((&spec, enabled), &model, (&[], &BTreeMap::new(), &BTreeMap::new()), true).decision;
            decided.target.values().copied().collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(chosen(BOTH), [super::super::Variant::Function].into());
        assert_eq!(chosen((false, true)), [super::super::Variant::Container].into(), "functions are disabled");
        assert_eq!(chosen((true, false)), [super::super::Variant::Function].into());
    }

    #[test]
    fn a_region_runs_what_serves_and_while_it_switches_what_is_still_weighted_in() {
        let serving = |phase: Phase, weights: (i64, i64)| RegionStatus {
            region: "eu-central-1".to_owned(),
            phase: phase.as_str().to_owned(),
            function_weight: weights.0,
            container_weight: weights.1,
            ..RegionStatus::default()
        };
        let container = Some(PlacementVariant::Container);
        assert_eq!(running(container, None, false), (false, true), "a new region: the serving variant alone");
        assert_eq!(running(None, None, false), (true, true), "served by both");
        let switching = serving(Phase::Serving, (100, 0));
        assert_eq!(
            running(container, Some(&switching), false),
            (true, true),
            "the function serves until the container is checked"
        );
        let switched = serving(Phase::Serving, (0, 100));
        assert_eq!(running(container, Some(&switched), false), (false, true), "then it goes");
        let not_yet = serving(Phase::Checking, (100, 0));
        assert_eq!(running(container, Some(&not_yet), false), (false, true), "nothing serves before the region does");
        assert_eq!(running(container, Some(&switched), true), (true, true), "kept warm: the other runs idle");
    }

    #[test]
    fn auto_takes_a_region_out_once_measured_demand_is_all_at_home() {
        let yaml = "mode: Auto\nhome: us-west-1\nhost: blog.example.com\ncooldownMinutes: 0\ncandidates:\n- {region: eu-central-1}\nobjective: {p95LatencyMs: 120}\ndemand: {us-west-1: 1, eu-central-1: 100}\n";
        let spec = spec(yaml);
        let serving = |region: &str| RegionStatus {
            region: region.to_owned(),
            phase: "Serving".to_owned(),
            variant: Some(PlacementVariant::Container),
            ..RegionStatus::default()
        };
        let current = [serving("us-west-1"), serving("eu-central-1")];
        let measured = BTreeMap::from([("us-west-1".to_owned(), 200.0), ("eu-central-1".to_owned(), 0.0)]);
        let model = super::super::Model::default();
        let Decided { decision: decided, demand: seen, .. } =
            decision((&spec, BOTH), &model, (&current, &measured, &BTreeMap::new()), true);
        assert_eq!(seen.get("eu-central-1"), Some(&0.0));
        assert_eq!(decided.change, Some(super::super::Change::Remove("eu-central-1".to_owned())), "{}", decided.why);
    }

    #[test]
    fn readers_far_from_home_move_auto_once_their_beacons_say_where_they_are() {
        // Only home serves and nothing else is declared: all traffic is measured at home.
        let yaml = "mode: Auto\nhome: us-east-1\nhost: blog.example.com\ncandidates:\n- {region: ap-northeast-1}\nobjective: {p95LatencyMs: 120}\n";
        let spec = spec(yaml);
        let model = super::super::Model::default();
        let measured = BTreeMap::from([("us-east-1".to_owned(), 4.0)]);
        let round_trip = |count, mean_ms| super::super::readers::RoundTrips { count, mean_ms };
        let key = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let mut readers = BTreeMap::from([
            (key("us-east-1", "us-east-1"), round_trip(5.0, 20.0)),
            (key("us-east-1", "ap-northeast-1"), round_trip(5.0, 170.0)),
            (key("ap-northeast-1", "ap-northeast-1"), round_trip(20.0, 30.0)),
            (key("ap-northeast-1", "us-east-1"), round_trip(20.0, 180.0)),
        ]);
        let blind = decision((&spec, BOTH), &model, (&[], &measured, &readers), true);
        let adds = |change: &Option<super::super::Change>| matches!(change, Some(super::super::Change::Add(..)));
        assert!(
            !blind.from_readers() && !adds(&blind.decision.change),
            "25 beacons are too few: {}",
            blind.decision.why
        );
        assert_eq!(blind.demand, measured, "without enough beacons, readers count where they are served");
        readers.insert(key("ap-northeast-1", "ap-northeast-1"), round_trip(45.0, 30.0));
        let seen = decision((&spec, BOTH), &model, (&[], &measured, &readers), true);
        assert!(seen.from_readers() && (seen.beacons - 50.0).abs() < 1e-9);
        assert!((seen.demand["ap-northeast-1"] - 3.6).abs() < 1e-9, "{:?}", seen.demand);
        let added = super::super::Change::Add("ap-northeast-1".to_owned(), super::super::Variant::Function);
        let container = super::super::Change::Add("ap-northeast-1".to_owned(), super::super::Variant::Container);
        assert!(matches!(&seen.decision.change, Some(c) if *c == added || *c == container), "{}", seen.decision.why);
    }

    #[test]
    fn measured_demand_replaces_the_declared_share_and_scales_the_rest() {
        let declared = BTreeMap::from([("us-east-1".to_owned(), 50), ("eu-central-1".to_owned(), 50)]);
        let measured = BTreeMap::from([("us-east-1".to_owned(), 30.0)]);
        let none = std::collections::BTreeSet::new();
        let got = demand(&declared, &measured, &none);
        assert!((got["us-east-1"] - 30.0).abs() < 1e-9);
        assert!((got["eu-central-1"] - 15.0).abs() < 1e-9, "50 % of the measured 30 rps, by the declared ratio");
        assert_eq!(demand(&declared, &BTreeMap::new(), &none)["eu-central-1"], 50.0);
        let idle = BTreeMap::from([("us-east-1".to_owned(), 0.0)]);
        assert_eq!(demand(&declared, &idle, &none)["us-east-1"], 50.0, "no traffic yet: the declared shares stand");
        let serving = std::collections::BTreeSet::from(["eu-central-1".to_owned()]);
        let got = demand(&declared, &measured, &serving);
        assert_eq!(got.get("eu-central-1"), None, "a serving region's readers are measured where they are served");
    }
}
