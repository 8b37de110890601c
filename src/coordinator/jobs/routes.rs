//! The client side of the jobs API (API key or admin token): submit, list,
//! get and cancel (logs are in `log_routes`). A client sees only its own jobs;
//! another's answer 404 like a job that does not exist.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::api::{JobList, JobState, JobSubmission, JobView};
use super::placement::{PlacementMode, Placer};
use super::store::{Inserted, JobCursor, JobRow};
use super::submit;
use crate::clock::{rfc3339_millis, unix_millis};
use crate::coordinator::energy::EnergyRecorder;
use crate::coordinator::http::api_key::{Caller, ClientAuth};
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::idempotency::idempotency_key;
use crate::coordinator::http::node_auth::Authenticator;
use crate::coordinator::http::page::{self, ListKind, PageQuery};
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::ledger::api::JobCost;
use crate::coordinator::ledger::settle::{Charge, JobCostRow};
use crate::coordinator::ledger::LedgerAccount;
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::parameters::store::{DEFAULT_FEE_BASIS_POINTS, DEFAULT_PRICE_PER_SECOND};
use crate::coordinator::parameters::{Parameter, Parameters};
use crate::coordinator::store::Store;

/// How often a followed log, and a waiting claim on another replica, look
/// for news.
pub const POLL: Duration = Duration::from_millis(250);

/// What the jobs handlers share; cheap to clone.
#[derive(Debug, Clone)]
pub struct JobsState {
    pub store: Store,
    pub auth: Authenticator,
    pub clients: ClientAuth,
    pub metrics: CoordinatorMetrics,
    pub lease_duration: Duration,
    /// Prices and the network fee, read live.
    pub parameters: Parameters,
    /// Records each completed job's energy and CO₂ (issue 13).
    pub energy: EnergyRecorder,
    pub placement: PlacementMode,
    /// This replica's parked claims (scored placement).
    pub placer: Arc<Placer>,
    /// Woken when a job is queued, so waiting claims on this replica look
    /// at once (claims on other replicas find it within [`POLL`]).
    pub wake: Arc<Notify>,
    /// Cancelled when the server stops: waiting claims answer 204 and
    /// followed logs end, so a graceful shutdown waits for neither.
    pub stopping: CancellationToken,
}

/// How the jobs handlers lease and place.
#[derive(Debug, Clone)]
pub struct JobsSettings {
    pub lease_duration: Duration,
    pub parameters: Parameters,
    pub placement: PlacementMode,
}

impl JobsState {
    pub fn new(
        store: Store,
        auth: Authenticator,
        clients: ClientAuth,
        metrics: CoordinatorMetrics,
        settings: JobsSettings,
        energy: EnergyRecorder,
        stopping: CancellationToken,
    ) -> Self {
        let JobsSettings {
            lease_duration,
            parameters,
            placement,
        } = settings;
        JobsState {
            store,
            auth,
            clients,
            metrics,
            lease_duration,
            parameters,
            energy,
            placement,
            placer: Arc::new(Placer::default()),
            wake: Arc::new(Notify::new()),
            stopping,
        }
    }

    /// The network fee in effect at `now_ms`.
    pub async fn fee_basis_points(&self, now_ms: i64) -> Result<i64, ApiError> {
        let fee = self
            .parameters
            .get(&Parameter::NetworkFeeBasisPoints, now_ms)
            .await?;
        Ok(fee.unwrap_or(DEFAULT_FEE_BASIS_POINTS))
    }

    /// Who pays for a job `caller` submits to `market`, and at what price:
    /// clients pay; the admin's jobs are free.
    async fn charge(
        &self,
        caller: &Caller,
        market: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Charge>, ApiError> {
        let Caller::Account(id) = caller else {
            return Ok(None);
        };
        let parameter = Parameter::PricePerSecond(market.map(str::to_string));
        let price = self.parameters.get(&parameter, now_ms).await?;
        Ok(Some(Charge {
            payer: LedgerAccount::Client(id.clone()),
            price_per_second: price.unwrap_or(DEFAULT_PRICE_PER_SECOND),
        }))
    }

    /// Counts a transition this replica made.
    pub fn count(&self, state: JobState) {
        self.metrics
            .job_transitions
            .with_label_values(&[state.as_str()])
            .inc();
    }
}

/// The client routes bounded by the server's request deadline.
pub fn router(state: JobsState) -> Router {
    Router::new()
        .route("/api/jobs", post(submit_job).get(list_jobs))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .with_state(state)
}

/// A job as its owner sees it.
pub fn view(
    job: &JobRow,
    reason: String,
    history: Vec<super::api::JobEvent>,
    cost: Option<JobCost>,
) -> JobView {
    JobView {
        job_id: job.job_id,
        state: job.state,
        reason,
        kind: job.kind,
        placement: job.placement.clone(),
        timeout_seconds: u64::try_from(job.timeout_ms / 1000).unwrap_or_default(),
        expires_at: job.expires_at_ms.map(rfc3339_millis),
        max_attempts: job.max_attempts,
        attempt: job.attempt,
        node_id: job.lease_node,
        created_at: rfc3339_millis(job.created_at_ms),
        updated_at: rfc3339_millis(job.updated_at_ms),
        finished_at: job.finished_at_ms.map(rfc3339_millis),
        result: job.result.clone(),
        history,
        cost,
        energy: None,
        spec: job.spec.clone(),
    }
}

/// A bill as its client sees it.
fn cost_view(row: JobCostRow) -> JobCost {
    JobCost {
        payer: row.payer,
        price_per_second_ugai: row.price_per_second,
        held_ugai: row.held,
        state: row.state,
        billed_seconds: row.billed_seconds,
        paid_to_node_ugai: row.paid,
        paid_node_id: row.node_id,
        fee_ugai: row.fee,
        fee_basis_points: row.fee_basis_points,
        refunded_ugai: row.refunded,
        settled_at: row.settled_at_ms.map(rfc3339_millis),
    }
}

/// Why a job is where it is; a queued job for a market without an online
/// node says so.
async fn reason(store: &Store, job: &JobRow) -> Result<String, ApiError> {
    let stored = job.reason.clone().unwrap_or_default();
    if job.state != JobState::Queued {
        return Ok(stored);
    }
    if let Some(why) = store.placement_reason(job, unix_millis()).await? {
        return Ok(why);
    }
    if let Some(market) = &job.placement.market {
        let online = store.market(market).await?.map_or(0, |m| m.online);
        if online == 0 {
            return Ok(format!(
                "no online node in market {market}; waiting for one ({stored})"
            ));
        }
    }
    Ok(format!("waiting for a node to claim it ({stored})"))
}

/// The job `id` if `caller` may see it; 404 otherwise.
pub(super) async fn visible_job(
    state: &JobsState,
    caller: &Caller,
    id: Uuid,
) -> Result<JobRow, ApiError> {
    match state.store.job(id).await? {
        Some(job) if caller.sees(&job.owner) => Ok(job),
        _ => Err(ApiError::not_found(format!(
            "there is no job {id} (or it belongs to another account)"
        ))),
    }
}

/// A job with its history, bill and energy (one job's API answer; the
/// dashboard's job page).
pub async fn full_view(store: &Store, job: &JobRow) -> Result<JobView, ApiError> {
    let reason = reason(store, job).await?;
    let history = store.job_history(job.job_id).await?;
    let cost = store.job_cost(job.job_id).await?.map(cost_view);
    let mut view = view(job, reason, history, cost);
    view.energy = store.job_energy(job.job_id).await?;
    Ok(view)
}

/// Submit a job: a container job document or an inference request, with
/// its placement. The same `Idempotency-Key` from the same account answers
/// the job made the first time (200 instead of 201).
#[utoipa::path(
    post,
    path = "/api/jobs",
    request_body = JobSubmission,
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key from the same account returns the same job")),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "queued", body = JobView),
        (status = 200, description = "submitted before with this Idempotency-Key", body = JobView),
        (status = 400, description = "malformed body or job (the message names the field), unknown market", body = ErrorBody),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
        (status = 402, description = "the account's balance does not cover price x timeout (the message gives both)", body = ErrorBody),
        (status = 413, description = "body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn submit_job(
    State(state): State<JobsState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let key = idempotency_key(&headers)?;
    let submission: JobSubmission = parse_json(&body?)?;
    let job = submit::check(submission)?;
    if let Some(market) = &job.placement.market {
        if state.store.market(market).await?.is_none() {
            return Err(ApiError::bad_request(
                "unknown_market",
                format!(
                    "no node has ever registered in market {market:?} (fix: pick one of GET \
                     /api/markets, or place by minVramMiB)"
                ),
            ));
        }
    }
    let now = unix_millis();
    let charge = state
        .charge(&caller, job.placement.market.as_deref(), now)
        .await?;
    let inserted = state
        .store
        .insert_job(caller.owner(), key.as_deref(), &job, charge.as_ref(), now)
        .await?;
    let (id, created) = match inserted {
        Inserted::Created(id) => (id, true),
        Inserted::Existing(id) => (id, false),
        Inserted::Unfunded { balance, needed } => {
            state.metrics.jobs_unfunded.inc();
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_funds",
                format!(
                    "the job holds price x timeout = {needed} µGAI until it ends and account                      {} holds {balance} µGAI (fix: a shorter timeout, or more GAI: GET                      /api/ledger/accounts/client:{} shows the balance)",
                    caller.owner(),
                    caller.owner()
                ),
            ));
        }
    };
    if created {
        state.metrics.jobs_submitted.inc();
        state.count(JobState::Queued);
        state.wake.notify_waiters();
        tracing::info!(job_id = %id, owner = caller.owner(), kind = job.kind.as_str(), "job queued");
    }
    let row = visible_job(&state, &caller, id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(full_view(&state.store, &row).await?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only jobs in this state (QUEUED, RUNNING, SUCCEEDED, …).
    state: Option<String>,
}

/// The caller's jobs (all jobs for the admin), newest first, a page at a
/// time; without their history.
#[utoipa::path(
    get,
    path = "/api/jobs",
    params(PageQuery, JobFilter),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "one page of jobs, newest first", body = JobList),
        (status = 400, description = "unknown state, limit out of range or a foreign continue token", body = ErrorBody),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<JobsState>,
    client: ClientAddr,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
    filter: Result<Query<JobFilter>, QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let Query(query) = query?;
    let Query(filter) = filter?;
    let page = query.page(ListKind::Jobs)?;
    let job_state = filter
        .state
        .as_deref()
        .map(|text| {
            JobState::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    format!("state={text} is not a job state (QUEUED, RUNNING, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, EXPIRED)"),
                )
            })
        })
        .transpose()?;
    let before = page.after_as("job", JobCursor::parse)?;
    let owner = match &caller {
        Caller::Admin => None,
        Caller::Account(id) => Some(id.as_str()),
    };
    let mut rows = state
        .store
        .jobs_page(owner, job_state, before.as_ref(), page.limit)
        .await?;
    let continue_token = page::finish(&mut rows, &page, ListKind::Jobs, JobCursor::key);
    let jobs = rows
        .iter()
        .map(|job| {
            view(
                job,
                job.reason.clone().unwrap_or_default(),
                Vec::new(),
                None,
            )
        })
        .collect();
    Ok(Json(JobList {
        jobs,
        continue_token,
    }))
}

/// One job with its history and result.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    params(("id" = Uuid, Path, description = "the job's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "the job", body = JobView),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
        (status = 404, description = "no such job for this account", body = ErrorBody),
    )
)]
pub async fn get_job(
    State(state): State<JobsState>,
    client: ClientAddr,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let Path(id) = id?;
    let job = visible_job(&state, &caller, id).await?;
    Ok(Json(full_view(&state.store, &job).await?))
}

/// Cancel a job that has not finished. A running job's node learns it at
/// its next renew (within a few seconds) and stops it.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/cancel",
    params(("id" = Uuid, Path, description = "the job's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "cancelled (now or before)", body = JobView),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
        (status = 404, description = "no such job for this account", body = ErrorBody),
        (status = 409, description = "the job already ended otherwise", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    State(state): State<JobsState>,
    client: ClientAddr,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let Path(id) = id?;
    visible_job(&state, &caller, id).await?;
    let now = unix_millis();
    let fee = state.fee_basis_points(now).await?;
    match state.store.cancel_job(id, fee, now).await? {
        Some((JobState::Cancelled, now)) => {
            if now {
                state.count(JobState::Cancelled);
                tracing::info!(job_id = %id, "job cancelled by its client");
            }
            let job = visible_job(&state, &caller, id).await?;
            Ok(Json(full_view(&state.store, &job).await?))
        }
        Some((ended, _)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_finished",
            format!(
                "job {id} already ended as {}; there is nothing to cancel",
                ended.as_str()
            ),
        )),
        None => Err(ApiError::not_found(format!("there is no job {id}"))),
    }
}
