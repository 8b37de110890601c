//! Where a node counts in `GET /api/regions`, pure: its country, its
//! Swedish price area (declared, else derived from its coordinates with
//! the committed SE1–SE4 polygons), and its grid cell — the clustering of
//! nearby nodes: a fixed grid of [`CELL_DEGREES`] of latitude by as much
//! longitude (about 55 km north–south, 28 km east–west at 60° N), named
//! by its south-west corner ("59.0,18.0"). A fixed grid needs no state
//! and no pass over the other nodes, so a node's cell is known the moment
//! it registers and a region is one GROUP BY. Empty strings stand for
//! "unknown" in the stored key.

use super::super::nodes::api::{GpuInfo, Location};
use crate::geo::{self, PriceArea};

/// The side of a grid cell, degrees.
pub const CELL_DEGREES: f64 = 0.5;

/// A node's region key as stored in `node_regions`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RegionKey {
    /// ISO 3166-1 alpha-2, upper case; '' when unknown.
    pub country: String,
    /// SE1–SE4; '' outside Sweden or when unknown.
    pub price_area: String,
    /// The grid cell; '' without coordinates.
    pub cell: String,
}

fn coordinates(location: &Location) -> Option<(f64, f64)> {
    let (lat, lon) = (location.latitude?, location.longitude?);
    let valid = lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon);
    valid.then_some((lat, lon))
}

/// The cell of a point.
pub fn cell_of(latitude: f64, longitude: f64) -> String {
    let corner = |degrees: f64| (degrees / CELL_DEGREES).floor() * CELL_DEGREES;
    format!("{:.1},{:.1}", corner(latitude), corner(longitude))
}

/// The region key of a node at `location`.
pub fn region_key(location: &Location) -> RegionKey {
    let point = coordinates(location);
    let derived = point.and_then(|(lat, lon)| geo::price_area_at(lat, lon));
    let mut country = location
        .country
        .as_deref()
        .map(str::to_ascii_uppercase)
        .filter(|code| geo::is_country(code))
        .unwrap_or_default();
    if country.is_empty() && derived.is_some() {
        country = "SE".into();
    }
    let declared = location
        .region
        .as_deref()
        .and_then(|region| region.parse::<PriceArea>().ok());
    let price_area = if country == "SE" {
        declared
            .or(derived)
            .map(|a| a.to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    RegionKey {
        country,
        price_area,
        cell: point
            .map(|(lat, lon)| cell_of(lat, lon))
            .unwrap_or_default(),
    }
}

/// What a node adds to its region's capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub gpus: i64,
    pub vram_mib: i64,
    /// Decode tokens/s of its benchmark's inference probe; 0 without one.
    pub tokens_per_second: f64,
}

/// The capacity of a node with `gpus` and benchmark report `benchmark`
/// (`garage benchmark --json`: `inference.decode_tokens_per_s`).
pub fn capacity(gpus: &[GpuInfo], benchmark: Option<&serde_json::Value>) -> Capacity {
    let vram_bytes: u64 = gpus.iter().map(|g| g.memory_total_bytes).sum();
    let tokens_per_second = benchmark
        .and_then(|b| b.pointer("/inference/decode_tokens_per_s"))
        .and_then(serde_json::Value::as_f64)
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(0.0);
    Capacity {
        gpus: i64::try_from(gpus.len()).unwrap_or(i64::MAX),
        vram_mib: i64::try_from(vram_bytes / (1024 * 1024)).unwrap_or(i64::MAX),
        tokens_per_second,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(country: Option<&str>, region: Option<&str>, point: Option<(f64, f64)>) -> Location {
        Location {
            country: country.map(Into::into),
            region: region.map(Into::into),
            latitude: point.map(|p| p.0),
            longitude: point.map(|p| p.1),
        }
    }

    fn key(country: &str, price_area: &str, cell: &str) -> RegionKey {
        RegionKey {
            country: country.into(),
            price_area: price_area.into(),
            cell: cell.into(),
        }
    }

    #[test]
    fn nodes_fall_into_country_area_and_cell() {
        let stockholm = Some((59.33, 18.07));
        assert_eq!(
            region_key(&at(Some("SE"), Some("SE3"), stockholm)),
            key("SE", "SE3", "59.0,18.0")
        );
        // Derived from the coordinates; the country too.
        assert_eq!(
            region_key(&at(None, None, Some((67.86, 20.23)))),
            key("SE", "SE1", "67.5,20.0")
        );
        assert_eq!(
            region_key(&at(Some("se"), None, Some((55.60, 13.00)))),
            key("SE", "SE4", "55.5,13.0")
        );
        // A price area means nothing outside Sweden.
        assert_eq!(
            region_key(&at(Some("DE"), Some("SE3"), Some((52.52, 13.40)))),
            key("DE", "", "52.5,13.0")
        );
        assert_eq!(region_key(&at(None, None, None)), key("", "", ""));
        assert_eq!(
            region_key(&at(Some("XX"), None, Some((91.0, 0.0)))),
            key("", "", "")
        );
        assert_eq!(cell_of(-33.87, 151.21), "-34.0,151.0");
    }

    #[test]
    fn capacity_comes_from_gpus_and_the_benchmark() {
        let gpu = GpuInfo {
            name: "NVIDIA GeForce RTX 4090".into(),
            memory_total_bytes: 24 << 30,
            uuid: None,
        };
        let benchmark =
            serde_json::json!({"inference": {"status": "measured", "decode_tokens_per_s": 181.5}});
        assert_eq!(
            capacity(&[gpu.clone(), gpu], Some(&benchmark)),
            Capacity {
                gpus: 2,
                vram_mib: 49_152,
                tokens_per_second: 181.5
            }
        );
        let skipped = serde_json::json!({"inference": {"status": "skipped", "reason": "no model"}});
        assert_eq!(capacity(&[], Some(&skipped)).tokens_per_second, 0.0);
        assert_eq!(capacity(&[], None).gpus, 0);
    }
}
