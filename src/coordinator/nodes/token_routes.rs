//! The admin API for join tokens: create (the secret is in that answer
//! only), list a page at a time, revoke. The rules of a token are in
//! `join_tokens`, their use at registration in `admission`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use axum::{Json, Router};

use super::api::{CreateJoinTokenRequest, JoinTokenCreated, JoinTokenList, JoinTokenView};
use super::join_tokens::{JoinToken, StoredToken, DEFAULT_TTL, MAX_TTL, MAX_USES};
use super::routes::NodesState;
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::page::{self, ListKind, PageQuery};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::store::{now_ms, rfc3339_ms};

/// The join-token routes, with their state.
pub fn router(state: NodesState) -> Router {
    Router::new()
        .route(
            "/api/join-tokens",
            get(list_join_tokens).post(create_join_token),
        )
        .route("/api/join-tokens/{id}", delete(revoke_join_token))
        .with_state(state)
}

fn view(token: &StoredToken, now_ms: i64) -> JoinTokenView {
    JoinTokenView {
        id: token.id.clone(),
        node_id: token.node_id,
        uses_total: token.uses_total,
        uses_left: token.uses_left,
        created_at: rfc3339_ms(token.created_at_ms),
        expires_at: rfc3339_ms(token.expires_at_ms),
        state: token.state(now_ms).as_str().to_string(),
    }
}

/// The token a request asks for, with its limits checked.
fn new_token(
    request: &CreateJoinTokenRequest,
    now_ms: i64,
) -> Result<(JoinToken, StoredToken), ApiError> {
    let ttl = request.ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!(
                "ttl_seconds must be 1 to {} (365 days); default {}",
                MAX_TTL.as_secs(),
                DEFAULT_TTL.as_secs()
            ),
        ));
    }
    let uses = request.uses.unwrap_or(1);
    if !(1..=MAX_USES).contains(&uses) {
        return Err(ApiError::bad_request(
            "invalid_uses",
            format!("uses must be 1 to {MAX_USES}; default 1"),
        ));
    }
    let token = JoinToken::generate();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let stored = StoredToken {
        id: token.id.clone(),
        secret_sha256: token.secret_sha256(),
        node_id: request.node_id,
        uses_total: uses,
        uses_left: uses,
        created_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    };
    Ok((token, stored))
}

/// Make a join token (admin); its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/join-tokens",
    request_body = CreateJoinTokenRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "made; the secret is shown only here", body = JoinTokenCreated),
        (status = 400, description = "malformed body, ttl or uses out of range", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn create_join_token(
    State(state): State<NodesState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<JoinTokenCreated>), ApiError> {
    state.admin.check(&headers, client)?;
    let body = body?;
    let request: CreateJoinTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateJoinTokenRequest::default()
    } else {
        parse_json(&body)?
    };
    let now = now_ms();
    let (token, stored) = new_token(&request, now)?;
    state.store.insert_join_token(&stored).await?;
    tracing::info!(token_id = %stored.id, uses = stored.uses_total, node_id = ?stored.node_id, "join token made");
    Ok((
        StatusCode::CREATED,
        Json(JoinTokenCreated {
            token: token.to_string(),
            view: view(&stored, now),
        }),
    ))
}

/// Join tokens, a page at a time by id (admin); never their secrets.
#[utoipa::path(
    get,
    path = "/api/join-tokens",
    params(PageQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "one page of join tokens", body = JoinTokenList),
        (status = 400, description = "limit out of range or a foreign continue token", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn list_join_tokens(
    State(state): State<NodesState>,
    client: ClientAddr,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<JoinTokenList>, ApiError> {
    state.admin.check(&headers, client)?;
    let Query(query) = query?;
    let page = query.page(ListKind::JoinTokens)?;
    let mut stored = state
        .store
        .join_tokens_page(page.after.as_deref(), page.limit)
        .await?;
    let continue_token = page::finish(&mut stored, &page, ListKind::JoinTokens, |t| t.id.clone());
    let now = now_ms();
    Ok(Json(JoinTokenList {
        tokens: stored.iter().map(|t| view(t, now)).collect(),
        continue_token,
    }))
}

/// Revoke a join token (admin): it admits no more nodes.
#[utoipa::path(
    delete,
    path = "/api/join-tokens/{id}",
    params(("id" = String, Path, description = "the token's id (the part between gjt_ and the dot)")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 404, description = "no such token", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn revoke_join_token(
    State(state): State<NodesState>,
    client: ClientAddr,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(id) = id?;
    if state.store.delete_join_token(&id).await? {
        tracing::info!(token_id = %id, "join token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "there is no join token {id} (fix: see `garage coordinator token list`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_and_uses_are_bounded_with_defaults() {
        let (_, stored) = new_token(&CreateJoinTokenRequest::default(), 1000).expect("ok");
        assert_eq!(stored.expires_at_ms, 1000 + 24 * 3600 * 1000);
        assert_eq!((stored.uses_total, stored.uses_left), (1, 1));
        for bad in [
            CreateJoinTokenRequest {
                ttl_seconds: Some(0),
                ..Default::default()
            },
            CreateJoinTokenRequest {
                ttl_seconds: Some(MAX_TTL.as_secs() + 1),
                ..Default::default()
            },
            CreateJoinTokenRequest {
                uses: Some(0),
                ..Default::default()
            },
        ] {
            assert!(new_token(&bad, 0).is_err(), "{bad:?}");
        }
    }
}
