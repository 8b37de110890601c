//! The admin API for client accounts: create (the API key is in that answer
//! only), list a page at a time, revoke.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use axum::{Json, Router};

use super::api::{AccountCreated, AccountList, AccountView, CreateAccountRequest};
use super::keys::ApiKey;
use super::store::{Inserted, StoredAccount};
use crate::clock::{rfc3339_millis, unix_millis};
use crate::coordinator::gateway::ask::parse_residency;
use crate::coordinator::http::admin::AdminGuard;
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::page::{self, ListKind, PageQuery};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::store::Store;

/// What the accounts handlers share.
#[derive(Debug, Clone)]
pub struct AccountsState {
    pub store: Store,
    pub admin: AdminGuard,
}

/// The accounts routes, with their state.
pub fn router(state: AccountsState) -> Router {
    Router::new()
        .route("/api/accounts", get(list_accounts).post(create_account))
        .route("/api/accounts/{id}", delete(revoke_account))
        .with_state(state)
}

fn view(account: &StoredAccount) -> AccountView {
    AccountView {
        id: account.id.clone(),
        name: account.name.clone(),
        created_at: rfc3339_millis(account.created_at_ms),
        revoked_at: account.revoked_at_ms.map(rfc3339_millis),
        state: if account.revoked_at_ms.is_some() {
            "revoked"
        } else {
            "active"
        }
        .to_string(),
    }
}

/// 1-64 characters of `a-z0-9._-`, starting with a letter or digit.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_account_name",
            format!(
                "account name {name:?} is not 1-64 of a-z, 0-9, '.', '_', '-' starting with a \
                 letter or digit"
            ),
        ))
    }
}

/// Make a client account (admin); its API key is in this answer only.
#[utoipa::path(
    post,
    path = "/api/accounts",
    request_body = CreateAccountRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "made; the API key is shown only here", body = AccountCreated),
        (status = 400, description = "malformed body or name", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 409, description = "an account with this name exists", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn create_account(
    State(state): State<AccountsState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<AccountCreated>), ApiError> {
    state.admin.check(&headers, client)?;
    let request: CreateAccountRequest = parse_json(&body?)?;
    check_name(&request.name)?;
    if let Some(residency) = &request.residency {
        parse_residency(residency).map_err(|why| {
            ApiError::bad_request("invalid_residency", format!("residency: {why}"))
        })?;
    }
    let key = ApiKey::generate();
    let account = StoredAccount {
        id: key.id.clone(),
        name: request.name,
        secret_sha256: key.secret_sha256(),
        created_at_ms: unix_millis(),
        revoked_at_ms: None,
    };
    if state.store.insert_account(&account).await? == Inserted::Taken {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "account_exists",
            format!(
                "an account named {:?} exists (fix: choose another name, or see `garage account list`)",
                account.name
            ),
        ));
    }
    if let Some(residency) = &request.residency {
        state
            .store
            .set_account_residency(&account.id, Some(residency))
            .await?;
    }
    tracing::info!(account_id = %account.id, name = %account.name, "account made");
    Ok((
        StatusCode::CREATED,
        Json(AccountCreated {
            api_key: key.to_string(),
            view: view(&account),
        }),
    ))
}

/// Client accounts, a page at a time by id (admin); never their keys.
#[utoipa::path(
    get,
    path = "/api/accounts",
    params(PageQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "one page of accounts", body = AccountList),
        (status = 400, description = "limit out of range or a foreign continue token", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn list_accounts(
    State(state): State<AccountsState>,
    client: ClientAddr,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<AccountList>, ApiError> {
    state.admin.check(&headers, client)?;
    let Query(query) = query?;
    let page = query.page(ListKind::Accounts)?;
    let mut stored = state
        .store
        .accounts_page(page.after.as_deref(), page.limit)
        .await?;
    let continue_token = page::finish(&mut stored, &page, ListKind::Accounts, |a| a.id.clone());
    Ok(Json(AccountList {
        accounts: stored.iter().map(view).collect(),
        continue_token,
    }))
}

/// Revoke an account's API key (admin): its requests are refused (401)
/// from now on; its jobs stay.
#[utoipa::path(
    delete,
    path = "/api/accounts/{id}",
    params(("id" = String, Path, description = "the account's id (the part between gk_ and the second underscore)")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "revoked (also when it already was)"),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 404, description = "no such account", body = ErrorBody),
        (status = 429, description = "too many failed admin attempts from this address (Retry-After)", body = ErrorBody),
    )
)]
pub async fn revoke_account(
    State(state): State<AccountsState>,
    client: ClientAddr,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    state.admin.check(&headers, client)?;
    let Path(id) = id?;
    if state.store.revoke_account(&id, unix_millis()).await? {
        tracing::info!(account_id = %id, "account revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "there is no account {id} (fix: see `garage account list`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for good in ["alice", "team-7", "a.b_c", "0day"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "-x", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
