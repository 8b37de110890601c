//! The node's energy: solar production (the clear-sky `solar` model or a
//! local inverter), the node's power draw (NVML per GPU, RAPL for the CPU,
//! else an estimate), the monitor that samples both for `/status`,
//! `/metrics` and heartbeats, the energy each network job used, and the
//! `solar-only` claim gate. Knows nothing of the reconcile loop.

pub mod solar;
