//! The ledger API: an account's balance and transfers (its owner — a
//! client by API key, a node by its signature — or the admin), the admin's
//! mint (idempotent by `Idempotency-Key`), and the public audit.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::account::LedgerAccount;
use super::api::{BalanceView, LedgerAudit, MintRequest, MintResponse, TransferList, TransferView};
use super::store::{Applied, BalanceRow, LedgerError, TransferCursor, TransferRow};
use crate::clock::{rfc3339_millis, unix_millis};
use crate::coordinator::http::admin::AdminGuard;
use crate::coordinator::http::api_key::{Caller, ClientAuth};
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::idempotency::idempotency_key;
use crate::coordinator::http::node_auth::{Authenticator, RequestHead};
use crate::coordinator::http::page::{self, ListKind, PageQuery};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::store::Store;
use crate::identity::signing::HEADER_SIGNATURE;

/// What the ledger handlers share.
#[derive(Debug, Clone)]
pub struct LedgerState {
    pub store: Store,
    pub clients: ClientAuth,
    pub auth: Authenticator,
    pub admin: AdminGuard,
}

pub fn router(state: LedgerState) -> Router {
    Router::new()
        .route("/api/ledger/accounts/{account}", get(get_balance))
        .route(
            "/api/ledger/accounts/{account}/transfers",
            get(list_transfers),
        )
        .route("/api/ledger/mint", post(mint))
        .route("/api/ledger/audit", get(audit))
        .with_state(state)
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::Insufficient { .. } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_funds",
                err.to_string(),
            ),
            LedgerError::IdReused { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                err.to_string(),
            ),
            LedgerError::NotMintable { .. } => {
                ApiError::bad_request("invalid_account", err.to_string())
            }
            LedgerError::Store(err) => err.into(),
        }
    }
}

/// Who reads an account: the admin (any), or the owner of one account.
enum Reader {
    Admin,
    Owner(LedgerAccount),
}

/// The reader of a request: a node when it is signed, else a client or
/// the admin by bearer token.
async fn reader(
    state: &LedgerState,
    head: RequestHead<'_>,
    client: ClientAddr,
) -> Result<Reader, ApiError> {
    if head.headers.contains_key(HEADER_SIGNATURE) {
        let node = state.auth.node_request(head, b"", unix_millis()).await?;
        return Ok(Reader::Owner(LedgerAccount::Node(node)));
    }
    Ok(match state.clients.check(head.headers, client).await? {
        Caller::Admin => Reader::Admin,
        Caller::Account(id) => Reader::Owner(LedgerAccount::Client(id)),
    })
}

/// The account `key` names, if this reader may see it.
fn readable(reader: &Reader, key: &str) -> Result<LedgerAccount, ApiError> {
    let hidden = || {
        ApiError::not_found(format!(
            "there is no ledger account {key:?} (or it is not yours; accounts are client:<id>, \
             node:<uuid>, treasury, issuer, escrow:<job>)"
        ))
    };
    let account = LedgerAccount::parse(key).ok_or_else(hidden)?;
    match reader {
        Reader::Admin => Ok(account),
        Reader::Owner(own) if *own == account => Ok(account),
        Reader::Owner(_) => Err(hidden()),
    }
}

fn balance_view(account: &LedgerAccount, row: Option<BalanceRow>) -> BalanceView {
    match row {
        Some(row) => BalanceView {
            account: row.account,
            kind: row.kind,
            balance_ugai: row.balance,
        },
        None => BalanceView {
            account: account.key(),
            kind: account.kind().to_string(),
            balance_ugai: 0,
        },
    }
}

pub fn transfer_view(row: TransferRow) -> TransferView {
    TransferView {
        transfer_id: row.id,
        debit: row.debit,
        credit: row.credit,
        amount_ugai: row.amount,
        kind: row.kind,
        job_id: row.job_id,
        memo: row.memo,
        at: rfc3339_millis(row.at_ms),
    }
}

/// An account's balance (its owner or the admin).
#[utoipa::path(
    get,
    path = "/api/ledger/accounts/{account}",
    params(("account" = String, Path, description = "client:<id>, node:<uuid>, treasury, issuer or escrow:<job>")),
    security(("api_key" = []), ("node_signature" = [])),
    responses(
        (status = 200, description = "the balance (0 for an account with no transfers yet)", body = BalanceView),
        (status = 401, description = "no or a wrong API key, admin token or node signature", body = ErrorBody),
        (status = 404, description = "not an account, or not the caller's", body = ErrorBody),
    )
)]
pub async fn get_balance(
    State(state): State<LedgerState>,
    client: ClientAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
) -> Result<Json<BalanceView>, ApiError> {
    let head = RequestHead {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let reader = reader(&state, head, client).await?;
    let Path(key) = account?;
    let account = readable(&reader, &key)?;
    let row = state.store.balance(&account).await?;
    Ok(Json(balance_view(&account, row)))
}

/// An account's transfers, newest first, a page at a time (its owner or
/// the admin).
#[utoipa::path(
    get,
    path = "/api/ledger/accounts/{account}/transfers",
    params(("account" = String, Path, description = "client:<id>, node:<uuid>, treasury, issuer or escrow:<job>"), PageQuery),
    security(("api_key" = []), ("node_signature" = [])),
    responses(
        (status = 200, description = "one page of transfers", body = TransferList),
        (status = 400, description = "limit out of range or a foreign continue token", body = ErrorBody),
        (status = 401, description = "no or a wrong API key, admin token or node signature", body = ErrorBody),
        (status = 404, description = "not an account, or not the caller's", body = ErrorBody),
    )
)]
pub async fn list_transfers(
    State(state): State<LedgerState>,
    client: ClientAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<TransferList>, ApiError> {
    let head = RequestHead {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let reader = reader(&state, head, client).await?;
    let Path(key) = account?;
    let account = readable(&reader, &key)?;
    let Query(query) = query?;
    let page = query.page(ListKind::Transfers)?;
    let before = page
        .after
        .as_deref()
        .map(|key| {
            TransferCursor::parse(key).ok_or_else(|| {
                ApiError::bad_request("invalid_continue", "the continue token names no transfer")
            })
        })
        .transpose()?;
    let mut rows = state
        .store
        .transfers_page(&account, before.as_ref(), page.limit)
        .await?;
    let continue_token = page::finish(&mut rows, &page, ListKind::Transfers, TransferCursor::key);
    Ok(Json(TransferList {
        transfers: rows.into_iter().map(transfer_view).collect(),
        continue_token,
    }))
}

/// Mint GAI into an account (admin). `Idempotency-Key` is required: a
/// retry with the same key mints nothing more.
#[utoipa::path(
    post,
    path = "/api/ledger/mint",
    request_body = MintRequest,
    params(("Idempotency-Key" = String, Header, description = "names this mint; a retry with the same key has no further effect")),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "minted now", body = MintResponse),
        (status = 200, description = "minted before under this key", body = MintResponse),
        (status = 400, description = "malformed body, no Idempotency-Key, an account that cannot receive a mint, or an amount not above 0", body = ErrorBody),
        (status = 401, description = "no or a wrong admin token", body = ErrorBody),
        (status = 409, description = "this Idempotency-Key minted another amount or account before", body = ErrorBody),
    )
)]
pub async fn mint(
    State(state): State<LedgerState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<MintResponse>), ApiError> {
    state.admin.check(&headers, client)?;
    let key = idempotency_key(&headers)?.ok_or_else(|| {
        ApiError::bad_request(
            "idempotency_key_required",
            "a mint needs the header Idempotency-Key (e.g. a new UUID), so a retry cannot mint twice",
        )
    })?;
    let request: MintRequest = parse_json(&body?)?;
    let account = LedgerAccount::parse(&request.account).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_account",
            format!(
                "account {:?} is not client:<id>, node:<uuid> or treasury",
                request.account
            ),
        )
    })?;
    if request.amount_ugai <= 0 {
        return Err(ApiError::bad_request(
            "invalid_amount",
            format!("amount_ugai {} must be above 0", request.amount_ugai),
        ));
    }
    if request.memo.len() > 256 {
        return Err(ApiError::bad_request(
            "invalid_memo",
            "memo: at most 256 bytes",
        ));
    }
    let exists = match &account {
        LedgerAccount::Client(id) => state.store.account(id).await?.is_some(),
        LedgerAccount::Node(id) => state.store.public_key(*id).await?.is_some(),
        _ => true,
    };
    if !exists {
        return Err(ApiError::not_found(format!(
            "there is no {account} to mint into (fix: name an existing client account or registered node)"
        )));
    }
    let transfer_id = format!("mint:{key}");
    let memo = if request.memo.is_empty() {
        "minted by the admin".to_string()
    } else {
        request.memo.clone()
    };
    let applied = state
        .store
        .mint(
            &account,
            request.amount_ugai,
            &transfer_id,
            &memo,
            unix_millis(),
        )
        .await?;
    let minted_now = applied == Applied::Now;
    if minted_now {
        tracing::info!(%account, amount_ugai = request.amount_ugai, %transfer_id, "minted by the admin");
    }
    let balance = balance_view(&account, state.store.balance(&account).await?);
    let status = if minted_now {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(MintResponse {
            transfer_id,
            minted_now,
            balance,
        }),
    ))
}

/// The ledger's totals and every invariant, read in one snapshot (public).
#[utoipa::path(
    get,
    path = "/api/ledger/audit",
    responses((status = 200, description = "the audit; `ok` is false when an invariant breaks", body = LedgerAudit))
)]
pub async fn audit(State(state): State<LedgerState>) -> Result<Json<LedgerAudit>, ApiError> {
    Ok(Json(state.store.audit().await?))
}
