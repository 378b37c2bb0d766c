//! Inventories: one kind of resource of a region listed for every object at once, at most once a
//! period and shared by all workers, so a resync reads a page for many objects instead of one
//! call per resource. An entry is a read like any other; a resource the listing has not seen (made
//! since, or changed by the operator since) is read on its own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::CloudResult;

/// The period before the operator is told its resync period (the flag's default).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(300);

/// How many resync periods apart, by default, the reads no listing can replace are made.
pub const DEFAULT_DEEP_READ_RESYNCS: u32 = 30;

/// How often a region's resources are read: listings once a `listing` period, and what no listing
/// shows once a `deep` period (a multiple of the resync period).
#[derive(Debug, Clone, Copy)]
pub struct ReadPeriods {
    pub listing: Duration,
    pub deep: Duration,
}

impl Default for ReadPeriods {
    fn default() -> Self {
        Self { listing: DEFAULT_PERIOD, deep: DEFAULT_PERIOD * DEFAULT_DEEP_READ_RESYNCS }
    }
}

/// A region's inventories, one per kind of resource read this way.
pub struct Inventories {
    /// CloudWatch Logs log groups by name, listed by name prefix (`DescribeLogGroups`, 50 a page).
    pub log_groups: Inventory<super::logs::FoundLogGroup>,
    /// IAM roles under the operator's path by name (`ListRoles`, 1,000 a page).
    pub roles: Inventory<super::iam::ListedRole>,
    /// Load balancers of the operator's names (`b-…`) by name (`DescribeLoadBalancers`, 400 a page).
    pub load_balancers: Inventory<Vec<super::elb::FoundBalancer>>,
    /// Target groups of the operator's names (`b-…`, `g-…`) by name (`DescribeTargetGroups`, 400 a page).
    pub target_groups: Inventory<Vec<super::elb::FoundTargetGroup>>,
    /// HTTP APIs named `blog-…` by id (`GetApis`, 500 a page).
    pub apis: Inventory<super::apigateway::ListedApi>,
    /// ECS clusters named `blog-…` by name, with tags and settings (`ListClusters` and
    /// `DescribeClusters`, 100 a call).
    pub clusters: Inventory<super::ecs::FoundCluster>,
    /// Security groups tagged as the operator's by name, listed by VPC (`DescribeSecurityGroups`
    /// filtered by VPC and tag, 1,000 a page).
    pub security_groups: Inventory<super::ec2::FoundGroup>,
    /// Secrets named `blog-…` by name, with tags and current version (`ListSecrets`, 100 a page).
    pub secrets: Inventory<super::secrets::SeenSecret>,
    /// Lambda functions named `blog-…` by name (`ListFunctions`, 50 a page).
    pub functions: Inventory<super::lambda::ListedFunction>,
    /// DynamoDB tables of the region by name (`ListTables`, 100 a page): names only, so a table
    /// deleted behind the operator's back is made again within a period.
    pub tables: Inventory<()>,
    /// When each resource was last read in full, for what no listing shows.
    pub deep: DeepReads,
    /// Each function's alias as last read, kept between the operator's own moves of it.
    pub aliases: DeepReads<super::lambda::Alias>,
    /// Each ECS service as last read while it stood still, with its cluster's task counts then.
    pub services: DeepReads<super::ecs::ServiceObserved>,
    /// Each table as last read while it was active.
    pub table_reads: DeepReads<super::dynamodb::TableObserved>,
    /// Every object's sizing metrics, read together once a period.
    pub sizing: crate::allocation::SizingReads,
}

impl Inventories {
    /// A region's inventories, each listing reported in `metrics`.
    #[must_use]
    pub fn new(periods: ReadPeriods, metrics: &crate::metrics::Metrics, region: &str) -> Self {
        Self {
            log_groups: Inventory::new(periods.listing, metrics, "log_groups", region),
            roles: Inventory::new(periods.listing, metrics, "roles", region),
            security_groups: Inventory::new(periods.listing, metrics, "security_groups", region),
            functions: Inventory::new(periods.listing, metrics, "functions", region),
            secrets: Inventory::new(periods.listing, metrics, "secrets", region),
            clusters: Inventory::new(periods.listing, metrics, "clusters", region),
            apis: Inventory::new(periods.listing, metrics, "apis", region),
            load_balancers: Inventory::new(periods.listing, metrics, "load_balancers", region),
            target_groups: Inventory::new(periods.listing, metrics, "target_groups", region),
            tables: Inventory::new(periods.listing, metrics, "tables", region),
            deep: DeepReads::new(periods.deep),
            aliases: DeepReads::new(periods.deep),
            services: DeepReads::new(periods.deep),
            table_reads: DeepReads::new(periods.deep),
            sizing: crate::allocation::SizingReads::new(periods.listing, metrics, region),
        }
    }
}

/// More resources than one operator holds in a region: past this the record starts over (every
/// resource is then read in full once more).
const MAX_DEEP_READS: usize = 200_000;

/// When each resource was last read in full, and for which desired state: what no listing shows (a
/// role's inline policy, a function's alias) is read once a deep period, and at once when the
/// desired state changes or the resource is not in its listing. `T` is what the read found, for a
/// read whose answer the reconcile goes on with (a service's counts, an alias's versions); `()`
/// where finding it as desired is all there is to know.
pub struct DeepReads<T = ()> {
    period: Duration,
    /// Each resource's desired state when last read in full, when it is due again and what was
    /// found, by a digest of the resource's name (a map of names would cost a few KiB an object).
    read: std::sync::Mutex<HashMap<u64, (u64, Instant, T)>>,
}

/// A digest of `desired`, to tell one desired state from another (not a security hash).
#[must_use]
pub fn fingerprint(desired: &impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(desired)
}

impl<T: Clone> DeepReads<T> {
    #[must_use]
    pub fn new(period: Duration) -> Self {
        Self { period, read: std::sync::Mutex::default() }
    }

    /// What the last full read of `resource` found, unless it is due again: never read in full by
    /// this process, read for another desired state, or a deep period ago (jittered by a quarter
    /// either way).
    #[must_use]
    pub fn kept(&self, resource: &str, desired: &impl std::hash::Hash) -> Option<T> {
        let read = self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seen, next, found) = read.get(&fingerprint(&resource))?;
        (*seen == fingerprint(desired) && Instant::now() < *next).then(|| found.clone())
    }

    /// Drops the record of `resource`: its next look is a full read.
    pub fn forget(&self, resource: &str) {
        self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&fingerprint(&resource));
    }

    /// Records a full read of `resource` that found `found` while `desired` was wanted.
    pub fn keep(&self, resource: &str, desired: &impl std::hash::Hash, found: T) {
        let mut read = self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = fingerprint(&resource);
        if read.len() >= MAX_DEEP_READS && !read.contains_key(&key) {
            read.clear();
        }
        // Jittered like resyncs (0.75 to 1.25 periods), so that objects made together do not all
        // come due in the same resync.
        let next = Instant::now() + crate::retry::next_resync(self.period, resource);
        read.insert(key, (fingerprint(desired), next, found));
    }
}

impl DeepReads {
    /// Whether `resource` is due a full read ([`DeepReads::kept`]).
    #[must_use]
    pub fn due(&self, resource: &str, desired: &impl std::hash::Hash) -> bool {
        self.kept(resource, desired).is_none()
    }

    /// Records a full read of `resource` that found it (or made it) as `desired`.
    pub fn done(&self, resource: &str, desired: &impl std::hash::Hash) {
        self.keep(resource, desired, ());
    }
}

/// One listing: when it was taken and what it held, by name; `failed` when it could not be taken
/// (then it holds nothing, and says nothing of what is absent).
struct Listing<T> {
    at: Instant,
    /// Boxed: a table of AWS's types (300-450 bytes each) is up to half empty slots.
    entries: HashMap<Box<str>, Box<T>>,
    failed: bool,
}

/// What a listing says of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed<T> {
    /// Listed, as it was then.
    Found(T),
    /// Not in a listing that was taken: made since, or not there at all.
    Absent,
    /// The listing failed: it says nothing.
    Unknown,
}

impl<T> Listed<T> {
    /// The entry, if listed.
    pub fn found(self) -> Option<T> {
        match self {
            Self::Found(entry) => Some(entry),
            Self::Absent | Self::Unknown => None,
        }
    }
}

/// Listings of one kind by listing key (a name prefix), each refreshed once it is a period old.
pub struct Inventory<T>(Arc<Shared<T>>);

/// What an inventory and the task taking its next listing share.
struct Shared<T> {
    period: Duration,
    listings: std::sync::Mutex<HashMap<String, Slot<T>>>,
    /// Where each listing's size, time and duration are reported, under this inventory's name and
    /// region.
    metrics: crate::metrics::Metrics,
    kind: &'static str,
    region: String,
}

/// A listing key's last listing, and whether a task is taking the next.
struct Slot<T> {
    current: Option<Listing<T>>,
    refreshing: bool,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self { current: None, refreshing: false }
    }
}

/// Who takes the listing of a key, if anyone.
enum Refresh {
    /// Nobody: the last is less than a period old, or another is being taken.
    Nothing,
    /// The caller: there is none yet to answer from.
    First,
    /// A task of its own: the caller answers from the last meanwhile.
    Behind,
}

impl<T: Clone + Send + 'static> Inventory<T> {
    /// An inventory of `kind` in `region`, each listing's size and time reported in `metrics`.
    #[must_use]
    pub fn new(period: Duration, metrics: &crate::metrics::Metrics, kind: &'static str, region: &str) -> Self {
        let listings = std::sync::Mutex::default();
        Self(Arc::new(Shared { period, listings, metrics: metrics.clone(), kind, region: region.to_owned() }))
    }

    /// The entry `name` of listing `key` as listed at most a period ago (listed now by `list` when
    /// older); `None` when that listing does not hold it, and then the caller reads it on its own.
    pub async fn get<F, Fut>(&self, key: &str, name: &str, list: F) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = CloudResult<HashMap<String, T>>> + Send + 'static,
    {
        self.look_up(key, name, list).await.found()
    }

    /// [`Inventory::get`], telling a name the listing does not hold from a listing that cannot
    /// say: a resource never made is created without a read of its own first.
    ///
    /// A listing that is a period old is taken again by a task of its own, one at a time, while
    /// every worker goes on with the last one (a name it holds is taken from it, its absence is
    /// not trusted): a listing that takes long (the sizing listing took a minute at 2,000 objects on
    /// the local stack) never holds a reconcile worker, and never runs twice at once. Only the first listing of a key is taken
    /// by the caller, as there is nothing to answer from before it. A listing that fails (a
    /// timeout on a large account, throttling) is logged and says nothing for a period: every
    /// resource is read on its own meanwhile, as without an inventory.
    pub async fn look_up<F, Fut>(&self, key: &str, name: &str, list: F) -> Listed<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = CloudResult<HashMap<String, T>>> + Send + 'static,
    {
        match self.take_refresh(key) {
            Refresh::Nothing => {}
            Refresh::First => {
                let taking = Taking::new(&self.0, key);
                taking.finish(list().await);
            }
            Refresh::Behind => {
                let (taking, listing) = (Taking::new(&self.0, key), list());
                tokio::spawn(async move { taking.finish(listing.await) });
            }
        }
        self.0.answer(key, name)
    }

    /// Whether the listing of `key` is due, and if so, marks it as being taken: the last is a
    /// period old and nobody is taking one.
    fn take_refresh(&self, key: &str) -> Refresh {
        let mut listings = self.0.lock();
        let slot = listings.entry(key.to_owned()).or_default();
        match &slot.current {
            Some(listing) if listing.at.elapsed() < self.0.period => Refresh::Nothing,
            _ if slot.refreshing => Refresh::Nothing,
            current => {
                let first = current.is_none();
                slot.refreshing = true;
                if first { Refresh::First } else { Refresh::Behind }
            }
        }
    }

    /// Drops what the listing said of `name` (the operator just changed or made it), so that it
    /// is read on its own until the next listing.
    pub async fn forget(&self, key: &str, name: &str) {
        if let Some(listing) = self.0.lock().get_mut(key).and_then(|slot| slot.current.as_mut()) {
            listing.entries.remove(name);
        }
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot<T>>> {
        self.listings.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<T: Clone> Shared<T> {
    /// What the last listing of `key` says of `name`.
    fn answer(&self, key: &str, name: &str) -> Listed<T> {
        match self.lock().get(key).and_then(|slot| slot.current.as_ref()) {
            Some(listing) if !listing.failed => match listing.entries.get(name) {
                Some(entry) => Listed::Found(T::clone(entry)),
                None if listing.at.elapsed() < self.period => Listed::Absent,
                None => Listed::Unknown,
            },
            _ => Listed::Unknown,
        }
    }
}

/// A listing being taken: stored when it finishes, and the key free to be listed again however it
/// ends (a caller cut off, a task that panicked).
struct Taking<T> {
    shared: Arc<Shared<T>>,
    key: String,
    started: Instant,
}

impl<T: Clone> Taking<T> {
    fn new(shared: &Arc<Shared<T>>, key: &str) -> Self {
        Self { shared: shared.clone(), key: key.to_owned(), started: Instant::now() }
    }

    /// Stores what the listing found (nothing, marked failed, when it failed).
    fn finish(self, listed: CloudResult<HashMap<String, T>>) {
        let Shared { metrics, kind, region, .. } = &*self.shared;
        let failed = listed.is_err();
        let entries = listed.unwrap_or_else(|err| {
            tracing::warn!(inventory = kind, listing = self.key, region = %region, error = %err,
                "listing failed: its resources are read on their own until the next");
            HashMap::new()
        });
        metrics.inventory_listed(kind, &self.key, region, entries.len(), self.started.elapsed());
        let entries = entries.into_iter().map(|(name, entry)| (name.into_boxed_str(), Box::new(entry))).collect();
        let listing = Listing { at: self.started, entries, failed };
        self.shared.lock().entry(self.key.clone()).or_default().current = Some(listing);
    }
}

impl<T> Drop for Taking<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.shared.lock().get_mut(&self.key) {
            slot.refreshing = false;
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
        let list = || {
            lists.fetch_add(1, Ordering::SeqCst);
            async { listing(&["a", "b"]) }
        };
        assert_eq!(inventory.get("p", "a", list).await, Some(1));
        assert_eq!(inventory.get("p", "b", list).await, Some(1));
        assert_eq!(inventory.get("p", "c", list).await, None, "not listed: read on its own");
        assert_eq!(lists.load(Ordering::SeqCst), 1, "one listing for three names");
        let rendered = metrics.render();
        assert!(
            rendered.contains(r#"blog_operator_inventory_entries{inventory="test",listing="p",region="us-east-1"} 2"#)
        );
        assert!(rendered.contains("blog_operator_inventory_listed_timestamp_seconds{"), "{rendered}");
        tokio::time::sleep(Duration::from_millis(60)).await;
        inventory.get("p", "a", list).await;
        assert_eq!(lists.load(Ordering::SeqCst), 2, "listed again after a period");
    }

    #[test]
    fn a_full_read_is_due_when_never_made_for_another_desired_state_or_a_period_ago() {
        let deep = DeepReads::new(Duration::from_millis(40));
        assert!(deep.due("role a", &"policy 1"), "never read");
        deep.done("role a", &"policy 1");
        assert!(!deep.due("role a", &"policy 1"));
        assert!(deep.due("role a", &"policy 2"), "the desired state changed");
        assert!(deep.due("role b", &"policy 1"), "another resource");
        std::thread::sleep(Duration::from_millis(60));
        assert!(deep.due("role a", &"policy 1"), "a deep period ago, give or take a quarter");
    }

    /// A listing that must not be taken: it fails the test where it is asked for, not in a task.
    fn never() -> std::future::Ready<CloudResult<HashMap<String, u32>>> {
        panic!("a second listing while one is being taken")
    }

    #[tokio::test]
    async fn a_listing_a_period_old_is_taken_by_one_task_while_callers_go_on_with_the_last() {
        let inventory = Inventory::new(Duration::from_millis(50), &crate::metrics::Metrics::default(), "test", "r");
        inventory.look_up("p", "a", || async { listing(&["a"]) }).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let waiting = release.clone();
        let slow = || async move {
            waiting.notified().await;
            listing(&["a", "b"])
        };
        let answered = tokio::time::timeout(Duration::from_millis(20), inventory.look_up("p", "a", slow)).await;
        assert_eq!(answered.expect("the caller does not wait for the listing"), Listed::Found(1));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(inventory.look_up("p", "a", never).await, Listed::Found(1), "a period on, still one listing");
        assert_eq!(inventory.look_up("p", "b", never).await, Listed::Unknown, "stale: absence unknown");
        release.notify_one();
        for _ in 0..100 {
            if matches!(inventory.0.answer("p", "b"), Listed::Found(1)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the task's listing never answered");
    }

    #[tokio::test]
    async fn a_first_listing_cut_off_leaves_the_next_caller_to_take_it() {
        let inventory = Inventory::new(Duration::from_secs(60), &crate::metrics::Metrics::default(), "test", "r");
        let stalled = inventory.look_up("p", "a", std::future::pending);
        assert!(tokio::time::timeout(Duration::from_millis(10), stalled).await.is_err(), "nothing to answer from yet");
        let next = inventory.look_up("p", "a", || async { listing(&["a"]) }).await;
        assert_eq!(next, Listed::Found(1), "listed by the next caller, not left taken for a period");
    }

    #[test]
    fn a_kept_read_answers_until_forgotten_or_wanted_otherwise() {
        let services = DeepReads::<&str>::new(Duration::from_secs(60));
        assert_eq!(services.kept("service a", &(1, 0)), None, "never read");
        services.keep("service a", &(1, 0), "found");
        assert_eq!(services.kept("service a", &(1, 0)), Some("found"));
        assert_eq!(services.kept("service a", &(2, 0)), None, "a task stopped since: read again");
        services.forget("service a");
        assert_eq!(services.kept("service a", &(1, 0)), None, "the operator changed it");
    }

    #[tokio::test]
    async fn a_forgotten_entry_and_a_failed_listing_leave_names_to_be_read_on_their_own() {
        let inventory = Inventory::new(Duration::from_secs(60), &crate::metrics::Metrics::default(), "test", "r");
        inventory.get("p", "a", || async { listing(&["a"]) }).await;
        inventory.forget("p", "a").await;
        assert_eq!(inventory.get("p", "a", || async { listing(&["a"]) }).await, None);

        let failing = || async { Err(CloudError::local("logs", "DescribeLogGroups", ErrorKind::Transient, "down")) };
        assert_eq!(
            inventory.look_up("q", "a", failing).await,
            Listed::Unknown,
            "read on its own, never taken as absent"
        );
        assert_eq!(inventory.look_up("p", "b", || async { listing(&["a"]) }).await, Listed::Absent);
        let again = inventory.get("q", "a", || async { listing(&["a"]) }).await;
        assert_eq!(again, None, "not listed again before a period: read on its own");
    }
}
