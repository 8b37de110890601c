//! Market qualification (issue 11 item 8): a market may require a short
//! inference job whose greedy answer and speed the coordinator checks
//! before a node of that market takes the market's jobs. `api` holds the
//! types, `check` the verdict, `store` the tables and the gated claim,
//! `routes` the admin API, `cli` `garage market qualification`.

pub mod api;
pub mod check;
pub mod cli;
pub mod routes;
pub mod store;
