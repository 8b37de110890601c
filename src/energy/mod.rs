//! The node's energy: solar production (the clear-sky `solar` model or a
//! local inverter), the node's power draw (NVML per GPU, RAPL for the CPU,
//! else an estimate), the monitor that samples both for `/status`,
//! `/metrics` and heartbeats, the energy each network job used, and the
//! `solar-only` claim gate. Shares only the status's condition type with the
//! reconcile loop, never the loop itself.

pub mod draw;
pub mod inverter;
pub mod meter;
pub mod monitor;
pub mod rapl;
pub mod solar;

pub use meter::JobEnergy;
pub use monitor::{EnergyMonitor, PowerStatus};
