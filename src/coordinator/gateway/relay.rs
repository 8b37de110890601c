//! Serving one request over node links: each attempt sends it to a node
//! and waits for the worker's first token (streamed) or whole answer; a
//! node that fails before that (link lost, worker error or busy, silence
//! past [`FIRST_TOKEN_TIMEOUT`]) is left for the next suitable one, at most
//! [`MAX_ATTEMPTS`] nodes. Once a token is out, the stream is the client's:
//! a node failing mid-stream ends it with an error event, and a node silent
//! for [`IDLE_TIMEOUT`] counts as failed, so no answer hangs.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::ask::Ask;
use super::frames::FromNode;
use super::links::{Exchange, Link, Slot};
use super::metrics::GatewayMetrics;
use super::sse::{classify, Piece, Splitter};
use std::sync::Arc;

/// The longest a node may take to its first token (or whole answer).
pub const FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a committed stream may go without a frame.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Nodes tried per request.
pub const MAX_ATTEMPTS: usize = 3;
/// The most a whole (not streamed) answer may be.
pub const MAX_WHOLE_BYTES: usize = 8 * 1024 * 1024;
/// The longest a whole answer may take.
pub const WHOLE_TIMEOUT: Duration = Duration::from_secs(600);

/// How one attempt on one node ended.
#[derive(Debug)]
pub enum Attempt {
    /// A stream whose first token came: the payloads so far, in order.
    Streaming(Started),
    /// The worker's whole answer (status and body); non-200 statuses
    /// here are the client's own errors (4xx but 429).
    Whole { status: u16, body: String },
    /// The node failed before answering; try another.
    Retry(String),
}

/// A stream that produced its first token.
#[derive(Debug)]
pub struct Started {
    pub exchange: Exchange,
    pub splitter: Splitter,
    pub buffered: VecDeque<(String, Piece)>,
}

/// Sends `ask` to `link` on `slot` and waits as the module says.
pub async fn attempt(link: &Arc<Link>, slot: Slot, ask: &Ask, metrics: &GatewayMetrics) -> Attempt {
    let sent = Instant::now();
    let mut exchange = match link.start(slot, ask.endpoint, ask.body.clone()).await {
        Ok(exchange) => exchange,
        Err(closed) => return Attempt::Retry(closed.to_string()),
    };
    let deadline = sent + FIRST_TOKEN_TIMEOUT;
    let status = match next(&mut exchange, deadline).await {
        Ok(FromNode::Head { status, .. }) => status,
        Ok(other) => {
            return Attempt::Retry(format!("the node answered {} before a head", kind(&other)))
        }
        Err(why) => return Attempt::Retry(why),
    };
    let mut first_byte = true;
    let mut observe_overhead = |worker_us: Option<u64>| {
        if std::mem::take(&mut first_byte) {
            if let Some(us) = worker_us {
                let overhead = sent.elapsed().saturating_sub(Duration::from_micros(us));
                metrics.first_token_overhead.observe(overhead.as_secs_f64());
            }
        }
    };
    if status != 200 || !ask.stream {
        let whole_deadline = sent + WHOLE_TIMEOUT;
        let mut body = String::new();
        loop {
            match next(&mut exchange, whole_deadline).await {
                Ok(FromNode::Data {
                    data,
                    worker_first_byte_us,
                    ..
                }) => {
                    observe_overhead(worker_first_byte_us);
                    body.push_str(&data);
                    if body.len() > MAX_WHOLE_BYTES {
                        return Attempt::Retry(format!(
                            "the node's answer passed {MAX_WHOLE_BYTES} bytes"
                        ));
                    }
                }
                Ok(FromNode::End { .. }) => break,
                Ok(other) => {
                    return Attempt::Retry(format!("the node sent {} mid-answer", kind(&other)))
                }
                Err(why) => return Attempt::Retry(why),
            }
        }
        if status == 429 || status >= 500 {
            return Attempt::Retry(format!(
                "the node's worker answered {status}: {}",
                snippet(&body)
            ));
        }
        return Attempt::Whole { status, body };
    }
    let mut splitter = Splitter::default();
    let mut buffered = VecDeque::new();
    loop {
        match next(&mut exchange, deadline).await {
            Ok(FromNode::Data {
                data,
                worker_first_byte_us,
                ..
            }) => {
                observe_overhead(worker_first_byte_us);
                let payloads = match splitter.push(&data) {
                    Ok(payloads) => payloads,
                    Err(why) => return Attempt::Retry(why),
                };
                let mut started = false;
                for payload in payloads {
                    let piece = classify(&payload);
                    match piece {
                        Piece::Error => {
                            return Attempt::Retry(format!(
                                "the node's worker failed: {}",
                                snippet(&payload)
                            ))
                        }
                        Piece::Text | Piece::Done => started = true,
                        Piece::Usage(_) | Piece::Other => {}
                    }
                    buffered.push_back((payload, piece));
                }
                if started {
                    return Attempt::Streaming(Started {
                        exchange,
                        splitter,
                        buffered,
                    });
                }
            }
            Ok(FromNode::End { .. }) => {
                return Attempt::Retry("the node's stream ended before any token".into())
            }
            Ok(other) => {
                return Attempt::Retry(format!("the node sent {} mid-stream", kind(&other)))
            }
            Err(why) => return Attempt::Retry(why),
        }
    }
}

/// The next frame by `deadline`, or why there is none.
pub async fn next(exchange: &mut Exchange, deadline: Instant) -> Result<FromNode, String> {
    match tokio::time::timeout_at(deadline, exchange.next()).await {
        Ok(Some(FromNode::Failed { message, .. })) => Err(format!("the node failed: {message}")),
        Ok(Some(frame)) => Ok(frame),
        Ok(None) => Err("the node's link closed".into()),
        Err(_) => Err("the node did not answer in time".into()),
    }
}

fn kind(frame: &FromNode) -> &'static str {
    match frame {
        FromNode::Hello { .. } => "a hello",
        FromNode::Head { .. } => "a second head",
        FromNode::Data { .. } => "data",
        FromNode::End { .. } => "an end",
        FromNode::Failed { .. } => "a failure",
    }
}

/// The start of `text`, for messages.
fn snippet(text: &str) -> String {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_string()
}
