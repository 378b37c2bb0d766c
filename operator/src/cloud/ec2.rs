//! EC2, spoken directly: the handful of Query-protocol calls the container variant needs (default
//! VPC and subnets, security groups and their ingress rules), signed with `aws-sigv4`.
//!
//! Why not `aws-sdk-ec2`: that one crate takes ~10 minutes and 7–8 GB of memory to compile (see
//! DESIGN.md, Build cost), for six operations. Credentials, region and endpoint still come from the
//! same `aws-config` chain as every other client, errors map through [`classify`], and transient
//! failures are retried with backoff like the SDK's standard retry mode.

use super::{Call, CREATED_TAGGED, OWN_TAGGED};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{AwsClients, CloudError, CloudResult, ErrorKind, classify_in};
use super::inventory::Listed;
use crate::desired::Owner;
use crate::metrics::Metrics;

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "NetworkLookup",
    "Effect": "Allow",
    "Action": [
      "ec2:DescribeVpcs",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups"
    ],
    "Resource": "*"
  },
  {
    "Sid": "CreateSecurityGroupsInAnyVpc",
    "Effect": "Allow",
    "Action": [
      "ec2:CreateSecurityGroup"
    ],
    "Resource": [
      "arn:aws:ec2:*:*:vpc/*"
    ]
  },
  {
    "Sid": "CreateOnlyTaggedSecurityGroups",
    "Effect": "Allow",
    "Action": [
      "ec2:CreateSecurityGroup"
    ],
    "Resource": [
      "arn:aws:ec2:*:*:security-group/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:RequestTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "TagSecurityGroupsOnlyOnCreate",
    "Effect": "Allow",
    "Action": [
      "ec2:CreateTags"
    ],
    "Resource": [
      "arn:aws:ec2:*:*:security-group/*"
    ],
    "Condition": {
      "StringEquals": {
        "ec2:CreateAction": "CreateSecurityGroup"
      }
    }
  },
  {
    "Sid": "ChangeOnlyItsSecurityGroups",
    "Effect": "Allow",
    "Action": [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupIngress",
      "ec2:DeleteSecurityGroup"
    ],
    "Resource": [
      "arn:aws:ec2:*:*:security-group/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  }
]"#;

pub(crate) const SERVICE: &str = "ec2";

const SECURITY_GROUP: &str = "arn:aws:ec2:{region}:{account}:security-group/sg-0123456789abcdef0";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create a tagged security group", "ec2:CreateSecurityGroup", SECURITY_GROUP).with(&[CREATED_TAGGED]),
    Call::new("in a VPC", "ec2:CreateSecurityGroup", "arn:aws:ec2:{region}:{account}:vpc/vpc-0a1b2c3d"),
    Call::new("tag it as it is created", "ec2:CreateTags", SECURITY_GROUP)
        .with(&[("ec2:CreateAction", r#""CreateSecurityGroup""#)]),
    Call::new("open its port", "ec2:AuthorizeSecurityGroupIngress", SECURITY_GROUP).with(&[OWN_TAGGED]),
    Call::new("close a port", "ec2:RevokeSecurityGroupIngress", SECURITY_GROUP).with(&[OWN_TAGGED]),
    Call::new("delete it", "ec2:DeleteSecurityGroup", SECURITY_GROUP).with(&[OWN_TAGGED]),
    Call::new("find the VPC", "ec2:DescribeVpcs", "*"),
    Call::new("find its subnets", "ec2:DescribeSubnets", "*"),
    Call::new("find security groups", "ec2:DescribeSecurityGroups", "*"),
];

/// EC2's name-taken answers (its API reference, Errors): a lost create's retry finds the group.
pub const CODES: &[(&str, ErrorKind)] =
    &[("InvalidGroup.Duplicate", ErrorKind::AlreadyExists), ("InvalidPermission.Duplicate", ErrorKind::AlreadyExists)];
const API_VERSION: &str = "2016-11-15";
const ATTEMPTS: u32 = 3;

/// Where traffic may come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Cidr(String),
    Group(String),
}

/// One TCP ingress rule: a port from a source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IngressRule {
    pub port: i32,
    pub source: Source,
}

pub use super::memo::Subnet;

/// The EC2 Query client for every region.
#[derive(Clone)]
pub struct Ec2 {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    credentials: Option<SharedCredentialsProvider>,
    endpoint: Option<String>,
    metrics: Metrics,
    attempt_timeout: Duration,
    budget: Option<std::sync::Arc<super::budget::Budget>>,
    /// Reads only (a paused object): any other action is refused before it is sent.
    observe_only: bool,
}

type Params = Vec<(String, String)>;

fn param(name: impl Into<String>, value: impl Into<String>) -> (String, String) {
    (name.into(), value.into())
}

impl Ec2 {
    /// # Errors
    /// When the system's root certificates cannot be loaded.
    pub(super) fn new(config: &aws_config::SdkConfig, metrics: Metrics) -> anyhow::Result<Self> {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_native_roots()?.https_or_http().enable_http1().build();
        // The service-specific variable wins over the global one, as in the SDKs.
        let endpoint = std::env::var("AWS_ENDPOINT_URL_EC2")
            .ok()
            .filter(|e| !e.is_empty())
            .or_else(|| config.endpoint_url().map(str::to_owned));
        let attempt_timeout = config
            .timeout_config()
            .and_then(aws_config::timeout::TimeoutConfig::operation_attempt_timeout)
            .unwrap_or(Duration::from_secs(20));
        Ok(Self {
            attempt_timeout,
            http: Client::builder(TokioExecutor::new()).build(https),
            credentials: config.credentials_provider(),
            endpoint,
            metrics,
            budget: None,
            observe_only: false,
        })
    }

    /// This client with the call budget in front of every attempt.
    pub(super) fn with_budget(self, budget: std::sync::Arc<super::budget::Budget>) -> Self {
        Self { budget: Some(budget), ..self }
    }

    /// This client signing with other credentials (an assumed role's).
    pub(super) fn with_credentials(self, credentials: SharedCredentialsProvider) -> Self {
        Self { credentials: Some(credentials), ..self }
    }

    /// This client refusing every action that would change something.
    pub(super) fn observing(self) -> Self {
        Self { observe_only: true, ..self }
    }

    /// Calls one action and returns the response XML; retries transient failures with backoff.
    async fn call(&self, region: &str, action: &'static str, params: Params) -> CloudResult<String> {
        if self.observe_only && !super::clients::only_reads(action) {
            return Err(super::error::withheld(SERVICE, action));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(budget) = &self.budget {
                budget.acquire(SERVICE).await;
            }
            let result = self.call_once(region, action, &params).await;
            self.metrics.aws_call("EC2", action, if result.is_ok() { "ok" } else { "error" });
            match result {
                Err(err) if err.kind == ErrorKind::Transient && attempt < ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once(&self, region: &str, action: &'static str, params: &Params) -> CloudResult<String> {
        let fail = |kind, message: String| CloudError::local(SERVICE, action, kind, message);
        let url = self.endpoint.clone().unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        let url = format!("{}/", url.trim_end_matches('/'));
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", action)
            .append_pair("Version", API_VERSION)
            .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let provider =
            self.credentials.as_ref().ok_or_else(|| fail(ErrorKind::AccessDenied, "no AWS credentials".into()))?;
        let credentials =
            provider.provide_credentials().await.map_err(|e| fail(ErrorKind::AccessDenied, e.to_string()))?;
        let identity = credentials.into();
        let signing = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(ErrorKind::Other, e.to_string()))?
            .into();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let mut request = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| fail(ErrorKind::Other, e.to_string()))?;
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| fail(ErrorKind::Other, e.to_string()))?;
        let (instructions, _) =
            sign(signable, &signing).map_err(|e| fail(ErrorKind::Other, e.to_string()))?.into_parts();
        instructions.apply_to_request_http1x(&mut request);

        // One deadline for the whole exchange: a stalled body must not hold the worker either.
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| fail(ErrorKind::Transient, e.to_string()))?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.map_err(|e| fail(ErrorKind::Transient, e.to_string()))?;
            Ok::<_, CloudError>((status, String::from_utf8_lossy(&bytes.to_bytes()).into_owned()))
        };
        let timed_out = || fail(ErrorKind::Transient, format!("no full answer within {:?}", self.attempt_timeout));
        let (status, text) = tokio::time::timeout(self.attempt_timeout, exchange).await.map_err(|_| timed_out())??;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let (code, message) = parse_error(&text).unwrap_or_else(|| ("Unknown".to_owned(), text.clone()));
        Err(CloudError { service: SERVICE, operation: action, kind: classify_in(SERVICE, &code, Some(status)), code, message })
    }

    /// The region's default VPC, if it has one.
    ///
    /// # Errors
    /// The AWS failure.
    async fn default_vpc(&self, region: &str) -> CloudResult<Option<String>> {
        let xml = self
            .call(region, "DescribeVpcs", vec![param("Filter.1.Name", "isDefault"), param("Filter.1.Value.1", "true")])
            .await?;
        let doc = parse(&xml)?;
        Ok(items(doc.root_element(), "vpcSet").into_iter().find_map(|vpc| text(vpc, "vpcId")))
    }

    /// The subnets of a VPC (only the default ones for a default VPC), sorted by zone.
    ///
    /// # Errors
    /// The AWS failure.
    async fn subnets(&self, region: &str, vpc_id: &str, only_default: bool) -> CloudResult<Vec<Subnet>> {
        let mut params = vec![param("Filter.1.Name", "vpc-id"), param("Filter.1.Value.1", vpc_id)];
        if only_default {
            params.extend([param("Filter.2.Name", "default-for-az"), param("Filter.2.Value.1", "true")]);
        }
        let xml = self.call(region, "DescribeSubnets", params).await?;
        let doc = parse(&xml)?;
        let mut subnets: Vec<Subnet> = items(doc.root_element(), "subnetSet")
            .into_iter()
            .filter_map(|s| Some(Subnet { id: text(s, "subnetId")?, zone: text(s, "availabilityZone")? }))
            .collect();
        subnets.sort_by(|a, b| (&a.zone, &a.id).cmp(&(&b.zone, &b.id)));
        Ok(subnets)
    }

    /// The VPC's security groups tagged as the operator's, by name, in pages of 1,000. Each is
    /// checked here too (VPC and tag), whatever the filters did.
    async fn list_groups(&self, region: &str, vpc_id: &str) -> CloudResult<HashMap<String, FoundGroup>> {
        let mut groups = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = vec![
                param("Filter.1.Name", "vpc-id"),
                param("Filter.1.Value.1", vpc_id),
                param("Filter.2.Name", format!("tag:{}", blog_core::owner::MANAGED_BY_TAG)),
                param("Filter.2.Value.1", blog_core::owner::MANAGED_BY),
                param("MaxResults", "1000"),
            ];
            params.extend(token.take().map(|t| param("NextToken", t)));
            let xml = self.call(region, "DescribeSecurityGroups", params).await?;
            let doc = parse(&xml)?;
            for group in items(doc.root_element(), "securityGroupInfo") {
                let found = FoundGroup::from(group);
                let managed = found.tags.get(blog_core::owner::MANAGED_BY_TAG);
                if text(group, "vpcId").as_deref() == Some(vpc_id) && managed == Some(blog_core::owner::MANAGED_BY) {
                    groups.insert(text(group, "groupName").unwrap_or_default(), found);
                }
            }
            token = text(doc.root_element(), "nextToken");
            if token.is_none() {
                return Ok(groups);
            }
        }
    }

    async fn find_group(&self, region: &str, vpc_id: &str, name: &str) -> CloudResult<Option<FoundGroup>> {
        let params = vec![
            param("Filter.1.Name", "group-name"),
            param("Filter.1.Value.1", name),
            param("Filter.2.Name", "vpc-id"),
            param("Filter.2.Value.1", vpc_id),
        ];
        let xml = self.call(region, "DescribeSecurityGroups", params).await?;
        let doc = parse(&xml)?;
        Ok(items(doc.root_element(), "securityGroupInfo").into_iter().next().map(FoundGroup::from))
    }

    /// Makes the security group exist in the VPC with exactly these TCP ingress rules; returns its id.
    ///
    /// # Errors
    /// The AWS failure, or `Invalid` when the name belongs to someone else.
    async fn ensure_security_group(
        &self,
        region: &str,
        owner: &Owner,
        vpc_id: &str,
        name: &str,
        (rules, known): (&[IngressRule], Option<Option<FoundGroup>>),
        tag_set: &BTreeMap<String, String>,
    ) -> CloudResult<String> {
        let found = match known {
            Some(known) => known,
            None => self.find_group(region, vpc_id, name).await?,
        };
        let (id, current) = match found {
            Some(found) if found.tags.owned_by(owner) => (found.id, found.ingress),
            Some(_) => {
                return Err(CloudError::not_owned(SERVICE, "DescribeSecurityGroups", format!("security group {name}")));
            }
            None => {
                let mut params = vec![
                    param("GroupName", name),
                    param("GroupDescription", format!("blog-operator {}: {name}", owner.key())),
                    param("VpcId", vpc_id),
                    param("TagSpecification.1.ResourceType", "security-group"),
                ];
                for (i, (key, value)) in tag_set.iter().enumerate() {
                    params.push(param(format!("TagSpecification.1.Tag.{}.Key", i + 1), key));
                    params.push(param(format!("TagSpecification.1.Tag.{}.Value", i + 1), value));
                }
                let xml = self.call(region, "CreateSecurityGroup", params).await.map_err(super::lost_create_race)?;
                let doc = parse(&xml)?;
                (text(doc.root_element(), "groupId").unwrap_or_default(), Vec::new())
            }
        };
        let wanted: Vec<&IngressRule> = rules.iter().collect();
        let missing: Vec<&IngressRule> = wanted.iter().copied().filter(|r| !current.contains(r)).collect();
        let extra: Vec<&IngressRule> = current.iter().filter(|r| !wanted.contains(r)).collect();
        if !missing.is_empty() {
            match self.call(region, "AuthorizeSecurityGroupIngress", permission_params(&id, &missing)).await {
                // A retry after a lost answer finds the rules there (InvalidPermission.Duplicate).
                Err(err) if err.kind != ErrorKind::AlreadyExists => return Err(err),
                _ => {}
            }
        }
        if !extra.is_empty() {
            self.call(region, "RevokeSecurityGroupIngress", permission_params(&id, &extra)).await?;
        }
        Ok(id)
    }

    /// Deletes the security group if it is ours; gone already counts as done. A group still in use
    /// (the load balancer's network interfaces linger for a while) is a transient failure.
    ///
    /// # Errors
    /// The AWS failure.
    async fn delete_security_group(&self, region: &str, owner: &Owner, vpc_id: &str, name: &str) -> CloudResult<()> {
        let Some(found) = self.find_group(region, vpc_id, name).await? else { return Ok(()) };
        if !found.tags.owned_by(owner) {
            tracing::warn!(group = name, "not deleting a security group this BlogDeployment does not own");
            return Ok(());
        }
        let result = self.call(region, "DeleteSecurityGroup", vec![param("GroupId", &found.id)]).await;
        match result {
            Err(err) if err.code == "DependencyViolation" => Err(CloudError { kind: ErrorKind::Transient, ..err }),
            other => super::gone_is_done(other),
        }
    }

    /// Security groups of this owner in any VPC, by name: for cleanup, which may not know the VPC.
    ///
    /// # Errors
    /// The AWS failure.
    async fn owned_group_vpcs(&self, region: &str, owner: &Owner, name: &str) -> CloudResult<Vec<String>> {
        let params = vec![param("Filter.1.Name", "group-name"), param("Filter.1.Value.1", name)];
        let xml = self.call(region, "DescribeSecurityGroups", params).await?;
        let doc = parse(&xml)?;
        Ok(items(doc.root_element(), "securityGroupInfo")
            .into_iter()
            .filter(|g| owner.owns(&tags(*g)))
            .filter_map(|g| text(g, "vpcId"))
            .collect())
    }
}

/// A security group as a read shows it.
#[derive(Debug, Clone)]
pub struct FoundGroup {
    id: String,
    tags: super::tags::TagList,
    ingress: Vec<IngressRule>,
}

impl From<roxmltree::Node<'_, '_>> for FoundGroup {
    fn from(group: roxmltree::Node<'_, '_>) -> Self {
        let (id, mut ingress) = (text(group, "groupId").unwrap_or_default(), ingress_rules(group));
        ingress.shrink_to_fit();
        Self { id, tags: tags(group).iter().collect(), ingress }
    }
}

fn permission_params(group_id: &str, rules: &[&IngressRule]) -> Params {
    let mut params = vec![param("GroupId", group_id)];
    for (i, rule) in rules.iter().enumerate() {
        let prefix = format!("IpPermissions.{}", i + 1);
        params.push(param(format!("{prefix}.IpProtocol"), "tcp"));
        params.push(param(format!("{prefix}.FromPort"), rule.port.to_string()));
        params.push(param(format!("{prefix}.ToPort"), rule.port.to_string()));
        match &rule.source {
            Source::Cidr(cidr) => params.push(param(format!("{prefix}.IpRanges.1.CidrIp"), cidr)),
            Source::Group(id) => params.push(param(format!("{prefix}.Groups.1.GroupId"), id)),
        }
    }
    params
}

fn parse(xml: &str) -> CloudResult<roxmltree::Document<'_>> {
    roxmltree::Document::parse(xml)
        .map_err(|e| CloudError::local(SERVICE, "parse", ErrorKind::Transient, format!("unreadable EC2 response: {e}")))
}

/// The first descendant element named `name`.
fn find<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.descendants().find(|n| n.is_element() && n.tag_name().name() == name)
}

/// The text of the direct child element `name`.
fn text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    node.children().find(|n| n.is_element() && n.tag_name().name() == name).and_then(|n| n.text()).map(str::to_owned)
}

/// The `<item>` children of the first `set` element below `node`.
fn items<'a, 'i>(node: roxmltree::Node<'a, 'i>, set: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    find(node, set)
        .map(|s| s.children().filter(|n| n.is_element() && n.tag_name().name() == "item").collect())
        .unwrap_or_default()
}

/// The direct child element `name` of `node`.
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.is_element() && n.tag_name().name() == name)
}

fn child_items<'a, 'i>(node: roxmltree::Node<'a, 'i>, set: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    child(node, set)
        .map(|s| s.children().filter(|n| n.is_element() && n.tag_name().name() == "item").collect())
        .unwrap_or_default()
}

fn tags(group: roxmltree::Node<'_, '_>) -> BTreeMap<String, String> {
    child_items(group, "tagSet")
        .into_iter()
        .filter_map(|t| Some((text(t, "key")?, text(t, "value").unwrap_or_default())))
        .collect()
}

/// The group's TCP ingress rules, one per port and source.
fn ingress_rules(group: roxmltree::Node<'_, '_>) -> Vec<IngressRule> {
    let mut rules = Vec::new();
    for permission in child_items(group, "ipPermissions") {
        let (Some(from), Some(to)) = (text(permission, "fromPort"), text(permission, "toPort")) else { continue };
        let (Ok(from), Ok(to)) = (from.parse::<i32>(), to.parse::<i32>()) else { continue };
        if from != to || text(permission, "ipProtocol").as_deref() != Some("tcp") {
            continue;
        }
        for range in child_items(permission, "ipRanges") {
            if let Some(cidr) = text(range, "cidrIp") {
                rules.push(IngressRule { port: from, source: Source::Cidr(cidr) });
            }
        }
        for pair in child_items(permission, "groups") {
            if let Some(id) = text(pair, "groupId") {
                rules.push(IngressRule { port: from, source: Source::Group(id) });
            }
        }
    }
    rules.sort();
    rules
}

/// `(Code, Message)` of an EC2 error response.
fn parse_error(xml: &str) -> Option<(String, String)> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let error = find(doc.root_element(), "Error")?;
    Some((text(error, "Code")?, text(error, "Message").unwrap_or_default()))
}

/// The default VPC of the clients' region, if it has one.
///
/// # Errors
/// The AWS failure.
pub async fn default_vpc(clients: &AwsClients) -> CloudResult<Option<String>> {
    clients.ec2.default_vpc(&clients.region).await
}

/// The subnets of a VPC (only its default-for-zone ones when `only_default`).
///
/// # Errors
/// The AWS failure.
pub async fn subnets(clients: &AwsClients, vpc_id: &str, only_default: bool) -> CloudResult<Vec<Subnet>> {
    clients.ec2.subnets(&clients.region, vpc_id, only_default).await
}

/// The region's default VPC, if it has one, and its default subnets: read at most once per
/// [`super::memo::NETWORK_TTL`] for the whole region.
///
/// # Errors
/// The AWS failure.
pub async fn default_network(clients: &AwsClients) -> CloudResult<super::memo::DefaultNetwork> {
    let now = std::time::Instant::now();
    if let Some(known) = clients.memo.default_network(now) {
        return Ok(known);
    }
    let vpc = default_vpc(clients).await?;
    let subnets = match &vpc {
        Some(vpc) => subnets(clients, vpc, true).await?,
        None => Vec::new(),
    };
    clients.memo.remember_default_network(now, vpc.clone(), subnets.clone());
    Ok((vpc, subnets))
}

/// Makes the security group exist in the VPC with exactly these TCP ingress rules; returns its id.
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_security_group(
    clients: &AwsClients,
    owner: &Owner,
    vpc_id: &str,
    name: &str,
    rules: &[IngressRule],
    tags: &BTreeMap<String, String>,
) -> CloudResult<String> {
    let listing = || {
        let (ec2, region, vpc_id) = (clients.ec2.clone(), clients.region.clone(), vpc_id.to_owned());
        async move { ec2.list_groups(&region, &vpc_id).await }
    };
    let listed = clients.inventories.security_groups.look_up(vpc_id, name, listing).await;
    let seen = format!("security group {vpc_id}/{name} seen");
    // What is known without a read of its own: listed with the wanted rules, or not listed and
    // never seen by this process (made without a look first). A change is made from a read of the
    // group on its own, which it reads until the next listing.
    let known = match listed {
        Listed::Found(found) if same_rules(&found.ingress, rules) => Some(Some(found)),
        Listed::Found(_) => {
            clients.inventories.security_groups.forget(vpc_id, name).await;
            None
        }
        Listed::Absent if clients.inventories.deep.due(&seen, &()) => Some(None),
        Listed::Absent | Listed::Unknown => None,
    };
    let create_first = known.as_ref().is_some_and(Option::is_none);
    let ensure = |known| clients.ec2.ensure_security_group(&clients.region, owner, vpc_id, name, (rules, known), tags);
    let id = match ensure(known).await {
        // Made since the listing was taken: found, and claimed, by a read of its own.
        Err(err) if create_first && err.code == "InvalidGroup.Duplicate" => ensure(None).await?,
        made => made?,
    };
    clients.inventories.deep.done(&seen, &());
    Ok(id)
}

/// Whether a group's ingress rules are exactly `wanted`, in any order.
fn same_rules(found: &[IngressRule], wanted: &[IngressRule]) -> bool {
    found.len() == wanted.len() && wanted.iter().all(|r| found.contains(r)) && found.iter().all(|r| wanted.contains(r))
}

/// Deletes the security group if it is ours; gone already counts as done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_security_group(clients: &AwsClients, owner: &Owner, vpc_id: &str, name: &str) -> CloudResult<()> {
    clients.ec2.delete_security_group(&clients.region, owner, vpc_id, name).await
}

/// The VPCs holding a security group of this owner and name: for cleanup, which may not know the VPC.
///
/// # Errors
/// The AWS failure.
pub async fn owned_group_vpcs(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<Vec<String>> {
    clients.ec2.owned_group_vpcs(&clients.region, owner, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPS: &str = r#"<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
      <requestId>r</requestId>
      <securityGroupInfo><item>
        <ownerId>123456789012</ownerId><groupId>sg-0123</groupId><groupName>web</groupName>
        <vpcId>vpc-1</vpcId>
        <ipPermissions>
          <item><ipProtocol>tcp</ipProtocol><fromPort>80</fromPort><toPort>80</toPort>
            <groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item>
          <item><ipProtocol>tcp</ipProtocol><fromPort>8080</fromPort><toPort>8080</toPort>
            <groups><item><userId>1</userId><groupId>sg-alb</groupId></item></groups><ipRanges/></item>
          <item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>10.0.0.0/8</cidrIp></item></ipRanges></item>
        </ipPermissions>
        <ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item></ipPermissionsEgress>
        <tagSet><item><key>blogs.serverless.dev/uid</key><value>u</value></item></tagSet>
      </item></securityGroupInfo>
    </DescribeSecurityGroupsResponse>"#;

    #[test]
    fn reads_groups_rules_and_tags() {
        let doc = roxmltree::Document::parse(GROUPS).expect("xml");
        let group = items(doc.root_element(), "securityGroupInfo")[0];
        assert_eq!(text(group, "groupId").as_deref(), Some("sg-0123"));
        assert_eq!(tags(group).get("blogs.serverless.dev/uid").map(String::as_str), Some("u"));
        assert_eq!(
            ingress_rules(group),
            [
                IngressRule { port: 80, source: Source::Cidr("0.0.0.0/0".into()) },
                IngressRule { port: 8080, source: Source::Group("sg-alb".into()) },
            ]
        );
    }

    #[test]
    fn a_listed_group_stands_only_while_its_rules_are_exactly_the_wanted_ones() {
        let web = IngressRule { port: 80, source: Source::Cidr("0.0.0.0/0".into()) };
        let app = IngressRule { port: 8080, source: Source::Group("sg-alb".into()) };
        assert!(same_rules(&[web.clone(), app.clone()], &[app.clone(), web.clone()]), "in any order");
        assert!(!same_rules(std::slice::from_ref(&web), &[web.clone(), app.clone()]), "one missing");
        assert!(!same_rules(&[web.clone(), app.clone()], std::slice::from_ref(&web)), "one too many");
        assert!(!same_rules(&[web.clone(), web.clone()], &[web, app]), "a duplicate is not the other rule");
    }

    #[test]
    fn reads_errors_and_builds_permissions() {
        let xml = "<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>no such group</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(parse_error(xml), Some(("InvalidGroup.NotFound".into(), "no such group".into())));
        assert_eq!(classify_in(SERVICE, "InvalidGroup.NotFound", Some(400)), ErrorKind::NotFound);
        let rule = IngressRule { port: 8080, source: Source::Group("sg-alb".into()) };
        let params = permission_params("sg-1", &[&rule]);
        assert!(params.contains(&param("IpPermissions.1.Groups.1.GroupId", "sg-alb")));
        assert!(params.contains(&param("IpPermissions.1.FromPort", "8080")));
    }
}
