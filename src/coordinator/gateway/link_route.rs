//! The node link's WebSocket: a node opens it with a request signed like
//! every node request (fresh, for this coordinator, never replayed), then
//! keeps it. Here the link is registered with what routing needs (market,
//! location, qualification), the node's frames are handed to their
//! requests, and requests and cancels go out. The coordinator pings every
//! [`PING_EVERY`]; a link silent for [`SILENT_LIMIT`] is closed, as is a
//! link the node replaces by reconnecting.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::frames::{FromNode, LINK_PATH, MAX_FRAME_BYTES, MAX_MODELS, MAX_SLOTS};
use super::links::{Link, NodeFacts};
use super::state::GatewayState;
use crate::coordinator::http::error::ApiError;

/// How often the coordinator pings a link.
pub const PING_EVERY: Duration = Duration::from_secs(10);
/// A link silent this long (not even a pong) is closed.
pub const SILENT_LIMIT: Duration = Duration::from_secs(30);
/// Requests and cancels queued for one node before senders wait.
const OUTBOX: usize = 1024;

/// The link's route.
pub fn router() -> Router<GatewayState> {
    Router::new().route(LINK_PATH, get(open))
}

/// Opens a node's gateway link (a WebSocket upgrade signed by the node).
#[utoipa::path(
    get,
    path = "/api/nodes/{node_id}/link",
    params(("node_id" = Uuid, Path, description = "the node opening its link")),
    security(("node_signature" = [])),
    responses(
        (status = 101, description = "the link is open: JSON text frames as in src/coordinator/gateway/frames.rs"),
        (status = 400, description = "not a WebSocket upgrade"),
        (status = 401, description = "unsigned, stale, replayed or wrongly signed"),
        (status = 403, description = "signed by another node"),
    )
)]
pub async fn open(
    State(state): State<GatewayState>,
    Path(node_id): Path<Uuid>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let refused = |err: ApiError| {
        state
            .metrics
            .link_connects
            .with_label_values(&["refused"])
            .inc();
        err.into_response()
    };
    if let Err(err) = state
        .auth
        .node_request_for(node_id, &method, &uri, &headers, &[])
        .await
    {
        return refused(err.into());
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return refused(ApiError::bad_request(
                "not_a_websocket",
                format!("the node link is a WebSocket: {}", rejection.body_text()),
            ))
        }
    };
    let facts = match node_facts(&state, node_id).await {
        Ok(facts) => facts,
        Err(err) => return refused(err),
    };
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| run(socket, state, node_id, facts))
}

async fn node_facts(state: &GatewayState, node_id: Uuid) -> Result<NodeFacts, ApiError> {
    let node = state
        .store
        .node(node_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("node {node_id} is not registered")))?;
    let qualified = state
        .store
        .node_qualification(node_id, &node.market)
        .await?
        .is_none_or(|q| q.qualified);
    Ok(NodeFacts {
        market: node.market,
        location: node.location,
        qualified,
    })
}

/// Serves one link until it closes, is replaced, or the coordinator stops.
async fn run(socket: WebSocket, state: GatewayState, node_id: Uuid, facts: NodeFacts) {
    let (outbox, mut to_node) = mpsc::channel(OUTBOX);
    let link = state.links.open(node_id, facts, outbox);
    tracing::info!(node = %node_id, "gateway link open");
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut heard = Instant::now();
    let why = loop {
        tokio::select! {
            () = state.cancel.cancelled() => break "the coordinator is stopping",
            () = link.closed.cancelled() => break "the node opened a newer link",
            frame = to_node.recv() => {
                let Some(frame) = frame else { break "the link's outbox closed" };
                let text = serde_json::to_string(&frame).unwrap_or_default();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break "sending to the node failed";
                }
            }
            message = stream.next() => {
                heard = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => receive(&state, &link, &text),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break "the node closed the link",
                    Some(Err(_)) => break "the link's connection failed",
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_LIMIT {
                    break "the node was silent past the limit";
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break "pinging the node failed";
                }
            }
        }
    };
    state.links.remove(&link);
    let _ = sink.send(Message::Close(None)).await;
    tracing::info!(node = %node_id, reason = why, "gateway link closed");
}

/// Handles one frame from the node; a malformed one is logged and dropped.
fn receive(state: &GatewayState, link: &Link, text: &str) {
    match serde_json::from_str::<FromNode>(text) {
        Ok(FromNode::Hello { mut models, slots }) => {
            models.truncate(MAX_MODELS);
            models.retain(|m| !m.is_empty() && m.len() <= 256);
            link.announce(models, slots.min(MAX_SLOTS));
            state.links.refresh_gauges();
        }
        Ok(frame) => link.deliver(frame),
        Err(err) => {
            tracing::warn!(node = %link.node_id, error = %err, "dropped a malformed frame from a node's link")
        }
    }
}
