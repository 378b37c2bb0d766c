//! The BlogDeployment operator: a pipeline of small steps, validate (pure) → desired (pure) →
//! apply (AWS adapter) → status (pure + one patch). The pure steps live in the `blog-core` crate and
//! are re-exported here under their own names.
#![forbid(unsafe_code)]

pub use blog_core::{
    admission, aws, crd, crd_yaml, desired, domain, iam_policy, image, scaling, status, tenancy, validate,
};

pub mod admin;
pub mod allocation;
pub mod apply;
pub mod cli;
pub mod cloud;
pub mod context;
pub mod controller;
pub mod events;
pub mod https;
pub mod leader;
pub mod metrics;
pub mod peers;
pub mod placement;
pub mod reconcile;
pub mod reference;
pub mod retry;
pub mod rollout;
pub mod webhook;
pub mod write_token;
