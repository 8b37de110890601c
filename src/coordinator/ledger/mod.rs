//! The GAI ledger: double entry in the coordinator's database instead of
//! a chain. Accounts (`account`) are the issuer, the treasury, clients,
//! nodes and one escrow account per held job; amounts are integers in µGAI.
//! Transfers are immutable and keyed by a unique id (a retried request has
//! one effect); a job's bill (`cost`, pure) is held at submission and
//! settled or voided exactly once, in the same database transaction as the
//! job transition that causes it (`store`, `settle`); the green bonus for a
//! job's solar share comes from the treasury (`green`). `audit` checks every
//! invariant, `audit_sweep` runs it every minute for the metrics; `recent`
//! reads the top balances and newest transfers for the dashboard; `routes`,
//! `client` and `cli` are the API and `garage ledger`.

pub mod account;
pub mod api;
pub mod audit;
pub mod audit_sweep;
pub mod cli;
pub mod client;
pub mod cost;
pub mod green;
pub mod recent;
pub mod routes;
pub mod settle;
pub mod store;

pub use account::LedgerAccount;
pub use store::LedgerError;
