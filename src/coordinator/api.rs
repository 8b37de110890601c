//! The wire contract: every request and response body of the HTTP API,
//! defined by the domain that owns it and gathered here for the clients on
//! both sides (node agent, CLI) and for tests.

pub use super::accounts::api::*;
pub use super::http::error::{ErrorBody, ErrorDetail};
pub use super::jobs::api::*;
pub use super::nodes::api::*;
