//! The regions page (`/regions`): the map of Sweden with its price areas
//! and node clusters, and each country and price area's capacity, power,
//! grid figures and the energy of the jobs done there (what
//! `GET /api/regions` sums).

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};

use super::error::PageError;
use super::format;
use super::layout::{self, PageInfo, Section};
use super::map;
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::coordinator::regions::api::{RegionCapacity, RegionEnergy, RegionPower};
use crate::coordinator::regions::routes::region_list;

fn figures(capacity: &RegionCapacity, power: &RegionPower, energy: &RegionEnergy) -> Markup {
    let watts = |w: Option<f64>| w.map_or_else(|| "–".to_string(), format::watts);
    html! {
        td.num { (capacity.nodes_online) " / " (capacity.nodes_total) }
        td.num { (capacity.gpus) }
        td.num { (format::mib(capacity.vram_mib)) }
        td.num { (format!("{:.1}", capacity.tokens_per_second)) }
        td.num { (watts(power.draw_watts)) }
        td.num { (watts(power.production_watts)) }
        td.num { (energy.jobs) }
        td.num { (format::watt_hours(energy.energy_wh)) }
        td.num { (format::grams(energy.co2_grams)) }
    }
}

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    let regions = region_list(&state.regions).await?;
    let dots = map::swedish_dots(&regions);
    let info = PageInfo {
        title: "Regions",
        section: Section::Regions,
        viewer,
        live: None,
        path: "/regions",
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Regions" }
            div.map-layout {
                div { (map::sweden(&dots)) }
                div.scroll {
                    p.muted { "Nodes are grouped by country, Swedish price area (SE1–SE4) and clusters of nearby nodes ("
                        (regions.cell_degrees) "° cells); power is what the online nodes' latest heartbeats report; energy and CO₂ are of the jobs completed there." }
                    @if regions.countries.is_empty() {
                        p.muted { "No node has registered yet." }
                    } @else {
                        table #regions-table {
                            thead { tr {
                                th { "Region" } th.num { "Online / all" } th.num { "GPUs" } th.num { "VRAM" }
                                th.num { "tokens/s" } th.num { "Draw" } th.num { "Solar" } th.num { "Jobs" }
                                th.num { "Energy" } th.num { "CO₂" } th.num { "g CO₂/kWh" } th.num { "SEK/kWh" }
                            } }
                            tbody {
                                @for country in &regions.countries {
                                    tr {
                                        th { (country.country.as_deref().unwrap_or("unknown")) }
                                        (figures(&country.capacity, &country.power, &country.energy))
                                        td {} td {}
                                    }
                                    @for area in &country.areas {
                                        @if let Some(name) = &area.price_area {
                                            tr {
                                                td { "↳ " (name) }
                                                (figures(&area.capacity, &area.power, &area.energy))
                                                td.num { (format!("{:.0}", area.carbon_intensity.value)) }
                                                td.num { (area.spot_price.as_ref().map_or_else(|| "–".to_string(), |p| format!("{:.2}", p.value))) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if regions.clusters_truncated {
                        p.note { "The map shows the first clusters only." }
                    }
                }
            }
        },
    )))
}
