//! The energy domain's wire types: a grid figure with its source, and a
//! job's energy and emissions as `GET /api/jobs/{id}` shows them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a grid figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FigureSource {
    /// The built-in yearly average (README "Energy and CO₂"): no API is
    /// configured, or it failed.
    Default,
    /// The configured API.
    Api,
}

impl FigureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FigureSource::Default => "default",
            FigureSource::Api => "api",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "default" => Some(FigureSource::Default),
            "api" => Some(FigureSource::Api),
            _ => None,
        }
    }
}

/// A grid figure in use: a carbon intensity (gCO₂eq/kWh) or a spot price (SEK/kWh).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GridFigure {
    pub value: f64,
    pub source: FigureSource,
}

/// What a completed job used and emitted, from its node's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobEnergyView {
    /// Energy the node used for the job, Wh.
    pub energy_wh: f64,
    /// The part its own solar production covered, Wh (counts as zero CO₂).
    pub solar_wh: f64,
    /// `energy_wh - solar_wh`: the part taken from the grid, Wh.
    pub grid_wh: f64,
    /// Seconds metered on the node.
    pub seconds: f64,
    /// How the node measured its draw.
    pub measured_by: String,
    /// The node's country (ISO 3166-1 alpha-2), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The node's Swedish price area, when in Sweden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_area: Option<String>,
    /// Grid carbon intensity used, gCO₂eq/kWh.
    pub carbon_intensity: GridFigure,
    /// `grid_wh / 1000 × carbon_intensity`.
    pub co2_grams: f64,
    /// Spot price used, SEK/kWh (Swedish price areas only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_price: Option<GridFigure>,
    /// `grid_wh / 1000 × spot_price`, SEK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_sek: Option<f64>,
    /// The green bonus paid to the node for the solar share, µGAI.
    pub green_bonus_ugai: i64,
    /// RFC 3339.
    pub recorded_at: String,
}
