//! A job's log for its client: the stored chunks as JSON, or followed as
//! server-sent events until the job ends. Not under the request deadline:
//! a followed log lasts as long as its job.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use axum::Router;
use futures::Stream;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::api::{JobLogs, LogChunk};
use super::routes::{visible_job, JobsState, POLL};
use crate::coordinator::http::error::{ApiError, ErrorBody};
use crate::coordinator::http::limits::MAX_JOB_LOG_BYTES;
use crate::coordinator::http::rate_limit::ClientAddr;
use crate::coordinator::store::Store;

/// The log route, which may follow a job for as long as it runs.
pub fn router(state: JobsState) -> Router {
    Router::new()
        .route("/api/jobs/{id}/logs", get(job_logs))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// `true`: stream the log as server-sent events (`log` events with a
    /// chunk and the id `ATTEMPT.SEQ`, then one `end` event with the job's
    /// final state); a `Last-Event-ID` header continues after that chunk.
    #[serde(default)]
    follow: bool,
}

/// A job's log, attempt by attempt; or followed as server-sent events
/// until the job ends.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/logs",
    params(("id" = Uuid, Path, description = "the job's id"), LogQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "the stored log (JSON), or with follow=true an event stream", body = JobLogs),
        (status = 401, description = "no, a malformed, an unknown or a revoked API key", body = ErrorBody),
        (status = 404, description = "no such job for this account", body = ErrorBody),
    )
)]
pub async fn job_logs(
    State(state): State<JobsState>,
    client: ClientAddr,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = state.clients.check(&headers, client).await?;
    let Path(id) = id?;
    let Query(query) = query?;
    let job = visible_job(&state, &caller, id).await?;
    if query.follow {
        // A reconnecting client names the last chunk it got (SSE's
        // Last-Event-ID, `ATTEMPT.SEQ`); it continues after that one.
        let after = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(event_position);
        let stream = follow(state.store.clone(), id, after, state.stopping.clone());
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let mut chunks: Vec<LogChunk> = Vec::new();
    loop {
        let after = chunks.last().map(|c| (c.attempt, c.seq));
        let batch = state.store.job_logs(id, after, 1000).await?;
        if batch.is_empty() {
            break;
        }
        chunks.extend(batch);
    }
    Ok(Json(JobLogs {
        chunks,
        truncated: job.log_bytes >= MAX_JOB_LOG_BYTES,
    })
    .into_response())
}

/// A followed log: every chunk once, in order, then the final state.
struct Following {
    store: Store,
    stopping: CancellationToken,
    job_id: Uuid,
    after: Option<(u32, u64)>,
    pending: VecDeque<LogChunk>,
    done: bool,
}

/// The event id of a chunk: `ATTEMPT.SEQ`.
pub fn event_id(chunk: &LogChunk) -> String {
    format!("{}.{}", chunk.attempt, chunk.seq)
}

/// The chunk an event id (`ATTEMPT.SEQ`) names.
pub fn event_position(id: &str) -> Option<(u32, u64)> {
    let (attempt, seq) = id.trim().split_once('.')?;
    Some((attempt.parse().ok()?, seq.parse().ok()?))
}

fn follow(
    store: Store,
    job_id: Uuid,
    after: Option<(u32, u64)>,
    stopping: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = Following {
        store,
        stopping,
        job_id,
        after,
        pending: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(chunk) = f.pending.pop_front() {
                f.after = Some((chunk.attempt, chunk.seq));
                let event = Event::default()
                    .event("log")
                    .id(event_id(&chunk))
                    .json_data(&chunk);
                return Some((Ok(event.unwrap_or_default()), f));
            }
            if f.done {
                return None;
            }
            // The state first: chunks stored before it ended are read after.
            let ended = match f.store.job(f.job_id).await {
                Ok(job) => job.filter(|j| j.state.is_final()).map(|j| j.state),
                Err(err) => {
                    f.done = true;
                    tracing::warn!(error = %err, "following a job's log failed");
                    return Some((
                        Ok(Event::default().event("error").data("storage failed")),
                        f,
                    ));
                }
            };
            match f.store.job_logs(f.job_id, f.after, 1000).await {
                Ok(chunks) if !chunks.is_empty() => f.pending.extend(chunks),
                Ok(_) => match ended {
                    Some(state) => {
                        f.done = true;
                        let body = serde_json::json!({"state": state});
                        return Some((Ok(Event::default().event("end").data(body.to_string())), f));
                    }
                    None => {
                        tokio::select! {
                            () = tokio::time::sleep(POLL) => {}
                            // The server stops: end the stream (the client asks again).
                            () = f.stopping.cancelled() => return None,
                        }
                    }
                },
                Err(err) => {
                    f.done = true;
                    tracing::warn!(error = %err, "following a job's log failed");
                    return Some((
                        Ok(Event::default().event("error").data("storage failed")),
                        f,
                    ));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::jobs::api::LogStream;

    #[test]
    fn an_event_id_names_the_chunk_to_continue_after() {
        let chunk = LogChunk {
            seq: 7,
            stream: LogStream::Stdout,
            data: String::new(),
            attempt: 2,
        };
        assert_eq!(event_position(&event_id(&chunk)), Some((2, 7)));
        assert_eq!(event_position("junk"), None);
    }
}
