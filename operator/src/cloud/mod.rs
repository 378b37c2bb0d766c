//! The thin adapter over the AWS SDK: one module per service, errors mapped once here.
//! `SdkError` never leaves this module tree; callers see [`CloudError`] and its [`ErrorKind`].

pub mod acm;
pub mod apidomain;
pub mod apigateway;
pub mod autoscaling;
pub mod budget;
pub mod cloudwatch;
pub mod dynamodb;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod memo;
pub mod route53;
pub mod secrets;

mod clients;
mod error;
pub mod tags;

pub use clients::{AwsClients, Cloud, Timeouts};
pub use error::{
    CloudError, CloudResult, ErrorKind, HttpStatus, classify, found, gone_is_done, lost_create_race, map_sdk,
};
