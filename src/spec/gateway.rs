//! `spec.gateway`: whether the node serves the network's OpenAI gateway
//! over its link to the coordinator, which worker answers, and how many
//! requests it takes at once. The document type, its validation with
//! locations, and the validated [`GatewaySettings`] the agent's gateway
//! link reads. The link itself is `crate::gateway_link`'s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::document::Checker;

use super::types::NodeDocument;
use super::SpecError;

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

/// Validates `spec.gateway` together with the coordinator and the worker.
pub(super) fn gateway_settings(
    c: &Checker<'_>,
    doc: &NodeDocument,
) -> Result<GatewaySettings, SpecError> {
    let spec = &doc.spec;
    let gateway = spec.gateway.clone().unwrap_or_default();
    let slots = gateway.slots.unwrap_or(DEFAULT_SLOTS);
    if !(1..=MAX_SLOTS).contains(&slots) {
        return Err(c.invalid(
            "spec.gateway.slots",
            format!("requests at once must be 1 to {MAX_SLOTS}, got {slots}"),
            "write 1 or more, e.g. the worker's batch size",
        ));
    }
    let worker_url = match &gateway.worker_url {
        Some(url) => Some(worker_url(c, url)?),
        None => spec
            .worker
            .as_ref()
            .filter(|w| w.enabled)
            .map(|w| format!("http://127.0.0.1:{}", w.port)),
    };
    if gateway.serve {
        if spec.coordinator.is_none() {
            return Err(c.invalid(
                "spec.gateway.serve",
                "the gateway's link goes to a coordinator, and spec.coordinator is missing",
                "add spec.coordinator.url, or set `serve: false`",
            ));
        }
        if worker_url.is_none() {
            return Err(c.invalid(
                "spec.gateway.serve",
                "no worker answers: spec.worker is missing or disabled and spec.gateway.workerUrl is not set",
                "add spec.worker, or set spec.gateway.workerUrl to an OpenAI-compatible server, or set `serve: false`",
            ));
        }
    }
    Ok(GatewaySettings {
        serve: gateway.serve,
        worker_url,
        slots,
    })
}

/// An `http(s)://host[:port][/path]` URL, without a trailing `/`.
fn worker_url(c: &Checker<'_>, url: &str) -> Result<String, SpecError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(host)
            if !host.is_empty()
                && !host.contains(char::is_whitespace)
                && !url.contains(['?', '#']) =>
        {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(c.invalid(
            "spec.gateway.workerUrl",
            format!("`{url}` is not an http(s) URL without query or fragment"),
            "write the worker's base URL, e.g. http://127.0.0.1:8000",
        )),
    }
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
