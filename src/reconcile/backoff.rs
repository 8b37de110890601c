//! Kubelet-like restart backoff per component: the first restart after a
//! crash is immediate, later ones wait `initial` doubling up to `max`, and a
//! component that ran for `reset_after` is forgiven. Uses tokio's clock so
//! tests run on paused time.

use std::time::Duration;

use tokio::time::Instant;

use crate::spec::BackoffSettings;

/// `now + delay`, capped at a year from now: a delay that would overflow the
/// clock (a setting that slipped past validation, a server's hint) waits
/// long instead of panicking ("overflow when adding duration to instant").
pub fn later(now: Instant, delay: Duration) -> Instant {
    const CAP: Duration = Duration::from_secs(365 * 24 * 3600);
    now.checked_add(delay.min(CAP)).unwrap_or(now)
}

/// Restart bookkeeping of one component.
#[derive(Debug, Clone)]
pub struct Backoff {
    settings: BackoffSettings,
    /// Failures since the last reset.
    failures: u32,
    /// No retry before this instant.
    not_before: Option<Instant>,
    /// When the agent last started the container.
    last_started: Option<Instant>,
}

impl Backoff {
    pub fn new(settings: BackoffSettings) -> Self {
        Backoff {
            settings,
            failures: 0,
            not_before: None,
            last_started: None,
        }
    }

    pub fn set_settings(&mut self, settings: BackoffSettings) {
        self.settings = settings;
    }

    /// Records a crash or a failed attempt at `now`; returns the delay before
    /// the next attempt is allowed.
    pub fn record_failure(&mut self, now: Instant) -> Duration {
        if let Some(started) = self.last_started {
            if now.saturating_duration_since(started) >= self.settings.reset_after {
                self.failures = 0;
            }
        }
        let delay = match self.failures {
            0 => Duration::ZERO,
            n => {
                let factor = 2u32.saturating_pow(n - 1);
                self.settings
                    .initial
                    .saturating_mul(factor)
                    .min(self.settings.max)
            }
        };
        self.failures = self.failures.saturating_add(1);
        self.not_before = Some(later(now, delay));
        delay
    }

    /// Records that the container was started at `now`.
    pub fn record_start(&mut self, now: Instant) {
        self.last_started = Some(now);
    }

    /// Forgets all failures (the component's configuration changed).
    pub fn reset(&mut self) {
        self.failures = 0;
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
        self.failures
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
        let mut backoff = Backoff::new(settings());
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
        let mut backoff = Backoff::new(BackoffSettings {
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
        let mut backoff = Backoff::new(settings());
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
        let mut backoff = Backoff::new(settings());
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
        let mut backoff = Backoff::new(settings());
        backoff.record_failure(Instant::now());
        backoff.record_failure(Instant::now());
        backoff.reset();
        assert_eq!(backoff.ready_at(Instant::now()), None);
        assert_eq!(backoff.record_failure(Instant::now()), Duration::ZERO);
    }
}
