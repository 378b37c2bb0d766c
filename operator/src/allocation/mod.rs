//! Automated resource allocation: the cost model and the right-sizing recommender, pure functions
//! over metric summaries (the controller feeds them and applies what they say).

pub mod pricing;
pub mod recommend;
