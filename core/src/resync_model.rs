//! The 10,000-object model: how long one full resync (every object checked once) takes from the
//! reads it makes per service, measured by `make bench-operator` at several N, under each
//! service's documented control-plane rate and the operator's call budget.
//!
//! Services drain their own buckets side by side, so the slowest one sets the resync's time; the
//! rate the operator may use of a service is its budget, and never more than half the documented
//! rate, which leaves the other half to every other tool in the account.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What the model starts from (`core/data/resync-model.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// Each service's documented default control-plane rate.
    pub limits: Vec<Limit>,
    pub budget: Budget,
    /// Ways of observing: as measured today, and as designed.
    pub scenarios: Vec<Scenario>,
}

/// One way of observing, by the reads of one full resync per operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Where the figures come from (a measurement, or a design's page sizes).
    pub basis: String,
    pub reads: Vec<Reads>,
}

/// A service's default rate for the operations the operator calls, per account and region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The budget's service name (the AWS signing name).
    pub service: String,
    /// Sustained requests a second (the token bucket's refill).
    pub per_second: f64,
    /// The page that says so, and the day it was read.
    pub source: String,
    pub read_on: String,
    /// Whatever the figure does not say by itself (an undocumented rate, a shared bucket).
    #[serde(default)]
    pub note: Option<String>,
}

/// One operation's calls in a full resync at N objects: `fixed + per_object × N`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reads {
    pub service: String,
    pub operation: String,
    pub fixed: f64,
    pub per_object: f64,
    /// Why this many (a page size, a read that has no batch form).
    #[serde(default)]
    pub why: Option<String>,
}

/// The operator's call budget (`--aws-calls-per-second`, `--aws-calls-per-second-for`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub default_per_second: f64,
    #[serde(default)]
    pub per_service: BTreeMap<String, f64>,
}

/// One service's part of a full resync.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTime {
    pub service: String,
    pub reads: f64,
    /// Calls a second the operator may make: its budget, at most half the documented rate.
    pub rate: f64,
    pub seconds: f64,
}

impl Budget {
    fn for_service(&self, service: &str) -> f64 {
        self.per_service.get(service).copied().unwrap_or(self.default_per_second)
    }
}

/// Each service's reads and time in one full resync of `objects` the `scenario`'s way, slowest
/// first. A service without a documented limit is held to its budget alone.
#[must_use]
pub fn resync(inputs: &Inputs, scenario: &Scenario, objects: f64) -> Vec<ServiceTime> {
    let mut reads: BTreeMap<&str, f64> = BTreeMap::new();
    for r in &scenario.reads {
        *reads.entry(r.service.as_str()).or_default() += r.fixed + r.per_object * objects;
    }
    let mut times: Vec<ServiceTime> = reads
        .into_iter()
        .map(|(service, reads)| {
            let documented = inputs.limits.iter().find(|l| l.service == service).map(|l| l.per_second / 2.0);
            let budget = inputs.budget.for_service(service);
            let rate = documented.map_or(budget, |half| budget.min(half));
            ServiceTime { service: service.to_owned(), reads, rate, seconds: reads / rate }
        })
        .collect();
    times.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        serde_json::from_value(serde_json::json!({
            "limits": [
                {"service": "route53", "per_second": 10.0, "source": "r53", "read_on": "2026-12-06"},
                {"service": "lambda", "per_second": 100.0, "source": "l", "read_on": "2026-12-06"}
            ],
            "scenarios": [{"name": "today", "basis": "test", "reads": [
                {"service": "route53", "operation": "ListResourceRecordSets", "fixed": 10.0, "per_object": 0.01},
                {"service": "lambda", "operation": "GetFunction", "fixed": 0.0, "per_object": 1.0},
                {"service": "iam", "operation": "GetRole", "fixed": 0.0, "per_object": 3.0}
            ]}],
            "budget": {"default_per_second": 10.0, "per_service": {"route53": 2.0}}
        }))
        .expect("inputs")
    }

    #[test]
    fn the_slowest_service_comes_first_and_each_keeps_half_its_documented_rate() {
        let inputs = inputs();
        let times = resync(&inputs, &inputs.scenarios[0], 10_000.0);
        assert_eq!(times[0].service, "iam", "no documented limit: the budget alone, 30,000 reads at 10/s");
        assert!((times[0].seconds - 3_000.0).abs() < 1e-6);
        let lambda = times.iter().find(|t| t.service == "lambda").expect("lambda");
        assert!((lambda.rate - 10.0).abs() < 1e-9, "the budget (10) is under half the limit (50)");
        let route53 = times.iter().find(|t| t.service == "route53").expect("route53");
        assert!((route53.reads - 110.0).abs() < 1e-9 && (route53.rate - 2.0).abs() < 1e-9);
    }

    #[test]
    fn half_the_documented_rate_caps_a_generous_budget() {
        let mut inputs = inputs();
        inputs.budget.per_service.insert("route53".to_owned(), 50.0);
        let route53 =
            resync(&inputs, &inputs.scenarios[0], 0.0).into_iter().find(|t| t.service == "route53").expect("route53");
        assert!((route53.rate - 5.0).abs() < 1e-9);
    }

    #[test]
    fn the_shipped_inputs_parse_and_name_a_source_for_every_limit() {
        let shipped: Inputs = serde_json::from_str(include_str!("../data/resync-model.json")).expect("inputs");
        assert!(shipped.limits.iter().all(|l| l.source.starts_with("https://") && !l.read_on.is_empty()));
        assert!(shipped.scenarios.iter().all(|s| !s.reads.is_empty()), "every scenario has reads");
        let budgeted = |service: &str| shipped.limits.iter().any(|l| l.service == service);
        assert!(["apigateway", "lambda", "route53"].iter().all(|s| budgeted(s)), "the tightest rates are there");
    }
}
