//! Route handlers: request validation (400s before anything is queued),
//! submission to the engine (429 when the queue is full), and the answer as
//! one JSON body or as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::openai::*;
use super::stream::{Guard, Shape};
use super::{AppState, Loaded};
use crate::error_text::one_line;
use crate::inference::chat_template::Message;
use crate::inference::engine::{Event, GenerationRequest, SubmitError};
use crate::inference::metrics::{Endpoint, Outcome};
use crate::inference::sampler::SamplingParams;

const MAX_STOPS: usize = 4;
/// OpenAI's default `max_tokens` for `/v1/completions`.
const COMPLETION_DEFAULT_MAX_TOKENS: usize = 16;

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}"), None))
}

fn check_model(loaded: &Loaded, model: Option<&str>) -> Result<(), ApiError> {
    match model {
        Some(m) if !m.is_empty() && m != loaded.model_name => Err(ApiError::not_found(format!(
            "the model `{m}` does not exist; this worker serves `{}`",
            loaded.model_name
        ))),
        _ => Ok(()),
    }
}

/// A queued generation.
struct Started {
    events: mpsc::UnboundedReceiver<Event>,
    stream: bool,
    include_usage: bool,
}

/// Validates a generation and queues it on the engine.
fn start(
    loaded: &Loaded,
    prompt_ids: Vec<u32>,
    max_tokens: Option<usize>,
    default_max_tokens: Option<usize>,
    s: Sampling,
) -> Result<Started, ApiError> {
    if s.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("only n = 1 is supported", Some("n")));
    }
    let temperature = s.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad_request(
            "temperature must be between 0 and 2",
            Some("temperature"),
        ));
    }
    let top_p = s.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad_request(
            "top_p must be in (0, 1]",
            Some("top_p"),
        ));
    }
    let stop = s.stop.map(OneOrMany::into_vec).unwrap_or_default();
    if stop.len() > MAX_STOPS {
        return Err(ApiError::bad_request(
            format!("at most {MAX_STOPS} stop sequences"),
            Some("stop"),
        ));
    }
    if prompt_ids.is_empty() {
        return Err(ApiError::bad_request("the prompt is empty", Some("prompt")));
    }
    if let Some(&id) = prompt_ids
        .iter()
        .find(|&&id| id as usize >= loaded.vocab_size)
    {
        return Err(ApiError::bad_request(
            format!("token id {id} is outside the model's vocabulary"),
            Some("prompt"),
        ));
    }
    let ctx = loaded.max_context;
    let prompt_len = prompt_ids.len();
    if prompt_len >= ctx {
        return Err(ApiError::context_exceeded(format!(
            "This model's maximum context length is {ctx} tokens. However, your prompt is {prompt_len} tokens."
        )));
    }
    let max_tokens = match max_tokens.or(default_max_tokens) {
        Some(0) => {
            return Err(ApiError::bad_request(
                "max_tokens must be at least 1",
                Some("max_tokens"),
            ))
        }
        Some(m) if prompt_len + m > ctx => {
            return Err(ApiError::context_exceeded(format!(
                "This model's maximum context length is {ctx} tokens. However, you requested {} tokens ({prompt_len} in the prompt, {m} in the completion).",
                prompt_len + m
            )))
        }
        Some(m) => m,
        None => ctx - prompt_len,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let request = GenerationRequest {
        prompt_ids,
        max_tokens,
        sampling: SamplingParams {
            temperature,
            top_p,
            top_k: s.top_k.unwrap_or(0),
            seed: s.seed,
        },
        stop,
        events: tx,
        admitted: Instant::now(),
    };
    loaded.engine.submit(request).map_err(|e| match e {
        SubmitError::QueueFull { .. } => ApiError::queue_full(format!("{e}; retry later")),
        SubmitError::Stopped => ApiError::internal(e.to_string()),
    })?;
    Ok(Started {
        events: rx,
        stream: s.stream,
        include_usage: s.stream_options.is_some_and(|o| o.include_usage),
    })
}

pub async fn completions(State(state): State<AppState>, body: Bytes) -> Response {
    let guard = Guard::new(state.metrics.clone(), Endpoint::Completions);
    let started = (|| {
        let loaded = state.loaded()?;
        let req: CompletionRequest = parse(&body)?;
        check_model(loaded, req.model.as_deref())?;
        let mut prompts = req.prompt.into_vec();
        if prompts.len() != 1 {
            return Err(ApiError::bad_request(
                "exactly one prompt per request is supported",
                Some("prompt"),
            ));
        }
        let text = prompts.remove(0);
        let ids = loaded
            .tokenizer
            .encode(&text)
            .map_err(|e| ApiError::bad_request(e.to_string(), Some("prompt")))?;
        let started = start(
            loaded,
            ids,
            req.max_tokens,
            Some(COMPLETION_DEFAULT_MAX_TOKENS),
            req.sampling,
        )?;
        Ok((started, Shape::completion(loaded, state.created)))
    })();
    respond(started, guard).await
}

pub async fn chat_completions(State(state): State<AppState>, body: Bytes) -> Response {
    let guard = Guard::new(state.metrics.clone(), Endpoint::ChatCompletions);
    let started = (|| {
        let loaded = state.loaded()?;
        let req: ChatRequest = parse(&body)?;
        check_model(loaded, req.model.as_deref())?;
        if req.messages.is_empty() {
            return Err(ApiError::bad_request(
                "messages must not be empty",
                Some("messages"),
            ));
        }
        let template = loaded.template.as_ref().ok_or_else(|| {
            ApiError::bad_request("this model has no chat template", Some("messages"))
        })?;
        let messages: Vec<Message> = req
            .messages
            .into_iter()
            .map(|m| Message {
                role: m.role,
                content: match m.content {
                    None => String::new(),
                    Some(Content::Text(t)) => t,
                    Some(Content::Parts(parts)) => parts
                        .into_iter()
                        .filter(|p| p.kind == "text")
                        .filter_map(|p| p.text)
                        .collect::<Vec<_>>()
                        .join(""),
                },
            })
            .collect();
        let prompt = template
            .render(&messages)
            .map_err(|e| ApiError::bad_request(one_line(&e), Some("messages")))?;
        let ids = loaded
            .tokenizer
            .encode(&prompt)
            .map_err(|e| ApiError::bad_request(e.to_string(), Some("messages")))?;
        let started = start(
            loaded,
            ids,
            req.max_completion_tokens.or(req.max_tokens),
            None,
            req.sampling,
        )?;
        Ok((started, Shape::chat(loaded, state.created)))
    })();
    respond(started, guard).await
}

async fn respond(started: Result<(Started, Shape), ApiError>, mut guard: Guard) -> Response {
    let (started, shape) = match started {
        Ok(v) => v,
        Err(e) => {
            guard.finish(e.outcome());
            return e.into_response();
        }
    };
    let Started {
        mut events,
        stream,
        include_usage,
    } = started;
    if stream {
        let shape = Arc::new(shape);
        let chunks = super::stream::sse_chunks(events, guard, shape, include_usage)
            .map(|data| Ok::<_, Infallible>(SseEvent::default().data(data)));
        return Sse::new(chunks)
            .keep_alive(KeepAlive::default())
            .into_response();
    }
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done {
                finish_reason,
                prompt_tokens,
                completion_tokens,
            } => {
                guard.finish(Outcome::Ok);
                let usage = Usage::new(prompt_tokens, completion_tokens);
                return shape.full(text, finish_reason, usage).into_response();
            }
            Event::Failed(message) => {
                guard.finish(Outcome::Error);
                return ApiError::internal(message).into_response();
            }
        }
    }
    guard.finish(Outcome::Error);
    ApiError::internal("the engine stopped").into_response()
}

pub async fn models(State(state): State<AppState>) -> Response {
    match state.loaded() {
        Ok(loaded) => Json(ModelList {
            object: "list",
            data: vec![ModelCard {
                id: loaded.model_name.clone(),
                object: "model",
                created: state.created,
                owned_by: "garage",
            }],
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.loaded() {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "loading").into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
