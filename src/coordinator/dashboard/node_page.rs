//! A node's page (`/nodes/{id}`): what it reports and where it is, its
//! benchmark and power now, and for the admin its recent heartbeats, its
//! power draw against solar production, and its jobs; the summary and the
//! admin's parts refresh live as heartbeats arrive.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{html, Markup};
use uuid::Uuid;

use super::chart;
use super::error::{path_id, PageError};
use super::format;
use super::layout::{self, PageInfo, Section};
use super::live::{self, Render};
use super::nodes::{display_name, last_seen, location};
use super::queries::NodePower;
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::clock::unix_millis;
use crate::coordinator::http::error::ApiError;
use crate::coordinator::nodes::api::NodeView;
use crate::coordinator::store::{Store, StoreError};

/// Heartbeats the table shows and the chart draws.
const TABLE_HEARTBEATS: usize = 10;
const CHART_HEARTBEATS: u32 = 60;
/// Leases the jobs table shows.
const RECENT_LEASES: i64 = 20;

fn summary(node: &NodeView, power: Option<NodePower>, now: i64) -> Markup {
    let watts = |w: Option<f64>| w.map_or_else(|| "–".to_string(), format::watts);
    html! {
        dl.facts {
            dt { "State" } dd class={ "state-" (node.state.as_str()) } { (node.state.as_str()) }
            dt { "Last seen" } dd #last-seen { (last_seen(node, now)) }
            dt { "Heartbeats" } dd #heartbeat-count { (node.heartbeats) }
            dt { "Ready" } dd { (match node.ready { Some(true) => "yes", Some(false) => "no", None => "–" }) }
            dt { "Spec generation" } dd.mono { (node.observed_generation.as_deref().unwrap_or("–")) }
            @if let Some(power) = power {
                dt { "Power draw" } dd { (watts(power.draw_watts)) }
                dt { "Solar production" } dd { (watts(power.production_watts)) }
                dt { "Surplus" } dd { (watts(power.surplus_watts)) }
            }
        }
    }
}

fn details(node: &NodeView) -> Markup {
    let l = &node.location;
    html! {
        dl.facts {
            dt { "Node id" } dd.mono { (node.node_id) }
            dt { "Market" } dd { a href={ "/nodes?market=" (format::query_value(&node.market)) } { (node.market) } }
            dt { "Location" } dd { (location(node)) }
            @if let (Some(lat), Some(lon)) = (l.latitude, l.longitude) {
                dt { "Coordinates" } dd { (format!("{lat:.4}, {lon:.4}")) }
            }
            dt { "Registered" } dd { (node.registered_at) }
            dt { "Public key" } dd.mono { (node.public_key) }
        }
        h2 { "GPUs" }
        @if node.gpu_info.is_empty() {
            p.muted { "No GPU: a CPU node." }
        } @else {
            table { thead { tr { th { "Name" } th.num { "Memory" } } }
                tbody { @for gpu in &node.gpu_info {
                    tr { td { (gpu.name) } td.num { (format::mib(gpu.memory_total_bytes / (1024 * 1024))) } }
                } }
            }
        }
        h2 { "Benchmark" }
        @match &node.benchmark {
            Some(report) => pre.mono { (serde_json::to_string_pretty(report).unwrap_or_default()) },
            None => p.muted { "The node sent no benchmark." },
        }
    }
}

async fn heartbeats(
    store: &Store,
    node_id: Uuid,
    now: i64,
) -> Result<(Markup, Markup), StoreError> {
    let history = store
        .heartbeats_page(node_id, None, CHART_HEARTBEATS)
        .await?;
    let table = html! {
        table { thead { tr { th.num { "#" } th { "Received" } th { "Ready" } th { "Generation" } } }
            tbody { @for beat in history.iter().take(TABLE_HEARTBEATS) {
                tr {
                    td.num { (beat.seq) }
                    td { (format::utc_with_age(&beat.received_at, now)) }
                    td { (match beat.ready { Some(true) => "yes", Some(false) => "no", None => "–" }) }
                    td.mono { (beat.observed_generation.as_deref().unwrap_or("–")) }
                }
            } }
        }
    };
    let chart = chart::power_chart(&history)
        .unwrap_or_else(|| html! { p.muted { "No heartbeat carried a power report." } });
    Ok((table, chart))
}

async fn jobs(store: &Store, node_id: Uuid, now: i64) -> Result<Markup, StoreError> {
    let leases = store.node_leases(node_id, RECENT_LEASES).await?;
    Ok(html! {
        @if leases.is_empty() {
            p.muted { "This node has not run a job yet." }
        } @else {
            table #node-jobs { thead { tr { th { "Job" } th.num { "Attempt" } th { "Leased" } th { "Outcome" } th { "Job state" } } }
                tbody { @for lease in &leases {
                    tr {
                        td.mono { a href={ "/jobs/" (lease.job_id) } { (lease.job_id) } }
                        td.num { (lease.attempt) }
                        td { (format::utc(lease.granted_at_ms)) " (" (format::age(lease.granted_at_ms, now)) ")" }
                        td { (lease.outcome.as_deref().unwrap_or(if lease.ended_at_ms.is_none() { "running" } else { "–" })) }
                        td class={ "state-" (lease.job_state) } { (lease.job_state) }
                    }
                } }
            }
        }
    })
}

async fn load(store: &Store, node_id: Uuid) -> Result<NodeView, PageError> {
    store
        .node(node_id)
        .await?
        .ok_or_else(|| PageError(ApiError::not_found(format!("there is no node {node_id}"))))
}

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Path(path): Path<String>,
) -> Result<Response, PageError> {
    let node_id = path_id(&path, "node")?;
    let store = &state.store;
    let node = load(store, node_id).await?;
    let power = store.node_power(node_id).await?;
    let now = unix_millis();
    let path = format!("/nodes/{node_id}");
    let live_path = format!("/live/nodes/{node_id}");
    let admin = if viewer.is_admin() {
        let (table, chart) = heartbeats(store, node_id, now).await?;
        html! {
            h2 { "Power" } div #node-power { (chart) }
            h2 { "Recent heartbeats" } div #node-heartbeats { (table) }
            h2 { "Jobs" } (jobs(store, node_id, now).await?)
        }
    } else {
        layout::admin_only(&path, "The node's heartbeats, power history and jobs")
    };
    let name = display_name(&node);
    let info = PageInfo {
        title: &name,
        section: Section::Nodes,
        viewer,
        live: Some(&live_path),
        path: &path,
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 #node-name { (name) }
            div.split {
                div { h2 { "Now" } div #node-summary { (summary(&node, power, now)) } }
                div { h2 { "Details" } (details(&node)) }
            }
            (admin)
        },
    )))
}

pub async fn live(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Path(path): Path<String>,
) -> Result<Response, PageError> {
    let node_id = path_id(&path, "node")?;
    load(&state.store, node_id).await?;
    let store = state.store.clone();
    let render: Render = Box::new(move || {
        let store = store.clone();
        Box::pin(async move {
            let now = unix_millis();
            let (Ok(Some(node)), Ok(power)) =
                (store.node(node_id).await, store.node_power(node_id).await)
            else {
                return Vec::new();
            };
            let mut parts = vec![("node-summary", summary(&node, power, now))];
            if viewer.is_admin() {
                if let Ok((table, chart)) = heartbeats(&store, node_id, now).await {
                    parts.push(("node-heartbeats", table));
                    parts.push(("node-power", chart));
                }
            }
            parts
        })
    });
    Ok(live::respond(
        &state,
        live::replacements(Duration::from_secs(1), render),
    ))
}
