//! Validating `spec.gateway` together with what it depends on (the
//! coordinator, the worker) into [`GatewaySettings`].

use crate::document::Checker;

use super::gateway::{GatewaySettings, DEFAULT_SLOTS, MAX_SLOTS};
use super::types::NodeDocument;
use super::SpecError;

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
