//! The node side of the jobs API, signed like heartbeats: the long-poll
//! claim, and renew, logs and complete under a lease. The lease id fences
//! them: a lease that is not the job's current live one gets 409 (the node
//! stops that job), another node's lease 403.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tokio::time::Instant;
use uuid::Uuid;

use super::api::{
    AppendLogsRequest, AppendLogsResponse, ClaimRequest, CompleteRequest, CompleteResponse, Lease,
    Outcome, RenewResponse,
};
use super::lease_store::{Completed, Ending, Granted, LeaseOwner, Renewed, Stale};
use super::log_store::Appended;
use super::placement::fit::Claimant;
use super::placement::PlacementMode;
use super::routes::{JobsState, POLL};
use crate::clock::{rfc3339_millis, unix_millis};
use crate::coordinator::energy::zone::GridZone;
use crate::coordinator::http::error::{parse_json, ApiError, ErrorBody};
use crate::coordinator::http::limits::{
    MAX_CLAIM_WAIT, MAX_LOG_CHUNKS_PER_REQUEST, MAX_RESULT_BYTES,
};
use crate::coordinator::nodes::api::Location;

/// How long a claim waits when the node does not say.
pub const DEFAULT_CLAIM_WAIT: Duration = Duration::from_secs(25);
/// The longest renew interval a lease asks for (cancel reaches a node
/// within it).
pub const MAX_RENEW_EVERY: Duration = Duration::from_secs(3);

/// Renew, logs and complete, bounded by the server's request deadline.
pub fn router(state: JobsState) -> Router {
    Router::new()
        .route("/api/nodes/{id}/leases/{lease_id}/renew", post(renew))
        .route("/api/nodes/{id}/leases/{lease_id}/logs", post(append_logs))
        .route("/api/nodes/{id}/leases/{lease_id}/complete", post(complete))
        .with_state(state)
}

/// The claim, which bounds its own wait ([`MAX_CLAIM_WAIT`]).
pub fn unbounded_router(state: JobsState) -> Router {
    Router::new()
        .route("/api/nodes/{id}/claim", post(claim))
        .with_state(state)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// How often a node holding a lease of `lease` renews it.
pub fn renew_every(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_secs(1), MAX_RENEW_EVERY)
}

/// The lease `lease_id` if `node` holds it: 404 unknown, 403 another node's.
async fn held_lease(state: &JobsState, node: Uuid, lease_id: Uuid) -> Result<LeaseOwner, ApiError> {
    let lease = state.store.lease_owner(lease_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_lease",
            format!("no lease {lease_id} was ever granted here; stop the job"),
        )
    })?;
    if lease.node_id != node {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_lease",
            format!(
                "lease {lease_id} was granted to another node, not to node {node}; a node may \
                 only act on its own leases"
            ),
        ));
    }
    Ok(lease)
}

fn stale(stale: Stale, lease_id: Uuid, job_id: Uuid) -> ApiError {
    match stale {
        Stale::Superseded => ApiError::new(
            StatusCode::CONFLICT,
            "lease_superseded",
            format!(
                "lease {lease_id} is no longer job {job_id}'s lease (it expired and the job was \
                 requeued or ended); stop the job"
            ),
        ),
        Stale::Expired => ApiError::new(
            StatusCode::CONFLICT,
            "lease_expired",
            format!("lease {lease_id} of job {job_id} expired before this request; stop the job"),
        ),
    }
}

/// The result as stored: its JSON text, or past [`MAX_RESULT_BYTES`] a
/// marker object with its size and first bytes.
pub fn capped_result(result: &serde_json::Value) -> String {
    let text = result.to_string();
    if text.len() <= MAX_RESULT_BYTES {
        return text;
    }
    let mut cut = MAX_RESULT_BYTES / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    serde_json::json!({
        "truncated": true,
        "bytes": text.len(),
        "message": format!("the result was {} bytes of JSON; the coordinator keeps at most {MAX_RESULT_BYTES}", text.len()),
        "head": &text[..cut],
    })
    .to_string()
}

/// Wait for a job (signed by the node): the claim parks until a placement
/// round gives it a job it fits (market, GPU memory, type, labels,
/// residency), preferring nodes on solar surplus for green jobs, under a
/// lease; 204 when none came within `wait_seconds`. A node of a market
/// with a qualification it has not passed gets only its qualification job
/// (an inference job).
#[utoipa::path(
    post,
    path = "/api/nodes/{id}/claim",
    params(("id" = Uuid, Path, description = "the node's id")),
    request_body = ClaimRequest,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "a job under a new lease", body = Lease),
        (status = 204, description = "no job within the wait (or no free slot)"),
        (status = 400, description = "malformed body, no job types", body = ErrorBody),
        (status = 401, description = "unsigned, malformed, stale, forged, replayed or unknown node", body = ErrorBody),
        (status = 403, description = "signed by another node", body = ErrorBody),
    )
)]
pub async fn claim(
    State(state): State<JobsState>,
    id: Result<Path<Uuid>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(target) = id?;
    let body = body?;
    let node_id = state
        .auth
        .node_request_for(target, &method, &uri, &headers, &body)
        .await?;
    let request: ClaimRequest = parse_json(&body)?;
    if request.job_types.is_empty() {
        return Err(ApiError::bad_request(
            "no_job_types",
            "job_types is empty; name the types this node runs (container, inference)",
        ));
    }
    if request.slots == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let node = state
        .store
        .node(node_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("node {node_id} is not registered")))?;
    let vram_bytes = node
        .gpu_info
        .iter()
        .map(|gpu| gpu.memory_total_bytes)
        .max()
        .unwrap_or(0);
    let claimant = Claimant {
        node_id,
        market: node.market,
        vram_mib: vram_bytes / (1024 * 1024),
        job_types: request.job_types,
        labels: request.labels,
        location: node.location,
        power: request.power,
    };
    let wait = request
        .wait_seconds
        .map_or(DEFAULT_CLAIM_WAIT, |s| Duration::from_secs(u64::from(s)))
        .min(MAX_CLAIM_WAIT);
    let deadline = Instant::now() + wait;
    let lease_ms = millis(state.lease_duration);
    let granted = match state.placement {
        PlacementMode::FirstCome => first_come(&state, &claimant, lease_ms, deadline).await?,
        PlacementMode::Scored => {
            match state
                .store
                .qualification_claim(&claimant, lease_ms, unix_millis())
                .await?
            {
                Some(gated) => gated,
                None => {
                    let intensity = grid_intensity(&state, &claimant.location).await;
                    let ticket = state.placer.park(claimant, request.slots, intensity).await;
                    state.placer.wait(ticket, deadline, &state.stopping).await
                }
            }
        }
    };
    let Some(granted) = granted else {
        state.metrics.claims.with_label_values(&["empty"]).inc();
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    state.metrics.claims.with_label_values(&["leased"]).inc();
    state.count(super::api::JobState::Running);
    tracing::info!(job_id = %granted.job.job_id, %node_id, attempt = granted.attempt, "job leased");
    Ok(Json(lease(&state, granted)).into_response())
}

/// The carbon intensity (gCO₂eq/kWh) of the grid at `location`: the
/// configured API's figure (cached) or the built-in yearly average.
async fn grid_intensity(state: &JobsState, location: &Location) -> f64 {
    let zone = GridZone::from_key(
        location.country.as_deref().unwrap_or_default(),
        location.region.as_deref().unwrap_or_default(),
    );
    state
        .energy
        .sources
        .intensity(&zone, unix_millis())
        .await
        .value
}

/// First come: the claim takes the oldest job it fits, looking again when a
/// job is queued here or every [`POLL`] until `deadline`.
async fn first_come(
    state: &JobsState,
    claimant: &Claimant,
    lease_ms: i64,
    deadline: Instant,
) -> Result<Option<Granted>, ApiError> {
    loop {
        // Made before looking, so a job queued meanwhile wakes this claim.
        let woken = state.wake.notified();
        if let Some(granted) = state
            .store
            .claim_qualified(claimant, lease_ms, unix_millis())
            .await?
        {
            return Ok(Some(granted));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let nap = (deadline - now).min(POLL);
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(nap) => {}
            () = state.stopping.cancelled() => return Ok(None),
        }
    }
}

fn lease(state: &JobsState, granted: Granted) -> Lease {
    Lease {
        lease_id: granted.lease_id,
        job_id: granted.job.job_id,
        attempt: granted.attempt,
        expires_at: rfc3339_millis(granted.expires_at_ms),
        lease_seconds: state.lease_duration.as_secs(),
        renew_every_seconds: renew_every(state.lease_duration).as_secs(),
        kind: granted.job.kind,
        timeout_seconds: u64::try_from(granted.job.timeout_ms / 1000).unwrap_or_default(),
        spec: granted.job.spec,
    }
}

/// Extend a lease (signed by its node); the answer says `cancel` when the
/// client cancelled the job.
#[utoipa::path(
    post,
    path = "/api/nodes/{id}/leases/{lease_id}/renew",
    params(("id" = Uuid, Path, description = "the node's id"), ("lease_id" = Uuid, Path, description = "the lease")),
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "extended, or told to stop (cancel)", body = RenewResponse),
        (status = 401, description = "unsigned, malformed, stale, forged, replayed or unknown node", body = ErrorBody),
        (status = 403, description = "signed by another node, or another node's lease", body = ErrorBody),
        (status = 404, description = "no such lease", body = ErrorBody),
        (status = 409, description = "the lease expired or was superseded: stop the job", body = ErrorBody),
    )
)]
pub async fn renew(
    State(state): State<JobsState>,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RenewResponse>, ApiError> {
    let Path((target, lease_id)) = ids?;
    let body = body?;
    let node = state
        .auth
        .node_request_for(target, &method, &uri, &headers, &body)
        .await?;
    let lease = held_lease(&state, node, lease_id).await?;
    let now = unix_millis();
    match state
        .store
        .renew(lease, lease_id, millis(state.lease_duration), now)
        .await?
    {
        Renewed::Extended { expires_at_ms } => Ok(Json(RenewResponse {
            expires_at: rfc3339_millis(expires_at_ms),
            cancel: false,
        })),
        Renewed::Stop => Ok(Json(RenewResponse {
            expires_at: rfc3339_millis(now),
            cancel: true,
        })),
        Renewed::Stale(why) => Err(stale(why, lease_id, lease.job_id)),
    }
}

/// Store log chunks of a leased job (signed by its node); a chunk whose
/// `seq` was stored before is skipped, so a resend after a lost answer is
/// safe.
#[utoipa::path(
    post,
    path = "/api/nodes/{id}/leases/{lease_id}/logs",
    params(("id" = Uuid, Path, description = "the node's id"), ("lease_id" = Uuid, Path, description = "the lease")),
    request_body = AppendLogsRequest,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "stored (up to the job's log cap)", body = AppendLogsResponse),
        (status = 400, description = "malformed body, too many chunks", body = ErrorBody),
        (status = 401, description = "unsigned, malformed, stale, forged, replayed or unknown node", body = ErrorBody),
        (status = 403, description = "signed by another node, or another node's lease", body = ErrorBody),
        (status = 404, description = "no such lease", body = ErrorBody),
        (status = 409, description = "the lease expired or was superseded: stop the job", body = ErrorBody),
        (status = 413, description = "body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn append_logs(
    State(state): State<JobsState>,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AppendLogsResponse>, ApiError> {
    let Path((target, lease_id)) = ids?;
    let body = body?;
    let node = state
        .auth
        .node_request_for(target, &method, &uri, &headers, &body)
        .await?;
    let request: AppendLogsRequest = parse_json(&body)?;
    if request.chunks.len() > MAX_LOG_CHUNKS_PER_REQUEST {
        return Err(ApiError::bad_request(
            "too_many_chunks",
            format!(
                "{} chunks in one request; send at most {MAX_LOG_CHUNKS_PER_REQUEST}",
                request.chunks.len()
            ),
        ));
    }
    let lease = held_lease(&state, node, lease_id).await?;
    match state
        .store
        .append_logs(lease, lease_id, &request.chunks, unix_millis())
        .await?
    {
        Appended::Stored {
            accepted,
            truncated,
            cancel,
        } => Ok(Json(AppendLogsResponse {
            accepted,
            truncated,
            cancel,
        })),
        Appended::Stale(why) => Err(stale(why, lease_id, lease.job_id)),
    }
}

/// End a leased job with its outcome and result (signed by its node).
/// Idempotent: a repeat answers the same final state.
#[utoipa::path(
    post,
    path = "/api/nodes/{id}/leases/{lease_id}/complete",
    params(("id" = Uuid, Path, description = "the node's id"), ("lease_id" = Uuid, Path, description = "the lease")),
    request_body = CompleteRequest,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "the job's final state (CANCELLED when the client cancelled first)", body = CompleteResponse),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "unsigned, malformed, stale, forged, replayed or unknown node", body = ErrorBody),
        (status = 403, description = "signed by another node, or another node's lease", body = ErrorBody),
        (status = 404, description = "no such lease", body = ErrorBody),
        (status = 409, description = "the lease expired or was superseded; the result is not taken", body = ErrorBody),
        (status = 413, description = "body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn complete(
    State(state): State<JobsState>,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CompleteResponse>, ApiError> {
    let Path((target, lease_id)) = ids?;
    let body = body?;
    let node = state
        .auth
        .node_request_for(target, &method, &uri, &headers, &body)
        .await?;
    let request: CompleteRequest = parse_json(&body)?;
    let lease = held_lease(&state, node, lease_id).await?;
    let reason = request.reason.clone().unwrap_or_else(|| {
        match request.outcome {
            Outcome::Succeeded => "completed",
            Outcome::Failed => "failed on the node",
            Outcome::TimedOut => "timed out on the node",
            Outcome::NotStarted => "could not start on the node",
        }
        .to_string()
    });
    let result = capped_result(&request.result);
    let now = unix_millis();
    let fee = state.fee_basis_points(now).await?;
    let ending = Ending {
        outcome: request.outcome,
        reason: &reason,
        result: &result,
    };
    match state
        .store
        .complete(lease, lease_id, ending, fee, now)
        .await?
    {
        Completed::Final(job_state) => {
            state.count(job_state);
            tracing::info!(job_id = %lease.job_id, %node, state = job_state.as_str(), "job completed");
            let judged = state.store.judge_qualification(
                lease.job_id,
                lease_id,
                job_state,
                &request.result,
                unix_millis(),
            );
            if let Some(verdict) = judged.await? {
                verdict.log(node);
            }
            // Energy, CO₂ and the green bonus (issue 13); never fails the completion.
            state
                .energy
                .record(lease.job_id, node, &request.result, unix_millis())
                .await;
            Ok(Json(CompleteResponse { state: job_state }))
        }
        Completed::Already(job_state) => Ok(Json(CompleteResponse { state: job_state })),
        Completed::Stale(why) => Err(stale(why, lease_id, lease.job_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_result_becomes_a_marker_with_its_head() {
        let small = serde_json::json!({"exit_code": 0});
        assert_eq!(capped_result(&small), small.to_string());
        let big = serde_json::json!({"out": "x".repeat(MAX_RESULT_BYTES)});
        let stored: serde_json::Value = serde_json::from_str(&capped_result(&big)).expect("json");
        assert_eq!(stored["truncated"], true);
        assert!(stored["head"]
            .as_str()
            .expect("head")
            .starts_with("{\"out\":\"xxx"));
        assert!(capped_result(&big).len() < MAX_RESULT_BYTES);
    }

    #[test]
    fn renews_come_often_enough_for_a_prompt_cancel() {
        assert_eq!(renew_every(Duration::from_secs(30)), Duration::from_secs(3));
        assert_eq!(renew_every(Duration::from_secs(2)), Duration::from_secs(1));
    }
}
