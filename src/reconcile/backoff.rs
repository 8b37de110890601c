//! Kubelet-like restart backoff per component: the first restart after a
//! crash is immediate, later ones wait `initial` doubling up to `max` (the
//! crate's one [`Backoff`] curve), and a component that ran for
//! `reset_after` is forgiven. Uses tokio's clock so tests run on paused time.

use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::{later, Backoff, Policy};

use crate::spec::BackoffSettings;

/// The curve of restarts under `settings`.
fn policy(settings: BackoffSettings) -> Policy {
    Policy {
        immediate_first: true,
        ..Policy::doubling(settings.initial, settings.max)
    }
}

/// Restart bookkeeping of one component.
#[derive(Debug, Clone)]
pub struct RestartBackoff {
    reset_after: Duration,
    /// Failures since the last reset, on the restart curve.
    curve: Backoff,
    /// No retry before this instant.
    not_before: Option<Instant>,
    /// When the agent last started the container.
    last_started: Option<Instant>,
}

impl RestartBackoff {
    pub fn new(settings: BackoffSettings) -> Self {
        RestartBackoff {
            reset_after: settings.reset_after,
            curve: Backoff::new(policy(settings)),
            not_before: None,
            last_started: None,
        }
    }

    pub fn set_settings(&mut self, settings: BackoffSettings) {
        self.reset_after = settings.reset_after;
        self.curve.set_policy(policy(settings));
    }

    /// Records a crash or a failed attempt at `now`; returns the delay before
    /// the next attempt is allowed.
    pub fn record_failure(&mut self, now: Instant) -> Duration {
        if let Some(started) = self.last_started {
            if now.saturating_duration_since(started) >= self.reset_after {
                self.curve.reset();
            }
        }
        let delay = self.curve.fail();
        self.not_before = Some(later(now, delay));
        delay
    }

    /// Records that the container was started at `now`.
    pub fn record_start(&mut self, now: Instant) {
        self.last_started = Some(now);
    }

    /// Forgets all failures (the component's configuration changed).
    pub fn reset(&mut self) {
        self.curve.reset();
        self.not_before = None;
    }

    /// When the next attempt may run, if it must wait at all.
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        self.not_before.filter(|t| *t > now)
    }

    /// The delay currently imposed (zero when none).
    pub fn current_delay(&self, now: Instant) -> Duration {
        self.ready_at(now)
            .map(|t| t - now)
            .unwrap_or(Duration::ZERO)
    }

    pub fn failures(&self) -> u32 {
        self.curve.failures()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BackoffSettings {
        BackoffSettings::default()
    }

    #[tokio::test(start_paused = true)]
    async fn doubles_from_initial_to_max_after_an_immediate_first_retry() {
        let mut backoff = RestartBackoff::new(settings());
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.record_failure(Instant::now()).as_secs())
            .collect();
        assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overflowing_delay_waits_a_year_instead_of_panicking() {
        let year = Duration::from_secs(365 * 24 * 3600);
        let now = Instant::now();
        assert_eq!(later(now, Duration::MAX), now + year);
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let mut backoff = RestartBackoff::new(BackoffSettings {
            initial: Duration::from_secs(u64::MAX),
            max: Duration::MAX,
            reset_after: Duration::MAX,
        });
        backoff.record_failure(now);
        assert_eq!(backoff.record_failure(now), Duration::from_secs(u64::MAX));
        assert_eq!(backoff.current_delay(now), year);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_until_the_delay_has_passed() {
        let mut backoff = RestartBackoff::new(settings());
        backoff.record_failure(Instant::now());
        backoff.record_failure(Instant::now());
        assert_eq!(
            backoff.current_delay(Instant::now()),
            Duration::from_secs(10)
        );
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(backoff.ready_at(Instant::now()).is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(backoff.ready_at(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn forgives_after_running_for_reset_after() {
        let mut backoff = RestartBackoff::new(settings());
        for _ in 0..5 {
            backoff.record_failure(Instant::now());
        }
        backoff.record_start(Instant::now());
        tokio::time::advance(Duration::from_secs(599)).await;
        assert_eq!(
            backoff.record_failure(Instant::now()),
            Duration::from_secs(160)
        );
        backoff.record_start(Instant::now());
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(backoff.record_failure(Instant::now()), Duration::ZERO);
        assert_eq!(backoff.failures(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn reset_clears_the_wait() {
        let mut backoff = RestartBackoff::new(settings());
        backoff.record_failure(Instant::now());
        backoff.record_failure(Instant::now());
        backoff.reset();
        assert_eq!(backoff.ready_at(Instant::now()), None);
        assert_eq!(backoff.record_failure(Instant::now()), Duration::ZERO);
    }
}
