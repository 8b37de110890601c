//! The nodes page (`/nodes`): every node, filterable by market and state,
//! 50 to a page in id order (the API's pagination).

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::error::PageError;
use super::format;
use super::layout::{self, PageInfo, Section};
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::clock::unix_millis;
use crate::coordinator::http::error::ApiError;
use crate::coordinator::http::page::{self, ListKind};
use crate::coordinator::nodes::api::{NodeState, NodeView};

/// Nodes per page.
pub const PAGE_SIZE: u32 = 50;

/// `?market=&state=&continue=`; empty fields are no filter.
#[derive(Debug, Default, Deserialize)]
pub struct NodesQuery {
    #[serde(default)]
    pub market: String,
    #[serde(default)]
    pub state: String,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// A node's name for people: its reported name, else its id.
pub fn display_name(node: &NodeView) -> String {
    node.name
        .clone()
        .unwrap_or_else(|| node.node_id.to_string())
}

/// Where a node is, in words.
pub fn location(node: &NodeView) -> String {
    let l = &node.location;
    let place = [l.country.as_deref(), l.region.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" / ");
    if place.is_empty() {
        "–".to_string()
    } else {
        place
    }
}

/// When the node was last heard from, with its age.
pub fn last_seen(node: &NodeView, now_ms: i64) -> String {
    format::utc_with_age(&node.last_seen_at, now_ms)
}

fn gpus(node: &NodeView) -> String {
    match node.gpu_info.as_slice() {
        [] => "none".to_string(),
        [one] => one.name.clone(),
        [first, rest @ ..] => format!("{} (+{})", first.name, rest.len()),
    }
}

fn filter_form(query: &NodesQuery) -> Markup {
    html! {
        form.filter method="get" action="/nodes" {
            label { "Market" input name="market" value=(query.market) placeholder="any"; }
            label { "State"
                select name="state" {
                    @for (value, label) in [("", "any"), ("online", "online"), ("offline", "offline")] {
                        option value=(value) selected[query.state == value] { (label) }
                    }
                }
            }
            button.primary type="submit" { "Filter" }
        }
    }
}

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Query(query): Query<NodesQuery>,
) -> Result<Response, PageError> {
    let node_state = match query.state.as_str() {
        "" => None,
        text => Some(NodeState::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                format!("state={text:?} is not a node state; use online or offline"),
            )
        })?),
    };
    let market = Some(query.market.as_str()).filter(|m| !m.is_empty());
    let page = page::PageQuery {
        limit: Some(PAGE_SIZE),
        continue_token: query.continue_token.clone(),
    }
    .page(ListKind::Nodes)?;
    let after = page.after_as("node", |key| Uuid::parse_str(key).ok())?;
    let mut nodes = state
        .store
        .nodes_page(market, node_state, after, page.limit)
        .await?;
    let next = page::finish(&mut nodes, &page, ListKind::Nodes, |n| {
        n.node_id.to_string()
    });
    let now = unix_millis();
    let info = PageInfo {
        title: "Nodes",
        section: Section::Nodes,
        viewer,
        live: None,
        path: "/nodes",
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Nodes" }
            (filter_form(&query))
            @if nodes.is_empty() {
                p.muted { "No node matches." }
            } @else {
                table #nodes-table {
                    thead { tr {
                        th { "Name" } th { "State" } th { "Market" } th { "Location" }
                        th { "GPUs" } th { "Last seen" } th.num { "Heartbeats" }
                    } }
                    tbody {
                        @for node in &nodes {
                            tr {
                                td { a href={ "/nodes/" (node.node_id) } { (display_name(node)) } }
                                td class={ "state-" (node.state.as_str()) } { (node.state.as_str()) }
                                td { (node.market) }
                                td { (location(node)) }
                                td { (gpus(node)) }
                                td { (last_seen(node, now)) }
                                td.num { (node.heartbeats) }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p.pager { a href={ "/nodes?market=" (format::query_value(&query.market))
                    "&state=" (format::query_value(&query.state)) "&continue=" (next) } { "Next page →" } }
            }
        },
    )))
}
