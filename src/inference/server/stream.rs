//! Response shapes of the two generation endpoints (one JSON body, or SSE
//! chunks ending in `[DONE]`) and the guard that counts each request's
//! outcome once — as `cancelled` when the client leaves mid-generation.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use tokio::sync::mpsc;

use super::openai::*;
use super::Loaded;
use crate::inference::engine::Event;
use crate::inference::metrics::{Endpoint, Metrics, Outcome};
use crate::inference::stop::FinishReason;

/// Records a request's outcome exactly once; dropping it unfinished (the
/// client disconnected) records `cancelled`.
#[derive(Debug)]
pub struct Guard {
    metrics: Arc<Metrics>,
    endpoint: Endpoint,
    done: bool,
}

impl Guard {
    pub fn new(metrics: Arc<Metrics>, endpoint: Endpoint) -> Self {
        Guard {
            metrics,
            endpoint,
            done: false,
        }
    }

    pub fn finish(&mut self, outcome: Outcome) {
        if !self.done {
            self.done = true;
            self.metrics.request(self.endpoint, outcome);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

/// Which endpoint's JSON a generation is answered with.
#[derive(Debug)]
pub struct Shape {
    chat: bool,
    id: String,
    model: String,
    created: u64,
}

fn new_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = crate::clock::unix_nanos();
    format!(
        "{prefix}-{nanos:x}{:04x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

impl Shape {
    pub fn completion(loaded: &Loaded, created: u64) -> Self {
        Shape {
            chat: false,
            id: new_id("cmpl"),
            model: loaded.model_name.clone(),
            created,
        }
    }

    pub fn chat(loaded: &Loaded, created: u64) -> Self {
        Shape {
            chat: true,
            id: new_id("chatcmpl"),
            model: loaded.model_name.clone(),
            created,
        }
    }

    /// The whole answer as one JSON body.
    pub fn full(&self, text: String, reason: FinishReason, usage: Usage) -> Response {
        if self.chat {
            Json(ChatResponse {
                id: self.id.clone(),
                object: "chat.completion",
                created: self.created,
                model: self.model.clone(),
                choices: vec![ChatChoice {
                    index: 0,
                    message: AssistantMessage {
                        role: "assistant",
                        content: text,
                    },
                    finish_reason: Some(reason.as_str()),
                }],
                usage,
            })
            .into_response()
        } else {
            Json(self.completion_chunk(text, Some(reason), Some(usage))).into_response()
        }
    }

    fn completion_chunk(
        &self,
        text: String,
        reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> CompletionResponse {
        CompletionResponse {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.model.clone(),
            choices: vec![CompletionChoice {
                index: 0,
                text,
                logprobs: None,
                finish_reason: reason.map(FinishReason::as_str),
            }],
            usage,
        }
    }

    fn chat_chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        }
    }

    /// One streamed piece of text.
    fn text(&self, text: String) -> String {
        if self.chat {
            json(&self.chat_chunk(
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: None,
                        content: Some(text),
                    },
                    finish_reason: None,
                }],
                None,
            ))
        } else {
            json(&self.completion_chunk(text, None, None))
        }
    }

    /// The chunks that open a stream (chat announces the role first).
    fn opening(&self) -> Vec<String> {
        if !self.chat {
            return Vec::new();
        }
        vec![json(&self.chat_chunk(
            vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                },
                finish_reason: None,
            }],
            None,
        ))]
    }

    /// The chunks that close a stream.
    fn closing(&self, reason: FinishReason, usage: Option<Usage>) -> Vec<String> {
        let mut out = Vec::new();
        if self.chat {
            out.push(json(&self.chat_chunk(
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta::default(),
                    finish_reason: Some(reason.as_str()),
                }],
                None,
            )));
            if let Some(u) = usage {
                out.push(json(&self.chat_chunk(Vec::new(), Some(u))));
            }
        } else {
            out.push(json(&self.completion_chunk(
                String::new(),
                Some(reason),
                None,
            )));
            if let Some(u) = usage {
                let mut last = self.completion_chunk(String::new(), None, Some(u));
                last.choices.clear();
                out.push(json(&last));
            }
        }
        out.push("[DONE]".into());
        out
    }
}

struct StreamState {
    events: mpsc::UnboundedReceiver<Event>,
    guard: Guard,
    shape: Arc<Shape>,
    include_usage: bool,
    pending: std::collections::VecDeque<String>,
    ended: bool,
}

/// SSE `data:` payloads for a streamed generation. Dropping the stream (the
/// client went away) drops the event receiver, which tells the engine to
/// free the sequence.
pub fn sse_chunks(
    events: mpsc::UnboundedReceiver<Event>,
    guard: Guard,
    shape: Arc<Shape>,
    include_usage: bool,
) -> impl Stream<Item = String> + Send {
    let pending = shape.opening().into();
    let state = StreamState {
        events,
        guard,
        shape,
        include_usage,
        pending,
        ended: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(next) = st.pending.pop_front() {
                return Some((next, st));
            }
            if st.ended {
                return None;
            }
            match st.events.recv().await {
                Some(Event::Text(t)) => st.pending.push_back(st.shape.text(t)),
                Some(Event::Done {
                    finish_reason,
                    prompt_tokens,
                    completion_tokens,
                }) => {
                    st.guard.finish(Outcome::Ok);
                    let usage = st
                        .include_usage
                        .then(|| Usage::new(prompt_tokens, completion_tokens));
                    st.pending.extend(st.shape.closing(finish_reason, usage));
                    st.ended = true;
                }
                other => {
                    st.guard.finish(Outcome::Error);
                    let message = match other {
                        Some(Event::Failed(message)) => message,
                        _ => "the engine stopped".to_string(),
                    };
                    st.pending.push_back(json(&ErrorBody {
                        error: ErrorDetail {
                            message,
                            kind: "server_error",
                            param: None,
                            code: None,
                        },
                    }));
                    st.ended = true;
                }
            }
        }
    })
}
