//! The overview page (`/`): nodes online by market, jobs running and
//! queued, the network's tokens per second (benchmarked capacity and what
//! the gateway served in the last minute), energy and CO₂ of today's jobs,
//! and the supply; refreshed live.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};

use super::error::PageError;
use super::format;
use super::layout::{self, PageInfo, Section};
use super::live::{self, Render};
use super::queries::Overview;
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::clock::unix_millis;
use crate::coordinator::store::{Store, StoreError};

const LIVE_PATH: &str = "/live/overview";
const TARGET: &str = "overview";
const MS_PER_DAY: i64 = 86_400_000;

async fn load(store: &Store) -> Result<Overview, StoreError> {
    let now = unix_millis();
    store.overview(now, now - now.rem_euclid(MS_PER_DAY)).await
}

fn card(label: &str, value: String) -> Markup {
    html! { div.card { div.label { (label) } div.value { (value) } } }
}

/// The figures, as the live stream replaces them.
fn figures(o: &Overview) -> Markup {
    let online: i64 = o.markets.iter().map(|m| m.online).sum();
    let total: i64 = o.markets.iter().map(|m| m.total).sum();
    let served = o.served_tokens_last_minute as f64 / 60.0;
    html! {
        div.cards {
            (card("Nodes online", format!("{online} of {total}")))
            (card("Jobs running", o.jobs_running.to_string()))
            (card("Jobs queued", o.jobs_queued.to_string()))
            (card("Capacity (benchmarked)", format!("{:.1} tokens/s", o.capacity_tokens_per_second)))
            (card("Served (last minute)", format!("{served:.1} tokens/s")))
            (card("Energy today (UTC)", format::watt_hours(o.energy_wh_today)))
            (card("Solar share today", if o.energy_wh_today > 0.0 {
                format!("{:.0} %", 100.0 * o.solar_wh_today / o.energy_wh_today)
            } else { "–".to_string() }))
            (card("CO₂ today", format::grams(o.co2_grams_today)))
            (card("Jobs metered today", o.jobs_today.to_string()))
            (card("Supply", format::gai(o.supply_ugai)))
        }
        h2 { "Nodes by market" }
        @if o.markets.is_empty() {
            p.muted { "No node has registered yet." }
        } @else {
            table #markets-table {
                thead { tr { th { "Market" } th.num { "Online" } th.num { "Registered" } } }
                tbody {
                    @for m in &o.markets {
                        tr {
                            td { a href={ "/nodes?market=" (format::query_value(&m.market)) } { (m.market) } }
                            td.num { (m.online) }
                            td.num { (m.total) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    let overview = load(&state.store).await?;
    let info = PageInfo {
        title: "Overview",
        section: Section::Overview,
        viewer,
        live: Some(LIVE_PATH),
        path: "/",
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Network overview" }
            div #(TARGET) { (figures(&overview)) }
        },
    )))
}

pub async fn live(State(state): State<DashboardState>) -> Response {
    let store = state.store.clone();
    let render: Render = Box::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match load(&store).await {
                Ok(overview) => vec![(TARGET, figures(&overview))],
                Err(_) => Vec::new(),
            }
        })
    });
    live::respond(&state, live::replacements(Duration::from_secs(2), render))
}
