//! The open connections of one server, oldest first, each counting the
//! requests it has in flight. At the cap, or when accepting fails for want
//! of file descriptors, the oldest connection without a request in flight
//! is closed: idle and half-open connections yield to new clients, and a
//! connection serving a request is never cut.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Every open connection of one server.
#[derive(Debug)]
pub(super) struct Connections {
    cap: usize,
    open: Mutex<Open>,
    /// Woken whenever a connection closes or finishes a request.
    changed: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    /// By id, so in the order they were accepted.
    by_age: BTreeMap<u64, Arc<Connection>>,
}

/// One connection's share of the bookkeeping.
#[derive(Debug)]
pub(super) struct Connection {
    in_flight: AtomicUsize,
    evicted: CancellationToken,
    changed: Arc<Notify>,
}

impl Connection {
    /// Marks a request in flight until the guard drops.
    pub(super) fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// Resolves when the connection must close to make room.
    pub(super) async fn evicted(&self) {
        self.evicted.cancelled().await;
    }
}

/// A request in flight on a connection (see [`Connection::start_request`]).
#[derive(Debug)]
pub(super) struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// An open connection's place in [`Connections`]; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Registered {
    id: u64,
    connections: Arc<Connections>,
    pub(super) connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.lock().by_age.remove(&self.id);
        self.connections.changed.notify_waiters();
    }
}

impl Connections {
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Connections {
            cap: cap.max(1),
            open: Mutex::default(),
            changed: Arc::new(Notify::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // The map stays consistent under a panic: every update is one call.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    pub(super) fn len(&self) -> usize {
        self.lock().by_age.len()
    }

    /// Registers a newly accepted connection.
    pub(super) fn open(self: &Arc<Self>) -> Registered {
        let connection = Arc::new(Connection {
            in_flight: AtomicUsize::new(0),
            evicted: CancellationToken::new(),
            changed: Arc::clone(&self.changed),
        });
        let mut open = self.lock();
        let id = open.next_id;
        open.next_id += 1;
        open.by_age.insert(id, Arc::clone(&connection));
        Registered {
            id,
            connections: Arc::clone(self),
            connection,
        }
    }

    /// Closes the oldest connection with no request in flight; false when
    /// every connection is serving one.
    pub(super) fn evict_oldest_idle(&self) -> bool {
        let open = self.lock();
        let idle = open
            .by_age
            .values()
            .find(|c| c.in_flight.load(Ordering::SeqCst) == 0 && !c.evicted.is_cancelled());
        match idle {
            Some(connection) => {
                connection.evicted.cancel();
                true
            }
            None => false,
        }
    }

    /// Returns once fewer than `cap` connections are open, closing idle
    /// ones to get there; returns `true` when it had to.
    pub(super) async fn make_room(&self) -> bool {
        let mut evicted = false;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.len() < self.cap {
                return evicted;
            }
            evicted |= self.evict_oldest_idle();
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let connections = Connections::new(3);
        let oldest = connections.open();
        let busy = connections.open();
        let newest = connections.open();
        let request = busy.connection.start_request();
        assert_eq!(connections.len(), 3);

        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.make_room().await }
        });
        // The oldest connection is told to close; it has not yet.
        tokio::time::timeout(Duration::from_secs(1), oldest.connection.evicted())
            .await
            .expect("the oldest idle connection is evicted");
        assert!(!busy.connection.evicted.is_cancelled());
        assert!(!newest.connection.evicted.is_cancelled());
        assert!(!waiting.is_finished());
        drop(oldest);
        assert!(waiting.await.expect("joins"), "it had to evict");
        assert_eq!(connections.len(), 2);
        drop(request);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_a_request_in_flight_is_never_evicted() {
        let connections = Connections::new(1);
        let only = connections.open();
        let request = only.connection.start_request();
        assert!(!connections.evict_oldest_idle());
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.make_room().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished(), "waits while the request runs");
        assert!(!only.connection.evicted.is_cancelled());
        // Once the request is done the connection is idle, and yields.
        drop(request);
        tokio::time::timeout(Duration::from_secs(1), only.connection.evicted())
            .await
            .expect("evicted once idle");
        drop(only);
        assert!(waiting.await.expect("joins"));
    }

    #[tokio::test]
    async fn below_the_cap_nothing_is_evicted() {
        let connections = Connections::new(2);
        let first = connections.open();
        assert!(!connections.make_room().await);
        assert!(!first.connection.evicted.is_cancelled());
    }
}
