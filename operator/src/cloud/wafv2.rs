//! AWS WAF (regional): the load balancer's web ACL, a per-IP rate rule then AWS managed rule
//! groups, found by name and ownership tags and associated with the load balancer.

use std::collections::BTreeMap;

use aws_sdk_wafv2::types::{
    BlockAction, DefaultAction, ManagedRuleGroupStatement, OverrideAction, RateBasedStatement,
    RateBasedStatementAggregateKeyType, Rule, RuleAction, Scope, Statement, Tag, VisibilityConfig, WebAclSummary,
};

use super::{AwsClients, Call, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::crd::WafSpec;
use crate::desired::Owner;

/// The calls below, each scoped to the operator's web ACLs (named like its load balancers).
/// Associating needs `elasticloadbalancing:SetWebACL` as well, an action IAM scopes to no
/// resource: WAF checks it on the caller while `AssociateWebACL` (scoped to the operator's web
/// ACLs and load balancers) does the work.
pub const IAM: &str = r#"[
  {
    "Sid": "WebAcls",
    "Effect": "Allow",
    "Action": [
      "wafv2:CreateWebACL",
      "wafv2:GetWebACL",
      "wafv2:UpdateWebACL",
      "wafv2:DeleteWebACL",
      "wafv2:AssociateWebACL",
      "wafv2:DisassociateWebACL",
      "wafv2:ListTagsForResource",
      "wafv2:TagResource"
    ],
    "Resource": [
      "arn:aws:wafv2:*:*:regional/webacl/b-*/*",
      "arn:aws:wafv2:*:*:regional/managedruleset/*/*",
      "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/b-*/*"
    ]
  },
  {
    "Sid": "WebAclReads",
    "Effect": "Allow",
    "Action": [
      "wafv2:ListWebACLs",
      "wafv2:GetWebACLForResource"
    ],
    "Resource": "*"
  },
  {
    "Sid": "WebAclOnTheLoadBalancer",
    "Effect": "Allow",
    "Action": [
      "elasticloadbalancing:SetWebACL"
    ],
    "Resource": "*"
  }
]"#;

pub(crate) const SERVICE: &str = "wafv2";

const WEB_ACL: &str = "arn:aws:wafv2:{region}:{account}:regional/webacl/{load_balancer}/0a1b2c3d-0000-4000-8000-00000000cafe";
const LOAD_BALANCER: &str =
    "arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{load_balancer}/50dc6c495c0c9188";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] = &[
    Call::new("create the web ACL, tagged", "wafv2:CreateWebACL", WEB_ACL),
    Call::new("tag it as it is created", "wafv2:TagResource", WEB_ACL),
    Call::new("with an AWS managed rule group", "wafv2:CreateWebACL", "arn:aws:wafv2:{region}:{account}:regional/managedruleset/AWSManagedRulesCommonRuleSet/0a1b2c3d"),
    Call::new("find web ACLs", "wafv2:ListWebACLs", "*"),
    Call::new("read its tags", "wafv2:ListTagsForResource", WEB_ACL),
    Call::new("read its rules", "wafv2:GetWebACL", WEB_ACL),
    Call::new("change its rules", "wafv2:UpdateWebACL", WEB_ACL),
    Call::new("delete it", "wafv2:DeleteWebACL", WEB_ACL),
    Call::new("see what guards the load balancer", "wafv2:GetWebACLForResource", "*"),
    Call::new("put it in front of the load balancer", "wafv2:AssociateWebACL", WEB_ACL),
    Call::new("on the load balancer", "wafv2:AssociateWebACL", LOAD_BALANCER),
    Call::new("which ELB checks too", "elasticloadbalancing:SetWebACL", "*"),
    Call::new("take it off", "wafv2:DisassociateWebACL", LOAD_BALANCER),
];

/// WAF's own exception names. `WAFUnavailableEntityException` is what WAF answers while a load
/// balancer or web ACL just made is not yet visible to it: AWS says to retry.
pub const CODES: &[(&str, ErrorKind)] = &[
    ("WAFNonexistentItemException", ErrorKind::NotFound),
    ("WAFDuplicateItemException", ErrorKind::AlreadyExists),
    // moto's code for the same: a create whose answer was lost, retried, must find its own ACL
    // there too instead of waiting for the resync.
    ("WafV2DuplicateItem", ErrorKind::AlreadyExists),
    ("WAFOptimisticLockException", ErrorKind::Transient),
    ("WAFUnavailableEntityException", ErrorKind::Transient),
    ("WAFAssociatedItemException", ErrorKind::Transient),
    ("WAFLimitsExceededException", ErrorKind::Invalid),
];

/// The rate rule's name; the managed groups are named as AWS names them.
const RATE_RULE: &str = "per-client-ip-rate";

/// One web ACL found by name.
struct Found {
    name: String,
    id: String,
    arn: String,
}

/// Makes the web ACL `name` hold `spec`'s rules and stand in front of `load_balancer_arn`;
/// returns its ARN. A create whose answer was lost finds the web ACL it made.
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_web_acl(
    clients: &AwsClients,
    owner: &Owner,
    (name, load_balancer_arn): (&str, &str),
    spec: &WafSpec,
    tags: &BTreeMap<String, String>,
) -> CloudResult<String> {
    let waf = crate::sdk_client!(clients, aws_sdk_wafv2);
    let acl = match find(&waf, owner, name).await? {
        Some(found) => update_if_changed(&waf, found, spec).await?,
        None => match create(&waf, name, spec, tags).await {
            Err(err) if err.kind == ErrorKind::AlreadyExists => find(&waf, owner, name).await?.ok_or(err)?,
            made => made?,
        },
    };
    let guarding = waf.get_web_acl_for_resource().resource_arn(load_balancer_arn).send().await;
    let guarding = super::found(guarding.map_err(map_sdk(SERVICE, "GetWebACLForResource")))?;
    if guarding.as_ref().and_then(|g| g.web_acl()).map(|w| w.arn()) != Some(acl.arn.as_str()) {
        let associated = waf.associate_web_acl().web_acl_arn(&acl.arn).resource_arn(load_balancer_arn).send().await;
        associated.map_err(map_sdk(SERVICE, "AssociateWebACL"))?;
    }
    Ok(acl.arn)
}

/// Takes this owner's web ACL `name` off the load balancers `attached_to` gives (looked up only when
/// there is one) and deletes it; nothing found, or someone else's, is done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_web_acl(
    clients: &AwsClients,
    owner: &Owner,
    name: &str,
    attached_to: impl std::future::Future<Output = CloudResult<Vec<String>>>,
) -> CloudResult<()> {
    let waf = crate::sdk_client!(clients, aws_sdk_wafv2);
    let found = match find(&waf, owner, name).await {
        Err(err) if err.is_not_owned() => return Ok(()),
        found => found?,
    };
    let Some(acl) = found else { return Ok(()) };
    for arn in attached_to.await? {
        let sent = waf.disassociate_web_acl().resource_arn(arn).send().await;
        gone_is_done(sent.map(drop).map_err(map_sdk(SERVICE, "DisassociateWebACL")))?;
    }
    let read = waf.get_web_acl().scope(Scope::Regional).name(&acl.name).id(&acl.id).send().await;
    let Some(read) = super::found(read.map_err(map_sdk(SERVICE, "GetWebACL")))? else { return Ok(()) };
    let lock = read.lock_token().unwrap_or_default();
    let sent = waf.delete_web_acl().scope(Scope::Regional).name(&acl.name).id(&acl.id).lock_token(lock).send().await;
    gone_is_done(sent.map(drop).map_err(map_sdk(SERVICE, "DeleteWebACL")))
}

/// The web ACL named `name`, if any, once its tags say this owner made it.
async fn find(waf: &aws_sdk_wafv2::Client, owner: &Owner, name: &str) -> CloudResult<Option<Found>> {
    let Some(summary) = summary_named(waf, name).await? else { return Ok(None) };
    let arn = summary.arn().unwrap_or_default().to_owned();
    let tags = waf.list_tags_for_resource().resource_arn(&arn).send().await;
    let tags = tags.map_err(map_sdk(SERVICE, "ListTagsForResource"))?;
    let pairs = tags.tag_info_for_resource().map(|t| t.tag_list()).unwrap_or_default();
    let found = super::tags::tag_map(pairs.iter().map(|t| (Some(t.key()), Some(t.value()))));
    super::tags::claim(owner, &found, SERVICE, "ListTagsForResource", format!("web ACL {name}"))?;
    Ok(Some(Found { name: name.to_owned(), id: summary.id().unwrap_or_default().to_owned(), arn }))
}

/// The regional web ACLs, page by page, until one is named `name`.
async fn summary_named(waf: &aws_sdk_wafv2::Client, name: &str) -> CloudResult<Option<WebAclSummary>> {
    let mut marker: Option<String> = None;
    loop {
        let page = waf.list_web_acls().scope(Scope::Regional).limit(100).set_next_marker(marker).send().await;
        let page = page.map_err(map_sdk(SERVICE, "ListWebACLs"))?;
        if let Some(found) = page.web_acls().iter().find(|s| s.name() == Some(name)) {
            return Ok(Some(found.clone()));
        }
        marker = page.next_marker().filter(|m| !m.is_empty() && !page.web_acls().is_empty()).map(str::to_owned);
        if marker.is_none() {
            return Ok(None);
        }
    }
}

async fn create(
    waf: &aws_sdk_wafv2::Client,
    name: &str,
    spec: &WafSpec,
    tags: &BTreeMap<String, String>,
) -> CloudResult<Found> {
    let tags = super::tags::sdk_tags(tags, |k, v| Tag::builder().key(k).value(v).build().ok());
    let made = waf
        .create_web_acl()
        .name(name)
        .scope(Scope::Regional)
        .default_action(DefaultAction::builder().allow(aws_sdk_wafv2::types::AllowAction::builder().build()).build())
        .visibility_config(visibility(name)?)
        .set_rules(Some(rules(name, spec)?))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateWebACL"))?;
    let summary = made.summary.unwrap_or_else(|| WebAclSummary::builder().build());
    Ok(Found {
        name: name.to_owned(),
        id: summary.id().unwrap_or_default().to_owned(),
        arn: summary.arn().unwrap_or_default().to_owned(),
    })
}

/// Puts `spec`'s rules on the web ACL when what it holds says otherwise.
async fn update_if_changed(waf: &aws_sdk_wafv2::Client, acl: Found, spec: &WafSpec) -> CloudResult<Found> {
    let read = waf.get_web_acl().scope(Scope::Regional).name(&acl.name).id(&acl.id).send().await;
    let read = read.map_err(map_sdk(SERVICE, "GetWebACL"))?;
    let held = read.web_acl().map(|w| rule_shape(w.rules())).unwrap_or_default();
    if held == wanted_shape(spec) {
        return Ok(acl);
    }
    let updated = waf
        .update_web_acl()
        .scope(Scope::Regional)
        .name(&acl.name)
        .id(&acl.id)
        .lock_token(read.lock_token().unwrap_or_default())
        .default_action(DefaultAction::builder().allow(aws_sdk_wafv2::types::AllowAction::builder().build()).build())
        .visibility_config(visibility(&acl.name)?)
        .set_rules(Some(rules(&acl.name, spec)?))
        .send()
        .await;
    updated.map_err(map_sdk(SERVICE, "UpdateWebACL"))?;
    Ok(acl)
}

/// What decides a rule set: the rate limit, then the managed groups in order.
#[derive(Debug, PartialEq, Eq, Default)]
struct Shape {
    rate_limit: Option<i64>,
    groups: Vec<String>,
}

fn wanted_shape(spec: &WafSpec) -> Shape {
    Shape { rate_limit: Some(spec.rate_limit), groups: spec.managed_rule_groups.clone() }
}

fn rule_shape(rules: &[Rule]) -> Shape {
    let mut rules: Vec<&Rule> = rules.iter().collect();
    rules.sort_by_key(|r| r.priority());
    let statements = rules.iter().filter_map(|r| r.statement());
    Shape {
        rate_limit: statements.clone().find_map(|s| s.rate_based_statement()).map(RateBasedStatement::limit),
        groups: statements.filter_map(|s| s.managed_rule_group_statement()).map(|g| g.name().to_owned()).collect(),
    }
}

/// The rate rule (priority 0, blocking) then each managed group (counting as AWS wrote it).
fn rules(acl: &str, spec: &WafSpec) -> CloudResult<Vec<Rule>> {
    let rate = RateBasedStatement::builder()
        .limit(spec.rate_limit)
        .aggregate_key_type(RateBasedStatementAggregateKeyType::Ip)
        .build()
        .map_err(invalid)?;
    let block = RuleAction::builder().block(BlockAction::builder().build()).build();
    let first = Rule::builder()
        .name(RATE_RULE)
        .priority(0)
        .statement(Statement::builder().rate_based_statement(rate).build())
        .action(block)
        .visibility_config(visibility(&format!("{acl}-{RATE_RULE}"))?)
        .build()
        .map_err(invalid)?;
    let mut all = vec![first];
    for (group, priority) in spec.managed_rule_groups.iter().zip(1..) {
        let statement = ManagedRuleGroupStatement::builder().vendor_name("AWS").name(group).build().map_err(invalid)?;
        let rule = Rule::builder()
            .name(group)
            .priority(priority)
            .statement(Statement::builder().managed_rule_group_statement(statement).build())
            .override_action(OverrideAction::builder().none(aws_sdk_wafv2::types::NoneAction::builder().build()).build())
            .visibility_config(visibility(&format!("{acl}-{group}"))?)
            .build()
            .map_err(invalid)?;
        all.push(rule);
    }
    Ok(all)
}

/// CloudWatch metrics and sampled requests on, under `metric` (at most 128 characters).
fn visibility(metric: &str) -> CloudResult<VisibilityConfig> {
    VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name(metric.chars().take(128).collect::<String>())
        .build()
        .map_err(invalid)
}

fn invalid(err: impl std::fmt::Display) -> CloudError {
    CloudError::local(SERVICE, "CreateWebACL", ErrorKind::Invalid, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_read_back_as_the_spec_wrote_them() {
        let spec = WafSpec { rate_limit: 500, managed_rule_groups: vec!["AWSManagedRulesCommonRuleSet".into()] };
        let rules = rules("b-x", &spec).expect("rules");
        assert_eq!(rules.len(), 2);
        assert_eq!(rule_shape(&rules), wanted_shape(&spec));
        let reversed: Vec<Rule> = rules.iter().rev().cloned().collect();
        assert_eq!(rule_shape(&reversed), wanted_shape(&spec), "read in priority order");
        assert_ne!(rule_shape(&rules[..1]), wanted_shape(&spec), "a group gone is a change");
    }
}
