//! The gateway's HTTP routes: the OpenAI endpoints clients call with an API
//! key (`/v1/models`, `/v1/chat/completions`, `/v1/completions`) and the
//! views of links and requests (`views`). A completion is
//! admitted by the account's limits, routed (`choose`), held (`billing`),
//! sent and retried (`relay`), and answered whole or streamed (`stream`),
//! with the serving node in `X-Garage-Node`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ask::{parse_residency, Ask, RESIDENCY_HEADER};
use super::bill::Bill;
use super::billing::{cost, NewBill, TokenPrices, Tokens};
use super::choose::choose;
use super::error::GatewayError;
use super::frames::Endpoint;
use super::limits::Permit;
use super::links::{Link, Slot};
use super::relay::{attempt, Attempt, MAX_ATTEMPTS};
use super::sse;
use super::state::GatewayState;
use super::stream::{relay, StreamParts};
use super::views;
use crate::clock::unix_millis;
use crate::coordinator::http::api_key::Caller;
use crate::coordinator::http::error::{ApiError, ErrorBody};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::jobs::api::Residency;
use crate::coordinator::ledger::LedgerAccount;
use crate::coordinator::parameters::names::Parameter;

/// How long a request moved off a failed node waits for a busy node's slot.
const RETRY_WAIT: Duration = Duration::from_secs(60);
/// How often it looks.
const RETRY_POLL: Duration = Duration::from_millis(25);

/// The response header naming the node that served a request.
pub const NODE_HEADER: &str = "x-garage-node";
/// The response header with the gateway's id of a request (its bill).
pub const REQUEST_HEADER: &str = "x-garage-request-id";

/// The bounded routes (the server's request deadline applies).
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/api/gateway/links", get(views::links))
        .route("/api/gateway/requests/{request_id}", get(views::request))
        .with_state(state)
}

/// The long-lived routes: completions stream for minutes and bound their
/// own time (`relay`); the link lives as long as the node keeps it.
pub fn unbounded_router(state: GatewayState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .merge(super::link_route::router())
        .with_state(state)
}

/// One model the network serves.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// Linked nodes serving it now.
    pub nodes: usize,
    /// Their free request slots now.
    pub free_slots: u32,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

/// The models linked nodes serve, with how many nodes serve each.
#[utoipa::path(
    get,
    path = "/v1/models",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "the models served now", body = ModelList),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
    )
)]
pub async fn models(
    State(state): State<GatewayState>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Result<Json<ModelList>, GatewayError> {
    state.clients.check(&headers, client).await?;
    let mut cards: Vec<ModelCard> = Vec::new();
    for link in state.links.all() {
        for model in link.models() {
            match cards.iter_mut().find(|c| c.id == model) {
                Some(card) => {
                    card.nodes += 1;
                    card.free_slots += link.free_slots();
                }
                None => cards.push(ModelCard {
                    id: model,
                    object: "model",
                    created: 0,
                    owned_by: "garage-network",
                    nodes: 1,
                    free_slots: link.free_slots(),
                }),
            }
        }
    }
    cards.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(ModelList {
        object: "list",
        data: cards,
    }))
}

/// A chat completion served by a node of the network (OpenAI's request and
/// response bodies; `stream: true` answers server-sent events).
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    request_body(content = Object, description = "OpenAI's chat completion request"),
    params(("X-Garage-Residency" = Option<String>, Header, description = "where the request may be served: EU, country codes (SE) or Swedish price areas (SE3), comma-separated; default: the account's")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "the answer, whole or as server-sent events; X-Garage-Node names the node"),
        (status = 400, description = "malformed request, or the worker refused it"),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key"),
        (status = 402, description = "the account's balance does not cover the request's hold"),
        (status = 404, description = "no node serves the model (code model_not_found)"),
        (status = 429, description = "the account's limits, or every suitable node busy (Retry-After)"),
        (status = 502, description = "the nodes tried failed before answering"),
        (status = 503, description = "nodes serve the model but none may take this request (the reason says why)"),
    )
)]
pub async fn chat_completions(
    State(state): State<GatewayState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    complete(state, Endpoint::ChatCompletions, client, headers, body).await
}

/// A text completion served by a node of the network.
#[utoipa::path(
    post,
    path = "/v1/completions",
    request_body(content = Object, description = "OpenAI's completion request"),
    params(("X-Garage-Residency" = Option<String>, Header, description = "as for /v1/chat/completions")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "the answer, whole or as server-sent events; X-Garage-Node names the node"),
        (status = 400, description = "malformed request, or the worker refused it"),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key"),
        (status = 402, description = "the account's balance does not cover the request's hold"),
        (status = 404, description = "no node serves the model (code model_not_found)"),
        (status = 429, description = "the account's limits, or every suitable node busy (Retry-After)"),
        (status = 502, description = "the nodes tried failed before answering"),
        (status = 503, description = "nodes serve the model but none may take this request"),
    )
)]
pub async fn completions(
    State(state): State<GatewayState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    complete(state, Endpoint::Completions, client, headers, body).await
}

async fn complete(
    state: GatewayState,
    endpoint: Endpoint,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match serve(&state, endpoint, client, &headers, body).await {
        Ok(response) => response,
        Err(err) => {
            state.metrics.outcome(endpoint, err.outcome);
            err.into_response()
        }
    }
}

/// The residency a request keeps to: its header, else its account's.
async fn residency(
    state: &GatewayState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Option<Residency>, GatewayError> {
    if let Some(value) = headers.get(RESIDENCY_HEADER) {
        let text = value
            .to_str()
            .map_err(|_| GatewayError::bad_request(None, "X-Garage-Residency is not text"))?;
        return parse_residency(text)
            .map(Some)
            .map_err(|why| GatewayError::bad_request(None, format!("X-Garage-Residency: {why}")));
    }
    let Caller::Account(id) = caller else {
        return Ok(None);
    };
    let stored = state
        .store
        .account_residency(id)
        .await
        .map_err(ApiError::from)?;
    Ok(stored.and_then(|text| parse_residency(&text).ok()))
}

async fn serve(
    state: &GatewayState,
    endpoint: Endpoint,
    client: ClientAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    let started = Instant::now();
    let caller = state.clients.check(headers, client).await?;
    let body = body.map_err(|e| GatewayError::bad_request(None, e.body_text()))?;
    let ask = Ask::parse(endpoint, &body)?;
    let residency = residency(state, &caller, headers).await?;
    let permit = match &caller {
        Caller::Account(id) => Some(state.limits.admit(id, std::time::Instant::now())?),
        Caller::Admin => None,
    };
    let mut tried = HashSet::new();
    let (mut link, mut slot) = choose(&state.links.all(), &ask.model, residency.as_ref(), &tried)?;
    let request_id = Uuid::new_v4();
    let mut bill = hold(state, &caller, &ask, &link.facts.market, request_id).await?;
    loop {
        tried.insert(link.node_id);
        match attempt(&link, slot, &ask, &state.metrics).await {
            Attempt::Streaming(start) => {
                state
                    .metrics
                    .time_to_first_token
                    .observe(started.elapsed().as_secs_f64());
                let node_id = start.exchange.node_id();
                if let Some(bill) = bill.as_mut() {
                    bill.served_by(node_id);
                }
                let parts = StreamParts {
                    bill,
                    permit,
                    include_usage: ask.include_usage,
                    metrics: state.metrics.clone(),
                    endpoint,
                    first_token_at: Instant::now(),
                };
                let body = Body::from_stream(relay(start, parts));
                let mut response = (
                    [
                        (header::CONTENT_TYPE, "text/event-stream"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    body,
                )
                    .into_response();
                tag(&mut response, node_id, request_id);
                return Ok(response);
            }
            Attempt::Whole { status, body } => {
                state
                    .metrics
                    .time_to_first_token
                    .observe(started.elapsed().as_secs_f64());
                return Ok(whole(
                    state,
                    endpoint,
                    link.node_id,
                    request_id,
                    status,
                    body,
                    bill,
                    permit,
                )
                .await);
            }
            Attempt::Retry(why) => {
                tracing::info!(node = %link.node_id, %request_id, reason = %why, "a node failed a gateway request before answering");
                if tried.len() >= MAX_ATTEMPTS {
                    return Err(GatewayError::nodes_failed(format!(
                        "{} nodes failed this request before answering; the last: {why}",
                        tried.len()
                    )));
                }
                match choose_waiting(state, &ask.model, residency.as_ref(), &tried).await {
                    Ok((next, next_slot)) => {
                        state.metrics.retries.inc();
                        (link, slot) = (next, next_slot);
                    }
                    Err(err) => {
                        return Err(GatewayError::nodes_failed(format!(
                            "the node serving this request failed before answering and no other node could take it ({}): {why}",
                            err.message
                        )))
                    }
                }
            }
        }
    }
}

/// [`choose`] for a request already moved off a failed node: when every
/// other suitable node is busy it waits for a free slot (the client has
/// waited once already), up to [`RETRY_WAIT`].
async fn choose_waiting(
    state: &GatewayState,
    model: &str,
    residency: Option<&Residency>,
    tried: &HashSet<Uuid>,
) -> Result<(Arc<Link>, Slot), GatewayError> {
    let deadline = Instant::now() + RETRY_WAIT;
    loop {
        match choose(&state.links.all(), model, residency, tried) {
            Err(busy)
                if busy.status == StatusCode::TOO_MANY_REQUESTS && Instant::now() < deadline =>
            {
                tokio::time::sleep(RETRY_POLL).await;
            }
            other => return other,
        }
    }
}

/// Holds the request's upper bound from the caller's account (nothing for
/// the admin, whose requests are free like its jobs).
async fn hold(
    state: &GatewayState,
    caller: &Caller,
    ask: &Ask,
    market: &str,
    request_id: Uuid,
) -> Result<Option<Bill>, GatewayError> {
    let Caller::Account(id) = caller else {
        return Ok(None);
    };
    let now = unix_millis();
    let price = |parameter: Parameter| async move {
        state
            .parameters
            .get(&parameter, now)
            .await
            .map(Option::unwrap_or_default)
            .map_err(ApiError::from)
    };
    let market_name = Some(market.to_string());
    let prices = TokenPrices {
        input: price(Parameter::PricePer1kInputTokens(market_name.clone())).await?,
        output: price(Parameter::PricePer1kOutputTokens(market_name)).await?,
    };
    let fee = price(Parameter::NetworkFeeBasisPoints).await?;
    let bound = Tokens {
        prompt: ask.body_bytes,
        completion: ask.held_completion_tokens(),
    };
    let held = cost(bound, prices).ok_or_else(|| {
        GatewayError::bad_request(
            Some("max_tokens"),
            "the request's hold overflows; ask for fewer max_tokens",
        )
    })?;
    let bill = NewBill {
        request_id,
        payer: LedgerAccount::Client(id.clone()),
        model: ask.model.clone(),
        market: market.to_string(),
        prices,
        held,
    };
    state.store.hold_gateway_bill(&bill, now).await?;
    Ok(Some(Bill::new(
        state.store.clone(),
        state.settlements.clone(),
        state.metrics.clone(),
        request_id,
        fee,
    )))
}

/// A whole answer: settled by its usage before it is sent.
#[allow(clippy::too_many_arguments)]
async fn whole(
    state: &GatewayState,
    endpoint: Endpoint,
    node_id: Uuid,
    request_id: Uuid,
    status: u16,
    body: String,
    bill: Option<Bill>,
    permit: Option<Permit>,
) -> Response {
    let usage = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| sse::usage(&v));
    if let Some(mut bill) = bill {
        // A worker's refusal served nothing: the bill is voided.
        if let (200, Some(tokens)) = (status, usage) {
            bill.served_by(node_id);
            bill.charge(tokens);
        }
        bill.settle().await;
    }
    drop(permit);
    state
        .metrics
        .outcome(endpoint, if status == 200 { "ok" } else { "client_error" });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    tag(&mut response, node_id, request_id);
    response
}

fn tag(response: &mut Response, node_id: Uuid, request_id: Uuid) {
    let headers = response.headers_mut();
    for (name, value) in [(NODE_HEADER, node_id), (REQUEST_HEADER, request_id)] {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, value);
        }
    }
}
