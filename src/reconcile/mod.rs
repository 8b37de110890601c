//! Converging the engine to the desired state: the target it is told
//! (`target`, the spec lowered onto this host by `lower`), pure planning
//! (`plan`), execution (`apply`, with `rollout` for changed components), restart backoff (`backoff`), what it
//! remembers per component (`memory`), the status it projects
//! (`projection` onto `status`) and the loop that ties them together
//! (`controller`).

pub mod apply;
pub mod backoff;
pub mod controller;
pub mod lower;
mod memory;
pub mod plan;
mod projection;
pub mod rollout;
pub mod status;
pub mod target;

#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod lower_tests;
#[cfg(test)]
mod plan_tests;

pub use crate::spec::{BackoffSettings, ReconcileSettings};
pub use controller::{Controller, JobsOn, PassOutcome};
pub use plan::{plan, Action, Cause, Plan, Step};
pub use status::NodeStatus;
pub use target::{Input, Target};
