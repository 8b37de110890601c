//! The coordinator's resource bounds in one place (README "Limits"): field
//! sizes of registrations and heartbeats, page sizes of list endpoints and
//! the per-node heartbeat history. Checks that need only a request live here.

use serde::Serialize;

use super::error::ApiError;

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

/// 413 when the JSON text of `value` (as stored) is over [`MAX_FIELD_BYTES`].
pub fn check_field<T: Serialize + ?Sized>(field: &'static str, value: &T) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(value).map_or(0, |text| text.len());
    if bytes > MAX_FIELD_BYTES {
        Err(ApiError::field_too_large(field, bytes, MAX_FIELD_BYTES))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_over_the_cap_is_named_in_a_413() {
        let small = serde_json::json!({"tokens_per_second": 1.0});
        assert!(check_field("benchmark", &small).is_ok());
        let big = serde_json::json!({"pad": "x".repeat(MAX_FIELD_BYTES)});
        let err = check_field("benchmark", &big).expect_err("too large");
        assert_eq!(err.status.as_u16(), 413);
        assert_eq!(err.code, "field_too_large");
        assert!(
            err.message.contains("`benchmark`") && err.message.contains("65536"),
            "{}",
            err.message
        );
    }
}
