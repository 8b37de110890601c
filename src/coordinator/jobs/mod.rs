//! The jobs domain: submission (container jobs checked like a job file,
//! inference requests), the queue per market, placement by pull (a node's
//! signed long-poll claim parks until a placement round gives it the job it
//! fits best, under a lease: `placement`),
//! leases as fencing tokens (renew, logs and complete carry the lease id),
//! the sweep that requeues or fails jobs whose lease expired, logs and
//! results bounded in size, and the user's client and CLI.

pub mod api;
pub mod cli;
pub mod client;
pub mod lease_routes;
pub mod lease_store;
pub mod log_routes;
pub mod log_store;
pub mod placement;
pub mod routes;
pub mod store;
pub mod submit;
pub mod sweep;
