//! Converging the engine to the desired state: pure planning, execution,
//! restart backoff, status and the loop that ties them together.

pub mod apply;
pub mod backoff;
pub mod controller;
pub mod plan;
mod report;
pub mod status;

#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod plan_tests;

pub use crate::spec::{BackoffSettings, ReconcileSettings};
pub use controller::{Controller, Input, PassOutcome, Target};
pub use plan::{plan, Action, Cause, Plan, Step};
pub use status::NodeStatus;
