//! Join tokens, after Kubernetes' bootstrap tokens: `gjt_<id>.<secret>`,
//! made by an admin, shown once, stored as the SHA-256 of the secret, with an
//! expiry, a use count and optionally the one node id they admit. This
//! module makes, parses and checks them; the store keeps them.

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::admission_rules::AdmissionError;

/// Every join token starts with this.
pub const PREFIX: &str = "gjt_";
/// Lifetime of a token when none is asked for.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest lifetime an admin may give a token.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// The most uses one token may have.
pub const MAX_USES: u32 = 100_000;

const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A join token as a node sends it. `Debug` hides the secret; `Display`
/// shows the whole token (for the one time it is printed).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Public part, hex: names the token in lists and revocations.
    pub id: String,
    secret: String,
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}.{}", self.id, self.secret)
    }
}

fn is_lower_hex(text: &str, bytes: usize) -> bool {
    text.len() == bytes * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl JoinToken {
    /// A new random token.
    pub fn generate() -> Self {
        JoinToken {
            id: hex::encode(rand::random::<[u8; ID_BYTES]>()),
            secret: hex::encode(rand::random::<[u8; SECRET_BYTES]>()),
        }
    }

    /// Parses `gjt_<16 hex>.<64 hex>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, AdmissionError> {
        let parsed = text
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .filter(|(id, secret)| {
                is_lower_hex(id, ID_BYTES) && is_lower_hex(secret, SECRET_BYTES)
            });
        match parsed {
            Some((id, secret)) => Ok(JoinToken {
                id: id.to_string(),
                secret: secret.to_string(),
            }),
            None => Err(AdmissionError::MalformedToken),
        }
    }

    /// What the store keeps instead of the secret.
    pub fn secret_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }
}

/// A token as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub id: String,
    pub secret_sha256: [u8; 32],
    /// The only node id this token admits, when bound.
    pub node_id: Option<Uuid>,
    pub uses_total: u32,
    pub uses_left: u32,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// Whether a token can still admit a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    UsedUp,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::UsedUp => "used_up",
        }
    }
}

impl StoredToken {
    pub fn state(&self, now_ms: i64) -> TokenState {
        if now_ms >= self.expires_at_ms {
            TokenState::Expired
        } else if self.uses_left == 0 {
            TokenState::UsedUp
        } else {
            TokenState::Active
        }
    }
}

/// Whether `given` may admit `node_id` now. `stored` is the row with
/// `given.id`, if any; `must_be_bound` asks for a token issued for exactly
/// this id (a deleted id's way back, issue 9 B7).
pub fn check(
    stored: Option<&StoredToken>,
    given: &JoinToken,
    node_id: Uuid,
    must_be_bound: bool,
    now_ms: i64,
) -> Result<(), AdmissionError> {
    let unknown = || AdmissionError::UnknownToken {
        id: given.id.clone(),
    };
    let stored = stored.ok_or_else(unknown)?;
    if !bool::from(stored.secret_sha256.ct_eq(&given.secret_sha256())) {
        return Err(unknown());
    }
    match stored.state(now_ms) {
        TokenState::Expired => {
            return Err(AdmissionError::ExpiredToken {
                id: stored.id.clone(),
                expired_at_ms: stored.expires_at_ms,
            })
        }
        TokenState::UsedUp => {
            return Err(AdmissionError::UsedUpToken {
                id: stored.id.clone(),
                uses: stored.uses_total,
            })
        }
        TokenState::Active => {}
    }
    match stored.node_id {
        Some(bound) if bound != node_id => Err(AdmissionError::TokenForOtherNode {
            id: stored.id.clone(),
            bound,
            node_id,
        }),
        None if must_be_bound => Err(AdmissionError::DeletedNode { node_id }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn stored(token: &JoinToken, node_id: Option<Uuid>, uses_left: u32) -> StoredToken {
        StoredToken {
            id: token.id.clone(),
            secret_sha256: token.secret_sha256(),
            node_id,
            uses_total: 2,
            uses_left,
            created_at_ms: NOW - 1000,
            expires_at_ms: NOW + 1000,
        }
    }

    #[test]
    fn tokens_round_trip_and_hide_their_secret_in_debug() {
        let token = JoinToken::generate();
        let text = token.to_string();
        assert!(text.starts_with(PREFIX), "{text}");
        assert_eq!(
            JoinToken::parse(&format!(" {text}\n")).expect("parses"),
            token
        );
        assert!(!format!("{token:?}").contains(&token.secret));
        for bad in [
            "",
            "gjt_",
            "gjt_abc.def",
            &text.replace("gjt_", "xyz_"),
            &text.to_uppercase(),
        ] {
            assert!(
                matches!(JoinToken::parse(bad), Err(AdmissionError::MalformedToken)),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_refusal_is_told_apart() {
        let token = JoinToken::generate();
        let node = Uuid::from_u128(1);
        let other = Uuid::from_u128(2);
        let ok = stored(&token, None, 1);
        assert!(check(Some(&ok), &token, node, false, NOW).is_ok());
        assert!(matches!(
            check(None, &token, node, false, NOW),
            Err(AdmissionError::UnknownToken { .. })
        ));
        let mut wrong_secret = ok.clone();
        wrong_secret.secret_sha256 = JoinToken::generate().secret_sha256();
        assert!(matches!(
            check(Some(&wrong_secret), &token, node, false, NOW),
            Err(AdmissionError::UnknownToken { .. })
        ));
        assert!(matches!(
            check(Some(&ok), &token, node, false, ok.expires_at_ms),
            Err(AdmissionError::ExpiredToken { .. })
        ));
        assert!(matches!(
            check(Some(&stored(&token, None, 0)), &token, node, false, NOW),
            Err(AdmissionError::UsedUpToken { uses: 2, .. })
        ));
        let bound = stored(&token, Some(other), 1);
        assert!(matches!(
            check(Some(&bound), &token, node, false, NOW),
            Err(AdmissionError::TokenForOtherNode { .. })
        ));
        assert!(check(Some(&bound), &token, other, true, NOW).is_ok());
        assert!(matches!(
            check(Some(&ok), &token, node, true, NOW),
            Err(AdmissionError::DeletedNode { .. })
        ));
    }
}
