//! Placement at fleet scale (issue 17): placements per second while
//! 100,000 jobs are queued and 10,000 claims are parked. One coordinator
//! binary (scored placement, the default), on SQLite and on PostgreSQL
//! (when `GARAGE_TEST_POSTGRES_URL` is set):
//! - `GARAGE_SCALE_WAITING` nodes in the `rtx-4090` market long-poll for
//!   jobs that never come: their claims stay parked the whole run, and
//!   every placement round has them to look through;
//! - `GARAGE_SCALE_QUEUED` no-op `cpu` jobs are queued first;
//! - `GARAGE_SCALE_CLAIMERS` `cpu` nodes claim and complete (signed HTTP,
//!   one shared client) until `GARAGE_SCALE_PLACEMENTS` jobs are placed,
//!   so the queue stays deep while it is measured.
//!
//! Prints registrations/s, submissions/s, placements/s and the claim
//! latency (p50, p99) of leased claims against the goal (≥ 1,000
//! placements/s), and the parked claims and queue depth the coordinator
//! reported (its metrics) during the measurement.
//!
//!   cargo bench --bench placement_scale
//!   GARAGE_SCALE_QUEUED=20000 GARAGE_SCALE_WAITING=2000 cargo bench --profile dev --bench placement_scale

use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::coordinator::api::{
    ClaimRequest, CompleteRequest, GpuInfo, JobType, Lease, Location, Outcome, RegisterRequest,
};
use garage::identity::{signing, NodeIdentity};
use serde_json::json;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

#[path = "support/mod.rs"]
mod support;
use support::{percentile, postgres_schema};

const ADMIN_TOKEN: &str = "placement-scale-admin-token-0123456789";
/// Requests in flight while registering and submitting.
const CONCURRENCY: usize = 32;
/// How long a waiting claim long-polls before it asks again.
const WAIT_SECONDS: u32 = 25;

fn param(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A simulated node: its identity, its signature audience and one HTTP
/// client shared by all of them.
#[derive(Clone)]
struct Node {
    identity: Arc<NodeIdentity>,
    coordinator: uuid::Uuid,
    http: reqwest::Client,
    base: Arc<str>,
}

impl Node {
    /// Signs and POSTs `body` to `path`; the status and body.
    async fn post(&self, path: &str, body: &impl serde::Serialize) -> (u16, Vec<u8>) {
        let body = serde_json::to_vec(body).expect("serialises");
        let signed = self.identity.sign_request(
            self.coordinator,
            "POST",
            path,
            &body,
            i64::try_from(garage::clock::unix_secs()).expect("fits"),
            &signing::new_nonce(),
        );
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.expect("answered");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    async fn register(&self, gpu: Option<&str>, join_token: &str) {
        let request = RegisterRequest {
            node_id: self.identity.node_id(),
            public_key: self.identity.public_key_hex(),
            gpu_info: gpu
                .map(|name| {
                    vec![GpuInfo {
                        name: name.into(),
                        memory_total_bytes: 24 << 30,
                        uuid: None,
                    }]
                })
                .unwrap_or_default(),
            location: Location::default(),
            benchmark: None,
            join_token: Some(join_token.to_string()),
        };
        let (status, body) = self.post("/api/nodes/register", &request).await;
        assert!(
            status == 200 || status == 201,
            "register: {status} {body:?}"
        );
    }

    /// One claim waiting up to `wait_seconds`; the lease, if one came.
    async fn claim(&self, wait_seconds: u32) -> Option<Lease> {
        let request = ClaimRequest {
            slots: 1,
            job_types: vec![JobType::Container, JobType::Inference],
            labels: Default::default(),
            wait_seconds: Some(wait_seconds),
            power: None,
        };
        let path = format!("/api/nodes/{}/claim", self.identity.node_id());
        let (status, body) = self.post(&path, &request).await;
        match status {
            200 => Some(serde_json::from_slice(&body).expect("a lease")),
            204 => None,
            _ => panic!("claim: {status} {body:?}"),
        }
    }

    async fn complete(&self, lease: &Lease) {
        let path = format!(
            "/api/nodes/{}/leases/{}/complete",
            self.identity.node_id(),
            lease.lease_id
        );
        let done = CompleteRequest {
            outcome: Outcome::Succeeded,
            reason: None,
            result: json!({}),
        };
        let (status, body) = self.post(&path, &done).await;
        assert_eq!(status, 200, "complete: {body:?}");
    }
}

/// A join token for `uses` registrations.
async fn join_token(http: &reqwest::Client, base: &str, uses: usize) -> Arc<str> {
    let made: serde_json::Value = http
        .post(format!("{base}/api/join-tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"uses": uses}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("a join token")
        .json()
        .await
        .expect("its JSON");
    made["token"].as_str().expect("token").into()
}

/// `count` nodes registered `CONCURRENCY` at a time with one join token;
/// the time it took.
async fn register(
    make: impl Fn() -> Node,
    count: usize,
    gpu: Option<&'static str>,
) -> (Vec<Node>, Duration) {
    let nodes: Vec<Node> = (0..count).map(|_| make()).collect();
    if nodes.is_empty() {
        return (nodes, Duration::ZERO);
    }
    let token = join_token(&nodes[0].http, &nodes[0].base, count).await;
    let started = Instant::now();
    for chunk in nodes.chunks(CONCURRENCY) {
        let mut tasks = JoinSet::new();
        for node in chunk {
            let (node, token) = (node.clone(), token.clone());
            tasks.spawn(async move { node.register(gpu, &token).await });
        }
        tasks.join_all().await;
    }
    (nodes, started.elapsed())
}

/// Queues `count` no-op jobs for `market`, `CONCURRENCY` at a time; the time it took.
async fn submit(http: &reqwest::Client, base: &str, count: usize) -> Duration {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for part in 0..CONCURRENCY {
        let (http, base) = (http.clone(), base.to_string());
        tasks.spawn(async move {
            for _ in (part..count).step_by(CONCURRENCY) {
                let body = json!({"type": "inference", "inference": {"model": "noop", "prompt": "hi"}, "placement": {"market": "cpu"}});
                let response = http
                    .post(format!("{base}/api/jobs"))
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .expect("submit");
                assert_eq!(response.status().as_u16(), 201);
            }
        });
    }
    tasks.join_all().await;
    started.elapsed()
}

/// A metric's value from the coordinator's `/metrics` (0 when absent).
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn run(db: &str, database: &str, dir: &std::path::Path) {
    let (queued, waiting, claimers, placements) = (
        param("GARAGE_SCALE_QUEUED", 100_000),
        param("GARAGE_SCALE_WAITING", 10_000),
        param("GARAGE_SCALE_CLAIMERS", 16),
        param("GARAGE_SCALE_PLACEMENTS", 20_000),
    );
    let (_coordinator, base) = support::start(
        &dir.join(db),
        database,
        ADMIN_TOKEN,
        &["--lease-duration", "60s"],
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(waiting + claimers + CONCURRENCY)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let info: serde_json::Value = http
        .get(format!("{base}/api/coordinator"))
        .send()
        .await
        .expect("coordinator")
        .json()
        .await
        .expect("coordinator json");
    let coordinator: uuid::Uuid = info["coordinator_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("coordinator_id");
    let shared: Arc<str> = base.as_str().into();
    let make = || Node {
        identity: Arc::new(NodeIdentity::from_seed(
            uuid::Uuid::new_v4(),
            &rand::random::<[u8; 32]>(),
        )),
        coordinator,
        http: http.clone(),
        base: shared.clone(),
    };
    let (workers, _) = register(make, claimers, None).await;
    let (idle, took) = register(make, waiting, Some("NVIDIA GeForce RTX 4090")).await;
    println!(
        "{db:<9} registered {waiting} waiting nodes: {:.0}/s",
        waiting as f64 / took.as_secs_f64()
    );
    let took = submit(&http, &base, queued).await;
    println!(
        "{db:<9} queued {queued} jobs: {:.0} submissions/s",
        queued as f64 / took.as_secs_f64()
    );

    let stop = tokio_util::sync::CancellationToken::new();
    let mut parked = JoinSet::new();
    for node in idle {
        let stop = stop.clone();
        parked.spawn(async move {
            while !stop.is_cancelled() {
                tokio::select! {
                    lease = node.claim(WAIT_SECONDS) => assert!(lease.is_none(), "no rtx-4090 job exists"),
                    () = stop.cancelled() => {}
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&http, &base, "garage_coordinator_claims_parked").await < waiting as f64 {
        assert!(
            Instant::now() < deadline,
            "the waiting claims did not park within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let placed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for node in workers {
        let (latencies, placed) = (latencies.clone(), placed.clone());
        tasks.spawn(async move {
            while placed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < placements {
                let asked = Instant::now();
                let lease = node.claim(5).await.expect("a queued job");
                latencies.lock().await.push(asked.elapsed());
                node.complete(&lease).await;
            }
        });
    }
    let parked_during = metric(&http, &base, "garage_coordinator_claims_parked").await;
    tasks.join_all().await;
    let secs = started.elapsed().as_secs_f64();
    stop.cancel();
    parked.abort_all();
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    println!(
        "{db:<9} {queued} queued, {parked_during:.0} parked: {} placements in {secs:.1} s = {:.0} placements/s (goal 1000), claim p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / secs,
        percentile(&latencies, 50.0).as_secs_f64() * 1000.0,
        percentile(&latencies, 99.0).as_secs_f64() * 1000.0,
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dbs = std::env::var("GARAGE_SCALE_DBS").unwrap_or_else(|_| "sqlite postgres".into());
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "placement at scale: {} cores, coordinator {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env!("CARGO_BIN_EXE_garage")
    );
    for db in dbs.split_whitespace() {
        let database = match db {
            "sqlite" => format!("sqlite://{}", dir.path().join("scale.db").display()),
            "postgres" => match std::env::var("GARAGE_TEST_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => {
                    postgres_schema(&url, &format!("placement_scale_{}", std::process::id())).await
                }
                _ => {
                    println!("postgres  skipped: GARAGE_TEST_POSTGRES_URL is not set");
                    continue;
                }
            },
            other => panic!("unknown database {other:?} in GARAGE_SCALE_DBS"),
        };
        run(db, &database, dir.path()).await;
    }
}
