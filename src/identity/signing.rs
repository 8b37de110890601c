//! Request signing shared by nodes and the coordinator: the canonical
//! message, the four headers that carry a signature, and the checks that
//! need nothing but the request, a clock and the node's public key (format,
//! freshness, signature). Which keys exist and which nonces were seen is
//! the coordinator's business (`coordinator::auth`).

use axum::http::HeaderMap;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The node that signed the request.
pub const HEADER_NODE: &str = "x-garage-node";
/// Unix time in seconds when the request was signed.
pub const HEADER_TIMESTAMP: &str = "x-garage-timestamp";
/// A random value used once per request (16 to 128 characters of `[A-Za-z0-9_-]`).
pub const HEADER_NONCE: &str = "x-garage-nonce";
/// Hex of the 64-byte ed25519 signature over [`canonical_message`].
pub const HEADER_SIGNATURE: &str = "x-garage-signature";
/// First line of every canonical message; a new scheme gets a new name.
pub const SCHEME: &str = "garage-request-v1";
/// How far a request's timestamp may be from the coordinator's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;

const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=128;

/// The text a node signs: the scheme, method, path with query, SHA-256 of the
/// body (hex), timestamp, nonce and node id, one per line.
pub fn canonical_message(
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
    node_id: Uuid,
) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{SCHEME}\n{method}\n{path}\n{body_hash}\n{timestamp}\n{nonce}\n{node_id}")
}

/// A fresh random nonce (32 hex characters).
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed: header {header} is missing")]
    Missing { header: &'static str },
    #[error("header {header} is malformed: {problem}")]
    Malformed {
        header: &'static str,
        problem: &'static str,
    },
    #[error("the request was signed {skew_secs} s away from the coordinator's clock (allowed: ±{MAX_CLOCK_SKEW_SECS} s); check the node's clock (NTP)")]
    Stale { skew_secs: i64 },
    #[error("the signature does not match the request and the node's registered key")]
    BadSignature,
}

/// The signature headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub node_id: Uuid,
    pub timestamp: i64,
    pub nonce: String,
    /// Hex of the signature bytes.
    pub signature: String,
}

impl SignedHeaders {
    /// Header names and values, for a client to send.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_NODE, self.node_id.to_string()),
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
        let timestamp = get(HEADER_TIMESTAMP)?;
        let nonce = get(HEADER_NONCE)?;
        let signature = get(HEADER_SIGNATURE)?;
        let node_id = Uuid::parse_str(node).map_err(|_| SignatureError::Malformed {
            header: HEADER_NODE,
            problem: "not a UUID",
        })?;
        let timestamp = timestamp
            .parse::<i64>()
            .map_err(|_| SignatureError::Malformed {
                header: HEADER_TIMESTAMP,
                problem: "not whole seconds since the Unix epoch",
            })?;
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
            timestamp,
            nonce: nonce.to_string(),
            signature: signature.to_string(),
        })
    }

    /// Checks freshness against `now` (Unix seconds), then the signature of
    /// `method`, `path` (with query) and `body` against `key`.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        key: &VerifyingKey,
        now: i64,
    ) -> Result<(), SignatureError> {
        let skew_secs = self.timestamp.saturating_sub(now);
        if skew_secs.abs() > MAX_CLOCK_SKEW_SECS {
            return Err(SignatureError::Stale { skew_secs });
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
}

/// Parses a public key as registered (hex of 32 bytes).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, &'static str> {
    let bytes = hex::decode(text).map_err(|_| "not hexadecimal")?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "not 32 bytes long")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid ed25519 point")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::identity::NodeIdentity;

    const NOW: i64 = 1_800_000_000;
    const BODY: &[u8] = br#"{"ready":true}"#;

    fn identity() -> (tempfile::TempDir, NodeIdentity) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let identity = NodeIdentity::load_or_create(&tmp.path().join("node")).expect("identity");
        (tmp, identity)
    }

    fn headers_of(signed: &SignedHeaders) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in signed.pairs() {
            headers.insert(name, HeaderValue::from_str(&value).expect("ascii"));
        }
        headers
    }

    #[test]
    fn canonical_message_is_stable() {
        let id = Uuid::parse_str("6f1c2a7e-9a57-4d8e-8f43-1d2a3b4c5d6e").expect("uuid");
        let message = canonical_message("POST", "/api/nodes/x/heartbeat", b"{}", 42, "n0nce", id);
        assert_eq!(
            message,
            "garage-request-v1\nPOST\n/api/nodes/x/heartbeat\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n42\nn0nce\n\
             6f1c2a7e-9a57-4d8e-8f43-1d2a3b4c5d6e"
        );
    }

    #[test]
    fn a_signed_request_verifies_through_its_headers() {
        let (_tmp, node) = identity();
        let signed = node.sign_request("POST", "/api/x", BODY, NOW, &new_nonce());
        let parsed = SignedHeaders::from_headers(&headers_of(&signed)).expect("parses");
        assert_eq!(parsed, signed);
        parsed
            .verify("POST", "/api/x", BODY, &node.verifying_key(), NOW + 59)
            .expect("verifies");
    }

    #[test]
    fn every_missing_header_makes_an_unsigned_request() {
        let (_tmp, node) = identity();
        let signed = node.sign_request("GET", "/", b"", NOW, &new_nonce());
        for header in [
            HEADER_NODE,
            HEADER_TIMESTAMP,
            HEADER_NONCE,
            HEADER_SIGNATURE,
        ] {
            let mut headers = headers_of(&signed);
            headers.remove(header);
            assert_eq!(
                SignedHeaders::from_headers(&headers),
                Err(SignatureError::Missing { header })
            );
        }
    }

    #[test]
    fn malformed_headers_name_the_header() {
        let (_tmp, node) = identity();
        let signed = node.sign_request("GET", "/", b"", NOW, &new_nonce());
        for (header, value) in [
            (HEADER_NODE, "node-1"),
            (HEADER_TIMESTAMP, "yesterday"),
            (HEADER_NONCE, "short"),
            (HEADER_NONCE, "has spaces in it, sixteen+"),
        ] {
            let mut headers = headers_of(&signed);
            headers.insert(header, HeaderValue::from_static(value));
            assert!(
                matches!(SignedHeaders::from_headers(&headers), Err(SignatureError::Malformed { header: h, .. }) if h == header),
                "{header}: {value}"
            );
        }
        let mut bad = signed.clone();
        bad.signature = "xyz".into();
        assert!(matches!(
            bad.verify("GET", "/", b"", &node.verifying_key(), NOW),
            Err(SignatureError::Malformed {
                header: HEADER_SIGNATURE,
                ..
            })
        ));
        bad.signature = "abcd".into();
        assert!(matches!(
            bad.verify("GET", "/", b"", &node.verifying_key(), NOW),
            Err(SignatureError::Malformed {
                header: HEADER_SIGNATURE,
                ..
            })
        ));
    }

    #[test]
    fn requests_outside_the_clock_window_are_stale() {
        let (_tmp, node) = identity();
        let key = node.verifying_key();
        let old = node.sign_request("GET", "/", b"", NOW - 61, &new_nonce());
        assert_eq!(
            old.verify("GET", "/", b"", &key, NOW),
            Err(SignatureError::Stale { skew_secs: -61 })
        );
        let future = node.sign_request("GET", "/", b"", NOW + 61, &new_nonce());
        assert_eq!(
            future.verify("GET", "/", b"", &key, NOW),
            Err(SignatureError::Stale { skew_secs: 61 })
        );
    }

    #[test]
    fn any_change_to_a_signed_part_breaks_the_signature() {
        let (_tmp, node) = identity();
        let (_tmp2, other) = identity();
        let key = node.verifying_key();
        let signed = node.sign_request("POST", "/api/a", BODY, NOW, &new_nonce());
        let bad = |result| assert_eq!(result, Err(SignatureError::BadSignature));
        bad(signed.verify("PUT", "/api/a", BODY, &key, NOW));
        bad(signed.verify("POST", "/api/b", BODY, &key, NOW));
        bad(signed.verify("POST", "/api/a", b"{\"ready\":false}", &key, NOW));
        bad(signed.verify("POST", "/api/a", BODY, &other.verifying_key(), NOW));
        let mut changed = signed.clone();
        changed.timestamp += 1;
        bad(changed.verify("POST", "/api/a", BODY, &key, NOW));
        let mut changed = signed.clone();
        changed.nonce = new_nonce();
        bad(changed.verify("POST", "/api/a", BODY, &key, NOW));
        let mut changed = signed.clone();
        changed.node_id = other.node_id();
        bad(changed.verify("POST", "/api/a", BODY, &key, NOW));
        // A valid signature by another node's key over the same request.
        let forged = other.sign_request("POST", "/api/a", BODY, NOW, &signed.nonce);
        let mut changed = signed.clone();
        changed.signature = forged.signature;
        bad(changed.verify("POST", "/api/a", BODY, &key, NOW));
    }

    #[test]
    fn public_keys_parse_from_hex() {
        let (_tmp, node) = identity();
        assert_eq!(
            parse_public_key(&node.public_key_hex()),
            Ok(node.verifying_key())
        );
        assert_eq!(parse_public_key("zz"), Err("not hexadecimal"));
        assert_eq!(parse_public_key("abcd"), Err("not 32 bytes long"));
    }
}
