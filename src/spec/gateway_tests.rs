//! `spec.gateway`: defaults, the worker URL, and golden errors.

use super::{GatewaySettings, DEFAULT_SLOTS, MAX_SLOTS};
use crate::spec::test_support::{error_of, parse_text, EXAMPLE, HEAD};

const COORDINATOR: &str = "  coordinator:\n    url: http://127.0.0.1:7070\n";
const WORKER: &str = "  worker:\n    model:\n      path: /models/m.gguf\n    port: 8123\n";

fn settings(body: &str) -> GatewaySettings {
    parse_text(&format!("{HEAD}{body}"))
        .unwrap_or_else(|err| panic!("{err}"))
        .gateway()
        .clone()
}

#[test]
fn by_default_no_serving_eight_slots_and_the_worker_on_localhost() {
    assert_eq!(
        settings(&format!("{COORDINATOR}{WORKER}")),
        GatewaySettings {
            serve: false,
            worker_url: Some("http://127.0.0.1:8123".into()),
            slots: DEFAULT_SLOTS,
        }
    );
    assert_eq!(settings(COORDINATOR).worker_url, None);
    let example = parse_text(EXAMPLE).expect("examples/node.yaml is valid");
    assert_eq!(
        example.gateway().worker_url.as_deref(),
        Some("http://127.0.0.1:8000")
    );
}

#[test]
fn serving_takes_the_written_url_and_slots() {
    let gateway = settings(&format!(
        "{COORDINATOR}{WORKER}  gateway:\n    serve: true\n    workerUrl: https://gpu-box.lan:9000/\n    slots: 256\n"
    ));
    assert_eq!(
        gateway,
        GatewaySettings {
            serve: true,
            worker_url: Some("https://gpu-box.lan:9000".into()),
            slots: MAX_SLOTS,
        }
    );
    // A worker elsewhere needs no spec.worker.
    let remote = settings(&format!(
        "{COORDINATOR}  gateway: {{serve: true, workerUrl: \"http://10.0.0.5:8000\"}}\n"
    ));
    assert_eq!(remote.worker_url.as_deref(), Some("http://10.0.0.5:8000"));
    assert!(remote.serve);
}

#[test]
fn serving_needs_a_coordinator_and_a_worker() {
    assert_eq!(
        error_of(&format!("{HEAD}{WORKER}  gateway:\n    serve: true\n")),
        "node.yaml:11:12: spec.gateway.serve: the gateway's link goes to a coordinator, and spec.coordinator is missing (fix: add spec.coordinator.url, or set `serve: false`)"
    );
    assert_eq!(
        error_of(&format!("{HEAD}{COORDINATOR}  gateway:\n    serve: true\n")),
        "node.yaml:9:12: spec.gateway.serve: no worker answers: spec.worker is missing or disabled and spec.gateway.workerUrl is not set (fix: add spec.worker, or set spec.gateway.workerUrl to an OpenAI-compatible server, or set `serve: false`)"
    );
}

#[test]
fn bad_slots_urls_and_fields_are_located() {
    assert_eq!(
        error_of(&format!("{HEAD}{WORKER}  gateway:\n    slots: 0\n")),
        "node.yaml:11:12: spec.gateway.slots: requests at once must be 1 to 256, got 0 (fix: write 1 or more, e.g. the worker's batch size)"
    );
    assert_eq!(
        error_of(&format!("{HEAD}{WORKER}  gateway:\n    workerUrl: ftp://x\n")),
        "node.yaml:11:16: spec.gateway.workerUrl: `ftp://x` is not an http(s) URL without query or fragment (fix: write the worker's base URL, e.g. http://127.0.0.1:8000)"
    );
    assert!(
        error_of(&format!(
            "{HEAD}{WORKER}  gateway:\n    workerURL: http://x\n"
        ))
        .starts_with("node.yaml:11:5: spec.gateway.workerURL: unknown field"),
        "{}",
        error_of(&format!(
            "{HEAD}{WORKER}  gateway:\n    workerURL: http://x\n"
        ))
    );
}
