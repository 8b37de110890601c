//! The governance API for people: anyone reads proposals, their tallies
//! and their votes; the admin or an account with voting power (API key)
//! opens a proposal; an account votes with its API key. Nodes do the same
//! with signed requests (`node_routes`). Every handler shares [`open`] and
//! [`vote`], so both ways follow the same rules.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::api::{
    CastVote, NewProposal, ProposalList, ProposalState, ProposalView, VoteList, VoteVia, VoteView,
};
use super::rules::{self, Action, ProposalError, MAX_OPEN_PER_PROPOSER};
use super::store::{NotOpened, ProposalCursor, ProposalRow, ADMIN_PROPOSER};
use super::votes::Cast;
use crate::clock::{rfc3339_millis, unix_millis};
use crate::coordinator::http::api_key::{Caller, ClientAuth};
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::node_auth::Authenticator;
use crate::coordinator::http::page::{self, ListKind, PageQuery};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::ledger::LedgerAccount;
use crate::coordinator::parameters::store::{
    DEFAULT_QUORUM_BASIS_POINTS, DEFAULT_THRESHOLD_BASIS_POINTS, DEFAULT_VOTING_PERIOD_SECONDS,
};
use crate::coordinator::parameters::{Parameter, Parameters};
use crate::coordinator::store::Store;

/// What the governance handlers share; cheap to clone.
#[derive(Debug, Clone)]
pub struct GovernanceState {
    pub store: Store,
    pub auth: Authenticator,
    pub clients: ClientAuth,
    pub parameters: Parameters,
}

/// The people's governance routes, with their state.
pub fn router(state: GovernanceState) -> Router {
    Router::new()
        .route("/api/proposals", post(create_proposal).get(list_proposals))
        .route("/api/proposals/{id}", get(get_proposal))
        .route("/api/proposals/{id}/votes", post(cast_vote).get(list_votes))
        .with_state(state)
}

impl From<ProposalError> for ApiError {
    fn from(err: ProposalError) -> Self {
        ApiError::bad_request("invalid_proposal", err.to_string())
    }
}

/// The ledger account a client caller votes and proposes as.
pub fn client_voter(account_id: &str) -> String {
    format!("client:{account_id}")
}

/// The ledger account a node votes and proposes as.
pub fn node_voter(node_id: Uuid) -> String {
    format!("node:{node_id}")
}

fn unknown(id: Uuid) -> ApiError {
    ApiError::not_found(format!("there is no proposal {id}"))
}

/// Checks and opens the proposal in `body` for `proposer` (a ledger
/// account key, or the admin).
pub(super) async fn open(
    state: &GovernanceState,
    proposer: &str,
    body: &[u8],
) -> Result<(StatusCode, Json<ProposalView>), ApiError> {
    let proposal: NewProposal = parse_json(body)?;
    let now = unix_millis();
    let live = |parameter: Parameter, default: i64| {
        let parameters = state.parameters.clone();
        async move { Ok::<_, ApiError>(parameters.get(&parameter, now).await?.unwrap_or(default)) }
    };
    let period = live(
        Parameter::VotingPeriodSeconds,
        DEFAULT_VOTING_PERIOD_SECONDS,
    )
    .await?;
    let quorum = live(Parameter::QuorumBasisPoints, DEFAULT_QUORUM_BASIS_POINTS).await?;
    let threshold = live(
        Parameter::ThresholdBasisPoints,
        DEFAULT_THRESHOLD_BASIS_POINTS,
    )
    .await?;
    let valid = rules::check(proposal, period, now)?;
    if let Action::Mint { account, .. } = &valid.action {
        let exists = match account {
            LedgerAccount::Client(id) => state.store.account(id).await?.is_some(),
            LedgerAccount::Node(id) => state.store.public_key(*id).await?.is_some(),
            _ => true,
        };
        if !exists {
            return Err(ApiError::bad_request(
                "invalid_proposal",
                format!(
                    "mint.account: there is no {account} to mint into (fix: name an existing \
                     client account or registered node)"
                ),
            ));
        }
    }
    let opened = state
        .store
        .open_proposal(proposer, &valid, quorum, threshold, now)
        .await?;
    let id = match opened {
        Ok(id) => id,
        Err(NotOpened::TooMany) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "too_many_open_proposals",
                format!(
                    "{proposer} has {MAX_OPEN_PER_PROPOSER} open proposals, the most one \
                     proposer may have (fix: wait until one is tallied)"
                ),
            ))
        }
        Err(NotOpened::NoPower) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "no_voting_power",
                format!(
                    "{proposer} has no voting power (a balance of 0 µGAI): only accounts and \
                     nodes holding GAI, and the admin, may open proposals"
                ),
            ))
        }
    };
    tracing::info!(proposal_id = %id, %proposer, kind = valid.action.kind().as_str(), "proposal opened");
    let view = state.store.proposal(id).await?.ok_or_else(|| unknown(id))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Casts `voter`'s vote on proposal `id`.
pub(super) async fn vote(
    state: &GovernanceState,
    id: Uuid,
    voter: &str,
    choice: super::api::Choice,
    via: VoteVia,
) -> Result<Json<VoteView>, ApiError> {
    match state
        .store
        .cast_vote(id, voter, choice, via, unix_millis())
        .await?
    {
        Cast::Counted(view) => {
            tracing::info!(proposal_id = %id, %voter, choice = choice.as_str(), replaced = view.replaced, "vote cast");
            Ok(Json(view))
        }
        Cast::Unknown => Err(unknown(id)),
        Cast::Closed { deadline_ms } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "voting_closed",
            format!(
                "voting on proposal {id} ended at {}; votes count only before the deadline",
                rfc3339_millis(deadline_ms)
            ),
        )),
        Cast::NoPower => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_voting_power",
            format!(
                "{voter} had no voting power at open: proposal {id} counts only the balances \
                 held when it opened"
            ),
        )),
    }
}

/// Open a proposal (the admin, or an account holding GAI): a parameter
/// change, a mint or a signal. Quorum and threshold are the live
/// parameters, frozen now; so is every account's voting power.
#[utoipa::path(
    post,
    path = "/api/proposals",
    request_body = NewProposal,
    security(("api_key" = []), ("admin_token" = [])),
    responses(
        (status = 201, description = "opened", body = ProposalView),
        (status = 400, description = "malformed or invalid proposal (the message names the field)", body = ErrorBody),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
        (status = 403, description = "the account has no voting power", body = ErrorBody),
        (status = 409, description = "the proposer has 5 open proposals", body = ErrorBody),
    )
)]
pub async fn create_proposal(
    State(state): State<GovernanceState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ProposalView>), ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let proposer = match &caller {
        Caller::Admin => ADMIN_PROPOSER.to_string(),
        Caller::Account(id) => client_voter(id),
    };
    open(&state, &proposer, &body?).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProposalFilter {
    /// Only proposals in this state (open, passed, rejected, no_quorum).
    state: Option<String>,
}

/// Every proposal, newest first, a page at a time, with its tally (public).
#[utoipa::path(
    get,
    path = "/api/proposals",
    params(PageQuery, ProposalFilter),
    responses(
        (status = 200, description = "one page of proposals, newest first", body = ProposalList),
        (status = 400, description = "unknown state, limit out of range or a foreign continue token", body = ErrorBody),
    )
)]
pub async fn list_proposals(
    State(state): State<GovernanceState>,
    query: Result<Query<PageQuery>, QueryRejection>,
    filter: Result<Query<ProposalFilter>, QueryRejection>,
) -> Result<Json<ProposalList>, ApiError> {
    let Query(query) = query?;
    let Query(filter) = filter?;
    let page = query.page(ListKind::Proposals)?;
    let wanted = filter
        .state
        .as_deref()
        .map(|text| {
            ProposalState::parse(text).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    format!(
                        "state={text} is not a proposal state (open, passed, rejected, no_quorum)"
                    ),
                )
            })
        })
        .transpose()?;
    let before = page.after_as("proposal", ProposalCursor::parse)?;
    let mut rows = state
        .store
        .proposals_page(wanted, before.as_ref(), page.limit)
        .await?;
    let continue_token = page::finish(&mut rows, &page, ListKind::Proposals, |(row, _)| {
        ProposalRow::cursor_key(row)
    });
    Ok(Json(ProposalList {
        proposals: rows.into_iter().map(|(_, view)| view).collect(),
        continue_token,
    }))
}

/// One proposal with its tally so far (final once tallied) and its result (public).
#[utoipa::path(
    get,
    path = "/api/proposals/{id}",
    params(("id" = Uuid, Path, description = "the proposal's id")),
    responses(
        (status = 200, description = "the proposal", body = ProposalView),
        (status = 404, description = "no such proposal", body = ErrorBody),
    )
)]
pub async fn get_proposal(
    State(state): State<GovernanceState>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<ProposalView>, ApiError> {
    let Path(id) = id?;
    let view = state.store.proposal(id).await?.ok_or_else(|| unknown(id))?;
    Ok(Json(view))
}

/// Vote with an account's API key. A second vote replaces the first
/// until the deadline; the power is the account's balance when the
/// proposal opened.
#[utoipa::path(
    post,
    path = "/api/proposals/{id}/votes",
    params(("id" = Uuid, Path, description = "the proposal's id")),
    request_body = CastVote,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "counted (replacing this account's earlier vote, if any)", body = VoteView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
        (status = 403, description = "no voting power at open (or the admin token, which has none)", body = ErrorBody),
        (status = 404, description = "no such proposal", body = ErrorBody),
        (status = 409, description = "the deadline passed", body = ErrorBody),
    )
)]
pub async fn cast_vote(
    State(state): State<GovernanceState>,
    client: ClientAddr,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<VoteView>, ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let Path(id) = id?;
    let request: CastVote = parse_json(&body?)?;
    let Caller::Account(account) = caller else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_voting_power",
            "the admin token has no voting power (fix: vote with an account's API key, or as a \
             node with a signed POST /api/nodes/{id}/votes)",
        ));
    };
    vote(
        &state,
        id,
        &client_voter(&account),
        request.choice,
        VoteVia::ApiKey,
    )
    .await
}

/// A proposal's votes by voter, a page at a time (public).
#[utoipa::path(
    get,
    path = "/api/proposals/{id}/votes",
    params(("id" = Uuid, Path, description = "the proposal's id"), PageQuery),
    responses(
        (status = 200, description = "one page of votes, by voter", body = VoteList),
        (status = 400, description = "limit out of range or a foreign continue token", body = ErrorBody),
        (status = 404, description = "no such proposal", body = ErrorBody),
    )
)]
pub async fn list_votes(
    State(state): State<GovernanceState>,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<VoteList>, ApiError> {
    let Path(id) = id?;
    let Query(query) = query?;
    let page = query.page(ListKind::Votes)?;
    if state.store.proposal(id).await?.is_none() {
        return Err(unknown(id));
    }
    let mut votes = state
        .store
        .votes_page(id, page.after.as_deref(), page.limit)
        .await?;
    let continue_token = page::finish(&mut votes, &page, ListKind::Votes, |v| v.voter.clone());
    Ok(Json(VoteList {
        votes,
        continue_token,
    }))
}
