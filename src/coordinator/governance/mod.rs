//! Community governance (issue 12): proposals that change a parameter,
//! mint GAI or only signal an opinion; voting power frozen from the ledger
//! when a proposal opens (balance-weighted: README "Governance" says why);
//! votes by API key or signed by a node, one per voter (a second replaces
//! the first until the deadline); the tally at the deadline by a sweep that
//! any number of replicas run at once. `api` holds the wire types, `rules`
//! the checks, `tally` the verdict (pure), `store` and `votes` the tables,
//! `sweep` the tally in the store, `routes` and `node_routes` the API,
//! `client` and `cli` `garage proposal`.

pub mod api;
pub mod cli;
pub mod client;
pub mod node_routes;
pub mod routes;
pub mod rules;
pub mod store;
pub mod sweep;
pub mod tally;
pub mod votes;
