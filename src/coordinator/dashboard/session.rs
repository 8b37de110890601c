//! The admin's dashboard session: an HttpOnly, SameSite=Strict cookie
//! holding an expiry and an HMAC of it keyed from the admin token (no
//! server-side state, so every replica with the same admin token accepts
//! it, and a new token ends every session).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::coordinator::http::admin::AdminGuard;

/// The session cookie's name.
pub const COOKIE: &str = "garage_session";
/// How long a sign-in lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// What the session key is derived for (see [`AdminGuard::derived_key`]).
const KEY_PURPOSE: &str = "garage dashboard session v1";

/// Issues and checks session cookies; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    key: [u8; 32],
}

impl std::fmt::Debug for Sessions {
    // By hand: the key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(admin: &AdminGuard) -> Self {
        Sessions {
            key: admin.derived_key(KEY_PURPOSE),
        }
    }

    fn mac(&self, expiry: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("v1.{expiry}").as_bytes());
        mac
    }

    /// A cookie value valid until `now_secs` + [`LIFETIME`]: `v1.<expiry>.<hex HMAC>`.
    pub fn issue(&self, now_secs: u64) -> String {
        let expiry = now_secs + LIFETIME.as_secs();
        let tag = hex::encode(self.mac(expiry).finalize().into_bytes());
        format!("v1.{expiry}.{tag}")
    }

    /// Whether `value` is a cookie this coordinator's admin token signed
    /// that has not expired at `now_secs` (the tag compared in constant time).
    pub fn valid(&self, value: &str, now_secs: u64) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some("v1"), Some(expiry), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expiry), Ok(tag)) = (expiry.parse::<u64>(), hex::decode(tag)) else {
            return false;
        };
        expiry > now_secs && self.mac(expiry).verify_slice(&tag).is_ok()
    }
}

/// The `Set-Cookie` value that signs the admin in; `secure` when the
/// dashboard is reached over https (a proxy's `X-Forwarded-Proto`).
pub fn sign_in_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that signs out.
pub fn sign_out_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::metrics::CoordinatorMetrics;

    fn sessions(token: &str) -> Sessions {
        Sessions::new(&AdminGuard::new(token, CoordinatorMetrics::new()))
    }

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_for_its_token() {
        let a = sessions("0123456789abcdef0123456789abcdef");
        let cookie = a.issue(1_000);
        assert!(a.valid(&cookie, 1_000));
        assert!(a.valid(&cookie, 1_000 + LIFETIME.as_secs() - 1));
        assert!(!a.valid(&cookie, 1_000 + LIFETIME.as_secs()));
        let b = sessions("fedcba9876543210fedcba9876543210");
        assert!(!b.valid(&cookie, 1_000), "another admin token's cookie");
    }

    #[test]
    fn a_tampered_or_malformed_cookie_is_refused() {
        let a = sessions("0123456789abcdef0123456789abcdef");
        let cookie = a.issue(1_000);
        let (head, tag) = cookie.rsplit_once('.').expect("three parts");
        let longer = head.replace(&(1_000 + LIFETIME.as_secs()).to_string(), "99999999999");
        assert!(!a.valid(&format!("{longer}.{tag}"), 1_000), "expiry moved");
        for bad in [
            "",
            "v1",
            "v1.1.",
            "v2.99999999999.00",
            "v1.x.00",
            "v1.99999999999.zz",
        ] {
            assert!(!a.valid(bad, 1_000), "{bad:?}");
        }
    }
}
