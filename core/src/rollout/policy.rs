//! The rollout policy in effect for one variant: `spec.rollout` with the variant's own block laid
//! over it field by field, durations parsed, the canary's weight at every step listed.

use std::time::Duration;

use super::types::{Analysis, RolloutSpec, Strategy};
use crate::crd::BlogDeploymentSpec;

/// The longest bake or step AWS lets an ECS deployment stage wait (1,440 minutes), kept for both
/// variants so one policy reads the same on each.
pub const MAX_BAKE: Duration = Duration::from_secs(24 * 3600);

/// One variant's rollout, ready to act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub strategy: Strategy,
    /// The new version's share at each step, in % (empty: all at once).
    pub weights: Vec<i32>,
    /// How long each step bakes.
    pub step_bake: Duration,
    /// How long every reader stays on the new version, still judged, before it is final.
    pub final_bake: Duration,
    pub judging: Option<Judging>,
    /// The path a new version must answer before any reader reaches it.
    pub pre_traffic: Option<String>,
}

/// How a step is judged ([`Analysis`], parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct Judging {
    pub interval: Duration,
    pub min_requests: f64,
    pub max_step: Duration,
    pub max_error_percent: f64,
    pub max_p95_ms: Option<f64>,
    pub max_p95_increase_percent: Option<f64>,
    pub failure_limit: i32,
    pub alarms: Vec<String>,
}

impl Policy {
    /// Every reader moves at once: today's behaviour, and the default.
    #[must_use]
    pub fn all_at_once() -> Self {
        Self {
            strategy: Strategy::AllAtOnce,
            weights: Vec::new(),
            step_bake: Duration::ZERO,
            final_bake: Duration::ZERO,
            judging: None,
            pre_traffic: None,
        }
    }

    /// Whether readers reach a new version in steps.
    #[must_use]
    pub fn is_progressive(&self) -> bool {
        !self.weights.is_empty()
    }
}

/// The policy of a variant whose own block is `own`, under `top` (`spec.rollout`).
///
/// # Errors
/// A sentence naming the field when a duration cannot be read or is longer than [`MAX_BAKE`].
pub fn resolve(top: Option<&RolloutSpec>, own: Option<&RolloutSpec>, at: &str) -> Result<Policy, String> {
    let merged = merge(top, own);
    let strategy = merged.strategy.unwrap_or_default();
    let (weights, step_bake) = match strategy {
        Strategy::AllAtOnce | Strategy::BlueGreen => (Vec::new(), Duration::ZERO),
        Strategy::Canary => {
            let canary = merged.canary.clone().unwrap_or_default();
            (vec![canary.percent], bake(&canary.bake, &format!("{at}.canary.bake"))?)
        }
        Strategy::Linear => {
            let linear = merged.linear.clone().unwrap_or_default();
            let step = linear.step_percent.clamp(1, 99);
            let weights = (1..).map(|i| i * step).take_while(|w| *w < 100).collect();
            (weights, bake(&linear.step_bake, &format!("{at}.linear.stepBake"))?)
        }
    };
    let final_bake = match &merged.final_bake {
        Some(text) => bake(text, &format!("{at}.finalBake"))?,
        None => Duration::ZERO,
    };
    let judging = merged.analysis.as_ref().map(|a| judging(a, &format!("{at}.analysis"))).transpose()?;
    let pre_traffic = merged.pre_traffic.map(|p| p.path);
    Ok(Policy { strategy, weights, step_bake, final_bake, judging, pre_traffic })
}

/// The enabled function's policy, `None` without the variant; errors name `spec.function.rollout`.
///
/// # Errors
/// As [`resolve`].
pub fn of_function(spec: &BlogDeploymentSpec) -> Option<Result<Policy, String>> {
    let function = spec.function_enabled()?;
    Some(resolve(spec.rollout.as_deref(), function.rollout.as_deref(), "spec.function.rollout"))
}

/// The enabled container's policy, `None` without the variant; errors name
/// `spec.container.rollout`.
///
/// # Errors
/// As [`resolve`].
pub fn of_container(spec: &BlogDeploymentSpec) -> Option<Result<Policy, String>> {
    let container = spec.container_enabled()?;
    Some(resolve(spec.rollout.as_deref(), container.rollout.as_deref(), "spec.container.rollout"))
}

/// `own`'s fields where it sets them, `top`'s elsewhere.
fn merge(top: Option<&RolloutSpec>, own: Option<&RolloutSpec>) -> RolloutSpec {
    let (top, own) = (top.cloned().unwrap_or_default(), own.cloned().unwrap_or_default());
    RolloutSpec {
        strategy: own.strategy.or(top.strategy),
        canary: own.canary.or(top.canary),
        linear: own.linear.or(top.linear),
        final_bake: own.final_bake.or(top.final_bake),
        analysis: own.analysis.or(top.analysis),
        pre_traffic: own.pre_traffic.or(top.pre_traffic),
    }
}

fn judging(analysis: &Analysis, at: &str) -> Result<Judging, String> {
    #[allow(clippy::cast_precision_loss)] // request counts far below 2^52
    Ok(Judging {
        interval: duration(&analysis.interval, &format!("{at}.interval"))?.max(Duration::from_secs(1)),
        min_requests: analysis.min_requests as f64,
        max_step: bake(&analysis.max_step_duration, &format!("{at}.maxStepDuration"))?,
        max_error_percent: analysis.max_error_percent,
        max_p95_ms: analysis.max_p95_latency_ms.map(|ms| ms as f64),
        max_p95_increase_percent: analysis.max_p95_increase_percent.map(|p| p as f64),
        failure_limit: analysis.failure_limit.max(1),
        alarms: analysis.alarms.clone(),
    })
}

/// A duration no longer than [`MAX_BAKE`].
fn bake(text: &str, at: &str) -> Result<Duration, String> {
    let parsed = duration(text, at)?;
    if parsed > MAX_BAKE {
        return Err(format!("{at} is {text}; at most 24h"));
    }
    Ok(parsed)
}

/// `30s`, `5m`, `1h`.
///
/// # Errors
/// A sentence naming `at` when `text` is not a whole number followed by `s`, `m` or `h`.
pub fn duration(text: &str, at: &str) -> Result<Duration, String> {
    let unit = match text.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        _ => return Err(format!("{at} is {text:?}; write a whole number of s, m or h, such as 5m")),
    };
    let number = &text[..text.len() - 1];
    match number.parse::<u64>() {
        Ok(n) if !number.starts_with('+') => Ok(Duration::from_secs(n * unit)),
        _ => Err(format!("{at} is {text:?}; write a whole number of s, m or h, such as 5m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> RolloutSpec {
        serde_saphyr::from_str(yaml).expect("rollout spec")
    }

    #[test]
    fn without_a_rollout_every_reader_moves_at_once() {
        let policy = resolve(None, None, "spec.rollout").expect("policy");
        assert_eq!(policy, Policy::all_at_once());
        assert!(!policy.is_progressive());
    }

    #[test]
    fn linear_steps_stop_short_of_everyone_and_canary_takes_one() {
        let linear = spec("strategy: Linear\nlinear: {stepPercent: 30, stepBake: 2m}\n");
        let policy = resolve(Some(&linear), None, "spec.rollout").expect("policy");
        assert_eq!((policy.weights, policy.step_bake), (vec![30, 60, 90], Duration::from_secs(120)));
        let canary = resolve(Some(&spec("strategy: Canary\n")), None, "spec.rollout").expect("policy");
        assert_eq!((canary.weights, canary.step_bake), (vec![10], Duration::from_secs(300)));
    }

    #[test]
    fn a_variants_block_wins_field_by_field() {
        let top = spec("strategy: Canary\nanalysis: {interval: 30s, maxErrorPercent: 2}\nfinalBake: 1m\n");
        let own = spec("strategy: Linear\n");
        let policy = resolve(Some(&top), Some(&own), "spec.function.rollout").expect("policy");
        assert_eq!(policy.strategy, Strategy::Linear);
        assert_eq!(policy.final_bake, Duration::from_secs(60));
        let judging = policy.judging.expect("the top block's analysis");
        assert_eq!((judging.interval, judging.max_error_percent), (Duration::from_secs(30), 2.0));
    }

    #[test]
    fn durations_are_read_or_refused_by_name() {
        assert_eq!(duration("90s", "x"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("2h", "x"), Ok(Duration::from_secs(7200)));
        assert!(duration("5", "x").expect_err("no unit").starts_with("x is \"5\""));
        assert!(duration("m", "x").is_err());
        let long = spec("strategy: Canary\ncanary: {bake: 25h}\n");
        assert_eq!(
            resolve(Some(&long), None, "spec.rollout"),
            Err("spec.rollout.canary.bake is 25h; at most 24h".into())
        );
    }
}
