//! `GET /api/regions` (public): the store's sums per area and per cell,
//! the grid figures in use for each area (looked up concurrently, cached
//! per hour by the sources), nested by `view`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::api::RegionList;
use super::store::Level;
use super::view::{self, AreaFigures, Sums};
use crate::clock::unix_millis;
use crate::coordinator::energy::zone::GridZone;
use crate::coordinator::energy::GridSources;
use crate::coordinator::http::error::{ApiError, ErrorBody};
use crate::coordinator::store::Store;

/// Clusters one answer lists at most (every node still counts in its area).
pub const MAX_CLUSTERS: i64 = 2_000;
/// Areas one answer lists at most: 249 countries and four price areas fit.
const MAX_AREAS: i64 = 1_000;

/// What the regions route reads.
#[derive(Debug, Clone)]
pub struct RegionsState {
    pub store: Store,
    pub sources: GridSources,
}

pub fn router(state: RegionsState) -> Router {
    Router::new()
        .route("/api/regions", get(list_regions))
        .with_state(state)
}

/// Nodes grouped by country, Swedish price area (SE1–SE4) and clusters of
/// nearby nodes (cells of 0.5° × 0.5°), each with its capacity (nodes
/// online and in all, and the online nodes' GPUs, VRAM and benchmark
/// tokens/s), power now (draw, solar production and surplus from the
/// latest heartbeats), the grid carbon intensity and spot price in use, and
/// the energy and CO₂ of the jobs completed there.
#[utoipa::path(
    get,
    path = "/api/regions",
    responses(
        (status = 200, description = "every region with nodes", body = RegionList),
        (status = 500, description = "the database failed", body = ErrorBody),
    )
)]
pub async fn list_regions(State(state): State<RegionsState>) -> Result<Json<RegionList>, ApiError> {
    Ok(Json(region_list(&state).await?))
}

/// Every region with nodes, as `GET /api/regions` answers (and the
/// dashboard's map draws).
pub async fn region_list(state: &RegionsState) -> Result<RegionList, ApiError> {
    let now = unix_millis();
    let store = &state.store;
    let areas = store.region_groups(Level::Area, MAX_AREAS).await?;
    let mut cells = store.region_groups(Level::Cell, MAX_CLUSTERS + 1).await?;
    let clusters_truncated = cells.len() > usize::try_from(MAX_CLUSTERS).unwrap_or(usize::MAX);
    cells.truncate(usize::try_from(MAX_CLUSTERS).unwrap_or(usize::MAX));
    let area_energy = store.region_energy(Level::Area, MAX_AREAS).await?;
    let cell_energy = store.region_energy(Level::Cell, MAX_CLUSTERS).await?;
    let keys: BTreeSet<(String, String)> = areas
        .iter()
        .map(|row| (row.key.country.clone(), row.key.price_area.clone()))
        .collect();
    let lookups = keys.into_iter().map(|key| {
        let sources = state.sources.clone();
        async move {
            let zone = GridZone::from_key(&key.0, &key.1);
            let (intensity, price) =
                tokio::join!(sources.intensity(&zone, now), sources.price(&zone, now));
            (key, (intensity, price))
        }
    });
    let figures: BTreeMap<(String, String), AreaFigures> = futures::future::join_all(lookups)
        .await
        .into_iter()
        .collect();
    let sums = Sums {
        areas,
        cells,
        area_energy,
        cell_energy,
        clusters_truncated,
    };
    Ok(view::regions(sums, &figures))
}
