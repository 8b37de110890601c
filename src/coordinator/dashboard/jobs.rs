//! The jobs page (`/jobs`, the admin's): every job, newest first,
//! filterable by state, 50 to a page (the API's pagination). Jobs carry
//! their clients' documents, so nobody else sees them here.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::error::PageError;
use super::format;
use super::layout::{self, PageInfo, Section};
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::clock::unix_millis;
use crate::coordinator::http::error::ApiError;
use crate::coordinator::http::page::{self, ListKind};
use crate::coordinator::jobs::api::JobState;
use crate::coordinator::jobs::store::JobCursor;

/// Jobs per page.
const PAGE_SIZE: u32 = 50;

/// `?state=&continue=`; an empty state is no filter.
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    #[serde(default)]
    pub state: String,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Query(query): Query<JobsQuery>,
) -> Result<Response, PageError> {
    let info = PageInfo {
        title: "Jobs",
        section: Section::Jobs,
        viewer,
        live: None,
        path: "/jobs",
    };
    if !viewer.is_admin() {
        return Ok(layout::respond(layout::page(
            info,
            html! { h1 { "Jobs" } (layout::admin_only("/jobs", "The list of jobs")) },
        )));
    }
    let job_state = match query.state.as_str() {
        "" => None,
        text => Some(JobState::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                format!("state={text:?} is not a job state; use one of QUEUED, RUNNING, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, EXPIRED"),
            )
        })?),
    };
    let page = page::PageQuery {
        limit: Some(PAGE_SIZE),
        continue_token: query.continue_token.clone(),
    }
    .page(ListKind::Jobs)?;
    let before = page.after_as("job", JobCursor::parse)?;
    let mut jobs = state
        .store
        .jobs_page(None, job_state, before.as_ref(), page.limit)
        .await?;
    let next = page::finish(&mut jobs, &page, ListKind::Jobs, JobCursor::key);
    let now = unix_millis();
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Jobs" }
            form.filter method="get" action="/jobs" {
                label { "State"
                    select name="state" {
                        option value="" selected[query.state.is_empty()] { "any" }
                        @for s in JobState::ALL {
                            option value=(s.as_str()) selected[query.state == s.as_str()] { (s.as_str()) }
                        }
                    }
                }
                button.primary type="submit" { "Filter" }
            }
            @if jobs.is_empty() {
                p.muted { "No job matches." }
            } @else {
                table #jobs-table {
                    thead { tr {
                        th { "Job" } th { "Type" } th { "State" } th { "Owner" } th { "Market" }
                        th.num { "Attempt" } th { "Created" } th { "Node" }
                    } }
                    tbody { @for job in &jobs {
                        tr {
                            td.mono { a href={ "/jobs/" (job.job_id) } { (job.job_id) } }
                            td { (job.kind.as_str()) }
                            td class={ "state-" (job.state.as_str()) } { (job.state.as_str()) }
                            td { (job.owner) }
                            td { (job.placement.market.as_deref().unwrap_or("any")) }
                            td.num { (job.attempt) "/" (job.max_attempts) }
                            td { (format::utc(job.created_at_ms)) " (" (format::age(job.created_at_ms, now)) ")" }
                            td.mono { @if let Some(node) = job.lease_node {
                                a href={ "/nodes/" (node) } { (node) }
                            } @else { "–" } }
                        }
                    } }
                }
            }
            @if let Some(next) = next {
                p.pager { a href={ "/jobs?state=" (format::query_value(&query.state)) "&continue=" (next) } { "Next page →" } }
            }
        },
    )))
}
