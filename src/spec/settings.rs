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

/// How a changed component is rolled out: the new container must be ready
/// within `readiness_timeout` (healthy where it has a health check, and
/// running for `min_ready`), or the previous one is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutSettings {
    pub readiness_timeout: Duration,
    pub min_ready: Duration,
    /// Roll out the worker or podman host while network jobs run on them.
    pub interrupt_jobs: bool,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        RolloutSettings {
            readiness_timeout: Duration::from_secs(120),
            min_ready: Duration::from_secs(1),
            interrupt_jobs: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// Full re-list and converge even when nothing signalled a change.
    pub resync: Duration,
    pub backoff: BackoffSettings,
    pub rollout: RolloutSettings,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            resync: Duration::from_secs(30),
            backoff: BackoffSettings::default(),
            rollout: RolloutSettings::default(),
        }
    }
}
