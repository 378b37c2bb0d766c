//! The full desired AWS state of one BlogDeployment: names, tags, policies and settings of every
//! resource. Pure: no client, no clock; the apply step compares it with what it observes.
//!
//! Names derive from namespace, name and UID only — never from the spec — so cleanup can find every
//! resource even when the spec is invalid or a variant was disabled, and a BlogDeployment deleted and
//! made again under the same name never adopts its predecessor's leftovers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::crd::{Architecture, BillingMode, BlogDeploymentSpec, DeletionPolicy};

/// Tag keys every resource carries.
pub const OWNER_TAG: &str = "blogs.serverless.dev/owner";
pub const UID_TAG: &str = "blogs.serverless.dev/uid";
pub const MANAGED_BY_TAG: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "blog-operator";

/// How long the variants' logs are kept.
pub const LOG_RETENTION_DAYS: i32 = 14;

/// Which BlogDeployment a resource belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// `namespace/name`, the value of the owner tag.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The tags every resource of this owner carries.
    #[must_use]
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (OWNER_TAG.to_owned(), self.key()),
            (UID_TAG.to_owned(), self.uid.clone()),
            (MANAGED_BY_TAG.to_owned(), MANAGED_BY.to_owned()),
        ])
    }

    /// Whether tags found on a resource say this owner made it.
    #[must_use]
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(UID_TAG) == Some(&self.uid) && tags.get(OWNER_TAG) == Some(&self.key())
    }
}

/// Every name the operator uses for one owner, enabled or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub table: String,
    pub function: String,
    pub function_role: String,
    pub function_log_group: String,
    pub api: String,
    pub cluster: String,
    pub service: String,
    pub task_family: String,
    pub execution_role: String,
    pub task_role: String,
    pub container_log_group: String,
    /// ALB and target group names: at most 32 characters.
    pub load_balancer: String,
    pub target_group: String,
    pub lb_security_group: String,
    pub task_security_group: String,
}

/// Lowercase letters, digits and single hyphens; at most `max` characters, no hyphen at either end.
fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_end_matches('-').to_owned()
}

impl Names {
    #[must_use]
    pub fn for_owner(owner: &Owner) -> Self {
        let uid8: String = owner.uid.chars().filter(char::is_ascii_hexdigit).take(8).collect::<String>().to_lowercase();
        let who = format!("{}-{}", owner.namespace, owner.name);
        // IAM role names stop at 64 characters, Lambda function names at 64, ALB/TG names at 32.
        let base = format!("blog-{}-{uid8}", slug(&who, 40));
        let short = format!("b-{}-{uid8}", slug(&who, 20));
        Self {
            table: base.clone(),
            function: base.clone(),
            function_role: format!("{base}-fn"),
            function_log_group: format!("/aws/lambda/{base}"),
            api: base.clone(),
            cluster: base.clone(),
            service: base.clone(),
            task_family: base.clone(),
            execution_role: format!("{base}-exec"),
            task_role: format!("{base}-task"),
            container_log_group: format!("/ecs/{base}"),
            load_balancer: short.clone(),
            target_group: short,
            lb_security_group: format!("{base}-alb"),
            task_security_group: format!("{base}-tasks"),
        }
    }
}

/// The DynamoDB table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTable {
    pub name: String,
    pub billing_mode: BillingMode,
    pub read_capacity_units: Option<i64>,
    pub write_capacity_units: Option<i64>,
    pub deletion_policy: DeletionPolicy,
}

/// Where the Lambda function's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionCode {
    Image(String),
    S3 { bucket: String, key: String },
}

/// The Lambda variant: role, log group, function and HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredFunction {
    pub name: String,
    pub role_name: String,
    pub log_group: String,
    pub api_name: String,
    pub code: FunctionCode,
    pub memory_mib: i32,
    pub timeout_seconds: i32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<i32>,
    pub provisioned_concurrency: Option<i32>,
}

/// The container variant: roles, log group, cluster, task definition, security groups, load
/// balancer, target group, listener and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredContainer {
    pub image: String,
    pub cpu: i32,
    pub memory_mib: i32,
    pub port: i32,
    pub desired_count: i32,
    pub health_check_path: String,
    /// The VPC and subnets named in the spec; `None` means the region's default VPC.
    pub vpc_id: Option<String>,
    pub subnet_ids: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Task-count scaling; when set, Application Auto Scaling owns the running count.
    pub autoscaling: Option<crate::crd::AutoscalingSpec>,
}

/// The one container in the task definition.
pub const CONTAINER_NAME: &str = "blog";
/// The load balancer's listener port.
pub const LISTENER_PORT: i32 = 80;

/// Everything one BlogDeployment should have in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub region: String,
    pub owner: Owner,
    pub names: Names,
    pub tags: BTreeMap<String, String>,
    pub table: DesiredTable,
    pub function: Option<DesiredFunction>,
    pub container: Option<DesiredContainer>,
    /// The permissions boundary of the roles (an operator setting, not the spec's).
    pub role_permissions_boundary: Option<String>,
}

/// The desired state of a validated spec.
#[must_use]
pub fn desired(owner: &Owner, spec: &BlogDeploymentSpec, default_region: &str) -> Desired {
    let names = Names::for_owner(owner);
    let table = DesiredTable {
        name: names.table.clone(),
        billing_mode: spec.table.billing_mode,
        read_capacity_units: spec.table.read_capacity_units,
        write_capacity_units: spec.table.write_capacity_units,
        deletion_policy: spec.table.deletion_policy,
    };
    let function = spec.function_enabled().map(|f| DesiredFunction {
        name: names.function.clone(),
        role_name: names.function_role.clone(),
        log_group: names.function_log_group.clone(),
        api_name: names.api.clone(),
        code: match &f.code {
            Some(s3) => FunctionCode::S3 { bucket: s3.s3_bucket.clone(), key: s3.s3_key.clone() },
            None => FunctionCode::Image(spec.image.clone()),
        },
        memory_mib: f.memory_mib,
        timeout_seconds: f.timeout_seconds,
        architecture: f.architecture,
        environment: BTreeMap::from([("TABLE_NAME".to_owned(), names.table.clone())]),
        reserved_concurrency: f.reserved_concurrency,
        provisioned_concurrency: f.provisioned_concurrency,
    });
    let container = spec.container_enabled().map(|c| DesiredContainer {
        image: spec.image.clone(),
        cpu: c.cpu,
        memory_mib: c.memory_mib,
        port: c.port,
        desired_count: c.desired_count,
        health_check_path: c.health_check_path.clone(),
        vpc_id: c.network.vpc_id.clone(),
        subnet_ids: c.network.subnet_ids.clone(),
        autoscaling: c.autoscaling.clone(),
        environment: BTreeMap::from([
            ("TABLE_NAME".to_owned(), names.table.clone()),
            ("PORT".to_owned(), c.port.to_string()),
        ]),
    });
    Desired {
        region: spec.region.clone().unwrap_or_else(|| default_region.to_owned()),
        owner: owner.clone(),
        tags: owner.tags(),
        names,
        table,
        function,
        container,
        role_permissions_boundary: None,
    }
}

/// The task role's policy: the blog's item actions on this one table and its index.
#[must_use]
pub fn task_policy(table_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "BlogTable", "Effect": "Allow", "Action": TABLE_ACTIONS,
             "Resource": [table_arn, format!("{table_arn}/index/*")]}
        ]
    })
}

/// The task execution role's policy: write the service's log group, and pull the image when it
/// lives in Amazon ECR (that one repository only; `GetAuthorizationToken` has no resource scope).
#[must_use]
pub fn execution_policy(log_group_arn: &str, image: &str) -> Value {
    let mut statements = vec![json!({
        "Sid": "OwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [format!("{log_group_arn}:*")]
    })];
    if let Some(repository) = ecr_repository_arn(image) {
        statements.push(
            json!({"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}),
        );
        statements.push(json!({
            "Sid": "PullImage", "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": [repository]
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The ARN of the ECR repository an image reference names, if it names one
/// (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`).
#[must_use]
pub fn ecr_repository_arn(image: &str) -> Option<String> {
    let (host, path) = image.split_once('/')?;
    let mut parts = host.split('.');
    let (account, dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if dkr != "dkr" || ecr != "ecr" || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let repository = path.split(['@']).next()?;
    let repository = match repository.rfind(':') {
        Some(i) if !repository[i..].contains('/') => &repository[..i],
        _ => repository,
    };
    Some(format!("arn:aws:ecr:{region}:{account}:repository/{repository}"))
}

/// The item actions the blog service uses, and nothing else.
pub const TABLE_ACTIONS: [&str; 5] =
    ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"];

/// Trust policy letting one AWS service assume a role.
#[must_use]
pub fn trust_policy(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
}

/// The function role's inline policy: the blog's item actions on this one table (and its list
/// index), and writing to its own log group.
#[must_use]
pub fn function_policy(table_arn: &str, log_group_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "BlogTable", "Effect": "Allow", "Action": TABLE_ACTIONS,
             "Resource": [table_arn, format!("{table_arn}/index/*")]},
            {"Sid": "OwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [format!("{log_group_arn}:*")]}
        ]
    })
}

/// The ARN of a log group from its name (`arn:aws:logs:region:account:log-group:name`).
#[must_use]
pub fn log_group_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{name}")
}

/// The account id inside an ARN (`arn:partition:service:region:account:...`).
#[must_use]
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The region inside an ARN (`arn:partition:service:region:account:...`).
#[must_use]
pub fn region_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The `execute-api` source ARN that may invoke the function: any stage, method and route of one API.
#[must_use]
pub fn api_source_arn(region: &str, account: &str, api_id: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner { namespace: "blogs".into(), name: "demo".into(), uid: "1A2B3C4D-0000-4000-8000-000000000000".into() }
    }

    fn spec(yaml: &str) -> BlogDeploymentSpec {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    #[test]
    fn names_are_deterministic_and_within_aws_limits() {
        let names = Names::for_owner(&owner());
        assert_eq!(names.table, "blog-blogs-demo-1a2b3c4d");
        assert_eq!(names.function_role, "blog-blogs-demo-1a2b3c4d-fn");
        assert_eq!(names.load_balancer, "b-blogs-demo-1a2b3c4d");
        assert_eq!(names.function_log_group, "/aws/lambda/blog-blogs-demo-1a2b3c4d");
        assert_eq!(Names::for_owner(&owner()), names);

        let long = Owner {
            namespace: "a-very-long-namespace-name-for-testing".into(),
            name: "Some.Blog_With--odd---characters-and-a-long-name-too".into(),
            uid: owner().uid,
        };
        let names = Names::for_owner(&long);
        for role in [&names.function_role, &names.execution_role, &names.task_role] {
            assert!(role.len() <= 64, "{role}");
        }
        assert!(names.function.len() <= 64);
        for short in [&names.load_balancer, &names.target_group] {
            assert!(short.len() <= 32 && !short.contains("--") && !short.ends_with('-'), "{short}");
        }
        assert!(names.table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }

    #[test]
    fn the_uid_separates_same_named_owners() {
        let again = Owner { uid: "ffffffff-0000-4000-8000-000000000000".into(), ..owner() };
        assert_ne!(Names::for_owner(&owner()).table, Names::for_owner(&again).table);
    }

    #[test]
    fn ownership_needs_both_tags() {
        let owner = owner();
        assert!(owner.owns(&owner.tags()));
        let mut other = owner.tags();
        other.insert(UID_TAG.into(), "someone-else".into());
        assert!(!owner.owns(&other));
        assert!(!owner.owns(&BTreeMap::new()));
    }

    #[test]
    fn desired_state_follows_the_spec() {
        let d = desired(
            &owner(),
            &spec("image: repo/blog:2\nfunction: {memoryMiB: 1024, timeoutSeconds: 30, architecture: x86_64}\n"),
            "us-east-1",
        );
        assert_eq!(d.region, "us-east-1");
        assert_eq!(d.table.deletion_policy, DeletionPolicy::Retain);
        let f = d.function.expect("function enabled");
        assert_eq!(f.code, FunctionCode::Image("repo/blog:2".into()));
        assert_eq!((f.memory_mib, f.timeout_seconds, f.architecture), (1024, 30, Architecture::X86_64));
        assert_eq!(f.environment["TABLE_NAME"], "blog-blogs-demo-1a2b3c4d");

        let s3 = desired(
            &owner(),
            &spec("image: blog:1\nregion: eu-west-1\nfunction: {code: {s3Bucket: b, s3Key: k.zip}}\n"),
            "us-east-1",
        );
        assert_eq!(s3.region, "eu-west-1");
        assert_eq!(s3.function.map(|f| f.code), Some(FunctionCode::S3 { bucket: "b".into(), key: "k.zip".into() }));
        assert!(desired(&owner(), &spec("image: b\nfunction: {enabled: false}\n"), "r").function.is_none());
    }

    #[test]
    fn the_container_policies_name_only_their_table_logs_and_repository() {
        let table = "arn:aws:dynamodb:us-west-1:123456789012:table/blog-x";
        let task = task_policy(table);
        assert_eq!(task["Statement"].as_array().map(Vec::len), Some(1));
        let exec = execution_policy(
            "arn:aws:logs:us-west-1:1:log-group:/ecs/x",
            "123456789012.dkr.ecr.us-west-1.amazonaws.com/team/blog:1.0",
        );
        assert_eq!(
            exec["Statement"][2]["Resource"],
            json!(["arn:aws:ecr:us-west-1:123456789012:repository/team/blog"])
        );
        let public = execution_policy("arn:aws:logs:us-west-1:1:log-group:/ecs/x", "blog-service:1");
        assert_eq!(public["Statement"].as_array().map(Vec::len), Some(1), "no ECR rights for a non-ECR image");
        assert_eq!(
            ecr_repository_arn("1.dkr.ecr.eu-west-1.amazonaws.com/b@sha256:00").as_deref(),
            Some("arn:aws:ecr:eu-west-1:1:repository/b")
        );
    }

    #[test]
    fn the_container_follows_the_spec() {
        let d = desired(
            &owner(),
            &spec("image: repo/blog:2\ncontainer: {cpu: 512, memoryMiB: 1024, port: 9000}\n"),
            "us-west-1",
        );
        let c = d.container.expect("container enabled");
        assert_eq!((c.cpu, c.memory_mib, c.port, c.desired_count), (512, 1024, 9000, 2));
        assert_eq!(c.environment["PORT"], "9000");
        assert_eq!(c.environment["TABLE_NAME"], d.names.table);
        assert!(d.function.is_none());
    }

    #[test]
    fn the_function_policy_names_only_its_table_and_log_group() {
        let table = "arn:aws:dynamodb:us-west-1:123456789012:table/blog-x";
        let logs = log_group_arn("us-west-1", "123456789012", "/aws/lambda/blog-x");
        let policy = function_policy(table, &logs);
        let statements = policy["Statement"].as_array().expect("statements");
        assert_eq!(statements[0]["Resource"], json!([table, format!("{table}/index/*")]));
        assert_eq!(statements[0]["Action"].as_array().map(Vec::len), Some(5));
        assert!(
            !policy.to_string().contains('*') || policy.to_string().matches('*').count() == 2,
            "no wildcard actions"
        );
        assert_eq!(
            statements[1]["Resource"],
            json!(["arn:aws:logs:us-west-1:123456789012:log-group:/aws/lambda/blog-x:*"])
        );
        assert_eq!(account_of(table), Some("123456789012"));
        assert_eq!(api_source_arn("us-west-1", "1", "abc"), "arn:aws:execute-api:us-west-1:1:abc/*");
    }
}
