//! Request signing shared by nodes and the coordinator: the canonical
//! message (`garage-sig-v2`, naming the coordinator it is meant for), the
//! five headers that carry a signature, and the checks that need nothing but
//! the request, a clock, the coordinator's id and the node's public key
//! (format, timestamp range, freshness, audience, signature). Which keys
//! exist and which nonces were seen is the coordinator's business
//! (`coordinator::auth`).

use std::ops::RangeInclusive;

use axum::http::HeaderMap;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The node that signed the request.
pub const HEADER_NODE: &str = "x-garage-node";
/// The coordinator the request is meant for (its id from `GET /api/coordinator`).
pub const HEADER_COORDINATOR: &str = "x-garage-coordinator";
/// Unix time in seconds when the request was signed.
pub const HEADER_TIMESTAMP: &str = "x-garage-timestamp";
/// A random value used once per request (16 to 128 characters of `[A-Za-z0-9_-]`).
pub const HEADER_NONCE: &str = "x-garage-nonce";
/// Hex of the 64-byte ed25519 signature over [`canonical_message`].
pub const HEADER_SIGNATURE: &str = "x-garage-signature";
/// First line of every canonical message; a new scheme gets a new name.
/// v1 named no coordinator, so a request captured at one was valid at all.
pub const SCHEME: &str = "garage-sig-v2";
/// How far a request's timestamp may be from the coordinator's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;
/// Timestamps a request may carry at all (2020-01-01 to 2100-01-01 UTC),
/// checked before any arithmetic: `i64::MIN` once passed a freshness check
/// whose `abs()` wrapped (issue 9, B5).
pub const TIMESTAMP_RANGE: RangeInclusive<i64> = 1_577_836_800..=4_102_444_800;

const NONCE_LEN: RangeInclusive<usize> = 16..=128;

/// The text a node signs, one field per line (`\n`, no trailing newline):
/// the scheme, the coordinator's id, method, path with query, SHA-256 of the
/// body (lowercase hex), timestamp, nonce and node id.
pub fn canonical_message(
    coordinator: Uuid,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
    node_id: Uuid,
) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!(
        "{SCHEME}\n{coordinator}\n{method}\n{path}\n{body_hash}\n{timestamp}\n{nonce}\n{node_id}"
    )
}

/// A fresh random nonce (32 hex characters).
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed with {SCHEME}: header {header} is missing")]
    Missing { header: &'static str },
    #[error("header {header} is malformed: {problem}")]
    Malformed {
        header: &'static str,
        problem: &'static str,
    },
    #[error("the request was signed {skew_secs} s away from the coordinator's clock (allowed: ±{MAX_CLOCK_SKEW_SECS} s); check the node's clock (NTP)")]
    Stale { skew_secs: i64 },
    #[error("the request was signed for coordinator {signed_for}, but this is coordinator {this} (fix: sign for the coordinator_id that GET /api/coordinator of the coordinator you call answers)")]
    WrongCoordinator { signed_for: Uuid, this: Uuid },
    #[error("the signature does not match the request and the node's registered key")]
    BadSignature,
}

/// The signature headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub node_id: Uuid,
    pub coordinator: Uuid,
    pub timestamp: i64,
    pub nonce: String,
    /// Hex of the signature bytes.
    pub signature: String,
}

impl SignedHeaders {
    /// Header names and values, for a client to send.
    pub fn pairs(&self) -> [(&'static str, String); 5] {
        [
            (HEADER_NODE, self.node_id.to_string()),
            (HEADER_COORDINATOR, self.coordinator.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Reads the headers; a request without any of them is unsigned.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, SignatureError> {
        let get = |header: &'static str| {
            let value = headers
                .get(header)
                .ok_or(SignatureError::Missing { header })?;
            value.to_str().map_err(|_| SignatureError::Malformed {
                header,
                problem: "not visible ASCII",
            })
        };
        let node = get(HEADER_NODE)?;
        let coordinator = get(HEADER_COORDINATOR)?;
        let timestamp = get(HEADER_TIMESTAMP)?;
        let nonce = get(HEADER_NONCE)?;
        let signature = get(HEADER_SIGNATURE)?;
        let uuid = |header: &'static str, text: &str| {
            Uuid::parse_str(text).map_err(|_| SignatureError::Malformed {
                header,
                problem: "not a UUID",
            })
        };
        let node_id = uuid(HEADER_NODE, node)?;
        let coordinator = uuid(HEADER_COORDINATOR, coordinator)?;
        let timestamp = timestamp
            .parse::<i64>()
            .map_err(|_| SignatureError::Malformed {
                header: HEADER_TIMESTAMP,
                problem: "not whole seconds since the Unix epoch",
            })?;
        check_timestamp_range(timestamp)?;
        let nonce_ok = NONCE_LEN.contains(&nonce.len())
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !nonce_ok {
            return Err(SignatureError::Malformed {
                header: HEADER_NONCE,
                problem: "must be 16 to 128 characters of A-Z, a-z, 0-9, '-' or '_'",
            });
        }
        Ok(SignedHeaders {
            node_id,
            coordinator,
            timestamp,
            nonce: nonce.to_string(),
            signature: signature.to_string(),
        })
    }

    /// Checks the timestamp against `now` (Unix seconds), the audience
    /// against `this_coordinator`, then the signature of `method`, `path`
    /// (with query) and `body` against `key`.
    pub fn verify(
        &self,
        this_coordinator: Uuid,
        method: &str,
        path: &str,
        body: &[u8],
        key: &VerifyingKey,
        now: i64,
    ) -> Result<(), SignatureError> {
        check_fresh(self.timestamp, now)?;
        if self.coordinator != this_coordinator {
            return Err(SignatureError::WrongCoordinator {
                signed_for: self.coordinator,
                this: this_coordinator,
            });
        }
        let bytes = hex::decode(&self.signature).map_err(|_| SignatureError::Malformed {
            header: HEADER_SIGNATURE,
            problem: "not hexadecimal",
        })?;
        let signature = Signature::from_slice(&bytes).map_err(|_| SignatureError::Malformed {
            header: HEADER_SIGNATURE,
            problem: "not 64 bytes long",
        })?;
        let message = canonical_message(
            self.coordinator,
            method,
            path,
            body,
            self.timestamp,
            &self.nonce,
            self.node_id,
        );
        key.verify_strict(message.as_bytes(), &signature)
            .map_err(|_| SignatureError::BadSignature)
    }

    /// The Unix time in milliseconds after which this request is stale for
    /// every coordinator clock, so its nonce need not be kept longer.
    pub fn stale_after_ms(&self) -> Result<i64, SignatureError> {
        self.timestamp
            .checked_add(MAX_CLOCK_SKEW_SECS + 1)
            .and_then(|secs| secs.checked_mul(1000))
            .ok_or(OUT_OF_RANGE)
    }
}

const OUT_OF_RANGE: SignatureError = SignatureError::Malformed {
    header: HEADER_TIMESTAMP,
    problem: "outside 1577836800..=4102444800 (2020-01-01 to 2100-01-01 UTC in Unix seconds)",
};

fn check_timestamp_range(timestamp: i64) -> Result<(), SignatureError> {
    if TIMESTAMP_RANGE.contains(&timestamp) {
        Ok(())
    } else {
        Err(OUT_OF_RANGE)
    }
}

/// The range check first, so the difference below cannot overflow; then
/// the skew, in checked arithmetic all the same.
fn check_fresh(timestamp: i64, now: i64) -> Result<(), SignatureError> {
    check_timestamp_range(timestamp)?;
    let skew_secs = timestamp.checked_sub(now).ok_or(OUT_OF_RANGE)?;
    if skew_secs.unsigned_abs() > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale { skew_secs });
    }
    Ok(())
}

/// Parses a public key as registered (hex of 32 bytes).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, &'static str> {
    let bytes = hex::decode(text).map_err(|_| "not hexadecimal")?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "not 32 bytes long")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid ed25519 point")
}

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;
