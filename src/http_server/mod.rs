//! The HTTP serving shared by the coordinator, the agent and the worker:
//! HTTP/1.1 over hyper with a header-read timeout, a cap on open
//! connections below the process's file limit (idle connections yield to
//! new clients), an accept loop that survives running out of descriptors,
//! the client's address as `ConnectInfo`, and graceful shutdown. Routes
//! and their per-request deadlines ([`with_request_timeout`]) stay with the
//! servers that own them.

mod accept;
mod connections;
pub mod fd_limit;
mod timeout;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use futures::future::BoxFuture;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use timeout::with_request_timeout;

use accept::{Acceptor, Throttle, LOG_EVERY};
use connections::{Connection, Connections};

/// How long a client may take to send a request's headers (also the most
/// an idle keep-alive connection stays open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The per-request deadline of ordinary routes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl ServerLimits {
    /// [`HEADER_READ_TIMEOUT`] and a connection cap below this process's
    /// open-file limit ([`fd_limit::connection_cap`]).
    pub fn for_this_process() -> Self {
        ServerLimits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: fd_limit::connection_cap(fd_limit::open_file_limit()),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open
/// requests finish. Never fails: accept errors are backed off and logged.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Connections::new(limits.max_connections);
    let mut acceptor = Acceptor::new(listener);
    let tracker = TaskTracker::new();
    let stopping = CancellationToken::new();
    let service = TowerToHyperService::new(router);
    let mut at_cap_log = Throttle::new(LOG_EVERY);
    tracing::debug!(
        addr = ?acceptor.local_addr().ok(),
        max_connections = connections.cap(),
        header_read_timeout = ?limits.header_read_timeout,
        "serving HTTP"
    );
    tokio::pin!(shutdown);
    loop {
        let next = async {
            if connections.make_room().await {
                if let Some(held_back) = at_cap_log.allow() {
                    tracing::warn!(
                        max_connections = connections.cap(),
                        similar_events_not_logged = held_back,
                        "connection limit reached; closing idle connections, oldest first"
                    );
                }
            }
            acceptor.accept(&connections).await
        };
        tokio::select! {
            () = &mut shutdown => break,
            (stream, remote) = next => {
                let registered = connections.open();
                let handler = Handler {
                    service: service.clone(),
                    remote,
                    connection: Arc::clone(&registered.connection),
                };
                let stopping = stopping.clone();
                let header_read_timeout = limits.header_read_timeout;
                tracker.spawn(async move {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_read_timeout);
                    // Upgrades: the coordinator's node links are WebSockets.
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), handler)
                        .with_upgrades();
                    tokio::pin!(conn);
                    let mut draining = false;
                    loop {
                        tokio::select! {
                            result = conn.as_mut() => {
                                if let Err(err) = result {
                                    tracing::trace!(error = %err, %remote, "connection ended");
                                }
                                break;
                            }
                            () = registered.connection.evicted() => break,
                            () = stopping.cancelled(), if !draining => {
                                draining = true;
                                conn.as_mut().graceful_shutdown();
                            }
                        }
                    }
                    drop(registered);
                });
            }
        }
    }
    drop(acceptor);
    stopping.cancel();
    tracker.close();
    tracker.wait().await;
}

/// One connection's service: the router, with the client's address and the
/// request marked in flight until its response body is sent.
#[derive(Debug, Clone)]
struct Handler {
    service: TowerToHyperService<Router>,
    remote: SocketAddr,
    connection: Arc<Connection>,
}

impl Service<axum::http::Request<Incoming>> for Handler {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, mut request: axum::http::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let in_flight = self.connection.start_request();
        let response = self.service.call(request);
        Box::pin(async move {
            let response = response.await?;
            if response.body().size_hint().exact().is_some() {
                // Written out right away: done when the handler is.
                return Ok(response);
            }
            // A stream (server-sent events): in flight until it ends.
            Ok(response.map(|body| {
                Body::from_stream(body.into_data_stream().map(move |chunk| {
                    let _held = &in_flight;
                    chunk
                }))
            }))
        })
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
