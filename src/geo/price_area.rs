//! The Swedish electricity price areas (elområden) SE1–SE4 and the price
//! area a point in Sweden lies in, from the coarse polygons committed in
//! `se_price_areas.geojson` (its `source` member says where they come from
//! and how coarse they are).

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::polygon::{self, LonLat};

/// The four Swedish electricity price areas, north to south.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum PriceArea {
    SE1,
    SE2,
    SE3,
    SE4,
}

impl PriceArea {
    pub const ALL: [PriceArea; 4] = [
        PriceArea::SE1,
        PriceArea::SE2,
        PriceArea::SE3,
        PriceArea::SE4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PriceArea::SE1 => "SE1",
            PriceArea::SE2 => "SE2",
            PriceArea::SE3 => "SE3",
            PriceArea::SE4 => "SE4",
        }
    }
}

impl fmt::Display for PriceArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not `SE1`..`SE4`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Swedish price area (SE1, SE2, SE3 or SE4)")]
pub struct NotAPriceArea(pub String);

impl FromStr for PriceArea {
    type Err = NotAPriceArea;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PriceArea::ALL
            .into_iter()
            .find(|area| area.as_str() == text)
            .ok_or_else(|| NotAPriceArea(text.to_owned()))
    }
}

/// The committed polygons (GeoJSON, one Polygon feature per area).
const POLYGONS: &str = include_str!("se_price_areas.geojson");

#[derive(Deserialize)]
struct Collection {
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct Feature {
    properties: Properties,
    geometry: Geometry,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Properties {
    price_area: PriceArea,
}

#[derive(Deserialize)]
struct Geometry {
    /// Outer ring first; the areas have no holes.
    coordinates: Vec<Vec<LonLat>>,
}

/// Each area's outline (outer ring, `[longitude, latitude]`), for
/// point-in-polygon tests and for drawing the map.
pub fn outlines() -> &'static [(PriceArea, Vec<LonLat>)] {
    static AREAS: OnceLock<Vec<(PriceArea, Vec<LonLat>)>> = OnceLock::new();
    AREAS.get_or_init(|| {
        // The file is part of the source; `polygons_parse` checks it.
        let collection: Collection = serde_json::from_str(POLYGONS).unwrap_or(Collection {
            features: Vec::new(),
        });
        collection
            .features
            .into_iter()
            .filter_map(|f| {
                let ring = f.geometry.coordinates.into_iter().next()?;
                Some((f.properties.price_area, ring))
            })
            .collect()
    })
}

/// The price area of a point in Sweden; `None` outside the polygons (not
/// in Sweden, or beyond their coarse coasts and borders).
pub fn price_area_at(latitude: f64, longitude: f64) -> Option<PriceArea> {
    outlines()
        .iter()
        .find(|(_, ring)| polygon::contains(ring, [longitude, latitude]))
        .map(|(area, _)| *area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_parse_one_ring_per_area_and_name_their_source() {
        let value: serde_json::Value = serde_json::from_str(POLYGONS).expect("valid JSON");
        let source = value["source"].as_str().expect("a source member");
        assert!(source.contains("Svenska kraftnät"), "{source}");
        let found: Vec<PriceArea> = outlines().iter().map(|(area, _)| *area).collect();
        assert_eq!(found, PriceArea::ALL);
        assert!(outlines().iter().all(|(_, ring)| ring.len() > 10));
    }

    #[test]
    fn towns_fall_in_their_price_areas() {
        let towns = [
            ("Kiruna", 67.86, 20.23, PriceArea::SE1),
            ("Luleå", 65.58, 22.15, PriceArea::SE1),
            ("Skellefteå", 64.75, 20.95, PriceArea::SE1),
            ("Umeå", 63.83, 20.26, PriceArea::SE2),
            ("Östersund", 63.18, 14.64, PriceArea::SE2),
            ("Sundsvall", 62.39, 17.31, PriceArea::SE2),
            ("Gävle", 60.67, 17.14, PriceArea::SE3),
            ("Stockholm", 59.33, 18.07, PriceArea::SE3),
            ("Göteborg", 57.71, 11.97, PriceArea::SE3),
            ("Visby", 57.64, 18.29, PriceArea::SE3),
            ("Jönköping", 57.78, 14.16, PriceArea::SE3),
            ("Halmstad", 56.67, 12.86, PriceArea::SE4),
            ("Växjö", 56.88, 14.81, PriceArea::SE4),
            ("Kalmar", 56.66, 16.36, PriceArea::SE4),
            ("Malmö", 55.60, 13.00, PriceArea::SE4),
        ];
        for (town, lat, lon, area) in towns {
            assert_eq!(price_area_at(lat, lon), Some(area), "{town}");
        }
        for (city, lat, lon) in [
            ("Oslo", 59.91, 10.75),
            ("Copenhagen", 55.68, 12.57),
            ("Helsinki", 60.17, 24.94),
            ("Trondheim", 63.43, 10.39),
            ("Mariehamn", 60.10, 19.93),
            ("Berlin", 52.52, 13.40),
        ] {
            assert_eq!(price_area_at(lat, lon), None, "{city}");
        }
    }

    #[test]
    fn names_round_trip() {
        for area in PriceArea::ALL {
            assert_eq!(area.as_str().parse::<PriceArea>(), Ok(area));
            assert_eq!(
                serde_json::to_value(area).expect("serialises"),
                area.as_str()
            );
        }
        assert!("SE5".parse::<PriceArea>().is_err());
    }
}
