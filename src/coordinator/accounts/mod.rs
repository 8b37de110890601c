//! The accounts domain: clients of the network and their API keys
//! (`gk_<public id>_<secret>`, shown once, kept as the SHA-256 of the
//! secret). An admin creates, lists and revokes them; `http::api_key`
//! checks them on client endpoints through [`store`]'s lookup.

pub mod api;
pub mod cli;
pub mod keys;
pub mod routes;
pub mod store;
