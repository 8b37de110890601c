//! Heartbeat load generator (issue 5), `#[ignore]`d: run it through
//! `benches/heartbeat_load.sh`. It starts the real `garage coordinator`
//! binary as a child process on SQLite (or on PostgreSQL with
//! `GARAGE_LOAD_DB=postgres`), registers `GARAGE_LOAD_NODES` node identities,
//! then offers signed heartbeats open-loop at each rate of `GARAGE_LOAD_RATES`
//! and, as the HTTP stack's ceiling, `GET /healthz` at the same rates. Latency
//! runs from each request's scheduled send time, so a server that falls
//! behind shows as queueing instead of a slower offered rate. Every step,
//! request and wait is bounded.

mod coordinator_support;
mod load_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::coordinator::api::{Location, RegisterRequest};
use garage::identity::{signing, NodeIdentity};
use load_support::{gpu, heartbeat_body, CpuSample};
use tokio::task::JoinSet;

/// The admin token of the load test's coordinator (32 bytes or more).
const LOAD_ADMIN_TOKEN: &str = "load-admin-token-0123456789abcdef";
/// Heartbeat interval the answer is expressed in (the coordinator's default).
const INTERVAL_SECS: u64 = 30;
/// Requests in flight beyond this count as errors (the generator's own limit).
const MAX_IN_FLIGHT: usize = 8192;
/// Per-request limit, as in `CoordinatorClient`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent registrations.
const REGISTER_CONCURRENCY: usize = 32;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} does not parse")),
        _ => default,
    }
}

/// What one run measures, from `GARAGE_LOAD_*`.
#[derive(Debug)]
struct Plan {
    bin: PathBuf,
    nodes: usize,
    rates: Vec<u32>,
    warmup: Duration,
    step: Duration,
    p99_limit_ms: f64,
    /// Rates for the `/healthz` peer; empty skips it.
    healthz_rates: Vec<u32>,
}

fn rates(name: &str, default: &str) -> Vec<u32> {
    let text: String = env_or(name, default.into());
    if text == "none" {
        return Vec::new();
    }
    text.split(',')
        .map(|r| {
            r.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: comma-separated req/s or none"))
        })
        .collect()
}

impl Plan {
    fn from_env() -> Plan {
        Plan {
            bin: env_or(
                "GARAGE_LOAD_BIN",
                PathBuf::from(env!("CARGO_BIN_EXE_garage")),
            ),
            nodes: env_or("GARAGE_LOAD_NODES", 2000),
            rates: rates("GARAGE_LOAD_RATES", "250,500,1000,2000,3333,5000"),
            warmup: Duration::from_secs(env_or("GARAGE_LOAD_WARMUP_SECS", 3)),
            step: Duration::from_secs(env_or("GARAGE_LOAD_STEP_SECS", 12)),
            p99_limit_ms: env_or("GARAGE_LOAD_P99_MS", 50.0),
            healthz_rates: rates(
                "GARAGE_LOAD_HEALTHZ_RATES",
                "1000,2000,3333,5000,7500,10000,15000,20000",
            ),
        }
    }
}

/// The coordinator child process; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Server {
    async fn start(bin: &Path, state_dir: &Path, database: &str) -> Server {
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

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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
async fn signed_post(
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
        now_secs(),
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
enum Target {
    Heartbeat,
    Healthz,
}

/// The outcome of one step.
#[derive(Debug)]
struct Step {
    rate: u32,
    achieved: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
    cores: [f64; 4],
}

impl Step {
    fn passes(&self, p99_limit_ms: f64) -> bool {
        self.errors == 0
            && self.p99_ms < p99_limit_ms
            && self.achieved >= 0.95 * f64::from(self.rate)
    }
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

/// Offers `rate` requests per second for `warmup + measure`, each scheduled
/// at a fixed offset from the start; only requests scheduled after the
/// warm-up are counted.
async fn run_step(
    http: &reqwest::Client,
    server: &Server,
    nodes: &[Arc<NodeIdentity>],
    body: &Arc<Vec<u8>>,
    target: Target,
    rate: u32,
    plan: &Plan,
) -> Step {
    let total = ((plan.warmup + plan.step).as_secs_f64() * f64::from(rate)) as u64;
    let warm = (plan.warmup.as_secs_f64() * f64::from(rate)) as u64;
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

async fn register_all(
    http: &reqwest::Client,
    base: &str,
    nodes: &[Arc<NodeIdentity>],
) -> (Duration, usize) {
    // One join token admits them all (the coordinator runs in token mode).
    let made: serde_json::Value = http
        .post(format!("{base}/api/join-tokens"))
        .bearer_auth(LOAD_ADMIN_TOKEN)
        .json(&serde_json::json!({"uses": nodes.len()}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("a join token")
        .json()
        .await
        .expect("its JSON");
    let join_token: Arc<str> = made["token"].as_str().expect("token").into();
    let started = Instant::now();
    let mut next = 0usize;
    let mut failures = 0usize;
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < REGISTER_CONCURRENCY && next < nodes.len() {
            let node = Arc::clone(&nodes[next]);
            let http = http.clone();
            let base = base.to_string();
            let join_token = Arc::clone(&join_token);
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

fn print_table(title: &str, steps: &[Step], plan: &Plan, postgres: bool) {
    println!("\n{title}\n");
    println!(
        "| offered req/s | achieved req/s | p50 ms | p99 ms | max ms | errors | coordinator cores | generator cores |{} machine cores | p99 < {} ms |",
        if postgres { " postgres cores |" } else { "" },
        plan.p99_limit_ms
    );
    println!(
        "|---:|---:|---:|---:|---:|---:|---:|---:|{}---:|:---:|",
        if postgres { "---:|" } else { "" }
    );
    for s in steps {
        let pg = if postgres {
            format!(" {:.2} |", s.cores[2])
        } else {
            String::new()
        };
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.2} | {:.2} |{pg} {:.2} | {} |",
            s.rate,
            s.achieved,
            s.p50_ms,
            s.p99_ms,
            s.max_ms,
            s.errors,
            s.cores[0],
            s.cores[1],
            s.cores[3],
            if s.passes(plan.p99_limit_ms) {
                "yes"
            } else {
                "no"
            }
        );
    }
}

/// Runs rates in order and returns every step run. It stops after two
/// failing steps in a row, or after one that saturates (errors, or p99 over
/// a second), since higher rates only queue longer.
async fn search(
    http: &reqwest::Client,
    server: &Server,
    nodes: &[Arc<NodeIdentity>],
    body: &Arc<Vec<u8>>,
    target: Target,
    rates: &[u32],
    plan: &Plan,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for &rate in rates {
        let step = run_step(http, server, nodes, body, target, rate, plan).await;
        eprintln!("{target:?} {rate}/s: {step:?}");
        let saturated = step.errors > 0 || step.p99_ms > 1000.0;
        let failed_twice = !step.passes(plan.p99_limit_ms)
            && steps
                .last()
                .is_some_and(|s: &Step| !s.passes(plan.p99_limit_ms));
        steps.push(step);
        if saturated || failed_twice {
            break;
        }
        // Let the liveness sweep and the database settle between steps.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    steps
}

fn best(steps: &[Step], plan: &Plan) -> Option<u32> {
    steps
        .iter()
        .filter(|s| s.passes(plan.p99_limit_ms))
        .map(|s| s.rate)
        .max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load benchmark: run benches/heartbeat_load.sh"]
async fn heartbeat_throughput_and_p99() {
    let plan = Plan::from_env();
    let postgres = std::env::var("GARAGE_LOAD_DB").as_deref() == Ok("postgres");
    let tmp = tempfile::tempdir().expect("tempdir");
    let database = if postgres {
        let base = std::env::var("GARAGE_TEST_POSTGRES_URL")
            .expect("GARAGE_LOAD_DB=postgres needs GARAGE_TEST_POSTGRES_URL");
        match coordinator_support::postgres_db(&base, "load").await {
            coordinator_support::Db::Postgres(url) => url,
            coordinator_support::Db::Sqlite => unreachable!("postgres_db makes a PostgreSQL URL"),
        }
    } else {
        format!("sqlite://{}", tmp.path().join("coordinator.db").display())
    };
    println!("binary: {}", plan.bin.display());
    println!(
        "plan: {plan:?}, database: {}",
        if postgres { "postgres" } else { "sqlite" }
    );
    let server = Server::start(&plan.bin, tmp.path(), &database).await;

    let made = Instant::now();
    let nodes: Vec<Arc<NodeIdentity>> = (0..plan.nodes)
        .map(|i| {
            Arc::new(
                NodeIdentity::load_or_create(&tmp.path().join(format!("nodes/{i}")))
                    .expect("identity"),
            )
        })
        .collect();
    println!(
        "made {} identities in {:.1} s",
        nodes.len(),
        made.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()
        .expect("http client");
    let (took, failures) = register_all(&http, &server.base, &nodes).await;
    println!(
        "registered {} nodes in {:.2} s ({:.0} registrations/s, {REGISTER_CONCURRENCY} concurrent), {failures} failed",
        nodes.len(),
        took.as_secs_f64(),
        nodes.len() as f64 / took.as_secs_f64()
    );
    assert_eq!(failures, 0, "registrations failed");

    let body = Arc::new(heartbeat_body());
    println!("heartbeat body: {} bytes", body.len());
    let heartbeats = search(
        &http,
        &server,
        &nodes,
        &body,
        Target::Heartbeat,
        &plan.rates,
        &plan,
    )
    .await;
    print_table(
        "heartbeats (POST /api/nodes/{id}/heartbeat, signed)",
        &heartbeats,
        &plan,
        postgres,
    );
    let hb_best = best(&heartbeats, &plan);
    match hb_best {
        Some(rate) => println!(
            "\nanswer: {rate} heartbeats/s with p99 < {} ms = {} nodes at a {INTERVAL_SECS} s interval (goal 100000)",
            plan.p99_limit_ms,
            u64::from(rate) * INTERVAL_SECS
        ),
        None => println!("\nanswer: no step passed"),
    }
    if !plan.healthz_rates.is_empty() {
        let healthz = search(
            &http,
            &server,
            &nodes,
            &body,
            Target::Healthz,
            &plan.healthz_rates,
            &plan,
        )
        .await;
        print_table(
            "peer: GET /healthz on the same server",
            &healthz,
            &plan,
            postgres,
        );
        let hz_best = best(&healthz, &plan);
        println!(
            "\nhealthz: highest passing step {hz_best:?} req/s; heartbeat / healthz = {}",
            match (hb_best, hz_best) {
                (Some(h), Some(z)) => format!("{:.2}", f64::from(h) / f64::from(z)),
                _ => "n/a".into(),
            }
        );
    }
    // sqlx warns about every statement slower than a second: a sign of
    // disk or CPU stalls rather than of the offered rate alone.
    let log = std::fs::read_to_string(tmp.path().join("coordinator.log")).unwrap_or_default();
    println!(
        "coordinator log: {} lines, {} slow-statement warnings, {} errors",
        log.lines().count(),
        log.matches("slow statement").count(),
        log.lines().filter(|l| l.contains("ERROR")).count()
    );
}
