//! The nodes domain: registration, signed heartbeats and their history,
//! liveness, markets (GPU classes), and admission of new node ids (join
//! tokens, open registration, tombstones). Other domains reach it through
//! its functions (e.g. [`store`]'s node lookups), never its tables.

/// The columns `store::node_view` reads, for `concat!` in queries.
macro_rules! node_columns {
    () => {
        "node_id, state, market, public_key, country, region, latitude, longitude, gpu_info, \
         benchmark, registered_at, last_seen_at, heartbeat_seq, observed_generation, ready, name, spec_revision"
    };
}

pub mod admission;
pub mod admission_rules;
pub mod api;
pub mod heartbeat_writer;
pub mod heartbeats;
pub mod join_token_store;
pub mod join_tokens;
pub mod liveness;
pub mod markets;
pub mod pages;
pub mod routes;
pub mod store;
pub mod token_cli;
pub mod token_routes;
