//! The one exponential backoff of the crate: a delay that doubles from
//! `initial` up to `max` with every failure, optionally immediate on the
//! first failure (kubelet's restarts) and optionally jittered to between
//! half and all of it (so nodes cut off together do not come back
//! together). The reconciler's restarts, the coordinator heartbeat's
//! retries, the engine event stream's reconnects and the HTTP server's
//! accept loop all count failures here; only their settings differ.

use std::time::Duration;

use tokio::time::Instant;

/// `now + delay`, capped at a year from now: a delay that would overflow the
/// clock (a setting that slipped past validation, a server's hint) waits
/// long instead of panicking ("overflow when adding duration to instant").
pub fn later(now: Instant, delay: Duration) -> Instant {
    const CAP: Duration = Duration::from_secs(365 * 24 * 3600);
    now.checked_add(delay.min(CAP)).unwrap_or(now)
}

/// The shape of a backoff: how the delay grows with the failures counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The delay after the first failure that waits at all.
    pub initial: Duration,
    /// No delay is longer.
    pub max: Duration,
    /// The first failure is retried at once (kubelet's restarts).
    pub immediate_first: bool,
    /// Each delay is scaled to between half and all of itself at random.
    pub jitter: bool,
}

impl Policy {
    /// Doubling from `initial` to `max`, no jitter, the first retry waits.
    pub const fn doubling(initial: Duration, max: Duration) -> Policy {
        Policy {
            initial,
            max,
            immediate_first: false,
            jitter: false,
        }
    }

    /// The delay after failure number `failures` (1 for the first), with
    /// `jitter` in [0, 1) used only when the policy is jittered.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let waiting = if self.immediate_first {
            failures.saturating_sub(1)
        } else {
            failures
        };
        let full = match waiting {
            0 => return Duration::ZERO,
            n => self
                .initial
                .saturating_mul(2u32.saturating_pow(n - 1))
                .min(self.max),
        };
        if self.jitter {
            full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
        } else {
            full
        }
    }
}

/// Failures counted against a [`Policy`].
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    failures: u32,
}

impl Backoff {
    pub fn new(policy: Policy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// Counts a failure; returns how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let jitter = if self.policy.jitter {
            rand::random::<f64>()
        } else {
            0.0
        };
        self.policy.delay(self.failures, jitter)
    }

    /// Forgets every failure (an attempt succeeded, or the thing retried changed).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn waits_double_up_to_the_cap_and_a_reset_starts_over() {
        let mut backoff = Backoff::new(Policy::doubling(Duration::from_millis(100), 5 * SECOND));
        let mut waited = Vec::new();
        for _ in 0..8 {
            let start = Instant::now();
            tokio::time::sleep(backoff.fail()).await;
            waited.push(start.elapsed().as_millis());
        }
        assert_eq!(waited, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.fail(), Duration::from_millis(100));
    }

    #[test]
    fn an_immediate_first_retry_shifts_the_doubling_by_one() {
        let policy = Policy {
            immediate_first: true,
            ..Policy::doubling(10 * SECOND, 300 * SECOND)
        };
        let delays: Vec<u64> = (1..=8).map(|n| policy.delay(n, 0.0).as_secs()).collect();
        assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn jitter_scales_between_half_and_all_of_the_delay() {
        let policy = Policy {
            jitter: true,
            ..Policy::doubling(SECOND, 60 * SECOND)
        };
        assert_eq!(policy.delay(1, 0.0), SECOND / 2);
        assert_eq!(policy.delay(1, 0.999_999).as_millis(), 999);
        assert_eq!(policy.delay(1, 7.0), SECOND);
        for _ in 0..100 {
            let delay = Backoff::new(policy).fail();
            assert!(delay >= SECOND / 2 && delay <= SECOND, "{delay:?}");
        }
    }

    #[test]
    fn a_huge_count_or_setting_saturates_instead_of_overflowing() {
        let policy = Policy::doubling(Duration::from_secs(u64::MAX), Duration::MAX);
        assert_eq!(policy.delay(u32::MAX, 0.0), Duration::MAX);
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::MAX),
            now + Duration::from_secs(365 * 24 * 3600)
        );
    }
}
