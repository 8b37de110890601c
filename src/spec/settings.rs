//! Tunables of the reconcile loop, as validated from `spec.reconcile`:
//! plain data the spec owns and `crate::reconcile` reads.

use std::time::Duration;

/// Kubelet-like restart backoff: `initial` doubling up to `max`, forgotten
/// once a container has run for `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffSettings {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        BackoffSettings {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// Full re-list and converge even when nothing signalled a change.
    pub resync: Duration,
    pub backoff: BackoffSettings,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            resync: Duration::from_secs(30),
            backoff: BackoffSettings::default(),
        }
    }
}
