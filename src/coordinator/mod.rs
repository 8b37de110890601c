//! The coordinator (`garage coordinator`): registers nodes and takes their
//! signed heartbeats, takes clients' jobs and leases them to the nodes that
//! pull them, over an HTTP API described by OpenAPI. Storage is SQLite
//! (default, one coordinator) or PostgreSQL (any number of stateless
//! replicas). Organised by domain: `nodes`, `jobs`, `accounts`,
//! `qualification`, `parameters`, `ledger`, `governance`, `regions`,
//! `energy`, `gateway`, over the shared `http` and `store` layers; the web
//! `dashboard` shows them all; `server` wires them.

pub mod accounts;
pub mod api;
pub mod bearer_client;
pub mod cli;
pub mod client;
pub mod config;
pub mod dashboard;
pub mod energy;
pub mod gateway;
pub mod governance;
pub mod http;
pub mod jobs;
pub mod ledger;
pub mod metrics;
pub mod nodes;
pub mod openapi;
pub mod parameters;
pub mod qualification;
pub mod regions;
pub mod server;
pub mod store;

pub use cli::CoordinatorArgs;
pub use client::{ClientError, CoordinatorClient};
pub use config::CoordinatorConfig;
pub use server::{serve, serve_with_listener, CoordinatorError};
