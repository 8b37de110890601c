//! The `Idempotency-Key` header: the same key from the same caller names
//! the same operation, so a retried request has one effect.

use axum::http::HeaderMap;

use super::error::ApiError;

/// The header that makes a request idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The idempotency key of a request: 1-128 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-128 visible ASCII characters (e.g. a UUID)",
        ));
    }
    Ok(Some(text.to_string()))
}
