//! Heartbeat throughput and p99 of the coordinator (issue 5): a benchmark,
//! run through `benches/heartbeat_load.sh` (or `cargo bench --bench
//! coordinator_load`). It starts the real `garage coordinator` binary on
//! SQLite (or on PostgreSQL with `GARAGE_LOAD_DB=postgres`), registers
//! `GARAGE_LOAD_NODES` node identities, then offers signed heartbeats
//! open-loop at each rate of `GARAGE_LOAD_RATES` and, as the HTTP stack's
//! ceiling, `GET /healthz` at the same rates, and prints a table per target.
//! `tests/coordinator_load.rs` checks, at a low rate, that every request of
//! the same generator is answered.

#[path = "../tests/coordinator_support/mod.rs"]
mod coordinator_support;
#[path = "../tests/load_support/mod.rs"]
mod load_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::identity::NodeIdentity;
use load_support::generator::{
    http_client, make_nodes, register_all, run_step, Server, Step, StepTime, Target, INTERVAL_SECS,
    REGISTER_CONCURRENCY,
};
use load_support::heartbeat_body;

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
    step: StepTime,
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
            step: StepTime {
                warmup: Duration::from_secs(env_or("GARAGE_LOAD_WARMUP_SECS", 3)),
                measure: Duration::from_secs(env_or("GARAGE_LOAD_STEP_SECS", 12)),
            },
            p99_limit_ms: env_or("GARAGE_LOAD_P99_MS", 50.0),
            healthz_rates: rates(
                "GARAGE_LOAD_HEALTHZ_RATES",
                "1000,2000,3333,5000,7500,10000,15000,20000",
            ),
        }
    }
}

/// A step passes with no errors, p99 under the limit, and 95 % of the
/// offered rate achieved.
fn passes(step: &Step, p99_limit_ms: f64) -> bool {
    step.errors == 0 && step.p99_ms < p99_limit_ms && step.achieved >= 0.95 * f64::from(step.rate)
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
            if passes(s, plan.p99_limit_ms) {
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
        let step = run_step(http, server, nodes, body, target, rate, plan.step).await;
        eprintln!("{target:?} {rate}/s: {step:?}");
        let saturated = step.errors > 0 || step.p99_ms > 1000.0;
        let failed_twice = !passes(&step, plan.p99_limit_ms)
            && steps
                .last()
                .is_some_and(|s: &Step| !passes(s, plan.p99_limit_ms));
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
        .filter(|s| passes(s, plan.p99_limit_ms))
        .map(|s| s.rate)
        .max()
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(heartbeat_throughput_and_p99());
}

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
    let nodes = make_nodes(plan.nodes);
    println!(
        "made {} identities in {:.1} s",
        nodes.len(),
        made.elapsed().as_secs_f64()
    );
    let http = http_client();
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
