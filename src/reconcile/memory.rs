//! What the controller remembers about each component between passes:
//! its restart backoff, restarts made, the last exit and error, and why its
//! container last stopped. The engine holds everything else.

use crate::runtime::Termination;

use super::backoff::RestartBackoff;

/// The controller's memory of one component.
#[derive(Debug)]
pub(super) struct ComponentMemory {
    pub(super) backoff: RestartBackoff,
    /// A crash was seen and charged to the backoff, restart not yet made.
    pub(super) crash_pending: bool,
    pub(super) restarts: u64,
    pub(super) last_exit_code: Option<i64>,
    pub(super) last_error: Option<String>,
    /// A container of the component was seen or made by this agent, so a
    /// missing one is drift rather than a first create.
    pub(super) seen: bool,
    /// Why the component's container last stopped, and which run of which
    /// container that was (id, start time), so each stop is read once.
    pub(super) termination: Option<(String, Option<String>, Termination)>,
    /// The configuration hash whose rollout failed, and the revision (git
    /// commit, or spec generation) it came from: not tried again until the
    /// component's configuration changes.
    pub(super) failed_rollout: Option<(String, String)>,
    /// Its rollout waits for network jobs running on it (logged once).
    pub(super) waiting_for_jobs: bool,
}

impl ComponentMemory {
    pub(super) fn new(backoff: RestartBackoff) -> Self {
        ComponentMemory {
            backoff,
            crash_pending: false,
            restarts: 0,
            last_exit_code: None,
            last_error: None,
            seen: false,
            termination: None,
            failed_rollout: None,
            waiting_for_jobs: false,
        }
    }
}
