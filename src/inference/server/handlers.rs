//! Route handlers: request validation (400s before anything is queued),
//! submission to the engine (429 when the queue is full), and the answer as
//! one JSON body or as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
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
use super::structured;
use super::tools::{self, ToolUse};
use super::{AppState, Loaded};
use crate::clock::unix_secs;
use crate::error_text::one_line;
use crate::inference::engine::{Event, GenerationRequest, TokenLogprob};
use crate::inference::grammar::Constraint;
use crate::inference::metrics::{Endpoint, Outcome};
use crate::inference::penalties::Penalties;
use crate::inference::sampler::SamplingParams;

const MAX_STOPS: usize = 4;
/// OpenAI's limits on alternatives per token: `/v1/completions`' `logprobs`
/// and chat's `top_logprobs`.
const MAX_COMPLETION_LOGPROBS: usize = 5;
const MAX_TOP_LOGPROBS: usize = 20;
/// The roles a chat message may have.
const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];
/// OpenAI's default `max_tokens` for `/v1/completions`.
const COMPLETION_DEFAULT_MAX_TOKENS: usize = 16;

pub(super) fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_) => ApiError::too_large(rejection.body_text()),
        other => ApiError::bad_request(other.body_text(), None),
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}"), None))
}

pub(super) fn check_model(loaded: &Loaded, model: Option<&str>) -> Result<(), ApiError> {
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

/// The request's penalties, checked against OpenAI's ranges.
fn penalties(loaded: &Loaded, s: &Sampling) -> Result<Penalties, ApiError> {
    let within = |value: Option<f32>, param: &'static str| match value {
        Some(v) if !(-2.0..=2.0).contains(&v) => Err(ApiError::bad_request(
            format!("{param} must be between -2 and 2, got {v}"),
            Some(param),
        )),
        v => Ok(v.unwrap_or(0.0)),
    };
    let presence = within(s.presence_penalty, "presence_penalty")?;
    let frequency = within(s.frequency_penalty, "frequency_penalty")?;
    let repetition = s.repetition_penalty.unwrap_or(1.0);
    if !(repetition > 0.0 && repetition.is_finite()) {
        return Err(ApiError::bad_request(
            format!("repetition_penalty must be greater than 0 (1 is off), got {repetition}"),
            Some("repetition_penalty"),
        ));
    }
    let mut logit_bias = Vec::new();
    for (key, &bias) in s.logit_bias.iter().flatten() {
        let token = key
            .parse::<u32>()
            .ok()
            .filter(|&id| (id as usize) < loaded.vocab_size)
            .ok_or_else(|| {
                ApiError::bad_request(
                    format!(
                        "logit_bias key {key:?} is not a token id of this model (0 to {})",
                        loaded.vocab_size.saturating_sub(1)
                    ),
                    Some("logit_bias"),
                )
            })?;
        if !(-100.0..=100.0).contains(&bias) {
            return Err(ApiError::bad_request(
                format!("logit_bias values must be between -100 and 100, got {bias} for {key}"),
                Some("logit_bias"),
            ));
        }
        logit_bias.push((token, bias));
    }
    Ok(Penalties {
        presence,
        frequency,
        repetition,
        logit_bias,
    })
}

/// Validates a generation and queues it on the engine; `logprobs`: report
/// each token's log-probability and this many alternatives; `constraint`:
/// the grammar of structured output or a tool call.
fn start(
    loaded: &Loaded,
    prompt_ids: Vec<u32>,
    max_tokens: Option<usize>,
    default_max_tokens: Option<usize>,
    logprobs: Option<usize>,
    constraint: Option<Constraint>,
    s: Sampling,
) -> Result<Started, ApiError> {
    if s.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("only n = 1 is supported", Some("n")));
    }
    let penalties = penalties(loaded, &s)?;
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
            penalties,
        },
        stop,
        logprobs,
        constraint,
        events: tx,
        admitted: Instant::now(),
    };
    loaded.engine.submit(request)?;
    Ok(Started {
        events: rx,
        stream: s.stream,
        include_usage: s.stream_options.is_some_and(|o| o.include_usage),
    })
}

pub async fn completions(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let guard = Guard::new(state.metrics.clone(), Endpoint::Completions);
    let started = (|| {
        let loaded = state.loaded()?;
        let req: CompletionRequest = parse(body)?;
        check_model(loaded, req.model.as_deref())?;
        let one = || {
            ApiError::bad_request(
                "exactly one prompt per request is supported",
                Some("prompt"),
            )
        };
        let encode = |text: &str| {
            loaded
                .tokenizer
                .encode(text)
                .map_err(|e| ApiError::bad_request(e.to_string(), Some("prompt")))
        };
        let ids = match req.prompt {
            Prompt::Text(text) => encode(&text)?,
            Prompt::Tokens(ids) => ids,
            Prompt::Texts(texts) => match <[String; 1]>::try_from(texts) {
                Ok([text]) => encode(&text)?,
                Err(_) => return Err(one()),
            },
            Prompt::TokenLists(lists) => match <[Vec<u32>; 1]>::try_from(lists) {
                Ok([ids]) => ids,
                Err(_) => return Err(one()),
            },
        };
        if req.logprobs.is_some_and(|n| n > MAX_COMPLETION_LOGPROBS) {
            return Err(ApiError::bad_request(
                format!("logprobs must be between 0 and {MAX_COMPLETION_LOGPROBS}"),
                Some("logprobs"),
            ));
        }
        if req.sampling.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(ApiError::bad_request(
                "tools are served on /v1/chat/completions, not on /v1/completions",
                Some("tools"),
            ));
        }
        let constraint = structured::schema(req.sampling.response_format.as_ref())?
            .map(|schema| structured::constraint(loaded, &schema, "response_format"))
            .transpose()?;
        let echo = if req.echo {
            let text = loaded
                .tokenizer
                .decode(&ids)
                .map_err(|e| ApiError::bad_request(e.to_string(), Some("prompt")))?;
            Some(text)
        } else {
            None
        };
        let started = start(
            loaded,
            ids,
            req.max_tokens,
            Some(COMPLETION_DEFAULT_MAX_TOKENS),
            req.logprobs,
            constraint,
            req.sampling,
        )?;
        Ok((started, Shape::completion(loaded, unix_secs(), echo)))
    })();
    respond(started, guard).await
}

pub async fn chat_completions(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let guard = Guard::new(state.metrics.clone(), Endpoint::ChatCompletions);
    let started = (|| {
        let loaded = state.loaded()?;
        let mut req: ChatRequest = parse(body)?;
        check_model(loaded, req.model.as_deref())?;
        if req.messages.is_empty() {
            return Err(ApiError::bad_request(
                "messages must not be empty",
                Some("messages"),
            ));
        }
        if let Some((i, m)) = req
            .messages
            .iter()
            .enumerate()
            .find(|(_, m)| !ROLES.contains(&m.role.as_str()))
        {
            return Err(ApiError::bad_request(
                format!(
                    "messages[{i}].role {:?} is not one of {}",
                    m.role,
                    ROLES.join(", ")
                ),
                Some("messages"),
            ));
        }
        let logprobs = match (req.logprobs, req.top_logprobs) {
            (_, Some(n)) if n > MAX_TOP_LOGPROBS => {
                return Err(ApiError::bad_request(
                    format!("top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}"),
                    Some("top_logprobs"),
                ))
            }
            (false, Some(_)) => {
                return Err(ApiError::bad_request(
                    "top_logprobs needs logprobs set to true",
                    Some("top_logprobs"),
                ))
            }
            (true, top) => Some(top.unwrap_or(0)),
            (false, None) => None,
        };
        let template = loaded.template.as_ref().ok_or_else(|| {
            ApiError::bad_request("this model has no chat template", Some("messages"))
        })?;
        let tools = ToolUse::parse(req.sampling.tools.take(), req.sampling.tool_choice.as_ref())?;
        let format = structured::schema(req.sampling.response_format.as_ref())?;
        let constraint = match &tools {
            Some(tools) => Some(structured::constraint(
                loaded,
                &tools.schema(format),
                "tools",
            )?),
            None => format
                .map(|schema| structured::constraint(loaded, &schema, "response_format"))
                .transpose()?,
        };
        let messages = tools::conversation(template, req.messages, tools.as_ref())?;
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
            logprobs,
            constraint,
            req.sampling,
        )?;
        Ok((started, Shape::chat(loaded, unix_secs(), tools)))
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
    let mut tokens: Vec<TokenLogprob> = Vec::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Token(token) => tokens.push(token),
            Event::Text(t) => text.push_str(&t),
            Event::Done {
                finish_reason,
                prompt_tokens,
                completion_tokens,
            } => {
                guard.finish(Outcome::Ok);
                let usage = Usage::new(prompt_tokens, completion_tokens);
                return shape.full(text, finish_reason, usage, &tokens);
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

fn card(state: &AppState, loaded: &Loaded) -> ModelCard {
    ModelCard {
        id: loaded.model_name.clone(),
        object: "model",
        created: state.created,
        owned_by: "garage",
    }
}

pub async fn models(State(state): State<AppState>) -> Response {
    match state.loaded() {
        Ok(loaded) => Json(ModelList {
            object: "list",
            data: vec![card(&state, loaded)],
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/models/{id}`: the served model's card, or 404.
pub async fn model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.loaded() {
        Ok(loaded) if loaded.model_name == id => Json(card(&state, loaded)).into_response(),
        Ok(loaded) => ApiError::not_found(format!(
            "the model `{id}` does not exist; this worker serves `{}`",
            loaded.model_name
        ))
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
