//! The job and account commands against the coordinator binary: `garage
//! account create|list|revoke` with the admin token from the environment,
//! `garage job submit --market cpu --follow` streaming a simulated node's
//! log to stderr and printing the finished job, `garage job list|get` with
//! the API key from a 0600 file, a revoked key refused, and `garage market
//! qualification set|get|delete`.

mod coordinator_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use coordinator_support::{free_port, Api, TestNode, ADMIN_TOKEN};
use garage::coordinator::api::Outcome;
use serde_json::json;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn garage(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_garage"));
    command
        .args(args)
        .env("GARAGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("GARAGE_API_KEY")
        .env_remove("GARAGE_COORDINATOR_URL")
        .stdin(Stdio::null());
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("garage runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn start(state_dir: &Path) -> (Running, String) {
    let port = free_port();
    let child = garage(&["coordinator", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--registration", "open"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start garage coordinator");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "no /healthz within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Running(child), base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_follow_list_and_revoke_through_the_cli() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_coordinator, base) = start(&tmp.path().join("coordinator")).await;
    let node = TestNode::new(&tmp.path().join("node"), &Api::external(&base));
    node.register(None).await;

    let made = run(garage(&["account", "create", "alice", "--url", &base]));
    assert!(made.status.success(), "{}", text(&made.stderr));
    let key = text(&made.stdout).trim().to_string();
    assert!(key.starts_with("gk_"), "{key}");
    let key_file = tmp.path().join("alice.key");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("0600");
    let key_file = key_file.to_str().expect("utf-8 path").to_string();
    let listed = run(garage(&["account", "list", "--url", &base]));
    assert!(
        text(&listed.stdout).contains("alice"),
        "{}",
        text(&listed.stdout)
    );

    let job_file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jobs/hello.yaml");
    let balance = |expected: &str| {
        let out = run(garage(&[
            "account",
            "balance",
            "--coordinator",
            &base,
            "--api-key-file",
            &key_file,
        ]));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), expected);
    };
    balance("0.000000 GAI (0 µGAI)");
    let unfunded = run(garage(&[
        "job",
        "submit",
        job_file,
        "--market",
        "cpu",
        "--coordinator",
        &base,
        "--api-key-file",
        &key_file,
    ]));
    assert!(!unfunded.status.success());
    let why = text(&unfunded.stderr);
    assert!(
        why.contains("402") && why.contains("insufficient_funds"),
        "{why}"
    );
    let account = format!("client:{}", key.split('_').nth(1).expect("gk_<id>_…"));
    for (round, note) in [(1, "minted 1000.000000 GAI"), (2, "minted before")] {
        let minted = run(garage(&[
            "ledger",
            "mint",
            &account,
            "1000000000",
            "--url",
            &base,
            "--idempotency-key",
            "alice-grant-1",
        ]));
        assert!(minted.status.success(), "{}", text(&minted.stderr));
        assert!(
            text(&minted.stderr).contains(note),
            "round {round}: {}",
            text(&minted.stderr)
        );
    }
    balance("1000.000000 GAI (1000000000 µGAI)");
    let submit = garage(&["job", "submit", job_file, "--market", "cpu", "--follow"])
        .args(["--coordinator", &base, "--api-key-file", &key_file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("garage job submit");
    let lease = node.claim(20).await.expect("the submitted job");
    node.log(&lease, 0, "hello from the node\n").await;
    node.complete(&lease, Outcome::Succeeded, json!({"exit_code": 0}))
        .await
        .expect("completed");
    let done = tokio::task::spawn_blocking(move || submit.wait_with_output())
        .await
        .expect("join")
        .expect("garage job submit ends");
    let stderr = text(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("hello from the node"), "{stderr}");
    let view: serde_json::Value = serde_json::from_slice(&done.stdout).expect("the job as JSON");
    assert_eq!(view["state"], "SUCCEEDED", "{view}");
    assert_eq!(view["job_id"], lease.job_id.to_string());
    assert_eq!(view["cost"]["state"], "settled", "{view}");
    let audit = run(garage(&["ledger", "audit", "--url", &base]));
    assert!(audit.status.success(), "{}", text(&audit.stderr));
    assert!(
        !text(&audit.stdout).contains("BROKEN"),
        "{}",
        text(&audit.stdout)
    );
    let history = run(garage(&[
        "account",
        "transfers",
        "--coordinator",
        &base,
        "--api-key-file",
        &key_file,
    ]));
    assert!(history.status.success(), "{}", text(&history.stderr));
    for kind in ["mint", "hold", "refund"] {
        assert!(
            text(&history.stdout).contains(kind),
            "{}",
            text(&history.stdout)
        );
    }

    let listed = run(garage(&[
        "job",
        "list",
        "--coordinator",
        &base,
        "--api-key-file",
        &key_file,
    ]));
    assert!(
        text(&listed.stdout).contains(&lease.job_id.to_string()),
        "{}",
        text(&listed.stdout)
    );
    let no_key = run(garage(&["job", "list", "--coordinator", &base]));
    assert!(!no_key.status.success());
    assert!(
        text(&no_key.stderr).contains("GARAGE_API_KEY"),
        "{}",
        text(&no_key.stderr)
    );

    let id = key.split('_').nth(1).expect("key id").to_string();
    let revoked = run(garage(&["account", "revoke", &id, "--url", &base]));
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let mut get = garage(&[
        "job",
        "get",
        &lease.job_id.to_string(),
        "--coordinator",
        &base,
    ]);
    get.env("GARAGE_API_KEY", &key);
    let refused = run(get);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("api_key_revoked"),
        "{}",
        text(&refused.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_qualification_set_get_and_delete_through_the_cli() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_coordinator, base) = start(&tmp.path().join("coordinator")).await;
    let set = run(garage(&[
        "market",
        "qualification",
        "set",
        "cpu",
        "--url",
        &base,
        "--model",
        "smollm2",
        "--prompt",
        "The capital of France is",
        "--expected",
        "Paris",
        "--min-tokens-per-second",
        "2.5",
    ]));
    assert!(set.status.success(), "{}", text(&set.stderr));
    let got = run(garage(&[
        "market",
        "qualification",
        "get",
        "cpu",
        "--url",
        &base,
    ]));
    assert!(got.status.success(), "{}", text(&got.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&got.stdout).expect("JSON on stdout");
    assert_eq!(shown["market"], "cpu");
    assert_eq!(shown["qualification"]["expected"], "Paris");
    assert_eq!(shown["qualification"]["min_tokens_per_second"], 2.5);
    assert_eq!(shown["qualification"]["max_tokens"], 16);
    let bad = run(garage(&[
        "market",
        "qualification",
        "set",
        "cpu",
        "--url",
        &base,
        "--model",
        "m",
        "--prompt",
        "p",
        "--expected",
        "e",
        "--min-tokens-per-second",
        "0",
    ]));
    assert!(!bad.status.success(), "a minimum of 0 is refused");
    assert!(
        text(&bad.stderr).contains("min_tokens_per_second"),
        "{}",
        text(&bad.stderr)
    );
    let deleted = run(garage(&[
        "market",
        "qualification",
        "delete",
        "cpu",
        "--url",
        &base,
    ]));
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let gone = run(garage(&[
        "market",
        "qualification",
        "get",
        "cpu",
        "--url",
        &base,
    ]));
    assert!(!gone.status.success(), "no qualification after delete");
}
