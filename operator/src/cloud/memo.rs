//! What one region's reads showed that changes rarely, or only through the operator: kept in
//! memory, so that a resync does not read it again (a restarted operator reads it once more).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A subnet and its availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
}

/// How long the region's default VPC and its subnets are taken as read.
pub const NETWORK_TTL: Duration = Duration::from_secs(600);

/// More secrets than one operator manages in a region: past this the memo starts over.
const MAX_SECRETS: usize = 10_000;

/// More confirmed facts than one operator's objects hold in a region: past this, start over.
const MAX_CONFIRMED: usize = 100_000;

/// The region's default VPC (if any) and its default subnets.
pub type DefaultNetwork = (Option<String>, Vec<Subnet>);

#[derive(Debug, Default)]
pub struct Memo {
    default_network: Mutex<Option<(Instant, DefaultNetwork)>>,
    /// Secret name → (the version seen current, the digest of the value it was seen to hold).
    secret_versions: Mutex<HashMap<String, (String, [u8; 32])>>,
    /// Facts that hold for good once seen: an owner's tags on a resource of a given id (one made
    /// again under the name has another), an immutable task definition that matches a container.
    /// By digest: the facts' texts would cost a few hundred bytes each.
    confirmed: Mutex<std::collections::HashSet<u64>>,
}

/// A fact's digest (not a security hash: a collision would at worst skip one tag read).
fn fact(key: &str) -> u64 {
    super::inventory::fingerprint(&key)
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl Memo {
    /// The default VPC (if the region has one) and its default subnets, as read less than
    /// [`NETWORK_TTL`] before `now`.
    #[must_use]
    pub fn default_network(&self, now: Instant) -> Option<DefaultNetwork> {
        let network = self.default_network.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (at, known) = network.as_ref()?;
        (now.checked_duration_since(*at)? < NETWORK_TTL).then(|| known.clone())
    }

    pub fn remember_default_network(&self, now: Instant, vpc: Option<String>, subnets: Vec<Subnet>) {
        *self.default_network.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, (vpc, subnets)));
    }

    /// Whether `version` of secret `name` was seen to hold `value`. Secrets Manager makes a new
    /// version for every change of the value, so an unchanged current version holds it still.
    #[must_use]
    pub fn secret_holds(&self, name: &str, version: &str, value: &str) -> bool {
        let versions = self.secret_versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        versions.get(name).is_some_and(|(seen, held)| seen == version && *held == digest(value))
    }

    pub fn remember_secret(&self, name: &str, version: &str, value: &str) {
        let mut versions = self.secret_versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if versions.len() >= MAX_SECRETS && !versions.contains_key(name) {
            versions.clear();
        }
        versions.insert(name.to_owned(), (version.to_owned(), digest(value)));
    }

    /// Whether `key` (an owner and a resource, or another fact) was confirmed before.
    #[must_use]
    pub fn confirmed(&self, key: &str) -> bool {
        self.confirmed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&fact(key))
    }

    pub fn remember_confirmed(&self, key: &str) {
        let mut confirmed = self.confirmed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if confirmed.len() >= MAX_CONFIRMED {
            confirmed.clear();
        }
        confirmed.insert(fact(key));
    }

    /// Drops a fact that no longer holds.
    pub fn forget_confirmed(&self, key: &str) {
        self.confirmed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&fact(key));
    }

    pub fn forget_secret(&self, name: &str) {
        self.secret_versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_is_taken_as_read_for_its_ttl_only() {
        let memo = Memo::default();
        let t0 = Instant::now();
        assert_eq!(memo.default_network(t0), None);
        let subnets = vec![Subnet { id: "subnet-1".to_owned(), zone: "a".to_owned() }];
        memo.remember_default_network(t0, Some("vpc-1".to_owned()), subnets.clone());
        assert_eq!(memo.default_network(t0 + Duration::from_secs(1)), Some((Some("vpc-1".to_owned()), subnets)));
        assert_eq!(memo.default_network(t0 + NETWORK_TTL), None);
    }

    #[test]
    fn a_claim_is_remembered_for_its_key_only() {
        let memo = Memo::default();
        assert!(!memo.confirmed("uid arn 1"));
        memo.remember_confirmed("uid arn 1");
        assert!(memo.confirmed("uid arn 1"));
        assert!(!memo.confirmed("uid arn 2"), "the same name made again is claimed anew");
        memo.forget_confirmed("uid arn 1");
        assert!(!memo.confirmed("uid arn 1"), "a fact that no longer holds");
    }

    #[test]
    fn a_secret_holds_a_value_only_in_the_version_it_was_seen_in() {
        let memo = Memo::default();
        assert!(!memo.secret_holds("s", "v1", "token"));
        memo.remember_secret("s", "v1", "token");
        assert!(memo.secret_holds("s", "v1", "token"));
        assert!(!memo.secret_holds("s", "v2", "token"), "someone put a new version");
        assert!(!memo.secret_holds("s", "v1", "rotated"), "the Kubernetes Secret changed");
        memo.forget_secret("s");
        assert!(!memo.secret_holds("s", "v1", "token"));
    }
}
