//! How a job ended on this node: what `complete` sends, whichever
//! executor ran it.

use crate::coordinator::api::Outcome;

/// How a job ended on this node: what `complete` sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub result: serde_json::Value,
    /// The node's podman host went away mid-run (not the job's doing): the
    /// job is given back instead of completed.
    pub host_lost: bool,
}

impl Execution {
    /// The node's podman host does not answer or went away: not the job's
    /// failure, so the job is given back for another node (see `host_lost`).
    pub fn host_lost(reason: impl Into<String>) -> Self {
        Execution {
            host_lost: true,
            ..Execution::failed(reason)
        }
    }

    /// A job that failed before it ran, for `reason` (its client is not
    /// charged).
    pub fn failed(reason: impl Into<String>) -> Self {
        Execution {
            outcome: Outcome::NotStarted,
            reason: Some(reason.into()),
            result: serde_json::Value::Null,
            host_lost: false,
        }
    }
}
