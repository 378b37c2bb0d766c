//! Prints recommendations and monthly costs of both variants for a few traffic profiles, and where
//! the break-even falls: `cargo run -p blog-operator --example cost_table`.
//!
//! Assumptions (stated in the output): the handler is CPU-bound, so the container needs
//! `rps × handler time` vCPU; p95 is 1.5 × the average; memory use is 40 % of 512 MiB per task;
//! 2 KiB per request through the load balancer; us-east-1 default prices; arm64 functions. The
//! last column prices the same function with provisioned concurrency for its average concurrency
//! plus 20 %.

use blog_operator::allocation::pricing::{self, ContainerSize, FunctionSize, PriceTable, Traffic};
use blog_operator::allocation::recommend::{self, ContainerLoad, FunctionLoad, Policy};
use blog_operator::crd::Architecture;

fn main() {
    let prices = PriceTable::default();
    let policy = Policy { max_tasks: 200, ..Policy::default() };
    println!(
        "policy: p95 target {} ms, CPU target {} %, headroom {} %, tasks {}..={}, cpu {}..={}",
        policy.latency_p95_ms,
        policy.cpu_percent,
        policy.headroom * 100.0,
        policy.min_tasks,
        policy.max_tasks,
        policy.min_cpu,
        policy.max_cpu
    );
    println!(
        "{:>6} {:>6} | {:>10} {:>12} | {:>18} {:>12} | {:>9} | {:>12} | {:>16}",
        "req/s",
        "ms",
        "fn memory",
        "fn $/month",
        "container",
        "ctr $/month",
        "cheaper",
        "break-even",
        "fn + PC $/month"
    );
    for rps in [1.0, 50.0, 500.0] {
        for handler_ms in [50.0, 500.0] {
            let traffic =
                Traffic { requests_per_second: rps, function_duration_ms: handler_ms, bytes_per_request: 2048.0 };
            // Function: measured at 512 MiB.
            let memory = recommend::function_memory(512, FunctionLoad { p95_duration_ms: handler_ms * 1.5 }, &policy);
            let duration_at_memory = handler_ms * 512.0 / f64::from(memory);
            let function = FunctionSize { memory_mib: memory, architecture: Architecture::Arm64, provisioned: 0 };
            let fn_traffic = Traffic { function_duration_ms: duration_at_memory, ..traffic };
            let fn_cost = pricing::function_monthly(&prices, function, &fn_traffic);
            // Container: measured on 2 × (256 CPU, 512 MiB).
            let current = ContainerSize { cpu: 256, memory_mib: 512, tasks: 2 };
            let demand_vcpu = rps * handler_ms / 1000.0;
            let cpu_percent = demand_vcpu / 0.5 * 100.0;
            let size = recommend::container_size(
                current,
                ContainerLoad { cpu_percent, memory_percent: 40.0 },
                &policy,
                &prices,
            );
            let ctr_cost = pricing::container_monthly(&prices, size, &traffic);
            let cheaper = if fn_cost <= ctr_cost { "function" } else { "container" };
            let even = pricing::break_even_rps(&prices, function, size, duration_at_memory, 2048.0)
                .map_or_else(|| "none".to_owned(), |r| format!("{r:.1} req/s"));
            // The same function with provisioned concurrency for its average concurrency plus 20 %.
            let ready = (rps * duration_at_memory / 1000.0 * 1.2).ceil();
            let warm = FunctionSize { provisioned: ready as i32, ..function };
            let warm_cost = pricing::function_monthly(&prices, warm, &fn_traffic);
            println!(
                "{rps:>6} {handler_ms:>6} | {:>7} MiB {fn_cost:>12.2} | {:>5}/{:>5} × {:>3} {ctr_cost:>12.2} | {cheaper:>9} | {even:>12} | {warm_cost:>9.2} ({ready} PC)",
                memory, size.cpu, size.memory_mib, size.tasks
            );
        }
    }
}
