//! The function variant's steps: its HTTP API (the front door), the image check, the log group,
//! the role, and the function with its concurrency, alias and invoke permission.

use super::{Removal, Stack};
use crate::cloud::{self, CloudError, CloudResult, ErrorKind};
use crate::desired::{self, DesiredFunction};
use crate::image::Runner;
use crate::status::{self, PartState, reason};
use blog_core::rollout::function as rollout;

/// The step runs only while the variant is enabled ([`super::Step::wanted`]).
fn wanted(stack: &Stack<'_>) -> CloudResult<DesiredFunction> {
    stack.desired.function.clone().ok_or_else(|| {
        CloudError::local("lambda", "GetFunction", ErrorKind::Other, "the function variant is not enabled")
    })
}

/// The HTTP API in front of the function's alias: made first, so its URL is known before the
/// function's settings are.
pub(super) async fn ensure_api(stack: &mut Stack<'_>) -> CloudResult<()> {
    let function = wanted(stack)?;
    let function_arn = stack.scope()?.arn("lambda", &format!("function:{}", function.name));
    let alias_arn = cloud::lambda::alias_arn(&function_arn);
    let known = known_api(stack);
    let (owner, tags) = (&stack.desired.owner, &stack.desired.tags);
    let settings = (tags, function.throttle);
    let api =
        cloud::apigateway::ensure_api(stack.clients, owner, (&function.api_name, known), &alias_arn, settings).await?;
    stack.resources.api_id = Some(api.id.clone());
    stack.api = Some(api);
    Ok(())
}

fn known_api<'s>(stack: &'s Stack<'_>) -> cloud::apigateway::Known<'s> {
    use cloud::apigateway::Known;
    match (stack.recorded.api_id.as_deref(), stack.first) {
        (Some(id), _) => Known::Id(id),
        (None, true) => Known::NeverMade,
        (None, false) => Known::Unknown,
    }
}

/// The API; its routes, integration and stage go with it.
pub(super) async fn remove_api(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::apigateway::delete_api(removal.clients, &removal.owner, &removal.names.api).await
}

/// An image Lambda cannot run is refused before anything is made for it.
pub(super) async fn check_image(stack: &mut Stack<'_>) -> CloudResult<()> {
    let function = wanted(stack)?;
    if let desired::FunctionCode::Image(image) = &function.code {
        cloud::ecr::check_runnable(stack.clients, stack.scope()?, image, Runner::Lambda, function.architecture).await?;
    }
    Ok(())
}

pub(super) async fn ensure_log_group(stack: &mut Stack<'_>) -> CloudResult<()> {
    let function = wanted(stack)?;
    let (retention, tags) = (stack.desired.log_retention_days, &stack.desired.tags);
    cloud::logs::ensure_log_group(stack.clients, &stack.desired.owner, &function.log_group, retention, tags).await?;
    Ok(())
}

pub(super) async fn remove_log_group(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::logs::delete_log_group(removal.clients, &removal.owner, &removal.names.function_log_group).await
}

pub(super) async fn ensure_role(stack: &mut Stack<'_>) -> CloudResult<()> {
    let role = stack.roles()?.function.as_ref().ok_or_else(|| super::container::missing_role("function"))?;
    let (owner, tags) = (&stack.desired.owner, &stack.desired.tags);
    stack.function_role = Some(cloud::iam::ensure_role(stack.clients, owner, role, tags).await?);
    Ok(())
}

pub(super) async fn remove_role(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::iam::delete_role(removal.clients, &removal.owner, &removal.names.function_role).await
}

/// The function and its reserved concurrency; once `$LATEST` is fully applied, the alias, the
/// API's permission to invoke it and its provisioned concurrency. Until then the alias keeps
/// serving the last version.
pub(super) async fn ensure_function(stack: &mut Stack<'_>) -> CloudResult<()> {
    let (function, clients) = (wanted(stack)?, stack.clients);
    let role_arn = stack.function_role.clone().ok_or_else(|| super::unknown("the function's role"))?;
    let (owner, tags) = (&stack.desired.owner, &stack.desired.tags);
    let observed = cloud::lambda::ensure_function(clients, owner, &function, &role_arn, tags).await?;
    stack.resources.function_arn = Some(observed.arn.clone());
    // Taken from the listing as settled, the reserved concurrency was found as desired too.
    let read_in_full = observed.revision.is_some() || observed.state != cloud::lambda::FunctionState::Active;
    if read_in_full {
        let concurrency = (function.reserved_concurrency, observed.reserved_concurrency);
        cloud::lambda::ensure_reserved_concurrency(clients, &function.name, concurrency).await?;
    }
    let state = match observed.state {
        cloud::lambda::FunctionState::Pending(why) => PartState::not_ready(reason::PROGRESSING, why),
        cloud::lambda::FunctionState::Failed(why) => {
            PartState::not_ready(reason::FUNCTION_FAILED, status::tenant_message(&why))
        }
        cloud::lambda::FunctionState::Active => {
            if let Some(revision) = &observed.revision {
                cloud::lambda::settled(clients, &function, &role_arn, revision);
            }
            serve(stack, &function, &role_arn).await?
        }
    };
    stack.reached.function = Some(state);
    Ok(())
}

/// Moves the alias one step of the rollout toward what `$LATEST` holds and lets the API invoke it.
async fn serve(stack: &mut Stack<'_>, function: &DesiredFunction, role_arn: &str) -> CloudResult<PartState> {
    let serving = release(stack, function, role_arn).await?;
    let clients = stack.clients;
    let api = stack.api.as_ref().ok_or_else(|| super::unknown("the function's API"))?;
    let source_arn = desired::api_source_arn(stack.scope()?, &api.id);
    cloud::lambda::ensure_invoke_permission(clients, (&function.name, &serving), &source_arn).await?;
    let provisioned = cloud::lambda::ensure_provisioned_concurrency(
        clients,
        (&function.name, &serving),
        function.provisioned_concurrency,
    )
    .await?;
    let state = status::function_state(&api.endpoint, cloud::lambda::ALIAS, &serving, &provisioned);
    let rolling = stack.function_rollout.as_ref().and_then(|moved| moved.record.as_ref());
    Ok(rolling.and_then(status::rollout_state).unwrap_or(state))
}

/// The alias's next move under the function's release ([`rollout::next`]): publishes the
/// configuration only when neither the alias nor the record names its version yet, reads the
/// stable version's role only before weighting a new one, and invokes the new version with the
/// pre-traffic path before its first reader. Returns the version most readers get.
async fn release(stack: &mut Stack<'_>, function: &DesiredFunction, role_arn: &str) -> CloudResult<String> {
    let (clients, name) = (stack.clients, function.name.as_str());
    let now = || k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let release = function.release.clone().unwrap_or_else(|| rollout::Release::at_once(now()));
    let fingerprint = cloud::lambda::fingerprint(function, role_arn);
    let (alias, read_now) = cloud::lambda::alias(clients, name, &fingerprint).await?;
    let target = match rollout::known_version(alias.as_ref(), release.record.as_ref(), &fingerprint) {
        Some(number) => cloud::lambda::Version { number, revision: fingerprint.clone() },
        None => cloud::lambda::publish(clients, name, &fingerprint).await?,
    };
    let same_role = match alias.as_ref().filter(|a| starts_weighting(a, &target, &release)) {
        Some(stable) => cloud::lambda::version_role(clients, name, &stable.version).await?.as_deref() == Some(role_arn),
        None => true,
    };
    let mut moved = rollout::next(alias.as_ref(), &target, &release.facts(same_role));
    if let Some(path) = release.policy.pre_traffic.as_deref().filter(|_| rollout::reaches_readers(&moved)) {
        let status = cloud::lambda::answer_to_get(clients, name, &target.number, path).await?;
        if !(200..300).contains(&status) {
            moved = rollout::refused_before_traffic(moved, &format!("GET {path} answered {status}"));
        }
    }
    let moving = moved.route.is_some();
    if moving || read_now {
        cloud::lambda::alias_seen(clients, name, &fingerprint, alias.as_ref().filter(|_| read_now), moving);
    }
    if let Some(route) = &moved.route {
        cloud::lambda::route_alias(clients, name, route, alias.is_some()).await?;
    }
    let serving = moved.route.as_ref().map(|r| r.primary.number.clone());
    let serving = serving.or_else(|| alias.map(|a| a.version)).unwrap_or_default();
    stack.function_rollout = Some(moved);
    Ok(serving)
}

/// Whether this move may put a second version on the alias: the one case where Lambda's
/// one-role rule matters.
fn starts_weighting(alias: &rollout::Alias, target: &cloud::lambda::Version, release: &rollout::Release) -> bool {
    release.policy.is_progressive()
        && alias.revision != target.revision
        && alias.canary.as_ref().is_none_or(|(version, _)| *version != target.number)
}

/// The function; its permission, versions and alias go with it.
pub(super) async fn remove_function(removal: &Removal<'_>) -> CloudResult<()> {
    cloud::lambda::delete_function(removal.clients, &removal.owner, &removal.names.function).await
}
