//! The regions domain's wire types: `GET /api/regions`, countries →
//! price areas → clusters of nearby nodes, each with its capacity, power
//! and the energy of the jobs completed there.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::coordinator::energy::api::GridFigure;

/// What a group of nodes offers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegionCapacity {
    pub nodes_online: u64,
    pub nodes_total: u64,
    /// GPUs of the online nodes.
    pub gpus: u64,
    /// GPU memory of the online nodes, MiB.
    pub vram_mib: u64,
    /// Sum of the online nodes' benchmark decode tokens/s.
    pub tokens_per_second: f64,
}

/// The power of a group's online nodes now, from their latest heartbeats
/// (absent when none of them reports power).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegionPower {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draw_watts: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_watts: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surplus_watts: Option<f64>,
}

/// The energy of the jobs completed in a group, totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegionEnergy {
    pub jobs: u64,
    pub energy_wh: f64,
    pub solar_wh: f64,
    pub grid_wh: f64,
    pub co2_grams: f64,
    /// Grid energy at the spot prices in use (Swedish price areas), SEK.
    pub cost_sek: f64,
}

/// Nearby nodes: one grid cell of 0.5° × 0.5°.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// The cell's south-west corner, "latitude,longitude"; absent for the
    /// nodes that sent no coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    /// The mean of its nodes' coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    pub capacity: RegionCapacity,
    pub power: RegionPower,
    pub energy: RegionEnergy,
}

/// A Swedish price area, or the whole of a country that has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AreaView {
    /// SE1–SE4; absent outside Sweden (and for Swedish nodes whose area is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_area: Option<String>,
    /// Grid carbon intensity in use, gCO₂eq/kWh.
    pub carbon_intensity: GridFigure,
    /// Spot price in use, SEK/kWh (Swedish price areas only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_price: Option<GridFigure>,
    pub capacity: RegionCapacity,
    pub power: RegionPower,
    pub energy: RegionEnergy,
    pub clusters: Vec<ClusterView>,
}

/// A country.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CountryView {
    /// ISO 3166-1 alpha-2; absent for the nodes that sent no country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    pub eu: bool,
    pub capacity: RegionCapacity,
    pub power: RegionPower,
    pub energy: RegionEnergy,
    pub areas: Vec<AreaView>,
}

/// `GET /api/regions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegionList {
    pub countries: Vec<CountryView>,
    /// Degrees of latitude and of longitude a cluster's cell spans.
    pub cell_degrees: f64,
    /// True when there were more cells than one answer lists (areas and
    /// countries still count every node).
    pub clusters_truncated: bool,
}
