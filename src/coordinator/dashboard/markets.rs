//! The markets page (`/markets`): each market with its nodes online and
//! registered, how many pass its qualification (when it has one), and the
//! jobs waiting for it.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::error::PageError;
use super::format;
use super::layout::{self, PageInfo, Section};
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::coordinator::http::page::{self, ListKind};

/// Markets per page.
const PAGE_SIZE: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct MarketsQuery {
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Query(query): Query<MarketsQuery>,
) -> Result<Response, PageError> {
    let page = page::PageQuery {
        limit: Some(PAGE_SIZE),
        continue_token: query.continue_token,
    }
    .page(ListKind::Markets)?;
    let mut markets = state
        .store
        .markets_page(page.after.as_deref(), page.limit)
        .await?;
    let next = page::finish(&mut markets, &page, ListKind::Markets, |m| m.market.clone());
    for market in &mut markets {
        market.qualified = state.store.qualified_nodes(&market.market).await?;
    }
    let info = PageInfo {
        title: "Markets",
        section: Section::Markets,
        viewer,
        live: None,
        path: "/markets",
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Markets" }
            p.muted { "A node's market is its benchmark class, else its first GPU's name, else cpu." }
            @if markets.is_empty() {
                p.muted { "No node has registered yet." }
            } @else {
                table #markets-table {
                    thead { tr { th { "Market" } th.num { "Online" } th.num { "Registered" } th.num { "Qualified" } } }
                    tbody { @for m in &markets {
                        tr {
                            td { a href={ "/nodes?market=" (format::query_value(&m.market)) } { (m.market) } }
                            td.num { (m.online) }
                            td.num { (m.total) }
                            td.num { (m.qualified.map_or_else(|| "no qualification".to_string(), |q| q.to_string())) }
                        }
                    } }
                }
            }
            @if let Some(next) = next {
                p.pager { a href={ "/markets?continue=" (next) } { "Next page →" } }
            }
        },
    )))
}
