//! Converging the engine to the desired state: pure planning, execution,
//! restart backoff and status.

pub mod settings;

pub use settings::{BackoffSettings, ReconcileSettings};
