//! The energy and CO₂ of every job (issue 13), at the coordinator: the
//! grid zone of a node (`zone`), the figures in use for it — built-in
//! yearly averages (`defaults`) or the configured carbon-intensity and
//! day-ahead price APIs (`carbon`, `price`, over a bounded `fetch`, cached
//! and falling back in `sources`; `calendar` for the Swedish date) — the
//! pure `footprint` of a node's report, and the completion hook
//! (`record`) that stores it (`store`) with the green bonus. The node
//! side (metering) is `crate::energy`.

pub mod api;
pub mod calendar;
pub mod carbon;
pub mod defaults;
pub mod fetch;
pub mod footprint;
pub mod price;
pub mod record;
pub mod sources;
pub mod store;
pub mod zone;

pub use record::EnergyRecorder;
pub use sources::{GridSourceConfig, GridSources};
