//! Fixtures for the coordinator tests (`mod coordinator_support;` in each
//! `tests/coordinator_*.rs`): the real coordinator in-process on
//! 127.0.0.1:0 over SQLite in a temporary directory or over the PostgreSQL
//! server named by `GARAGE_TEST_POSTGRES_URL` (one fresh schema per
//! coordinator), nodes with their own state directories, and raw signed
//! requests for the refusal tests. Test coordinators admit nodes in `open`
//! mode unless a test is about admission. Every wait is bounded.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::coordinator::api::{HeartbeatRequest, Location, RegisterRequest};
use garage::coordinator::nodes::admission_rules::RegistrationMode;
use garage::coordinator::{CoordinatorClient, CoordinatorConfig};
use garage::identity::{signing, NodeIdentity};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod binary;
pub mod governance;
pub mod haproxy;
pub mod jobs;

/// 32 bytes or more, as the coordinator requires.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// A loopback port free at the time of asking, for a coordinator binary.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Runs one scenario as two tests: on SQLite, and on PostgreSQL where
/// `GARAGE_TEST_POSTGRES_URL` names one (required in CI).
// Not every test file that shares this module runs scenarios on both.
#[allow(unused_macros)]
macro_rules! on_both_databases {
    ($sqlite:ident, $postgres:ident, $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let tmp = tempfile::tempdir().expect("tempdir");
            $scenario(tmp.path(), $crate::coordinator_support::Db::Sqlite).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(url) = $crate::coordinator_support::postgres_url() else {
                return;
            };
            let tmp = tempfile::tempdir().expect("tempdir");
            let db = $crate::coordinator_support::postgres_db(&url, stringify!($postgres)).await;
            $scenario(tmp.path(), db).await;
        }
    };
}

/// Which database a coordinator runs on.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    /// A PostgreSQL URL whose `search_path` is a schema made for this test.
    Postgres(String),
}

/// The PostgreSQL URL for tests, or `None` (after saying why) when the
/// test should skip. Panics when `GARAGE_REQUIRE_POSTGRES=1` and none is set.
pub fn postgres_url() -> Option<String> {
    match std::env::var("GARAGE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("GARAGE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "GARAGE_REQUIRE_POSTGRES=1 but GARAGE_TEST_POSTGRES_URL is not set \
                 (.ci/run starts a PostgreSQL server and sets it)"
            );
            eprintln!(
                "skipping the PostgreSQL variant: GARAGE_TEST_POSTGRES_URL is not set \
                 (e.g. postgres://garage@127.0.0.1:5432/garage_test)"
            );
            None
        }
    }
}

/// A fresh schema on the test server and a URL that uses it.
pub async fn postgres_db(base: &str, test: &str) -> Db {
    use sqlx::Connection;
    let schema = format!("t{}_{}_{}", std::process::id(), test, rand::random::<u32>());
    let mut conn = sqlx::postgres::PgConnection::connect(base)
        .await
        .unwrap_or_else(|err| panic!("connect to GARAGE_TEST_POSTGRES_URL: {err}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create a test schema");
    conn.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    Db::Postgres(format!(
        "{base}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// The one number `query` (a `SELECT COUNT(*) …`) answers.
pub async fn pg_count(conn: &mut sqlx::PgConnection, query: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(query)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
}

/// A coordinator running in this process.
#[derive(Debug)]
pub struct Coordinator {
    pub api: Api,
    pub addr: SocketAddr,
    pub config: CoordinatorConfig,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), garage::coordinator::CoordinatorError>>>,
}

impl Coordinator {
    /// Starts a coordinator with `state_dir` on `db` and a 1 s heartbeat interval.
    pub async fn start(state_dir: &Path, db: &Db) -> Coordinator {
        Self::start_with(Self::config(state_dir, db)).await
    }

    /// The configuration [`Coordinator::start`] uses.
    pub fn config(state_dir: &Path, db: &Db) -> CoordinatorConfig {
        let database_url = match db {
            Db::Sqlite => format!("sqlite://{}", state_dir.join("coordinator.db").display()),
            Db::Postgres(url) => url.clone(),
        };
        let mut config = CoordinatorConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            database_url,
            state_dir.to_path_buf(),
        );
        config.admin_token = Some(ADMIN_TOKEN.into());
        config.registration = RegistrationMode::Open;
        config.heartbeat_interval = Duration::from_secs(1);
        config.offline_after = 3;
        config
    }

    /// Starts a coordinator on a free port.
    pub async fn start_with(config: CoordinatorConfig) -> Coordinator {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), config).await
    }

    /// Starts a coordinator on `addr` (e.g. the address of one that stopped).
    pub async fn start_on(addr: SocketAddr, config: CoordinatorConfig) -> Coordinator {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|err| panic!("bind {addr}: {err}"));
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let task = tokio::spawn(garage::coordinator::serve_with_listener(
            listener,
            config.clone(),
            stop.clone().cancelled_owned(),
        ));
        let coordinator = Coordinator {
            api: Api {
                base: format!("http://{addr}"),
            },
            addr,
            config,
            stop,
            task: Some(task),
        };
        coordinator.wait_healthy().await;
        coordinator
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/healthz", self.base)).await {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "coordinator did not answer /healthz within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the coordinator and waits for it to finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("coordinator stops within 20 s")
                .expect("coordinator task joins")
                .expect("coordinator ends cleanly");
        }
    }
}

impl std::ops::Deref for Coordinator {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The HTTP API of a coordinator at `base`, in-process or not.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
}

impl Api {
    pub fn external(base: &str) -> Api {
        Api {
            base: base.to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("GET reaches the coordinator");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("GET reaches the coordinator");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An admin request with a JSON body (or none).
    pub async fn admin_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("reaches the coordinator");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A join token made through the admin API (`{"uses", "node_id", …}`).
    pub async fn join_token(&self, request: Value) -> String {
        let (status, made) = self
            .admin_send(reqwest::Method::POST, "/api/join-tokens", Some(request))
            .await;
        assert_eq!(status, 201, "{made}");
        made["token"].as_str().expect("token").to_string()
    }

    /// The id this coordinator publishes for signatures (`GET /api/coordinator`).
    pub async fn coordinator_id(&self) -> uuid::Uuid {
        let (status, body) = self.get("/api/coordinator").await;
        assert_eq!(status, 200, "{body}");
        body["coordinator_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no coordinator_id in {body}"))
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// `garage_coordinator_auth_rejections_total{reason}`.
    pub async fn rejections(&self, reason: &str) -> u64 {
        let text = self.metrics().await;
        let prefix = format!("garage_coordinator_auth_rejections_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no rejection counter for {reason} in:\n{text}"))
    }

    /// The state of a node as the API reports it.
    pub async fn node_state(&self, node: &TestNode) -> String {
        let (status, body) = self.get(&format!("/api/nodes/{}", node.id())).await;
        assert_eq!(status, 200, "{body}");
        body["state"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until `node` is in `state`, up to `limit`; returns the time it took.
    pub async fn wait_state(&self, node: &TestNode, state: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.node_state(node).await == state {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "node {} not {state} within {limit:?}",
                node.id()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A node with its own state directory and signed client.
#[derive(Debug)]
pub struct TestNode {
    pub dir: PathBuf,
    pub client: CoordinatorClient,
}

impl TestNode {
    /// Makes (or loads) the identity in `dir` and a client for `coordinator`.
    pub fn new(dir: &Path, coordinator: &Api) -> TestNode {
        let identity = NodeIdentity::load_or_create(dir).expect("node identity");
        TestNode {
            dir: dir.to_path_buf(),
            client: CoordinatorClient::new(&coordinator.base, Arc::new(identity)).expect("client"),
        }
    }

    pub fn id(&self) -> uuid::Uuid {
        self.client.identity().node_id()
    }

    /// A second identity in `dir` with this node's id and a key of its own
    /// (what a node whose key was lost or stolen looks like).
    pub fn twin(&self, dir: &Path, coordinator: &Api) -> TestNode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::write(
            dir.join(garage::identity::ID_FILE),
            format!("{}\n", self.id()),
        )
        .expect("id");
        let seed = hex::encode(rand::random::<[u8; 32]>());
        let key_path = dir.join(garage::identity::KEY_FILE);
        std::fs::write(&key_path, seed).expect("key");
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let twin = TestNode::new(dir, coordinator);
        assert_eq!(twin.id(), self.id());
        twin
    }

    pub async fn register(&self, gpu: Option<&str>) -> garage::coordinator::api::RegisterResponse {
        let request = self.registration(gpu);
        self.client.register(&request).await.expect("registers")
    }

    /// The registration [`TestNode::register`] sends.
    pub fn registration(&self, gpu: Option<&str>) -> RegisterRequest {
        let gpus = gpu
            .map(|name| {
                vec![garage::coordinator::api::GpuInfo {
                    name: name.into(),
                    memory_total_bytes: 24 << 30,
                    uuid: None,
                }]
            })
            .unwrap_or_default();
        let location = Location {
            country: Some("SE".into()),
            region: Some("SE3".into()),
            latitude: Some(59.33),
            longitude: Some(18.07),
        };
        let benchmark = serde_json::json!({"tokens_per_second": 42.5});
        self.client.registration(gpus, location, Some(benchmark))
    }

    /// Registers with `join_token`; the coordinator's answer or refusal.
    pub async fn register_with(
        &self,
        join_token: Option<&str>,
    ) -> Result<garage::coordinator::api::RegisterResponse, garage::coordinator::ClientError> {
        let mut request = self.registration(None);
        request.join_token = join_token.map(str::to_string);
        self.client.register(&request).await
    }

    pub async fn heartbeat(&self, generation: &str) -> garage::coordinator::api::HeartbeatResponse {
        let request = HeartbeatRequest {
            observed_generation: Some(generation.into()),
            ready: Some(true),
            gpus: Vec::new(),
            status: serde_json::json!({"conditions": [{"type": "Ready", "status": "True"}]}),
            power: None,
            spec_revision: None,
        };
        self.client
            .heartbeat(&request)
            .await
            .expect("heartbeat accepted")
    }
}

/// The wall clock in Unix seconds.
pub fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

/// Sends `body` to `path` with the given signature headers (or none).
pub async fn send_raw(
    base: &str,
    path: &str,
    headers: Option<&signing::SignedHeaders>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json");
    if let Some(signed) = headers {
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
    }
    let response = request
        .body(body)
        .send()
        .await
        .expect("POST reaches the coordinator");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Asserts an `{"error": {"code", "message"}}` body with `code`.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
