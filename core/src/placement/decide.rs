//! The placement model and decision (see the module above).

use std::collections::BTreeMap;

use super::latency::Matrix;
use crate::allocation::pricing::{
    ContainerSize, FunctionSize, HOURS_PER_MONTH, PriceTable, Traffic, container_monthly, function_monthly,
};
use crate::crd::Architecture;
use crate::desired::Desired;

const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;

/// The variant serving one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    Function,
    Container,
}

/// Region → the variant that serves it there.
pub type Placement = BTreeMap<String, Variant>;

/// A region the blog may run in, optionally pinned to one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub region: String,
    pub pinned: Option<Variant>,
}

/// Average requests per second by reader area (named by the region nearest the readers).
pub type Demand = BTreeMap<String, f64>;

/// What the placement must achieve: a p95 reader latency and/or a monthly budget (USD).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Objective {
    pub p95_ms: Option<f64>,
    pub monthly_budget: Option<f64>,
}

/// The model's assumptions; every figure can be overridden.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub matrix: Matrix,
    pub prices: PriceTable,
    pub function: FunctionSize,
    /// One task's size (`tasks` is ignored: tasks follow demand, at least one per region).
    pub task: ContainerSize,
    /// Requests per second one task serves at its target utilisation.
    pub rps_per_task: f64,
    /// Time inside the region (front door and handler), p95, ms, per variant.
    pub function_ms: f64,
    pub container_ms: f64,
    /// The function's average billed duration, ms.
    pub function_duration_ms: f64,
    /// Share of requests that write (each write is replicated to every other region).
    pub write_share: f64,
    /// DynamoDB global tables, per million replicated writes (on demand).
    pub replicated_write_per_million: f64,
    /// Bytes one replicated write carries to each replica, and the inter-region transfer per GB.
    pub write_bytes: f64,
    pub transfer_gb: f64,
    /// The table's size, GB, each replica stores, and DynamoDB's storage per GB-month.
    pub table_gb: f64,
    pub storage_gb_month: f64,
    /// Route 53: an HTTPS health check of an AWS endpoint per month (the basic check and its HTTPS
    /// feature); latency-routed queries per million.
    pub health_check_month: f64,
    pub latency_query_per_million: f64,
    /// DNS queries per request that reach Route 53 (resolvers cache answers for the TTL).
    pub queries_per_request: f64,
    /// Variants that run in a region whatever serves there, priced idle: home runs every variant
    /// its spec enables (the blog's pair of URLs), a region served by both variants runs both.
    pub also_running: BTreeMap<String, Vec<Variant>>,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            matrix: Matrix::default(),
            prices: PriceTable::default(),
            function: FunctionSize { memory_mib: 512, architecture: Architecture::Arm64, provisioned: 0 },
            task: ContainerSize { cpu: 512, memory_mib: 1024, tasks: 1 },
            rps_per_task: 150.0,
            function_ms: 45.0,
            container_ms: 20.0,
            function_duration_ms: 15.0,
            write_share: 0.05,
            replicated_write_per_million: 0.625,
            write_bytes: 1024.0,
            transfer_gb: 0.02,
            table_gb: 1.0,
            storage_gb_month: 0.25,
            health_check_month: 1.50,
            latency_query_per_million: 0.60,
            queries_per_request: 0.02,
            also_running: BTreeMap::new(),
        }
    }
}

impl Model {
    /// The model at `prices` with the deployment's own sizes (its spec's, or what Auto sizing
    /// applied): a region is priced as it would run, not at the defaults.
    #[must_use]
    pub fn sized_as(prices: PriceTable, desired: &Desired) -> Self {
        let mut model = Self { prices, ..Self::default() };
        if let Some(function) = &desired.function {
            model.function = FunctionSize {
                memory_mib: function.memory_mib,
                architecture: function.architecture,
                provisioned: function.provisioned_concurrency.unwrap_or(0),
            };
        }
        if let Some(container) = &desired.container {
            model.task = ContainerSize { cpu: container.cpu, memory_mib: container.memory_mib, tasks: 1 };
        }
        model
    }
}

/// Monthly USD of a placement, by what it pays for.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    pub compute: f64,
    pub replication: f64,
    pub dns: f64,
}

impl Cost {
    #[must_use]
    pub fn total(&self) -> f64 {
        self.compute + self.replication + self.dns
    }
}

/// What a placement costs and how fast readers are served.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub cost: Cost,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// Share of requests answered within the objective's p95 target (1 without one).
    pub within_target: f64,
    /// Requests per second each region serves.
    pub served: BTreeMap<String, f64>,
    /// Each region's monthly compute, USD.
    pub regional: BTreeMap<String, f64>,
    /// Each area's latency (ms) and its requests per second.
    pub latencies: Vec<(f64, f64)>,
}

/// Prices and times `placement` for `demand`: Route 53 latency routing sends each area to the
/// deployed region nearest it; each region runs its variant sized for what it serves.
#[must_use]
pub fn evaluate(model: &Model, placement: &Placement, demand: &Demand, objective: &Objective) -> Evaluation {
    let mut served: BTreeMap<String, f64> = placement.keys().map(|r| (r.clone(), 0.0)).collect();
    let mut latencies = Vec::new();
    for (area, rps) in demand.iter().filter(|(_, rps)| **rps > 0.0) {
        let Some((region, network_ms)) = nearest(&model.matrix, placement, area) else { continue };
        *served.entry(region.clone()).or_default() += rps;
        latencies.push((network_ms + in_region_ms(model, placement[&region]), *rps));
    }
    let regional: BTreeMap<String, f64> = placement
        .iter()
        .map(|(region, variant)| (region.clone(), running_monthly(model, region, *variant, served[region])))
        .collect();
    let compute = regional.values().sum();
    let total_rps: f64 = demand.values().sum();
    let others = placement.len().saturating_sub(1) as f64;
    let replication = others * replica_monthly(model, total_rps);
    let queries = total_rps * model.queries_per_request * SECONDS_PER_MONTH / 1e6 * model.latency_query_per_million;
    let dns = placement.len() as f64 * model.health_check_month + queries;
    let target = objective.p95_ms.unwrap_or(f64::INFINITY);
    Evaluation {
        cost: Cost { compute, replication, dns },
        p50_ms: percentile(&mut latencies, 0.50),
        p95_ms: percentile(&mut latencies, 0.95),
        within_target: share_within(&latencies, target),
        served,
        regional,
        latencies,
    }
}

/// The deployed region with the lowest round trip from `area`, and that round trip.
fn nearest(matrix: &Matrix, placement: &Placement, area: &str) -> Option<(String, f64)> {
    placement
        .keys()
        .filter_map(|region| matrix.reader_ms(area, region).map(|ms| (region.clone(), ms)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

fn in_region_ms(model: &Model, variant: Variant) -> f64 {
    match variant {
        Variant::Function => model.function_ms,
        Variant::Container => model.container_ms,
    }
}

/// One replica's month at `total_rps` requests a second across the placement: every write
/// replicated to it, carried to it across regions, and the table it stores.
#[must_use]
pub fn replica_monthly(model: &Model, total_rps: f64) -> f64 {
    let writes = total_rps * model.write_share * SECONDS_PER_MONTH;
    writes / 1e6 * model.replicated_write_per_million
        + writes * model.write_bytes / 1e9 * model.transfer_gb
        + model.table_gb * model.storage_gb_month
}

/// Everything that runs in a region: the serving variant at `rps`, and each variant that runs
/// there anyway, idle.
fn running_monthly(model: &Model, region: &str, serving: Variant, rps: f64) -> f64 {
    let idle = model.also_running.get(region).into_iter().flatten().filter(|v| **v != serving);
    region_monthly(model, (region, serving), rps) + idle.map(|v| region_monthly(model, (region, *v), 0.0)).sum::<f64>()
}

/// One region's monthly compute at `rps`: the function per request, the container per task (at
/// least one) and its load balancer.
fn region_monthly(model: &Model, (region, variant): (&str, Variant), rps: f64) -> f64 {
    let prices = model.prices.in_region(region);
    let traffic = Traffic {
        requests_per_second: rps,
        function_duration_ms: model.function_duration_ms,
        bytes_per_request: 2048.0,
    };
    match variant {
        Variant::Function => function_monthly(prices, model.function, &traffic),
        Variant::Container => {
            let tasks = ((rps / model.rps_per_task).ceil() as i32).max(1);
            container_monthly(prices, ContainerSize { tasks, ..model.task }, &traffic)
        }
    }
}

/// The demand-weighted percentile of `(latency, weight)` pairs (0 when empty).
fn percentile(latencies: &mut [(f64, f64)], q: f64) -> f64 {
    latencies.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = latencies.iter().map(|(_, w)| w).sum();
    let mut seen = 0.0;
    for (ms, weight) in latencies.iter() {
        seen += weight;
        if seen >= q * total {
            return *ms;
        }
    }
    0.0
}

fn share_within(latencies: &[(f64, f64)], target: f64) -> f64 {
    let total: f64 = latencies.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 1.0;
    }
    latencies.iter().filter(|(ms, _)| *ms <= target).map(|(_, w)| w).sum::<f64>() / total
}

/// Every placement the candidates allow: home always (its pin respected), each other candidate
/// absent or with a variant it allows.
fn placements(home: &Candidate, others: &[Candidate]) -> Vec<Placement> {
    let allowed = |c: &Candidate| c.pinned.map_or(vec![Variant::Function, Variant::Container], |v| vec![v]);
    let mut all: Vec<Placement> =
        allowed(home).into_iter().map(|v| Placement::from([(home.region.clone(), v)])).collect();
    for candidate in others.iter().filter(|c| c.region != home.region) {
        let mut next = Vec::new();
        for placement in &all {
            next.push(placement.clone());
            for variant in allowed(candidate) {
                let mut with = placement.clone();
                with.insert(candidate.region.clone(), variant);
                next.push(with);
            }
        }
        all = next;
    }
    all
}

/// Whether `evaluation` meets the objective.
fn feasible(evaluation: &Evaluation, objective: &Objective) -> bool {
    objective.p95_ms.is_none_or(|t| evaluation.p95_ms <= t)
        && objective.monthly_budget.is_none_or(|b| evaluation.cost.total() <= b)
}

/// Orders two placements: one that meets the objective first; then, among those, the cheaper
/// (latency breaks ties); among those that do not, the faster within budget, then the faster;
/// fewer regions, then names, break what is left.
fn better(a: (&Placement, &Evaluation), b: (&Placement, &Evaluation), objective: &Objective) -> std::cmp::Ordering {
    let key = |(p, e): (&Placement, &Evaluation)| {
        let meets = feasible(e, objective);
        let in_budget = objective.monthly_budget.is_none_or(|budget| e.cost.total() <= budget);
        let (first, second) = if meets { (e.cost.total(), e.p95_ms) } else { (e.p95_ms, e.cost.total()) };
        (!meets, !in_budget, first, second, p.len())
    };
    let (ka, kb) = (key(a), key(b));
    (ka.0, ka.1)
        .cmp(&(kb.0, kb.1))
        .then(ka.2.total_cmp(&kb.2))
        .then(ka.3.total_cmp(&kb.3))
        .then(ka.4.cmp(&kb.4))
        .then_with(|| a.0.cmp(b.0))
}

/// The best placement for `demand` under `objective`, and its evaluation.
#[must_use]
pub fn best(
    model: &Model,
    (home, others): (&Candidate, &[Candidate]),
    demand: &Demand,
    objective: &Objective,
) -> (Placement, Evaluation) {
    placements(home, others)
        .into_iter()
        .map(|p| {
            let e = evaluate(model, &p, demand, objective);
            (p, e)
        })
        .min_by(|a, b| better((&a.0, &a.1), (&b.0, &b.1), objective))
        .unwrap_or_default()
}

/// One step of a placement change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Add(String, Variant),
    Switch(String, Variant, Variant),
    Remove(String),
}

/// Everything a decision looks at.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub model: &'a Model,
    pub home: &'a Candidate,
    pub candidates: &'a [Candidate],
    pub demand: &'a Demand,
    pub objective: Objective,
    pub current: &'a Placement,
    /// The least relative gain (cost, or p95 when the current placement misses its target) worth a
    /// change, e.g. 0.1.
    pub hysteresis: f64,
    /// Whether the cooldown since the last change is over.
    pub cooldown_over: bool,
}

/// What to run now and why; `change` is the one region changed, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub placement: Placement,
    pub target: Placement,
    pub change: Option<Change>,
    pub why: String,
}

/// Moves `current` one region toward the best placement, when the gain is worth it and the
/// cooldown is over; otherwise keeps it, saying why.
#[must_use]
pub fn decide(input: &Input<'_>) -> Decision {
    let (model, objective) = (input.model, &input.objective);
    let (target, target_eval) = best(model, (input.home, input.candidates), input.demand, objective);
    let now = evaluate(model, input.current, input.demand, objective);
    let keep = |why: String| Decision { placement: input.current.clone(), target: target.clone(), change: None, why };
    if &target == input.current {
        return keep(format!("the current placement is the best: {}", summary(input.current, &now)));
    }
    let gain = if feasible(&now, objective) || !feasible(&target_eval, objective) {
        relative(now.cost.total(), target_eval.cost.total()).max(relative(now.p95_ms, target_eval.p95_ms))
    } else {
        f64::INFINITY
    };
    if gain < input.hysteresis {
        return keep(format!(
            "{} would gain {:.0} %, under the {:.0} % hysteresis",
            summary(&target, &target_eval),
            gain * 100.0,
            input.hysteresis * 100.0
        ));
    }
    if !input.cooldown_over {
        return keep(format!(
            "{} is better, but the cooldown since the last change is not over",
            summary(&target, &target_eval)
        ));
    }
    let (placement, change) = step_toward(input, &target);
    let why = format!("moving toward {}: {}", summary(&target, &target_eval), describe(&change));
    Decision { placement, target, change: Some(change), why }
}

fn relative(from: f64, to: f64) -> f64 {
    if from > 0.0 { (from - to) / from } else { 0.0 }
}

/// Of the single-region changes that lead toward `target`, the one whose result ranks best.
fn step_toward(input: &Input<'_>, target: &Placement) -> (Placement, Change) {
    let current = input.current;
    let mut steps: Vec<(Placement, Change)> = Vec::new();
    for (region, variant) in target {
        match current.get(region) {
            None => steps.push((with(current, region, Some(*variant)), Change::Add(region.clone(), *variant))),
            Some(now) if now != variant => {
                steps.push((with(current, region, Some(*variant)), Change::Switch(region.clone(), *now, *variant)));
            }
            Some(_) => {}
        }
    }
    for region in current.keys().filter(|r| !target.contains_key(*r)) {
        steps.push((with(current, region, None), Change::Remove(region.clone())));
    }
    let rank = |p: &Placement| evaluate(input.model, p, input.demand, &input.objective);
    steps
        .into_iter()
        .map(|(p, c)| {
            let e = rank(&p);
            (p, c, e)
        })
        .min_by(|a, b| better((&a.0, &a.2), (&b.0, &b.2), &input.objective))
        .map(|(p, c, _)| (p, c))
        .unwrap_or_else(|| (target.clone(), Change::Remove(String::new())))
}

fn with(placement: &Placement, region: &str, variant: Option<Variant>) -> Placement {
    let mut next = placement.clone();
    match variant {
        Some(v) => next.insert(region.to_owned(), v),
        None => next.remove(region),
    };
    next
}

fn describe(change: &Change) -> String {
    match change {
        Change::Add(region, variant) => format!("add {region} ({variant:?})"),
        Change::Switch(region, from, to) => format!("switch {region} from {from:?} to {to:?}"),
        Change::Remove(region) => format!("remove {region}"),
    }
}

/// `us-east-1 Function, eu-central-1 Container: $123/month, p95 140 ms`.
#[must_use]
pub fn summary(placement: &Placement, evaluation: &Evaluation) -> String {
    let regions: Vec<String> = placement.iter().map(|(r, v)| format!("{r} {v:?}")).collect();
    format!("{}: ${:.0}/month, p95 {:.0} ms", regions.join(", "), evaluation.cost.total(), evaluation.p95_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(region: &str) -> Candidate {
        Candidate { region: region.to_owned(), pinned: None }
    }

    const AREAS: [&str; 6] =
        ["us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1", "ap-southeast-2", "sa-east-1"];

    fn candidates() -> Vec<Candidate> {
        ["us-east-1", "eu-central-1", "ap-northeast-1", "us-west-2"].into_iter().map(candidate).collect()
    }

    fn input<'a>(
        model: &'a Model,
        (home, others): (&'a Candidate, &'a [Candidate]),
        demand: &'a Demand,
        current: &'a Placement,
    ) -> Input<'a> {
        Input {
            model,
            home,
            candidates: others,
            demand,
            objective: Objective { p95_ms: Some(120.0), monthly_budget: None },
            current,
            hysteresis: 0.1,
            cooldown_over: true,
        }
    }

    #[test]
    fn regions_are_priced_at_the_deployments_own_sizes() {
        let spec = serde_json::from_value(serde_json::json!({
            "image": "blog:1",
            "function": {"memoryMiB": 2048, "architecture": "x86_64"},
            "container": {"cpu": 1024, "memoryMiB": 2048}
        }))
        .expect("spec");
        let owner = crate::desired::Owner { namespace: "ns".into(), name: "blog".into(), uid: "u1".into() };
        let inputs = crate::desired::Inputs { default_region: "us-east-1", ..Default::default() };
        let desired = crate::desired::desired(&owner, &spec, &inputs);
        let sized = Model::sized_as(PriceTable::default(), &desired);
        assert_eq!((sized.function.memory_mib, sized.function.architecture), (2048, Architecture::X86_64));
        assert_eq!((sized.task.cpu, sized.task.memory_mib), (1024, 2048));
        let demand = Demand::from([("us-east-1".to_owned(), 20.0)]);
        for variant in [Variant::Function, Variant::Container] {
            let placement = Placement::from([("us-east-1".to_owned(), variant)]);
            let cost = |model: &Model| evaluate(model, &placement, &demand, &Objective::default()).cost.compute;
            let (own, default) = (cost(&sized), cost(&Model::default()));
            assert!(own > default * 1.2, "{variant:?} at its own size: {own} vs {default}");
        }
    }

    #[test]
    fn readers_go_to_the_nearest_region_and_pay_for_it() {
        let model = Model::default();
        let demand = Demand::from([("eu-central-1".to_owned(), 10.0), ("us-east-1".to_owned(), 10.0)]);
        let home_only = Placement::from([("us-east-1".to_owned(), Variant::Function)]);
        let both = Placement::from([
            ("us-east-1".to_owned(), Variant::Function),
            ("eu-central-1".to_owned(), Variant::Function),
        ]);
        let one = evaluate(&model, &home_only, &demand, &Objective::default());
        let two = evaluate(&model, &both, &demand, &Objective::default());
        assert_eq!(one.served["us-east-1"], 20.0);
        assert_eq!((two.served["us-east-1"], two.served["eu-central-1"]), (10.0, 10.0));
        assert!(two.p95_ms < one.p95_ms, "a second region brings Europe closer: {} vs {}", two.p95_ms, one.p95_ms);
        assert_eq!(one.cost.replication, 0.0, "one region replicates nothing");
        assert!(two.cost.replication > 0.0 && two.cost.dns > one.cost.dns);
        // Functions cost per request: the same demand split over two regions costs the same compute.
        assert!((two.cost.compute - one.cost.compute).abs() < 1e-6);
    }

    #[test]
    fn a_region_with_its_own_prices_is_priced_with_them() {
        let prices: PriceTable = serde_json::from_str(
            r#"{"fargateVcpuHour": 0.04048, "regions": {"sa-east-1": {"fargateVcpuHour": 0.0696, "albHour": 0.0378}}}"#,
        )
        .expect("a price table with a regional one");
        assert_eq!(prices.in_region("eu-west-1"), &prices, "a region not named: the table itself");
        assert!((prices.in_region("sa-east-1").fargate_gb_hour - 0.004_445).abs() < 1e-12, "left out: the default");
        let model = Model { prices, ..Model::default() };
        let placement = |region: &str| Placement::from([(region.to_owned(), Variant::Container)]);
        let demand = |region: &str| Demand::from([(region.to_owned(), 10.0)]);
        let cost =
            |region: &str| evaluate(&model, &placement(region), &demand(region), &Objective::default()).cost.compute;
        assert!(cost("sa-east-1") > cost("us-east-1") * 1.3, "{} vs {}", cost("sa-east-1"), cost("us-east-1"));
    }

    #[test]
    fn everything_that_runs_is_priced_and_an_idle_container_at_home_is_served_from() {
        let demand = Demand::from([("us-east-1".to_owned(), 1.0), ("eu-central-1".to_owned(), 1.0)]);
        let placement = Placement::from([
            ("us-east-1".to_owned(), Variant::Function),
            ("eu-central-1".to_owned(), Variant::Function),
        ]);
        let alone = Model::default();
        let home_runs_both = Model {
            also_running: BTreeMap::from([("us-east-1".to_owned(), vec![Variant::Function, Variant::Container])]),
            ..Model::default()
        };
        let (lean, full) = (
            evaluate(&alone, &placement, &demand, &Objective::default()),
            evaluate(&home_runs_both, &placement, &demand, &Objective::default()),
        );
        let idle = region_monthly(&alone, ("us-east-1", Variant::Container), 0.0);
        // One task, the load balancer and three public addresses: 730 × (0.0225 + 3 × 0.005) + 1 task.
        assert!(idle > 730.0 * (0.0225 + 3.0 * 0.005), "{idle}");
        assert!((full.regional["us-east-1"] - lean.regional["us-east-1"] - idle).abs() < 1e-9);
        assert_eq!(full.regional["eu-central-1"], lean.regional["eu-central-1"], "a placement region runs what serves");
        // The replica: writes, their transfer and the table it stores.
        let replica = replica_monthly(&alone, 2.0);
        assert!((lean.cost.replication - replica).abs() < 1e-9 && replica > alone.table_gb * alone.storage_gb_month);
        // With the container running at home anyway, serving home's readers from it costs nothing more.
        let home = candidate("us-east-1");
        let (best_alone, _) = best(&alone, (&home, &[]), &demand, &Objective::default());
        let (best_both, _) = best(&home_runs_both, (&home, &[]), &demand, &Objective::default());
        assert_eq!((best_alone["us-east-1"], best_both["us-east-1"]), (Variant::Function, Variant::Container));
    }

    #[test]
    fn a_latency_target_adds_the_regions_it_needs_and_no_more() {
        let model = Model::default();
        let cands = candidates();
        let demand: Demand = AREAS.iter().map(|a| ((*a).to_owned(), 5.0)).collect();
        // São Paulo's readers reach us-east-1 in 135 ms, plus the time in the region.
        let objective = Objective { p95_ms: Some(160.0), monthly_budget: None };
        let (placement, evaluation) = best(&model, (&cands[0], &cands), &demand, &objective);
        assert!(evaluation.p95_ms <= 160.0, "{evaluation:?}");
        assert!(placement.len() > 1, "{placement:?}");
        assert!(placement.contains_key("us-east-1"), "home always");
        let loose = Objective { p95_ms: Some(400.0), monthly_budget: None };
        let (fewer, _) = best(&model, (&cands[0], &cands), &demand, &loose);
        assert_eq!(fewer.len(), 1, "nothing but home is needed for a loose target: {fewer:?}");
    }

    #[test]
    fn a_pin_is_respected() {
        let model = Model::default();
        let mut cands = candidates();
        cands[0].pinned = Some(Variant::Container);
        let demand: Demand = AREAS.iter().map(|a| ((*a).to_owned(), 0.1)).collect();
        let (placement, _) = best(&model, (&cands[0], &cands), &demand, &Objective::default());
        assert_eq!(placement.get("us-east-1"), Some(&Variant::Container), "light traffic would pick a function");
    }

    #[test]
    fn decisions_move_one_region_at_a_time_to_a_fixed_point() {
        let model = Model::default();
        let cands = candidates();
        let demand: Demand = AREAS.iter().map(|a| ((*a).to_owned(), 20.0)).collect();
        let mut current = Placement::from([("us-east-1".to_owned(), Variant::Function)]);
        for _ in 0..10 {
            let decision = decide(&input(&model, (&cands[0], &cands), &demand, &current));
            let Some(change) = decision.change.clone() else {
                assert_eq!(decision.placement, decision.target, "{}", decision.why);
                return;
            };
            let differing = decision
                .placement
                .keys()
                .chain(current.keys())
                .filter(|r| decision.placement.get(*r) != current.get(*r));
            assert_eq!(differing.collect::<std::collections::BTreeSet<_>>().len(), 1, "{change:?}");
            current = decision.placement;
        }
        panic!("no fixed point within 10 decisions: {current:?}");
    }

    #[test]
    fn a_small_gain_or_a_running_cooldown_changes_nothing() {
        let model = Model::default();
        let cands = candidates();
        let demand: Demand = AREAS.iter().map(|a| ((*a).to_owned(), 20.0)).collect();
        let current = Placement::from([("us-east-1".to_owned(), Variant::Function)]);
        let mut waiting = input(&model, (&cands[0], &cands), &demand, &current);
        waiting.cooldown_over = false;
        let held = decide(&waiting);
        assert!(held.change.is_none() && held.why.contains("cooldown"), "{}", held.why);
        let mut stubborn = input(&model, (&cands[0], &cands), &demand, &current);
        stubborn.objective = Objective::default();
        stubborn.hysteresis = 10.0;
        let held = decide(&stubborn);
        assert!(held.change.is_none() && held.why.contains("hysteresis"), "{}", held.why);
    }

    proptest! {
        #[test]
        fn the_best_placement_is_within_bounds_and_stable(rates in proptest::collection::vec(0.0f64..500.0, 6), target in 60.0f64..400.0) {
            let model = Model::default();
            let cands = candidates();
            let demand: Demand = AREAS.iter().zip(&rates).map(|(a, r)| ((*a).to_owned(), *r)).collect();
            let objective = Objective { p95_ms: Some(target), monthly_budget: None };
            let (placement, evaluation) = best(&model, (&cands[0], &cands), &demand, &objective);
            prop_assert!(placement.contains_key("us-east-1"));
            prop_assert!(placement.keys().all(|r| cands.iter().any(|c| &c.region == r)));
            prop_assert!(evaluation.cost.total() >= 0.0 && evaluation.p95_ms >= 0.0);
            // The same input gives the same answer, and once applied it is a fixed point.
            let (again, _) = best(&model, (&cands[0], &cands), &demand, &objective);
            prop_assert_eq!(&again, &placement);
            let mut at_target = input(&model, (&cands[0], &cands), &demand, &placement);
            at_target.objective = objective;
            prop_assert!(decide(&at_target).change.is_none());
        }

        #[test]
        fn one_region_turns_from_function_to_container_as_demand_grows_and_never_back(rates in proptest::collection::vec(0.0f64..2000.0, 2..12)) {
            let model = Model::default();
            let home = candidate("us-east-1");
            let mut rates = rates;
            rates.sort_by(f64::total_cmp);
            let variants: Vec<Variant> = rates
                .iter()
                .map(|r| best(&model, (&home, &[]), &Demand::from([("us-east-1".to_owned(), *r)]), &Objective::default()).0["us-east-1"])
                .collect();
            let first_container = variants.iter().position(|v| *v == Variant::Container).unwrap_or(variants.len());
            prop_assert!(variants[first_container..].iter().all(|v| *v == Variant::Container), "{:?} at {:?}", variants, rates);
        }
    }
}
