//! Automated resource allocation: the cost model, the right-sizing recommender and the decision
//! that combines them, pure functions over metric summaries (the runtime reads the metrics and
//! applies what the decision says).

mod decide;
pub mod pricing;
pub mod recommend;

pub use decide::{Series, Sizes, Summary, WindowMetrics, change_note, decide, effective_window, running_sizes};
