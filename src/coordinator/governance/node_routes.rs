//! The governance API for nodes, signed like heartbeats (signature,
//! audience, timestamp window, nonce; a node acts only for itself): a node
//! holding GAI opens proposals and votes as `node:<its id>`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::post;
use axum::{Json, Router};
use uuid::Uuid;

use super::api::{NewProposal, NodeVote, ProposalView, VoteVia, VoteView};
use super::routes::{node_voter, open, vote, GovernanceState};
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};

/// The signed governance routes, with their state.
pub fn router(state: GovernanceState) -> Router {
    Router::new()
        .route("/api/nodes/{id}/proposals", post(node_create_proposal))
        .route("/api/nodes/{id}/votes", post(node_vote))
        .with_state(state)
}

/// Open a proposal as a node holding GAI (signed by the node).
#[utoipa::path(
    post,
    path = "/api/nodes/{id}/proposals",
    params(("id" = Uuid, Path, description = "the node's id")),
    request_body = NewProposal,
    security(("node_signature" = [])),
    responses(
        (status = 201, description = "opened", body = ProposalView),
        (status = 400, description = "malformed or invalid proposal (the message names the field)", body = ErrorBody),
        (status = 401, description = "unsigned, malformed, stale, forged, replayed or unknown node", body = ErrorBody),
        (status = 403, description = "signed by another node; the node has no voting power", body = ErrorBody),
        (status = 409, description = "the node has 5 open proposals", body = ErrorBody),
    )
)]
pub async fn node_create_proposal(
    State(state): State<GovernanceState>,
    id: Result<Path<Uuid>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ProposalView>), ApiError> {
    let Path(target) = id?;
    let body = body?;
    let node = state
        .auth
        .node_request_for(target, &method, &uri, &headers, &body)
        .await?;
    open(&state, &node_voter(node), &body).await
}

/// Vote as a node (signed by the node): its power is its balance when the
/// proposal opened. A second vote replaces the first until the deadline.
#[utoipa::path(
    post,
    path = "/api/nodes/{id}/votes",
    params(("id" = Uuid, Path, description = "the node's id")),
    request_body = NodeVote,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "counted (replacing this node's earlier vote, if any)", body = VoteView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "unsigned, malformed, stale, forged, replayed or unknown node", body = ErrorBody),
        (status = 403, description = "signed by another node; no voting power at open", body = ErrorBody),
        (status = 404, description = "no such proposal", body = ErrorBody),
        (status = 409, description = "the deadline passed", body = ErrorBody),
    )
)]
pub async fn node_vote(
    State(state): State<GovernanceState>,
    id: Result<Path<Uuid>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<VoteView>, ApiError> {
    let Path(target) = id?;
    let body = body?;
    let node = state
        .auth
        .node_request_for(target, &method, &uri, &headers, &body)
        .await?;
    let request: NodeVote = parse_json(&body)?;
    vote(
        &state,
        request.proposal_id,
        &node_voter(node),
        request.choice,
        VoteVia::NodeSignature,
    )
    .await
}
