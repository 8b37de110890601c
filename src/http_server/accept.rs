//! Accepting connections without dying or spinning: errors that concern one
//! connection are skipped; running out of file descriptors (EMFILE, ENFILE)
//! or memory closes the oldest idle connection and backs off ([`BACKOFF`]:
//! 50 ms doubling to 1 s); every such log line is throttled to one per
//! [`LOG_EVERY`] with a count, so a flood cannot fill the log.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::backoff::{Backoff, Policy};

use super::connections::Connections;

/// Pauses after failed accepts: 50 ms doubling to 1 s, reset by an accept.
pub const BACKOFF: Policy = Policy::doubling(Duration::from_millis(50), Duration::from_secs(1));
/// At most one log line per kind of trouble this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Lets one log line through per period and counts the rest.
#[derive(Debug)]
pub(super) struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    pub(super) fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(count of lines held back since the last one)` when a line may
    /// be written now.
    pub(super) fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + self.every) {
            self.held_back = self.held_back.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// The listener with its backoff state.
#[derive(Debug)]
pub(super) struct Acceptor {
    listener: TcpListener,
    backoff: Backoff,
    log: Throttle,
}

/// Errors about one incoming connection that says nothing about the next.
fn concerns_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

impl Acceptor {
    pub(super) fn new(listener: TcpListener) -> Self {
        Acceptor {
            listener,
            backoff: Backoff::new(BACKOFF),
            log: Throttle::new(LOG_EVERY),
        }
    }

    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection; never fails (see the module doc).
    pub(super) async fn accept(&mut self, connections: &Connections) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => {
                    self.backoff.reset();
                    return accepted;
                }
                Err(err) if concerns_one_connection(&err) => {}
                Err(err) => {
                    let freed = connections.evict_oldest_idle();
                    if let Some(held_back) = self.log.allow() {
                        tracing::warn!(
                            error = %err,
                            open_connections = connections.len(),
                            closed_an_idle_connection = freed,
                            similar_errors_not_logged = held_back,
                            "cannot accept a connection (out of file descriptors? raise `ulimit -n`); backing off"
                        );
                    }
                    tokio::time::sleep(self.backoff.fail()).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_period_with_the_count_held_back() {
        let mut throttle = Throttle::new(Duration::from_secs(10));
        assert_eq!(throttle.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.allow(), None);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(throttle.allow(), Some(1000));
        assert_eq!(throttle.allow(), None);
    }

    #[test]
    fn out_of_descriptors_is_not_a_per_connection_error() {
        let emfile = io::Error::from_raw_os_error(24);
        let enfile = io::Error::from_raw_os_error(23);
        assert!(!concerns_one_connection(&emfile));
        assert!(!concerns_one_connection(&enfile));
        assert!(concerns_one_connection(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
    }
}
