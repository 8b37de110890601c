//! Garage AI: the node agent that converges a Docker host to `node.yaml`,
//! and the parts of the network built on it.

pub mod agent;
pub mod backoff;
pub mod benchmark;
pub mod clock;
pub mod coordinator;
pub mod coordinator_link;
pub mod document;
pub mod energy;
pub mod error_text;
pub mod gateway_link;
pub mod gc;
pub mod geo;
pub mod gitops;
pub mod gpu;
pub mod http_server;
pub mod identity;
pub mod inference;
pub mod jobs;
pub mod meminfo;
pub mod metrics;
pub mod node;
pub mod reconcile;
pub mod runtime;
pub mod spec;
pub mod supervisor;
pub mod watch;
pub mod work;
