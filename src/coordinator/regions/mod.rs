//! Regions (issue 13): where nodes are — country, Swedish price area
//! SE1–SE4, and clusters of nearby nodes on a fixed grid (`key`, pure) —
//! with each region's capacity, power and the energy of the jobs completed
//! there, kept in narrow columns and summed in SQL (`store`), nested
//! (`view`, pure) and served at `GET /api/regions` (`routes`, `api`).

pub mod api;
pub mod key;
pub mod routes;
pub mod store;
pub mod view;
