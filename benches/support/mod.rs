//! What the coordinator benchmarks share (`#[path = "support/mod.rs"]`):
//! the release coordinator binary on a loopback port (killed on drop), a
//! fresh PostgreSQL schema per run, and percentiles of latencies.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// The coordinator's process, killed on drop.
pub struct Coordinator(Child);

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `garage coordinator` on a free loopback port with open registration,
/// `database`, `admin_token` and `extra` flags; waits for `/healthz`.
pub async fn start(
    state_dir: &Path,
    database: &str,
    admin_token: &str,
    extra: &[&str],
) -> (Coordinator, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--database", database, "--registration", "open"])
        .args(extra)
        .env("GARAGE_ADMIN_TOKEN", admin_token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start garage coordinator");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "coordinator not healthy in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Coordinator(child), base)
}

/// A fresh schema `schema` on the PostgreSQL server at `base` (dropped
/// first if a run left it) and a URL that uses it.
pub async fn postgres_schema(base: &str, schema: &str) -> String {
    let mut conn = sqlx::postgres::PgConnection::connect(base)
        .await
        .expect("connect to GARAGE_TEST_POSTGRES_URL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    )))
    .execute(&mut conn)
    .await
    .expect("make a schema");
    conn.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

/// The `p`-th percentile (0-100, nearest rank) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
