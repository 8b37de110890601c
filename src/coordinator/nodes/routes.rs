//! The nodes domain's HTTP routes: registration, signed heartbeats, node
//! and market views, node deletion and heartbeat history. Handlers check
//! access, call the store and shape answers; they hold no state of their
//! own. The join-token routes are in `token_routes`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::admission::Admission;
use super::api::{
    CoordinatorInfo, HeartbeatList, HeartbeatRequest, HeartbeatResponse, MarketList, NodeList,
    NodeState, NodeView, RegisterRequest, RegisterResponse,
};
use super::heartbeat_writer::{Beat, HeartbeatWriter, Recorded};
use super::markets;
use super::store::{NewNode, Registered};
use crate::clock::unix_millis;
use crate::coordinator::http::admin::AdminGuard;
use crate::coordinator::http::error::{check_field, parse_json, ApiError, ErrorBody};
use crate::coordinator::http::node_auth::{Authenticator, RequestHead};
use crate::coordinator::http::page::{self, ListKind, PageQuery};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::parameters::Parameters;
use crate::coordinator::store::Store;
use crate::identity::signing;

/// What the nodes domain's handlers share.
#[derive(Debug, Clone)]
pub struct NodesState {
    pub store: Store,
    pub auth: Authenticator,
    pub admin: AdminGuard,
    pub admission: Admission,
    pub metrics: CoordinatorMetrics,
    /// The heartbeat interval nodes are told is read live from here.
    pub parameters: Parameters,
    /// Writes heartbeats in batches (with the history limits).
    pub heartbeats: HeartbeatWriter,
}

/// The nodes routes, with their state.
pub fn router(state: NodesState) -> Router {
    Router::new()
        .route("/api/nodes/register", post(register))
        .route("/api/nodes/{id}/heartbeat", post(heartbeat))
        .route("/api/nodes", get(list_nodes))
        .route("/api/nodes/{id}", get(get_node).delete(delete_node))
        .route("/api/nodes/{id}/heartbeats", get(list_heartbeats))
        .route("/api/markets", get(list_markets))
        .route("/api/coordinator", get(coordinator_info))
        .with_state(state)
}

/// Register a node: binds `node_id` to `public_key` (signed with that key).
/// A new id needs a join token (in `token` mode, or after a deletion);
/// re-registering with the bound key needs none.
#[utoipa::path(
    post,
    path = "/api/nodes/register",
    request_body = RegisterRequest,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "registered or updated", body = RegisterResponse),
        (status = 400, description = "malformed body or public key", body = ErrorBody),
        (status = 401, description = "unsigned, malformed, stale, forged or replayed; a join token missing, unknown, expired or used up", body = ErrorBody),
        (status = 403, description = "signed for another node id; a join token issued for another id; a deleted id without a token issued for it", body = ErrorBody),
        (status = 409, description = "the id is registered with another key", body = ErrorBody),
        (status = 413, description = "body over 1 MiB, or benchmark, gpu_info or location over 64 KiB", body = ErrorBody),
        (status = 429, description = "open registration: too many new nodes from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<NodesState>,
    client: ClientAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RegisterResponse>, ApiError> {
    let head = RequestHead {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let signed = state.auth.signed_headers(head)?;
    let body = body?;
    let request: RegisterRequest = parse_json(&body)?;
    check_field("benchmark", &request.benchmark)?;
    check_field("gpu_info", &request.gpu_info)?;
    check_field("location", &request.location)?;
    let key = signing::parse_public_key(&request.public_key).map_err(|problem| {
        ApiError::bad_request(
            "invalid_public_key",
            format!("public_key is {problem}; send the hex of the 32-byte ed25519 public key"),
        )
    })?;
    let now = unix_millis();
    state
        .auth
        .registration(head, &signed, &body, request.node_id, &key, now)
        .await?;
    if state.store.public_key(request.node_id).await?.is_none() {
        let admitted = state
            .admission
            .admit_new(
                &state.store,
                request.node_id,
                request.join_token.as_deref(),
                client,
                now,
            )
            .await;
        if let Err(err) = admitted {
            let result = match err.status {
                StatusCode::TOO_MANY_REQUESTS => "rate_limited",
                StatusCode::INTERNAL_SERVER_ERROR => return Err(err),
                _ => "not_admitted",
            };
            state
                .metrics
                .registrations
                .with_label_values(&[result])
                .inc();
            tracing::debug!(node_id = %request.node_id, code = err.code, "registration not admitted");
            return Err(err);
        }
    }
    let market = markets::market_for(request.benchmark.as_ref(), &request.gpu_info);
    let node = NewNode {
        node_id: request.node_id,
        public_key: request.public_key,
        market: market.clone(),
        gpu_info: request.gpu_info,
        location: request.location,
        benchmark: request.benchmark,
    };
    let outcome = state.store.register(&node, now).await?;
    let result = match outcome {
        Registered::Created => "created",
        Registered::Updated => "updated",
        Registered::KeyConflict => "key_conflict",
    };
    state
        .metrics
        .registrations
        .with_label_values(&[result])
        .inc();
    if outcome == Registered::KeyConflict {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "key_conflict",
            format!(
                "node {} is registered with another public key; a node id stays bound to its \
                 first key (fix: restore the node's original key, or have an admin delete the node)",
                node.node_id
            ),
        ));
    }
    tracing::info!(node_id = %node.node_id, %market, result, "node registered");
    Ok(Json(RegisterResponse {
        node_id: node.node_id,
        created: outcome == Registered::Created,
        market,
        heartbeat_interval_seconds: state.parameters.heartbeat_interval_secs(now).await?,
    }))
}

/// Who this coordinator is: the id nodes sign their requests for.
#[utoipa::path(
    get,
    path = "/api/coordinator",
    responses((status = 200, description = "the coordinator's id and signature scheme", body = CoordinatorInfo))
)]
pub async fn coordinator_info(State(state): State<NodesState>) -> Json<CoordinatorInfo> {
    Json(CoordinatorInfo {
        coordinator_id: state.auth.coordinator_id(),
        signature_scheme: signing::SCHEME.to_string(),
    })
}

/// A node's heartbeat (signed by that node).
#[utoipa::path(
    post,
    path = "/api/nodes/{id}/heartbeat",
    params(("id" = Uuid, Path, description = "the node's id")),
    request_body = HeartbeatRequest,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "recorded; when the next one is due", body = HeartbeatResponse),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "unsigned, malformed, stale, forged, replayed or unknown node", body = ErrorBody),
        (status = 403, description = "signed by another node", body = ErrorBody),
        (status = 413, description = "body over 1 MiB, or status over 64 KiB", body = ErrorBody),
    )
)]
pub async fn heartbeat(
    State(state): State<NodesState>,
    id: Result<Path<Uuid>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let Path(target) = id?;
    let body = body?;
    let now = unix_millis();
    let head = RequestHead {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let verified = state.auth.node_request_deferred(head, &body, now).await?;
    state.auth.same_node(verified.node_id, target)?;
    let request: HeartbeatRequest = parse_json(&body)?;
    check_field("status", &request.status)?;
    check_field("power", &request.power)?;
    let recorded = state
        .heartbeats
        .record(Beat {
            node_id: target,
            nonce: verified.nonce,
            nonce_expires_ms: verified.nonce_expires_ms,
            heartbeat: request,
            now_ms: now,
        })
        .await?;
    let (before, interval_secs) = match recorded {
        Recorded::Online {
            before,
            interval_secs,
        } => (before, interval_secs),
        Recorded::UnknownNode => {
            return Err(ApiError::not_found(format!(
                "node {target} is not registered"
            )))
        }
        Recorded::Replayed => return Err(state.auth.replayed().into()),
    };
    state.metrics.heartbeats.inc();
    if before == NodeState::Offline {
        tracing::info!(node_id = %target, "node is back online");
    }
    Ok(Json(HeartbeatResponse {
        state: NodeState::Online,
        heartbeat_interval_seconds: interval_secs,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeFilter {
    /// Only nodes of this market (see `GET /api/markets`).
    market: Option<String>,
}

/// Registered nodes, a page at a time by node id.
#[utoipa::path(
    get,
    path = "/api/nodes",
    params(PageQuery, NodeFilter),
    responses(
        (status = 200, description = "one page of registered nodes", body = NodeList),
        (status = 400, description = "limit out of range or a foreign continue token", body = ErrorBody),
    )
)]
pub async fn list_nodes(
    State(state): State<NodesState>,
    query: Result<Query<PageQuery>, QueryRejection>,
    filter: Result<Query<NodeFilter>, QueryRejection>,
) -> Result<Json<NodeList>, ApiError> {
    let Query(query) = query?;
    let Query(filter) = filter?;
    let page = query.page(ListKind::Nodes)?;
    let after = page.after_as("node", |key| Uuid::parse_str(key).ok())?;
    let mut nodes = state
        .store
        .nodes_page(filter.market.as_deref(), None, after, page.limit)
        .await?;
    let continue_token = page::finish(&mut nodes, &page, ListKind::Nodes, |n| {
        n.node_id.to_string()
    });
    Ok(Json(NodeList {
        nodes,
        continue_token,
    }))
}

/// One node, with its standing in its market's qualification.
#[utoipa::path(
    get,
    path = "/api/nodes/{id}",
    params(("id" = Uuid, Path, description = "the node's id")),
    responses(
        (status = 200, description = "the node", body = NodeView),
        (status = 404, description = "no such node", body = ErrorBody),
    )
)]
pub async fn get_node(
    State(state): State<NodesState>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<NodeView>, ApiError> {
    let Path(id) = id?;
    let mut node = state
        .store
        .node(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("node {id} is not registered")))?;
    node.qualification = state.store.node_qualification(id, &node.market).await?;
    Ok(Json(node))
}

/// Remove a node and its history (admin). The id is tombstoned: it
/// registers again only with a join token issued for it (`node_id`).
#[utoipa::path(
    delete,
    path = "/api/nodes/{id}",
    params(("id" = Uuid, Path, description = "the node's id")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 404, description = "no such node", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn delete_node(
    State(state): State<NodesState>,
    client: ClientAddr,
    id: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(id) = id?;
    if state.store.delete_node(id, unix_millis()).await? {
        state.auth.forget_key(id);
        tracing::info!(node_id = %id, "node deleted by an admin");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("node {id} is not registered")))
    }
}

/// A node's stored heartbeats, a page at a time, newest first (admin).
#[utoipa::path(
    get,
    path = "/api/nodes/{id}/heartbeats",
    params(("id" = Uuid, Path, description = "the node's id"), PageQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "one page of stored heartbeats, newest first", body = HeartbeatList),
        (status = 400, description = "limit out of range or a foreign continue token", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 404, description = "no such node", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn list_heartbeats(
    State(state): State<NodesState>,
    client: ClientAddr,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<HeartbeatList>, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(id) = id?;
    let Query(query) = query?;
    let page = query.page(ListKind::Heartbeats)?;
    let before = page
        .after
        .as_deref()
        .map(|key| {
            key.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_continue", "the continue token names no heartbeat")
            })
        })
        .transpose()?;
    if state.store.public_key(id).await?.is_none() {
        return Err(ApiError::not_found(format!("node {id} is not registered")));
    }
    let mut heartbeats = state.store.heartbeats_page(id, before, page.limit).await?;
    let continue_token = page::finish(&mut heartbeats, &page, ListKind::Heartbeats, |h| {
        h.seq.to_string()
    });
    Ok(Json(HeartbeatList {
        heartbeats,
        continue_token,
    }))
}

/// Markets: node counts by GPU class (and qualified nodes where the market
/// has a qualification), a page at a time by name.
#[utoipa::path(
    get,
    path = "/api/markets",
    params(PageQuery),
    responses(
        (status = 200, description = "one page of markets, by name", body = MarketList),
        (status = 400, description = "limit out of range or a foreign continue token", body = ErrorBody),
    )
)]
pub async fn list_markets(
    State(state): State<NodesState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<MarketList>, ApiError> {
    let Query(query) = query?;
    let page = query.page(ListKind::Markets)?;
    let mut markets = state
        .store
        .markets_page(page.after.as_deref(), page.limit)
        .await?;
    let continue_token = page::finish(&mut markets, &page, ListKind::Markets, |m| m.market.clone());
    for market in &mut markets {
        market.qualified = state.store.qualified_nodes(&market.market).await?;
    }
    Ok(Json(MarketList {
        markets,
        continue_token,
    }))
}
