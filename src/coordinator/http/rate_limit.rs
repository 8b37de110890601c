//! Sliding-window limits per source address: new registrations in `open`
//! mode and failed admin attempts. Time is passed in, so the windows are
//! tested without sleeping. IPv6 clients are counted per /64, the block
//! one host usually gets.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The address a request came from; `None` where the server was not set up
/// to record it (a router driven directly, without a listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// The key an address is counted under.
fn bucket(addr: Option<IpAddr>) -> IpAddr {
    match addr {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(IpAddr::V4(v4)) => IpAddr::V4(v4),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// At most `limit` events per address in any `window`.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    events: HashMap<IpAddr, VecDeque<Instant>>,
    last_sweep: Option<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: usize, window: Duration) -> Self {
        SlidingWindow {
            limit,
            window,
            events: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Shared by the handlers of one server.
    pub fn shared(limit: usize, window: Duration) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self::new(limit, window)))
    }

    /// How long `addr` must wait until one more event fits, or `None` when
    /// one fits now.
    pub fn wait(&mut self, addr: Option<IpAddr>, now: Instant) -> Option<Duration> {
        self.sweep(now);
        let key = bucket(addr);
        let window = self.window;
        let events = self.events.get_mut(&key)?;
        while events
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            events.pop_front();
        }
        if events.len() < self.limit {
            return None;
        }
        let oldest = *events.front()?;
        Some((oldest + window).saturating_duration_since(now))
    }

    /// Counts one event of `addr`.
    pub fn record(&mut self, addr: Option<IpAddr>, now: Instant) {
        self.events.entry(bucket(addr)).or_default().push_back(now);
    }

    /// Counts an event when it fits; else how long to wait.
    pub fn try_acquire(&mut self, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        match self.wait(addr, now) {
            Some(wait) => Err(wait),
            None => {
                self.record(addr, now);
                Ok(())
            }
        }
    }

    /// Forgets addresses with no event in the window, at most once per
    /// window, so memory follows the addresses seen lately.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < self.window)
        {
            return;
        }
        self.last_sweep = Some(now);
        let window = self.window;
        self.events.retain(|_, events| {
            events
                .back()
                .is_some_and(|&t| now.saturating_duration_since(t) < window)
        });
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    #[test]
    fn the_window_slides_per_address() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut limit = SlidingWindow::new(2, minute);
        let a = ip("192.0.2.1");
        assert_eq!(limit.try_acquire(a, t0), Ok(()));
        assert_eq!(limit.try_acquire(a, t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(
            limit.try_acquire(a, t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40)),
            "full until the first event leaves the window"
        );
        assert_eq!(
            limit.try_acquire(ip("192.0.2.2"), t0),
            Ok(()),
            "another address"
        );
        assert_eq!(
            limit.try_acquire(a, t0 + minute),
            Ok(()),
            "the first one left"
        );
        assert!(limit.try_acquire(a, t0 + minute).is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let t0 = Instant::now();
        let mut limit = SlidingWindow::new(1, Duration::from_secs(60));
        assert!(limit.try_acquire(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(limit.try_acquire(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert!(limit.try_acquire(ip("2001:db8:1:3::1"), t0).is_ok());
        assert!(limit.try_acquire(ip("192.0.2.9"), t0).is_ok());
        assert!(limit.try_acquire(ip("::ffff:192.0.2.9"), t0).is_err());
    }

    #[test]
    fn quiet_addresses_are_forgotten() {
        let t0 = Instant::now();
        let window = Duration::from_secs(60);
        let mut limit = SlidingWindow::new(1, window);
        for i in 0..100u8 {
            limit.record(Some(IpAddr::from([10, 0, 0, i])), t0);
        }
        assert_eq!(limit.wait(None, t0 + window), None);
        assert_eq!(limit.events.len(), 0);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(40)), 40);
    }
}
