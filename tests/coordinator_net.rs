//! The real `garage coordinator` binary against a hostile network (issue 9,
//! B4 and B6): idle connections beyond its file limit do not keep `/healthz`
//! from answering; a request signed for one coordinator is refused by
//! another; an independent signer (PyNaCl, tests/reference/sign_request.py)
//! produces signatures it accepts; `garage api` sends signed requests.

mod common;
mod coordinator_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coordinator_support::{assert_error, free_port, send_raw, Api};
use garage::identity::{signing, NodeIdentity, KEY_FILE};

struct Running {
    child: Child,
    api: Api,
    log: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with the open-file limit `nofile` (through the shell's
/// `ulimit`, as an operator's unit file would set it).
async fn start(state_dir: &Path, nofile: u32) -> Running {
    let port = free_port();
    let log = state_dir.with_extension("log");
    let file = std::fs::File::create(&log).expect("log file");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_garage"))
        .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
        // Admission is not what these tests are about (tests/coordinator_admission.rs).
        .args(["--registration", "open"])
        .arg("--state-dir")
        .arg(state_dir)
        .env_remove("GARAGE_ADMIN_TOKEN")
        .env_remove("GARAGE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("start garage coordinator");
    let mut running = Running {
        child,
        api: Api::external(&format!("http://127.0.0.1:{port}")),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("{}/healthz", running.api.base)).await {
            if response.status().is_success() {
                return running;
            }
        }
        if let Some(status) = running.child.try_wait().expect("child") {
            panic!("coordinator exited with {status}:\n{}", running.log_text());
        }
        assert!(Instant::now() < deadline, "no /healthz within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Running {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

async fn healthz_within(api: &Api, limit: Duration) {
    let client = reqwest::Client::builder()
        .timeout(limit)
        .build()
        .expect("client");
    let started = Instant::now();
    let response = client
        .get(format!("{}/healthz", api.base))
        .send()
        .await
        .unwrap_or_else(|err| panic!("/healthz unanswered after {:?}: {err}", started.elapsed()));
    assert!(response.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_file_limit_leave_healthz_answering() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let running = start(&tmp.path().join("coordinator"), 256).await;
    // Half-open clients: connected, sending nothing, never reading.
    let addr = running.api.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..400 {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(stream) => idle.push(stream),
            Err(err) => panic!("connect #{}: {err}", idle.len()),
        }
    }
    for _ in 0..3 {
        healthz_within(&running.api, Duration::from_secs(2)).await;
    }
    drop(idle);
    healthz_within(&running.api, Duration::from_secs(2)).await;
    let log = running.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(log.lines().count() < 20, "log flooded:\n{log}");
}

/// A registration of `node` for the coordinator with id `audience`.
fn registration(node: &NodeIdentity, audience: uuid::Uuid) -> (Vec<u8>, signing::SignedHeaders) {
    let body = serde_json::to_vec(&serde_json::json!({
        "node_id": node.node_id(),
        "public_key": node.public_key_hex(),
    }))
    .expect("json");
    let signed = node.sign_request(
        audience,
        "POST",
        "/api/nodes/register",
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    (body, signed)
}

fn now_secs() -> i64 {
    coordinator_support::now_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_signed_for_one_coordinator_is_refused_by_another() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = start(&tmp.path().join("a"), 1024).await;
    let b = start(&tmp.path().join("b"), 1024).await;
    let (a_id, b_id) = (a.api.coordinator_id().await, b.api.coordinator_id().await);
    assert_ne!(a_id, b_id);
    let node = NodeIdentity::load_or_create(&tmp.path().join("node")).expect("node");
    let (body, signed) = registration(&node, a_id);
    // Captured on its way to A and replayed at B within the window.
    let path = "/api/nodes/register";
    let (status, answer) = send_raw(&b.api.base, path, Some(&signed), body.clone()).await;
    assert_error(status, &answer, 401, "wrong_coordinator");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&a_id.to_string()) && message.contains(&b_id.to_string()),
        "{answer}"
    );
    assert_eq!(b.api.rejections("wrong_coordinator").await, 1);
    let (status, answer) = send_raw(&a.api.base, path, Some(&signed), body).await;
    assert_eq!(status, 200, "{answer}");
    // The id is kept across a restart of A (it is in A's database).
    drop(a);
    let a = start(&tmp.path().join("a"), 1024).await;
    assert_eq!(a.api.coordinator_id().await, a_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_signer_is_accepted() {
    let Some(python) = common::python_with_nacl() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = start(&tmp.path().join("c"), 1024).await;
    let audience = coordinator.api.coordinator_id().await;
    let node_dir = tmp.path().join("node");
    let node = NodeIdentity::load_or_create(&node_dir).expect("node");
    let (body, _) = registration(&node, audience);
    let body_file = tmp.path().join("body.json");
    std::fs::write(&body_file, &body).expect("body");
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/sign_request.py"))
        .arg(node_dir.join(KEY_FILE))
        .arg(node.node_id().to_string())
        .arg(audience.to_string())
        .args(["POST", "/api/nodes/register"])
        .arg(&body_file)
        .output()
        .expect("run the Python signer");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/nodes/register", coordinator.api.base))
        .header("content-type", "application/json");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let (name, value) = line.split_once(": ").expect("name: value");
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.expect("POST");
    let status = response.status();
    assert_eq!(status, 200, "{}", response.text().await.unwrap_or_default());
}

/// Runs `garage api` with `args`; exit status, stdout, stderr.
fn garage_api(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_garage"))
        .arg("api")
        .args(args)
        .env_remove("GARAGE_STATE_DIR")
        .output()
        .expect("run garage api");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_api_sends_signed_requests_and_fails_on_refusals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = start(&tmp.path().join("c"), 1024).await;
    let node_dir = tmp.path().join("node");
    let node = NodeIdentity::load_or_create(&node_dir).expect("node");
    let state = node_dir.to_str().expect("utf-8");
    let base = coordinator.api.base.as_str();
    let registration = tmp.path().join("register.json");
    std::fs::write(
        &registration,
        serde_json::json!({"node_id": node.node_id(), "public_key": node.public_key_hex()})
            .to_string(),
    )
    .expect("body");
    let data = format!("@{}", registration.display());
    let (ok, out, err) = garage_api(&[
        "--state-dir",
        state,
        "--coordinator",
        base,
        "POST",
        "/api/nodes/register",
        "-d",
        &data,
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("HTTP 200"), "{err}");
    assert!(out.contains(&node.node_id().to_string()), "{out}");

    let heartbeat = format!("/api/nodes/{}/heartbeat", node.node_id());
    let (ok, out, err) = garage_api(&[
        "--state-dir",
        state,
        "--coordinator",
        base,
        "post",
        &heartbeat,
        "-d",
        r#"{"ready":true}"#,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("heartbeat_interval_seconds"), "{out}");

    // Someone else's heartbeat: refused, the error body printed, exit 1.
    let other = format!("/api/nodes/{}/heartbeat", uuid::Uuid::new_v4());
    let (ok, out, err) = garage_api(&[
        "--state-dir",
        state,
        "--coordinator",
        base,
        "POST",
        &other,
        "-d",
        "{}",
    ]);
    assert!(!ok);
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(out.contains("node_mismatch"), "{out}");
}
