//! Node specs from git (issue 18): two agents follow one fleet repository
//! served by a real `git daemon` on loopback. A push to one node's file
//! converges that node within the poll interval + 2 s, and no other; the
//! commit shows in `/status`, `/metrics` and at the coordinator; an invalid
//! file, and an unsigned commit where signatures are required (signed with
//! `ssh-keygen` through git, checked in-process), leave the node on its last
//! applied revision with a condition naming the commit.

mod coordinator_support;
mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coordinator_support::{Coordinator, Db};
use serde_json::Value;
use support::*;

/// How often the agents fetch.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The acceptance bound from a push to the node converged on it.
const CONVERGED_WITHIN: Duration = Duration::from_secs(3);

/// A bare fleet repository, a work tree that pushes to it, and `git daemon`
/// serving it on loopback; the daemon is killed when dropped.
struct Fleet {
    dir: tempfile::TempDir,
    daemon: Child,
    port: u16,
    url: String,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        git(
            root,
            &["init", "--quiet", "--bare", "-b", "main", "fleet.git"],
        );
        git(root, &["init", "--quiet", "-b", "main", "work"]);
        let work = root.join("work");
        git(&work, &["config", "user.name", "Fleet Operator"]);
        git(&work, &["config", "user.email", "ops@garage.test"]);
        git(
            &work,
            &[
                "remote",
                "add",
                "origin",
                root.join("fleet.git").to_str().unwrap(),
            ],
        );
        let keygen = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "ops@garage.test",
                "-f",
            ])
            .arg(root.join("signing-key"))
            .output()
            .expect("run ssh-keygen");
        assert!(keygen.status.success(), "ssh-keygen: {}", show(&keygen));
        let public = std::fs::read_to_string(root.join("signing-key.pub")).expect("public key");
        std::fs::write(
            root.join("allowed_signers"),
            format!("ops@garage.test {public}"),
        )
        .expect("write allowed signers");
        let port = free_port();
        let daemon = serve(root, port);
        Fleet {
            dir,
            daemon,
            port,
            url: format!("git://127.0.0.1:{port}/fleet.git"),
        }
    }

    /// Stops serving the repository (the remote is unreachable).
    fn stop_serving(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }

    /// Serves it again, on the same port.
    fn serve_again(&mut self) {
        self.daemon = serve(self.dir.path(), self.port);
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn signers(&self) -> PathBuf {
        self.dir.path().join("allowed_signers")
    }

    /// Writes `files`, commits (signed with the SSH key when `signed`) and
    /// pushes; returns the commit id.
    fn push(&self, files: &[(&str, &str)], signed: bool, message: &str) -> String {
        let work = self.work();
        for (path, text) in files {
            let path = work.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
            std::fs::write(path, text).expect("write fleet file");
        }
        git(&work, &["add", "-A"]);
        let key = self.dir.path().join("signing-key");
        let mut commit = vec![
            "-c".to_string(),
            "gpg.format=ssh".to_string(),
            "-c".to_string(),
            format!("user.signingkey={}", key.display()),
            "commit".to_string(),
            "--quiet".to_string(),
            "-m".to_string(),
            message.to_string(),
        ];
        if signed {
            commit.push("-S".into());
        }
        let commit: Vec<&str> = commit.iter().map(String::as_str).collect();
        git(&work, &commit);
        git(&work, &["push", "--quiet", "origin", "main"]);
        git(&work, &["rev-parse", "HEAD"]).trim().to_string()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// `git daemon` serving every repository under `root` on loopback `port`.
/// Started as `git-daemon` itself: `git daemon` runs it as a child, which a
/// kill of `git` would leave serving.
fn serve(root: &Path, port: u16) -> Child {
    let exec_path = git(root, &["--exec-path"]);
    let daemon = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", root.display()))
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start git daemon");
    wait_until("git daemon accepts", Duration::from_secs(10), POLL, || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    daemon
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = output_with_timeout(
        Command::new("git").current_dir(dir).args(args),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "git {args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// fleet.yaml: what every node shares.
fn fleet_yaml(coordinator: &str) -> String {
    format!(
        "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  labels:\n    {RUN_LABEL}: \"{}\"\n    fleet: e2e\nspec:\n  coordinator:\n    url: {coordinator}\n  reconcile:\n    resyncPeriod: 5s\n",
        run_id()
    )
}

/// nodes/NAME.yaml: the node's own part (its metrics address and
/// containers), no header: fleet.yaml has it.
fn node_yaml(node: &Node, components: &[Component]) -> String {
    let full = node.yaml(components);
    let spec = full.find("spec:\n").expect("the spec section");
    full[spec..].to_string()
}

fn node_file(node: &Node) -> String {
    format!("nodes/{}.yaml", node.name)
}

fn start_agent(fleet: &Fleet, node: &Node, signed_only: bool) -> Agent {
    let state = node.dir.path().join("state");
    let mut args = vec![
        "--git".to_string(),
        fleet.url.clone(),
        "--node".to_string(),
        node.name.clone(),
        "--poll".to_string(),
        "1s".to_string(),
        "--state-dir".to_string(),
        state.display().to_string(),
    ];
    if signed_only {
        args.push("--allowed-signers".into());
        args.push(fleet.signers().display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut agent = Agent::start_with_args(node, &args);
    agent.wait_serving();
    agent
}

fn applied_revision(status: &Value) -> Option<&str> {
    status["lastAppliedRevision"].as_str()
}

fn wait_applied(agent: &Agent, commit: &str, within: Duration) -> Value {
    wait_until(&format!("revision {commit} applied"), within, POLL, || {
        let status = agent.try_status()?;
        (applied_revision(&status) == Some(commit)).then_some(status)
    })
}

/// The node named `name` at the coordinator.
async fn coordinator_node(coordinator: &Coordinator, name: &str) -> Option<Value> {
    let (_, list) = coordinator.get("/api/nodes").await;
    list["nodes"]
        .as_array()?
        .iter()
        .find(|node| node["name"] == name)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_follow_their_files_in_a_fleet_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = Coordinator::start_with(Coordinator::config(
        &tmp.path().join("coordinator"),
        &Db::Sqlite,
    ))
    .await;
    let mut fleet = Fleet::new();
    let n1 = Node::new("git-n1");
    let n2 = Node::new("git-n2");
    let v1 = [
        Component::sleeper("a"),
        Component::sleeper("b").env("REV", "1"),
    ];
    let first = fleet.push(
        &[
            ("fleet.yaml", &fleet_yaml(&coordinator.base)),
            (&node_file(&n1), &node_yaml(&n1, &v1)),
            (&node_file(&n2), &node_yaml(&n2, &v1)),
        ],
        true,
        "two nodes",
    );

    // n2 applies only commits signed by the listed key.
    let a1 = tokio::task::block_in_place(|| start_agent(&fleet, &n1, false));
    let a2 = tokio::task::block_in_place(|| start_agent(&fleet, &n2, true));
    tokio::task::block_in_place(|| {
        for (agent, node) in [(&a1, &n1), (&a2, &n2)] {
            let status = wait_applied(agent, &first, CONVERGE_TIMEOUT);
            assert_eq!(status["observedRevision"], first.as_str(), "{status}");
            node.wait_running(&["a", "b"], CONVERGE_TIMEOUT);
            let metrics = agent.metrics();
            assert_eq!(
                metric(
                    &metrics,
                    "garage_spec_revision_info",
                    &[("revision", first.as_str())]
                ),
                Some(1.0),
                "{}",
                node.name
            );
        }
    });
    let n2_before = n2.owned();

    // A change to n1's file converges n1 within the poll interval + 2 s.
    let b_before = n1.owned()["b"].id.clone();
    let v2 = [
        Component::sleeper("a"),
        Component::sleeper("b").env("REV", "2"),
    ];
    let pushed = Instant::now();
    let second = fleet.push(
        &[(&node_file(&n1), &node_yaml(&n1, &v2))],
        true,
        "n1: b at REV 2",
    );
    tokio::task::block_in_place(|| {
        wait_applied(&a1, &second, CONVERGED_WITHIN);
        let took = pushed.elapsed();
        assert!(took <= CONVERGED_WITHIN, "n1 converged after {took:?}");
        eprintln!("n1 converged {took:?} after the push (poll interval {POLL_INTERVAL:?})");
        let b_after = n1.owned()["b"].id.clone();
        assert_ne!(b_after, b_before, "n1's b was recreated");
        // n2 sees the commit (its file did not change): nothing recreated.
        wait_applied(&a2, &second, CONVERGE_TIMEOUT);
        assert_eq!(
            describe(&n2.owned()),
            describe(&n2_before),
            "n2 was touched"
        );
    });

    // The coordinator shows the commit each node converged to.
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let seen = coordinator_node(&coordinator, &n1.name).await;
        if seen.as_ref().and_then(|n| n["spec_revision"].as_str()) == Some(second.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the coordinator shows {seen:?}, not {second}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An invalid file: n1 stays on the second commit, with a condition
    // naming the bad one.
    let before = n1.owned();
    let bad = fleet.push(
        &[(&node_file(&n1), "spec:\n  metrics:\n    listen: nowhere\n")],
        true,
        "n1: a broken file",
    );
    tokio::task::block_in_place(|| {
        let status = wait_until("SpecValid=False on n1", CONVERGE_TIMEOUT, POLL, || {
            let status = a1.try_status()?;
            (condition_status(&status, "SpecValid") == "False").then_some(status)
        });
        let message = condition(&status, "SpecValid").unwrap()["message"].to_string();
        assert!(
            message.contains(&bad),
            "the condition names commit {bad}: {message}"
        );
        assert_eq!(applied_revision(&status), Some(second.as_str()), "{status}");
        std::thread::sleep(POLL_INTERVAL * 2);
        assert_eq!(
            describe(&n1.owned()),
            describe(&before),
            "n1 changed on a bad file"
        );
    });

    // An unsigned commit: n2 refuses it and keeps its revision; n1, which
    // does not check signatures, applies it.
    let v3 = [
        Component::sleeper("a"),
        Component::sleeper("b").env("REV", "3"),
    ];
    let unsigned = fleet.push(
        &[
            (&node_file(&n1), &node_yaml(&n1, &v3)),
            (&node_file(&n2), &node_yaml(&n2, &v3)),
        ],
        false,
        "both: REV 3, unsigned",
    );
    tokio::task::block_in_place(|| {
        wait_applied(&a1, &unsigned, CONVERGE_TIMEOUT);
        let status = wait_until("SpecValid=False on n2", CONVERGE_TIMEOUT, POLL, || {
            let status = a2.try_status()?;
            (condition_status(&status, "SpecValid") == "False").then_some(status)
        });
        let message = condition(&status, "SpecValid").unwrap()["message"].to_string();
        assert!(
            message.contains(&unsigned) && message.contains("not signed"),
            "{message}"
        );
        // n2's file was fine at the commit that broke n1's.
        assert_eq!(applied_revision(&status), Some(bad.as_str()), "{status}");
        assert_eq!(
            describe(&n2.owned()),
            describe(&n2_before),
            "n2 applied an unsigned commit"
        );
    });

    // The remote goes away: n1 says so, keeps its revision and its
    // containers, and stays ready; when it is back, so is SpecValid.
    let before = n1.owned();
    fleet.stop_serving();
    tokio::task::block_in_place(|| {
        let status = wait_until(
            "SpecSourceUnreachable on n1",
            CONVERGE_TIMEOUT,
            POLL,
            || {
                let status = a1.try_status()?;
                let unreachable = condition(&status, "SpecValid")
                    .is_some_and(|c| c["reason"] == "SpecSourceUnreachable");
                unreachable.then_some(status)
            },
        );
        let message = condition(&status, "SpecValid").unwrap()["message"].to_string();
        assert!(
            message.contains(&unsigned),
            "names the kept commit: {message}"
        );
        assert_eq!(
            applied_revision(&status),
            Some(unsigned.as_str()),
            "{status}"
        );
        let (code, _) = http_get(&a1.url, "/readyz").expect("/readyz answers");
        assert_eq!(code, 200, "a node whose remote is away keeps serving");
        assert_eq!(
            describe(&n1.owned()),
            describe(&before),
            "n1 changed while cut off"
        );
        fleet.serve_again();
        wait_until("SpecValid=True on n1 again", CONVERGE_TIMEOUT, POLL, || {
            let status = a1.try_status()?;
            (condition_status(&status, "SpecValid") == "True").then_some(())
        });
    });
}

#[test]
fn fleet_render_and_validate_read_a_fleet_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("nodes")).expect("mkdir");
    std::fs::write(root.join("fleet.yaml"), fleet_yaml("http://127.0.0.1:1")).expect("write");
    std::fs::write(
        root.join("nodes/n1.yaml"),
        "spec:\n  metrics:\n    listen: 127.0.0.1:9501\n  containers: []\n",
    )
    .expect("write");
    std::fs::write(
        root.join("nodes/n2.yaml"),
        "spec:\n  metrics:\n    listen: nowhere\n",
    )
    .expect("write");

    let out = garage(&["fleet", "render", "--node", "n1", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let rendered: Value = serde_json::from_slice(&out.stdout).expect("the spec, as JSON");
    assert_eq!(rendered["metadata"]["name"], "n1");
    assert_eq!(rendered["metadata"]["labels"]["fleet"], "e2e");
    assert_eq!(rendered["spec"]["metrics"]["listen"], "127.0.0.1:9501");
    assert_eq!(rendered["spec"]["reconcile"]["resyncPeriod"], "5s");

    let out = garage(&["fleet", "validate", root.to_str().unwrap()]);
    assert!(!out.status.success(), "n2 is invalid: {}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("n1: valid"), "{text}");
    assert!(text.contains("n2:") && text.contains("listen"), "{text}");
    assert!(text.contains("1 of 2 nodes valid"), "{text}");
}
