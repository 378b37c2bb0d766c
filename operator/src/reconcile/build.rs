//! Build: the desired state of every region, pure and once per reconcile, from the validated
//! spec, the tenant policy's rules, the operator's settings and what was dereferenced. Auto's sizes
//! are decided here from the metrics read and applied to it; then the placement (Recommend, Auto)
//! decides which regions serve, each with the home stack's desired state moved to it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::dereference::Reading;
use super::validate::Validated;
use crate::allocation::{self, pricing::PriceTable};
use crate::crd::{AllocationMode, AllocationStatus, BlogDeploymentStatus};
use crate::desired::{self, Desired};
use crate::placement::{self, Placed};
use blog_core::rollout::function::{self as rollout, Release};
use blog_core::rollout::{policy, verdict, verdict::Window};

/// What the build needs besides the spec: operator settings and facts from outside the object.
pub struct Facts<'a> {
    pub default_region: &'a str,
    /// The operator's permissions boundary for every role it makes.
    pub boundary: Option<&'a str>,
    pub prices: &'a PriceTable,
    /// The status as the last reconcile left it.
    pub previous: &'a BlogDeploymentStatus,
    /// Whether another BlogDeployment records the table of this name (the peers' watch cache).
    pub table_used_elsewhere: &'a (dyn Fn(&str) -> bool + Sync),
    pub metrics: &'a Reading,
    /// Requests per second each serving placement region measured.
    pub demand: &'a std::collections::BTreeMap<String, f64>,
    /// Readers' round trips from their beacons over the window (empty without them).
    pub readers: &'a blog_core::placement::readers::Readings,
    /// What a reader's page times in each candidate region.
    pub reader_probe_url: &'a str,
    /// The function rollout's window, when a verdict was due.
    pub rollout: Option<&'a Window>,
    /// The container rollout's window, when a verdict was due.
    pub container_rollout: Option<&'a Window>,
    /// The rollout annotation's value.
    pub annotation: Option<&'a str>,
}

/// Readers' beacons, for a placement that decides from them (Recommend, Auto): every candidate,
/// home first, timed by the page and summed up in home's CloudWatch.
fn beacons(validated: &Validated<'_>, home: &str, probe_url: &str) -> Option<blog_core::desired::ReaderBeacons> {
    validated.spec.placement.as_ref().filter(|p| p.mode != crate::crd::PlacementMode::Manual)?;
    Some(blog_core::desired::ReaderBeacons {
        namespace: blog_core::desired::readers_namespace(&validated.owner),
        region: home.to_owned(),
        candidates: validated.spec.regions(home).into_iter().map(str::to_owned).collect(),
        probe_url: probe_url.to_owned(),
    })
}

/// Which variant's release to build.
#[derive(Debug, Clone, Copy)]
enum Variant {
    Function,
    Container,
}

/// The desired states to apply and the allocation and placement to report.
pub struct Built {
    /// One desired state per region, home's first, then each placement region wanted now.
    pub regions: Vec<Desired>,
    pub allocation: Option<AllocationStatus>,
    /// What the placement decided, when the spec places.
    pub placement: Option<Placed>,
}

impl Built {
    /// The home region's desired state.
    #[must_use]
    pub fn home(&self) -> &Desired {
        &self.regions[0]
    }

    /// A placement region's desired state, when the placement wants it now.
    #[must_use]
    pub fn region(&self, name: &str) -> Option<&Desired> {
        self.regions.iter().find(|d| d.region == name)
    }
}

/// The desired state as the spec writes it, then (under Auto) at the sizes decided for it.
#[must_use]
pub fn build(validated: &Validated<'_>, facts: &Facts<'_>) -> Built {
    let rules = &validated.rules;
    let boundary = facts.boundary.map(str::to_owned);
    let boundary = rules.account.as_ref().map_or(boundary, |a| a.boundary(facts.boundary));
    let inputs = desired::Inputs {
        default_region: facts.default_region,
        role_permissions_boundary: boundary.as_deref(),
        auto_sizes: None,
        default_network: rules.network.default.as_ref(),
        recorded_table: facts.previous.resources.table_arn.as_deref().and_then(desired::table_of_arn),
        table_used_elsewhere: false,
    };
    let mut desired = desired::desired(&validated.owner, validated.spec, &inputs);
    desired.table.used_elsewhere = (facts.table_used_elsewhere)(&desired.table.name);
    let allocation = allocate(validated, facts, &desired);
    if let Some(sizes) = allocation.as_ref().filter(|_| validated.spec.allocation.mode == AllocationMode::Auto) {
        desired::with_sizes(&mut desired, sizes);
    }
    // After Auto's sizes: a size the operator chose rolls out like any other change.
    if let Some(function) = desired.function.as_mut() {
        function.release = release(validated, facts, Variant::Function);
    }
    if let Some(container) = desired.container.as_mut() {
        container.release = release(validated, facts, Variant::Container);
    }
    let placement = validated.spec.placement.as_ref().map(|spec| {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let measured = (facts.demand, facts.readers);
        placement::decide(spec, (&desired, facts.prices), measured, facts.previous.placement.as_deref(), &now)
    });
    if let Some(beacons) = beacons(validated, &desired.region, facts.reader_probe_url) {
        desired = desired.with_beacons(&beacons);
    }
    let writes_home = validated.spec.placement.as_ref().is_some_and(|p| p.writes == crate::crd::PlacementWrites::Home);
    let recorded = |region: &str| facts.previous.placement.iter().flat_map(|p| &p.regions).find(|r| r.region == region);
    let others = placement.iter().flat_map(|p| &p.wanted).filter(|(r, _)| **r != desired.region);
    let others: Vec<Desired> = others
        .map(|(region, variant)| {
            let warm =
                validated.spec.placement.iter().flat_map(|p| &p.candidates).any(|c| c.region == **region && c.warm);
            let running = blog_core::placement::regions::running(*variant, recorded(region), warm);
            desired.in_region(region, writes_home).running_only(running)
        })
        .collect();
    let regions = std::iter::once(desired).chain(others).collect();
    Built { regions, allocation, placement }
}

/// A variant's release: its policy, the rollout recorded, this reconcile's verdict (when a
/// window was read) and the annotation's command.
fn release(validated: &Validated<'_>, facts: &Facts<'_>, variant: Variant) -> Option<Release> {
    // Validation refused a policy that does not resolve.
    let recorded = facts.previous.rollout.as_ref();
    let (policy, window, record) = match variant {
        Variant::Function => {
            (policy::of_function(validated.spec)?, facts.rollout, recorded.and_then(|r| r.function.clone()))
        }
        Variant::Container => {
            (policy::of_container(validated.spec)?, facts.container_rollout, recorded.and_then(|r| r.container.clone()))
        }
    };
    let policy = policy.ok()?;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let check = policy.judging.as_ref().zip(window).map(|(judging, window)| verdict::judge(judging, window, &now));
    let (command, paused) = rollout::annotation(facts.annotation);
    Some(Release { policy, record, check, command, paused, now })
}

/// Decides sizes from the metrics read, unless allocation is Manual or they could not be read
/// (then the previous allocation stays). Reads the spec's own sizes, before Auto's are applied.
fn allocate(validated: &Validated<'_>, facts: &Facts<'_>, as_written: &Desired) -> Option<AllocationStatus> {
    let observed = match facts.metrics {
        Reading::NotNeeded => return None,
        Reading::Unreadable => return facts.previous.allocation.clone(),
        Reading::Read(observed) => observed.as_ref(),
    };
    let spec = &validated.spec.allocation;
    let last = facts.previous.allocation.as_ref();
    let ecs_desired = facts.previous.container_tasks.as_ref().map(|t| t.desired);
    let running = allocation::running_sizes(as_written, spec.mode, last, ecs_desired);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let prices = facts.prices.in_region(&as_written.region);
    Some(allocation::decide(spec, &validated.rules.limits, observed, running, last, &now, prices))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::crd::{BlogDeploymentSpec, PlacementVariant};
    use crate::desired::Owner;

    const PLACED: &str = "image: i\nregion: us-east-1\nfunction: {}\ncontainer: {}\n\
        domain: {hostedZone: example.com}\nplacement: {home: us-east-1, host: blog.example.com, writes: Home, \
        candidates: [{region: eu-central-1, variant: container}, {region: ap-northeast-1}]}\n";

    fn built(yaml: &str) -> Built {
        built_with(yaml, None, None)
    }

    fn built_with(yaml: &str, rollout: Option<&Window>, annotation: Option<&str>) -> Built {
        let spec: BlogDeploymentSpec = serde_saphyr::from_str(yaml).expect("fixture parses");
        let owner = Owner { namespace: "team".into(), name: "blog".into(), uid: "0123abcd-0000".into() };
        let validated = Validated { spec: &spec, owner, rules: crate::tenancy::TenantPolicy::default() };
        let previous = BlogDeploymentStatus::default();
        let facts = Facts {
            default_region: "us-west-2",
            boundary: None,
            prices: &PriceTable::default(),
            previous: &previous,
            table_used_elsewhere: &|_| false,
            metrics: &Reading::NotNeeded,
            demand: &BTreeMap::new(),
            readers: &BTreeMap::new(),
            reader_probe_url: blog_core::desired::DEFAULT_PROBE_URL,
            rollout,
            container_rollout: None,
            annotation,
        };
        build(&validated, &facts)
    }

    #[test]
    fn home_releases_under_the_rollout_judged_from_the_window_and_other_regions_at_once() {
        let spec = format!("{PLACED}rollout: {{strategy: Canary, analysis: {{minRequests: 10}}}}\n");
        let window = Window {
            canary: verdict::Measured { requests: 50.0, errors: 25.0, p95_ms: Some(40.0) },
            ..Window::default()
        };
        let placed = built_with(&spec, Some(&window), Some("abort"));
        let release = placed.home().function.as_ref().and_then(|f| f.release.clone()).expect("home's release");
        assert_eq!((release.policy.weights, release.command), (vec![10], Some(rollout::Command::Abort)));
        assert_eq!(release.check.map(|c| c.verdict), Some(verdict::FAIL.to_owned()));
        for region in &placed.regions[1..] {
            assert!(region.function.as_ref().is_none_or(|f| f.release.is_none()), "{}", region.region);
            assert!(region.container.as_ref().is_none_or(|c| c.release.is_none()), "{}", region.region);
        }
        let plain = built("image: i\nregion: us-east-1\nfunction: {}\n");
        let release = plain.home().function.as_ref().and_then(|f| f.release.clone()).expect("release");
        assert!(!release.policy.is_progressive() && release.check.is_none());
    }

    #[test]
    fn a_placement_builds_one_desired_state_per_region_home_first() {
        let built = built(PLACED);
        let regions: Vec<&str> = built.regions.iter().map(|d| d.region.as_str()).collect();
        assert_eq!(regions, ["us-east-1", "ap-northeast-1", "eu-central-1"]);
        let home = built.home();
        for region in &built.regions[1..] {
            assert_eq!(region.table.replica_of.as_deref(), Some("us-east-1"), "{}", region.region);
            assert_eq!(region.writes_to.as_deref(), Some("us-east-1"), "writes go home");
            assert_ne!(region.names.function_role, home.names.function_role, "roles are global: one per region");
            assert_eq!(region.table.name, home.table.name, "the replica keeps the home table's name");
        }
        let runs = |region: &str| built.region(region).map(|d| (d.function.is_some(), d.container.is_some()));
        assert_eq!(runs("us-east-1"), Some((true, true)), "home runs both: the blog's pair of URLs");
        assert_eq!(runs("eu-central-1"), Some((false, true)), "pinned to the container: no function there");
        assert_eq!(runs("ap-northeast-1"), Some((true, true)), "served by both");
        let placed = built.placement.expect("placed");
        assert_eq!(placed.wanted.get("eu-central-1"), Some(&Some(PlacementVariant::Container)));
        assert!(placed.decided.is_none(), "Manual decides nothing");
        let priced: Vec<&String> = placed.costs.keys().collect();
        assert_eq!(priced, ["us-east-1"], "the placement in effect is priced: home alone, before any region serves");
    }

    #[test]
    fn without_a_placement_the_build_gives_home_alone() {
        let built = built("image: i\nregion: us-east-1\nfunction: {}\n");
        assert_eq!(built.regions.len(), 1);
        assert_eq!((built.home().region.as_str(), built.home().table.replica_of.as_ref()), ("us-east-1", None));
        assert!(built.placement.is_none());
    }
}
