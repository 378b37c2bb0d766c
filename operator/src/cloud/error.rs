//! AWS failures, mapped once: [`CloudError`] and its [`ErrorKind`] decide between done, retry and
//! telling a person; `SdkError` never leaves `cloud/`.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an AWS call had: it decides between done, retry and tell the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource is not there (success for a delete).
    NotFound,
    /// A create found the name taken.
    AlreadyExists,
    /// Throttling, 5xx, timeouts, dropped connections: try again later.
    Transient,
    /// The credentials may not do this: a person must change IAM.
    AccessDenied,
    /// AWS refused the request's content: a person must change the spec or the environment.
    Invalid,
    /// A failure on this side before AWS answered (a request that cannot be built or signed): a
    /// bug or a broken environment, not worth a quick retry.
    Other,
}

/// One failed AWS call, with AWS's own code and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation} failed: {code}: {message}")]
pub struct CloudError {
    pub service: &'static str,
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
}

impl CloudError {
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Worth a retry soon (with backoff): throttling, 5xx, timeouts, a lost race, AWS still busy.
    /// Everything else waits for a person: a condition says why, and the object is looked at again
    /// only at the resync pace or when its spec changes.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// An error the adapter raises itself (a resource in an unexpected state, a name owned by
    /// someone else).
    #[must_use]
    pub fn local(service: &'static str, operation: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { service, operation, kind, code: "BlogOperator".to_owned(), message: message.into() }
    }

    /// A request the operator refuses before AWS would run it, for a reason a person acts on;
    /// `code` names the reason (see `apply::failure_reason`).
    #[must_use]
    pub fn refused(service: &'static str, operation: &'static str, code: &str, message: String) -> Self {
        Self { service, operation, kind: ErrorKind::Invalid, code: code.to_owned(), message }
    }

    /// A name this BlogDeployment would use is held by a resource without its ownership tags: a
    /// person must rename or remove it. `what` names the resource, e.g. "IAM role x".
    #[must_use]
    pub fn not_owned(service: &'static str, operation: &'static str, what: impl std::fmt::Display) -> Self {
        let message = format!("{what} exists but is not tagged as this BlogDeployment's");
        Self::refused(service, operation, NOT_OWNED, message)
    }

    /// A create that found its name taken ([`lost_create_race`]): the resource is there to be
    /// read, ours from a cut-off run or someone else's.
    #[must_use]
    pub fn is_name_taken(&self) -> bool {
        self.operation.starts_with("Create") && classify_in(self.service, &self.code, None) == ErrorKind::AlreadyExists
    }

    /// The name is held by a resource this owner did not make (see [`CloudError::not_owned`]).
    #[must_use]
    pub fn is_not_owned(&self) -> bool {
        self.code == NOT_OWNED
    }
}

/// The code of [`CloudError::not_owned`].
pub const NOT_OWNED: &str = "NotOwnedByThisBlogDeployment";

pub type CloudResult<T> = Result<T, CloudError>;

/// A create that found its name taken lost a race with an earlier, interrupted run, or its answer
/// was lost after AWS acted (the SDK's retry then finds the name taken): retry, and the next
/// look-up finds the resource and checks its ownership tags. [`map_sdk`] applies it to every SDK
/// `Create*` call, so no kind can forget it; the EC2 client's one create applies it after its own
/// retries.
#[must_use]
pub fn lost_create_race(err: CloudError) -> CloudError {
    if err.kind == ErrorKind::AlreadyExists && err.operation.starts_with("Create") {
        CloudError { kind: ErrorKind::Transient, ..err }
    } else {
        err
    }
}

/// A delete's result where "not found" means done: deletes are idempotent.
///
/// # Errors
/// Any failure other than NotFound.
pub fn gone_is_done<T>(result: CloudResult<T>) -> CloudResult<()> {
    match result {
        Err(err) if !err.is_not_found() => Err(err),
        _ => Ok(()),
    }
}

/// A lookup's result where "not found" is an answer, not a failure.
///
/// # Errors
/// Any failure other than NotFound.
pub fn found<T>(result: CloudResult<T>) -> CloudResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// The codes every service may answer, by what they mean here; a service's own codes live with its
/// adapter (`CODES`). Codes ending in `NotFound` are NotFound whatever their service.
const CODES: [(ErrorKind, &[&str]); 5] = [
    (ErrorKind::NotFound, &["ResourceNotFoundException", "NotFoundException", "ResourceNotFound"]),
    (
        ErrorKind::Transient,
        &[
            "Throttling",
            "ThrottlingException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "ProvisionedThroughputExceededException",
            "ServiceUnavailable",
            "ServiceUnavailableException",
            "InternalFailure",
            "InternalServerError",
            "ServiceException",
            "RequestTimeout",
        ],
    ),
    (ErrorKind::AlreadyExists, &["ResourceInUseException", "ResourceAlreadyExistsException", "ConflictException"]),
    (
        ErrorKind::AccessDenied,
        &[
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidSignatureException",
            "SignatureDoesNotMatch",
        ],
    ),
    (
        ErrorKind::Invalid,
        &[
            "ValidationException",
            "ValidationError",
            "InvalidParameterValueException",
            "InvalidParameterException",
            "InvalidParameterCombination",
            "MalformedPolicyDocument",
            "MalformedPolicyDocumentException",
            "BadRequestException",
            "InvalidInput",
            "InvalidParameterValue",
            "LimitExceeded",
            "LimitExceededException",
        ],
    ),
];

/// Classifies an AWS error code of `service`: the adapter's own codes first, then the common ones.
#[must_use]
pub fn classify_in(service: &str, code: &str, status: Option<u16>) -> ErrorKind {
    match super::codes_of(service).find(|(known, _)| *known == code) {
        Some((_, kind)) => *kind,
        None => classify(code, status),
    }
}

/// Classifies an AWS error code any service may answer; `status` is the HTTP status when there was
/// a response.
#[must_use]
pub fn classify(code: &str, status: Option<u16>) -> ErrorKind {
    if let Some((kind, _)) = CODES.iter().find(|(_, codes)| codes.contains(&code)) {
        return *kind;
    }
    if code.ends_with("NotFound") || code.ends_with("NotFoundException") {
        return ErrorKind::NotFound;
    }
    // An unknown code: the status class decides. An unknown 4xx (ECS ClientException, ELB
    // InvalidConfigurationRequest, ...) is AWS refusing this request; retrying it every few
    // seconds changes nothing.
    match status {
        Some(s) if s >= 500 || s == 429 => ErrorKind::Transient,
        Some(403) => ErrorKind::AccessDenied,
        Some(404) => ErrorKind::NotFound,
        Some(_) => ErrorKind::Invalid,
        None => ErrorKind::Transient,
    }
}

/// Maps an SDK error of one operation into a [`CloudError`]; the only place SDK errors are read.
pub fn map_sdk<E, R>(service: &'static str, operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    move |err| {
        let status = err.raw_response().map(HttpStatus::status_code);
        match &err {
            SdkError::ServiceError(service_err) => {
                let inner = service_err.err();
                let code = inner.code().unwrap_or("Unknown").to_owned();
                lost_create_race(CloudError {
                    service,
                    operation,
                    kind: classify_in(service, &code, status),
                    message: inner.message().map_or_else(|| inner.to_string(), str::to_owned),
                    code,
                })
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => CloudError {
                service,
                operation,
                kind: ErrorKind::Transient,
                code: "Unreachable".to_owned(),
                message: format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err)),
            },
            _ if std::error::Error::source(&err).is_some_and(is_withheld) => withheld(service, operation),
            _ => CloudError {
                service,
                operation,
                kind: ErrorKind::Other,
                code: "ClientError".to_owned(),
                message: format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err)),
            },
        }
    }
}

/// The code of a call a paused object's clients did not send.
pub const WITHHELD: &str = "Withheld";

/// A call not sent because the object is paused: a person lifts the pause, nothing to retry.
#[must_use]
pub fn withheld(service: &'static str, operation: &'static str) -> CloudError {
    let message = format!("paused: drift not repaired ({service} {operation} would change it)");
    CloudError { service, operation, kind: ErrorKind::Other, code: WITHHELD.to_owned(), message }
}

/// Whether the SDK refused the call because the object is paused ([`super::clients::Withheld`]).
fn is_withheld(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(current) = next {
        if current.is::<super::clients::Withheld>() {
            return true;
        }
        next = current.source();
    }
    false
}

/// The HTTP status of a raw response, whatever the response type.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_decide_retry_or_report() {
        assert_eq!(classify("ResourceNotFoundException", Some(400)), ErrorKind::NotFound);
        assert_eq!(classify_in("iam", "NoSuchEntity", Some(404)), ErrorKind::NotFound);
        assert_eq!(classify("InvalidGroup.NotFound", Some(400)), ErrorKind::NotFound);
        assert_eq!(classify("LoadBalancerNotFound", Some(400)), ErrorKind::NotFound);
        assert_eq!(classify_in("iam", "EntityAlreadyExists", Some(409)), ErrorKind::AlreadyExists);
        // A service's own codes are its adapter's: Route 53's is no other service's.
        assert_eq!(classify_in("route53", "PriorRequestNotComplete", Some(400)), ErrorKind::Transient);
        assert_eq!(classify_in("ecs", "PriorRequestNotComplete", Some(400)), ErrorKind::Invalid);
        // A create whose answer was lost finds its name taken on the SDK's retry: look it up again.
        for (service, operation, code) in [
            ("ec2", "CreateSecurityGroup", "InvalidGroup.Duplicate"),
            ("elasticloadbalancing", "CreateTargetGroup", "DuplicateTargetGroupName"),
            ("lambda", "CreateAlias", "ConflictException"),
        ] {
            let taken = CloudError {
                service,
                operation,
                kind: classify_in(service, code, Some(400)),
                code: code.into(),
                message: "x".into(),
            };
            assert!(lost_create_race(taken).is_retryable(), "{operation} {code}");
        }
        let not_a_create = CloudError::local("secretsmanager", "PutSecretValue", ErrorKind::AlreadyExists, "x");
        assert!(!lost_create_race(not_a_create).is_retryable());
        assert_eq!(classify("ThrottlingException", Some(400)), ErrorKind::Transient);
        // Lambda's "An update is in progress for resource" is a retry, not a 5-minute wait.
        let in_progress = CloudError {
            service: "lambda",
            operation: "UpdateFunctionConfiguration",
            kind: classify_in("lambda", "ResourceConflictException", Some(409)),
            code: "ResourceConflictException".into(),
            message: "An update is in progress for resource".into(),
        };
        assert!(in_progress.is_retryable());
        assert_eq!(classify("Whatever", Some(503)), ErrorKind::Transient);
        assert_eq!(classify("AccessDeniedException", Some(403)), ErrorKind::AccessDenied);
        assert_eq!(classify("InvalidParameterValueException", Some(400)), ErrorKind::Invalid);
        assert_eq!(classify("ClientException", Some(400)), ErrorKind::Invalid, "unknown 4xx: a person acts");
        assert_eq!(classify("Whatever", None), ErrorKind::Transient, "no response: try again");
        let err = CloudError::local("iam", "GetRole", ErrorKind::Transient, "x");
        assert!(err.is_retryable());
        assert!(!CloudError::local("iam", "GetRole", ErrorKind::Other, "x").is_retryable());
        assert!(!CloudError::local("iam", "GetRole", ErrorKind::AccessDenied, "x").is_retryable());
        let taken = CloudError::not_owned("iam", "GetRole", "IAM role r");
        assert_eq!(
            (taken.kind, taken.message.as_str()),
            (ErrorKind::Invalid, "IAM role r exists but is not tagged as this BlogDeployment's")
        );
    }
}
