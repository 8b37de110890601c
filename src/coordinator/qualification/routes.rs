//! The admin API for market qualifications: set, read and remove the job
//! a node of a market must pass before it takes the market's jobs. Only the
//! admin reads one: the expected answer is not for nodes to see.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::{Json, Router};

use super::api::{MarketQualification, Qualification};
use crate::clock::{rfc3339_millis, unix_millis};
use crate::coordinator::http::admin::AdminGuard;
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::store::Store;

/// What the qualification handlers share.
#[derive(Debug, Clone)]
pub struct QualificationState {
    pub store: Store,
    pub admin: AdminGuard,
}

/// The qualification routes, with their state.
pub fn router(state: QualificationState) -> Router {
    Router::new()
        .route(
            "/api/markets/{market}/qualification",
            put(set_qualification)
                .get(get_qualification)
                .delete(delete_qualification),
        )
        .with_state(state)
}

/// The field that makes `qualification` unusable, if any.
fn check(qualification: &Qualification) -> Result<(), ApiError> {
    let invalid = |field: &str, problem: &str| {
        Err(ApiError::bad_request(
            "invalid_qualification",
            format!("{field}: {problem}"),
        ))
    };
    if qualification.model.trim().is_empty() {
        return invalid("model", "name the model the worker answers with");
    }
    if qualification.prompt.is_empty() {
        return invalid("prompt", "give the prompt");
    }
    if qualification.expected.trim().is_empty() {
        return invalid("expected", "give the text the answer must contain");
    }
    if !(1..=4096).contains(&qualification.max_tokens) {
        return invalid("max_tokens", "use 1 to 4096");
    }
    if !(qualification.min_tokens_per_second.is_finite()
        && qualification.min_tokens_per_second > 0.0)
    {
        return invalid("min_tokens_per_second", "use a number above 0");
    }
    Ok(())
}

fn no_qualification(market: &str) -> ApiError {
    ApiError::not_found(format!(
        "market {market} has no qualification (every node of it takes its jobs)"
    ))
}

/// Set a market's qualification (admin): from now on a node of the market
/// takes its jobs only after passing it. Nodes that passed before stay
/// qualified.
#[utoipa::path(
    put,
    path = "/api/markets/{market}/qualification",
    params(("market" = String, Path, description = "the market (GPU class)")),
    request_body = Qualification,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "set", body = MarketQualification),
        (status = 400, description = "malformed body or an unusable field", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn set_qualification(
    State(state): State<QualificationState>,
    client: ClientAddr,
    headers: HeaderMap,
    market: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MarketQualification>, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(market) = market?;
    let qualification: Qualification = parse_json(&body?)?;
    check(&qualification)?;
    let now = unix_millis();
    state
        .store
        .set_qualification(&market, &qualification, now)
        .await?;
    tracing::info!(%market, "market qualification set");
    Ok(Json(MarketQualification {
        market,
        qualification,
        updated_at: rfc3339_millis(now),
    }))
}

/// A market's qualification (admin).
#[utoipa::path(
    get,
    path = "/api/markets/{market}/qualification",
    params(("market" = String, Path, description = "the market (GPU class)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "the qualification", body = MarketQualification),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 404, description = "the market has no qualification", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn get_qualification(
    State(state): State<QualificationState>,
    client: ClientAddr,
    headers: HeaderMap,
    market: Result<Path<String>, PathRejection>,
) -> Result<Json<MarketQualification>, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(market) = market?;
    let (qualification, updated_at) = state
        .store
        .qualification(&market)
        .await?
        .ok_or_else(|| no_qualification(&market))?;
    Ok(Json(MarketQualification {
        market,
        qualification,
        updated_at: rfc3339_millis(updated_at),
    }))
}

/// Remove a market's qualification (admin): every node of it takes its
/// jobs again.
#[utoipa::path(
    delete,
    path = "/api/markets/{market}/qualification",
    params(("market" = String, Path, description = "the market (GPU class)")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 404, description = "the market has no qualification", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn delete_qualification(
    State(state): State<QualificationState>,
    client: ClientAddr,
    headers: HeaderMap,
    market: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(market) = market?;
    if state.store.delete_qualification(&market).await? {
        tracing::info!(%market, "market qualification removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_qualification(&market))
    }
}
