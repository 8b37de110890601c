//! Golden error messages: each names file, line, column, field and fix.

use crate::spec::test_support::{error_of, parse_text, EXAMPLE, HEAD};

fn with_spec(body: &str) -> String {
    format!("{HEAD}{body}")
}

#[test]
fn invalid_yaml_syntax() {
    let text = with_spec("  containers:\n    - name: a\n     image: b\n");
    assert_eq!(error_of(&text),
        "node.yaml:8:6: invalid YAML: while parsing a block collection, did not find expected '-' indicator (fix: check indentation, colons and quotes around this position)"
    );
}

#[test]
fn unknown_field_at_depth() {
    let text = with_spec(
        "  containers:\n    - name: a\n      image: busybox\n      ports:\n        - containerPort: 80\n          hostPortt: 8080\n",
    );
    assert_eq!(error_of(&text),
        "node.yaml:11:11: spec.containers[0].ports[0].hostPortt: unknown field `hostPortt`, expected one of `containerPort`, `hostPort`, `hostIP`, `protocol` (fix: check the spelling; manifests/node.schema.json lists every field)"
    );
}

#[test]
fn unknown_field_in_example() {
    let text = EXAMPLE.replace(
        "      image: garage-test/busybox:1",
        "      imagee: garage-test/busybox:1",
    );
    assert_eq!(error_of(&text),
        "node.yaml:58:7: spec.containers[0].imagee: unknown field `imagee`, expected one of `name`, `image`, `entrypoint`, `command`, `env`, `ports`, `mounts`, `gpu`, `privileged`, `capabilities`, `securityOpt`, `devices`, `healthCheck`, `restartPolicy`, `resources` (fix: check the spelling; manifests/node.schema.json lists every field)"
    );
}

#[test]
fn wrong_type() {
    let text = with_spec("  worker:\n    model:\n      path: /models/m.gguf\n    port: http\n");
    assert_eq!(error_of(&text),
        "node.yaml:9:11: spec.worker.port: invalid type: string \"http\", expected u16 (fix: write a value of the expected type; quote numbers and booleans meant as text)"
    );
}

#[test]
fn missing_field() {
    let text = with_spec("  containers:\n    - name: a\n");
    assert_eq!(
        error_of(&text),
        "node.yaml:7:7: spec.containers[0]: missing field `image` (fix: add `image`)"
    );
}

#[test]
fn bad_port() {
    let text = with_spec(
        "  containers:\n    - name: a\n      image: busybox\n      ports:\n        - containerPort: 80\n          hostPort: 0\n",
    );
    assert_eq!(error_of(&text),
        "node.yaml:11:21: spec.containers[0].ports[0].hostPort: port must be 1-65535, got 0 (fix: pick a port from 1 to 65535)"
    );
}

#[test]
fn duplicate_names() {
    let text = with_spec(
        "  containers:\n    - name: a\n      image: busybox\n    - name: a\n      image: busybox\n",
    );
    assert_eq!(error_of(&text),
        "node.yaml:9:13: spec.containers[1].name: the name `a` is already used by spec.containers[0] (fix: give every container a unique name)"
    );
}

#[test]
fn reserved_name() {
    let text = with_spec("  containers:\n    - name: worker\n      image: busybox\n");
    assert_eq!(error_of(&text),
        "node.yaml:7:13: spec.containers[0].name: the name `worker` is reserved for the node's own component (fix: choose another name)"
    );
}

#[test]
fn bad_quantity() {
    let text = EXAMPLE.replace("memory: 4Gi", "memory: 16Gx");
    assert_eq!(error_of(&text),
        "node.yaml:54:15: spec.worker.resources.memory: invalid quantity `16Gx`: unknown unit `Gx` (fix: write e.g. 512Mi, 16Gi, 1G, 500M or plain bytes)"
    );
}

#[test]
fn bad_image_reference() {
    let text = with_spec("  containers:\n    - name: a\n      image: Busy Box:latest\n");
    assert_eq!(error_of(&text),
        "node.yaml:8:14: spec.containers[0].image: `Busy Box:latest` is not an image reference: path components are lowercase letters and digits separated by `.`, `_`, `__` or `-` (fix: write e.g. `busybox:1.36` or `registry.example.org/team/app:1.0`)"
    );
}

#[test]
fn price_area_outside_sweden() {
    let text = EXAMPLE.replace("country: SE", "country: DE");
    assert_eq!(error_of(&text),
        "node.yaml:16:16: spec.location.priceArea: price area SE3 is Swedish but the country is DE (fix: remove `priceArea` or set `country: SE`)"
    );
}

#[test]
fn unknown_enum_value() {
    let text = EXAMPLE.replace("source: mixed", "source: wind");
    assert_eq!(error_of(&text),
        "node.yaml:21:13: spec.power.source: unknown variant `wind`, expected one of `grid`, `solar`, `mixed` (fix: use one of the listed values; they are case-sensitive)"
    );
}

#[test]
fn bad_duration() {
    let text = EXAMPLE.replace("max: 5m", "max: 5 minutes");
    assert_eq!(error_of(&text),
        "node.yaml:31:12: spec.reconcile.backoff.max: invalid duration `5 minutes`: unknown unit ` minutes` (fix: write a duration like 500ms, 10s, 5m or 1h30m)"
    );
}

#[test]
fn empty_file() {
    assert_eq!(
        error_of(""),
        "node.yaml:1:1: invalid YAML: the file holds no document (fix: write a Node spec)"
    );
}

#[test]
fn wrong_api_version() {
    let text = EXAMPLE.replace("garage.ai/v1alpha1", "garage.ai/v1");
    assert_eq!(error_of(&text),
        "node.yaml:5:13: apiVersion: unknown variant `garage.ai/v1`, expected `garage.ai/v1alpha1` (fix: use one of the listed values; they are case-sensitive)"
    );
}

#[test]
fn privileged_with_capabilities() {
    let text = EXAMPLE.replace("privileged: false", "privileged: true");
    assert_eq!(
        error_of(&text),
        "node.yaml:36:5: spec.podman.capabilities: `privileged: true` already grants every capability (fix: remove `capabilities` or set `privileged: false`)"
    );
}

#[test]
fn host_port_clash_with_worker() {
    let text = EXAMPLE.replace("hostPort: 19100", "hostPort: 8000");
    assert_eq!(
        error_of(&text),
        "node.yaml:62:21: spec.containers[0].ports[0].hostPort: host port 8000 is already bound by spec.worker.port (fix: choose another hostPort)"
    );
}

#[test]
fn bad_label_key_points_at_the_key() {
    let text = EXAMPLE.replace(
        "    fleet: stockholm",
        "    fleet: stockholm\n    garage.ai/owner: me",
    );
    assert_eq!(
        error_of(&text),
        "node.yaml:11:5: metadata.labels.garage.ai/owner: label key `garage.ai/owner` uses the reserved prefix `garage.ai/` (fix: use a key like `fleet` or `example.com/fleet`)"
    );
}

#[test]
fn resync_period_past_the_maximum() {
    // Validated before, then `garage run` panicked adding it to an Instant.
    let text = EXAMPLE.replace("resyncPeriod: 30s", "resyncPeriod: 18446744073709551615s");
    assert_eq!(
        error_of(&text),
        "node.yaml:28:19: spec.reconcile.resyncPeriod: `18446744073709551615s` (584942417355y) is longer than the maximum 24h (fix: write a duration from 100ms to 24h)"
    );
}

#[test]
fn backoff_past_the_maximum() {
    let text = EXAMPLE.replace("max: 5m", "max: 100000h");
    assert_eq!(
        error_of(&text),
        "node.yaml:31:12: spec.reconcile.backoff.max: `100000h` (11y) is longer than the maximum 24h (fix: write a duration from 100ms to 24h)"
    );
}

#[test]
fn health_check_interval_out_of_range() {
    let text = EXAMPLE.replace("interval: 10s", "interval: 0ms");
    assert_eq!(
        error_of(&text),
        "node.yaml:67:19: spec.containers[0].healthCheck.interval: `0ms` is shorter than the minimum 1ms (fix: write a duration from 1ms to 24h)"
    );
    let text = EXAMPLE.replace("timeout: 3s", "timeout: 25h");
    assert_eq!(
        error_of(&text),
        "node.yaml:68:18: spec.containers[0].healthCheck.timeout: `25h` (25h) is longer than the maximum 24h (fix: write a duration from 1ms to 24h)"
    );
}

#[test]
fn wildcard_and_loopback_on_the_same_host_port() {
    let text = with_spec(
        "  containers:\n    - name: a\n      image: busybox\n      ports:\n        - containerPort: 80\n          hostPort: 8080\n          hostIP: 0.0.0.0\n    - name: b\n      image: busybox\n      ports:\n        - containerPort: 80\n          hostPort: 8080\n          hostIP: 127.0.0.1\n",
    );
    assert_eq!(
        error_of(&text),
        "node.yaml:17:21: spec.containers[1].ports[0].hostPort: host port 8080 is already bound by spec.containers[0].ports[0].hostPort on 0.0.0.0 (overlaps 127.0.0.1) (fix: choose another hostPort)"
    );
}

#[test]
fn same_host_port_on_other_protocol_or_address_is_fine() {
    let text = with_spec(
        "  containers:\n    - name: a\n      image: busybox\n      ports:\n        - containerPort: 53\n          hostIP: 127.0.0.1\n        - containerPort: 53\n          protocol: UDP\n        - containerPort: 53\n          hostIP: 127.0.0.2\n",
    );
    parse_text(&text).expect("no overlap");
}

#[test]
fn host_port_of_the_agents_metrics_endpoint() {
    let text = EXAMPLE.replace("hostPort: 19100", "hostPort: 9464");
    assert_eq!(
        error_of(&text),
        "node.yaml:62:21: spec.containers[0].ports[0].hostPort: host port 9464 is already bound by spec.metrics.listen (the agent's metrics endpoint) (fix: choose another hostPort)"
    );
}

#[test]
fn worker_port_of_the_agents_metrics_endpoint() {
    let text = EXAMPLE.replace("port: 8000", "port: 9464");
    assert_eq!(
        error_of(&text),
        "node.yaml:50:11: spec.worker.port: host port 9464 is already bound by spec.metrics.listen (the agent's metrics endpoint) (fix: choose another port)"
    );
}

#[test]
fn env_value_over_the_kernels_string_limit() {
    // 10 MB was accepted and crash-looped with "argument list too long".
    let big = "x".repeat(128 << 10);
    let text = EXAMPLE.replace("RUST_LOG: info", &format!("RUST_LOG: {big}"));
    assert_eq!(
        error_of(&text),
        "node.yaml:52:17: spec.worker.env.RUST_LOG: `RUST_LOG=…` is 131081 bytes, over the kernel's limit of 131071 bytes for one environment string (128 KiB with its NUL) (fix: pass large data in a file (a mount) instead of the environment)"
    );
}

#[test]
fn env_over_the_total_limit() {
    // Aliases make a small file hold a large environment.
    let value = "x".repeat(100 << 10);
    let env: String = (1..11).map(|i| format!("        V{i:02}: *v\n")).collect();
    let text = with_spec(&format!(
        "  containers:\n    - name: a\n      image: busybox\n      env:\n        V00: &v {value}\n{env}"
    ));
    assert_eq!(
        error_of(&text),
        "node.yaml:20:14: spec.containers[0].env.V10: the environment up to `V10` is 1126455 bytes, over the limit of 1048576 bytes (1 MiB) for one container (fix: pass large data in a file (a mount) instead of the environment)"
    );
}
