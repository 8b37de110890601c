//! The worker's HTTP API driven by the official `openai` Python client
//! (tests/reference/openai_client_check.py) on a tiny random model:
//! completion, chat, streaming, errors, disconnects, 429s and metrics; then
//! the fuller API (openai_api_check.py: logprobs, penalties, logit_bias,
//! echo, token-id prompts, range checks, JSON errors, Retry-After, the
//! per-model metrics) and `promtool check metrics`.

mod common;

use std::time::Duration;

use garage::inference::{serve_with_listener, WorkerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_drives_the_worker() {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    common::make_tiny(&python, dir.path(), &[]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = WorkerConfig::new(addr, dir.path().to_path_buf());
    config.max_batch = 2;
    config.queue_capacity = 2;
    config.model_name = Some("tiny-llama".into());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_listener(listener, config, async move {
        let _ = stop_rx.await;
    }));

    // Ready once the model loaded.
    let mut ready = false;
    for _ in 0..200 {
        let probe = tokio::net::TcpStream::connect(addr).await;
        if probe.is_ok() && http_get(addr, "/readyz").await.starts_with("HTTP/1.1 200") {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "worker never became ready");

    let script = common::script("openai_client_check.py");
    let base = format!("http://{addr}/v1");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&base)
        .output()
        .await
        .expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "client checks failed:\n{stdout}\n{stderr}"
    );

    let script = common::script("openai_api_check.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&base)
        .output()
        .await
        .expect("run the API check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "API checks failed:\n{stdout}\n{stderr}"
    );
    promtool_checks_the_metrics(addr).await;

    let _ = stop_tx.send(());
    let result = tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("server stops")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
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

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    buf
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
