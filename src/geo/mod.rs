//! Pure geography: ISO 3166-1 country codes and EU membership (`country`),
//! the Swedish electricity price areas SE1–SE4 with the coarse polygons that
//! derive one from coordinates (`price_area`, data in
//! `se_price_areas.geojson`), and the point-in-polygon test they use
//! (`polygon`). A leaf: no I/O, no other module of the crate; the node spec
//! validates `spec.location` with it and the coordinator groups regions with
//! it.

pub mod country;
pub mod polygon;
pub mod price_area;

pub use country::{is_country, is_eu};
pub use price_area::{price_area_at, PriceArea};
