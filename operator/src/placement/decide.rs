//! The placement's decision, pure, for the build: from the demand measured where regions serve
//! (read by dereference) and declared elsewhere, the regions to serve now (Auto's decision, or the
//! spec's candidates), the recommendation (Recommend, Auto) and what each region costs a month.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::allocation::pricing::PriceTable;
use crate::crd::{PlacementMode, PlacementRecommendation, PlacementSpec, PlacementStatus};
use crate::desired::Desired;
use blog_core::placement::readers::{MIN_BEACONS, Readings};
use blog_core::placement::regions::{self, Wanted};
use blog_core::placement::{Decision, Demand, Model, Objective, Placement, Variant};

/// What the build decided for a placement.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The regions to serve now, home first among them, each with its variant (`None`: both).
    pub wanted: Wanted,
    /// Recommend's and Auto's decision and the recommendation it makes; `None` under Manual.
    pub decided: Option<(Decision, PlacementRecommendation)>,
    /// The monthly cost of each region of the placement in effect, at the measured demand.
    pub costs: BTreeMap<String, f64>,
}

impl Placed {
    /// The note of an Event: Auto changed a region, or the recommendation changed.
    #[must_use]
    pub fn note(&self, mode: PlacementMode, previous: Option<&PlacementStatus>) -> Option<String> {
        let (decision, recommendation) = self.decided.as_ref()?;
        let recommended_before = previous.and_then(|p| p.recommendation.as_ref()).map(|r| &r.regions);
        match mode {
            PlacementMode::Auto if decision.change.is_some() => Some(format!("placement changed: {}", decision.why)),
            PlacementMode::Recommend if recommended_before != Some(&recommendation.regions) => {
                Some(format!("placement recommended: {}", decision.why))
            }
            _ => None,
        }
    }

    /// Whether Auto changed the placement now.
    #[must_use]
    pub fn changed(&self, mode: PlacementMode) -> bool {
        mode == PlacementMode::Auto && self.decided.as_ref().is_some_and(|(d, _)| d.change.is_some())
    }
}

/// Decides the placement. `home` is the home region's desired state at the sizes it runs at, so
/// the prices are the deployment's own; `measured` holds requests per second per serving region,
/// `readers` the round trips readers' beacons measured in the window.
#[must_use]
pub fn decide(
    spec: &PlacementSpec,
    (home, prices): (&Desired, &PriceTable),
    (measured, readers): (&BTreeMap<String, f64>, &Readings),
    previous: Option<&PlacementStatus>,
    now: &Time,
) -> Placed {
    let current = previous.map_or(&[][..], |p| p.regions.as_slice());
    let cooldown = Duration::from_secs(u64::try_from(spec.cooldown_minutes).unwrap_or(60) * 60);
    let since_change = previous.and_then(|p| p.last_change_time.as_ref()).map(|t| now.0.duration_since(t.0));
    let cooldown_over = since_change.is_none_or(|d| d.as_secs_f64() >= cooldown.as_secs_f64());
    let enabled = (home.function.is_some(), home.container.is_some());
    let mut model = Model::sized_as(prices.clone(), home);
    // Home runs every enabled variant whatever serves there: the decision knows what is paid anyway.
    model.also_running = running_anyway(spec, &Wanted::new(), enabled);
    let decided = regions::decision((spec, enabled), &model, (current, measured, readers), cooldown_over);
    let why = advice(&decided.decision.why, decided.beacons, decided.from_readers());
    let regions::Decided { decision, demand, current, beacons, measured_model } = decided;
    let objective = Objective {
        p95_ms: spec.objective.p95_latency_ms.map(f64::from),
        monthly_budget: spec.objective.monthly_budget_usd.map(f64::from),
    };
    tracing::debug!(?measured, ?demand, why = decision.why, "placement decision");
    let auto = spec.mode == PlacementMode::Auto;
    let wanted = regions::wanted(spec, auto.then(|| regions::as_wanted(&decision.placement)).as_ref());
    // Auto applies the decision now; otherwise the placement in effect stays.
    let costed = if auto { &decision.placement } else { &current };
    let in_effect = Model { also_running: running_anyway(spec, &wanted, enabled), ..model.clone() };
    let mut costs = costs(&in_effect, (costed, &wanted), &demand, &spec.home);
    // The beacons' metrics are home's CloudWatch's.
    if let Some(home) = costs.get_mut(&spec.home) {
        *home += blog_core::placement::readers::metrics_monthly(readers);
    }
    // The target's latency as readers measured it, when they did.
    let judged = measured_model.unwrap_or_else(|| model.clone());
    let evaluation = blog_core::placement::evaluate(&judged, &decision.target, &demand, &objective);
    let recommendation = PlacementRecommendation {
        regions: decision.target.iter().map(|(r, v)| format!("{r}={}", format!("{v:?}").to_lowercase())).collect(),
        monthly_usd: (evaluation.cost.total() * 100.0).round() / 100.0,
        p95_ms: evaluation.p95_ms.round(),
        within_target: (evaluation.within_target * 1000.0).round() / 1000.0,
        why,
        beacons: beacons.round() as u64,
    };
    let decided = (spec.mode != PlacementMode::Manual).then_some((decision, recommendation));
    Placed { wanted, decided, costs }
}

/// Why the recommendation is what it is, saying first when readers' beacons were too few to rest it on.
fn advice(why: &str, beacons: f64, from_readers: bool) -> String {
    if from_readers {
        return format!("from {beacons:.0} readers' beacons: {why}");
    }
    format!(
        "too few readers' beacons to advise from ({beacons:.0} of {MIN_BEACONS:.0} in the window): \
         requests per serving region and the declared demand stand in; {why}"
    )
}

/// The variants each region runs whatever serves it: home runs each enabled variant (the blog's
/// pair of URLs), and so does every region served by both and every candidate kept warm.
fn running_anyway(
    spec: &PlacementSpec,
    wanted: &Wanted,
    (function, container): regions::Enabled,
) -> BTreeMap<String, Vec<Variant>> {
    let enabled: Vec<Variant> = [(function, Variant::Function), (container, Variant::Container)]
        .into_iter()
        .filter_map(|(on, variant)| on.then_some(variant))
        .collect();
    let by_both = wanted.iter().filter(|(_, variant)| variant.is_none()).map(|(region, _)| region.as_str());
    let warm = spec.candidates.iter().filter(|c| c.warm).map(|c| c.region.as_str());
    std::iter::once(spec.home.as_str())
        .chain(by_both)
        .chain(warm)
        .map(|region| (region.to_owned(), enabled.clone()))
        .collect()
}

/// What each region of `placement` costs a month: what runs there, its health checks (one per
/// variant serving), and outside home its table replica.
fn costs(
    model: &Model,
    (placement, wanted): (&Placement, &Wanted),
    demand: &Demand,
    home: &str,
) -> BTreeMap<String, f64> {
    let evaluation = blog_core::placement::evaluate(model, placement, demand, &Objective::default());
    let replica = blog_core::placement::replica_monthly(model, demand.values().sum());
    let serving = |region: &str| match wanted.get(region) {
        Some(None) => model.also_running.get(region).map_or(1, Vec::len),
        _ => 1,
    };
    evaluation
        .regional
        .into_iter()
        .map(|(region, compute)| {
            let checks = model.health_check_month * serving(&region) as f64;
            let replica = if region == home { 0.0 } else { replica };
            let usd = compute + checks + replica;
            (region, usd)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_kept_warm_runs_and_is_priced_with_both_variants() {
        let spec: PlacementSpec = serde_saphyr::from_str(
            "mode: Auto\nhome: us-east-1\nhost: blog.example.com\nobjective: {p95LatencyMs: 120}\n\
             candidates:\n- {region: eu-central-1, warm: true}\n- {region: ap-northeast-1}\n",
        )
        .expect("fixture parses");
        let wanted = Wanted::from([
            ("us-east-1".to_owned(), Some(crate::crd::PlacementVariant::Function)),
            ("eu-central-1".to_owned(), Some(crate::crd::PlacementVariant::Function)),
            ("ap-northeast-1".to_owned(), Some(crate::crd::PlacementVariant::Function)),
        ]);
        let running = running_anyway(&spec, &wanted, (true, true));
        let both = vec![Variant::Function, Variant::Container];
        assert_eq!(running.get("eu-central-1"), Some(&both), "kept warm");
        assert_eq!(running.get("ap-northeast-1"), None, "serves with the function alone");
        let placement: Placement = wanted.keys().map(|r| (r.clone(), Variant::Function)).collect();
        let demand = Demand::from([("eu-central-1".to_owned(), 1.0), ("ap-northeast-1".to_owned(), 1.0)]);
        let priced = |also_running| {
            let model = Model { also_running, ..Model::default() };
            costs(&model, (&placement, &wanted), &demand, &spec.home)
        };
        let (warm, cold) = (priced(running.clone()), priced(BTreeMap::new()));
        assert!(warm["eu-central-1"] > cold["eu-central-1"] + 10.0, "an idle container and its ALB: {warm:?} {cold:?}");
        assert!((warm["ap-northeast-1"] - cold["ap-northeast-1"]).abs() < 1e-9);
    }
}
