//! Admin access (issue 9, B8): the bearer token comes from
//! `GARAGE_ADMIN_TOKEN` or a file, never from the command line (where
//! `/proc/*/cmdline` shows it), is at least [`MIN_ADMIN_TOKEN_BYTES`] long,
//! and failed attempts are throttled per source address: after
//! [`FAILURES_ALLOWED`] in any [`FAILURE_WINDOW`] the address gets 429 until
//! the window has slid past them, even with the right token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::rate_limit::{retry_after_secs, ClientAddr, SlidingWindow};
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::identity::{self, IdentityError};

/// File in the coordinator's state directory holding the admin token when
/// neither the environment nor `--admin-token-file` gives one.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The environment variable that may hold the admin token.
pub const ADMIN_TOKEN_ENV: &str = "GARAGE_ADMIN_TOKEN";
/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;
/// Failed admin attempts one address may make per [`FAILURE_WINDOW`].
pub const FAILURES_ALLOWED: usize = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Why the admin token could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error(
        "both {ADMIN_TOKEN_ENV} and --admin-token-file are set (fix: give the admin token one way)"
    )]
    Ambiguous,
    #[error("the admin token from {from} is {len} bytes long; it must be at least {MIN_ADMIN_TOKEN_BYTES} (fix: make one with `openssl rand -hex 32`, or give none and the coordinator makes one in --state-dir)")]
    TooShort { from: String, len: usize },
    #[error("cannot read or make the admin token file")]
    File(#[source] IdentityError),
}

/// The admin token: from `env` (the value of [`ADMIN_TOKEN_ENV`]) or `file`,
/// else the [`ADMIN_TOKEN_FILE`] in `state_dir`, made at first start (mode
/// 0600). Never logged.
pub fn load_token(
    state_dir: &Path,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<String, AdminTokenError> {
    let checked = |token: &str, from: String| {
        let token = token.trim();
        if token.len() < MIN_ADMIN_TOKEN_BYTES {
            Err(AdminTokenError::TooShort {
                from,
                len: token.len(),
            })
        } else {
            Ok(token.to_string())
        }
    };
    let read = |path: &Path| identity::read_private_file(path).map_err(AdminTokenError::File);
    match (env, file) {
        (Some(_), Some(_)) => Err(AdminTokenError::Ambiguous),
        (Some(token), None) => checked(token, ADMIN_TOKEN_ENV.to_string()),
        (None, Some(path)) => checked(&read(path)?, path.display().to_string()),
        (None, None) => {
            let path: PathBuf = state_dir.join(ADMIN_TOKEN_FILE);
            if path.exists() {
                return checked(&read(&path)?, path.display().to_string());
            }
            let token = hex::encode(rand::random::<[u8; 32]>());
            identity::write_private_file(&path, format!("{token}\n").as_bytes())
                .map_err(AdminTokenError::File)?;
            tracing::info!(path = %path.display(), "wrote a new admin token (mode 0600)");
            Ok(token)
        }
    }
}

/// Why an admin request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("admin endpoints need the header `Authorization: Bearer <admin token>` with the coordinator's admin token")]
    BadToken,
    #[error("too many failed admin attempts from this address ({FAILURES_ALLOWED} in {} s); retry in {retry_after_secs} s", FAILURE_WINDOW.as_secs())]
    Throttled { retry_after_secs: u64 },
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::BadToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_admin_token",
                err.to_string(),
            ),
            AdminError::Throttled { retry_after_secs } => {
                let mut api = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "admin_throttled",
                    err.to_string(),
                );
                api.retry_after_secs = Some(retry_after_secs);
                api
            }
        }
    }
}

/// Checks admin requests; cheap to clone.
#[derive(Clone)]
pub struct AdminGuard {
    token_sha256: [u8; 32],
    failures: Arc<Mutex<SlidingWindow>>,
    metrics: CoordinatorMetrics,
}

impl std::fmt::Debug for AdminGuard {
    // By hand: the token's digest stays out of logs too.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminGuard").finish_non_exhaustive()
    }
}

impl AdminGuard {
    pub fn new(token: &str, metrics: CoordinatorMetrics) -> Self {
        AdminGuard {
            token_sha256: Sha256::digest(token.as_bytes()).into(),
            failures: SlidingWindow::shared(FAILURES_ALLOWED, FAILURE_WINDOW),
            metrics,
        }
    }

    /// Checks `Authorization: Bearer <admin token>` from `client`.
    pub fn check(&self, headers: &HeaderMap, client: ClientAddr) -> Result<(), AdminError> {
        self.check_at(headers, client, Instant::now())
    }

    /// Checks a token given some other way than the header (the
    /// dashboard's sign-in form), with the same throttling.
    pub fn check_token(&self, token: Option<&str>, client: ClientAddr) -> Result<(), AdminError> {
        self.check_token_at(token.map(str::trim), client, Instant::now())
    }

    /// A key for what the coordinator signs on the admin's behalf (the
    /// dashboard's session cookie): derived from the token, so every
    /// replica with the same token agrees and a new token ends old sessions.
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(purpose.as_bytes());
        digest.update([0]);
        digest.update(self.token_sha256);
        digest.finalize().into()
    }

    fn check_at(
        &self,
        headers: &HeaderMap,
        client: ClientAddr,
        now: Instant,
    ) -> Result<(), AdminError> {
        // The scheme name is case-insensitive (RFC 9110, section 11.1).
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        self.check_token_at(token, client, now)
    }

    fn check_token_at(
        &self,
        token: Option<&str>,
        client: ClientAddr,
        now: Instant,
    ) -> Result<(), AdminError> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(wait) = failures.wait(client.0, now) {
            self.metrics.admin_throttled.inc();
            return Err(AdminError::Throttled {
                retry_after_secs: retry_after_secs(wait),
            });
        }
        let given: Option<[u8; 32]> = token.map(|t| Sha256::digest(t.as_bytes()).into());
        if given.is_some_and(|digest| bool::from(digest.ct_eq(&self.token_sha256))) {
            return Ok(());
        }
        failures.record(client.0, now);
        self.metrics.rejected("admin_token");
        tracing::debug!("refused an admin request: no or a wrong admin token");
        Err(AdminError::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use axum::http::HeaderValue;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("ascii"),
        );
        headers
    }

    #[test]
    fn failures_are_counted_then_throttled_per_address() {
        let metrics = CoordinatorMetrics::new();
        let guard = AdminGuard::new(TOKEN, metrics.clone());
        let attacker = ClientAddr(Some("192.0.2.1".parse().expect("ip")));
        let admin = ClientAddr(Some("192.0.2.2".parse().expect("ip")));
        let t0 = Instant::now();
        assert_eq!(guard.check_at(&bearer(TOKEN), attacker, t0), Ok(()));
        assert_eq!(
            guard.check_at(&bearer(&TOKEN.to_uppercase()), attacker, t0),
            Err(AdminError::BadToken)
        );
        for _ in 1..FAILURES_ALLOWED {
            assert_eq!(
                guard.check_at(&HeaderMap::new(), attacker, t0),
                Err(AdminError::BadToken)
            );
        }
        let later = t0 + Duration::from_secs(20);
        assert_eq!(
            guard.check_at(&bearer(TOKEN), attacker, later),
            Err(AdminError::Throttled {
                retry_after_secs: 40
            }),
            "locked out even with the right token"
        );
        assert_eq!(guard.check_at(&bearer(TOKEN), admin, later), Ok(()));
        assert_eq!(
            guard.check_at(&bearer(TOKEN), attacker, t0 + FAILURE_WINDOW),
            Ok(())
        );
        assert_eq!(
            metrics
                .auth_rejections
                .with_label_values(&["admin_token"])
                .get(),
            u64::try_from(FAILURES_ALLOWED).expect("small")
        );
        assert_eq!(metrics.admin_throttled.get(), 1);
    }

    #[test]
    fn a_short_token_is_refused_from_the_environment_and_from_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = load_token(tmp.path(), Some("a"), None).expect_err("short");
        assert!(
            matches!(err, AdminTokenError::TooShort { len: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(ADMIN_TOKEN_ENV), "{err}");
        let file = tmp.path().join("token");
        identity::write_private_file(&file, b"short\n").expect("write");
        let err = load_token(tmp.path(), None, Some(&file)).expect_err("short");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        identity::write_private_file(&file, format!("{TOKEN}\n").as_bytes()).expect("write");
        assert_eq!(
            load_token(tmp.path(), None, Some(&file)).expect("ok"),
            TOKEN
        );
        assert_eq!(
            load_token(tmp.path(), Some(TOKEN), None).expect("ok"),
            TOKEN
        );
        assert!(matches!(
            load_token(tmp.path(), Some(TOKEN), Some(&file)),
            Err(AdminTokenError::Ambiguous)
        ));
    }

    #[test]
    fn the_default_token_file_is_made_once_and_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = load_token(tmp.path(), None, None).expect("made");
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(tmp.path().join(ADMIN_TOKEN_FILE))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_token(tmp.path(), None, None).expect("read"), first);
    }
}
