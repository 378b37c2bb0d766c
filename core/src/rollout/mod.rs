//! Progressive delivery: a new version reaches readers step by step, each step judged on the new
//! version's own metrics against the stable one's, promoted or rolled back. Pure: the policy
//! ([`policy`]), the verdict on a window ([`verdict`]), the function alias's next move
//! ([`function`]) and the answer to the container's ECS service deployment ([`container`]); the
//! operator reads the metrics, moves the alias and answers ECS.

pub mod container;
pub mod function;
pub mod policy;
mod types;
pub mod verdict;

pub use policy::{Judging, Policy};
pub use types::{
    Analysis, CanaryRollout, LinearRollout, PreTraffic, RolloutCheck, RolloutSpec, RolloutStatus, Strategy,
    VariantRollout,
};
