//! Lambda: the function (image or S3 zip), its configuration, the version published from it and
//! the `live` alias that serves it (with its provisioned concurrency), and the permission that
//! lets one HTTP API invoke that alias.

use super::{Call, CREATED_TAGGED, OWN_TAGGED};
use std::collections::{BTreeMap, HashMap};

use aws_sdk_lambda::types::{
    AliasRoutingConfiguration, Architecture as SdkArchitecture, Environment, FunctionCode as SdkCode, FunctionConfiguration, LastUpdateStatus,
    PackageType, ProvisionedConcurrencyStatusEnum, Runtime, State, TracingConfig, TracingMode,
};
use sha2::{Digest, Sha256};

use super::inventory::Listed;
use super::{AwsClients, CloudError, CloudResult, ErrorKind, gone_is_done, map_sdk};
use crate::crd::Architecture;
use crate::desired::{DesiredFunction, FunctionCode, Owner};
pub use blog_core::rollout::function::{Alias, Route, Version};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "FunctionReads",
    "Effect": "Allow",
    "Action": [
      "lambda:GetFunction",
      "lambda:GetAlias",
      "lambda:GetPolicy",
      "lambda:GetFunctionConcurrency",
      "lambda:GetProvisionedConcurrencyConfig"
    ],
    "Resource": [
      "arn:aws:lambda:*:*:function:blog-*",
      "arn:aws:lambda:*:*:function:blog-*:*"
    ]
  },
  {
    "Sid": "FunctionListing",
    "Effect": "Allow",
    "Action": [
      "lambda:ListFunctions"
    ],
    "Resource": "*"
  },
  {
    "Sid": "FunctionsCreatedTagged",
    "Effect": "Allow",
    "Action": [
      "lambda:CreateFunction",
      "lambda:TagResource"
    ],
    "Resource": [
      "arn:aws:lambda:*:*:function:blog-*",
      "arn:aws:lambda:*:*:function:blog-*:*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:RequestTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  },
  {
    "Sid": "ChangeOnlyItsFunctions",
    "Effect": "Allow",
    "Action": [
      "lambda:UpdateFunctionConfiguration",
      "lambda:UpdateFunctionCode",
      "lambda:DeleteFunction",
      "lambda:TagResource",
      "lambda:PublishVersion",
      "lambda:CreateAlias",
      "lambda:UpdateAlias",
      "lambda:AddPermission",
      "lambda:RemovePermission",
      "lambda:PutFunctionConcurrency",
      "lambda:DeleteFunctionConcurrency",
      "lambda:PutProvisionedConcurrencyConfig",
      "lambda:DeleteProvisionedConcurrencyConfig",
      "lambda:InvokeFunction"
    ],
    "Resource": [
      "arn:aws:lambda:*:*:function:blog-*",
      "arn:aws:lambda:*:*:function:blog-*:*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceTag/app.kubernetes.io/managed-by": "blog-operator"
      }
    }
  }
]"#;

pub(crate) const SERVICE: &str = "lambda";

const FUNCTION: &str = "arn:aws:lambda:{region}:{account}:function:{function}";
const ALIAS_ARN: &str = "arn:aws:lambda:{region}:{account}:function:{function}:live";

/// The calls above as IAM sees them (see [`Call`]): created tagged, changed only with its tags
/// (Lambda checks `aws:ResourceTag` on the function).
pub const CALLS: &[Call] = &[
    Call::new("create the function", "lambda:CreateFunction", FUNCTION).with(&[CREATED_TAGGED]),
    Call::new("read it", "lambda:GetFunction", FUNCTION),
    Call::new("list the functions", "lambda:ListFunctions", "*"),
    Call::new("change it", "lambda:UpdateFunctionConfiguration", FUNCTION).with(&[OWN_TAGGED]),
    Call::new("change its code", "lambda:UpdateFunctionCode", FUNCTION).with(&[OWN_TAGGED]),
    Call::new("delete it", "lambda:DeleteFunction", FUNCTION).with(&[OWN_TAGGED]),
    Call::new("tag it", "lambda:TagResource", FUNCTION).with(&[OWN_TAGGED]),
    Call::new("publish a version", "lambda:PublishVersion", FUNCTION).with(&[OWN_TAGGED]),
    Call::new("read the alias", "lambda:GetAlias", ALIAS_ARN),
    Call::new(
        "check a new version before traffic",
        "lambda:InvokeFunction",
        "arn:aws:lambda:{region}:{account}:function:{function}:2",
    )
    .with(&[OWN_TAGGED]),
    Call::new("create the alias", "lambda:CreateAlias", ALIAS_ARN).with(&[OWN_TAGGED]),
    Call::new("move the alias", "lambda:UpdateAlias", ALIAS_ARN).with(&[OWN_TAGGED]),
    Call::new("read who may invoke it", "lambda:GetPolicy", ALIAS_ARN),
    Call::new("let the API invoke it", "lambda:AddPermission", ALIAS_ARN).with(&[OWN_TAGGED]),
    Call::new("drop a stale permission", "lambda:RemovePermission", ALIAS_ARN).with(&[OWN_TAGGED]),
    Call::new("read its concurrency", "lambda:GetFunctionConcurrency", FUNCTION),
    Call::new("reserve concurrency", "lambda:PutFunctionConcurrency", FUNCTION).with(&[OWN_TAGGED]),
    Call::new("release it", "lambda:DeleteFunctionConcurrency", FUNCTION).with(&[OWN_TAGGED]),
    Call::new("read provisioned concurrency", "lambda:GetProvisionedConcurrencyConfig", ALIAS_ARN),
    Call::new("provision concurrency", "lambda:PutProvisionedConcurrencyConfig", ALIAS_ARN).with(&[OWN_TAGGED]),
    Call::new("release it", "lambda:DeleteProvisionedConcurrencyConfig", ALIAS_ARN).with(&[OWN_TAGGED]),
];

/// Lambda answers ResourceConflictException both to a create whose name is taken and to an update
/// sent while the last one is still InProgress: either way, retry soon (a lost create race is
/// retried too, see `lost_create_race`).
pub const CODES: &[(&str, ErrorKind)] = &[("ResourceConflictException", ErrorKind::Transient)];
/// The permission statement the operator owns on each function.
pub const INVOKE_STATEMENT_ID: &str = "blog-operator-http-api";
/// The alias the HTTP API invokes. It moves to a new version only once `$LATEST` is fully updated,
/// so requests never reach a half-applied configuration, and provisioned concurrency lives on it.
pub const ALIAS: &str = "live";
/// Tag that records which S3 object a zip function was built from (Lambda does not say).
const CODE_TAG: &str = "blogs.serverless.dev/code";

/// How the function stands after this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionObserved {
    pub arn: String,
    /// `Active` when it can serve; `Pending`/`Updating` while Lambda works; `Failed` with a reason.
    pub state: FunctionState,
    /// Its reserved concurrency, as `GetFunction` reports it (none on a function just made).
    pub reserved_concurrency: Option<i32>,
    /// The revision read (`GetFunction`, [`revision`]); `None` for a function just made, or one
    /// taken from the listing as settled: found in full, Active and as desired at that revision
    /// less than a deep period ago ([`settled`]).
    pub revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionState {
    Active,
    Pending(String),
    Failed(String),
}

fn architecture(arch: Architecture) -> SdkArchitecture {
    match arch {
        Architecture::Arm64 => SdkArchitecture::Arm64,
        Architecture::X86_64 => SdkArchitecture::X8664,
    }
}

fn code_tag(code: &FunctionCode) -> String {
    match code {
        FunctionCode::Image(uri) => format!("image:{uri}"),
        FunctionCode::S3 { bucket, key } => format!("s3:{bucket}/{key}"),
    }
}

fn sdk_code(code: &FunctionCode) -> SdkCode {
    match code {
        FunctionCode::Image(uri) => SdkCode::builder().image_uri(uri).build(),
        FunctionCode::S3 { bucket, key } => SdkCode::builder().s3_bucket(bucket).s3_key(key).build(),
    }
}

/// Active tracing when the spec turns X-Ray on; `PassThrough` is Lambda's own default.
fn tracing_mode(function: &DesiredFunction) -> TracingMode {
    if function.tracing { TracingMode::Active } else { TracingMode::PassThrough }
}

fn tracing_config(function: &DesiredFunction) -> TracingConfig {
    TracingConfig::builder().mode(tracing_mode(function)).build()
}

fn environment(function: &DesiredFunction) -> Environment {
    Environment::builder().set_variables(Some(function.environment.clone().into_iter().collect())).build()
}

/// Lambda refuses a role IAM has not finished propagating: that clears up by itself.
fn role_not_ready(err: CloudError) -> CloudError {
    if err.kind == ErrorKind::Invalid && err.message.contains("cannot be assumed") {
        CloudError { kind: ErrorKind::Transient, ..err }
    } else {
        err
    }
}

/// Makes the function exist as desired. Changes one thing per reconcile (Lambda refuses a second
/// update while one is in progress) and reports `Pending` until Lambda is done.
///
/// # Errors
/// The AWS failure, or `Invalid` when the name belongs to someone else.
pub async fn ensure_function(
    clients: &AwsClients,
    owner: &Owner,
    function: &DesiredFunction,
    role_arn: &str,
    tags: &BTreeMap<String, String>,
) -> CloudResult<FunctionObserved> {
    let listed = listed_function(clients, &function.name).await;
    if let Listed::Found(listed) = &listed {
        let at = (fingerprint(function, role_arn), function.reserved_concurrency, Some(listed.revision.as_str()));
        if !clients.inventories.deep.due(&settled_resource(function), &at) {
            let arn = listed.arn.clone();
            let reserved_concurrency = function.reserved_concurrency;
            return Ok(FunctionObserved { arn, state: FunctionState::Active, reserved_concurrency, revision: None });
        }
    }
    // Not listed and never seen by this process: made without a look first (one made since the
    // listing answers that its name is taken, and is then read and claimed).
    let seen = format!("function {} seen", function.name);
    if listed == Listed::Absent && clients.inventories.deep.due(&seen, &()) {
        match create_function(clients, function, role_arn, tags).await {
            Err(err) if err.operation == "CreateFunction" && err.code == "ResourceConflictException" => {}
            created => {
                clients.inventories.deep.done(&seen, &());
                return created;
            }
        }
    }
    let found = clients.lambda.get_function().function_name(&function.name).send().await;
    let Some(found) = super::found(found.map_err(map_sdk(SERVICE, "GetFunction")))? else {
        return create_function(clients, function, role_arn, tags).await;
    };
    clients.inventories.deep.done(&seen, &());
    let found_tags: BTreeMap<String, String> = found.tags().cloned().unwrap_or_default().into_iter().collect();
    super::tags::claim(owner, &found_tags, SERVICE, "GetFunction", format!("Lambda function {}", function.name))?;
    let Some(config) = found.configuration() else {
        return Err(CloudError::local(
            SERVICE,
            "GetFunction",
            ErrorKind::Other,
            "GetFunction returned no configuration",
        ));
    };
    let arn = config.function_arn().unwrap_or_default().to_owned();
    let reserved_concurrency = found.concurrency().and_then(|c| c.reserved_concurrent_executions());
    let revision = Some(revision(config));
    let observed = |state| FunctionObserved { arn: arn.clone(), state, reserved_concurrency, revision: revision.clone() };
    let pending = |why: &str| Ok(observed(FunctionState::Pending(why.to_owned())));
    if config.state() == Some(&State::Pending) || config.last_update_status() == Some(&LastUpdateStatus::InProgress) {
        return pending("Lambda is still applying the last change");
    }
    if config.state() == Some(&State::Failed) {
        let why = config.state_reason().unwrap_or("the function failed").to_owned();
        return Ok(observed(FunctionState::Failed(why)));
    }

    let update = if config_differs(config, function, role_arn) {
        update_configuration(clients, function, role_arn).await?;
        "updating the function's configuration"
    } else if code_differs(config, &found_tags, function) {
        update_code(clients, function, &arn).await?;
        "updating the function's code"
    } else {
        return Ok(observed(FunctionState::Active));
    };
    pending(update)
}

/// What changes with every change of the function's configuration or code: when it was last
/// modified and its code's digest. (`RevisionId` would do on AWS, but it also changes with the
/// function's resource policy, and moto returns none.)
#[must_use]
pub fn revision(config: &FunctionConfiguration) -> String {
    format!("{} {}", config.last_modified().unwrap_or_default(), config.code_sha256().unwrap_or_default())
}

fn settled_resource(function: &DesiredFunction) -> String {
    format!("function {}", function.name)
}

/// Records that the function was read in full at `revision` and found Active and as desired, its
/// reserved concurrency too: until a deep period has passed, the function changes (a new
/// revision in the listing) or the desired state does, the listing stands for it.
pub fn settled(clients: &AwsClients, function: &DesiredFunction, role_arn: &str, revision: &str) {
    let at = (fingerprint(function, role_arn), function.reserved_concurrency, Some(revision));
    clients.inventories.deep.done(&settled_resource(function), &at);
}

/// What every name the operator gives a function starts with: the key of the region's listing.
const LISTED: &str = "blog-";

/// What a listing keeps of a function: all that tells whether it changed since its last full read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFunction {
    arn: String,
    /// [`revision`].
    revision: String,
}

/// The function of this name as the region's listing shows it (no state, tags or concurrency).
async fn listed_function(clients: &AwsClients, name: &str) -> Listed<ListedFunction> {
    if !name.starts_with(LISTED) {
        return Listed::Unknown;
    }
    clients.inventories.functions.look_up(LISTED, name, || list_functions(clients.clone())).await
}

/// The region's functions named `blog-…`, by name, in pages of 50 (`ListFunctions`).
async fn list_functions(clients: AwsClients) -> CloudResult<HashMap<String, ListedFunction>> {
    let mut functions = HashMap::new();
    let mut pages = clients.lambda.list_functions().max_items(50).into_paginator().send();
    while let Some(page) = pages.next().await {
        for config in page.map_err(map_sdk(SERVICE, "ListFunctions"))?.functions.unwrap_or_default() {
            if let Some(name) = config.function_name().filter(|n| n.starts_with(LISTED)) {
                let arn = config.function_arn().unwrap_or_default().to_owned();
                functions.insert(name.to_owned(), ListedFunction { arn, revision: revision(&config) });
            }
        }
    }
    Ok(functions)
}

fn config_differs(config: &FunctionConfiguration, function: &DesiredFunction, role_arn: &str) -> bool {
    let current_env: HashMap<String, String> =
        config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    config.memory_size() != Some(function.memory_mib)
        || config.timeout() != Some(function.timeout_seconds)
        || config.role() != Some(role_arn)
        || config.tracing_config().and_then(|t| t.mode()).unwrap_or(&TracingMode::PassThrough)
            != &tracing_mode(function)
        || current_env != function.environment.clone().into_iter().collect::<HashMap<_, _>>()
}

/// The code is recorded in a tag (an image digest or S3 object cannot be read back reliably).
fn code_differs(config: &FunctionConfiguration, tags: &BTreeMap<String, String>, function: &DesiredFunction) -> bool {
    tags.get(CODE_TAG) != Some(&code_tag(&function.code))
        || !config.architectures().contains(&architecture(function.architecture))
}

async fn update_configuration(clients: &AwsClients, function: &DesiredFunction, role_arn: &str) -> CloudResult<()> {
    clients
        .lambda
        .update_function_configuration()
        .function_name(&function.name)
        .memory_size(function.memory_mib)
        .timeout(function.timeout_seconds)
        .role(role_arn)
        .environment(environment(function))
        .tracing_config(tracing_config(function))
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "UpdateFunctionConfiguration"))
        .map_err(role_not_ready)
}

async fn update_code(clients: &AwsClients, function: &DesiredFunction, arn: &str) -> CloudResult<()> {
    let code = sdk_code(&function.code);
    clients
        .lambda
        .update_function_code()
        .function_name(&function.name)
        .set_image_uri(code.image_uri)
        .set_s3_bucket(code.s3_bucket)
        .set_s3_key(code.s3_key)
        .architectures(architecture(function.architecture))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "UpdateFunctionCode"))?;
    clients
        .lambda
        .tag_resource()
        .resource(arn)
        .tags(CODE_TAG, code_tag(&function.code))
        .send()
        .await
        .map(drop)
        .map_err(map_sdk(SERVICE, "TagResource"))
}

async fn create_function(
    clients: &AwsClients,
    function: &DesiredFunction,
    role_arn: &str,
    tags: &BTreeMap<String, String>,
) -> CloudResult<FunctionObserved> {
    let mut tags: HashMap<String, String> = tags.clone().into_iter().collect();
    tags.insert(CODE_TAG.to_owned(), code_tag(&function.code));
    let mut create = clients
        .lambda
        .create_function()
        .function_name(&function.name)
        .role(role_arn)
        .code(sdk_code(&function.code))
        .memory_size(function.memory_mib)
        .timeout(function.timeout_seconds)
        .architectures(architecture(function.architecture))
        .environment(environment(function))
        .tracing_config(tracing_config(function))
        .set_tags(Some(tags));
    create = match &function.code {
        FunctionCode::Image(_) => create.package_type(PackageType::Image),
        FunctionCode::S3 { .. } => {
            create.package_type(PackageType::Zip).runtime(Runtime::Providedal2023).handler("bootstrap")
        }
    };
    let created = create.send().await.map_err(map_sdk(SERVICE, "CreateFunction")).map_err(role_not_ready)?;
    let state = match created.state() {
        Some(State::Active) => FunctionState::Active,
        _ => FunctionState::Pending("Lambda is creating the function".to_owned()),
    };
    let arn = created.function_arn().unwrap_or_default().to_owned();
    Ok(FunctionObserved { arn, state, reserved_concurrency: None, revision: None })
}

/// Makes the function's reserved concurrency what the spec says (none: no reservation), from
/// `reported`, what [`ensure_function`] read; when that shows none it is asked for, since an
/// emulator (fakecloud) leaves it out of `GetFunction`.
///
/// # Errors
/// The AWS failure.
pub async fn ensure_reserved_concurrency(
    clients: &AwsClients,
    function: &str,
    (wanted, reported): (Option<i32>, Option<i32>),
) -> CloudResult<()> {
    let current = match reported {
        Some(current) => Some(current),
        None => {
            clients
                .lambda
                .get_function_concurrency()
                .function_name(function)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "GetFunctionConcurrency"))?
                .reserved_concurrent_executions
        }
    };
    match concurrency_step(wanted, current) {
        ConcurrencyStep::Keep => Ok(()),
        ConcurrencyStep::Put(want) => clients
            .lambda
            .put_function_concurrency()
            .function_name(function)
            .reserved_concurrent_executions(want)
            .send()
            .await
            .map(drop)
            .map_err(map_sdk(SERVICE, "PutFunctionConcurrency")),
        ConcurrencyStep::Delete => gone_is_done(
            clients
                .lambda
                .delete_function_concurrency()
                .function_name(function)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "DeleteFunctionConcurrency")),
        ),
    }
}

/// Lets exactly one HTTP API (any stage, method and route) invoke the function's [`ALIAS`].
///
/// # Errors
/// The AWS failure.
pub async fn ensure_invoke_permission(
    clients: &AwsClients,
    (function, serving): (&str, &str),
    source_arn: &str,
) -> CloudResult<()> {
    // No listing holds a function's policy: read in full when due, and at once for another API
    // or once the alias serves another version (an emulator ties the permission to the version).
    let resource = format!("policy of function {function}");
    let desired = (source_arn, serving);
    if !clients.inventories.deep.due(&resource, &desired) {
        return Ok(());
    }
    read_and_ensure_invoke_permission(clients, function, source_arn).await?;
    clients.inventories.deep.done(&resource, &desired);
    Ok(())
}

async fn read_and_ensure_invoke_permission(clients: &AwsClients, function: &str, source_arn: &str) -> CloudResult<()> {
    let policy = clients
        .lambda
        .get_policy()
        .function_name(function)
        .qualifier(ALIAS)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "GetPolicy"));
    let policy = super::found(policy)?.and_then(|out| out.policy).unwrap_or_default();
    let statements: Vec<serde_json::Value> = serde_json::from_str::<serde_json::Value>(&policy)
        .ok()
        .and_then(|p| p.get("Statement").and_then(|s| s.as_array().cloned()))
        .unwrap_or_default();
    let ours = statements.iter().find(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(INVOKE_STATEMENT_ID));
    if let Some(statement) = ours {
        if statement.to_string().contains(source_arn) {
            return Ok(());
        }
        clients
            .lambda
            .remove_permission()
            .function_name(function)
            .qualifier(ALIAS)
            .statement_id(INVOKE_STATEMENT_ID)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "RemovePermission"))?;
    }
    let added = clients
        .lambda
        .add_permission()
        .function_name(function)
        .qualifier(ALIAS)
        .statement_id(INVOKE_STATEMENT_ID)
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(source_arn)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "AddPermission"));
    match added {
        // The statement is there though the read missed it (a read racing the last write; fakecloud
        // after the alias moves): the next reconcile's read sees it and replaces it if stale.
        Err(err) if err.kind == ErrorKind::Transient && err.message.contains("already exists") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Deletes the function if it is ours; gone already counts as done.
///
/// # Errors
/// The AWS failure.
pub async fn delete_function(clients: &AwsClients, owner: &Owner, name: &str) -> CloudResult<()> {
    let found = clients.lambda.get_function().function_name(name).send().await.map_err(map_sdk(SERVICE, "GetFunction"));
    let Some(found) = super::found(found)? else { return Ok(()) };
    let tags: BTreeMap<String, String> = found.tags().cloned().unwrap_or_default().into_iter().collect();
    if !owner.owns(&tags) {
        tracing::warn!(function = name, "not deleting a Lambda function this BlogDeployment does not own");
        return Ok(());
    }
    gone_is_done(
        clients.lambda.delete_function().function_name(name).send().await.map_err(map_sdk(SERVICE, "DeleteFunction")),
    )
}

/// The ARN the HTTP API invokes: the function's, qualified by [`ALIAS`].
#[must_use]
pub fn alias_arn(function_arn: &str) -> String {
    let unqualified = function_arn.strip_suffix(":$LATEST").unwrap_or(function_arn);
    format!("{unqualified}:{ALIAS}")
}

/// A digest of everything the operator sets on the function. Published versions and the alias
/// carry it as their description, so a reconcile tells whether `live` serves the desired
/// configuration with one read, and publishes nothing when it does.
#[must_use]
pub fn fingerprint(function: &DesiredFunction, role_arn: &str) -> String {
    let mut hasher = Sha256::new();
    let environment: Vec<String> = function.environment.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // Tracing joins the digest only when on, so functions without it keep their fingerprint.
    let tracing = function.tracing.then(|| "tracing=Active".to_owned());
    for part in [
        code_tag(&function.code),
        function.memory_mib.to_string(),
        function.timeout_seconds.to_string(),
        format!("{:?}", function.architecture),
        role_arn.to_owned(),
        environment.join("\n"),
    ]
    .into_iter()
    .chain(tracing)
    {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest: String = hasher.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("blog-operator configuration {digest}")
}

/// The alias as last read while the function's configuration was `fingerprint`, a deep period ago
/// at most, else as read now (then `true`). Only the operator moves the alias, and it forgets what
/// it kept when it does ([`alias_moved`]): what is kept is what a read would find, unless someone
/// moved it by hand, which the next full read repairs.
///
/// # Errors
/// The AWS failure.
pub async fn alias(clients: &AwsClients, function: &str, fingerprint: &str) -> CloudResult<(Option<Alias>, bool)> {
    if let Some(kept) = clients.inventories.aliases.kept(function, &fingerprint) {
        return Ok((Some(kept), false));
    }
    Ok((read_alias(clients, function).await?, true))
}

/// Keeps the alias just read, or forgets it once the operator moved it.
pub fn alias_seen(clients: &AwsClients, function: &str, fingerprint: &str, read: Option<&Alias>, moved: bool) {
    match (moved, read) {
        (true, _) => clients.inventories.aliases.forget(function),
        (false, Some(alias)) => clients.inventories.aliases.keep(function, &fingerprint, alias.clone()),
        (false, None) => {}
    }
}

/// The alias as Lambda reports it (its version, that version's digest, the weighted second
/// version); `None` before it is made.
///
/// # Errors
/// The AWS failure.
async fn read_alias(clients: &AwsClients, function: &str) -> CloudResult<Option<Alias>> {
    let found = super::found(
        clients
            .lambda
            .get_alias()
            .function_name(function)
            .name(ALIAS)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "GetAlias")),
    )?;
    Ok(found.map(|alias| {
        let weights = alias.routing_config().and_then(|r| r.additional_version_weights());
        let canary = weights.and_then(|w| w.iter().next()).map(|(version, weight)| (version.clone(), percent(*weight)));
        Alias {
            version: alias.function_version().unwrap_or_default().to_owned(),
            revision: alias.description().unwrap_or_default().to_owned(),
            canary,
        }
    }))
}

/// A weight of 0.0–1.0 as a whole percentage.
fn percent(weight: f64) -> i32 {
    // Weights come from this operator, whole percentages; the cast cannot overflow.
    #[allow(clippy::cast_possible_truncation)]
    let percent = (weight * 100.0).round() as i32;
    percent.clamp(0, 100)
}

/// Publishes what `$LATEST` holds, with its digest as description. Call it only once `$LATEST` is
/// Active with the desired configuration. Cut off after publishing, the next run publishes again:
/// Lambda hands back the same version when nothing changed, so no version is made twice.
///
/// # Errors
/// The AWS failure.
pub async fn publish(clients: &AwsClients, function: &str, fingerprint: &str) -> CloudResult<Version> {
    let number = clients
        .lambda
        .publish_version()
        .function_name(function)
        .description(fingerprint)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "PublishVersion"))?
        .version
        .unwrap_or_default();
    Ok(Version { number, revision: fingerprint.to_owned() })
}

/// The execution role a published version runs under.
///
/// # Errors
/// The AWS failure.
pub async fn version_role(clients: &AwsClients, function: &str, version: &str) -> CloudResult<Option<String>> {
    let out = clients
        .lambda
        .get_function()
        .function_name(function)
        .qualifier(version)
        .send()
        .await
        .map_err(map_sdk(SERVICE, "GetFunction"))?;
    Ok(out.configuration().and_then(|c| c.role()).map(str::to_owned))
}

/// What a published version answers to an HTTP API `GET path` event, invoked directly (no reader
/// reaches it): its `statusCode`, 502 when the function itself failed.
///
/// # Errors
/// The AWS failure.
pub async fn answer_to_get(clients: &AwsClients, function: &str, version: &str, path: &str) -> CloudResult<u16> {
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "pre-traffic.blog-operator", "user-agent": "blog-operator pre-traffic check"},
        "requestContext": {
            "routeKey": "$default", "stage": "$default", "requestId": "blog-operator-pre-traffic",
            "apiId": "pre-traffic", "domainName": "pre-traffic.blog-operator", "domainPrefix": "pre-traffic",
            "accountId": "anonymous", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "blog-operator"}
        },
        "isBase64Encoded": false
    });
    let out = clients
        .lambda
        .invoke()
        .function_name(function)
        .qualifier(version)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        // Named by its IAM action (the API calls it Invoke), as the policy scan reads it.
        .map_err(map_sdk(SERVICE, "InvokeFunction"))?;
    if out.function_error().is_some() {
        return Ok(502);
    }
    let answer: serde_json::Value = out.payload().map(|p| serde_json::from_slice(p.as_ref())).transpose().ok().flatten().unwrap_or_default();
    Ok(answer.get("statusCode").and_then(serde_json::Value::as_u64).and_then(|s| u16::try_from(s).ok()).unwrap_or(502))
}

/// Points [`ALIAS`] where `route` says: its version (the digest as description) and the second
/// version's weight, or none. Makes the alias when `exists` is false.
///
/// # Errors
/// The AWS failure.
pub async fn route_alias(clients: &AwsClients, function: &str, route: &Route, exists: bool) -> CloudResult<()> {
    let weights: HashMap<String, f64> =
        route.canary.iter().map(|(version, percent)| (version.clone(), f64::from(*percent) / 100.0)).collect();
    let routing = AliasRoutingConfiguration::builder().set_additional_version_weights(Some(weights)).build();
    let (version, description) = (&route.primary.number, &route.primary.revision);
    if exists {
        clients
            .lambda
            .update_alias()
            .function_name(function)
            .name(ALIAS)
            .function_version(version)
            .description(description)
            .routing_config(routing)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "UpdateAlias"))?;
    } else {
        clients
            .lambda
            .create_alias()
            .function_name(function)
            .name(ALIAS)
            .function_version(version)
            .description(description)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "CreateAlias"))?;
    }
    Ok(())
}

pub use crate::status::Provisioned;

/// What to do about a concurrency setting (reserved or provisioned), from what is wanted and what
/// is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyStep {
    Keep,
    Put(i32),
    Delete,
}

/// Pure: put when the amount differs, delete when none is wanted.
#[must_use]
pub fn concurrency_step(wanted: Option<i32>, configured: Option<i32>) -> ConcurrencyStep {
    match (wanted, configured) {
        (want, now) if want == now => ConcurrencyStep::Keep,
        (Some(want), _) => ConcurrencyStep::Put(want),
        (None, _) => ConcurrencyStep::Delete,
    }
}

fn provisioned_state(
    requested: i32,
    status: Option<&ProvisionedConcurrencyStatusEnum>,
    reason: Option<&str>,
) -> Provisioned {
    match status {
        Some(ProvisionedConcurrencyStatusEnum::Ready) => Provisioned::Ready(requested),
        Some(ProvisionedConcurrencyStatusEnum::Failed) => {
            Provisioned::Failed(reason.unwrap_or("Lambda could not allocate provisioned concurrency").to_owned())
        }
        _ => Provisioned::Allocating(requested),
    }
}

/// Makes the alias's provisioned concurrency what the spec says (none: no configuration).
///
/// # Errors
/// The AWS failure.
pub async fn ensure_provisioned_concurrency(
    clients: &AwsClients,
    (function, serving): (&str, &str),
    wanted: Option<i32>,
) -> CloudResult<Provisioned> {
    // Found off or ready for the version the alias serves less than a deep period ago: taken as
    // still so. Allocating (or a new version, which Lambda allocates anew) is read every time.
    let resource = format!("provisioned concurrency of function {function}");
    let settled = (wanted, serving);
    if !clients.inventories.deep.due(&resource, &settled) {
        return Ok(wanted.map_or(Provisioned::Off, Provisioned::Ready));
    }
    let provisioned = read_and_ensure_provisioned_concurrency(clients, function, wanted).await?;
    if matches!(provisioned, Provisioned::Off | Provisioned::Ready(_)) {
        clients.inventories.deep.done(&resource, &settled);
    }
    Ok(provisioned)
}

async fn read_and_ensure_provisioned_concurrency(
    clients: &AwsClients,
    function: &str,
    wanted: Option<i32>,
) -> CloudResult<Provisioned> {
    let found = super::found(
        clients
            .lambda
            .get_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(ALIAS)
            .send()
            .await
            .map_err(map_sdk(SERVICE, "GetProvisionedConcurrencyConfig")),
    )?;
    let requested = found.as_ref().and_then(|c| c.requested_provisioned_concurrent_executions());
    match concurrency_step(wanted, requested) {
        ConcurrencyStep::Keep => Ok(match (found, wanted) {
            (Some(config), Some(want)) => provisioned_state(want, config.status(), config.status_reason()),
            _ => Provisioned::Off,
        }),
        ConcurrencyStep::Put(want) => {
            let out = clients
                .lambda
                .put_provisioned_concurrency_config()
                .function_name(function)
                .qualifier(ALIAS)
                .provisioned_concurrent_executions(want)
                .send()
                .await
                .map_err(map_sdk(SERVICE, "PutProvisionedConcurrencyConfig"))?;
            Ok(provisioned_state(want, out.status(), out.status_reason()))
        }
        ConcurrencyStep::Delete => {
            gone_is_done(
                clients
                    .lambda
                    .delete_provisioned_concurrency_config()
                    .function_name(function)
                    .qualifier(ALIAS)
                    .send()
                    .await
                    .map_err(map_sdk(SERVICE, "DeleteProvisionedConcurrencyConfig")),
            )?;
            Ok(Provisioned::Off)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alias_qualifies_the_unqualified_arn() {
        let arn = "arn:aws:lambda:us-west-1:123456789012:function:b-n-x-0123abcd";
        assert_eq!(alias_arn(arn), format!("{arn}:live"));
        assert_eq!(alias_arn(&format!("{arn}:$LATEST")), format!("{arn}:live"));
    }

    #[test]
    fn concurrency_changes_only_when_it_differs() {
        assert_eq!(concurrency_step(None, None), ConcurrencyStep::Keep);
        assert_eq!(concurrency_step(Some(5), Some(5)), ConcurrencyStep::Keep);
        assert_eq!(concurrency_step(Some(5), None), ConcurrencyStep::Put(5));
        assert_eq!(concurrency_step(Some(5), Some(2)), ConcurrencyStep::Put(5));
        assert_eq!(concurrency_step(None, Some(2)), ConcurrencyStep::Delete);
    }

    #[test]
    fn provisioned_status_maps_to_readiness() {
        assert_eq!(provisioned_state(3, Some(&ProvisionedConcurrencyStatusEnum::Ready), None), Provisioned::Ready(3));
        assert_eq!(
            provisioned_state(3, Some(&ProvisionedConcurrencyStatusEnum::InProgress), None),
            Provisioned::Allocating(3)
        );
        assert_eq!(
            provisioned_state(3, Some(&ProvisionedConcurrencyStatusEnum::Failed), Some("limit")),
            Provisioned::Failed("limit".into())
        );
    }

    #[test]
    fn the_fingerprint_follows_every_setting() {
        let owner = crate::desired::Owner { namespace: "n".into(), name: "b".into(), uid: "0123abcd".into() };
        let spec: crate::crd::BlogDeploymentSpec =
            serde_saphyr::from_str("image: b:1\nfunction: {memoryMiB: 1024}\n").expect("spec");
        let function = crate::desired::desired(&owner, &spec, &crate::desired::Inputs::region("us-west-1"))
            .function
            .expect("function");
        let base = fingerprint(&function, "role");
        assert!(base.len() <= 256, "Lambda descriptions hold 256 characters");
        assert_eq!(fingerprint(&function, "role"), base);
        assert_ne!(fingerprint(&function, "other-role"), base);
        let mut changed = function.clone();
        changed.memory_mib = 512;
        assert_ne!(fingerprint(&changed, "role"), base);
        let mut changed = function.clone();
        changed.code = FunctionCode::Image("b:2".into());
        assert_ne!(fingerprint(&changed, "role"), base);
        let mut changed = function;
        changed.environment.insert("X".into(), "1".into());
        assert_ne!(fingerprint(&changed, "role"), base);
    }
}
