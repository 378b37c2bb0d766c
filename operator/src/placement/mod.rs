//! A placement across regions: the build decides which regions serve ([`decide`], pure), the plan
//! of resource steps brings up each region's stack as it does home's, and [`routing`] adds the
//! home region's steps around them (table replicas, health checks, weighted and latency records,
//! and the order regions come and go in); [`beacons`] reads back what readers measured.

pub mod beacons;
pub mod decide;
pub mod routing;

pub use decide::{Placed, decide};
pub use routing::{HEALTH_PATH, Region, Routing, StackWork, replicas_pending};
