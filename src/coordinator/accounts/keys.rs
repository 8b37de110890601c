//! API keys, made like join tokens: `gk_<16 hex id>_<64 hex secret>`; the
//! id names the account in lists and revocations, the secret is shown once
//! and kept only as its SHA-256, compared in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every API key starts with this.
pub const PREFIX: &str = "gk_";

const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// An API key as a client sends it. `Debug` hides the secret; `Display`
/// shows the whole key (for the one time it is printed).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The account's public id, hex.
    pub id: String,
    secret: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}_{}", self.id, self.secret)
    }
}

fn is_lower_hex(text: &str, bytes: usize) -> bool {
    text.len() == bytes * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ApiKey {
    /// A new random key.
    pub fn generate() -> Self {
        ApiKey {
            id: hex::encode(rand::random::<[u8; ID_BYTES]>()),
            secret: hex::encode(rand::random::<[u8; SECRET_BYTES]>()),
        }
    }

    /// Parses `gk_<16 hex>_<64 hex>` (surrounding whitespace ignored);
    /// `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, secret) = text.trim().strip_prefix(PREFIX)?.split_once('_')?;
        (is_lower_hex(id, ID_BYTES) && is_lower_hex(secret, SECRET_BYTES)).then(|| ApiKey {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// What the store keeps instead of the secret.
    pub fn secret_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }

    /// Whether this key's secret is the one whose digest is `stored`, in
    /// constant time.
    pub fn matches(&self, stored: &[u8; 32]) -> bool {
        bool::from(self.secret_sha256().ct_eq(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_hide_their_secret_and_match_only_their_digest() {
        let key = ApiKey::generate();
        let text = key.to_string();
        assert!(text.starts_with(PREFIX), "{text}");
        assert_eq!(ApiKey::parse(&format!(" {text}\n")), Some(key.clone()));
        assert!(!format!("{key:?}").contains(&key.secret));
        assert!(key.matches(&key.secret_sha256()));
        assert!(!key.matches(&ApiKey::generate().secret_sha256()));
        for bad in [
            "",
            "gk_",
            "gk_abc_def",
            &text.replace("gk_", "gjt_"),
            &text.to_uppercase(),
            &text.replacen('_', ".", 2),
        ] {
            assert_eq!(ApiKey::parse(bad), None, "{bad}");
        }
    }
}
