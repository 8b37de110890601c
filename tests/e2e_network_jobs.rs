//! Network jobs end to end: the real coordinator binary (SQLite, short
//! leases), real agents (`garage run` with `spec.jobs.accept`) and their
//! real podman hosts. A job submitted with `garage job submit --wait
//! --follow` runs in a node's podman with its log on the terminal; a
//! cancel removes the job container within 5 s; a coordinator restarted
//! mid-job does not stop the job; a job for a market without an online
//! node waits QUEUED and runs when the node is back; a node SIGKILLed
//! mid-job loses the job to the other node once, and its late complete
//! gets 409. Skipped without Docker or the podman image, unless
//! `GARAGE_REQUIRE_E2E=1`. Every wait is bounded.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::coordinator::api::{CompleteRequest, Outcome};
use garage::coordinator::{ClientError, CoordinatorClient};
use garage::identity::NodeIdentity;
use serde_json::{json, Value};
use support::{docker, free_port, garage_bin, podman_prerequisites, text, IMAGE, RUN_LABEL};

const ADMIN_TOKEN: &str = "e2e-network-jobs-admin-token-0123456789";
/// Leases this short make a lost node's job come back within seconds.
const LEASE: &str = "4s";
/// The most a job of these tests takes from submission to its end.
const JOB_LIMIT: Duration = Duration::from_secs(120);

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `garage coordinator` on a fixed port and state directory (so it can be
/// restarted as the same coordinator).
struct Coordinator {
    process: Option<Process>,
    port: u16,
    state: PathBuf,
    base: String,
}

impl Coordinator {
    async fn start(state: &Path) -> Coordinator {
        let port = free_port();
        let mut coordinator = Coordinator {
            process: None,
            port,
            state: state.to_path_buf(),
            base: format!("http://127.0.0.1:{port}"),
        };
        coordinator.restart().await;
        coordinator
    }

    async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.with_extension("log"))
            .expect("coordinator log");
        let child = Command::new(garage_bin())
            .args([
                "coordinator",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
            ])
            .arg("--state-dir")
            .arg(&self.state)
            .args(["--registration", "open", "--heartbeat-interval", "1s"])
            .args(["--offline-after", "2", "--lease-duration", LEASE])
            .env("GARAGE_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start garage coordinator");
        self.process = Some(Process(child));
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/healthz", self.base))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "no /healthz within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        self.process = None;
    }

    /// An account's API key, through the CLI.
    fn api_key(&self, name: &str) -> String {
        let out = Command::new(garage_bin())
            .args(["account", "create", name, "--url", &self.base])
            .env("GARAGE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .expect("garage account create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text(&out)
    }

    async fn send(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the coordinator answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Waits until `n` nodes are online.
    async fn wait_online(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, list) = self
                .send(ADMIN_TOKEN, reqwest::Method::GET, "/api/nodes", None)
                .await;
            let online = list["nodes"].as_array().map_or(0, |nodes| {
                nodes.iter().filter(|n| n["state"] == "online").count()
            });
            if online >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} node(s) not online within 60 s: {list}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn submit(&self, key: &str, job: &str) -> String {
        let job: Value = serde_json::from_str(job).expect("the test's job is JSON");
        let body = json!({"job": job, "placement": {"market": "cpu"}});
        let (status, view) = self
            .send(key, reqwest::Method::POST, "/api/jobs", Some(body))
            .await;
        assert_eq!(status, 201, "{view}");
        view["job_id"].as_str().expect("job_id").to_owned()
    }

    async fn job(&self, key: &str, id: &str) -> Value {
        let (status, view) = self
            .send(key, reqwest::Method::GET, &format!("/api/jobs/{id}"), None)
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Waits until job `id` is in `state`; returns its view.
    async fn wait_state(&self, key: &str, id: &str, state: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let view = self.job(key, id).await;
            if view["state"] == state {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} not {state} within {limit:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The container job of these tests (JSON text, which is also a job file):
/// one op running `cmd` in the test image.
fn job(name: &str, cmd: &str) -> String {
    json!({
        "version": "0.1",
        "type": "container",
        "meta": {"name": name},
        "timeout": "2m",
        "ops": [{"type": "container/run", "id": "main", "args": {"image": IMAGE, "cmd": cmd}}]
    })
    .to_string()
}

/// A node with podman, taking container jobs from `coordinator`.
struct Node {
    name: String,
    dir: tempfile::TempDir,
    spec: PathBuf,
    metrics: String,
    agent: Option<Process>,
}

impl Node {
    fn new(test: &str, coordinator: &str) -> Node {
        let name = format!("n{}-{test}", support::run_id());
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = dir.path().join("node.yaml");
        let port = free_port();
        std::fs::write(
            &spec,
            format!(
                "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    {RUN_LABEL}: \"{run}\"\nspec:\n  coordinator:\n    url: {coordinator}\n  gpu:\n    mode: none\n  metrics:\n    listen: 127.0.0.1:{port}\n  reconcile:\n    backoff:\n      initial: 1s\n      max: 5s\n  podman:\n    socketVolume: {name}-sock\n    cacheVolume: {name}-cache\n    jobs:\n      hostImages: [\"{IMAGE}\"]\n  jobs:\n    accept: true\n    maxConcurrent: 1\n",
                run = support::run_id()
            ),
        )
        .expect("write node.yaml");
        Node {
            name,
            dir,
            spec,
            metrics: format!("http://127.0.0.1:{port}"),
            agent: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("agent log");
        let child = Command::new(garage_bin())
            .args(["run", "-f", self.spec.to_str().expect("utf-8")])
            .env("RUST_LOG", "info,garage=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start garage run");
        self.agent = Some(Process(child));
    }

    fn kill9(&mut self) {
        self.agent = None;
    }

    /// SIGTERM, and wait for the agent to end.
    fn stop(&mut self) {
        if let Some(mut process) = self.agent.take() {
            let pid = process.0.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while process.0.try_wait().ok().flatten().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "the agent did not stop within 20 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// The agent's running network jobs (`/status` `networkJobs`).
    fn network_jobs(&self) -> Vec<Value> {
        support::http_get(&self.metrics, "/status")
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .and_then(|status| status["networkJobs"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Job containers inside this node's podman (running or not).
    fn job_containers(&self) -> String {
        text(&docker(&[
            "exec",
            &format!("garage-{}-podman", self.name),
            "podman",
            "ps",
            "-a",
            "--filter",
            "label=ai.garage.job-run",
            "--format",
            "{{.Names}}",
        ]))
    }

    fn client(&self, base: &str) -> CoordinatorClient {
        let identity = NodeIdentity::load_or_create(&self.dir.path().join(".garage"))
            .expect("the agent's identity");
        CoordinatorClient::new(base, Arc::new(identity)).expect("client")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.agent = None;
        let _ = Command::new(garage_bin())
            .args(["down", "-f", self.spec.to_str().unwrap_or_default()])
            .output();
        let _ = docker(&["rm", "-f", &format!("garage-{}-podman", self.name)]);
        let _ = docker(&[
            "volume",
            "rm",
            "-f",
            &format!("{}-sock", self.name),
            &format!("{}-cache", self.name),
        ]);
    }
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    support::wait_until(what, limit, Duration::from_millis(100), || {
        check().then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_network_jobs_follows_cancel_and_survives_a_coordinator_restart() {
    if !podman_prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut coordinator = Coordinator::start(&tmp.path().join("coordinator")).await;
    let key = coordinator.api_key("alice");
    let mut node = Node::new("work", &coordinator.base);
    node.start();
    coordinator.wait_online(1).await;

    // Submitted with the CLI, followed to the end: the log reaches the
    // terminal and the result comes back.
    let file = node.dir.path().join("hello.json");
    std::fs::write(
        &file,
        job("net-hello", "echo hello-from-podman; echo answer=42"),
    )
    .expect("job file");
    let submit = Command::new(garage_bin())
        .args([
            "job",
            "submit",
            file.to_str().expect("utf-8"),
            "--market",
            "cpu",
            "--wait",
            "--follow",
        ])
        .args(["--coordinator", &coordinator.base])
        .env("GARAGE_API_KEY", &key)
        .stdin(Stdio::null())
        .output();
    let done = tokio::task::spawn_blocking(move || submit)
        .await
        .expect("join")
        .expect("garage job submit runs");
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "{stderr}\n{}", node.log());
    assert!(stderr.contains("hello-from-podman"), "{stderr}");
    let view: Value = serde_json::from_slice(&done.stdout).expect("the job as JSON");
    assert_eq!(view["state"], "SUCCEEDED", "{view}");
    assert_eq!(view["result"]["status"], "succeeded", "{view}");
    assert_eq!(view["result"]["ops"][0]["exitCode"], 0, "{view}");
    assert!(
        node.job_containers().is_empty(),
        "{}",
        node.job_containers()
    );

    // Cancel of a running job: its container is gone within 5 s.
    let id = coordinator
        .submit(&key, &job("net-cancel", "echo long; sleep 300"))
        .await;
    coordinator
        .wait_state(&key, &id, "RUNNING", JOB_LIMIT)
        .await;
    wait_for(
        "the job container in podman",
        Duration::from_secs(60),
        || !node.job_containers().is_empty(),
    );
    assert_eq!(node.network_jobs().len(), 1, "{:?}", node.network_jobs());
    let (status, view) = coordinator
        .send(
            &key,
            reqwest::Method::POST,
            &format!("/api/jobs/{id}/cancel"),
            None,
        )
        .await;
    assert!(status < 300, "{status} {view}");
    let cancelled = Instant::now();
    wait_for(
        "the cancelled job's container to go",
        Duration::from_secs(5),
        || node.job_containers().is_empty(),
    );
    eprintln!(
        "cancelled job's container gone after {:?}",
        cancelled.elapsed()
    );
    assert_eq!(coordinator.job(&key, &id).await["state"], "CANCELLED");

    // The coordinator restarted mid-job (same database): the job goes on.
    let id = coordinator
        .submit(
            &key,
            &job("net-restart", "echo before; sleep 6; echo after"),
        )
        .await;
    coordinator
        .wait_state(&key, &id, "RUNNING", JOB_LIMIT)
        .await;
    coordinator.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    coordinator.restart().await;
    let view = coordinator
        .wait_state(&key, &id, "SUCCEEDED", JOB_LIMIT)
        .await;
    assert_eq!(view["attempt"], 1, "the job ran once: {view}");

    // No online node in the market: the job waits QUEUED, saying so, and
    // runs when the node is back.
    node.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let id = coordinator
            .submit(&key, &job("net-queued", "echo queued-then-ran"))
            .await;
        let view = coordinator.job(&key, &id).await;
        if view["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no online node")
        {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the node never went offline: {view}"
        );
        let _ = coordinator
            .send(
                &key,
                reqwest::Method::POST,
                &format!("/api/jobs/{id}/cancel"),
                None,
            )
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(coordinator.job(&key, &id).await["state"], "QUEUED");
    node.start();
    coordinator
        .wait_state(&key, &id, "SUCCEEDED", JOB_LIMIT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_node_completes_on_the_other_and_the_late_complete_gets_409() {
    if !podman_prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = Coordinator::start(&tmp.path().join("coordinator")).await;
    let key = coordinator.api_key("bob");
    let mut first = Node::new("first", &coordinator.base);
    let mut second = Node::new("second", &coordinator.base);
    first.start();
    coordinator.wait_online(1).await;
    // The second node comes up once the first holds the job.
    let id = coordinator
        .submit(
            &key,
            &job("net-requeue", "echo start; sleep 8; echo finished"),
        )
        .await;
    coordinator
        .wait_state(&key, &id, "RUNNING", JOB_LIMIT)
        .await;
    let mut held = Vec::new();
    wait_for(
        "the first node shows the job",
        Duration::from_secs(10),
        || {
            held = first.network_jobs();
            !held.is_empty()
        },
    );
    let old_lease: uuid::Uuid = held[0]["leaseId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("leaseId");
    second.start();
    first.kill9();
    let view = coordinator
        .wait_state(&key, &id, "SUCCEEDED", JOB_LIMIT)
        .await;
    assert_eq!(view["attempt"], 2, "requeued once: {view}");
    let queued = view["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|event| event["state"] == "QUEUED")
        .count();
    assert_eq!(queued, 2, "submitted, then requeued once: {view}");

    let late = first
        .client(&coordinator.base)
        .complete(
            old_lease,
            &CompleteRequest {
                outcome: Outcome::Succeeded,
                reason: None,
                result: json!({}),
            },
        )
        .await;
    match late {
        Err(ClientError::Refused { status, .. }) => assert_eq!(status, 409),
        other => panic!("the late complete was not refused with 409: {other:?}"),
    }
}
