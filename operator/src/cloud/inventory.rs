//! Inventories: one kind of resource of a region listed for every object at once, at most once a
//! period and shared by all workers, so a resync reads a page for many objects instead of one
//! call per resource. An entry is a read like any other; a resource the listing has not seen (made
//! since, or changed by the operator since) is read on its own.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use super::CloudResult;

/// The period before the operator is told its resync period (the flag's default).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(300);

/// A region's inventories, one per kind of resource read this way.
pub struct Inventories {
    /// CloudWatch Logs log groups by name, listed by name prefix (`DescribeLogGroups`, 50 a page).
    pub log_groups: Inventory<aws_sdk_cloudwatchlogs::types::LogGroup>,
}

impl Inventories {
    /// A region's inventories, each listing reported in `metrics`.
    #[must_use]
    pub fn new(period: Duration, metrics: &crate::metrics::Metrics, region: &str) -> Self {
        Self { log_groups: Inventory::new(period, metrics, "log_groups", region) }
    }
}

/// One listing: when it was taken and what it held, by name.
struct Listing<T> {
    at: Instant,
    entries: HashMap<String, T>,
}

/// Listings of one kind by listing key (a name prefix), each refreshed once it is a period old.
pub struct Inventory<T> {
    period: Duration,
    listings: tokio::sync::Mutex<HashMap<String, Listing<T>>>,
    /// Where each listing's size and time are reported, under this inventory's name and region.
    metrics: crate::metrics::Metrics,
    kind: &'static str,
    region: String,
}

impl<T: Clone> Inventory<T> {
    /// An inventory of `kind` in `region`, each listing's size and time reported in `metrics`.
    #[must_use]
    pub fn new(period: Duration, metrics: &crate::metrics::Metrics, kind: &'static str, region: &str) -> Self {
        let listings = tokio::sync::Mutex::default();
        Self { period, listings, metrics: metrics.clone(), kind, region: region.to_owned() }
    }

    /// The entry `name` of listing `key` as listed at most a period ago (listed now by `list` when
    /// older); `None` when that listing does not hold it. Workers asking together wait for one
    /// listing. A failed listing is not kept: the next asks again.
    ///
    /// # Errors
    /// The listing's failure.
    pub async fn get<F, Fut>(&self, key: &str, name: &str, list: F) -> CloudResult<Option<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = CloudResult<HashMap<String, T>>>,
    {
        let mut listings = self.listings.lock().await;
        let fresh = listings.get(key).is_some_and(|l| l.at.elapsed() < self.period);
        if !fresh {
            let at = Instant::now();
            let entries = list().await?;
            self.metrics.inventory_listed(self.kind, key, &self.region, entries.len());
            listings.insert(key.to_owned(), Listing { at, entries });
        }
        Ok(listings.get(key).and_then(|l| l.entries.get(name).cloned()))
    }

    /// Drops what the listing said of `name` (the operator just changed or made it), so that it
    /// is read on its own until the next listing.
    pub async fn forget(&self, key: &str, name: &str) {
        if let Some(listing) = self.listings.lock().await.get_mut(key) {
            listing.entries.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::cloud::{CloudError, ErrorKind};

    fn listing(names: &[&str]) -> CloudResult<HashMap<String, u32>> {
        Ok(names.iter().map(|n| ((*n).to_owned(), 1)).collect())
    }

    #[tokio::test]
    async fn one_listing_answers_every_name_until_it_is_a_period_old() {
        let metrics = crate::metrics::Metrics::default();
        let inventory = Inventory::new(Duration::from_millis(50), &metrics, "test", "us-east-1");
        let lists = AtomicUsize::new(0);
        let list = || async {
            lists.fetch_add(1, Ordering::SeqCst);
            listing(&["a", "b"])
        };
        assert_eq!(inventory.get("p", "a", list).await.expect("a"), Some(1));
        assert_eq!(inventory.get("p", "b", list).await.expect("b"), Some(1));
        assert_eq!(inventory.get("p", "c", list).await.expect("c"), None, "not listed: read on its own");
        assert_eq!(lists.load(Ordering::SeqCst), 1, "one listing for three names");
        let rendered = metrics.render();
        assert!(
            rendered.contains(r#"blog_operator_inventory_entries{inventory="test",listing="p",region="us-east-1"} 2"#)
        );
        assert!(rendered.contains("blog_operator_inventory_listed_timestamp_seconds{"), "{rendered}");
        tokio::time::sleep(Duration::from_millis(60)).await;
        inventory.get("p", "a", list).await.expect("a");
        assert_eq!(lists.load(Ordering::SeqCst), 2, "listed again after a period");
    }

    #[tokio::test]
    async fn a_forgotten_entry_is_read_on_its_own_and_a_failed_listing_is_not_kept() {
        let inventory = Inventory::new(Duration::from_secs(60), &crate::metrics::Metrics::default(), "test", "r");
        inventory.get("p", "a", || async { listing(&["a"]) }).await.expect("listed");
        inventory.forget("p", "a").await;
        assert_eq!(inventory.get("p", "a", || async { listing(&["a"]) }).await.expect("a"), None);

        let failing = || async { Err(CloudError::local("logs", "DescribeLogGroups", ErrorKind::Transient, "down")) };
        assert!(inventory.get("q", "a", failing).await.is_err());
        assert_eq!(inventory.get("q", "a", || async { listing(&["a"]) }).await.expect("a"), Some(1));
    }
}
