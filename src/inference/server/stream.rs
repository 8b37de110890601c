//! Response shapes of the two generation endpoints (one JSON body, or SSE
//! chunks ending in `[DONE]`; a chat answer that may be a tool call is held
//! until it is complete, then sent as `tool_calls` or as text) and the guard
//! that counts each request's outcome once — as `cancelled` when the client
//! leaves mid-generation.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use tokio::sync::mpsc;

use super::openai::*;
use super::tools::{Answer, ToolUse};
use super::Loaded;
use crate::inference::engine::{Event, TokenLogprob};
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
    /// `echo`: the prompt's text, answered in front of the completion.
    echo: Option<String>,
    /// The chat answer may be a call to one of these.
    tools: Option<ToolUse>,
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

/// A chat answer's log-probabilities; `None` when none were asked for.
fn chat_logprobs(tokens: &[TokenLogprob]) -> Option<ChatLogprobs> {
    (!tokens.is_empty()).then(|| ChatLogprobs {
        content: tokens
            .iter()
            .map(|t| ContentLogprob {
                token: t.token.clone(),
                logprob: t.logprob,
                bytes: t.token.as_bytes().to_vec(),
                top_logprobs: t
                    .top
                    .iter()
                    .map(|(token, logprob)| TopLogprob {
                        token: token.clone(),
                        logprob: *logprob,
                        bytes: token.as_bytes().to_vec(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// A completion's log-probabilities, the first token at `offset` in the text.
fn completion_logprobs(tokens: &[TokenLogprob], mut offset: usize) -> Option<CompletionLogprobs> {
    if tokens.is_empty() {
        return None;
    }
    let mut out = CompletionLogprobs::default();
    for t in tokens {
        out.tokens.push(t.token.clone());
        out.token_logprobs.push(t.logprob);
        out.top_logprobs.push(t.top.iter().cloned().collect());
        out.text_offset.push(offset);
        offset += t.token.len();
    }
    Some(out)
}

impl Shape {
    /// A completion answered at `created` (Unix seconds), after the
    /// prompt's text when `echo` holds it.
    pub fn completion(loaded: &Loaded, created: u64, echo: Option<String>) -> Self {
        Shape {
            chat: false,
            id: new_id("cmpl"),
            model: loaded.model_name.clone(),
            created,
            echo,
            tools: None,
        }
    }

    /// A chat answer at `created`, read as a tool call where `tools` allow.
    pub fn chat(loaded: &Loaded, created: u64, tools: Option<ToolUse>) -> Self {
        Shape {
            chat: true,
            id: new_id("chatcmpl"),
            model: loaded.model_name.clone(),
            created,
            echo: None,
            tools,
        }
    }

    /// True when the text is sent only once complete (a possible tool call).
    fn holds_text(&self) -> bool {
        self.tools.is_some()
    }

    /// A complete chat answer: its message and finish reason (a call
    /// only when the model finished one).
    fn answer(&self, text: String, reason: FinishReason) -> (AssistantMessage, &'static str) {
        let read = match (&self.tools, reason) {
            (Some(tools), FinishReason::Stop) => tools.read(&text),
            _ => Answer::Text(text),
        };
        let (content, tool_calls, finish) = match read {
            Answer::Call(call) => (None, vec![call], "tool_calls"),
            Answer::Text(text) => (Some(text), Vec::new(), reason.as_str()),
        };
        let message = AssistantMessage {
            role: "assistant",
            content,
            tool_calls,
        };
        (message, finish)
    }

    fn echo_len(&self) -> usize {
        self.echo.as_ref().map_or(0, String::len)
    }

    /// The whole answer as one JSON body.
    pub fn full(
        &self,
        text: String,
        reason: FinishReason,
        usage: Usage,
        tokens: &[TokenLogprob],
    ) -> Response {
        if self.chat {
            let (message, finish) = self.answer(text, reason);
            Json(ChatResponse {
                id: self.id.clone(),
                object: "chat.completion",
                created: self.created,
                model: self.model.clone(),
                choices: vec![ChatChoice {
                    index: 0,
                    message,
                    logprobs: chat_logprobs(tokens),
                    finish_reason: Some(finish),
                }],
                usage,
            })
            .into_response()
        } else {
            let text = format!("{}{text}", self.echo.as_deref().unwrap_or_default());
            let logprobs = completion_logprobs(tokens, self.echo_len());
            Json(self.completion_chunk(text, Some(reason), Some(usage), logprobs)).into_response()
        }
    }

    fn completion_chunk(
        &self,
        text: String,
        reason: Option<FinishReason>,
        usage: Option<Usage>,
        logprobs: Option<CompletionLogprobs>,
    ) -> CompletionResponse {
        CompletionResponse {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.model.clone(),
            choices: vec![CompletionChoice {
                index: 0,
                text,
                logprobs,
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

    /// One streamed piece of text, with the tokens it came from when
    /// log-probabilities were asked for (`offset`: where the piece starts
    /// in the whole completion's text).
    fn text(&self, text: String, tokens: &[TokenLogprob], offset: usize) -> String {
        if self.chat {
            json(&self.chat_chunk(
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    logprobs: chat_logprobs(tokens),
                    finish_reason: None,
                }],
                None,
            ))
        } else {
            let logprobs = completion_logprobs(tokens, offset);
            json(&self.completion_chunk(text, None, None, logprobs))
        }
    }

    /// The chunks that open a stream (chat announces the role first; an
    /// echoed prompt comes first).
    fn opening(&self) -> Vec<String> {
        if !self.chat {
            return self
                .echo
                .iter()
                .map(|prompt| json(&self.completion_chunk(prompt.clone(), None, None, None)))
                .collect();
        }
        vec![json(&self.chat_chunk(
            vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                    tool_calls: Vec::new(),
                },
                logprobs: None,
                finish_reason: None,
            }],
            None,
        ))]
    }

    /// The chunks of a held answer, complete now, and its finish reason.
    fn held(
        &self,
        text: String,
        reason: FinishReason,
        tokens: &[TokenLogprob],
    ) -> (String, &'static str) {
        let (message, finish) = self.answer(text, reason);
        let delta = Delta {
            role: None,
            content: message.content,
            tool_calls: message
                .tool_calls
                .into_iter()
                .enumerate()
                .map(|(index, call)| ToolCallDelta { index, call })
                .collect(),
        };
        let chunk = self.chat_chunk(
            vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: chat_logprobs(tokens),
                finish_reason: None,
            }],
            None,
        );
        (json(&chunk), finish)
    }

    /// The chunks that close a stream (`finish`: its finish reason).
    fn closing(&self, finish: &'static str, usage: Option<Usage>) -> Vec<String> {
        let mut out = Vec::new();
        if self.chat {
            out.push(json(&self.chat_chunk(
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta::default(),
                    logprobs: None,
                    finish_reason: Some(finish),
                }],
                None,
            )));
            if let Some(u) = usage {
                out.push(json(&self.chat_chunk(Vec::new(), Some(u))));
            }
        } else {
            let mut last = self.completion_chunk(String::new(), None, None, None);
            last.choices[0].finish_reason = Some(finish);
            out.push(json(&last));
            if let Some(u) = usage {
                let mut last = self.completion_chunk(String::new(), None, Some(u), None);
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
    /// Tokens whose text has not been sent yet (held back for a possible
    /// stop sequence or a split character).
    tokens: Vec<TokenLogprob>,
    /// Bytes of completion text sent so far (the next chunk's offset).
    sent: usize,
    /// The answer so far, while the shape holds text until the end.
    held: String,
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
    let sent = shape.echo_len();
    let state = StreamState {
        events,
        guard,
        shape,
        include_usage,
        pending,
        tokens: Vec::new(),
        sent,
        held: String::new(),
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
                Some(Event::Token(token)) => st.tokens.push(token),
                Some(Event::Text(t)) if st.shape.holds_text() => st.held.push_str(&t),
                Some(Event::Text(t)) => {
                    let tokens = std::mem::take(&mut st.tokens);
                    let offset = st.sent;
                    st.sent += t.len();
                    st.pending.push_back(st.shape.text(t, &tokens, offset));
                }
                Some(Event::Done {
                    finish_reason,
                    prompt_tokens,
                    completion_tokens,
                }) => {
                    st.guard.finish(Outcome::Ok);
                    let tokens = std::mem::take(&mut st.tokens);
                    let mut finish = finish_reason.as_str();
                    if st.shape.holds_text() {
                        let text = std::mem::take(&mut st.held);
                        let (chunk, held_finish) = st.shape.held(text, finish_reason, &tokens);
                        st.pending.push_back(chunk);
                        finish = held_finish;
                    } else if !tokens.is_empty() {
                        st.pending
                            .push_back(st.shape.text(String::new(), &tokens, st.sent));
                    }
                    let usage = st
                        .include_usage
                        .then(|| Usage::new(prompt_tokens, completion_tokens));
                    st.pending.extend(st.shape.closing(finish, usage));
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
