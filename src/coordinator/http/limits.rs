//! The coordinator's resource bounds in one place (README "Limits"): the
//! request body, field sizes of registrations and heartbeats, page sizes of
//! list endpoints, the per-node heartbeat history, job documents, results
//! and logs. Constants only; `error::check_field` applies the field cap.

use std::time::Duration;

/// Largest request body accepted; larger ones get 413.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// Heartbeats kept per node when not configured.
pub const DEFAULT_HEARTBEAT_HISTORY: u32 = 1000;
/// Largest JSON text of each capped field: `benchmark`, `gpu_info` and
/// `location` of a registration, `status` of a heartbeat.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Heartbeat bytes (their `status` JSON) kept per node when not configured.
pub const DEFAULT_HEARTBEAT_HISTORY_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest history budget: one heartbeat of the largest status.
pub const MIN_HEARTBEAT_HISTORY_BYTES: u64 = MAX_FIELD_BYTES as u64;
/// Items of a list page when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest `limit` a list endpoint takes.
pub const MAX_PAGE_SIZE: u32 = 500;

/// How long a job lease lives without a renew when not configured.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(30);
/// The longest lease a coordinator may be configured with.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(600);
/// The longest a claim long-polls (`wait_seconds` is capped to it).
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// The most a job's result keeps (its JSON text); a larger one is replaced
/// by a marker holding its first bytes.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// The most log text one job keeps over all its attempts; the chunk that
/// crosses it is cut and ends with a marker, later chunks are dropped.
pub const MAX_JOB_LOG_BYTES: i64 = 1024 * 1024;
/// Chunks one logs request may carry.
pub const MAX_LOG_CHUNKS_PER_REQUEST: usize = 1000;
/// The most attempts a job may ask for (`maxAttempts`).
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest `timeout` or `expiresAfter` of a job.
pub const MAX_JOB_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
