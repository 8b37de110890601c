//! The network's OpenAI endpoint. Nodes hold one outbound link each
//! (`frames` is its wire format, `link_route` the signed WebSocket that
//! opens one, `links` the open links and their requests); clients call
//! `routes` with an API key, and each request is parsed (`ask`), admitted
//! by its account's `limits`, given a node (`choose`), held and settled
//! through the ledger (`billing`, `bill`), sent and retried (`relay`), and
//! answered whole or streamed (`sse`, `stream`), counted in `metrics`,
//! with OpenAI-shaped errors (`error`); `state` is what handlers share.

pub mod ask;
pub mod bill;
pub mod billing;
pub mod choose;
pub mod error;
pub mod frames;
pub mod limits;
pub mod link_route;
pub mod links;
pub mod metrics;
pub mod relay;
pub mod routes;
pub mod sse;
pub mod state;
pub mod stream;
pub mod sweep;
pub mod views;
