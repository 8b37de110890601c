//! One open link, from hello to its end: a writer task owns the socket's
//! sending half and drains a bounded queue of frames (relays wait when it
//! is full); the reader takes requests (a relay each, at most `slots` at
//! once, more refused at once) and cancels (that relay dropped at once),
//! ignores what it does not understand, and declares the link dead when
//! nothing, not even a ping, came for [`LIVENESS`]. Every relay ends with
//! the link.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use crate::coordinator::gateway::frames::{FromNode, ToNode};

use super::connect::LinkStream;
use super::relay::relay;
use super::status::{LinkReporter, Outcome};

/// The coordinator pings every ~10 s; this long without any frame means
/// the link is dead even if TCP has not noticed.
pub const LIVENESS: Duration = Duration::from_secs(30);
/// Frames waiting for the writer; relays wait when it is full.
pub const FRAME_QUEUE: usize = 64;
/// How long the writer gets to send what is queued and a close at the end.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// At most one log line per this long about frames not understood.
pub const GARBAGE_LOG_EVERY: Duration = Duration::from_secs(10);
/// The failure message of a request refused for want of a slot.
pub const AT_CAPACITY: &str = "node at capacity";

/// What a request gets on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Relay it.
    Take,
    /// Every slot is busy: fail it at once.
    Full,
    /// A request with this id is in flight: ignore the repeat.
    Duplicate,
}

/// The admission of a request when `in_flight` relays run on `slots`.
pub fn admit(in_flight: usize, slots: u32, duplicate: bool) -> Admission {
    if duplicate {
        Admission::Duplicate
    } else if in_flight >= usize::try_from(slots).unwrap_or(usize::MAX) {
        Admission::Full
    } else {
        Admission::Take
    }
}

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkDown {
    #[error("the agent is stopping")]
    Stopped,
    #[error("the coordinator sent nothing for {} s (not even a ping)", LIVENESS.as_secs())]
    Silent,
    #[error("the coordinator closed the link")]
    Closed,
    #[error("the link broke while reading")]
    Read(#[source] tungstenite::Error),
    #[error("the link broke while writing")]
    Write(#[source] tungstenite::Error),
}

/// What every relay of a link shares.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub http: reqwest::Client,
    /// Base URL, no trailing `/`.
    pub url: Arc<str>,
    pub slots: u32,
}

/// Serves the open `stream` until it ends or `cancel` fires; `hello` goes
/// out first.
pub async fn serve(
    stream: LinkStream,
    hello: FromNode,
    worker: &Upstream,
    reporter: &LinkReporter,
    cancel: &CancellationToken,
) -> LinkDown {
    let (sink, mut incoming) = stream.split();
    let (frames, queue) = mpsc::channel(FRAME_QUEUE);
    let mut writer = JoinSet::new();
    writer.spawn(write_frames(sink, queue));
    // The queue is empty and its receiver alive: this cannot wait or fail.
    let _ = frames.send(hello).await;
    let mut link = Requests {
        relays: JoinSet::new(),
        in_flight: HashMap::new(),
        frames,
        worker,
        reporter,
    };
    let mut garbage = Garbage::default();
    let mut last_heard = Instant::now();
    let down = loop {
        tokio::select! {
            () = cancel.cancelled() => break LinkDown::Stopped,
            written = writer.join_next() => {
                break match written {
                    Some(Ok(Err(err))) => LinkDown::Write(err),
                    _ => LinkDown::Closed,
                };
            }
            Some(joined) = link.relays.join_next_with_id(), if !link.relays.is_empty() => {
                link.finished(joined).await;
            }
            () = tokio::time::sleep_until(last_heard + LIVENESS) => break LinkDown::Silent,
            message = incoming.next() => {
                last_heard = Instant::now();
                match message {
                    None | Some(Ok(Message::Close(_))) => break LinkDown::Closed,
                    Some(Err(err)) => break LinkDown::Read(err),
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<ToNode>(text.as_str()) {
                        Ok(frame) => link.handle(frame).await,
                        Err(err) => garbage.log(&format!("not a link frame: {err}")),
                    },
                    Some(Ok(Message::Binary(_))) => garbage.log("a binary frame"),
                    // Pings are answered by tungstenite on the next read or write.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                }
            }
        }
    };
    link.end_all().await;
    drop(link);
    // Every sender is gone: the writer sends what is queued, then a close.
    let _ = tokio::time::timeout(CLOSE_GRACE, writer.join_next()).await;
    down
}

/// The requests of one link.
struct Requests<'a> {
    relays: JoinSet<(u64, Outcome)>,
    in_flight: HashMap<u64, AbortHandle>,
    frames: mpsc::Sender<FromNode>,
    worker: &'a Upstream,
    reporter: &'a LinkReporter,
}

impl Requests<'_> {
    async fn handle(&mut self, frame: ToNode) {
        match frame {
            ToNode::Request { id, endpoint, body } => {
                let duplicate = self.in_flight.contains_key(&id);
                match admit(self.in_flight.len(), self.worker.slots, duplicate) {
                    Admission::Take => {
                        let http = self.worker.http.clone();
                        let url = Arc::clone(&self.worker.url);
                        let frames = self.frames.clone();
                        let handle = self.relays.spawn(async move {
                            (id, relay(&http, &url, id, endpoint, body, &frames).await)
                        });
                        self.in_flight.insert(id, handle);
                        self.reporter.in_flight(self.in_flight.len());
                    }
                    Admission::Full => {
                        let message = AT_CAPACITY.to_owned();
                        let _ = self.frames.send(FromNode::Failed { id, message }).await;
                        self.reporter.ended(Outcome::Refused);
                    }
                    Admission::Duplicate => {
                        tracing::warn!(
                            id,
                            "the coordinator sent a request id already in flight; ignored"
                        );
                    }
                }
            }
            ToNode::Cancel { id } => match self.in_flight.remove(&id) {
                Some(handle) => {
                    // Dropping the relay drops the worker's response: the
                    // worker sees its connection close and frees the slot.
                    handle.abort();
                    self.reporter.ended(Outcome::Cancelled);
                    self.reporter.in_flight(self.in_flight.len());
                }
                // It ended before the cancel came: nothing to stop.
                None => tracing::debug!(id, "cancel of a request not in flight"),
            },
        }
    }

    async fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, (u64, Outcome)), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((_, (id, outcome))) => {
                self.in_flight.remove(&id);
                self.reporter.ended(outcome);
            }
            // Aborted by a cancel, already counted.
            Err(err) if err.is_cancelled() => {}
            Err(err) => {
                let task = err.id();
                let id = self
                    .in_flight
                    .iter()
                    .find(|(_, handle)| handle.id() == task)
                    .map(|(id, _)| *id);
                tracing::error!(?id, error = %err, "a gateway relay panicked");
                if let Some(id) = id {
                    self.in_flight.remove(&id);
                    let message = "the node failed relaying this request".to_owned();
                    let _ = self.frames.send(FromNode::Failed { id, message }).await;
                    self.reporter.ended(Outcome::Failed);
                }
            }
        }
        self.reporter.in_flight(self.in_flight.len());
    }

    /// The link is ending: every relay stops (its worker connection closes).
    async fn end_all(&mut self) {
        self.relays.shutdown().await;
        for _ in self.in_flight.drain() {
            self.reporter.ended(Outcome::Cancelled);
        }
        self.reporter.in_flight(0);
    }
}

/// Sends queued frames until every sender is gone, then closes.
async fn write_frames(
    mut sink: futures::stream::SplitSink<LinkStream, Message>,
    mut queue: mpsc::Receiver<FromNode>,
) -> Result<(), tungstenite::Error> {
    while let Some(frame) = queue.recv().await {
        // Plain structs with strings and numbers always serialise.
        let text = serde_json::to_string(&frame).unwrap_or_default();
        sink.send(Message::text(text)).await?;
    }
    sink.close().await
}

/// Logs frames the link does not understand, at most once per
/// [`GARBAGE_LOG_EVERY`], with how many were not logged.
#[derive(Debug, Default)]
struct Garbage {
    last: Option<Instant>,
    unlogged: u64,
}

impl Garbage {
    fn log(&mut self, what: &str) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + GARBAGE_LOG_EVERY) {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            what,
            also_ignored = self.unlogged,
            "ignored a frame from the coordinator"
        );
        self.last = Some(now);
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_beyond_the_slots_is_refused_a_repeat_ignored() {
        assert_eq!(admit(0, 1, false), Admission::Take);
        assert_eq!(admit(1, 1, false), Admission::Full);
        assert_eq!(admit(7, 8, false), Admission::Take);
        assert_eq!(admit(8, 8, false), Admission::Full);
        assert_eq!(admit(3, 8, true), Admission::Duplicate);
        assert_eq!(admit(8, 8, true), Admission::Duplicate);
    }

    #[tokio::test(start_paused = true)]
    async fn garbage_is_logged_at_a_bounded_rate() {
        let mut garbage = Garbage::default();
        garbage.log("x");
        let first = garbage.last.expect("logged");
        for _ in 0..100 {
            garbage.log("x");
        }
        assert_eq!(garbage.unlogged, 100);
        assert_eq!(garbage.last, Some(first));
        tokio::time::advance(GARBAGE_LOG_EVERY).await;
        garbage.log("x");
        assert_eq!(garbage.unlogged, 0);
        assert!(garbage.last > Some(first));
    }
}
