//! One gateway request on the node: POST it to the worker, then send its
//! head, its body as data frames (the first with the time to the worker's
//! first byte) and an end, or a failure at whatever point it broke. It
//! owns the worker's response: dropping this future (a cancel, the link
//! going down) closes that connection, so the worker stops generating.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::coordinator::gateway::frames::{Endpoint, FromNode, MAX_FRAME_BYTES};

use super::status::Outcome;
use super::utf8::{pieces, Utf8Chunks};

/// The most text one data frame carries: an eighth of a frame, so even a
/// body of control characters (6 bytes each once escaped in JSON) fits.
pub const MAX_DATA_BYTES: usize = MAX_FRAME_BYTES / 8;
/// Connecting to the worker.
pub const WORKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest the worker may go without a byte, head included (a long
/// prompt's prefill on a busy CPU worker comes first).
pub const WORKER_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The client the relays share: no overall timeout (answers stream for
/// as long as they generate), a bounded connect.
pub fn worker_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(WORKER_CONNECT_TIMEOUT)
        .build()
}

/// Why the relay stopped early.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("the worker at {url} did not answer")]
    Send {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the worker's answer broke off")]
    Body(#[source] reqwest::Error),
    #[error("the worker sent nothing for {} s", WORKER_IDLE_TIMEOUT.as_secs())]
    Stalled,
    /// The link's writer is gone: nobody to tell.
    #[error("the link closed")]
    LinkClosed,
}

/// Relays request `id` to the worker at `worker_url` and its answer back
/// as frames on `frames`.
pub async fn relay(
    http: &reqwest::Client,
    worker_url: &str,
    id: u64,
    endpoint: Endpoint,
    body: String,
    frames: &mpsc::Sender<FromNode>,
) -> Outcome {
    match stream_answer(http, worker_url, id, endpoint, body, frames).await {
        Ok(()) => Outcome::Ok,
        Err(RelayError::LinkClosed) => Outcome::Cancelled,
        Err(err) => {
            let message = crate::error_text::one_line(&err);
            tracing::debug!(id, error = %message, "gateway request failed");
            if frames.send(FromNode::Failed { id, message }).await.is_err() {
                return Outcome::Cancelled;
            }
            Outcome::Failed
        }
    }
}

async fn stream_answer(
    http: &reqwest::Client,
    worker_url: &str,
    id: u64,
    endpoint: Endpoint,
    body: String,
    frames: &mpsc::Sender<FromNode>,
) -> Result<(), RelayError> {
    let url = format!("{worker_url}{}", endpoint.path());
    let started = Instant::now();
    let request = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send();
    let mut response = tokio::time::timeout(WORKER_IDLE_TIMEOUT, request)
        .await
        .map_err(|_| RelayError::Stalled)?
        .map_err(|source| RelayError::Send { url, source })?;
    let status = response.status().as_u16();
    send(frames, FromNode::Head { id, status }).await?;
    let mut text = Utf8Chunks::new();
    let mut first_byte_us = None;
    loop {
        let chunk = tokio::time::timeout(WORKER_IDLE_TIMEOUT, response.chunk())
            .await
            .map_err(|_| RelayError::Stalled)?
            .map_err(RelayError::Body)?;
        let Some(chunk) = chunk else { break };
        if chunk.is_empty() {
            continue;
        }
        if first_byte_us.is_none() {
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            first_byte_us = Some(Some(us));
        }
        let piece = text.push(&chunk);
        send_text(frames, id, &piece, &mut first_byte_us).await?;
    }
    send_text(frames, id, &text.finish(), &mut first_byte_us).await?;
    send(frames, FromNode::End { id }).await
}

/// Sends `text` as data frames; the first frame of the request takes the
/// first-byte time out of `first_byte_us` (outer `Some`: measured, inner:
/// not sent yet).
async fn send_text(
    frames: &mpsc::Sender<FromNode>,
    id: u64,
    text: &str,
    first_byte_us: &mut Option<Option<u64>>,
) -> Result<(), RelayError> {
    for piece in pieces(text, MAX_DATA_BYTES) {
        let worker_first_byte_us = first_byte_us.as_mut().and_then(Option::take);
        let data = FromNode::Data {
            id,
            data: piece.to_owned(),
            worker_first_byte_us,
        };
        send(frames, data).await?;
    }
    Ok(())
}

async fn send(frames: &mpsc::Sender<FromNode>, frame: FromNode) -> Result<(), RelayError> {
    frames.send(frame).await.map_err(|_| RelayError::LinkClosed)
}
