//! What the gateway shows besides answers: the open links and their load
//! (admin), and one request's bill (its account or the admin), so a
//! client can see what a request was charged and why.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::state::GatewayState;
use crate::coordinator::http::api_key::Caller;
use crate::coordinator::http::error::{ApiError, ErrorBody};
use crate::coordinator::http::rate_limit::ClientAddr;

/// One linked node's load.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    pub node_id: Uuid,
    pub market: String,
    pub country: Option<String>,
    pub qualified: bool,
    pub models: Vec<String>,
    pub slots: u32,
    pub in_flight: u32,
}

/// `GET /api/gateway/links`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LinkList {
    pub links: Vec<LinkView>,
}

/// The linked nodes and their load (admin).
#[utoipa::path(
    get,
    path = "/api/gateway/links",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "every open node link, by node id", body = LinkList),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
    )
)]
pub async fn links(
    State(state): State<GatewayState>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Result<Json<LinkList>, ApiError> {
    state.admin.check(&headers, client)?;
    let links = state
        .links
        .all()
        .into_iter()
        .map(|link| {
            let load = link.load();
            LinkView {
                node_id: load.node_id,
                market: load.market,
                country: load.country,
                qualified: link.facts.qualified,
                models: load.models,
                slots: load.slots,
                in_flight: load.in_flight,
            }
        })
        .collect();
    Ok(Json(LinkList { links }))
}

/// A gateway request's bill, as `GET /api/gateway/requests/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestBill {
    pub request_id: Uuid,
    pub model: String,
    /// `held` (in flight), `settled` or `voided` (no node served it).
    pub state: String,
    pub node_id: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    /// µGAI held while it ran.
    pub held_ugai: i64,
    /// µGAI charged: the node's pay and the network fee.
    pub charged_ugai: Option<i64>,
    pub refunded_ugai: Option<i64>,
}

/// One gateway request's bill (its account, or the admin); the id is the
/// answer's `X-Garage-Request-Id`.
#[utoipa::path(
    get,
    path = "/api/gateway/requests/{request_id}",
    params(("request_id" = Uuid, Path, description = "X-Garage-Request-Id of the answer")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "the request's bill", body = RequestBill),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
        (status = 404, description = "no such request of this account", body = ErrorBody),
    )
)]
pub async fn request(
    State(state): State<GatewayState>,
    client: ClientAddr,
    headers: HeaderMap,
    request_id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<RequestBill>, ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let Path(request_id) = request_id?;
    let missing =
        || ApiError::not_found(format!("no gateway request {request_id} of this account"));
    let bill = state
        .store
        .gateway_bill(request_id)
        .await?
        .ok_or_else(missing)?;
    let owner = match &caller {
        Caller::Admin => true,
        Caller::Account(id) => bill.payer == format!("client:{id}"),
    };
    if !owner {
        return Err(missing());
    }
    let charged = match (bill.paid, bill.fee) {
        (Some(paid), Some(fee)) => Some(paid + fee),
        _ => None,
    };
    Ok(Json(RequestBill {
        request_id,
        model: bill.model,
        state: bill.state,
        node_id: bill.node_id,
        prompt_tokens: bill.prompt_tokens,
        completion_tokens: bill.completion_tokens,
        held_ugai: bill.held,
        charged_ugai: charged,
        refunded_ugai: bill.refunded,
    }))
}
