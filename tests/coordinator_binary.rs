//! `garage coordinator` as a user starts it: the built binary with its
//! default SQLite database and admin-token file in --state-dir, a join token
//! made with `garage coordinator token create`, a node registering with it
//! and heartbeating through the signed client, SIGTERM, and a restart that
//! finds the node again. Also what it refuses at start: an admin token on
//! the command line or shorter than 32 bytes, absurd heartbeat intervals, a
//! state directory others can reach.

mod coordinator_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coordinator_support::{free_port, TestNode};

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only reached when a test failed before stopping it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(state_dir: &Path, log: &Path) -> Running {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--heartbeat-interval", "1s"])
        .env_remove("GARAGE_ADMIN_TOKEN")
        .env_remove("GARAGE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start garage coordinator");
    Running {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_healthy(running: &mut Running, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("{}/healthz", running.base)).await {
            if response.status().is_success() {
                return;
            }
        }
        if let Some(status) = running.child.try_wait().expect("child status") {
            panic!(
                "garage coordinator exited with {status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no /healthz within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop(mut running: Running) {
    let pid = running.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = running.child.try_wait().expect("child status") {
            assert!(status.success(), "coordinator exited with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "coordinator did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_registers_and_keeps_nodes_across_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("coordinator");
    let log = tmp.path().join("coordinator.log");
    let mut running = start(&state, &log);
    wait_healthy(&mut running, &log).await;

    let token_file = state.join("admin-token");
    let mode = std::fs::metadata(&token_file)
        .expect("admin-token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file)
        .expect("token")
        .trim()
        .to_string();
    assert!(state.join("coordinator.db").exists());

    let base = running.base.clone();
    let coordinator = coordinator_support::Api::external(&base);
    let node = TestNode::new(&tmp.path().join("node"), &coordinator);
    let mut request = node.registration(Some("NVIDIA GeForce RTX 4090"));
    let refused = node
        .client
        .register(&request)
        .await
        .expect_err("token mode");
    assert_eq!(refused.code(), Some("join_token_required"), "{refused}");
    let made = garage(&[
        "coordinator",
        "token",
        "create",
        "--url",
        &base,
        "--admin-token-file",
        token_file.to_str().expect("utf-8"),
        "--ttl",
        "10m",
        "--node-id",
        &node.id().to_string(),
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let join_token = String::from_utf8(made.stdout).expect("utf-8");
    let join_token = join_token.trim();
    assert!(join_token.starts_with("gjt_"), "{join_token}");
    let note = String::from_utf8_lossy(&made.stderr);
    assert!(note.contains("shown only now"), "{note}");
    request.join_token = Some(join_token.to_string());
    assert!(
        node.client
            .register(&request)
            .await
            .expect("admitted")
            .created
    );
    let listed = garage(&[
        "coordinator",
        "token",
        "list",
        "--url",
        &base,
        "--admin-token-file",
        token_file.to_str().expect("utf-8"),
    ]);
    let listed = String::from_utf8(listed.stdout).expect("utf-8");
    assert!(
        listed.contains("used_up") && listed.contains(&node.id().to_string()),
        "{listed}"
    );
    let secret = join_token.split('.').nth(1).expect("secret");
    assert!(!listed.contains(secret), "a secret was listed: {listed}");
    node.heartbeat("gen-1").await;
    let history = reqwest::Client::new()
        .get(format!("{base}/api/nodes/{}/heartbeats", node.id()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("history");
    assert_eq!(history.status().as_u16(), 200);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("garage_coordinator_heartbeats_total 1"),
        "{metrics}"
    );
    promtool_check(&metrics);
    stop(running);

    let mut running = start(&state, &log);
    wait_healthy(&mut running, &log).await;
    let (status, body) = coordinator_support::Api::external(&running.base)
        .get(&format!("/api/nodes/{}", node.id()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["market"], "rtx-4090");
    stop(running);

    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("admin token"), "{logged}");
    assert!(
        !logged.contains(&token),
        "the admin token was logged:\n{logged}"
    );
    let key = std::fs::read_to_string(node.dir.join(garage::identity::KEY_FILE)).expect("key");
    assert!(!logged.contains(key.trim()), "the node key was logged");
}

/// Runs `garage ARGS` to completion (at most 30 s).
fn garage(args: &[&str]) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(args)
        .env_remove("GARAGE_ADMIN_TOKEN")
        .env_remove("GARAGE_COORDINATOR_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start garage");
    finish(child, args)
}

fn finish(mut child: Child, what: &[&str]) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("garage {what:?} still runs after 30 s (it should have stopped)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Starts `garage coordinator ARGS` with `env`, expecting it to refuse to
/// start; returns its stderr.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_garage"));
    command
        .arg("coordinator")
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(args)
        .env_remove("GARAGE_ADMIN_TOKEN")
        .env_remove("GARAGE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let out = finish(command.spawn().expect("start garage"), args);
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unsafe_admin_tokens_and_absurd_intervals_are_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let state = state.to_str().expect("utf-8");
    let err = refused_start(&["--state-dir", state, "--admin-token", "a"], &[]);
    assert!(err.contains("--admin-token"), "{err}");
    let err = refused_start(&["--state-dir", state], &[("GARAGE_ADMIN_TOKEN", "a")]);
    assert!(
        err.contains("GARAGE_ADMIN_TOKEN is 1 bytes long") && err.contains("at least 32"),
        "{err}"
    );
    let short = tmp.path().join("short-token");
    std::fs::write(&short, "0123456789\n").expect("write");
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = refused_start(
        &[
            "--state-dir",
            state,
            "--admin-token-file",
            short.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(err.contains("at least 32"), "{err}");
    for interval in ["500000000000y", "0s", "2h"] {
        let err = refused_start(
            &["--state-dir", state, "--heartbeat-interval", interval],
            &[],
        );
        assert!(err.contains("1s to 1h"), "{interval}: {err}");
    }
}

#[test]
fn a_state_dir_others_can_reach_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("shared");
    std::fs::create_dir(&state).expect("mkdir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = refused_start(&["--state-dir", state.to_str().expect("utf-8")], &[]);
    assert!(
        err.contains(&format!("chmod 700 {}", state.display())) && err.contains("0755"),
        "{err}"
    );
    let mode = std::fs::metadata(&state).expect("dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "the directory was changed");
    assert!(
        std::fs::read_dir(&state).expect("dir").next().is_none(),
        "files were written"
    );
}

/// `promtool check metrics` on `text`; skipped (with a message) where
/// promtool is not installed, unless `GARAGE_REQUIRE_PROMTOOL=1` (`.ci/run`
/// sets it and installs Debian's prometheus).
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            assert!(
                std::env::var("GARAGE_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
                "GARAGE_REQUIRE_PROMTOOL=1 but promtool does not start ({err}); \
                 install Debian's prometheus package"
            );
            eprintln!("skipping promtool check: promtool is not installed ({err})");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("promtool status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("promtool did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}\n--- /metrics:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
