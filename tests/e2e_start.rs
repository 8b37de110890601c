//! `start.sh` end to end on the real engine: from no garage containers to a
//! registered, benchmarked node whose worker answers an OpenAI completion;
//! then a second run that recreates nothing. The node gets its own name,
//! ports and state directory, and is removed (containers, volumes, agent,
//! local coordinator) when the test ends, also when it fails.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::{
    docker, docker_ok, free_port, garage_bin, http_get, output_with_timeout, podman_prerequisites,
    run_id, show, try_wait_until,
};

/// Image builds, the model copy, the benchmark and the worker's load.
const START_TIMEOUT: Duration = Duration::from_secs(300);

struct StartedNode {
    name: String,
    /// Holds the state directory, which start.sh makes (mode 0700).
    root: tempfile::TempDir,
    args: Vec<String>,
}

impl StartedNode {
    fn new() -> StartedNode {
        let name = format!("s{}", run_id());
        let root = tempfile::tempdir().expect("temporary dir");
        let args = vec![
            "--yes".to_string(),
            "--name".into(),
            name.clone(),
            "--state-dir".into(),
            root.path().join("state").display().to_string(),
            "--worker-port".into(),
            free_port().to_string(),
            "--metrics-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--coordinator-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            // The country comes from the time zone (TZ below), the rest from flags.
            "--coordinates".into(),
            "59.33,18.07".into(),
        ];
        StartedNode { name, root, args }
    }

    fn start_sh(&self, extra: &[&str]) -> Output {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let venv_python = repo.join(".venv/bin/python");
        let mut cmd = Command::new("bash");
        cmd.arg(repo.join("start.sh"))
            .args(&self.args)
            .args(extra)
            .env("GARAGE_BIN", garage_bin())
            .env("TZ", "Europe/Stockholm");
        if venv_python.exists() {
            cmd.env("PYTHON", venv_python);
        }
        output_with_timeout(&mut cmd, START_TIMEOUT)
    }

    fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    fn spec(&self) -> PathBuf {
        self.state().join("node.yaml")
    }

    fn container_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = docker_ok(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=ai.garage.node={}", self.name),
        ])
        .lines()
        .map(str::to_owned)
        .collect();
        ids.sort();
        ids
    }

    fn flag(&self, flag: &str) -> &str {
        let i = self.args.iter().position(|a| a == flag).expect("flag");
        &self.args[i + 1]
    }
}

impl Drop for StartedNode {
    fn drop(&mut self) {
        let _ = self.start_sh(&["--stop"]);
        let _ = Command::new(garage_bin())
            .args(["down", "-f"])
            .arg(self.spec())
            .output();
        let volumes =
            ["models", "podman-socket", "podman-cache"].map(|v| format!("{}-{v}", self.name));
        let mut args = vec!["volume", "rm", "-f"];
        args.extend(volumes.iter().map(String::as_str));
        let _ = docker(&args);
    }
}

fn prerequisites() -> bool {
    podman_prerequisites() && common::smollm2_gguf().is_some()
}

#[test]
fn start_sh_brings_up_a_registered_serving_node_and_a_second_run_changes_nothing() {
    if !prerequisites() {
        return;
    }
    let node = StartedNode::new();
    let first = node.start_sh(&[]);
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(first.status.success(), "start.sh failed:\n{}", show(&first));
    for step in 1..=5 {
        assert!(
            text.contains(&format!("[{step}/5]")),
            "step {step} missing:\n{text}"
        );
    }
    assert!(!text.contains('✗'), "{text}");
    assert!(
        text.contains("✓ worker answers") && text.contains("Paris"),
        "{text}"
    );
    assert!(
        text.contains("country SE, from the time zone Europe/Stockholm")
            && text.contains("country: SE latitude: 59.33 longitude: 18.07"),
        "{text}"
    );
    assert!(text.contains("✓ tools: curl, python3, pip"), "{text}");
    let key = node.state().join("node.key");
    let mode = std::fs::metadata(&key).expect("node.key").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "node.key mode"
    );

    // The coordinator lists the node online, with its benchmark.
    let coordinator = format!("http://{}", node.flag("--coordinator-listen"));
    let (code, body) = http_get(&coordinator, "/api/nodes").expect("coordinator answers");
    assert_eq!(code, 200, "{body}");
    let nodes: Value = serde_json::from_str(&body).expect("json");
    let listed = &nodes["nodes"][0];
    assert_eq!(listed["state"], "online", "{body}");
    assert_eq!(listed["benchmark"]["schema_version"], 1, "{body}");
    // The price area is derived from the coordinates (Stockholm: SE3).
    assert_eq!(
        listed["location"],
        serde_json::json!({"country": "SE", "region": "SE3", "latitude": 59.33, "longitude": 18.07}),
        "{body}"
    );
    assert!(
        listed["benchmark"]["compute"]["matmul_f32"]["gflop_per_s"]
            .as_f64()
            .is_some_and(|g| g > 0.0),
        "{body}"
    );

    // The node serves the network's OpenAI endpoint over its link.
    assert!(
        text.contains(&format!("network      {coordinator}/v1")),
        "{text}"
    );
    let agent = format!("http://{}", node.flag("--metrics-listen"));
    let linked = try_wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        let (_, body) = http_get(&agent, "/status").ok()?;
        let status: Value = serde_json::from_str(&body).ok()?;
        let gateway = &status["gateway"];
        (gateway["state"] == "connected"
            && gateway["models"].as_array().is_some_and(|m| !m.is_empty()))
        .then_some(())
    });
    assert!(
        linked.is_some(),
        "the agent's gateway link is not up: {:?}",
        http_get(&agent, "/status")
    );

    // A second run finds everything in place and recreates nothing.
    let before = node.container_ids();
    assert_eq!(before.len(), 2, "podman and worker run: {before:?}");
    let second = node.start_sh(&[]);
    let again = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(
        second.status.success(),
        "second run failed:\n{}",
        show(&second)
    );
    for kept in [
        "node.yaml kept",
        "already answers",
        "kept the saved benchmark",
        "agent already running",
        "same binary",
    ] {
        assert!(
            again.contains(kept) || read_log(&node, "images.log").contains(kept),
            "second run: `{kept}` missing:\n{again}"
        );
    }
    assert_eq!(node.container_ids(), before, "containers were recreated");
}

fn read_log(node: &StartedNode, name: &str) -> String {
    std::fs::read_to_string(node.state().join("logs").join(name)).unwrap_or_default()
}
