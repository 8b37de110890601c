//! The governance pages: proposals, newest first, filterable by state
//! (`/governance`), and one proposal (`/governance/{id}`) with what it
//! does, its tally against quorum and threshold (live while it is open)
//! and its votes. All public, as the API's.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::error::{path_id, PageError};
use super::format;
use super::layout::{self, PageInfo, Section};
use super::live::{self, Render};
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::coordinator::governance::api::{ProposalState, ProposalView};
use crate::coordinator::governance::store::ProposalCursor;
use crate::coordinator::http::error::ApiError;
use crate::coordinator::http::page::{self, ListKind};

/// Proposals and votes per page.
const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub state: String,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// What the proposal does, in words.
fn effect(p: &ProposalView) -> String {
    if let Some(parameter) = &p.parameter {
        format!("set {} to {}", parameter.name, parameter.value)
    } else if let Some(mint) = &p.mint {
        format!(
            "mint {} into {}",
            format::gai(mint.amount_ugai),
            mint.account
        )
    } else {
        "a signal: changes nothing".to_string()
    }
}

/// The tally, as the live stream replaces it.
fn tally(p: &ProposalView) -> Markup {
    let t = &p.tally;
    let cast = t.yes + t.no + t.abstain;
    let total = p.total_power.max(1);
    html! {
        dl.facts {
            dt { "State" } dd class={ "state-" (p.state.as_str()) } #proposal-state { (p.state.as_str()) }
            dt { "Yes" } dd { meter min="0" max=(total) value=(t.yes) {} " " (t.yes) }
            dt { "No" } dd { meter min="0" max=(total) value=(t.no) {} " " (t.no) }
            dt { "Abstain" } dd { meter min="0" max=(total) value=(t.abstain) {} " " (t.abstain) }
            dt { "Turnout" } dd { (cast) " of " (p.total_power) " voting power (" (t.votes) " voters of " (p.voters) ")" }
            dt { "Quorum" } dd { (p.quorum_basis_points / 100) " % — " (if p.quorum_reached { "reached" } else { "not reached" }) }
            dt { "Threshold" } dd { (p.threshold_basis_points / 100) " % of yes + no" }
            @if let Some(result) = &p.result { dt { "Result" } dd { (result) } }
        }
    }
}

pub async fn list(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let wanted = match query.state.as_str() {
        "" => None,
        text => Some(ProposalState::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                format!("state={text:?} is not a proposal state; use open, passed, rejected or no_quorum"),
            )
        })?),
    };
    let page = page::PageQuery {
        limit: Some(PAGE_SIZE),
        continue_token: query.continue_token.clone(),
    }
    .page(ListKind::Proposals)?;
    let before = page.after_as("proposal", ProposalCursor::parse)?;
    let mut rows = state
        .store
        .proposals_page(wanted, before.as_ref(), page.limit)
        .await?;
    let next = page::finish(&mut rows, &page, ListKind::Proposals, |(row, _)| {
        row.cursor_key()
    });
    let info = PageInfo {
        title: "Governance",
        section: Section::Governance,
        viewer,
        live: None,
        path: "/governance",
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Governance" }
            form.filter method="get" action="/governance" {
                label { "State"
                    select name="state" {
                        @for (value, label) in [("", "any"), ("open", "open"), ("passed", "passed"), ("rejected", "rejected"), ("no_quorum", "no quorum")] {
                            option value=(value) selected[query.state == value] { (label) }
                        }
                    }
                }
                button.primary type="submit" { "Filter" }
            }
            @if rows.is_empty() {
                p.muted { "No proposal matches." }
            } @else {
                table #proposals-table {
                    thead { tr { th { "Proposal" } th { "Effect" } th { "State" } th { "Yes / No / Abstain" } th { "Deadline" } } }
                    tbody { @for (_, p) in &rows {
                        tr {
                            td { a href={ "/governance/" (p.proposal_id) } { (p.title) } }
                            td { (effect(p)) }
                            td class={ "state-" (p.state.as_str()) } { (p.state.as_str()) }
                            td { (p.tally.yes) " / " (p.tally.no) " / " (p.tally.abstain) }
                            td { (format::utc_text(&p.deadline)) }
                        }
                    } }
                }
            }
            @if let Some(next) = next {
                p.pager { a href={ "/governance?state=" (format::query_value(&query.state)) "&continue=" (next) } { "Next page →" } }
            }
        },
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct VotesQuery {
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

async fn load(state: &DashboardState, id: Uuid) -> Result<ProposalView, PageError> {
    state
        .store
        .proposal(id)
        .await?
        .ok_or_else(|| PageError(ApiError::not_found(format!("there is no proposal {id}"))))
}

pub async fn proposal(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Path(path): Path<String>,
    Query(query): Query<VotesQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&path, "proposal")?;
    let p = load(&state, id).await?;
    let page = page::PageQuery {
        limit: Some(PAGE_SIZE),
        continue_token: query.continue_token,
    }
    .page(ListKind::Votes)?;
    let mut votes = state
        .store
        .votes_page(id, page.after.as_deref(), page.limit)
        .await?;
    let next = page::finish(&mut votes, &page, ListKind::Votes, |v| v.voter.clone());
    let path = format!("/governance/{id}");
    let live_path = format!("/live/governance/{id}");
    let open = p.state == ProposalState::Open;
    let info = PageInfo {
        title: &p.title,
        section: Section::Governance,
        viewer,
        live: open.then_some(live_path.as_str()),
        path: &path,
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { (p.title) }
            div.split {
                div {
                    dl.facts {
                        dt { "Effect" } dd { (effect(&p)) }
                        dt { "Proposer" } dd.mono { (p.proposer) }
                        dt { "Opened" } dd { (format::utc_text(&p.created_at)) }
                        dt { "Deadline" } dd { (format::utc_text(&p.deadline)) }
                        @if let Some(at) = &p.effective_at { dt { "Takes effect" } dd { (format::utc_text(at)) } }
                    }
                    h2 { "Description" }
                    p #proposal-description { (p.description) }
                }
                div { h2 { "Tally" } div #proposal-tally { (tally(&p)) } }
            }
            h2 { "Votes" }
            @if votes.is_empty() {
                p.muted { "No vote yet." }
            } @else {
                table #votes-table {
                    thead { tr { th { "Voter" } th { "Choice" } th.num { "Power" } th { "Via" } th { "Cast" } } }
                    tbody { @for v in &votes {
                        tr {
                            td.mono { (v.voter) }
                            td { (v.choice.as_str()) }
                            td.num { (v.power) }
                            td { (v.via.as_str()) }
                            td { (format::utc_text(&v.cast_at)) }
                        }
                    } }
                }
            }
            @if let Some(next) = next {
                p.pager { a href={ (path) "?continue=" (next) } { "More votes →" } }
            }
        },
    )))
}

pub async fn live(
    State(state): State<DashboardState>,
    Path(path): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&path, "proposal")?;
    load(&state, id).await?;
    let store = state.store.clone();
    let render: Render = Box::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match store.proposal(id).await {
                Ok(Some(p)) => vec![("proposal-tally", tally(&p))],
                _ => Vec::new(),
            }
        })
    });
    Ok(live::respond(
        &state,
        live::replacements(Duration::from_secs(2), render),
    ))
}
