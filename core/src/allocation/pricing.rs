//! The cost model: monthly price of each variant at a traffic level, and the break-even request
//! rate between them. Pure; prices come from a [`PriceTable`] the user can override.

use serde::{Deserialize, Serialize};

use crate::crd::Architecture;

/// Hours in the month AWS bills by (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;
const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;

/// Unit prices in USD. The defaults are AWS's public on-demand prices for us-east-1 (Linux, first
/// tier); other regions differ (by a few percent in the US and Europe, by a third or more in São
/// Paulo): give a region its own table in `regions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PriceTable {
    /// Lambda, per million requests.
    pub lambda_per_million_requests: f64,
    /// Lambda duration, per GB-second, x86_64 and arm64.
    pub lambda_gb_second_x86: f64,
    pub lambda_gb_second_arm: f64,
    /// Provisioned concurrency, per GB-second kept ready, x86_64 and arm64; and the (lower)
    /// duration price of requests those environments serve.
    pub lambda_provisioned_gb_second_x86: f64,
    pub lambda_provisioned_gb_second_arm: f64,
    pub lambda_provisioned_duration_gb_second_x86: f64,
    pub lambda_provisioned_duration_gb_second_arm: f64,
    /// API Gateway HTTP API, per million requests.
    pub http_api_per_million_requests: f64,
    /// Fargate (Linux/x86), per vCPU-hour and per GB-hour.
    pub fargate_vcpu_hour: f64,
    pub fargate_gb_hour: f64,
    /// Application Load Balancer, per hour and per LCU-hour.
    pub alb_hour: f64,
    pub alb_lcu_hour: f64,
    /// A public IPv4 address, per hour (charged since February 2024, in use or idle).
    pub public_ipv4_hour: f64,
    /// Other regions' prices, each a whole table: a field it leaves out takes the us-east-1 default,
    /// not this table's value. A region not named here is priced with this table.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub regions: std::collections::BTreeMap<String, PriceTable>,
}

impl PriceTable {
    /// The prices of `region`: its own table when one is given, else this one.
    #[must_use]
    pub fn in_region(&self, region: &str) -> &PriceTable {
        self.regions.get(region).unwrap_or(self)
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            lambda_per_million_requests: 0.20,
            lambda_gb_second_x86: 0.000_016_666_7,
            lambda_gb_second_arm: 0.000_013_333_4,
            lambda_provisioned_gb_second_x86: 0.000_004_166_7,
            lambda_provisioned_gb_second_arm: 0.000_003_333_4,
            lambda_provisioned_duration_gb_second_x86: 0.000_009_722_2,
            lambda_provisioned_duration_gb_second_arm: 0.000_007_777_8,
            http_api_per_million_requests: 1.00,
            fargate_vcpu_hour: 0.040_48,
            fargate_gb_hour: 0.004_445,
            alb_hour: 0.0225,
            alb_lcu_hour: 0.008,
            public_ipv4_hour: 0.005,
            regions: std::collections::BTreeMap::new(),
        }
    }
}

/// Observed (or assumed) traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    /// Average requests per second over the month.
    pub requests_per_second: f64,
    /// Average handler duration in the function, milliseconds.
    pub function_duration_ms: f64,
    /// Average bytes in + out per request (for the load balancer's processed-bytes LCU dimension).
    pub bytes_per_request: f64,
}

/// The function variant's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSize {
    pub memory_mib: i32,
    pub architecture: Architecture,
    /// Environments kept ready (provisioned concurrency); 0 for none.
    pub provisioned: i32,
}

/// The container variant's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerSize {
    pub cpu: i32,
    pub memory_mib: i32,
    pub tasks: i32,
}

/// Lambda + API Gateway, USD per month.
///
/// With provisioned concurrency, the ready environments cost their GB-seconds all month, and the
/// share of the load they can carry (provisioned ÷ concurrency in use, at most all of it) is billed
/// at the lower provisioned duration price; the rest spills over at the on-demand price.
#[must_use]
pub fn function_monthly(prices: &PriceTable, size: FunctionSize, traffic: &Traffic) -> f64 {
    let requests = traffic.requests_per_second * SECONDS_PER_MONTH;
    let gb = f64::from(size.memory_mib) / 1024.0;
    let gb_seconds = requests * (traffic.function_duration_ms / 1000.0) * gb;
    let (on_demand, kept_ready, provisioned_duration) = match size.architecture {
        Architecture::Arm64 => (
            prices.lambda_gb_second_arm,
            prices.lambda_provisioned_gb_second_arm,
            prices.lambda_provisioned_duration_gb_second_arm,
        ),
        Architecture::X86_64 => (
            prices.lambda_gb_second_x86,
            prices.lambda_provisioned_gb_second_x86,
            prices.lambda_provisioned_duration_gb_second_x86,
        ),
    };
    let provisioned = f64::from(size.provisioned.max(0));
    let concurrency = traffic.requests_per_second * traffic.function_duration_ms / 1000.0;
    let covered = if concurrency > 0.0 { (provisioned / concurrency).min(1.0) } else { 0.0 };
    requests / 1e6 * (prices.lambda_per_million_requests + prices.http_api_per_million_requests)
        + gb_seconds * (covered * provisioned_duration + (1.0 - covered) * on_demand)
        + provisioned * gb * SECONDS_PER_MONTH * kept_ready
}

/// Load balancer capacity units used: the largest of new connections (25/s per LCU; every request
/// counted as a new connection, the pessimistic case) and processed bytes (1 GB/hour per LCU).
#[must_use]
pub fn alb_lcus(traffic: &Traffic) -> f64 {
    let by_connections = traffic.requests_per_second / 25.0;
    let by_bytes = traffic.requests_per_second * traffic.bytes_per_request * 3600.0 / 1e9;
    by_connections.max(by_bytes)
}

/// The Fargate tasks alone, USD per hour: what sizes are compared by.
#[must_use]
pub fn fargate_hourly(prices: &PriceTable, size: &ContainerSize) -> f64 {
    let vcpu = f64::from(size.cpu) / 1024.0;
    let gb = f64::from(size.memory_mib) / 1024.0;
    f64::from(size.tasks) * (vcpu * prices.fargate_vcpu_hour + gb * prices.fargate_gb_hour)
}

/// Public IPv4 addresses an internet-facing load balancer holds: one per Availability Zone, and
/// it spans at least two.
pub const BALANCER_ADDRESSES: i32 = 2;

/// Fargate tasks + ALB + their public IPv4 addresses, USD per month. Every task is counted with a
/// public address, as tasks in the default VPC run; a task in a private subnet has none, but
/// reaches out through a NAT gateway that costs more.
#[must_use]
pub fn container_monthly(prices: &PriceTable, size: ContainerSize, traffic: &Traffic) -> f64 {
    let compute = HOURS_PER_MONTH * fargate_hourly(prices, &size);
    let balancer = HOURS_PER_MONTH * (prices.alb_hour + alb_lcus(traffic) * prices.alb_lcu_hour);
    let addresses = f64::from(size.tasks.max(0) + BALANCER_ADDRESSES);
    compute + balancer + HOURS_PER_MONTH * addresses * prices.public_ipv4_hour
}

/// The lowest request rate at which both variants cost the same, for fixed sizes: the function's
/// cost grows with traffic faster than the container's. `None` when the costs never meet.
#[must_use]
pub fn break_even_rps(
    prices: &PriceTable,
    function: FunctionSize,
    container: ContainerSize,
    duration_ms: f64,
    bytes_per_request: f64,
) -> Option<f64> {
    let at = |rps: f64| Traffic { requests_per_second: rps, function_duration_ms: duration_ms, bytes_per_request };
    let gap = |rps: f64| function_monthly(prices, function, &at(rps)) - container_monthly(prices, container, &at(rps));
    // The container's cost is linear in the rate (the LCU term is linear past zero); the function's
    // is too, except for one knee where provisioned concurrency is used up. Solve each linear piece.
    let knee = if function.provisioned > 0 && duration_ms > 0.0 {
        f64::from(function.provisioned) / (duration_ms / 1000.0)
    } else {
        f64::INFINITY
    };
    let root = |from: f64, to: f64| {
        let slope = gap(from + 1.0) - gap(from);
        let start = gap(from);
        if start == 0.0 {
            return Some(from);
        }
        let r = from - start / slope;
        (slope != 0.0 && r >= from && r <= to).then_some(r)
    };
    root(0.0, knee).or_else(|| if knee.is_finite() { root(knee, f64::INFINITY) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(rps: f64, ms: f64) -> Traffic {
        Traffic { requests_per_second: rps, function_duration_ms: ms, bytes_per_request: 2048.0 }
    }

    const ARM_512: FunctionSize = FunctionSize { memory_mib: 512, architecture: Architecture::Arm64, provisioned: 0 };
    const SMALL_TASKS: ContainerSize = ContainerSize { cpu: 256, memory_mib: 512, tasks: 2 };

    #[test]
    fn function_cost_by_hand() {
        // 1 req/s for a month = 2,628,000 requests; 50 ms at 0.5 GB = 65,700 GB-s.
        // requests: 2.628 × (0.20 + 1.00) = 3.1536; duration: 65,700 × 0.0000133334 = 0.876004.
        let cost = function_monthly(&PriceTable::default(), ARM_512, &traffic(1.0, 50.0));
        assert!((cost - 4.029_604).abs() < 1e-4, "{cost}");
        let x86 = function_monthly(
            &PriceTable::default(),
            FunctionSize { architecture: Architecture::X86_64, ..ARM_512 },
            &traffic(1.0, 50.0),
        );
        assert!(x86 > cost, "arm64 is cheaper per GB-second");
    }

    #[test]
    fn provisioned_concurrency_cost_by_hand() {
        let warm = FunctionSize { provisioned: 2, ..ARM_512 };
        // 2 environments × 0.5 GB × 2,628,000 s × 0.0000033334 = 8.76018 kept ready. At 1 req/s of
        // 50 ms the concurrency is 0.05, all of it covered: 65,700 GB-s × 0.0000077778 = 0.51100.
        // Requests as before: 3.1536.
        let cost = function_monthly(&PriceTable::default(), warm, &traffic(1.0, 50.0));
        assert!((cost - (8.760_18 + 0.511_001 + 3.1536)).abs() < 1e-4, "{cost}");
        // At 80 req/s the concurrency is 4: half is covered, half spills over at the on-demand price.
        // 80 × 2,628,000 × 0.05 × 0.5 GB = 5,256,000 GB-s: half × 0.0000077778 + half × 0.0000133334.
        let busy = function_monthly(&PriceTable::default(), warm, &traffic(80.0, 50.0));
        let expected = 8.760_18 + 2_628_000.0 * 0.000_007_777_8 + 2_628_000.0 * 0.000_013_333_4 + 80.0 * 3.1536;
        assert!((busy - expected).abs() < 1e-3, "{busy} vs {expected}");
    }

    #[test]
    fn break_even_past_the_provisioned_knee() {
        let prices = PriceTable::default();
        let warm = FunctionSize { provisioned: 1, ..ARM_512 };
        // 500 ms handlers: one environment carries 2 req/s (the knee). Below it the function costs
        // 4.38009 + 8.26361 per req/s against the container's 49.04505 + 0.2336: still cheaper at
        // the knee (20.9073 vs 49.5123); beyond it the function adds 11.91364 per req/s, so they
        // meet at 2 + 28.60495 / 11.68004 = 4.449 req/s.
        let rps = break_even_rps(&prices, warm, SMALL_TASKS, 500.0, 2048.0).expect("a break-even");
        assert!((rps - 4.449).abs() < 1e-3, "{rps}");
        let f = function_monthly(&prices, warm, &traffic(rps, 500.0));
        let c = container_monthly(&prices, SMALL_TASKS, &traffic(rps, 500.0));
        assert!((f - c).abs() < 1e-6, "{f} vs {c} at {rps}");
        // Below the knee: with 50 ms handlers the knee is at 20 req/s and the costs meet before it,
        // at (49.04505 − 4.38009) / (3.1536 + 0.511001 − 0.2336) = 13.018 req/s.
        let early = break_even_rps(&prices, warm, SMALL_TASKS, 50.0, 2048.0).expect("a break-even");
        assert!((early - 13.018).abs() < 1e-3, "{early}");
    }

    #[test]
    fn container_cost_by_hand() {
        // 2 tasks × 730 h × (0.25 × 0.04048 + 0.5 × 0.004445) = 1460 × 0.0123425 = 18.02005
        // ALB: 730 × (0.0225 + 0.04 LCU × 0.008) = 730 × 0.02282 = 16.6586 (1 req/s → 0.04 LCU)
        // Public IPv4: (2 tasks + 2 for the ALB) × 730 × 0.005 = 14.6
        let cost = container_monthly(&PriceTable::default(), SMALL_TASKS, &traffic(1.0, 50.0));
        assert!((cost - (18.020_05 + 16.658_6 + 14.6)).abs() < 1e-6, "{cost}");
    }

    #[test]
    fn break_even_makes_both_costs_equal() {
        let prices = PriceTable::default();
        let rps = break_even_rps(&prices, ARM_512, SMALL_TASKS, 50.0, 2048.0).expect("a break-even");
        let f = function_monthly(&prices, ARM_512, &traffic(rps, 50.0));
        let c = container_monthly(&prices, SMALL_TASKS, &traffic(rps, 50.0));
        assert!((f - c).abs() < 1e-6, "{f} vs {c} at {rps}");
        // (18.02005 + 730 × 0.0225 + 14.6) / (4.029604 − 730 × 0.008 / 25) = 49.04505 / 3.796004
        assert!((rps - 12.920).abs() < 1e-3, "{rps}");
        // Slower handlers make the function dearer per request: the break-even comes earlier.
        let slow = break_even_rps(&prices, ARM_512, SMALL_TASKS, 500.0, 2048.0).expect("a break-even");
        assert!(slow < rps);
    }
}
