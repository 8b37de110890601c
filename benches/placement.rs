//! Placement, settlement and scoring throughput (issues 11, 12 and 13): simulated nodes
//! (signed HTTP claimers, no Docker) claiming and completing no-op jobs
//! through one coordinator binary, on SQLite and on PostgreSQL (when
//! `GARAGE_TEST_POSTGRES_URL` is set). Jobs are queued first, then every
//! claimer loops claim → complete until none is left; a placement is one
//! leased claim. Each database runs four times, each on a fresh schema:
//! `free` (the admin's jobs: no ledger) and `paid` (a funded client's jobs:
//! a hold at submission, a settlement at completion — pay, fee, refund),
//! each with the coordinator's `--placement first-come` (a claim takes the
//! oldest job it fits) and `--placement scored` (claims park and placement
//! rounds score them, the default). The ratio paid/free of completed jobs
//! per second (scored) is the ledger's cost (issue 12's goal: < 20 %, a
//! ratio above 0.80); scored/first-come (paid) is the scoring's cost
//! (issue 13's goal: < 25 %, a ratio above 0.75). Prints
//! placements/s and the claim latency (p50, p99) of leased claims, against
//! issue 11's goal of ≥ 1,000 placements/s at p99 < 50 ms.
//!
//!   cargo bench --bench placement
//!   GARAGE_PLACEMENT_JOBS=5000 GARAGE_PLACEMENT_CLAIMERS=32 cargo bench --bench placement
//!
//! Parameters (environment): GARAGE_PLACEMENT_JOBS (2000),
//! GARAGE_PLACEMENT_CLAIMERS (16), GARAGE_PLACEMENT_DBS (sqlite postgres).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::coordinator::api::{ClaimRequest, CompleteRequest, JobType, Outcome, RegisterRequest};
use garage::coordinator::CoordinatorClient;
use garage::identity::NodeIdentity;
use serde_json::json;
use tokio::sync::Mutex;

#[path = "support/mod.rs"]
mod support;
use support::{percentile, postgres_schema};

const ADMIN_TOKEN: &str = "placement-bench-admin-token-0123456789";

fn param(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An account funded for every job of the run; its API key.
async fn funded_client(http: &reqwest::Client, base: &str) -> String {
    let made: serde_json::Value = http
        .post(format!("{base}/api/accounts"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "bench"}))
        .send()
        .await
        .expect("account")
        .json()
        .await
        .expect("account json");
    let key = made["api_key"].as_str().expect("api_key").to_string();
    let minted = http
        .post(format!("{base}/api/ledger/mint"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Idempotency-Key", "bench")
        .json(&json!({"account": format!("client:{}", made["id"].as_str().expect("id")), "amount_ugai": 1_000_000_000_000i64}))
        .send()
        .await
        .expect("mint");
    assert_eq!(minted.status().as_u16(), 201);
    key
}

/// The ledger's audit holds and nothing is left held.
async fn check_audit(http: &reqwest::Client, base: &str) {
    let audit: serde_json::Value = http
        .get(format!("{base}/api/ledger/audit"))
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("audit json");
    assert_eq!(audit["ok"], true, "{audit}");
    assert_eq!(audit["open_holds"], 0, "{audit}");
}

/// One run; returns placements (= completed and, when paid, settled jobs) per second.
async fn run(
    db: &str,
    mode: Mode,
    database: &str,
    dir: &Path,
    jobs: usize,
    claimers: usize,
) -> f64 {
    let Mode { paid, placement } = mode;
    let mode = format!("{} {placement:<10}", if paid { "paid" } else { "free" });
    let run_dir = dir.join(format!("{db}-{}", mode.trim().replace(' ', "-")));
    let (_coordinator, base) = support::start(
        &run_dir,
        database,
        ADMIN_TOKEN,
        &["--lease-duration", "60s", "--placement", placement],
    )
    .await;
    let mut nodes = Vec::with_capacity(claimers);
    for i in 0..claimers {
        let identity =
            NodeIdentity::load_or_create(&run_dir.join(format!("node-{i}"))).expect("identity");
        let client = CoordinatorClient::new(&base, Arc::new(identity)).expect("client");
        let request: RegisterRequest = client.registration(Vec::new(), Default::default(), None);
        client.register(&request).await.expect("registered");
        nodes.push(client);
    }
    let http = reqwest::Client::new();
    let token = if paid {
        funded_client(&http, &base).await
    } else {
        ADMIN_TOKEN.to_string()
    };
    let submitted = Instant::now();
    let mut submitters = tokio::task::JoinSet::new();
    for part in 0..8 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        submitters.spawn(async move {
            for _ in (part..jobs).step_by(8) {
                let body = json!({"type": "inference", "inference": {"model": "noop", "prompt": "hi"}, "placement": {"market": "cpu"}});
                let response = http
                    .post(format!("{base}/api/jobs"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("submit");
                assert_eq!(response.status().as_u16(), 201);
            }
        });
    }
    submitters.join_all().await;
    let submit_secs = submitted.elapsed().as_secs_f64();

    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for client in nodes {
        let latencies = latencies.clone();
        workers.spawn(async move {
            let request = ClaimRequest {
                slots: 1,
                job_types: vec![JobType::Container, JobType::Inference],
                labels: Default::default(),
                wait_seconds: Some(0),
                power: None,
            };
            loop {
                let asked = Instant::now();
                let Some(lease) = client.claim(&request).await.expect("claim") else {
                    return;
                };
                latencies.lock().await.push(asked.elapsed());
                let done = CompleteRequest {
                    outcome: Outcome::Succeeded,
                    reason: None,
                    result: json!({}),
                };
                client
                    .complete(lease.lease_id, &done)
                    .await
                    .expect("complete");
            }
        });
    }
    workers.join_all().await;
    let secs = started.elapsed().as_secs_f64();
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    assert_eq!(latencies.len(), jobs, "every job placed once");
    check_audit(&http, &base).await;
    println!(
        "{db:<9} {mode}  {jobs:>6} jobs {claimers:>3} claimers  submit {:>7.0}/s  placements {:>7.0}/s  claim p50 {:>6.1} ms  p99 {:>6.1} ms",
        jobs as f64 / submit_secs,
        jobs as f64 / secs,
        percentile(&latencies, 50.0).as_secs_f64() * 1000.0,
        percentile(&latencies, 99.0).as_secs_f64() * 1000.0,
    );
    jobs as f64 / secs
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let jobs = param("GARAGE_PLACEMENT_JOBS", 2000);
    let claimers = param("GARAGE_PLACEMENT_CLAIMERS", 16);
    let dbs = std::env::var("GARAGE_PLACEMENT_DBS").unwrap_or_else(|_| "sqlite postgres".into());
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "placement benchmark: {} cores, coordinator {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env!("CARGO_BIN_EXE_garage")
    );
    for db in dbs.split_whitespace() {
        let mut rates = Vec::new();
        for mode in MODES {
            let name = format!(
                "{}-{}",
                if mode.paid { "paid" } else { "free" },
                mode.placement
            );
            let database = match db {
                "sqlite" => format!(
                    "sqlite://{}",
                    dir.path().join(format!("placement-{name}.db")).display()
                ),
                "postgres" => match std::env::var("GARAGE_TEST_POSTGRES_URL") {
                    Ok(url) if !url.is_empty() => {
                        postgres_schema(
                            &url,
                            &format!(
                                "placement_bench_{}_{}",
                                std::process::id(),
                                name.replace('-', "_")
                            ),
                        )
                        .await
                    }
                    _ => {
                        println!("postgres  skipped: GARAGE_TEST_POSTGRES_URL is not set");
                        break;
                    }
                },
                other => panic!("unknown database {other:?} in GARAGE_PLACEMENT_DBS"),
            };
            rates.push(run(db, mode, &database, dir.path(), jobs, claimers).await);
        }
        if let [free_first, paid_first, free_scored, paid_scored] = rates[..] {
            println!(
                "{db:<9} ledger:  paid/free (scored) = {:.2} (first-come {:.2}); goal above 0.80",
                paid_scored / free_scored,
                paid_first / free_first
            );
            println!(
                "{db:<9} scoring: scored/first-come (paid) = {:.2} (free {:.2}); goal above 0.75",
                paid_scored / paid_first,
                free_scored / free_first
            );
        }
    }
}

/// What one run measures: the ledger on or off, and the placement rule.
#[derive(Debug, Clone, Copy)]
struct Mode {
    paid: bool,
    placement: &'static str,
}

const MODES: [Mode; 4] = [
    Mode {
        paid: false,
        placement: "first-come",
    },
    Mode {
        paid: true,
        placement: "first-come",
    },
    Mode {
        paid: false,
        placement: "scored",
    },
    Mode {
        paid: true,
        placement: "scored",
    },
];
