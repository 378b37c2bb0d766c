//! API Gateway HTTP API: one API per function, with an AWS_PROXY integration (payload 2.0), the
//! `$default` route and an auto-deployed `$default` stage.

use super::{Call, CREATED_TAGGED, OWN_TAGGED};
use std::collections::{BTreeMap, HashMap};

use aws_sdk_apigatewayv2::types::{Api, IntegrationType, ProtocolType};

use super::{AwsClients, CloudResult, gone_is_done, map_sdk};
use crate::crd::ThrottleSpec;
use crate::desired::Owner;

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "HttpApiReads",
    "Effect": "Allow",
    "Action": [
      "apigateway:GET"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/apis",
      "arn:aws:apigateway:*::/apis/*"
    ]
  },
  {
    "Sid": "HttpApiCreateTagged",
    "Effect": "Allow",
    "Action": [
      "apigateway:POST"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/apis",
      "arn:aws:apigateway:*::/tags/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:RequestTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "HttpApiDeleteOnlyItsOwn",
    "Effect": "Allow",
    "Action": [
      "apigateway:DELETE"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/apis/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "HttpApiChildrenUntaggedForIam",
    "Effect": "Allow",
    "Action": [
      "apigateway:POST",
      "apigateway:PATCH"
    ],
    "Resource": [
      "arn:aws:apigateway:*::/apis/*/integrations",
      "arn:aws:apigateway:*::/apis/*/routes",
      "arn:aws:apigateway:*::/apis/*/routes/*",
      "arn:aws:apigateway:*::/apis/*/stages",
      "arn:aws:apigateway:*::/apis/*/stages/*"
    ]
  }
]"#;

pub(crate) const SERVICE: &str = "apigatewayv2";

const APIS: &str = "arn:aws:apigateway:{region}::/apis";
const API: &str = "arn:aws:apigateway:{region}::/apis/a1b2c3";

/// The calls above as IAM sees them (see [`Call`]): API Gateway authorises by HTTP method.
pub const CALLS: &[Call] = &[
    Call::new("create the HTTP API, tagged", "apigateway:POST", APIS).with(&[CREATED_TAGGED]),
    Call::new("tag the stage it creates", "apigateway:POST", "arn:aws:apigateway:{region}::/tags/a1b2c3")
        .with(&[CREATED_TAGGED]),
    Call::new("list HTTP APIs", "apigateway:GET", APIS),
    Call::new("read an API's integrations", "apigateway:GET", "arn:aws:apigateway:{region}::/apis/a1b2c3/integrations"),
    Call::new("create its integration", "apigateway:POST", "arn:aws:apigateway:{region}::/apis/a1b2c3/integrations"),
    Call::new("create its route", "apigateway:POST", "arn:aws:apigateway:{region}::/apis/a1b2c3/routes"),
    Call::new("point its route", "apigateway:PATCH", "arn:aws:apigateway:{region}::/apis/a1b2c3/routes/r1"),
    Call::new("create its stage", "apigateway:POST", "arn:aws:apigateway:{region}::/apis/a1b2c3/stages"),
    Call::new("throttle its stage", "apigateway:PATCH", "arn:aws:apigateway:{region}::/apis/a1b2c3/stages/$default"),
    Call::new("delete its own API", "apigateway:DELETE", API).with(&[OWN_TAGGED]),
];

/// No codes beyond the common ones.
pub const CODES: &[(&str, super::ErrorKind)] = &[];
const DEFAULT: &str = "$default";

/// The API as found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiObserved {
    pub id: String,
    pub endpoint: String,
}

/// Every API of this name that this owner made (more than one only after an interrupted create
/// on an API that accepts duplicate names).
async fn owned_apis(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<Vec<Api>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page =
            clients.apigateway.get_apis().set_next_token(token).send().await.map_err(map_sdk(SERVICE, "GetApis"))?;
        for api in page.items() {
            let tags: BTreeMap<String, String> = api.tags().cloned().unwrap_or_default().into_iter().collect();
            if api.name() == Some(name) && owner.owns(&tags) {
                found.push(api.clone());
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    found.sort_by(|a, b| a.created_date().cmp(&b.created_date()));
    Ok(found)
}

/// What is known of the API before looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known<'a> {
    /// Status recorded this id.
    Id(&'a str),
    /// The object's first apply: nothing was ever made for it, so there is nothing to search for.
    NeverMade,
    /// Neither: an earlier apply may have made it without recording it.
    Unknown,
}

/// Makes the API, its integration with `function_arn`, its `$default` route and stage exist.
/// `(name, known)`: the API's name and what is known of it. A recorded id is read directly while
/// it is still this owner's API of that name; otherwise every API in the region is searched (HTTP
/// APIs have no unique name to look up), duplicates left by an interrupted create are deleted,
/// keeping the oldest, and only when none is found is one made. On the first apply there is
/// nothing to search for.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_api(
    clients: &AwsClients,
    owner: &Owner,
    (name, known): (&str, Known<'_>),
    function_arn: &str,
    (tags, throttle): (&BTreeMap<String, String>, ThrottleSpec),
) -> CloudResult<ApiObserved> {
    let recorded = match known {
        Known::Id(id) => known_api(clients, owner, name, id).await?,
        Known::NeverMade | Known::Unknown => None,
    };
    let (api, made) = match (recorded, known) {
        (Some(api), _) => (api, false),
        (None, Known::NeverMade) => (create_api(clients, name, tags).await?, true),
        (None, Known::Id(_) | Known::Unknown) => (ensure_one_api(clients, owner, name, tags).await?, false),
    };
    // No listing holds integrations, routes or stages: read in full when due, at once on a change.
    // An API made just now has none, and they are made without a look first.
    let resource = format!("HTTP API {}", api.id);
    let desired = (function_arn, tags, format!("{throttle:?}"));
    if clients.inventories.deep.due(&resource, &desired) {
        let integration_id = ensure_integration(clients, (&api.id, made), function_arn).await?;
        ensure_default_route(clients, (&api.id, made), &format!("integrations/{integration_id}")).await?;
        ensure_default_stage(clients, (&api.id, made), tags, throttle).await?;
        clients.inventories.deep.done(&resource, &desired);
    }
    Ok(api)
}

/// What every name the operator gives an HTTP API starts with: the key of the region's listing.
const LISTED: &str = "blog-";

/// What the region's listing holds of an HTTP API until the next: its name, tags and endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedApi {
    name: Box<str>,
    tags: super::tags::TagList,
    endpoint: Box<str>,
}

impl ListedApi {
    fn of(api: &Api) -> Self {
        Self::from_parts(api.name(), api.tags(), api.api_endpoint())
    }

    /// From the fields `GetApis` and `GetApi` both answer with (in two SDK types).
    fn from_parts(name: Option<&str>, tags: Option<&HashMap<String, String>>, endpoint: Option<&str>) -> Self {
        Self {
            name: name.unwrap_or_default().into(),
            tags: tags.into_iter().flatten().collect(),
            endpoint: endpoint.unwrap_or_default().into(),
        }
    }
}

/// The region's HTTP APIs named `blog-…`, by id (`GetApis`, 500 a page).
async fn list_apis(clients: AwsClients) -> CloudResult<HashMap<String, ListedApi>> {
    let mut apis = HashMap::new();
    let mut token = None;
    loop {
        let page = clients.apigateway.get_apis().max_results("500").set_next_token(token).send().await;
        let page = page.map_err(map_sdk(SERVICE, "GetApis"))?;
        for api in page.items.unwrap_or_default().iter().filter(|a| a.name().is_some_and(|n| n.starts_with(LISTED))) {
            apis.insert(api.api_id().unwrap_or_default().to_owned(), ListedApi::of(api));
        }
        token = page.next_token;
        if token.is_none() {
            return Ok(apis);
        }
    }
}

/// The API of the recorded id, if it is still there, of this name and this owner's: from the
/// region's listing, or one read when the listing does not hold it (made since), instead of paging
/// through every API in the region.
async fn known_api(clients: &AwsClients, owner: &Owner, name: &str, id: &str) -> CloudResult<Option<ApiObserved>> {
    let listed = match clients.inventories.apis.get(LISTED, id, || list_apis(clients.clone())).await {
        Some(api) => Some(api),
        None => {
            let read = clients.apigateway.get_api().api_id(id).send().await.map_err(map_sdk(SERVICE, "GetApi"));
            super::found(read)?.map(|api| ListedApi::from_parts(api.name(), api.tags(), api.api_endpoint()))
        }
    };
    Ok(listed
        .filter(|api| &*api.name == name && api.tags.owned_by(owner))
        .map(|api| ApiObserved { id: id.to_owned(), endpoint: api.endpoint.into() }))
}

/// The oldest API of this name the owner made, or a new one; any other is a duplicate and goes.
async fn ensure_one_api(
    clients: &AwsClients,
    owner: &Owner,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> CloudResult<ApiObserved> {
    let mut apis = owned_apis(clients, owner, name).await?;
    for duplicate in apis.iter().skip(1) {
        tracing::warn!(api = duplicate.api_id(), "deleting a duplicate HTTP API");
        delete_api_id(clients, duplicate.api_id().unwrap_or_default()).await?;
    }
    if let Some(api) = apis.drain(..).next() {
        return Ok(ApiObserved { id: api.api_id.unwrap_or_default(), endpoint: api.api_endpoint.unwrap_or_default() });
    }
    create_api(clients, name, tags).await
}

/// `CreateApi` is not idempotent (names are not unique): the SDK does not retry it, so an answer
/// lost after the API was made fails this reconcile, and the next one searches and finds it.
async fn create_api(clients: &AwsClients, name: &str, tags: &BTreeMap<String, String>) -> CloudResult<ApiObserved> {
    let once = aws_sdk_apigatewayv2::config::Builder::default()
        .retry_config(aws_sdk_apigatewayv2::config::retry::RetryConfig::disabled());
    let created = clients
        .apigateway
        .create_api()
        .name(name)
        .protocol_type(ProtocolType::Http)
        .set_tags(Some(aws_tags(tags)))
        .customize()
        .config_override(once)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateApi"))?;
    Ok(ApiObserved { id: created.api_id.unwrap_or_default(), endpoint: created.api_endpoint.unwrap_or_default() })
}

fn aws_tags(tags: &BTreeMap<String, String>) -> HashMap<String, String> {
    tags.clone().into_iter().collect()
}

/// The AWS_PROXY integration (payload 2.0) with `function_arn`; returns its id.
async fn ensure_integration(clients: &AwsClients, (api_id, made): (&str, bool), function_arn: &str) -> CloudResult<String> {
    let integrations = match made {
        true => Vec::new(),
        false => {
            let read = clients.apigateway.get_integrations().api_id(api_id).send().await;
            read.map_err(map_sdk(SERVICE, "GetIntegrations"))?.items.unwrap_or_default()
        }
    };
    let found = integrations.iter().find(|i| {
        i.integration_type() == Some(&IntegrationType::AwsProxy) && i.integration_uri() == Some(function_arn)
    });
    if let Some(found) = found {
        return Ok(found.integration_id().unwrap_or_default().to_owned());
    }
    let created = clients
        .apigateway
        .create_integration()
        .api_id(api_id)
        .integration_type(IntegrationType::AwsProxy)
        .integration_uri(function_arn)
        .payload_format_version("2.0")
        .send()
        .await
        .map_err(map_sdk(SERVICE, "CreateIntegration"))?;
    Ok(created.integration_id.unwrap_or_default())
}

/// The `$default` route, pointed at `target`.
async fn ensure_default_route(clients: &AwsClients, (api_id, made): (&str, bool), target: &str) -> CloudResult<()> {
    let routes = match made {
        true => Vec::new(),
        false => {
            let read = clients.apigateway.get_routes().api_id(api_id).send().await;
            read.map_err(map_sdk(SERVICE, "GetRoutes"))?.items.unwrap_or_default()
        }
    };
    match routes.iter().find(|r| r.route_key() == Some(DEFAULT)) {
        Some(route) if route.target() == Some(target) => Ok(()),
        Some(route) => clients
            .apigateway
            .update_route()
            .api_id(api_id)
            .route_id(route.route_id().unwrap_or_default())
            .target(target)
            .send()
            .await
            .map(drop)
            .map_err(map_sdk(SERVICE, "UpdateRoute")),
        None => clients
            .apigateway
            .create_route()
            .api_id(api_id)
            .route_key(DEFAULT)
            .target(target)
            .send()
            .await
            .map(drop)
            .map_err(map_sdk(SERVICE, "CreateRoute")),
    }
}

/// The auto-deployed `$default` stage, throttled as `throttle` says (made so, or changed to it).
async fn ensure_default_stage(
    clients: &AwsClients,
    (api_id, made): (&str, bool),
    tags: &BTreeMap<String, String>,
    throttle: ThrottleSpec,
) -> CloudResult<()> {
    let stages = match made {
        true => Vec::new(),
        false => {
            let read = clients.apigateway.get_stages().api_id(api_id).send().await;
            read.map_err(map_sdk(SERVICE, "GetStages"))?.items.unwrap_or_default()
        }
    };
    let settings = route_settings(throttle);
    match stages.iter().find(|s| s.stage_name() == Some(DEFAULT)) {
        Some(stage) if throttled_as(stage.default_route_settings(), throttle) => Ok(()),
        Some(_) => clients
            .apigateway
            .update_stage()
            .api_id(api_id)
            .stage_name(DEFAULT)
            .default_route_settings(settings)
            .send()
            .await
            .map(drop)
            .map_err(map_sdk(SERVICE, "UpdateStage")),
        None => clients
            .apigateway
            .create_stage()
            .api_id(api_id)
            .stage_name(DEFAULT)
            .auto_deploy(true)
            .default_route_settings(settings)
            .set_tags(Some(aws_tags(tags)))
            .send()
            .await
            .map(drop)
            .map_err(map_sdk(SERVICE, "CreateStage")),
    }
}

fn route_settings(throttle: ThrottleSpec) -> aws_sdk_apigatewayv2::types::RouteSettings {
    aws_sdk_apigatewayv2::types::RouteSettings::builder()
        .throttling_rate_limit(f64::from(throttle.rate_per_second))
        .throttling_burst_limit(throttle.burst)
        .build()
}

/// Whether a stage's default route settings throttle as `throttle` says.
fn throttled_as(found: Option<&aws_sdk_apigatewayv2::types::RouteSettings>, throttle: ThrottleSpec) -> bool {
    found.is_some_and(|s| {
        s.throttling_burst_limit() == Some(throttle.burst)
            && s.throttling_rate_limit() == Some(f64::from(throttle.rate_per_second))
    })
}

async fn delete_api_id(clients: &AwsClients, id: &str) -> CloudResult<()> {
    gone_is_done(clients.apigateway.delete_api().api_id(id).send().await.map_err(map_sdk(SERVICE, "DeleteApi")))
}

/// Deletes every API of this name this owner made; none left counts as done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_api(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    for api in owned_apis(clients, owner, name).await? {
        delete_api_id(clients, api.api_id().unwrap_or_default()).await?;
    }
    Ok(())
}
