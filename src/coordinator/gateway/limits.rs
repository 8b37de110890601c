//! Per-account gateway limits: requests in flight at once (a permit held
//! until the answer's last byte) and requests per minute (a token bucket
//! that refills continuously). Both refuse with 429 and a `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::GatewayError;

/// The defaults: 32 requests at once, 600 a minute.
pub const DEFAULT_CONCURRENCY: u32 = 32;
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 600;
/// Accounts remembered at most; past it, idle ones are forgotten.
const MAX_TRACKED_ACCOUNTS: usize = 100_000;

/// The limits as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    pub concurrency: u32,
    pub requests_per_minute: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            concurrency: DEFAULT_CONCURRENCY,
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
        }
    }
}

#[derive(Debug)]
struct Account {
    in_flight: Arc<Semaphore>,
    tokens: f64,
    refilled: Instant,
}

/// Every account's limits; cheap to clone.
#[derive(Debug, Clone)]
pub struct AccountLimits {
    settings: LimitSettings,
    accounts: Arc<Mutex<HashMap<String, Account>>>,
}

/// A request's place in its account's concurrency; freed on drop.
#[derive(Debug)]
pub struct Permit {
    _held: OwnedSemaphorePermit,
}

impl AccountLimits {
    pub fn new(settings: LimitSettings) -> Self {
        AccountLimits {
            settings,
            accounts: Arc::default(),
        }
    }

    /// Admits one request of `account` at `now`, or says how long to wait.
    pub fn admit(&self, account: &str, now: Instant) -> Result<Permit, GatewayError> {
        let per_minute = f64::from(self.settings.requests_per_minute.max(1));
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        if accounts.len() >= MAX_TRACKED_ACCOUNTS && !accounts.contains_key(account) {
            accounts.retain(|_, a| {
                a.in_flight.available_permits() < self.settings.concurrency as usize
            });
        }
        let entry = accounts
            .entry(account.to_string())
            .or_insert_with(|| Account {
                in_flight: Arc::new(Semaphore::new(self.settings.concurrency.max(1) as usize)),
                tokens: per_minute,
                refilled: now,
            });
        let elapsed = now.saturating_duration_since(entry.refilled).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * per_minute / 60.0).min(per_minute);
        entry.refilled = now;
        if entry.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - entry.tokens) * 60.0 / per_minute);
            return Err(GatewayError::account_limit(
                format!(
                    "this account may send {} requests a minute through the gateway",
                    self.settings.requests_per_minute
                ),
                wait.as_secs().max(1),
            ));
        }
        let permit = Arc::clone(&entry.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                GatewayError::account_limit(
                    format!(
                        "this account may have {} gateway requests in flight at once",
                        self.settings.concurrency
                    ),
                    1,
                )
            })?;
        entry.tokens -= 1.0;
        Ok(Permit { _held: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_and_rate_are_limited_per_account() {
        let limits = AccountLimits::new(LimitSettings {
            concurrency: 2,
            requests_per_minute: 3,
        });
        let now = Instant::now();
        let a = limits.admit("a", now).unwrap();
        let _b = limits.admit("a", now).unwrap();
        let busy = limits.admit("a", now).unwrap_err();
        assert_eq!(busy.status.as_u16(), 429);
        let _other = limits
            .admit("other", now)
            .expect("another account has its own limits");
        drop(a);
        let _c = limits
            .admit("a", now)
            .expect("a finished request frees its place");
        let rate = limits.admit("a", now).unwrap_err();
        assert!(
            rate.message.contains("3 requests a minute"),
            "{}",
            rate.message
        );
        assert_eq!(rate.retry_after_secs, Some(20));
        assert!(
            limits.admit("a", now + Duration::from_secs(21)).is_err(),
            "still 2 in flight"
        );
    }
}
