//! The load generator: the real `garage coordinator` binary as a child
//! process, nodes that register and send signed heartbeats as
//! `CoordinatorClient` does, and steps that offer a rate open-loop. Latency
//! runs from each request's scheduled send time, so a server that falls
//! behind shows as queueing instead of a slower offered rate. Every step,
//! request and wait is bounded.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::coordinator::api::{Location, RegisterRequest};
use garage::coordinator::nodes::join_tokens::MAX_USES;
use garage::identity::{signing, NodeIdentity};
use tokio::task::JoinSet;

use super::{gpu, CpuSample};

/// The admin token of the load coordinator (32 bytes or more).
pub const LOAD_ADMIN_TOKEN: &str = "load-admin-token-0123456789abcdef";
/// Heartbeat interval the answer is expressed in (the coordinator's default).
pub const INTERVAL_SECS: u64 = 30;
/// Requests in flight beyond this count as errors (the generator's own limit).
pub const MAX_IN_FLIGHT: usize = 8192;
/// Per-request limit, as in `CoordinatorClient`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent registrations.
pub const REGISTER_CONCURRENCY: usize = 32;

/// A client for the generator: [`REQUEST_TIMEOUT`] per request, a pool as
/// large as [`MAX_IN_FLIGHT`].
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()
        .expect("http client")
}

/// `count` fresh node identities, in memory (300,000 files would measure
/// the disk).
pub fn make_nodes(count: usize) -> Vec<Arc<NodeIdentity>> {
    (0..count)
        .map(|_| {
            Arc::new(NodeIdentity::from_seed(
                uuid::Uuid::new_v4(),
                &rand::random::<[u8; 32]>(),
            ))
        })
        .collect()
}

/// The coordinator child process; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Server {
    /// Starts `bin coordinator` on a free port over `database`, logging to
    /// `state_dir/coordinator.log`, and waits (30 s at most) for /healthz.
    pub async fn start(bin: &Path, state_dir: &Path, database: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(state_dir.join("coordinator.log")).expect("log file");
        let child = Command::new(bin)
            .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(state_dir.join("coordinator"))
            .args(["--database", database])
            .env("GARAGE_ADMIN_TOKEN", LOAD_ADMIN_TOKEN)
            .args(["--heartbeat-interval", &format!("{INTERVAL_SECS}s")])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", bin.display()));
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", server.base)).await {
                if r.status().is_success() {
                    return server;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the coordinator did not answer /healthz within 30 s; see {}",
                state_dir.join("coordinator.log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The id the coordinator at `base` publishes, fetched once per base as
/// `CoordinatorClient` does.
async fn coordinator_id(http: &reqwest::Client, base: &str) -> uuid::Uuid {
    static IDS: std::sync::Mutex<Vec<(String, uuid::Uuid)>> = std::sync::Mutex::new(Vec::new());
    let known = IDS
        .lock()
        .expect("ids")
        .iter()
        .find(|(b, _)| b == base)
        .map(|(_, id)| *id);
    if let Some(id) = known {
        return id;
    }
    let info: garage::coordinator::api::CoordinatorInfo = http
        .get(format!("{base}/api/coordinator"))
        .send()
        .await
        .expect("GET /api/coordinator")
        .json()
        .await
        .expect("coordinator info");
    IDS.lock()
        .expect("ids")
        .push((base.to_string(), info.coordinator_id));
    info.coordinator_id
}

/// Signs `body` for `node` and POSTs it as `CoordinatorClient` does, but
/// over one client shared by all simulated nodes. True on a 2xx.
pub async fn signed_post(
    http: &reqwest::Client,
    base: &str,
    node: &NodeIdentity,
    path: &str,
    body: Vec<u8>,
) -> bool {
    let audience = coordinator_id(http, base).await;
    let signed = node.sign_request(
        audience,
        "POST",
        path,
        &body,
        crate::coordinator_support::now_secs(),
        &signing::new_nonce(),
    );
    let mut request = http
        .post(format!("{base}{path}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    match request.body(body).send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            ok && response.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}

/// What one request of a step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Heartbeat,
    Healthz,
}

/// The outcome of one step.
#[derive(Debug)]
pub struct Step {
    pub rate: u32,
    /// Requests counted (scheduled after the warm-up).
    pub offered: usize,
    /// Counted requests answered with a 2xx, per second of the window.
    pub achieved: f64,
    pub answered: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: usize,
    /// Cores used by (coordinator, generator, postgres, machine).
    pub cores: [f64; 4],
}

/// A counted request that finished.
#[derive(Debug)]
struct Done {
    /// Microseconds from its scheduled send time to its answer.
    us: u64,
    ok: bool,
    at: tokio::time::Instant,
}

/// Files one finished request: its latency, an error, or nothing (warm-up).
fn record(
    joined: Result<Option<Done>, tokio::task::JoinError>,
    latencies_us: &mut Vec<u64>,
    errors: &mut usize,
    last_done: &mut tokio::time::Instant,
) {
    match joined {
        Ok(Some(done)) => {
            *last_done = (*last_done).max(done.at);
            if done.ok {
                latencies_us.push(done.us);
            } else {
                *errors += 1;
            }
        }
        Err(_) => *errors += 1,
        Ok(None) => {}
    }
}

fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

/// How long a step offers its rate: `warmup` uncounted, then `measure`.
#[derive(Debug, Clone, Copy)]
pub struct StepTime {
    pub warmup: Duration,
    pub measure: Duration,
}

/// Offers `rate` requests per second for `warmup + measure`, each scheduled
/// at a fixed offset from the start; only requests scheduled after the
/// warm-up are counted.
pub async fn run_step(
    http: &reqwest::Client,
    server: &Server,
    nodes: &[Arc<NodeIdentity>],
    body: &Arc<Vec<u8>>,
    target: Target,
    rate: u32,
    time: StepTime,
) -> Step {
    let total = ((time.warmup + time.measure).as_secs_f64() * f64::from(rate)) as u64;
    let warm = (time.warmup.as_secs_f64() * f64::from(rate)) as u64;
    let spacing = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut in_flight: JoinSet<Option<Done>> = JoinSet::new();
    let mut latencies_us = Vec::with_capacity(usize::try_from(total - warm).unwrap_or(0));
    let mut errors = 0usize;
    let mut cpu_start = None;
    let mut last_done = start;
    for i in 0..total {
        let scheduled = start + spacing.mul_f64(i as f64);
        if i == warm {
            cpu_start = Some(CpuSample::take(server.pid()));
        }
        tokio::time::sleep_until(scheduled).await;
        while let Some(joined) = in_flight.try_join_next() {
            record(joined, &mut latencies_us, &mut errors, &mut last_done);
        }
        let counted = i >= warm;
        if in_flight.len() >= MAX_IN_FLIGHT {
            if counted {
                errors += 1;
            }
            continue;
        }
        let http = http.clone();
        let base = server.base.clone();
        let node = Arc::clone(&nodes[usize::try_from(i).unwrap_or(0) % nodes.len()]);
        let body = Arc::clone(body);
        in_flight.spawn(async move {
            let ok = match target {
                Target::Heartbeat => {
                    let path = format!("/api/nodes/{}/heartbeat", node.node_id());
                    signed_post(&http, &base, &node, &path, body.to_vec()).await
                }
                Target::Healthz => match http.get(format!("{base}/healthz")).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                },
            };
            let at = tokio::time::Instant::now();
            let us = u64::try_from((at - scheduled).as_micros()).unwrap_or(u64::MAX);
            counted.then_some(Done { us, ok, at })
        });
    }
    // Bounded by the client's timeout: every request ends within it.
    while let Some(joined) = in_flight.join_next().await {
        record(joined, &mut latencies_us, &mut errors, &mut last_done);
    }
    let cpu_end = CpuSample::take(server.pid());
    let cores = cpu_start.map_or([0.0; 4], |s| s.cores_until(&cpu_end));
    latencies_us.sort_unstable();
    // Completed requests over the time from the first counted send to the
    // last answer: a server that queues shows a lower rate than offered.
    let window = last_done.saturating_duration_since(start + spacing.mul_f64(warm as f64));
    Step {
        rate,
        offered: usize::try_from(total - warm).unwrap_or(usize::MAX),
        answered: latencies_us.len(),
        achieved: latencies_us.len() as f64 / window.as_secs_f64().max(1e-3),
        p50_ms: percentile(&latencies_us, 50.0),
        p99_ms: percentile(&latencies_us, 99.0),
        max_ms: latencies_us
            .last()
            .map_or(f64::NAN, |&us| us as f64 / 1000.0),
        errors,
        cores,
    }
}

/// A join token for `uses` registrations (the coordinator runs in token mode).
async fn join_token(http: &reqwest::Client, base: &str, uses: usize) -> Arc<str> {
    let made: serde_json::Value = http
        .post(format!("{base}/api/join-tokens"))
        .bearer_auth(LOAD_ADMIN_TOKEN)
        .json(&serde_json::json!({"uses": uses}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("a join token")
        .json()
        .await
        .expect("its JSON");
    made["token"].as_str().expect("token").into()
}

/// Registers every node, [`REGISTER_CONCURRENCY`] at a time, through join
/// tokens of [`MAX_USES`] uses each; returns the time it took and how many
/// registrations failed.
pub async fn register_all(
    http: &reqwest::Client,
    base: &str,
    nodes: &[Arc<NodeIdentity>],
) -> (Duration, usize) {
    let mut tokens = Vec::new();
    for chunk in nodes.chunks(MAX_USES as usize) {
        tokens.push(join_token(http, base, chunk.len()).await);
    }
    let started = Instant::now();
    let mut next = 0usize;
    let mut failures = 0usize;
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < REGISTER_CONCURRENCY && next < nodes.len() {
            let node = Arc::clone(&nodes[next]);
            let http = http.clone();
            let base = base.to_string();
            let join_token = Arc::clone(&tokens[next / MAX_USES as usize]);
            next += 1;
            tasks.spawn(async move {
                let request = RegisterRequest {
                    node_id: node.node_id(),
                    public_key: node.public_key_hex(),
                    gpu_info: vec![gpu()],
                    location: Location {
                        country: Some("NL".into()),
                        region: Some("NL".into()),
                        latitude: Some(52.37),
                        longitude: Some(4.90),
                    },
                    benchmark: None,
                    join_token: Some(join_token.to_string()),
                };
                let body = serde_json::to_vec(&request).expect("serialises");
                signed_post(&http, &base, &node, "/api/nodes/register", body).await
            });
        }
        match tasks.join_next().await {
            Some(Ok(true)) => {}
            Some(_) => failures += 1,
            None => break,
        }
    }
    (started.elapsed(), failures)
}
