//! The cost model: monthly price of each variant at a traffic level, and the break-even request
//! rate between them. Pure; prices come from a [`PriceTable`] the user can override.

use serde::{Deserialize, Serialize};

use crate::crd::Architecture;

/// Hours in the month AWS bills by (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;
const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;

/// Unit prices in USD. The defaults are AWS's public on-demand prices for us-east-1 (Linux, first
/// tier); other regions differ by a few percent: override them per region where it matters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PriceTable {
    /// Lambda, per million requests.
    pub lambda_per_million_requests: f64,
    /// Lambda duration, per GB-second, x86_64 and arm64.
    pub lambda_gb_second_x86: f64,
    pub lambda_gb_second_arm: f64,
    /// API Gateway HTTP API, per million requests.
    pub http_api_per_million_requests: f64,
    /// Fargate (Linux/x86), per vCPU-hour and per GB-hour.
    pub fargate_vcpu_hour: f64,
    pub fargate_gb_hour: f64,
    /// Application Load Balancer, per hour and per LCU-hour.
    pub alb_hour: f64,
    pub alb_lcu_hour: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            lambda_per_million_requests: 0.20,
            lambda_gb_second_x86: 0.000_016_666_7,
            lambda_gb_second_arm: 0.000_013_333_4,
            http_api_per_million_requests: 1.00,
            fargate_vcpu_hour: 0.040_48,
            fargate_gb_hour: 0.004_445,
            alb_hour: 0.0225,
            alb_lcu_hour: 0.008,
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
}

/// The container variant's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerSize {
    pub cpu: i32,
    pub memory_mib: i32,
    pub tasks: i32,
}

/// Lambda + API Gateway, USD per month.
#[must_use]
pub fn function_monthly(prices: &PriceTable, size: FunctionSize, traffic: &Traffic) -> f64 {
    let requests = traffic.requests_per_second * SECONDS_PER_MONTH;
    let gb = f64::from(size.memory_mib) / 1024.0;
    let gb_seconds = requests * (traffic.function_duration_ms / 1000.0) * gb;
    let per_gb_second = match size.architecture {
        Architecture::Arm64 => prices.lambda_gb_second_arm,
        Architecture::X86_64 => prices.lambda_gb_second_x86,
    };
    requests / 1e6 * (prices.lambda_per_million_requests + prices.http_api_per_million_requests)
        + gb_seconds * per_gb_second
}

/// Load balancer capacity units used: the largest of new connections (25/s per LCU; every request
/// counted as a new connection, the pessimistic case) and processed bytes (1 GB/hour per LCU).
#[must_use]
pub fn alb_lcus(traffic: &Traffic) -> f64 {
    let by_connections = traffic.requests_per_second / 25.0;
    let by_bytes = traffic.requests_per_second * traffic.bytes_per_request * 3600.0 / 1e9;
    by_connections.max(by_bytes)
}

/// Fargate tasks + ALB, USD per month.
#[must_use]
pub fn container_monthly(prices: &PriceTable, size: ContainerSize, traffic: &Traffic) -> f64 {
    let vcpu = f64::from(size.cpu) / 1024.0;
    let gb = f64::from(size.memory_mib) / 1024.0;
    let tasks = f64::from(size.tasks);
    let compute = tasks * HOURS_PER_MONTH * (vcpu * prices.fargate_vcpu_hour + gb * prices.fargate_gb_hour);
    let balancer = HOURS_PER_MONTH * (prices.alb_hour + alb_lcus(traffic) * prices.alb_lcu_hour);
    compute + balancer
}

/// The request rate at which both variants cost the same, for fixed sizes: the function's cost
/// grows linearly with traffic, the container's mostly does not. `None` when the function is
/// cheaper at every rate (it never is beyond a rate where the container's marginal cost is lower).
#[must_use]
pub fn break_even_rps(
    prices: &PriceTable,
    function: FunctionSize,
    container: ContainerSize,
    duration_ms: f64,
    bytes_per_request: f64,
) -> Option<f64> {
    let at = |rps: f64| Traffic { requests_per_second: rps, function_duration_ms: duration_ms, bytes_per_request };
    // Both costs are linear in the rate (the LCU term is linear past zero): solve f(r) = c(r).
    let (f0, f1) = (function_monthly(prices, function, &at(0.0)), function_monthly(prices, function, &at(1.0)));
    let (c0, c1) = (container_monthly(prices, container, &at(0.0)), container_monthly(prices, container, &at(1.0)));
    let (function_slope, container_slope) = (f1 - f0, c1 - c0);
    if function_slope <= container_slope {
        return None;
    }
    Some((c0 - f0) / (function_slope - container_slope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(rps: f64, ms: f64) -> Traffic {
        Traffic { requests_per_second: rps, function_duration_ms: ms, bytes_per_request: 2048.0 }
    }

    const ARM_512: FunctionSize = FunctionSize { memory_mib: 512, architecture: Architecture::Arm64 };
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
    fn container_cost_by_hand() {
        // 2 tasks × 730 h × (0.25 × 0.04048 + 0.5 × 0.004445) = 1460 × 0.0123425 = 18.02005
        // ALB: 730 × (0.0225 + 0.04 LCU × 0.008) = 730 × 0.02282 = 16.6586 (1 req/s → 0.04 LCU)
        let cost = container_monthly(&PriceTable::default(), SMALL_TASKS, &traffic(1.0, 50.0));
        assert!((cost - (18.020_05 + 16.658_6)).abs() < 1e-6, "{cost}");
    }

    #[test]
    fn break_even_makes_both_costs_equal() {
        let prices = PriceTable::default();
        let rps = break_even_rps(&prices, ARM_512, SMALL_TASKS, 50.0, 2048.0).expect("a break-even");
        let f = function_monthly(&prices, ARM_512, &traffic(rps, 50.0));
        let c = container_monthly(&prices, SMALL_TASKS, &traffic(rps, 50.0));
        assert!((f - c).abs() < 1e-6, "{f} vs {c} at {rps}");
        // (18.02005 + 730 × 0.0225) / (4.029604 − 730 × 0.008 / 25) = 34.44505 / 3.796004 = 9.074
        assert!((rps - 9.074).abs() < 1e-3, "{rps}");
        // Slower handlers make the function dearer per request: the break-even comes earlier.
        let slow = break_even_rps(&prices, ARM_512, SMALL_TASKS, 500.0, 2048.0).expect("a break-even");
        assert!(slow < rps);
    }
}
