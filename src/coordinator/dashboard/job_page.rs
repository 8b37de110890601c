//! A job's page (`/jobs/{id}`, the admin's): its state and why, placement,
//! history, result, bill and energy, and its log, which streams in live
//! while the job runs (appended as text; a reconnect continues after the
//! last chunk it got).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::error::{path_id, PageError};
use super::format;
use super::layout::{self, PageInfo, Section};
use super::live::{self, Update};
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::coordinator::http::error::ApiError;
use crate::coordinator::jobs::api::{JobView, LogChunk};
use crate::coordinator::jobs::log_routes::{event_id, event_position};
use crate::coordinator::jobs::routes::full_view;
use crate::coordinator::store::Store;

/// How often a followed job is read again.
const POLL: Duration = Duration::from_millis(500);
/// Log chunks read per query, and queries for the first render (the log
/// itself is capped at `MAX_JOB_LOG_BYTES`).
const LOG_BATCH: u32 = 1000;
const MAX_LOG_BATCHES: usize = 64;

/// The log text of `chunks`, with a line where a new attempt starts.
fn log_text(chunks: &[LogChunk], mut attempt: Option<u32>) -> String {
    let mut text = String::new();
    for chunk in chunks {
        if attempt != Some(chunk.attempt) {
            text.push_str(&format!("── attempt {} ──\n", chunk.attempt));
            attempt = Some(chunk.attempt);
        }
        text.push_str(&chunk.data);
    }
    text
}

/// The job's state part, as the live stream replaces it.
fn state_part(job: &JobView) -> Markup {
    html! {
        dl.facts {
            dt { "State" } dd class={ "state-" (job.state.as_str()) } #job-state-name { (job.state.as_str()) }
            dt { "Why" } dd { (job.reason) }
            dt { "Attempt" } dd { (job.attempt) " of " (job.max_attempts) }
            dt { "Node" } dd.mono { @if let Some(node) = job.node_id { a href={ "/nodes/" (node) } { (node) } } @else { "–" } }
            dt { "Created" } dd { (format::utc_text(&job.created_at)) }
            dt { "Updated" } dd { (format::utc_text(&job.updated_at)) }
            dt { "Finished" } dd { (job.finished_at.as_deref().map_or_else(|| "–".to_string(), format::utc_text)) }
        }
        h2 { "History" }
        table { thead { tr { th { "At" } th { "State" } th.num { "Attempt" } th { "Node" } th { "Why" } } }
            tbody { @for event in &job.history {
                tr {
                    td { (format::utc_text(&event.at)) }
                    td class={ "state-" (event.state.as_str()) } { (event.state.as_str()) }
                    td.num { (event.attempt) }
                    td.mono { (event.node_id.map_or_else(|| "–".to_string(), |n| n.to_string())) }
                    td { (event.reason) }
                }
            } }
        }
        h2 { "Result" }
        @match &job.result {
            Some(result) => pre.mono #job-result { (serde_json::to_string_pretty(result).unwrap_or_default()) },
            None => p.muted { "No result yet." },
        }
        h2 { "Cost" }
        @match &job.cost {
            Some(cost) => dl.facts {
                dt { "Payer" } dd { (cost.payer) }
                dt { "Price" } dd { (format::gai(cost.price_per_second_ugai)) " per second" }
                dt { "Held" } dd { (format::gai(cost.held_ugai)) }
                dt { "Bill" } dd { (cost.state) }
                @if let Some(seconds) = cost.billed_seconds { dt { "Billed" } dd { (seconds) " s" } }
                @if let Some(paid) = cost.paid_to_node_ugai { dt { "Paid to the node" } dd { (format::gai(paid)) } }
                @if let Some(fee) = cost.fee_ugai { dt { "Fee" } dd { (format::gai(fee)) } }
                @if let Some(refunded) = cost.refunded_ugai { dt { "Refunded" } dd { (format::gai(refunded)) } }
            },
            None => p.muted { "Free (the admin's job)." },
        }
        h2 { "Energy" }
        @match &job.energy {
            Some(energy) => dl.facts {
                dt { "Energy" } dd { (format::watt_hours(energy.energy_wh)) " in " (format!("{:.0}", energy.seconds)) " s (" (energy.measured_by) ")" }
                dt { "Solar" } dd { (format::watt_hours(energy.solar_wh)) }
                dt { "Grid" } dd { (format::watt_hours(energy.grid_wh)) }
                dt { "CO₂" } dd { (format::grams(energy.co2_grams)) " at " (format!("{:.0}", energy.carbon_intensity.value)) " g/kWh" }
                @if let Some(cost) = energy.cost_sek { dt { "Electricity" } dd { (format!("{cost:.4} SEK")) } }
                @if energy.green_bonus_ugai > 0 { dt { "Green bonus" } dd { (format::gai(energy.green_bonus_ugai)) } }
            },
            None => p.muted { "No energy report yet." },
        }
    }
}

async fn load(store: &Store, job_id: Uuid) -> Result<JobView, PageError> {
    let job = store
        .job(job_id)
        .await?
        .ok_or_else(|| PageError(ApiError::not_found(format!("there is no job {job_id}"))))?;
    Ok(full_view(store, &job).await?)
}

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Path(path): Path<String>,
) -> Result<Response, PageError> {
    let job_id = path_id(&path, "job")?;
    let path = format!("/jobs/{job_id}");
    let title = format!("Job {job_id}");
    if !viewer.is_admin() {
        let info = PageInfo {
            title: &title,
            section: Section::Jobs,
            viewer,
            live: None,
            path: &path,
        };
        return Ok(layout::respond(layout::page(
            info,
            html! { h1 { (title) } (layout::admin_only(&path, "A job")) },
        )));
    }
    let store = &state.store;
    let job = load(store, job_id).await?;
    let mut chunks: Vec<LogChunk> = Vec::new();
    for _ in 0..MAX_LOG_BATCHES {
        let after = chunks.last().map(|c| (c.attempt, c.seq));
        let batch = store.job_logs(job_id, after, LOG_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        chunks.extend(batch);
    }
    let after = chunks.last().map_or_else(String::new, event_id);
    let live_path = format!("/live/jobs/{job_id}?after={after}");
    let info = PageInfo {
        title: &title,
        section: Section::Jobs,
        viewer,
        live: Some(&live_path),
        path: &path,
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Job " span.mono { (job_id) } }
            div.split {
                div #job-state { (state_part(&job)) }
                div {
                    h2 { "Placement" }
                    dl.facts {
                        dt { "Type" } dd { (job.kind.as_str()) }
                        dt { "Market" } dd { (job.placement.market.as_deref().unwrap_or("any")) }
                        dt { "Timeout" } dd { (job.timeout_seconds) " s" }
                    }
                    h2 { "Log" }
                    pre.logs #job-logs { (log_text(&chunks, None)) }
                    h2 { "Document" }
                    pre.mono { (serde_json::to_string_pretty(&job.spec).unwrap_or_default()) }
                }
            }
        },
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    after: String,
}

/// What a followed job page has been sent.
struct Following {
    store: Store,
    job_id: Uuid,
    after: Option<(u32, u64)>,
    shown_state: String,
    pending: Vec<Update>,
    first: bool,
    done: bool,
}

impl Following {
    /// Reads the job and its new log; queues what changed (`End` last,
    /// once the job is final and its log read to the end).
    async fn poll(&mut self) {
        let Ok(job) = load(&self.store, self.job_id).await else {
            return;
        };
        let html = state_part(&job).into_string();
        let mut updates = Vec::new();
        if html != self.shown_state {
            self.shown_state = html.clone();
            updates.push(Update::Replace {
                target: "job-state",
                html: maud::PreEscaped(html),
            });
        }
        let Ok(chunks) = self
            .store
            .job_logs(self.job_id, self.after, LOG_BATCH)
            .await
        else {
            return;
        };
        if let Some(last) = chunks.last() {
            let text = log_text(&chunks, self.after.map(|(attempt, _)| attempt));
            self.after = Some((last.attempt, last.seq));
            updates.push(Update::Append {
                target: "job-logs",
                text,
                id: event_id(last),
            });
        } else if job.state.is_final() {
            updates.push(Update::End);
            self.done = true;
        }
        // Popped from the back: sent in the order pushed.
        updates.reverse();
        self.pending = updates;
    }
}

pub async fn live(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Path(path): Path<String>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let job_id = path_id(&path, "job")?;
    if !viewer.is_admin() {
        return Err(PageError(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "admin_only",
            "a job's live log is the admin's; sign in",
        )));
    }
    let job = load(&state.store, job_id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(event_position)
        .or_else(|| event_position(&query.after));
    let start = Following {
        store: state.store.clone(),
        job_id,
        after,
        shown_state: state_part(&job).into_string(),
        pending: Vec::new(),
        first: true,
        done: false,
    };
    let updates = futures::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(update) = f.pending.pop() {
                return Some((update, f));
            }
            if f.done {
                return None;
            }
            if !f.first {
                tokio::time::sleep(POLL).await;
            }
            f.first = false;
            f.poll().await;
        }
    });
    Ok(live::respond(&state, updates))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::jobs::api::LogStream;

    fn chunk(attempt: u32, seq: u64, data: &str) -> LogChunk {
        LogChunk {
            seq,
            stream: LogStream::Stdout,
            data: data.into(),
            attempt,
        }
    }

    #[test]
    fn a_log_marks_where_each_attempt_starts() {
        let chunks = [chunk(1, 1, "a\n"), chunk(1, 2, "b\n"), chunk(2, 1, "c\n")];
        assert_eq!(
            log_text(&chunks, None),
            "── attempt 1 ──\na\nb\n── attempt 2 ──\nc\n"
        );
        assert_eq!(log_text(&chunks[1..2], Some(1)), "b\n");
    }
}
