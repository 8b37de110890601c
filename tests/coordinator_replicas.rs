//! Two coordinator replicas (the real binary) on one PostgreSQL: 500 jobs,
//! 8 simulated nodes claiming and completing through both replicas at
//! once. Afterwards the database must show every job completed exactly
//! once: one lease and one RUNNING transition per job, none lost, none
//! run twice.

mod coordinator_support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator_support::jobs::submission;
use coordinator_support::*;
use garage::coordinator::api::Outcome;
use serde_json::json;
use sqlx::Connection;
use tokio::sync::Mutex;

const JOBS: usize = 500;
const CLAIMERS: usize = 8;

struct Replica {
    child: Child,
    api: Api,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn replica(state_dir: &Path, database: &str) -> Replica {
    let port = free_port();
    let log = std::fs::File::create(state_dir.with_extension("log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--database", database, "--registration", "open"])
        .args(["--lease-duration", "5s"])
        .env("GARAGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("GARAGE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start garage coordinator");
    let replica = Replica {
        child,
        api: Api::external(&format!("http://127.0.0.1:{port}")),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{}/healthz", replica.api.base))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "replica on {port} not healthy in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    replica
}

async fn count(conn: &mut sqlx::PgConnection, query: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(query)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_complete_every_job_exactly_once() {
    let Some(base) = postgres_url() else {
        return;
    };
    let Db::Postgres(url) = postgres_db(&base, "replicas").await else {
        unreachable!("postgres_db makes a PostgreSQL URL");
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = replica(&tmp.path().join("a"), &url).await;
    let b = replica(&tmp.path().join("b"), &url).await;
    let key = a.api.account("load").await;

    let done: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut nodes = Vec::new();
    for i in 0..CLAIMERS {
        let api = if i % 2 == 0 { &a.api } else { &b.api };
        let node = TestNode::new(&tmp.path().join(format!("node-{i}")), api);
        node.register(None).await;
        nodes.push(node);
    }
    let submitter = {
        let (a, b, key) = (a.api.clone(), b.api.clone(), key.clone());
        tokio::spawn(async move {
            for i in 0..JOBS {
                let api = if i % 2 == 0 { &a } else { &b };
                api.submit(&key, submission("cpu")).await;
            }
        })
    };
    let mut claimers = tokio::task::JoinSet::new();
    for (i, node) in nodes.into_iter().enumerate() {
        let done = done.clone();
        claimers.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(240);
            while done.lock().await.len() < JOBS {
                assert!(Instant::now() < deadline, "jobs left after 240 s");
                let Some(lease) = node.claim(1).await else {
                    continue;
                };
                let result = json!({"by": i});
                let state = node
                    .complete(&lease, Outcome::Succeeded, result)
                    .await
                    .expect("completed under a live lease");
                assert_eq!(state, "SUCCEEDED");
                done.lock().await.push(lease.job_id.to_string());
            }
        });
    }
    submitter.await.expect("submitted every job");
    while let Some(joined) = claimers.join_next().await {
        joined.expect("claimer");
    }
    let done = done.lock().await.clone();
    let unique: HashSet<&String> = done.iter().collect();
    assert_eq!(
        (done.len(), unique.len()),
        (JOBS, JOBS),
        "each job completed once"
    );

    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM jobs").await,
        JOBS as i64
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) FROM jobs WHERE state = 'SUCCEEDED' AND attempt = 1"
        )
        .await,
        JOBS as i64,
        "none lost, none retried"
    );
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM leases").await,
        JOBS as i64
    );
    assert_eq!(
        count(&mut conn, "SELECT COUNT(DISTINCT job_id) FROM leases").await,
        JOBS as i64,
        "one lease per job: none ran twice"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) FROM job_events WHERE state = 'RUNNING'"
        )
        .await,
        JOBS as i64
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) FROM job_events WHERE state = 'SUCCEEDED'"
        )
        .await,
        JOBS as i64
    );
    conn.close().await.ok();
}
