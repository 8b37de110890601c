//! The network's parameters: a fixed, typed set (network fee, prices per
//! market per second, heartbeat interval, offline-after, qualification
//! minimums, the green bonus, and governance's own quorum, threshold and
//! voting period), each an integer with a range and a default. Values are
//! scheduled (`store`): the admin or a passed proposal sets a value that
//! takes effect at a stated time, and every reader asks for the value live
//! at its `now`.

pub mod api;
pub mod names;
pub mod routes;
pub mod store;

pub use names::{Parameter, ParameterError};
pub use store::Parameters;
