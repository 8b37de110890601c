//! The worker's HTTP API driven by the official `openai` Python client
//! (tests/reference/openai_client_check.py) on a tiny random model:
//! completion, chat, streaming, errors, disconnects, 429s and metrics; then
//! the fuller API (openai_api_check.py: logprobs, penalties, logit_bias,
//! echo, token-id prompts, range checks, JSON errors, Retry-After, the
//! per-model metrics) and `promtool check metrics`.

mod common;

use std::time::Duration;

use common::worker::{self, http_get};
use garage::inference::{serve_with_listener, WorkerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_drives_the_worker() {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    common::make_tiny(&python, dir.path(), &[]);
    let worker = worker::serve(
        |addr| {
            let mut config = WorkerConfig::new(addr, dir.path().to_path_buf());
            config.max_batch = 2;
            config.queue_capacity = 2;
            config.model_name = Some("tiny-llama".into());
            config
        },
        Duration::from_secs(10),
    )
    .await;
    worker::run_check(&python, "openai_client_check.py", &worker.base()).await;
    worker::run_check(&python, "openai_api_check.py", &worker.base()).await;
    promtool_checks_the_metrics(worker.addr).await;
    worker.stop().await;
}

/// `promtool check metrics` on the worker's /metrics (skipped without
/// promtool unless `GARAGE_REQUIRE_PROMTOOL=1`).
async fn promtool_checks_the_metrics(addr: std::net::SocketAddr) {
    use std::io::Write;
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output();
    if found.is_err() {
        assert!(
            std::env::var_os("GARAGE_REQUIRE_PROMTOOL").is_none(),
            "GARAGE_REQUIRE_PROMTOOL is set but promtool is missing"
        );
        eprintln!("skipping promtool check metrics: no promtool");
        return;
    }
    let response = http_get(addr, "/metrics").await;
    let text = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn bad_model_path_is_an_error_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = WorkerConfig::new(addr, "/nonexistent/model".into());
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        serve_with_listener(listener, config, std::future::pending()),
    )
    .await
    .expect("returns");
    let err = result.expect_err("must fail");
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(text.contains("/nonexistent/model"), "{text}");
}
