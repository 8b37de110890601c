//! The built-in grid figures, used when no API is configured and when a
//! configured one fails. Published yearly averages, cited here and in the
//! README:
//!
//! - Carbon intensity of SE1–SE4: production-based lifecycle intensities
//!   for 2025 (ENTSO-E Transparency Platform, actual generation per
//!   production type (A75) per bidding zone, weighted by the IPCC AR5
//!   WG3 Annex III lifecycle medians: hydro 24, wind 11, nuclear 12, solar
//!   48, gas 490 gCO₂eq/kWh), as compiled for CodeCarbon's Nordic emission
//!   factors (mlco2/codecarbon pull request 1262): SE1 20.6, SE2 20.1,
//!   SE3 14.5, SE4 17.4 gCO₂eq/kWh. Production-based: imports into SE4
//!   (consumption-based figures such as Electricity Maps' are higher there)
//!   are not counted; configure the carbon API for live values.
//! - Other countries: the EU-27 average greenhouse-gas intensity of
//!   electricity generation, about 200 gCO₂eq/kWh in 2023 (European
//!   Environment Agency indicator "Greenhouse gas emission intensity of
//!   electricity generation": 19 % below 2022).
//! - Spot prices of SE1–SE4: Nord Pool day-ahead yearly averages for 2023,
//!   excluding VAT (SE1 0.457, SE2 0.457, SE3 0.592, SE4 0.744 SEK/kWh, as
//!   tabulated by elpriser24.se/spotpris). Other countries have no price.

use super::zone::GridZone;
use crate::geo::PriceArea;

/// The EU-27 figure used for every zone without its own.
pub const OTHER_INTENSITY_G_PER_KWH: f64 = 200.0;

/// gCO₂eq/kWh of grid power in `zone`.
pub fn intensity_g_per_kwh(zone: &GridZone) -> f64 {
    match zone {
        GridZone::Area(PriceArea::SE1) => 20.6,
        GridZone::Area(PriceArea::SE2) => 20.1,
        GridZone::Area(PriceArea::SE3) => 14.5,
        GridZone::Area(PriceArea::SE4) => 17.4,
        GridZone::Country(_) | GridZone::Unknown => OTHER_INTENSITY_G_PER_KWH,
    }
}

/// SEK/kWh of grid power in `zone`; `None` outside Sweden's price areas.
pub fn price_sek_per_kwh(zone: &GridZone) -> Option<f64> {
    match zone {
        GridZone::Area(PriceArea::SE1) => Some(0.457),
        GridZone::Area(PriceArea::SE2) => Some(0.457),
        GridZone::Area(PriceArea::SE3) => Some(0.592),
        GridZone::Area(PriceArea::SE4) => Some(0.744),
        GridZone::Country(_) | GridZone::Unknown => None,
    }
}
