//! Fixtures of the network job tests (`mod network_support;` next to
//! `mod support;`): the coordinator binary on a fixed port, state
//! directory and database (restartable), an account's API key, job submission and
//! bounded waits on a job's state, and a node with podman that takes
//! container jobs (`spec.jobs.accept`), its agent, `/status` network jobs,
//! the job containers inside its podman and its signed client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{self, docker, free_port, garage_bin, text, IMAGE, RUN_LABEL};
use garage::coordinator::api::{CompleteRequest, Outcome};
use garage::coordinator::{ClientError, CoordinatorClient};
use garage::identity::NodeIdentity;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "e2e-network-jobs-admin-token-0123456789";
/// Leases this short make a lost node's job come back within seconds.
pub const LEASE: &str = "4s";
/// The most a job of these tests takes from submission to its end.
pub const JOB_LIMIT: Duration = Duration::from_secs(120);

/// A child process killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `garage coordinator` on a fixed port and state directory (so it can be
/// restarted as the same coordinator).
pub struct Coordinator {
    pub process: Option<Process>,
    pub port: u16,
    pub state: PathBuf,
    /// `--database`; the SQLite file in `state` when `None`.
    pub database_url: Option<String>,
    pub base: String,
}

impl Coordinator {
    /// On SQLite in `state`.
    pub async fn start(state: &Path) -> Coordinator {
        Self::start_on(state, None).await
    }

    /// On `database_url` (SQLite in `state` when `None`).
    pub async fn start_on(state: &Path, database_url: Option<String>) -> Coordinator {
        let port = free_port();
        let mut coordinator = Coordinator {
            process: None,
            port,
            state: state.to_path_buf(),
            database_url,
            base: format!("http://127.0.0.1:{port}"),
        };
        coordinator.restart().await;
        coordinator
    }

    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.with_extension("log"))
            .expect("coordinator log");
        let mut command = Command::new(garage_bin());
        command
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
            .env_remove("GARAGE_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(url) = &self.database_url {
            command.args(["--database", url]);
        }
        let child = command.spawn().expect("start garage coordinator");
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

    pub fn kill(&mut self) {
        self.process = None;
    }

    /// An account's API key, through the CLI; the account is given
    /// 1,000 GAI with `garage ledger mint`.
    pub fn api_key(&self, name: &str) -> String {
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
        let key = text(&out);
        let account = format!("client:{}", key.split('_').nth(1).expect("gk_<id>_…"));
        let minted = Command::new(garage_bin())
            .args([
                "ledger",
                "mint",
                &account,
                "1000000000",
                "--url",
                &self.base,
            ])
            .env("GARAGE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .expect("garage ledger mint");
        assert!(
            minted.status.success(),
            "{}",
            String::from_utf8_lossy(&minted.stderr)
        );
        key
    }

    pub async fn send(
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
    pub async fn wait_online(&self, n: usize) {
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

    pub async fn submit(&self, key: &str, job: &str) -> String {
        let job: Value = serde_json::from_str(job).expect("the test's job is JSON");
        let body = json!({"job": job, "placement": {"market": "cpu"}});
        let (status, view) = self
            .send(key, reqwest::Method::POST, "/api/jobs", Some(body))
            .await;
        assert_eq!(status, 201, "{view}");
        view["job_id"].as_str().expect("job_id").to_owned()
    }

    pub async fn job(&self, key: &str, id: &str) -> Value {
        let (status, view) = self
            .send(key, reqwest::Method::GET, &format!("/api/jobs/{id}"), None)
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Waits until job `id` is in `state`; returns its view.
    pub async fn wait_state(&self, key: &str, id: &str, state: &str, limit: Duration) -> Value {
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
pub fn job(name: &str, cmd: &str) -> String {
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
pub struct Node {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub spec: PathBuf,
    pub metrics: String,
    pub agent: Option<Process>,
}

impl Node {
    pub fn new(test: &str, coordinator: &str) -> Node {
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

    pub fn start(&mut self) {
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

    pub fn kill9(&mut self) {
        self.agent = None;
    }

    /// SIGTERM, and wait for the agent to end.
    pub fn stop(&mut self) {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// The agent's running network jobs (`/status` `networkJobs`).
    pub fn network_jobs(&self) -> Vec<Value> {
        support::http_get(&self.metrics, "/status")
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .and_then(|status| status["networkJobs"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Job containers inside this node's podman (running or not).
    pub fn job_containers(&self) -> String {
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

    pub fn client(&self, base: &str) -> CoordinatorClient {
        let identity = NodeIdentity::load_or_create(&self.dir.path().join(".garage"))
            .expect("the agent's identity");
        CoordinatorClient::new(base, Arc::new(identity)).expect("client")
    }

    /// Completes the lease `lease` now, as this node, and checks that the
    /// coordinator refuses it with 409 (the job is someone else's now).
    pub async fn assert_late_complete_refused(&self, base: &str, lease: uuid::Uuid) {
        let late = self
            .client(base)
            .complete(
                lease,
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

pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    support::wait_until(what, limit, Duration::from_millis(100), || {
        check().then_some(())
    });
}
