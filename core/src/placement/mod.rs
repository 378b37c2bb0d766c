//! Placement at the edge: which regions run the blog and, in each, which variant (function or
//! container), from demand by reader area, a region-to-region latency matrix and the price model.
//! Pure: [`evaluate`] prices and times a placement, [`best`] searches every placement the
//! candidates allow, [`decide`] moves the current placement one region toward the best, and only
//! on a sustained gain.

mod decide;
pub mod latency;
pub mod readers;
pub mod regions;

pub use decide::{
    Candidate, Change, Cost, Decision, Demand, Evaluation, Input, Model, Objective, Placement, Variant, best, decide,
    evaluate, replica_monthly,
};
