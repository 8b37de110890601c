//! The wall clock as Unix time: the one place that reads `SystemTime` against
//! `UNIX_EPOCH`. A clock before 1970 reads as 0. Durations and timeouts use
//! tokio's (pausable) monotonic clock instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Whole seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    unix_now().as_secs()
}

/// Seconds since the Unix epoch with a fraction (Prometheus timestamps).
pub fn unix_secs_f64() -> f64 {
    unix_now().as_secs_f64()
}

/// Milliseconds since the Unix epoch (saturating; the coordinator stores these).
pub fn unix_millis() -> i64 {
    i64::try_from(unix_now().as_millis()).unwrap_or(i64::MAX)
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u128 {
    unix_now().as_nanos()
}

/// RFC 3339 in whole seconds (status timestamps, job start times).
pub fn rfc3339_secs(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// RFC 3339 with milliseconds for a time in Unix milliseconds (negative reads as the epoch).
pub fn rfc3339_millis(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// Unix milliseconds of an RFC 3339 time (`Z` or no offset); `None` when malformed.
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_agree() {
        let secs = unix_secs();
        let millis = unix_millis();
        assert!(secs > 1_700_000_000, "{secs}");
        assert!((millis / 1000).abs_diff(i64::try_from(secs).unwrap()) <= 1);
        assert!((unix_secs_f64() - secs as f64).abs() < 2.0);
        assert!(unix_nanos() / 1_000_000 >= u128::try_from(millis).unwrap());
    }

    #[test]
    fn rfc3339_parses_back() {
        let ms = 1_790_000_000_123;
        assert_eq!(parse_rfc3339_millis(&rfc3339_millis(ms)), Some(ms));
        assert_eq!(parse_rfc3339_millis("yesterday"), None);
    }

    #[test]
    fn rfc3339_keeps_milliseconds() {
        assert_eq!(rfc3339_millis(1_234), "1970-01-01T00:00:01.234Z");
        assert_eq!(rfc3339_millis(-5), "1970-01-01T00:00:00.000Z");
    }
}
