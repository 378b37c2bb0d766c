//! Lease-based leader election (coordination.k8s.io/v1): with several replicas only the holder of
//! the Lease reconciles. A replica that loses the Lease stops at once, so two never act together.
//!
//! The rules are the client-go ones: the holder renews every `renew`; anyone may take the Lease
//! once `renewTime + leaseDurationSeconds` has passed; every write carries the resourceVersion it
//! read, so of two replicas racing for an expired Lease exactly one wins. The holder gives up at
//! its renew deadline (two thirds of the lease), before anyone else may take the Lease, however
//! long a renewal call blocks; and it releases the Lease when it stops, so a rollout hands over at
//! once instead of after a whole lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

/// Who may hold the Lease, and for how long.
#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew: Duration,
}

/// What the Lease says now, seen by this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ours: renew it.
    Renew,
    /// Free or expired: take it.
    Acquire,
    /// Someone else's and still valid.
    Wait,
}

/// Decides from a Lease's spec (pure: the clock is passed in).
#[must_use]
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else { return Decision::Acquire };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == identity => Decision::Renew,
        None | Some("") => Decision::Acquire,
        Some(_) => {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            let renewed = spec.renew_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0);
            if renewed + SignedDuration::from_secs(duration) < now { Decision::Acquire } else { Decision::Wait }
        }
    }
}

impl Election {
    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let keeps = previous.is_some_and(|p| p.holder_identity.as_deref() == Some(self.identity.as_str()));
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.lease_duration.as_secs()).unwrap_or(15)),
            acquire_time: if keeps { previous.and_then(|p| p.acquire_time.clone()) } else { Some(MicroTime(now)) },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if keeps { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }
    }

    /// One round: acquire or renew if possible. `Ok(true)` when this replica holds the Lease now.
    ///
    /// # Errors
    /// The API server's refusal other than a lost race (a 409 is simply "not leader").
    pub async fn try_hold(&self, api: &Api<Lease>) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = api.get_opt(&self.name).await?;
        let decision = decide(current.as_ref().and_then(|l| l.spec.as_ref()), &self.identity, now);
        if decision == Decision::Wait {
            return Ok(false);
        }
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                    spec: Some(self.spec(None, now)),
                };
                api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                // The resourceVersion read above makes this a compare-and-swap.
                lease.spec = Some(self.spec(lease.spec.as_ref(), now));
                api.replace(&self.name, &PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self, api: &Api<Lease>) {
        loop {
            match self.try_hold(api).await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
                    return;
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "leader election: cannot read or write the Lease"),
            }
            tokio::time::sleep(self.renew).await;
        }
    }

    /// Renews the Lease until it is lost, then returns. Without a renewal for the renew deadline it
    /// counts as lost, a full third of the lease before another replica may take it: each renewal
    /// is cut off at that deadline, so a blocked call cannot keep a stale leader acting.
    pub async fn hold(&self, api: &Api<Lease>) {
        // The Lease's renewTime is taken before the call, so time is counted from there too.
        let mut renewed_at = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.renew).await;
            let deadline = renewed_at + renew_deadline(self.lease_duration);
            let started = tokio::time::Instant::now();
            match tokio::time::timeout_at(deadline, self.try_hold(api)).await {
                Ok(Ok(true)) => renewed_at = started,
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %self.name, "lost the Lease to another replica");
                    return;
                }
                Ok(Err(err)) => tracing::warn!(%err, "leader election: renewal failed"),
                Err(_) => tracing::warn!(lease = %self.name, "leader election: renewal still blocked at the deadline"),
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(lease = %self.name, "no renewal before the renew deadline: stepping down");
                return;
            }
        }
    }

    /// Gives the Lease up (holder cleared, as client-go's ReleaseOnCancel does) if this replica
    /// still holds it, so a follower takes over at its next try instead of after a whole lease.
    pub async fn release(&self, api: &Api<Lease>) {
        let released = async {
            let Some(mut lease) = api.get_opt(&self.name).await? else { return Ok(false) };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            api.replace(&self.name, &PostParams::default(), &lease).await.map(|_| true)
        };
        match tokio::time::timeout(self.renew, released).await {
            Ok(Ok(true)) => tracing::info!(lease = %self.name, "released the Lease"),
            Ok(Ok(false)) => {}
            Ok(Err(err)) => tracing::warn!(%err, "could not release the Lease; it expires by itself"),
            Err(_) => tracing::warn!("releasing the Lease timed out; it expires by itself"),
        }
    }
}

/// How long the holder keeps acting without a renewal: two thirds of the lease (client-go's 10 s of
/// 15 s), so it has stopped well before anyone else may take the Lease.
#[must_use]
pub fn renew_deadline(lease_duration: Duration) -> Duration {
    lease_duration * 2 / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).expect("time"))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("time")
    }

    #[test]
    fn only_a_free_expired_or_own_lease_is_taken() {
        assert_eq!(decide(None, "a", at(100)), Decision::Acquire);
        assert_eq!(decide(Some(&spec("a", 90, 15)), "a", at(100)), Decision::Renew);
        assert_eq!(decide(Some(&spec("b", 90, 15)), "a", at(100)), Decision::Wait);
        assert_eq!(decide(Some(&spec("b", 90, 15)), "a", at(105)), Decision::Wait, "exactly at expiry: still b's");
        assert_eq!(decide(Some(&spec("b", 90, 15)), "a", at(106)), Decision::Acquire);
        assert_eq!(decide(Some(&spec("", 90, 15)), "a", at(91)), Decision::Acquire);
    }

    #[test]
    fn the_holder_steps_down_before_the_lease_can_be_taken() {
        assert_eq!(renew_deadline(Duration::from_secs(15)), Duration::from_secs(10));
        assert!(renew_deadline(Duration::from_secs(3)) < Duration::from_secs(3));
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let election = Election {
            namespace: "ns".into(),
            name: "lease".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(10),
            renew: Duration::from_secs(2),
        };
        let mut theirs = spec("b", 90, 15);
        theirs.lease_transitions = Some(3);
        let taken = election.spec(Some(&theirs), at(200));
        assert_eq!((taken.holder_identity.as_deref(), taken.lease_transitions), (Some("a"), Some(4)));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(200))));
        let renewed = election.spec(Some(&taken), at(202));
        assert_eq!((renewed.lease_transitions, renewed.acquire_time), (Some(4), Some(MicroTime(at(200)))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(202))));
    }
}
