//! Request signing and verification: the canonical string, clock skew, tampering.

use axum::http::HeaderValue;

use super::*;
use crate::identity::NodeIdentity;

const NOW: i64 = 1_800_000_000;
const COORD: Uuid = Uuid::from_u128(0x0c00_0d1a_7e00_4000_8000_0000_0000_00a1);
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
    let message = canonical_message(
        COORD,
        "POST",
        "/api/nodes/x/heartbeat",
        b"{}",
        42,
        "n0nce",
        id,
    );
    assert_eq!(
        message,
        "garage-sig-v2\n0c000d1a-7e00-4000-8000-0000000000a1\nPOST\n/api/nodes/x/heartbeat\n\
         44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n42\nn0nce\n\
         6f1c2a7e-9a57-4d8e-8f43-1d2a3b4c5d6e"
    );
}

#[test]
fn a_signed_request_verifies_through_its_headers() {
    let (_tmp, node) = identity();
    let signed = node.sign_request(COORD, "POST", "/api/x", BODY, NOW, &new_nonce());
    let parsed = SignedHeaders::from_headers(&headers_of(&signed)).expect("parses");
    assert_eq!(parsed, signed);
    parsed
        .verify(
            COORD,
            "POST",
            "/api/x",
            BODY,
            &node.verifying_key(),
            NOW + 59,
        )
        .expect("verifies");
}

#[test]
fn every_missing_header_makes_an_unsigned_request() {
    let (_tmp, node) = identity();
    let signed = node.sign_request(COORD, "GET", "/", b"", NOW, &new_nonce());
    for header in [
        HEADER_NODE,
        HEADER_COORDINATOR,
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
    let signed = node.sign_request(COORD, "GET", "/", b"", NOW, &new_nonce());
    for (header, value) in [
        (HEADER_NODE, "node-1"),
        (HEADER_COORDINATOR, "coordinator-a"),
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
        bad.verify(COORD, "GET", "/", b"", &node.verifying_key(), NOW),
        Err(SignatureError::Malformed {
            header: HEADER_SIGNATURE,
            ..
        })
    ));
    bad.signature = "abcd".into();
    assert!(matches!(
        bad.verify(COORD, "GET", "/", b"", &node.verifying_key(), NOW),
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
    let old = node.sign_request(COORD, "GET", "/", b"", NOW - 61, &new_nonce());
    assert_eq!(
        old.verify(COORD, "GET", "/", b"", &key, NOW),
        Err(SignatureError::Stale { skew_secs: -61 })
    );
    let future = node.sign_request(COORD, "GET", "/", b"", NOW + 61, &new_nonce());
    assert_eq!(
        future.verify(COORD, "GET", "/", b"", &key, NOW),
        Err(SignatureError::Stale { skew_secs: 61 })
    );
}

#[test]
fn any_change_to_a_signed_part_breaks_the_signature() {
    let (_tmp, node) = identity();
    let (_tmp2, other) = identity();
    let key = node.verifying_key();
    let signed = node.sign_request(COORD, "POST", "/api/a", BODY, NOW, &new_nonce());
    let bad = |result| assert_eq!(result, Err(SignatureError::BadSignature));
    bad(signed.verify(COORD, "PUT", "/api/a", BODY, &key, NOW));
    bad(signed.verify(COORD, "POST", "/api/b", BODY, &key, NOW));
    bad(signed.verify(COORD, "POST", "/api/a", b"{\"ready\":false}", &key, NOW));
    bad(signed.verify(COORD, "POST", "/api/a", BODY, &other.verifying_key(), NOW));
    let mut changed = signed.clone();
    changed.timestamp += 1;
    bad(changed.verify(COORD, "POST", "/api/a", BODY, &key, NOW));
    let mut changed = signed.clone();
    changed.nonce = new_nonce();
    bad(changed.verify(COORD, "POST", "/api/a", BODY, &key, NOW));
    let mut changed = signed.clone();
    changed.node_id = other.node_id();
    bad(changed.verify(COORD, "POST", "/api/a", BODY, &key, NOW));
    // A valid signature by another node's key over the same request.
    let forged = other.sign_request(COORD, "POST", "/api/a", BODY, NOW, &signed.nonce);
    let mut changed = signed.clone();
    changed.signature = forged.signature;
    bad(changed.verify(COORD, "POST", "/api/a", BODY, &key, NOW));
}

#[test]
fn timestamps_outside_the_sane_range_are_refused_before_any_arithmetic() {
    let (_tmp, node) = identity();
    let key = node.verifying_key();
    let far_past = -62_135_596_800; // 0001-01-01
    let far_future = 253_402_300_800; // 10000-01-01
    for timestamp in [
        i64::MIN,
        i64::MIN + 1,
        -1,
        0,
        far_past,
        far_future,
        i64::MAX,
    ] {
        let signed = node.sign_request(COORD, "GET", "/", b"", timestamp, &new_nonce());
        let text = signed.timestamp.to_string();
        let mut headers = headers_of(&signed);
        headers.insert(
            HEADER_TIMESTAMP,
            HeaderValue::from_str(&text).expect("ascii"),
        );
        assert!(
            matches!(
                SignedHeaders::from_headers(&headers),
                Err(SignatureError::Malformed {
                    header: HEADER_TIMESTAMP,
                    ..
                })
            ),
            "{timestamp} parsed"
        );
        // Also when the headers were built by hand, and at any clock.
        for now in [NOW, i64::MIN, i64::MAX, timestamp] {
            assert!(
                matches!(
                    signed.verify(COORD, "GET", "/", b"", &key, now),
                    Err(SignatureError::Malformed {
                        header: HEADER_TIMESTAMP,
                        ..
                    })
                ),
                "{timestamp} at {now} verified"
            );
        }
    }
    // The ends of the range are valid timestamps, judged by freshness.
    for timestamp in [*TIMESTAMP_RANGE.start(), *TIMESTAMP_RANGE.end()] {
        let signed = node.sign_request(COORD, "GET", "/", b"", timestamp, &new_nonce());
        SignedHeaders::from_headers(&headers_of(&signed)).expect("in range");
        signed
            .verify(COORD, "GET", "/", b"", &key, timestamp)
            .expect("fresh at its own time");
        assert!(matches!(
            signed.verify(COORD, "GET", "/", b"", &key, i64::MIN),
            Err(SignatureError::Malformed { .. })
        ));
    }
}

#[test]
fn nonces_expire_a_window_after_the_timestamp_without_overflow() {
    let (_tmp, node) = identity();
    let signed = node.sign_request(COORD, "GET", "/", b"", NOW, &new_nonce());
    assert_eq!(signed.stale_after_ms(), Ok((NOW + 61) * 1000));
    let mut huge = signed.clone();
    huge.timestamp = i64::MAX;
    assert!(matches!(
        huge.stale_after_ms(),
        Err(SignatureError::Malformed {
            header: HEADER_TIMESTAMP,
            ..
        })
    ));
}

#[test]
fn a_request_signed_for_another_coordinator_is_refused() {
    let (_tmp, node) = identity();
    let other = Uuid::from_u128(0xb);
    let signed = node.sign_request(COORD, "POST", "/api/x", BODY, NOW, &new_nonce());
    assert_eq!(
        signed.verify(other, "POST", "/api/x", BODY, &node.verifying_key(), NOW),
        Err(SignatureError::WrongCoordinator {
            signed_for: COORD,
            this: other
        })
    );
    // Claiming the other coordinator in the header breaks the signature.
    let mut relabelled = signed.clone();
    relabelled.coordinator = other;
    assert_eq!(
        relabelled.verify(other, "POST", "/api/x", BODY, &node.verifying_key(), NOW),
        Err(SignatureError::BadSignature)
    );
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
