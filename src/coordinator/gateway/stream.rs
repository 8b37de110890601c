//! A committed stream, relayed to the client: the worker's payloads as SSE
//! events in order (the usage chunk only when the client asked for it),
//! counting the tokens delivered for the bill. A node that fails, or goes
//! silent past [`IDLE_TIMEOUT`], ends the stream with an error event; the
//! client leaving drops the stream, which cancels the node's request and
//! settles the bill for what was delivered.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::body::Bytes;
use futures::Stream;
use tokio::time::Instant;

use super::bill::Bill;
use super::billing::Tokens;
use super::error::GatewayError;
use super::frames::{Endpoint, FromNode};
use super::limits::Permit;
use super::links::Exchange;
use super::metrics::GatewayMetrics;
use super::relay::{next, Started, IDLE_TIMEOUT};
use super::sse::{classify, Piece, Splitter};

/// What a stream needs besides the started exchange.
#[derive(Debug)]
pub struct StreamParts {
    pub bill: Option<Bill>,
    pub permit: Option<Permit>,
    pub include_usage: bool,
    pub metrics: GatewayMetrics,
    pub endpoint: Endpoint,
    pub first_token_at: Instant,
}

struct Relay {
    exchange: Exchange,
    splitter: Splitter,
    pending: VecDeque<(String, Piece)>,
    parts: StreamParts,
    delivered: u64,
    usage: Option<Tokens>,
    ended: bool,
    outcome: Option<&'static str>,
}

impl Relay {
    fn tokens(&self) -> Tokens {
        self.usage.unwrap_or(Tokens {
            prompt: 0,
            completion: self.delivered,
        })
    }

    /// Ends the stream with `outcome`, charging what was delivered.
    fn finish(&mut self, outcome: &'static str) {
        self.ended = true;
        self.outcome = Some(outcome);
        let tokens = self.tokens();
        if let Some(bill) = self.parts.bill.as_mut() {
            bill.charge(tokens);
        }
        self.parts.metrics.outcome(self.parts.endpoint, outcome);
        if outcome == "ok" {
            let secs = self.parts.first_token_at.elapsed().as_secs_f64();
            if secs > 0.0 && tokens.completion > 1 {
                self.parts
                    .metrics
                    .tokens_per_second
                    .observe((tokens.completion - 1) as f64 / secs);
            }
        }
        // The bill settles as the stream drops, right after this event.
        drop(self.parts.bill.take());
        drop(self.parts.permit.take());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.outcome.is_none() {
            let tokens = self.tokens();
            if let Some(bill) = self.parts.bill.as_mut() {
                bill.charge(tokens);
            }
            self.parts.metrics.outcome(self.parts.endpoint, "cancelled");
        }
    }
}

fn event(payload: &str) -> Bytes {
    Bytes::from(format!("data: {payload}\n\n"))
}

/// The SSE body of a started stream.
pub fn relay(
    started: Started,
    parts: StreamParts,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let relay = Relay {
        exchange: started.exchange,
        splitter: started.splitter,
        pending: started.buffered,
        parts,
        delivered: 0,
        usage: None,
        ended: false,
        outcome: None,
    };
    futures::stream::unfold(relay, |mut r| async move {
        loop {
            if let Some((payload, piece)) = r.pending.pop_front() {
                match piece {
                    Piece::Text => r.delivered += 1,
                    Piece::Usage(tokens) => {
                        r.usage = Some(tokens);
                        if !r.parts.include_usage {
                            continue;
                        }
                    }
                    Piece::Done => r.finish("ok"),
                    Piece::Error => r.finish("node_failed"),
                    Piece::Other => {}
                }
                return Some((Ok(event(&payload)), r));
            }
            if r.ended {
                return None;
            }
            let failure = match next(&mut r.exchange, Instant::now() + IDLE_TIMEOUT).await {
                Ok(FromNode::Data { data, .. }) => match r.splitter.push(&data) {
                    Ok(payloads) => {
                        r.pending.extend(payloads.into_iter().map(|p| {
                            let piece = classify(&p);
                            (p, piece)
                        }));
                        continue;
                    }
                    Err(why) => why,
                },
                Ok(FromNode::End { .. }) => {
                    // The worker's body ended without `[DONE]`: end as it did.
                    r.finish("ok");
                    return None;
                }
                Ok(_) => "the node broke the link's protocol mid-stream".to_string(),
                Err(why) => why,
            };
            r.finish("node_failed");
            let message = format!(
                "{failure}; the answer stopped after {} tokens and only those are charged",
                r.delivered
            );
            return Some((
                Ok(event(&GatewayError::stream_event("node_failed", &message))),
                r,
            ));
        }
    })
}
