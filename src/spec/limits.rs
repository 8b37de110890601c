//! Every bound a node spec or job file is held to, in one place: file size,
//! nesting depth and alias expansion (enforced by `crate::document`, listed
//! here again), container count, duration ranges, environment sizes and the
//! default pids limit of a job. The README's limits table lists the same
//! numbers.

use std::time::Duration;

pub use crate::document::limits::{MAX_ALIAS_BYTES, MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES};

/// Entries of `spec.containers`.
pub const MAX_CONTAINERS: usize = 256;

/// Entries of `metadata.labels`; every container carries them all.
pub const MAX_LABELS: usize = 64;

/// Bytes of one label value.
pub const MAX_LABEL_VALUE_BYTES: usize = 256;

/// Bytes of one `KEY=VALUE` environment string: the kernel's MAX_ARG_STRLEN
/// (128 KiB) counts the terminating NUL, and execve fails with "argument
/// list too long" past it.
pub const MAX_ENV_STRING_BYTES: usize = (128 << 10) - 1;

/// Bytes of one container's whole environment (`KEY=VALUE` strings and
/// their NULs), well inside the kernel's total for arguments and environment.
pub const MAX_ENV_TOTAL_BYTES: usize = 1 << 20;

/// Pids limit of a job container unless the job or the node sets one
/// (`resources.pids`, `spec.podman.jobs.pidsLimit`): ends a fork bomb.
pub const DEFAULT_PIDS_LIMIT: u32 = 1024;

/// The values a duration setting accepts, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

const fn range(min: Duration, max: Duration) -> DurationRange {
    DurationRange { min, max }
}

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// `spec.reconcile.resyncPeriod`.
pub const RESYNC_PERIOD: DurationRange = range(Duration::from_millis(100), DAY);
/// `spec.reconcile.backoff.initial`.
pub const BACKOFF_INITIAL: DurationRange = range(Duration::from_millis(100), HOUR);
/// `spec.reconcile.backoff.max`.
pub const BACKOFF_MAX: DurationRange = range(Duration::from_millis(100), DAY);
/// `spec.reconcile.rollout.readinessTimeout`.
pub const ROLLOUT_READINESS_TIMEOUT: DurationRange = range(Duration::from_millis(100), DAY);
/// `spec.reconcile.rollout.minReady`.
pub const ROLLOUT_MIN_READY: DurationRange = range(Duration::ZERO, HOUR);
/// `spec.gc.interval`.
pub const GC_INTERVAL: DurationRange = range(MS, DAY);
/// `spec.gc.minAge` and `spec.gc.maxAge`.
pub const GC_AGE: DurationRange = range(Duration::ZERO, Duration::from_secs(365 * 24 * 3600));
/// `spec.reconcile.backoff.resetAfter`.
pub const BACKOFF_RESET_AFTER: DurationRange = range(Duration::ZERO, DAY);
/// `healthCheck.interval` and `healthCheck.timeout` (Docker's minimum is 1ms).
pub const HEALTH_PERIOD: DurationRange = range(MS, DAY);
/// `healthCheck.startPeriod`.
pub const HEALTH_START_PERIOD: DurationRange = range(Duration::ZERO, DAY);
/// `spec.power.solar.production.http.timeout`: an inverter on the LAN
/// answers in well under a second; the agent samples every few seconds.
pub const PRODUCTION_TIMEOUT: DurationRange =
    range(Duration::from_millis(100), Duration::from_secs(30));
/// `spec.power.solar.capacityKw`: larger than any roof or garage.
pub const MAX_SOLAR_CAPACITY_KW: f64 = 10_000.0;
/// A job file's `timeout`.
pub const JOB_TIMEOUT: DurationRange =
    range(Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600));

impl DurationRange {
    /// Why `value` (written as `text`) is outside the range, if it is.
    pub fn check(self, text: &str, value: Duration) -> Result<Duration, String> {
        if value < self.min {
            Err(format!(
                "`{text}` is shorter than the minimum {}",
                short(self.min)
            ))
        } else if value > self.max {
            Err(format!(
                "`{text}` ({}) is longer than the maximum {}",
                short(value),
                short(self.max)
            ))
        } else {
            Ok(value)
        }
    }

    /// `100ms to 24h`, for the fix text.
    pub fn describe(self) -> String {
        format!("from {} to {}", short(self.min), short(self.max))
    }
}

/// A duration in its largest exact unit (`24h`, `90s`, `1500ms`); past a
/// year, in whole years rounded down (`584942417355y`, 365-day years).
pub fn short(d: Duration) -> String {
    const YEAR: u64 = 365 * 24 * 3600;
    let secs = d.as_secs();
    if secs >= YEAR {
        return format!("{}y", secs / YEAR);
    }
    if d.is_zero() {
        return "0".to_owned();
    }
    if secs == 0 || d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, size) in [("h", 3600), ("m", 60)] {
        if secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
