//! The parameters API: anyone reads them (`GET /api/parameters`, one by
//! name); the admin sets one, now or from a stated time. Proposals set them
//! through the governance domain.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};

use super::api::{ParameterList, ParameterView, SetParameter};
use super::names::{Parameter, ParameterError};
use super::store::Parameters;
use crate::clock::{parse_rfc3339_millis, unix_millis};
use crate::coordinator::http::admin::AdminGuard;
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::rate_limit::ClientAddr;

/// What the parameter handlers share.
#[derive(Debug, Clone)]
pub struct ParametersState {
    pub parameters: Parameters,
    pub admin: AdminGuard,
}

pub fn router(state: ParametersState) -> Router {
    Router::new()
        .route("/api/parameters", get(list_parameters))
        .route(
            "/api/parameters/{name}",
            get(get_parameter).put(set_parameter),
        )
        .with_state(state)
}

impl From<ParameterError> for ApiError {
    fn from(err: ParameterError) -> Self {
        let code = match err {
            ParameterError::Unknown { .. } => "unknown_parameter",
            ParameterError::OutOfRange { .. } => "invalid_parameter_value",
        };
        ApiError::bad_request(code, err.to_string())
    }
}

/// Every parameter with its live value and its changes (public).
#[utoipa::path(
    get,
    path = "/api/parameters",
    responses((status = 200, description = "every global parameter and every market parameter set", body = ParameterList))
)]
pub async fn list_parameters(
    State(state): State<ParametersState>,
) -> Result<Json<ParameterList>, ApiError> {
    let parameters = state.parameters.list(unix_millis()).await?;
    Ok(Json(ParameterList { parameters }))
}

/// One parameter (public).
#[utoipa::path(
    get,
    path = "/api/parameters/{name}",
    params(("name" = String, Path, description = "e.g. networkFeeBasisPoints or pricePerSecond.gpu-24g")),
    responses(
        (status = 200, description = "the parameter", body = ParameterView),
        (status = 400, description = "not a parameter", body = ErrorBody),
    )
)]
pub async fn get_parameter(
    State(state): State<ParametersState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<ParameterView>, ApiError> {
    let Path(name) = name?;
    let parameter = Parameter::parse(&name)?;
    Ok(Json(
        state.parameters.view(&parameter, unix_millis()).await?,
    ))
}

/// Set a parameter (admin), from now or from `effective_at`.
#[utoipa::path(
    put,
    path = "/api/parameters/{name}",
    params(("name" = String, Path, description = "e.g. networkFeeBasisPoints or pricePerSecond.gpu-24g")),
    request_body = SetParameter,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "scheduled", body = ParameterView),
        (status = 400, description = "not a parameter, a value out of its range or a malformed time", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn set_parameter(
    State(state): State<ParametersState>,
    client: ClientAddr,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ParameterView>, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(name) = name?;
    let parameter = Parameter::parse(&name)?;
    let change: SetParameter = parse_json(&body?)?;
    let value = parameter.check(change.value)?;
    let now = unix_millis();
    let effective_at = match change.effective_at.as_deref() {
        None => now,
        Some(text) => parse_rfc3339_millis(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_effective_at",
                format!(
                    "effective_at {text:?} is not an RFC 3339 time (e.g. 2026-12-24T12:00:00Z)"
                ),
            )
        })?,
    };
    state
        .parameters
        .schedule(&parameter, value, effective_at, "admin", now)
        .await?;
    tracing::info!(parameter = %parameter, value, effective_at, "parameter set by the admin");
    Ok(Json(state.parameters.view(&parameter, now).await?))
}
