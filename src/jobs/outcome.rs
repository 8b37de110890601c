//! What a job run returns (printed as JSON by `garage job run`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::engine::ImageSource;
use super::logs::CapturedLogs;
use super::output::OutputFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JobStatus {
    Succeeded,
    /// An op exited non-zero, or the engine failed mid-run.
    Failed,
    /// The job ran past its `timeout` and was killed.
    TimedOut,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timedOut",
        }
    }
}

/// The result of one run of a job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    pub job: String,
    pub node: String,
    /// Unique per run; names and labels everything the run created.
    pub run_id: String,
    pub status: JobStatus,
    /// Why it did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The podman host itself went away mid-run: the job did not fail by
    /// its own doing (a network job is given back, not failed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub host_lost: bool,
    /// RFC 3339.
    pub started_at: String,
    pub duration_seconds: f64,
    /// Whether the ops' memory, CPU and pids limits were enforced:
    /// `enforced: …` or `not enforced: …` with the reason.
    pub limits: String,
    pub ops: Vec<OpReport>,
    /// What could not be removed afterwards (the next run's sweep retries).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cleanup_errors: Vec<String>,
    /// Facts worth knowing about how the job ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpReport {
    pub id: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_source: Option<ImageSource>,
    /// The container's name inside podman.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_seconds: f64,
    pub logs: CapturedLogs,
    /// Extracted values; `null` where the pattern never matched.
    pub results: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<OutputFile>,
}
