//! `spec.gateway`: whether the node serves the network's OpenAI gateway
//! over its link to the coordinator, which worker answers, and how many
//! requests it takes at once. The document type and the validated
//! [`GatewaySettings`] the agent's gateway link reads (validation is
//! `gateway_settings`'). The link itself is `crate::gateway_link`'s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requests at once when `spec.gateway.slots` is not written.
pub const DEFAULT_SLOTS: u32 = 8;
/// The most requests a node may take at once (the link's `MAX_SLOTS`).
pub const MAX_SLOTS: u32 = 256;

/// Serving the network's OpenAI endpoint through this node's worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gateway {
    /// Serve the network's OpenAI gateway over an outbound link to
    /// `spec.coordinator` (default `false`).
    #[serde(default)]
    pub serve: bool,
    /// The OpenAI-compatible worker that answers, `http://` or `https://`
    /// (default `http://127.0.0.1:<spec.worker.port>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_url: Option<String>,
    /// Requests the node takes at once; more are refused (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub slots: Option<u32>,
}

/// `spec.gateway`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Serve over the link (only ever true with a coordinator and a worker URL).
    pub serve: bool,
    /// The worker's base URL without a trailing `/`; `None` only when
    /// nothing names a worker (then `serve` is false).
    pub worker_url: Option<String>,
    /// Requests at once, 1 to [`MAX_SLOTS`].
    pub slots: u32,
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
