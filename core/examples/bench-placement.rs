//! `make bench-placement`: a simulated day of readers by geography (a diurnal curve per area,
//! seeded) over the latency matrix and the price model, decided every 15 minutes by the placer and
//! set against four baselines. A benchmark: it prints, never fails on a figure.
//! `BENCH_SEED` (default 7), `BENCH_P95_MS` (default 150), `BENCH_SCALE` (requests/s at the
//! busiest area's peak, default 40).

use std::time::{Duration, Instant};

use blog_core::placement::{self, Candidate, Demand, Evaluation, Model, Objective, Placement, Variant};

/// Reader areas (the region nearest them), their share of readers and the UTC hour of their
/// evening peak.
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
const STEPS: usize = 96;

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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

/// The day's demand by step: each area follows a cosine around its evening peak (30 % at night),
/// with ±10 % noise.
fn day(seed: u64, scale: f64) -> Vec<Demand> {
    let mut random = Random(seed);
    (0..STEPS)
        .map(|step| {
            let hour = step as f64 * 24.0 / STEPS as f64;
            AREAS
                .iter()
                .map(|(area, share, peak)| {
                    let phase = (hour - peak) / 24.0 * std::f64::consts::TAU;
                    let curve = 0.3 + 0.7 * (1.0 + phase.cos()) / 2.0;
                    let noise = 0.9 + 0.2 * random.next();
                    ((*area).to_owned(), scale / 0.30 * share * curve * noise)
                })
                .collect()
        })
        .collect()
}

/// What one strategy did over the day.
#[derive(Default)]
struct Run {
    cost: placement::Cost,
    latencies: Vec<(f64, f64)>,
    within: f64,
    weight: f64,
    changes: usize,
    shown: Vec<String>,
}

impl Run {
    fn add(&mut self, step: usize, placement: &Placement, evaluation: &Evaluation, demand: &Demand) {
        let rps: f64 = demand.values().sum();
        let share = 1.0 / STEPS as f64;
        self.cost.compute += evaluation.cost.compute * share;
        self.cost.replication += evaluation.cost.replication * share;
        self.cost.dns += evaluation.cost.dns * share;
        self.latencies.extend(evaluation.latencies.iter().copied());
        self.within += evaluation.within_target * rps;
        self.weight += rps;
        let line = names(placement);
        if self.shown.last().is_none_or(|last| !last.ends_with(&line)) {
            self.shown.push(format!("{:02}:{:02} {line}", step * 15 / 60, step * 15 % 60));
        }
    }

    fn percentile(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = sorted.iter().map(|(_, w)| w).sum();
        let mut seen = 0.0;
        sorted
            .iter()
            .find(|(_, w)| {
                seen += w;
                seen >= q * total
            })
            .map_or(0.0, |(ms, _)| *ms)
    }
}

fn names(placement: &Placement) -> String {
    let short = |v: &Variant| match v {
        Variant::Function => "fn",
        Variant::Container => "ct",
    };
    placement.iter().map(|(r, v)| format!("{r}:{}", short(v))).collect::<Vec<_>>().join(" ")
}

fn fixed(model: &Model, days: &[Demand], objective: &Objective, choose: impl Fn(&Demand) -> Placement) -> Run {
    let mut run = Run::default();
    for (step, demand) in days.iter().enumerate() {
        let placement = choose(demand);
        run.add(step, &placement, &placement::evaluate(model, &placement, demand, objective), demand);
    }
    run
}

fn main() {
    let seed = env("BENCH_SEED", 7.0) as u64;
    let objective = Objective { p95_ms: Some(env("BENCH_P95_MS", 150.0)), monthly_budget: None };
    // As the operator runs it: home runs both variants (the blog's pair of URLs), idle or not.
    let both = vec![Variant::Function, Variant::Container];
    let model = Model { also_running: [(HOME.to_owned(), both)].into(), ..Model::default() };
    let days = day(seed, env("BENCH_SCALE", 40.0));
    let candidates: Vec<Candidate> =
        CANDIDATES.iter().map(|r| Candidate { region: (*r).to_owned(), pinned: None }).collect();
    let home = candidates[0].clone();
    let all = |variant: Variant| -> Placement { CANDIDATES.iter().map(|r| ((*r).to_owned(), variant)).collect() };
    let cheaper_each = |demand: &Demand| -> Placement {
        let everywhere = all(Variant::Function);
        let served = placement::evaluate(&model, &everywhere, demand, &objective).served;
        served
            .iter()
            .map(|(region, rps)| {
                let one = Demand::from([(region.clone(), *rps)]);
                let candidate = Candidate { region: region.clone(), pinned: None };
                (region.clone(), placement::best(&model, (&candidate, &[]), &one, &Objective::default()).0[region])
            })
            .collect()
    };
    let home_only = |demand: &Demand| {
        let total = Demand::from([(HOME.to_owned(), demand.values().sum::<f64>())]);
        placement::best(&model, (&home, &[]), &total, &Objective::default()).0
    };

    // The placer: one decision per step, hysteresis 10 %, cooldown one hour.
    let mut placer = Run::default();
    let mut current: Placement = home_only(&days[0]);
    let (mut last_change, mut decide_time) = (None::<usize>, Duration::ZERO);
    for (step, demand) in days.iter().enumerate() {
        let started = Instant::now();
        let decision = placement::decide(&placement::Input {
            model: &model,
            home: &home,
            candidates: &candidates,
            demand,
            objective,
            current: &current,
            hysteresis: 0.1,
            cooldown_over: last_change.is_none_or(|at| step - at >= 4),
        });
        decide_time += started.elapsed();
        if decision.change.is_some() {
            placer.changes += 1;
            last_change = Some(step);
            current = decision.placement;
        }
        placer.add(step, &current, &placement::evaluate(&model, &current, demand, &objective), demand);
    }

    let runs = [
        ("placer (this operator)", placer),
        ("home region only", fixed(&model, &days, &objective, home_only)),
        ("every candidate, functions", fixed(&model, &days, &objective, |_| all(Variant::Function))),
        ("every candidate, containers", fixed(&model, &days, &objective, |_| all(Variant::Container))),
        ("every candidate, cheaper variant each", fixed(&model, &days, &objective, cheaper_each)),
    ];
    let target = objective.p95_ms.unwrap_or_default();
    println!(
        "a simulated day: {} areas, {} candidate regions (home {HOME}), p95 target {target:.0} ms, seed {seed}, decisions every 15 min",
        AREAS.len(),
        CANDIDATES.len()
    );
    println!(
        "{:<38} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>8}",
        "strategy", "$/month", "compute", "replicas", "DNS", "p50 ms", "p95 ms", "in target", "changes"
    );
    for (name, run) in &runs {
        println!(
            "{name:<38} {:>9.0} {:>9.0} {:>9.1} {:>9.1} {:>8.0} {:>8.0} {:>8.0}% {:>8}",
            run.cost.total(),
            run.cost.compute,
            run.cost.replication,
            run.cost.dns,
            run.percentile(0.5),
            run.percentile(0.95),
            100.0 * run.within / run.weight.max(1e-9),
            run.changes
        );
    }
    let (placer, functions) = (&runs[0].1, &runs[2].1);
    println!(
        "placer against every candidate as functions: cost {:+.0} %, p95 {:+.0} %",
        100.0 * (placer.cost.total() / functions.cost.total() - 1.0),
        100.0 * (placer.percentile(0.95) / functions.percentile(0.95) - 1.0)
    );
    println!(
        "decision time: {:.0} µs per decision ({STEPS} decisions)",
        decide_time.as_secs_f64() * 1e6 / STEPS as f64
    );
    println!("placements the placer ran (UTC):");
    for line in &runs[0].1.shown {
        println!("  {line}");
    }
    println!(
        "published results to set beside it (their workloads, not this one): Costless (SEC 2018) price −35 to −57 % for +5 to +15 % latency; Spock (CLOUD 2019) cost −33 %, SLO violations −74 % against VM-only"
    );
}
