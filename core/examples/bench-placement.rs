//! `make bench-placement`: simulated readers by geography under six demand shapes, many seeds and
//! a scale sweep, decided every 15 minutes by the placer through the operator's own demand path
//! (readers' beacons over a 60-minute window, the readers' measured round trips, one region per
//! decision, hysteresis and cooldown, a region serving one step after it is added, a region leaving
//! or a variant switched paid for one more step) and set against home only, every candidate with
//! each variant, the best fixed placement chosen with hindsight, and a per-step oracle. A
//! benchmark: it prints, never fails on a figure.
//!
//! `BENCH_SEEDS` (default 20), `BENCH_SCALES` (requests/s at the busiest area's peak, default
//! `5,40,200`), `BENCH_P95_MS` (default 150).

use std::collections::BTreeMap;

use blog_core::placement::readers::{self, Readings, RoundTrips};
use blog_core::placement::{self, Candidate, Demand, Model, Objective, Placement, Variant};

/// Reader areas (the region nearest them), their share of readers and the UTC hour of their
/// evening peak. ap-southeast-2 is no candidate: its readers are always served from elsewhere.
const AREAS: [(&str, f64, f64); 6] = [
    ("us-east-1", 0.30, 1.0),
    ("us-west-2", 0.15, 4.0),
    ("eu-central-1", 0.25, 19.0),
    ("ap-northeast-1", 0.15, 12.0),
    ("ap-southeast-2", 0.05, 10.0),
    ("sa-east-1", 0.10, 23.0),
];
const HOME: &str = "us-east-1";
const CANDIDATES: [&str; 5] = ["us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1", "sa-east-1"];
/// Steps of 15 minutes in a day.
const DAY: usize = 96;
/// The operator's measurement window, in steps (60 minutes).
const WINDOW: usize = 4;
/// Page views per request that send a beacon (one page, its API calls).
const BEACONS_PER_REQUEST: f64 = 0.1;

/// The demand shapes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Each area a cosine around its evening peak, 30 % at night.
    Diurnal,
    /// Follow the sun: 5 % at night.
    DeepSwing,
    /// No daily curve.
    Flat,
    /// São Paulo's readers ten times as many for two hours (14:00-16:00 UTC).
    FlashCrowd,
    /// ap-northeast-1 fails from 04:00 to 10:00 UTC: its health checks turn red, latency routing
    /// sends its readers elsewhere, and no decision may place it.
    Outage,
    /// Over a week, Europe's readers grow to twice their share.
    Drift,
}

impl Shape {
    const ALL: [Self; 6] = [Self::Diurnal, Self::DeepSwing, Self::Flat, Self::FlashCrowd, Self::Outage, Self::Drift];

    fn steps(self) -> usize {
        if self == Self::Drift { 7 * DAY } else { DAY }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Diurnal => "diurnal",
            Self::DeepSwing => "deep follow-the-sun swing",
            Self::Flat => "flat",
            Self::FlashCrowd => "flash crowd in sa-east-1",
            Self::Outage => "ap-northeast-1 outage 04-10 h",
            Self::Drift => "slow drift (a week, Europe x2)",
        }
    }

    fn down(self, step: usize) -> Option<&'static str> {
        (self == Self::Outage && (16..40).contains(&(step % DAY))).then_some("ap-northeast-1")
    }

    /// Requests per second from `area` at `step`, before noise.
    fn rps(self, area: (&str, f64, f64), step: usize, scale: f64) -> f64 {
        let (name, share, peak) = area;
        let hour = (step % DAY) as f64 * 24.0 / DAY as f64;
        let phase = (hour - peak) / 24.0 * std::f64::consts::TAU;
        let wave = (1.0 + phase.cos()) / 2.0;
        let curve = match self {
            Self::Flat => 1.0,
            Self::DeepSwing => 0.05 + 0.95 * wave,
            _ => 0.3 + 0.7 * wave,
        };
        let crowd =
            if self == Self::FlashCrowd && name == "sa-east-1" && (56..64).contains(&step) { 10.0 } else { 1.0 };
        let drift =
            if self == Self::Drift && name == "eu-central-1" { 1.0 + step as f64 / (7 * DAY) as f64 } else { 1.0 };
        scale / 0.30 * share * curve * crowd * drift
    }

    /// The demand by step, with ±10 % noise per area and step.
    fn demand(self, seed: u64, scale: f64) -> Vec<Demand> {
        let mut random = Random(seed);
        (0..self.steps())
            .map(|step| {
                let mut rps = |area| self.rps(area, step, scale) * (0.9 + 0.2 * random.next());
                AREAS.iter().map(|area| (area.0.to_owned(), rps(*area))).collect()
            })
            .collect()
    }
}

/// SplitMix64: a seeded stream of uniform numbers in [0, 1).
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    }
}

/// One strategy's run: monthly USD (the average of every step's rate), the share of requests
/// within the target, p95, and the changes it made.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    cost: f64,
    within: f64,
    p95: f64,
    changes: usize,
}

/// Adds up steps: what serves (latency) and what is paid for (cost).
#[derive(Default)]
struct Tally {
    cost: f64,
    latencies: Vec<(f64, f64)>,
    within: f64,
    weight: f64,
    steps: usize,
}

impl Tally {
    fn step(&mut self, world: &World<'_>, (serving, billed): (&Placement, f64), demand: &Demand, down: Option<&str>) {
        let up: Placement =
            serving.iter().filter(|(r, _)| Some(r.as_str()) != down).map(|(r, v)| (r.clone(), *v)).collect();
        let served = placement::evaluate(world.model, &up, demand, &world.objective);
        let rps: f64 = demand.values().sum();
        self.cost += billed;
        self.latencies.extend(served.latencies.iter().copied());
        self.within += served.within_target * rps;
        self.weight += rps;
        self.steps += 1;
    }

    fn outcome(mut self, changes: usize) -> Outcome {
        self.latencies.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = self.latencies.iter().map(|(_, w)| w).sum();
        let mut seen = 0.0;
        let p95 = self
            .latencies
            .iter()
            .find(|(_, w)| {
                seen += w;
                seen >= 0.95 * total
            })
            .map_or(0.0, |(ms, _)| *ms);
        Outcome {
            cost: self.cost / self.steps.max(1) as f64,
            within: self.within / self.weight.max(1e-9),
            p95,
            changes,
        }
    }
}

/// The model, the objective and the candidates every strategy shares.
struct World<'a> {
    model: &'a Model,
    objective: Objective,
}

impl World<'_> {
    fn cost(&self, placement: &Placement, demand: &Demand) -> f64 {
        placement::evaluate(self.model, placement, demand, &self.objective).cost.total()
    }
}

/// A placement kept all along.
fn fixed(world: &World<'_>, placement: &Placement, days: &[Demand], shape: Shape) -> Outcome {
    let mut tally = Tally::default();
    for (step, demand) in days.iter().enumerate() {
        tally.step(world, (placement, world.cost(placement, demand)), demand, shape.down(step));
    }
    tally.outcome(0)
}

/// Every placement: home with either variant, each other candidate absent or with either.
fn every_placement() -> Vec<Placement> {
    let mut all = vec![Placement::new()];
    for (i, region) in CANDIDATES.iter().enumerate() {
        let choices: &[Option<Variant>] = if i == 0 {
            &[Some(Variant::Function), Some(Variant::Container)]
        } else {
            &[None, Some(Variant::Function), Some(Variant::Container)]
        };
        all = all
            .into_iter()
            .flat_map(|p| {
                choices.iter().map(move |choice| {
                    let mut next = p.clone();
                    if let Some(variant) = choice {
                        next.insert((*region).to_owned(), *variant);
                    }
                    next
                })
            })
            .collect();
    }
    all
}

fn candidates_up(down: Option<&str>) -> Vec<Candidate> {
    let others = CANDIDATES[1..].iter().filter(|r| Some(**r) != down);
    others.map(|r| Candidate { region: (*r).to_owned(), pinned: None }).collect()
}

/// What readers' beacons over the window say: beacons in proportion to requests, each area's
/// round trip to every candidate as the matrix gives it, counted under the nearest candidate and
/// the band of its round trip to it, as the blog service counts them.
fn beacons(model: &Model, window: &Demand) -> Readings {
    let mut readings = Readings::new();
    for (reader, rps) in window {
        let nearest = CANDIDATES
            .iter()
            .min_by(|a, b| {
                model
                    .matrix
                    .reader_ms(reader, a)
                    .unwrap_or(f64::MAX)
                    .total_cmp(&model.matrix.reader_ms(reader, b).unwrap_or(f64::MAX))
            })
            .copied()
            .unwrap_or(HOME);
        // The area its beacons are counted in: the nearest candidate, and how far it is.
        let area = readers::area_of(nearest, model.matrix.reader_ms(reader, nearest).unwrap_or(0.0));
        for candidate in CANDIDATES {
            let count = rps * 3600.0 * BEACONS_PER_REQUEST;
            let mean_ms = model.matrix.reader_ms(reader, candidate).unwrap_or(f64::MAX);
            let entry =
                readings.entry((area.clone(), candidate.to_owned())).or_insert(RoundTrips { count: 0.0, mean_ms: 0.0 });
            let total = entry.count + count;
            entry.mean_ms = (entry.mean_ms * entry.count + mean_ms * count) / total.max(1e-9);
            entry.count = total;
        }
    }
    readings
}

/// The average demand over the window that ends before `step`: what the operator has measured.
fn measured(days: &[Demand], step: usize) -> Demand {
    let from = step.saturating_sub(WINDOW);
    let seen = &days[from..step.max(1)];
    let mut sum = Demand::new();
    for demand in seen {
        for (area, rps) in demand {
            *sum.entry(area.clone()).or_default() += rps / seen.len() as f64;
        }
    }
    sum
}

/// The placer as the operator runs it: every step, the window's beacons give demand by area and
/// readers' round trips; one change per decision, 10 % hysteresis, one hour's cooldown; an added
/// region serves from the next step, a region removed or a variant switched is paid one step more.
fn placer(world: &World<'_>, days: &[Demand], shape: Shape) -> Outcome {
    let home = Candidate { region: HOME.to_owned(), pinned: None };
    let mut decided = Placement::from([(HOME.to_owned(), Variant::Function)]);
    let mut serving = decided.clone();
    let (mut tally, mut changes, mut last_change) = (Tally::default(), 0, None::<usize>);
    // A day run before the one scored, as an operator that was already running: the start from
    // home alone is not charged to the placer.
    let days: Vec<Demand> = days[..DAY].iter().chain(days).cloned().collect();
    let trace = std::env::var("BENCH_TRACE").is_ok();
    for (step, demand) in days.iter().enumerate() {
        let scored = step >= DAY;
        let window = measured(&days, step);
        let readings = beacons(world.model, &window);
        let model = readers::measured_model(world.model, &readings).unwrap_or_else(|| world.model.clone());
        let estimate = readers::demand(&readings, window.values().sum(), &BTreeMap::new());
        let down = shape.down(step);
        let others = candidates_up(down);
        // A placed region that is down counts as not placed: its checks are red.
        let current: Placement =
            decided.iter().filter(|(r, _)| Some(r.as_str()) != down).map(|(r, v)| (r.clone(), *v)).collect();
        let decision = placement::decide(&placement::Input {
            model: &model,
            home: &home,
            candidates: &others,
            demand: &estimate,
            objective: world.objective,
            current: &current,
            hysteresis: 0.1,
            cooldown_over: last_change.is_none_or(|at| step - at >= 4),
        });
        let billed = match &decision.change {
            None => {
                serving.clone_from(&decided);
                world.cost(&serving, demand)
            }
            Some(change) => {
                changes += usize::from(scored);
                last_change = Some(step);
                let previous = std::mem::replace(&mut serving, decision.placement.clone());
                decided.clone_from(&decision.placement);
                match change {
                    // Deploying, replica, checks: it serves from the next step, and is paid from now.
                    placement::Change::Add(region, _) => {
                        serving.remove(region);
                        world.cost(&decided, demand)
                    }
                    // The variant leaving runs until the new one's check is green.
                    placement::Change::Switch(region, from, _) => {
                        let idle = Placement::from([(region.clone(), *from)]);
                        world.cost(&serving, demand) + world.cost(&idle, &Demand::new())
                    }
                    // Drained for the TTL, then removed.
                    placement::Change::Remove(_) => world.cost(&previous, demand),
                }
            }
        };
        if trace && decision.change.is_some() {
            eprintln!("step {step}: {:?} -> {:?} ({})", decision.change, decided, decision.why);
        }
        // A region down stays paid for: its stack runs.
        if scored {
            tally.step(world, (&serving, billed), demand, down);
        }
    }
    tally.outcome(changes)
}

/// The per-step oracle: the best placement for each step's true demand, at once, for free.
fn oracle(world: &World<'_>, days: &[Demand], shape: Shape) -> Outcome {
    let home = Candidate { region: HOME.to_owned(), pinned: None };
    let mut tally = Tally::default();
    let (mut changes, mut last) = (0, None::<Placement>);
    for (step, demand) in days.iter().enumerate() {
        let others = candidates_up(shape.down(step));
        let (best, evaluation) = placement::best(world.model, (&home, &others), demand, &world.objective);
        if last.as_ref().is_some_and(|l| *l != best) {
            changes += 1;
        }
        tally.step(world, (&best, evaluation.cost.total()), demand, shape.down(step));
        last = Some(best);
    }
    tally.outcome(changes)
}

/// One seed's outcomes, by strategy, in [`STRATEGIES`] order.
fn run(
    model: &Model,
    target: f64,
    (shape, scale, seed): (Shape, f64, u64),
    fixed_placements: &[Placement],
) -> Vec<Outcome> {
    let world = World { model, objective: Objective { p95_ms: Some(target), monthly_budget: None } };
    let days = shape.demand(seed, scale);
    let every: Vec<(Placement, Outcome)> =
        fixed_placements.iter().map(|p| (p.clone(), fixed(&world, p, &days, shape))).collect();
    let of = |wanted: &dyn Fn(&Placement) -> bool| {
        every
            .iter()
            .filter(|(p, _)| wanted(p))
            .map(|(_, o)| *o)
            .min_by(|a, b| a.cost.total_cmp(&b.cost))
            .unwrap_or_default()
    };
    let all = |variant: Variant| move |p: &Placement| p.len() == CANDIDATES.len() && p.values().all(|v| *v == variant);
    // With hindsight: the cheapest fixed placement whose run meets the p95 target, else the one
    // with the most requests in target.
    let meeting =
        every.iter().filter(|(_, o)| o.p95 <= target).map(|(_, o)| *o).min_by(|a, b| a.cost.total_cmp(&b.cost));
    let best_fixed = meeting.unwrap_or_else(|| {
        every
            .iter()
            .map(|(_, o)| *o)
            .max_by(|a, b| a.within.total_cmp(&b.within).then(b.cost.total_cmp(&a.cost)))
            .unwrap_or_default()
    });
    vec![
        placer(&world, &days, shape),
        oracle(&world, &days, shape),
        best_fixed,
        of(&|p| p.len() == 1),
        of(&all(Variant::Function)),
        of(&all(Variant::Container)),
    ]
}

const STRATEGIES: [&str; 6] = [
    "placer (operator's path)",
    "per-step oracle",
    "best fixed (hindsight)",
    "home only",
    "every candidate, functions",
    "every candidate, containers",
];

fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[0], values[n / 2], values[n - 1])
}

fn parse_list(name: &str, default: &str) -> Vec<f64> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    text.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

fn main() {
    let seeds = parse_list("BENCH_SEEDS", "20").first().copied().unwrap_or(20.0) as u64;
    let scales = parse_list("BENCH_SCALES", "5,40,200");
    let target = parse_list("BENCH_P95_MS", "150").first().copied().unwrap_or(150.0);
    // As the operator runs it: home runs both variants (the blog's pair of URLs), idle or not.
    let both = vec![Variant::Function, Variant::Container];
    let model = Model { also_running: [(HOME.to_owned(), both)].into(), ..Model::default() };
    let placements = every_placement();
    let started = std::time::Instant::now();
    println!(
        "{} areas, {} candidates (home {HOME}), p95 target {target:.0} ms, {seeds} seeds, decisions every 15 min; min / median / max over seeds",
        AREAS.len(),
        CANDIDATES.len()
    );
    let mut goals = Vec::new();
    for shape in Shape::ALL {
        for &scale in &scales {
            let jobs: Vec<(Shape, f64, u64)> = (1..=seeds).map(|seed| (shape, scale, seed)).collect();
            let results: Vec<Vec<Outcome>> = std::thread::scope(|scope| {
                let halves: Vec<_> = jobs
                    .chunks(jobs.len().div_ceil(2).max(1))
                    .map(|chunk| {
                        scope.spawn(|| {
                            chunk.iter().map(|job| run(&model, target, *job, &placements)).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                halves.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
            });
            println!("\n{} at {scale} req/s (busiest area's peak)", shape.name());
            println!("{:<30} {:>22} {:>20} {:>16} {:>8}", "strategy", "$/month", "in target %", "p95 ms", "changes");
            let mut medians = Vec::new();
            for (i, name) in STRATEGIES.iter().enumerate() {
                let (c0, c1, c2) = spread(&mut results.iter().map(|r| r[i].cost).collect::<Vec<_>>());
                let (w0, w1, w2) = spread(&mut results.iter().map(|r| 100.0 * r[i].within).collect::<Vec<_>>());
                let (p0, p1, p2) = spread(&mut results.iter().map(|r| r[i].p95).collect::<Vec<_>>());
                let (_, k1, _) = spread(&mut results.iter().map(|r| r[i].changes as f64).collect::<Vec<_>>());
                println!(
                    "{name:<30} {c0:>6.0} {c1:>7.0} {c2:>7.0} {w0:>6.1} {w1:>6.1} {w2:>6.1} {p0:>5.0} {p1:>5.0} {p2:>5.0} {k1:>8.0}"
                );
                medians.push((c1, w1));
            }
            let ((placer_cost, placer_in), (oracle_cost, _), (fixed_cost, fixed_in)) =
                (medians[0], medians[1], medians[2]);
            let over_fixed = 100.0 * (placer_cost / fixed_cost - 1.0);
            let over_oracle = 100.0 * (placer_cost / oracle_cost - 1.0);
            let met = over_fixed <= 5.0 && placer_in + 0.05 >= fixed_in && over_oracle <= 15.0;
            let swing = shape == Shape::DeepSwing;
            let met = met && (!swing || over_fixed <= -10.0);
            println!(
                "goal: cost {over_fixed:+.1} % vs best fixed (at most +5 %{}), in target {placer_in:.1} % vs {fixed_in:.1} %, {over_oracle:+.1} % vs the oracle (at most +15 %): {}",
                if swing { "; the deep swing asks -10 %" } else { "" },
                if met { "met" } else { "NOT met" }
            );
            goals.push((shape.name(), scale, met));
        }
    }
    let missed: Vec<String> =
        goals.iter().filter(|g| !g.2).map(|(name, scale, _)| format!("{name} at {scale}")).collect();
    println!(
        "\ngoal met on {} of {} shape-and-scale runs{}",
        goals.len() - missed.len(),
        goals.len(),
        if missed.is_empty() { String::new() } else { format!("; missed: {}", missed.join(", ")) }
    );
    println!("ran in {:.0} s", started.elapsed().as_secs_f64());
}
