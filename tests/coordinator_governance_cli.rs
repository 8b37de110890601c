//! Governance through its clients: `garage proposal create|vote|list|show`
//! (the real binary, as an account, the admin and a node), and a node's
//! vote signed by an independent signer (PyNaCl, `tests/reference`).

mod common;
mod coordinator_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use coordinator_support::governance::{client_account, node_account};
use coordinator_support::*;
use garage::identity::KEY_FILE;
use serde_json::{json, Value};

const TALLY_WITHIN: Duration = Duration::from_secs(15);

/// Runs `garage proposal` with `args` (and `env`); success, stdout, stderr.
fn garage_proposal(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_garage"));
    command
        .arg("proposal")
        .args(args)
        .env_remove("GARAGE_API_KEY")
        .env_remove("GARAGE_ADMIN_TOKEN")
        .env_remove("GARAGE_STATE_DIR")
        .env_remove("GARAGE_COORDINATOR_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run garage proposal");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_proposal_creates_votes_lists_and_shows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coordinator::start(&tmp.path().join("c"), &Db::Sqlite).await;
    let alice = c.unfunded_account("alice").await;
    let node_dir = tmp.path().join("node");
    let node = TestNode::new(&node_dir, &c);
    node.register(None).await;
    c.mint(&client_account(&alice), 3_000).await;
    c.mint(&node_account(&node), 1_000).await;
    let base = c.base.as_str();
    let (ok, out, err) = garage_proposal(
        &[
            "create",
            "--coordinator",
            base,
            "--admin",
            "--title",
            "Cheaper jobs",
            "--parameter",
            "pricePerSecond=80",
            "--voting-period",
            "2s",
        ],
        &[("GARAGE_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    assert!(ok, "{err}");
    let view: Value = serde_json::from_str(&out).expect("JSON");
    let id = view["proposal_id"].as_str().expect("id").to_string();
    assert!(err.contains("2 voters"), "{err}");
    let (ok, _, err) = garage_proposal(
        &["vote", "--coordinator", base, &id, "yes"],
        &[("GARAGE_API_KEY", &alice)],
    );
    assert!(ok, "{err}");
    let state = node_dir.to_str().expect("utf-8");
    let (ok, _, err) = garage_proposal(
        &[
            "vote",
            "--coordinator",
            base,
            "--node",
            "--state-dir",
            state,
            &id,
            "no",
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("node:{} voted no", node.id())),
        "{err}"
    );
    let (ok, _, err) = garage_proposal(&["vote", "--coordinator", base, &id, "yes"], &[]);
    assert!(!ok && err.contains("GARAGE_API_KEY"), "{err}");
    let (ok, out, err) = garage_proposal(&["list", "--coordinator", base], &[]);
    assert!(
        ok && out.contains(&id) && out.contains("Cheaper jobs"),
        "{out}{err}"
    );
    c.wait_tallied(&id, TALLY_WITHIN).await;
    let (ok, out, err) = garage_proposal(&["show", "--coordinator", base, &id, "--votes"], &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"state\": \"passed\"") && out.contains("node_signature"),
        "{out}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_signed_by_an_independent_signer_is_counted() {
    let Some(python) = common::python_with_nacl() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coordinator::start(&tmp.path().join("c"), &Db::Sqlite).await;
    let node_dir = tmp.path().join("node");
    let node = TestNode::new(&node_dir, &c);
    node.register(None).await;
    c.mint(&node_account(&node), 1_000).await;
    let id = c
        .opened(
            ADMIN_TOKEN,
            json!({"kind": "signal", "title": "Python votes"}),
        )
        .await;
    let path = format!("/api/nodes/{}/votes", node.id());
    let body = json!({"proposal_id": id, "choice": "yes"}).to_string();
    let body_file = tmp.path().join("vote.json");
    std::fs::write(&body_file, &body).expect("body");
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/sign_request.py"))
        .arg(node_dir.join(KEY_FILE))
        .arg(node.id().to_string())
        .arg(c.coordinator_id().await.to_string())
        .arg("POST")
        .arg(&path)
        .arg(&body_file)
        .output()
        .expect("run the Python signer");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", c.base))
        .header("content-type", "application/json");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let (name, value) = line.split_once(": ").expect("name: value");
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.expect("POST");
    assert_eq!(response.status(), 200);
    let tally = &c.proposal(&id).await["tally"];
    assert_eq!(tally["yes"], 1_000, "{tally}");
    c.stop().await;
}
