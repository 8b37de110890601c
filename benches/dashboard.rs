//! The dashboard at fleet scale (issue 15): the coordinator binary with
//! 10,000 nodes (their regions and ledger accounts), 100,000 jobs, 20,000
//! energy reports and 5,000 settled gateway bills of the last minute in
//! its store, written straight into the database after the coordinator
//! made its schema. Each page is asked for sequentially over one kept-alive
//! loopback connection, interleaved request by request with `/healthz` of
//! the same server (its floor: routing, HTTP and the client), after a
//! warm-up; prints p50/p95/p99 per page and the overview's p95 ratio to
//! `/healthz`'s. Goal: the overview's p95 < 100 ms.
//!
//!   cargo bench --bench dashboard
//!   GARAGE_DASHBOARD_DBS=sqlite cargo bench --bench dashboard
//!
//! Parameters (environment): GARAGE_DASHBOARD_NODES (10000),
//! GARAGE_DASHBOARD_JOBS (100000), GARAGE_DASHBOARD_REQUESTS (300 per
//! page), GARAGE_DASHBOARD_DBS (sqlite postgres; PostgreSQL where
//! `GARAGE_TEST_POSTGRES_URL` is set).

use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection};

#[path = "support/mod.rs"]
mod support;
use support::percentile;

const ADMIN_TOKEN: &str = "dashboard-bench-admin-token-0123456789";
const MARKETS: [&str; 8] = [
    "cpu",
    "rtx-3090",
    "rtx-4090",
    "a100",
    "h100",
    "l40s",
    "rtx-a6000",
    "mi300x",
];
const AREAS: [(&str, f64, f64); 4] = [
    ("SE1", 67.85, 20.2),
    ("SE2", 63.8, 20.3),
    ("SE3", 59.33, 18.07),
    ("SE4", 55.6, 13.0),
];
/// Rows per INSERT statement.
const BATCH: usize = 500;

fn param(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Inserts `rows` (each a parenthesised tuple) into `table (columns)`,
/// [`BATCH`] rows per statement, in one transaction.
async fn insert(conn: &mut AnyConnection, table: &str, rows: impl Iterator<Item = String>) {
    let rows: Vec<String> = rows.collect();
    let mut tx = conn.begin().await.expect("begin");
    for chunk in rows.chunks(BATCH) {
        let sql = format!("INSERT INTO {table} VALUES {}", chunk.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|err| panic!("seed {table}: {err}"));
    }
    tx.commit().await.expect("commit");
}

fn node_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// The store of a large network, written straight into the database.
async fn seed(database: &str, nodes: usize, jobs: usize, now_ms: i64) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(database).await.expect("connect");
    insert(
        &mut conn,
        "nodes (node_id, public_key, market, gpu_info, benchmark, country, region, latitude, \
         longitude, state, registered_at, updated_at, last_seen_at, heartbeat_seq, name)",
        (0..nodes).map(|i| {
            let (area, lat, lon) = AREAS[i % AREAS.len()];
            let state = if i % 10 == 0 { "offline" } else { "online" };
            format!(
                "('{}', '{:064x}', '{}', '[]', '{{\"tokens_per_second\": 40}}', 'SE', '{area}', \
                 {lat}, {lon}, '{state}', {now_ms}, {now_ms}, {now_ms}, 100, 'node-{i}')",
                node_id(i),
                i,
                MARKETS[i % MARKETS.len()]
            )
        }),
    )
    .await;
    insert(
        &mut conn,
        "node_regions (node_id, country, price_area, cell, latitude, longitude, gpus, vram_mib, \
         tokens_per_second)",
        (0..nodes).map(|i| {
            let (area, lat, lon) = AREAS[i % AREAS.len()];
            let lat = lat + (i % 7) as f64 * 0.1;
            format!(
                "('{}', 'SE', '{area}', '{lat:.1},{lon:.1}', {lat}, {lon}, 1, 24576, 40.0)",
                node_id(i)
            )
        }),
    )
    .await;
    insert(
        &mut conn,
        "ledger_accounts (account, kind, balance, created_at)",
        (0..nodes).map(|i| format!("('node:{}', 'node', {}, {now_ms})", node_id(i), 1000 + i)),
    )
    .await;
    insert(
        &mut conn,
        "jobs (job_id, owner, kind, spec, market, labels, constraints, timeout_ms, max_attempts, \
         attempt, state, created_at, updated_at)",
        (0..jobs).map(|i| {
            let state = match i % 100 {
                0 | 1 => "QUEUED",
                2..=4 => "RUNNING",
                _ => "SUCCEEDED",
            };
            format!(
                "('10000000-0000-4000-8000-{i:012}', 'admin', 'container', '{{}}', '{}', '{{}}', \
                 '{{}}', 60000, 2, 1, '{state}', {}, {})",
                MARKETS[i % MARKETS.len()],
                now_ms - (jobs - i) as i64 * 1000,
                now_ms - (jobs - i) as i64 * 1000,
            )
        }),
    )
    .await;
    insert(
        &mut conn,
        "job_energy (job_id, node_id, country, price_area, cell, energy_wh, solar_wh, grid_wh, \
         seconds, measured_by, intensity_g_per_kwh, intensity_source, co2_grams, recorded_at)",
        (0..jobs / 5).map(|i| {
            format!(
                "('10000000-0000-4000-8000-{i:012}', '{}', 'SE', 'SE3', '', 1.5, 0.5, 1.0, 60, \
                 'estimate', 40, 'default', 0.04, {})",
                node_id(i % nodes.max(1)),
                now_ms - (i % 3600) as i64 * 1000
            )
        }),
    )
    .await;
    insert(
        &mut conn,
        "gateway_bills (request_id, payer, model, market, price_in, price_out, held, state, \
         node_id, prompt_tokens, completion_tokens, paid, fee, refunded, created_at, settled_at)",
        (0..5000).map(|i| {
            format!(
                "('req-{i}', 'client:x', 'smollm2', 'cpu', 20, 60, 100, 'settled', '{}', 10, 50, \
                 90, 5, 5, {now_ms}, {})",
                node_id(i % nodes.max(1)),
                now_ms - (i % 50) as i64 * 1000
            )
        }),
    )
    .await;
    conn.close().await.ok();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn time(client: &reqwest::Client, url: &str) -> Duration {
    let start = Instant::now();
    let response = client.get(url).send().await.expect("GET");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.bytes().await.expect("body");
    start.elapsed()
}

/// Each page interleaved with `/healthz`; returns (page, p95 ms) rows.
async fn measure(base: &str, pages: &[String], requests: usize) -> Vec<(String, [Duration; 3])> {
    let client = reqwest::Client::new();
    let mut results = Vec::new();
    let mut health = Vec::new();
    for page in pages {
        let url = format!("{base}{page}");
        for _ in 0..requests / 10 {
            time(&client, &url).await;
        }
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            samples.push(time(&client, &url).await);
            health.push(time(&client, &format!("{base}/healthz")).await);
        }
        samples.sort();
        let p = |q| percentile(&samples, q * 100.0);
        results.push((page.clone(), [p(0.5), p(0.95), p(0.99)]));
    }
    health.sort();
    let p = |q| percentile(&health, q * 100.0);
    results.push(("/healthz".into(), [p(0.5), p(0.95), p(0.99)]));
    results
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let nodes = param("GARAGE_DASHBOARD_NODES", 10_000);
    let jobs = param("GARAGE_DASHBOARD_JOBS", 100_000);
    let requests = param("GARAGE_DASHBOARD_REQUESTS", 300);
    let dbs = std::env::var("GARAGE_DASHBOARD_DBS").unwrap_or_else(|_| "sqlite postgres".into());
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "dashboard benchmark: {} cores, {nodes} nodes, {jobs} jobs, {requests} requests per page, coordinator {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env!("CARGO_BIN_EXE_garage")
    );
    for db in dbs.split_whitespace() {
        let database = match db {
            "sqlite" => format!("sqlite://{}", dir.path().join("dashboard.db").display()),
            "postgres" => match std::env::var("GARAGE_TEST_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => {
                    support::postgres_schema(
                        &url,
                        &format!("dashboard_bench_{}", std::process::id()),
                    )
                    .await
                }
                _ => {
                    println!("postgres  skipped: GARAGE_TEST_POSTGRES_URL is not set");
                    continue;
                }
            },
            other => panic!("unknown database {other:?} in GARAGE_DASHBOARD_DBS"),
        };
        let state = dir.path().join(format!("state-{db}"));
        // The seeded nodes send no heartbeats: keep them as seeded.
        let (coordinator, base) = support::start(
            &state,
            &database,
            ADMIN_TOKEN,
            &["--heartbeat-interval", "1h"],
        )
        .await;
        let now_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits");
        let seeding = Instant::now();
        seed(&database, nodes, jobs, now_ms).await;
        println!("{db:<9} seeded in {:.1} s", seeding.elapsed().as_secs_f64());
        let pages = [
            "/".to_string(),
            "/nodes".into(),
            format!("/nodes/{}", node_id(1)),
            "/markets".into(),
            "/regions".into(),
        ];
        let results = measure(&base, &pages, requests).await;
        println!(
            "{db:<9} {:<52} {:>8} {:>8} {:>8}",
            "page", "p50 ms", "p95 ms", "p99 ms"
        );
        for (page, [p50, p95, p99]) in &results {
            println!(
                "{db:<9} {page:<52} {:>8.2} {:>8.2} {:>8.2}",
                ms(*p50),
                ms(*p95),
                ms(*p99)
            );
        }
        let p95 = |name: &str| {
            results
                .iter()
                .find(|(page, _)| page == name)
                .map_or(Duration::ZERO, |(_, q)| q[1])
        };
        println!(
            "{db:<9} overview p95 {:.2} ms (goal < 100 ms); overview p95 / healthz p95 = {:.1}",
            ms(p95("/")),
            p95("/").as_secs_f64() / p95("/healthz").as_secs_f64().max(1e-9)
        );
        drop(coordinator);
    }
}
