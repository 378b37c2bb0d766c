//! `make resync-model`: the time of one full resync at 10,000 objects from the measured reads and
//! the documented rates in `core/data/resync-model.json` (or the file given), per service.

use blog_core::resync_model::{Inputs, resync};

const TARGET_SECONDS: f64 = 600.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path =
        std::env::args().nth(1).unwrap_or_else(|| format!("{}/data/resync-model.json", env!("CARGO_MANIFEST_DIR")));
    let inputs: Inputs = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    println!("inputs: {path}");
    for limit in &inputs.limits {
        let note = limit.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        println!("  {:<24} {:>6.1}/s  {} read {}{note}", limit.service, limit.per_second, limit.source, limit.read_on);
    }
    for (scenario, objects) in inputs.scenarios.iter().flat_map(|s| [(s, 2_000.0), (s, 10_000.0)]) {
        let times = resync(&inputs, scenario, objects);
        let slowest = times.first().map_or(0.0, |t| t.seconds);
        println!("\n{} ({}), {objects:.0} objects:", scenario.name, scenario.basis);
        println!("one full resync takes {} (the slowest service's)", minutes(slowest));
        println!("| service | reads | rate used (/s) | time | documented rate |");
        println!("|---|---|---|---|---|");
        for t in &times {
            let documented = inputs
                .limits
                .iter()
                .find(|l| l.service == t.service)
                .map_or_else(|| "not read; budget alone".to_owned(), |l| format!("{:.1}/s", l.per_second));
            println!("| {} | {:.0} | {:.1} | {} | {documented} |", t.service, t.reads, t.rate, minutes(t.seconds));
        }
        let reads: f64 = times.iter().map(|t| t.reads).sum();
        println!("reads in all: {reads:.0} ({:.2} per object)", reads / objects);
        if objects >= 10_000.0 {
            let verdict = if slowest <= TARGET_SECONDS { "met" } else { "NOT met" };
            println!("target (one full resync in at most {}): {verdict}", minutes(TARGET_SECONDS));
        }
    }
    Ok(())
}

fn minutes(seconds: f64) -> String {
    if seconds >= 3_600.0 { format!("{:.1} h", seconds / 3_600.0) } else { format!("{:.1} min", seconds / 60.0) }
}
