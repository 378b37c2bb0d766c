//! Elastic Load Balancing v2: an internet-facing ALB, an IP target group with the health-check
//! path, and its listeners: HTTPS:443 forwarding with the certificate and HTTP:80 redirecting to
//! it, or HTTP:80 forwarding where the spec chose plain HTTP; for a progressive container rollout,
//! a second target group and a catch-all production rule on the forwarding listener that ECS
//! shifts between the two. AWS (and even more so the emulator) accepts a
//! second ALB or listener of the same name or port, so duplicates left by an interrupted run are
//! found by name and tags and deleted.

use super::Call;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ForwardActionConfig, Listener, LoadBalancer, LoadBalancerSchemeEnum,
    LoadBalancerStateEnum, LoadBalancerTypeEnum,
    PathPatternConditionConfig, ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, Rule,
    RuleCondition, Tag, TargetGroup, TargetGroupTuple, TargetTypeEnum,
};

use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::desired::{ContainerTls, HTTPS_PORT, LISTENER_PORT, Owner};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "LoadBalancers",
    "Effect": "Allow",
    "Action": [
      "elasticloadbalancing:CreateLoadBalancer",
      "elasticloadbalancing:DeleteLoadBalancer",
      "elasticloadbalancing:CreateTargetGroup",
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:CreateRule",
      "elasticloadbalancing:ModifyRule"
    ],
    "Resource": [
      "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/b-*/*",
      "arn:aws:elasticloadbalancing:*:*:targetgroup/b-*/*",
      "arn:aws:elasticloadbalancing:*:*:targetgroup/g-*/*",
      "arn:aws:elasticloadbalancing:*:*:listener/app/b-*/*",
      "arn:aws:elasticloadbalancing:*:*:listener-rule/app/b-*/*"
    ]
  },
  {
    "Sid": "LoadBalancerTagsOnlyOnCreate",
    "Effect": "Allow",
    "Action": [
      "elasticloadbalancing:AddTags"
    ],
    "Resource": [
      "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/b-*/*",
      "arn:aws:elasticloadbalancing:*:*:targetgroup/b-*/*",
      "arn:aws:elasticloadbalancing:*:*:targetgroup/g-*/*"
    ],
    "Condition": {
      "StringEquals": {
        "elasticloadbalancing:CreateAction": [
          "CreateLoadBalancer",
          "CreateTargetGroup"
        ]
      }
    }
  },
  {
    "Sid": "LoadBalancerLookup",
    "Effect": "Allow",
    "Action": [
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTags"
    ],
    "Resource": "*"
  }
]"#;

pub(crate) const SERVICE: &str = "elasticloadbalancing";

const LOAD_BALANCER: &str = "arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{load_balancer}/50dc6c495c0c9188";
const TARGET_GROUP: &str = "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{target_group}/943f017f100becff";
const LISTENER: &str =
    "arn:aws:elasticloadbalancing:{region}:{account}:listener/app/{load_balancer}/50dc6c495c0c9188/f2f7dc8efc522ab2";
const ALTERNATE_TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{alternate_target_group}/5d3e0d5a8a1b2c3d";
const RULE: &str = "arn:aws:elasticloadbalancing:{region}:{account}:listener-rule/app/{load_balancer}/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create the load balancer", "elasticloadbalancing:CreateLoadBalancer", LOAD_BALANCER),
    Call::new("tag it as it is created", "elasticloadbalancing:AddTags", LOAD_BALANCER)
        .with(&[("elasticloadbalancing:CreateAction", r#""CreateLoadBalancer""#)]),
    Call::new("delete it", "elasticloadbalancing:DeleteLoadBalancer", LOAD_BALANCER),
    Call::new("create the target group", "elasticloadbalancing:CreateTargetGroup", TARGET_GROUP),
    Call::new("tag it as it is created", "elasticloadbalancing:AddTags", TARGET_GROUP)
        .with(&[("elasticloadbalancing:CreateAction", r#""CreateTargetGroup""#)]),
    Call::new("change its health check", "elasticloadbalancing:ModifyTargetGroup", TARGET_GROUP),
    Call::new("delete it", "elasticloadbalancing:DeleteTargetGroup", TARGET_GROUP),
    Call::new("create the listener", "elasticloadbalancing:CreateListener", LOAD_BALANCER),
    Call::new("point the listener", "elasticloadbalancing:ModifyListener", LISTENER),
    Call::new("delete the listener", "elasticloadbalancing:DeleteListener", LISTENER),
    Call::new("create the second target group", "elasticloadbalancing:CreateTargetGroup", ALTERNATE_TARGET_GROUP),
    Call::new("tag it as it is created", "elasticloadbalancing:AddTags", ALTERNATE_TARGET_GROUP)
        .with(&[("elasticloadbalancing:CreateAction", r#""CreateTargetGroup""#)]),
    Call::new("delete it", "elasticloadbalancing:DeleteTargetGroup", ALTERNATE_TARGET_GROUP),
    Call::new("create the production rule", "elasticloadbalancing:CreateRule", LISTENER),
    Call::new("point the production rule at both groups", "elasticloadbalancing:ModifyRule", RULE),
    Call::new("read the listener's rules", "elasticloadbalancing:DescribeRules", "*"),
    Call::new("find load balancers", "elasticloadbalancing:DescribeLoadBalancers", "*"),
    Call::new("find target groups", "elasticloadbalancing:DescribeTargetGroups", "*"),
    Call::new("find listeners", "elasticloadbalancing:DescribeListeners", "*"),
    Call::new("read tags", "elasticloadbalancing:DescribeTags", "*"),
];

/// ELB's name-taken answers (its API reference, Errors).
pub const CODES: &[(&str, ErrorKind)] = &[
    ("DuplicateTargetGroupName", ErrorKind::AlreadyExists),
    ("DuplicateLoadBalancerName", ErrorKind::AlreadyExists),
    ("DuplicateListener", ErrorKind::AlreadyExists),
];

/// The load balancer's CloudWatch dimension (and the first half of a request-count label): the tail
/// of its ARN, `app/<name>/<id>`.
#[must_use]
pub fn metric_dimension(load_balancer_arn: &str) -> Option<&str> {
    load_balancer_arn.split_once("loadbalancer/").map(|(_, tail)| tail)
}

fn tags(tag_set: &BTreeMap<String, String>) -> Vec<Tag> {
    super::tags::sdk_tags(tag_set, |k, v| Some(Tag::builder().key(k).value(v).build()))
}

/// The tags of each ARN.
async fn tags_of(clients: &AwsClients, arns: &[String]) -> CloudResult<BTreeMap<String, BTreeMap<String, String>>> {
    if arns.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = clients
        .elb
        .describe_tags()
        .set_resource_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeTags"))?;
    Ok(out
        .tag_descriptions()
        .iter()
        .map(|d| {
            let tags = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect();
            (d.resource_arn().unwrap_or_default().to_owned(), tags)
        })
        .collect())
}

/// Whether the resource's tags say this owner made it.
async fn owns_arn(clients: &AwsClients, owner: &Owner, arn: &str) -> CloudResult<bool> {
    Ok(tags_of(clients, &[arn.to_owned()]).await?.get(arn).is_some_and(|t| owner.owns(t)))
}

/// [`owns_arn`], remembered once it holds: an ARN names one resource for good (one made again
/// under the same name has another), so its owner's tags need confirming once per process.
async fn owns_arn_once(clients: &AwsClients, owner: &Owner, arn: &str) -> CloudResult<bool> {
    let key = format!("{} {arn}", owner.uid);
    if clients.memo.confirmed(&key) {
        return Ok(true);
    }
    let owned = owns_arn(clients, owner, arn).await?;
    if owned {
        clients.memo.remember_confirmed(&key);
    }
    Ok(owned)
}

/// The target groups of this name (none is not an error).
async fn find_target_groups(clients: &AwsClients, name: &str) -> CloudResult<Vec<FoundTargetGroup>> {
    let found =
        clients.elb.describe_target_groups().names(name).send().await.map_err(map_sdk(SERVICE, "DescribeTargetGroups"));
    Ok(super::found(found)?.map(|found| found.target_groups().iter().map(FoundTargetGroup::of).collect()).unwrap_or_default())
}

/// What is read of a target group, and what the region's listing holds of it until the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundTargetGroup {
    arn: Box<str>,
    health_check_path: Option<Box<str>>,
}

impl FoundTargetGroup {
    fn of(group: &TargetGroup) -> Self {
        Self {
            arn: group.target_group_arn().unwrap_or_default().into(),
            health_check_path: group.health_check_path().map(Into::into),
        }
    }
}

/// What is read of a load balancer, and what the region's listing holds of it until the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundBalancer {
    observed: LoadBalancerObserved,
    created: Option<aws_smithy_types::DateTime>,
}

impl FoundBalancer {
    fn of(balancer: &LoadBalancer) -> Self {
        let state = balancer.state().and_then(|s| s.code());
        Self {
            observed: LoadBalancerObserved {
                arn: balancer.load_balancer_arn().unwrap_or_default().to_owned(),
                dns_name: balancer.dns_name().unwrap_or_default().to_owned(),
                zone_id: balancer.canonical_hosted_zone_id().unwrap_or_default().to_owned(),
                state: state.map_or_else(|| "unknown".to_owned(), |c| c.as_str().to_owned()),
                internal: balancer.scheme() == Some(&LoadBalancerSchemeEnum::Internal),
            },
            created: balancer.created_time().copied(),
        }
    }

    fn active(&self) -> bool {
        self.observed.state == LoadBalancerStateEnum::Active.as_str()
    }
}

/// The key of the region's listing of the operator's load balancers and target groups.
const LISTED: &str = "b-|g-";

/// Whether `name` is one the operator gives a load balancer or target group (`b-…`, and `g-…` for
/// a rollout's second group: see `Names::for_owner`), which its listing holds.
fn listed(name: &str) -> bool {
    name.starts_with("b-") || name.starts_with("g-")
}

/// The target groups of this name as the region's listing shows them, or read on their own when
/// it does not hold the name.
async fn observe_target_groups(clients: &AwsClients, name: &str) -> CloudResult<Vec<FoundTargetGroup>> {
    if listed(name) {
        let list = || list_target_groups(clients.clone());
        if let Some(groups) = clients.inventories.target_groups.get(LISTED, name, list).await {
            return Ok(groups);
        }
    }
    find_target_groups(clients, name).await
}

/// The region's target groups of the operator's names, by name, in pages of 400.
async fn list_target_groups(clients: AwsClients) -> CloudResult<HashMap<String, Vec<FoundTargetGroup>>> {
    let mut groups: HashMap<String, Vec<FoundTargetGroup>> = HashMap::new();
    let mut pages = clients.elb.describe_target_groups().page_size(400).into_paginator().send();
    while let Some(page) = pages.next().await {
        for group in page.map_err(map_sdk(SERVICE, "DescribeTargetGroups"))?.target_groups() {
            if let Some(name) = group.target_group_name().filter(|n| listed(n)) {
                groups.entry(name.to_owned()).or_default().push(FoundTargetGroup::of(group));
            }
        }
    }
    // One of a name as a rule: a pushed-to Vec holds four, 1.1 KiB an object for nothing.
    groups.values_mut().for_each(Vec::shrink_to_fit);
    Ok(groups)
}

/// The load balancers of this name as the region's listing shows them when each is active there,
/// else read on their own: one still provisioning is read until it is active, so that it is seen
/// active at once and not a listing later.
async fn observe_load_balancers(clients: &AwsClients, name: &str) -> CloudResult<Vec<FoundBalancer>> {
    if listed(name) {
        let list = || list_load_balancers(clients.clone());
        let listed = clients.inventories.load_balancers.get(LISTED, name, list).await;
        if let Some(balancers) = listed.filter(|found| found.iter().all(FoundBalancer::active)) {
            return Ok(balancers);
        }
    }
    find_load_balancers(clients, name).await
}

/// The region's load balancers of the operator's names, by name, in pages of 400.
async fn list_load_balancers(clients: AwsClients) -> CloudResult<HashMap<String, Vec<FoundBalancer>>> {
    let mut balancers: HashMap<String, Vec<FoundBalancer>> = HashMap::new();
    let mut pages = clients.elb.describe_load_balancers().page_size(400).into_paginator().send();
    while let Some(page) = pages.next().await {
        for balancer in page.map_err(map_sdk(SERVICE, "DescribeLoadBalancers"))?.load_balancers() {
            if let Some(name) = balancer.load_balancer_name().filter(|n| listed(n)) {
                balancers.entry(name.to_owned()).or_default().push(FoundBalancer::of(balancer));
            }
        }
    }
    balancers.values_mut().for_each(Vec::shrink_to_fit);
    Ok(balancers)
}

/// The load balancers of this name (none is not an error).
async fn find_load_balancers(clients: &AwsClients, name: &str) -> CloudResult<Vec<FoundBalancer>> {
    let found = clients
        .elb
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeLoadBalancers"));
    Ok(super::found(found)?.map(|found| found.load_balancers().iter().map(FoundBalancer::of).collect()).unwrap_or_default())
}

/// A load balancer as found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerObserved {
    pub arn: String,
    pub dns_name: String,
    /// The Route 53 zone of its DNS name (the alias target's zone).
    pub zone_id: String,
    /// `active`, `provisioning`, `failed`...
    pub state: String,
    /// Its scheme is `internal`.
    pub internal: bool,
}

/// This owner's load balancers of this name, oldest first, from `found`. The tags are not read
/// again when the one found is `known` (recorded in status once its tags were checked).
async fn owned_load_balancers(
    clients: &AwsClients,
    owner: &Owner,
    (name, mut balancers): (&str, Vec<FoundBalancer>),
    known: Option<&str>,
) -> CloudResult<Vec<LoadBalancerObserved>> {
    balancers.sort_by_key(|b| b.created);
    let arns: Vec<String> = balancers.iter().map(|b| b.observed.arn.clone()).filter(|arn| !arn.is_empty()).collect();
    let recorded = known.is_some_and(|known| arns == [known]);
    let tags = if recorded || arns.is_empty() { BTreeMap::new() } else { tags_of(clients, &arns).await? };
    let foreign = !recorded && arns.iter().any(|arn| tags.get(arn).is_none_or(|t| !owner.owns(t)));
    if foreign {
        return Err(CloudError::not_owned(SERVICE, "DescribeLoadBalancers", format!("a load balancer named {name}")));
    }
    Ok(balancers.into_iter().map(|b| b.observed).collect())
}

/// Where an ALB goes and who reaches it.
pub struct BalancerPlacement<'a> {
    pub subnets: &'a [String],
    pub security_group: &'a str,
    /// Internal (inside the VPC only) rather than internet-facing.
    pub internal: bool,
}

/// Makes exactly one ALB of this name exist on these subnets and security group, with this scheme.
/// AWS cannot change a scheme: a balancer with the other one is deleted, and the next reconcile
/// makes the new one.
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_load_balancer(
    clients: &AwsClients,
    owner: &Owner,
    name: &str,
    (placement, known): (&BalancerPlacement<'_>, Option<&str>),
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<LoadBalancerObserved> {
    let observed = observe_load_balancers(clients, name).await?;
    let mut found = owned_load_balancers(clients, owner, (name, observed), known).await?;
    if found.len() > 1 || found.first().is_some_and(|b| b.internal != placement.internal) {
        clients.inventories.load_balancers.forget(LISTED, name).await;
    }
    for duplicate in found.iter().skip(1) {
        tracing::warn!(arn = %duplicate.arn, "deleting a duplicate load balancer");
        delete_load_balancer_arn(clients, &duplicate.arn).await?;
    }
    if let Some(balancer) = found.drain(..).next() {
        if balancer.internal == placement.internal {
            return Ok(balancer);
        }
        tracing::info!(arn = %balancer.arn, internal = placement.internal, "replacing the load balancer to change its scheme");
        delete_load_balancer_arn(clients, &balancer.arn).await?;
        let why = "replacing the load balancer to change its scheme; the next reconcile makes the new one";
        return Err(CloudError::local(SERVICE, "CreateLoadBalancer", ErrorKind::Transient, why));
    }
    let scheme =
        if placement.internal { LoadBalancerSchemeEnum::Internal } else { LoadBalancerSchemeEnum::InternetFacing };
    let created = clients
        .elb
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(placement.subnets.to_vec()))
        .security_groups(placement.security_group)
        .scheme(scheme)
        .r#type(LoadBalancerTypeEnum::Application)
        .set_tags(Some(tags(tag_set)))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateLoadBalancer"))?;
    let balancer = created.load_balancers().first().ok_or_else(|| {
        CloudError::local(SERVICE, "CreateLoadBalancer", ErrorKind::Transient, "no load balancer returned")
    })?;
    Ok(LoadBalancerObserved {
        arn: balancer.load_balancer_arn().unwrap_or_default().to_owned(),
        dns_name: balancer.dns_name().unwrap_or_default().to_owned(),
        zone_id: balancer.canonical_hosted_zone_id().unwrap_or_default().to_owned(),
        state: balancer
            .state()
            .and_then(|s| s.code())
            .map_or_else(|| "provisioning".to_owned(), |c| c.as_str().to_owned()),
        internal: placement.internal,
    })
}

/// Makes the IP target group exist in the VPC with this health-check path; returns its ARN. Its
/// tags are read only when it is not the `known` one (recorded in status once they were checked).
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_target_group(
    clients: &AwsClients,
    (owner, known): (&Owner, Option<&str>),
    name: &str,
    vpc_id: &str,
    health_check_path: &str,
    tag_set: &BTreeMap<String, String>,
) -> CloudResult<String> {
    if let Some(group) = observe_target_groups(clients, name).await?.first() {
        let arn = group.arn.to_string();
        if known != Some(arn.as_str()) && !owns_arn_once(clients, owner, &arn).await? {
            return Err(CloudError::not_owned(SERVICE, "DescribeTargetGroups", format!("target group {name}")));
        }
        if group.health_check_path.as_deref() != Some(health_check_path) {
            clients.inventories.target_groups.forget(LISTED, name).await;
            clients
                .elb
                .modify_target_group()
                .target_group_arn(&arn)
                .health_check_path(health_check_path)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "ModifyTargetGroup"))?;
        }
        return Ok(arn);
    }
    // ECS registers each task's IP with the container port, so the group's own port is a default only.
    let created = clients
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(LISTENER_PORT)
        .vpc_id(vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .health_check_path(health_check_path)
        .set_tags(Some(tags(tag_set)))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateTargetGroup"))?;
    Ok(created.target_groups().first().and_then(|g| g.target_group_arn()).unwrap_or_default().to_owned())
}

/// How the load balancer takes requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front<'a> {
    /// HTTP:80 forwards (the spec chose plain HTTP).
    Plain,
    /// HTTPS:443 forwards with this certificate, once ACM issued it (`None`: not yet, so there is
    /// no 443 listener); HTTP:80 redirects to it either way.
    Https(Option<&'a str>),
}

impl<'a> Front<'a> {
    /// The front the spec's TLS choice gives, with the certificate once ACM issued it.
    #[must_use]
    pub fn of(tls: &ContainerTls, issued: Option<&'a str>) -> Self {
        match tls {
            ContainerTls::PlainHttp => Self::Plain,
            ContainerTls::Https(_) => Self::Https(issued),
        }
    }

    /// The ports its security group opens: 80 either serves or redirects; 443 with HTTPS.
    #[must_use]
    pub fn ports(self) -> Vec<i32> {
        match self {
            Self::Plain => vec![LISTENER_PORT],
            Self::Https(_) => vec![LISTENER_PORT, HTTPS_PORT],
        }
    }

    /// The scheme of the URL it serves; none while the HTTPS listener waits for its certificate.
    #[must_use]
    pub fn scheme(self) -> Option<&'static str> {
        match self {
            Self::Plain => Some("http"),
            Self::Https(Some(_)) => Some("https"),
            Self::Https(None) => None,
        }
    }
}

/// The TLS policy of the HTTPS listener: TLS 1.3 and 1.2 only (AWS's recommended policy).
pub const SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// One listener as it should be.
struct WantedListener<'a> {
    port: i32,
    action: Action,
    certificate: Option<&'a str>,
}

fn wanted_listeners<'a>(front: Front<'a>, target_group_arn: &str) -> Vec<WantedListener<'a>> {
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build();
    let redirect = Action::builder()
        .r#type(ActionTypeEnum::Redirect)
        .redirect_config(
            RedirectActionConfig::builder()
                .protocol("HTTPS")
                .port(HTTPS_PORT.to_string())
                .status_code(RedirectActionStatusCodeEnum::Http301)
                .build(),
        )
        .build();
    match front {
        Front::Plain => vec![WantedListener { port: LISTENER_PORT, action: forward, certificate: None }],
        Front::Https(certificate) => {
            let mut wanted = vec![WantedListener { port: LISTENER_PORT, action: redirect, certificate: None }];
            if let Some(arn) = certificate {
                wanted.push(WantedListener { port: HTTPS_PORT, action: forward, certificate: Some(arn) });
            }
            wanted
        }
    }
}

/// Whether a listener found does what `wanted` says.
fn listener_matches(found: &Listener, wanted: &WantedListener<'_>) -> bool {
    let action = found.default_actions().first();
    let same_action = action.is_some_and(|a| {
        a.r#type() == wanted.action.r#type()
            && a.target_group_arn() == wanted.action.target_group_arn()
            && a.redirect_config().map(|r| (r.protocol(), r.port()))
                == wanted.action.redirect_config().map(|r| (r.protocol(), r.port()))
    });
    let certificate = found.certificates().first().and_then(|c| c.certificate_arn());
    same_action && certificate == wanted.certificate
}

/// Makes the load balancer's listeners exactly `front`: one per port, each as wanted; any other
/// listener (a duplicate, a port no longer used) is deleted. No listing holds listeners: they are
/// read in full when due ([`super::inventory::DeepReads`]), at once when `front` changes.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_listeners(
    clients: &AwsClients,
    load_balancer_arn: &str,
    target_group_arn: &str,
    front: Front<'_>,
) -> CloudResult<()> {
    let resource = format!("listeners of {load_balancer_arn}");
    let desired = (target_group_arn, format!("{front:?}"));
    if !clients.inventories.deep.due(&resource, &desired) {
        return Ok(());
    }
    read_and_ensure_listeners(clients, load_balancer_arn, target_group_arn, front).await?;
    clients.inventories.deep.done(&resource, &desired);
    Ok(())
}

async fn read_and_ensure_listeners(
    clients: &AwsClients,
    load_balancer_arn: &str,
    target_group_arn: &str,
    front: Front<'_>,
) -> CloudResult<()> {
    let listeners = clients
        .elb
        .describe_listeners()
        .load_balancer_arn(load_balancer_arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeListeners"))?;
    let wanted = wanted_listeners(front, target_group_arn);
    let mut kept = std::collections::BTreeSet::new();
    for listener in listeners.listeners() {
        let arn = listener.listener_arn().unwrap_or_default();
        match wanted.iter().find(|w| Some(w.port) == listener.port()) {
            Some(want) if kept.insert(want.port) => {
                if !listener_matches(listener, want) {
                    modify_listener(clients, arn, want).await?;
                }
            }
            _ => delete_listener(clients, arn).await?,
        }
    }
    for want in wanted.iter().filter(|w| !kept.contains(&w.port)) {
        create_listener(clients, load_balancer_arn, want).await?;
    }
    Ok(())
}

fn certificates(want: &WantedListener<'_>) -> Option<Vec<Certificate>> {
    want.certificate.map(|arn| vec![Certificate::builder().certificate_arn(arn).build()])
}

fn protocol(want: &WantedListener<'_>) -> ProtocolEnum {
    if want.certificate.is_some() { ProtocolEnum::Https } else { ProtocolEnum::Http }
}

async fn modify_listener(clients: &AwsClients, arn: &str, want: &WantedListener<'_>) -> CloudResult<()> {
    clients
        .elb
        .modify_listener()
        .listener_arn(arn)
        .protocol(protocol(want))
        .set_certificates(certificates(want))
        .set_ssl_policy(want.certificate.map(|_| SSL_POLICY.to_owned()))
        .default_actions(want.action.clone())
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "ModifyListener"))
}

async fn create_listener(clients: &AwsClients, load_balancer_arn: &str, want: &WantedListener<'_>) -> CloudResult<()> {
    clients
        .elb
        .create_listener()
        .load_balancer_arn(load_balancer_arn)
        .protocol(protocol(want))
        .port(want.port)
        .set_certificates(certificates(want))
        .set_ssl_policy(want.certificate.map(|_| SSL_POLICY.to_owned()))
        .default_actions(want.action.clone())
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "CreateListener"))
}

async fn delete_listener(clients: &AwsClients, arn: &str) -> CloudResult<()> {
    tracing::info!(arn, "deleting a listener the load balancer no longer needs");
    gone_is_done(
        clients.elb.delete_listener().listener_arn(arn).send().await.map_err(map_sdk(SERVICE, "DeleteListener")),
    )
}

async fn delete_load_balancer_arn(clients: &AwsClients, arn: &str) -> CloudResult<()> {
    gone_is_done(
        clients
            .elb
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DeleteLoadBalancer")),
    )
}

/// The ARNs of this owner's load balancers of this name (none when the name is someone else's):
/// what a kind attached to the load balancer detaches before it goes.
///
/// # Errors
/// The AWS failure.
pub async fn owned_load_balancer_arns(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<Vec<String>> {
    match owned_load_balancers(clients, owner, (name, find_load_balancers(clients, name).await?), None).await {
        Err(err) if err.is_not_owned() => Ok(Vec::new()),
        found => Ok(found?.into_iter().map(|b| b.arn).collect()),
    }
}

/// Deletes every load balancer of this name this owner made (their listeners go with them).
///
/// # Errors
/// The AWS failure.
pub async fn delete_load_balancers(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    let found = match owned_load_balancers(clients, owner, (name, find_load_balancers(clients, name).await?), None).await {
        Err(err) if err.is_not_owned() => return Ok(()),
        other => other?,
    };
    for balancer in found {
        delete_load_balancer_arn(clients, &balancer.arn).await?;
    }
    Ok(())
}

/// Deletes the target group if it is ours; one still in use by a load balancer being deleted is retried.
///
/// # Errors
/// The AWS failure.
pub async fn delete_target_group(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    for group in find_target_groups(clients, name).await? {
        let arn = group.arn.to_string();
        if !owns_arn(clients, owner, &arn).await? {
            continue;
        }
        match clients
            .elb
            .delete_target_group()
            .target_group_arn(&arn)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "DeleteTargetGroup"))
        {
            Err(err) if err.code == "ResourceInUse" => return Err(CloudError { kind: ErrorKind::Transient, ..err }),
            other => gone_is_done(other)?,
        }
    }
    Ok(())
}

/// The production rule's priority: the last one, so a rule a platform adds before it wins.
pub const PRODUCTION_PRIORITY: &str = "50000";

/// The production rule ECS shifts: its ARN and each target group's weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionRule {
    pub arn: String,
    pub weights: Vec<(String, i32)>,
}

/// The target groups a rule forwards to, with their weights.
fn forwarded(rule: &Rule) -> Vec<(String, i32)> {
    let tuples = rule.actions().iter().filter_map(|a| a.forward_config()).flat_map(ForwardActionConfig::target_groups);
    tuples.filter_map(|t| Some((t.target_group_arn()?.to_owned(), t.weight().unwrap_or(1)))).collect()
}

/// Makes the forwarding listener (on `port`) carry the catch-all production rule that forwards to
/// both target groups. Its weights are ECS's while a deployment shifts them: a rule that names both
/// groups is left as it is; one that names others is pointed back, all readers on `groups.0`.
/// `None` while that listener does not exist yet (HTTPS waiting for its certificate).
///
/// # Errors
/// The AWS failure.
pub async fn ensure_production_rule(
    clients: &AwsClients,
    load_balancer_arn: &str,
    port: i32,
    groups: (&str, &str),
) -> CloudResult<Option<ProductionRule>> {
    let listeners = clients
        .elb
        .describe_listeners()
        .load_balancer_arn(load_balancer_arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "DescribeListeners"))?;
    let Some(listener) = listeners.listeners().iter().find(|l| l.port() == Some(port)).and_then(|l| l.listener_arn())
    else {
        return Ok(None);
    };
    let rules =
        clients.elb.describe_rules().listener_arn(listener).send().await.map_err(map_sdk(SERVICE, "DescribeRules"))?;
    let found = rules.rules().iter().find(|r| r.priority() == Some(PRODUCTION_PRIORITY));
    let both = |weights: &[(String, i32)]| {
        weights.len() == 2 && [groups.0, groups.1].iter().all(|g| weights.iter().any(|(arn, _)| arn == g))
    };
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(TargetGroupTuple::builder().target_group_arn(groups.0).weight(1).build())
                .target_groups(TargetGroupTuple::builder().target_group_arn(groups.1).weight(0).build())
                .build(),
        )
        .build();
    let initial = vec![(groups.0.to_owned(), 1), (groups.1.to_owned(), 0)];
    match found.map(|r| (r.rule_arn().unwrap_or_default(), forwarded(r))) {
        Some((arn, weights)) if both(&weights) => Ok(Some(ProductionRule { arn: arn.to_owned(), weights })),
        Some((arn, _)) => {
            clients
                .elb
                .modify_rule()
                .rule_arn(arn)
                .actions(forward)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "ModifyRule"))?;
            Ok(Some(ProductionRule { arn: arn.to_owned(), weights: initial }))
        }
        None => {
            let everything = RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(PathPatternConditionConfig::builder().values("/*").build())
                .build();
            let created = clients
                .elb
                .create_rule()
                .listener_arn(listener)
                .priority(PRODUCTION_PRIORITY.parse().unwrap_or(50_000))
                .conditions(everything)
                .actions(forward)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "CreateRule"))?;
            let arn = created.rules().first().and_then(|r| r.rule_arn()).unwrap_or_default().to_owned();
            Ok(Some(ProductionRule { arn, weights: initial }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_holds_the_names_the_operator_gives_balancers_and_groups_only() {
        let owner = Owner { namespace: "team".into(), name: "shop".into(), uid: "0123abcd-0000".into() };
        let names = crate::desired::Names::for_owner(&owner);
        for name in [&names.load_balancer, &names.target_group, &names.alternate_target_group] {
            assert!(listed(name), "{name}");
        }
        assert!(!listed("blog-team-shop"), "another tool's name is read on its own");
    }
}
