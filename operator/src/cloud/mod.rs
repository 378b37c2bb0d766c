//! The thin adapter over the AWS SDK: one module per service, errors mapped once here.
//! `SdkError` never leaves this module tree; callers see [`CloudError`] and its [`ErrorKind`].

pub mod budget;
pub mod inventory;
pub mod memo;

mod clients;
mod error;
pub mod tags;

pub use clients::{AwsClients, Cloud, Timeouts};

/// Registers the adapters, one name a line: the module, its IAM statements (in the order the
/// shipped policy lists them) and the error codes its service answers beyond the common ones.
macro_rules! adapters {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Each adapter's IAM statements.
        const IAM: &[&str] = &[$($module::IAM),*];

        /// Every call the adapters declare, as IAM sees it.
        pub fn declared_calls() -> impl Iterator<Item = &'static Call> {
            [$($module::CALLS),*].into_iter().flatten()
        }

        /// The codes `service` answers beyond the common ones, from every adapter that speaks it.
        fn codes_of(service: &str) -> impl Iterator<Item = &'static (&'static str, ErrorKind)> + '_ {
            [$(($module::SERVICE, $module::CODES)),*]
                .into_iter()
                .filter(move |(speaks, _)| *speaks == service)
                .flat_map(|(_, codes)| codes.iter())
        }
    };
}

adapters!(
    dynamodb,
    iam,
    logs,
    lambda,
    ecr,
    apigateway,
    apidomain,
    ecs,
    elb,
    ec2,
    autoscaling,
    cloudwatch,
    secrets,
    acm,
    route53,
    wafv2,
);

/// One call an adapter makes, as IAM sees it, declared beside the call for the policy evaluator
/// test: the action, the resource's ARN and the request context the call carries. The resource
/// and the context's values (JSON) may hold `{placeholders}`: `{region}`, `{account}`, `{host}`
/// (a host of the object's domain), `{boundary}` (the roles' permissions boundary), `{role_path}`
/// ([`crate::desired::ROLE_PATH`]) and the fields
/// of [`crate::desired::Names`] (`{table}`, `{function}`, `{load_balancer}`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// What the call is for, in a few words.
    pub what: &'static str,
    pub action: &'static str,
    pub resource: &'static str,
    pub context: &'static [(&'static str, &'static str)],
}

impl Call {
    #[must_use]
    pub const fn new(what: &'static str, action: &'static str, resource: &'static str) -> Self {
        Self { what, action, resource, context: &[] }
    }

    /// The call with this request context.
    #[must_use]
    pub const fn with(self, context: &'static [(&'static str, &'static str)]) -> Self {
        Self { context, ..self }
    }
}

/// A create that tags its resource as the operator's (`aws:RequestTag`).
pub const CREATED_TAGGED: (&str, &str) = ("aws:RequestTag/app.kubernetes.io/managed-by", r#""blog-operator""#);
/// A call on a resource tagged as the operator's (`aws:ResourceTag`).
pub const OWN_TAGGED: (&str, &str) = ("aws:ResourceTag/app.kubernetes.io/managed-by", r#""blog-operator""#);

/// The operator's own IAM policy, assembled from the statements each adapter declares beside its
/// calls. `manifests/iam/operator-policy.json` is this, generated (`cargo run -p blog-operator
/// --bin iamgen`) and checked in; a test fails when it is stale.
///
/// Statements that are not JSON are left out, which the staleness test shows at once.
#[must_use]
pub fn operator_policy() -> serde_json::Value {
    let parse = |text: &&str| serde_json::from_str::<Vec<serde_json::Value>>(text).unwrap_or_default();
    let statements: Vec<serde_json::Value> = IAM.iter().flat_map(parse).collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

/// [`operator_policy`] as the checked-in file holds it: each adapter's statements as written
/// there, keys in their order.
#[must_use]
pub fn operator_policy_file() -> String {
    let statements: Vec<String> = IAM
        .iter()
        .map(|text| {
            let inner = text.trim().trim_start_matches('[').trim_end_matches(']').trim_matches('\n');
            inner.lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
        })
        .collect();
    format!("{{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n{}\n  ]\n}}\n", statements.join(",\n"))
}

pub use error::{
    CloudError, CloudResult, ErrorKind, HttpStatus, WITHHELD, classify, classify_in, found, gone_is_done,
    lost_create_race, map_sdk,
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_operator_policy_is_the_adapters_statements() {
        let shipped = include_str!("../../../manifests/iam/operator-policy.json");
        let parsed: serde_json::Value = serde_json::from_str(&super::operator_policy_file()).expect("JSON");
        assert_eq!(parsed, super::operator_policy(), "the file and the statements say the same");
        assert!(
            shipped == super::operator_policy_file(),
            "manifests/iam/operator-policy.json is stale: cargo run -p blog-operator --bin iamgen > manifests/iam/operator-policy.json"
        );
    }
}
