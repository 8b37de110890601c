//! The jobs domain's wire types: what a client submits and sees, and what a
//! node claims, renews, logs and completes under a lease.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::coordinator::energy::api::JobEnergyView;
use crate::coordinator::ledger::api::JobCost;
use crate::coordinator::nodes::api::PowerReport;

/// What runs a job on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// A container job file (`manifests/job.schema.json`) run in the node's podman host.
    Container,
    /// A chat or text completion answered by the node's inference worker.
    Inference,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Container => "container",
            JobType::Inference => "inference",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "container" => Some(JobType::Container),
            "inference" => Some(JobType::Inference),
            _ => None,
        }
    }
}

/// `POST /api/jobs`: a job and where it may run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSubmission {
    /// `container` (default) or `inference`.
    #[serde(rename = "type", default = "default_type")]
    pub kind: JobType,
    /// The container job document (type `container`), as in a job file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub job: Option<serde_json::Value>,
    /// The request (type `inference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceRequest>,
    #[serde(default)]
    pub placement: Placement,
    /// The most the job may run once placed, e.g. `10m` (default: the
    /// container job's own `timeout`, else 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Not placed by then (from submission), e.g. `1h`: the job becomes
    /// EXPIRED. Default: never.
    #[serde(
        rename = "expiresAfter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_after: Option<String>,
    /// Leases the job may be given (1-10, default 2); a lease that expires
    /// at the last one fails the job ("node lost").
    #[serde(
        rename = "maxAttempts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<u32>,
}

fn default_type() -> JobType {
    JobType::Container
}

/// Where a job may run. Every field narrows the nodes that may claim it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// A market (GPU class, `GET /api/markets`) the node must be in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    /// GPU memory the node's largest GPU must have, in MiB.
    #[serde(
        rename = "minVramMiB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_vram_mib: Option<u64>,
    /// Labels the node must claim with (every pair, exactly).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Hard constraints: only nodes that satisfy them run the job.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    /// `prefer-green`: given to a node running on solar surplus when one
    /// asks within `greenWait`, to any node after; `any` (default).
    #[serde(default, skip_serializing_if = "EnergyPreference::is_any")]
    pub energy: EnergyPreference,
    /// How long a `prefer-green` job may wait for a solar node, e.g. `30m`
    /// (default 10m): the deadline flexibility.
    #[serde(rename = "greenWait", default, skip_serializing_if = "Option::is_none")]
    pub green_wait: Option<String>,
}

/// A job's hard placement constraints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Where the job may run: a node outside it never gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency: Option<Residency>,
}

impl Constraints {
    pub fn is_empty(&self) -> bool {
        self.residency.is_none()
    }
}

/// Data residency: every given field must hold for the node's location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Residency {
    /// ISO 3166-1 alpha-2 codes the node's country must be one of, e.g. `["SE"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    /// The node's country must be an EU member state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eu: bool,
    /// Swedish price areas the node must be in, e.g. `["SE3", "SE4"]`.
    #[serde(rename = "priceAreas", default, skip_serializing_if = "Vec::is_empty")]
    pub price_areas: Vec<String>,
}

/// What energy a job prefers to run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EnergyPreference {
    #[default]
    Any,
    PreferGreen,
}

impl EnergyPreference {
    pub fn is_any(&self) -> bool {
        *self == EnergyPreference::Any
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EnergyPreference::Any => "any",
            EnergyPreference::PreferGreen => "prefer-green",
        }
    }
}

/// An inference job: OpenAI's chat (`messages`) or text (`prompt`)
/// completion fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InferenceRequest {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// A job's state. QUEUED → RUNNING → SUCCEEDED | FAILED | TIMED_OUT |
/// CANCELLED; QUEUED → EXPIRED | CANCELLED; RUNNING → QUEUED when its
/// lease expired with attempts left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Expired,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::TimedOut => "TIMED_OUT",
            JobState::Cancelled => "CANCELLED",
            JobState::Expired => "EXPIRED",
        }
    }

    /// Every state, in the order a job may pass them.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::TimedOut,
        JobState::Cancelled,
        JobState::Expired,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// True for a state no job leaves.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// One state transition of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    /// RFC 3339.
    pub at: String,
    pub state: JobState,
    pub reason: String,
    /// The lease count when it happened (0 before the first claim).
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<Uuid>,
}

/// A job as its owner (or the admin) sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub job_id: Uuid,
    pub state: JobState,
    /// Why it is in its state (for a queued job: what it waits for).
    pub reason: String,
    #[serde(rename = "type")]
    pub kind: JobType,
    pub placement: Placement,
    pub timeout_seconds: u64,
    /// RFC 3339, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub max_attempts: u32,
    /// Leases given so far.
    pub attempt: u32,
    /// The node of the current or last lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<Uuid>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// What the node reported at completion (exit codes, extracted results,
    /// the inference response), capped at 256 KiB of JSON: a larger one is
    /// `{"truncated": true, "bytes": N, "head": "…"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Every transition, oldest first.
    pub history: Vec<JobEvent>,
    /// What the job costs its client (absent for the admin's free jobs and
    /// in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<JobCost>,
    /// What the job used and emitted, from its node's energy report
    /// (absent before it completed with one, and in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<JobEnergyView>,
    /// The submitted job document (container) or request (inference).
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
}

/// `GET /api/jobs`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `?continue=` for older jobs; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// Which output stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One chunk of a job's log, as a node sends it and a client reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogChunk {
    /// Per lease, from 0, one up per chunk; a chunk sent again with the same
    /// `seq` is ignored.
    pub seq: u64,
    pub stream: LogStream,
    pub data: String,
    /// The lease count the chunk belongs to (set by the coordinator).
    #[serde(default)]
    pub attempt: u32,
}

/// `GET /api/jobs/{id}/logs`: the stored chunks, attempt by attempt, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobLogs {
    pub chunks: Vec<LogChunk>,
    /// True when the job's log reached its cap (1 MiB) and the rest was dropped.
    pub truncated: bool,
}

/// `POST /api/nodes/{id}/claim`: what the node can take now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Jobs the node can start now (at least 1).
    pub slots: u32,
    /// The job types it runs.
    pub job_types: Vec<JobType>,
    /// The node's labels, matched against a job's `placement.labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Seconds to wait for a job before answering 204 (0-30, default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u32>,
    /// The node's power now (as in its heartbeats): placement prefers
    /// nodes whose solar production covers their draw for green jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerReport>,
}

/// A job given to a node under a lease; the lease id fences every later
/// request about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    pub lease_id: Uuid,
    pub job_id: Uuid,
    /// 1 for the first lease of the job, counting up.
    pub attempt: u32,
    /// RFC 3339: the lease ends here unless renewed.
    pub expires_at: String,
    /// The lease's length; renew well within it.
    pub lease_seconds: u64,
    /// Renew this often (also how soon a cancel reaches the node).
    pub renew_every_seconds: u64,
    #[serde(rename = "type")]
    pub kind: JobType,
    /// The most the job may run; stop it and complete with `timed_out` after.
    pub timeout_seconds: u64,
    /// The job document (container) or request (inference), as submitted.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
}

/// Answer to a renew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenewResponse {
    /// RFC 3339: the lease's new end.
    pub expires_at: String,
    /// True when the client cancelled the job (or it ran past its timeout):
    /// stop it now and complete (the state stays as the coordinator set it).
    pub cancel: bool,
}

/// `POST …/logs`: chunks of the job's output, in any order, each at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendLogsRequest {
    pub chunks: Vec<NewLogChunk>,
}

/// One chunk a node sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLogChunk {
    pub seq: u64,
    pub stream: LogStream,
    pub data: String,
}

/// Answer to `POST …/logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppendLogsResponse {
    /// Chunks stored now (a repeated `seq` is not stored again).
    pub accepted: u32,
    /// True once the job's log reached its cap: later chunks are dropped,
    /// so the node may stop sending.
    pub truncated: bool,
    /// True when the client cancelled the job.
    pub cancel: bool,
}

/// How a job ended on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// It ran and failed (a non-zero exit, an error answer): paid.
    Failed,
    /// It ran until its timeout: paid.
    TimedOut,
    /// It never ran on the node (an invalid spec there, no engine, the
    /// image or container could not start): FAILED, and the hold goes back.
    NotStarted,
}

impl Outcome {
    pub fn state(self) -> JobState {
        match self {
            Outcome::Succeeded => JobState::Succeeded,
            Outcome::Failed | Outcome::NotStarted => JobState::Failed,
            Outcome::TimedOut => JobState::TimedOut,
        }
    }

    /// Whether the node is paid for the time the job held its lease.
    pub fn is_billed(self) -> bool {
        !matches!(self, Outcome::NotStarted)
    }
}

/// `POST …/complete`: the job's end and result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub outcome: Outcome,
    /// For people: why it failed or timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Exit codes, extracted results, output files or the inference response.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
}

/// Answer to `POST …/complete` (the same for a repeated one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompleteResponse {
    /// The job's final state (CANCELLED when the client cancelled first).
    pub state: JobState,
}
