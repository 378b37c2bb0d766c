//! The verdict on one window: the new version's requests, errors and p95 against the policy's
//! limits and against the stable version's figures from the same window.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::policy::Judging;
use super::types::RolloutCheck;

pub const PASS: &str = "Pass";
pub const FAIL: &str = "Fail";
pub const INCONCLUSIVE: &str = "Inconclusive";

/// One version's figures in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measured {
    pub requests: f64,
    pub errors: f64,
    pub p95_ms: Option<f64>,
}

impl Measured {
    #[must_use]
    pub fn error_percent(&self) -> f64 {
        if self.requests > 0.0 { 100.0 * self.errors / self.requests } else { 0.0 }
    }
}

/// What was read for a verdict: the new version, the stable one (none while the new version
/// serves everyone), and the named alarms in `ALARM`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    pub canary: Measured,
    pub baseline: Option<Measured>,
    pub firing: Vec<String>,
}

/// Judges `window`. A limit broken by the new version fails it, unless the stable version, with
/// enough requests of its own, did as badly in the same window: then the cause is shared (the
/// table, the region), not the new version, and the verdict waits.
#[must_use]
pub fn judge(judging: &Judging, window: &Window, now: &Time) -> RolloutCheck {
    let (canary, baseline) = (&window.canary, window.baseline.filter(|b| b.requests >= judging.min_requests));
    let (verdict, reason) = decide(judging, window, baseline.as_ref());
    RolloutCheck {
        time: Some(now.clone()),
        verdict: verdict.to_owned(),
        requests: canary.requests,
        error_percent: round(canary.error_percent()),
        p95_ms: canary.p95_ms.map(round),
        baseline_requests: window.baseline.map(|b| b.requests),
        baseline_error_percent: window.baseline.map(|b| round(b.error_percent())),
        baseline_p95_ms: window.baseline.and_then(|b| b.p95_ms).map(round),
        reason,
    }
}

fn decide(judging: &Judging, window: &Window, baseline: Option<&Measured>) -> (&'static str, String) {
    let canary = &window.canary;
    if let Some(alarm) = window.firing.first() {
        return (FAIL, format!("alarm {alarm} is in ALARM"));
    }
    if canary.requests < judging.min_requests {
        let wanted = judging.min_requests;
        return (
            INCONCLUSIVE,
            format!("{} requests to the new version, {wanted} needed for a verdict", canary.requests),
        );
    }
    let errors = canary.error_percent();
    if errors > judging.max_error_percent {
        let why = format!("{:.2} % errors, at most {} % allowed", errors, judging.max_error_percent);
        return match baseline {
            Some(b) if b.error_percent() >= errors => shared(why, &format!("{:.2} %", b.error_percent())),
            _ => (FAIL, why),
        };
    }
    let Some(p95) = canary.p95_ms else { return (PASS, format!("{:.2} % errors, no latency data", errors)) };
    if let Some(max) = judging.max_p95_ms.filter(|max| p95 > *max) {
        let why = format!("p95 {p95:.0} ms, at most {max:.0} ms allowed");
        return match baseline.and_then(|b| b.p95_ms) {
            Some(stable) if stable >= p95 => shared(why, &format!("{stable:.0} ms")),
            _ => (FAIL, why),
        };
    }
    if let (Some(increase), Some(stable)) = (judging.max_p95_increase_percent, baseline.and_then(|b| b.p95_ms)) {
        let limit = stable * (1.0 + increase / 100.0);
        if p95 > limit {
            return (
                FAIL,
                format!("p95 {p95:.0} ms against the stable version's {stable:.0} ms, at most +{increase:.0} %"),
            );
        }
    }
    (PASS, format!("{errors:.2} % errors, p95 {p95:.0} ms"))
}

fn shared(why: String, stable: &str) -> (&'static str, String) {
    (INCONCLUSIVE, format!("{why}, but the stable version shows {stable} in the same window"))
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn judging() -> Judging {
        Judging {
            interval: Duration::from_secs(60),
            min_requests: 100.0,
            max_step: Duration::from_secs(3600),
            max_error_percent: 1.0,
            max_p95_ms: Some(300.0),
            max_p95_increase_percent: Some(20.0),
            failure_limit: 2,
            alarms: Vec::new(),
        }
    }

    fn at(requests: f64, errors: f64, p95: f64) -> Measured {
        Measured { requests, errors, p95_ms: Some(p95) }
    }

    fn verdict(window: &Window) -> RolloutCheck {
        judge(&judging(), window, &Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn a_healthy_version_passes_with_its_figures() {
        let check =
            verdict(&Window { canary: at(400.0, 1.0, 80.0), baseline: Some(at(3600.0, 9.0, 75.0)), firing: vec![] });
        assert_eq!((check.verdict.as_str(), check.requests, check.error_percent), (PASS, 400.0, 0.25));
        assert_eq!((check.p95_ms, check.baseline_p95_ms), (Some(80.0), Some(75.0)));
    }

    #[test]
    fn too_few_requests_make_no_verdict() {
        let check = verdict(&Window { canary: at(99.0, 50.0, 900.0), ..Window::default() });
        assert_eq!(check.verdict, INCONCLUSIVE);
        assert!(check.reason.contains("99 requests"), "{}", check.reason);
    }

    #[test]
    fn errors_or_latency_past_a_limit_fail_the_new_version() {
        let errors =
            verdict(&Window { canary: at(200.0, 6.0, 80.0), baseline: Some(at(2000.0, 2.0, 80.0)), firing: vec![] });
        assert_eq!((errors.verdict.as_str(), errors.error_percent), (FAIL, 3.0));
        let slow = verdict(&Window { canary: at(200.0, 0.0, 450.0), baseline: None, firing: vec![] });
        assert_eq!(slow.verdict, FAIL);
        assert!(slow.reason.contains("p95 450 ms"), "{}", slow.reason);
        let slower =
            verdict(&Window { canary: at(200.0, 0.0, 130.0), baseline: Some(at(900.0, 0.0, 100.0)), firing: vec![] });
        assert_eq!(slower.verdict, FAIL, "30 % slower than the stable version, 20 % allowed");
    }

    #[test]
    fn a_baseline_as_bad_as_the_canary_holds_the_verdict() {
        let both =
            verdict(&Window { canary: at(200.0, 6.0, 80.0), baseline: Some(at(2000.0, 100.0, 80.0)), firing: vec![] });
        assert_eq!(both.verdict, INCONCLUSIVE, "{}", both.reason);
        assert!(both.reason.contains("stable version shows 5.00 %"), "{}", both.reason);
        // A baseline with too few requests of its own says nothing.
        let thin =
            verdict(&Window { canary: at(200.0, 6.0, 80.0), baseline: Some(at(10.0, 5.0, 80.0)), firing: vec![] });
        assert_eq!(thin.verdict, FAIL);
    }

    #[test]
    fn a_firing_alarm_fails_whatever_the_figures() {
        let firing = vec!["team-a-slo".to_owned()];
        let check = verdict(&Window { canary: at(5.0, 0.0, 10.0), baseline: None, firing });
        assert_eq!((check.verdict.as_str(), check.reason.as_str()), (FAIL, "alarm team-a-slo is in ALARM"));
    }
}
