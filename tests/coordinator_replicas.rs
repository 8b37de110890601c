//! Two coordinator replicas (the real binary) on one PostgreSQL: 500 jobs,
//! 8 simulated nodes claiming and completing through both replicas at
//! once. Afterwards the database must show every job completed exactly
//! once: one lease and one RUNNING transition per job, none lost, none
//! run twice.
//! And a node key replaced on one replica is refused on the other.

mod coordinator_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator_support::binary::Replica;
use coordinator_support::jobs::submission;
use coordinator_support::*;
use garage::coordinator::api::{HeartbeatRequest, Outcome};
use serde_json::json;
use sqlx::Connection;
use tokio::sync::Mutex;

const JOBS: usize = 500;
const CLAIMERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_complete_every_job_exactly_once() {
    let Some(base) = postgres_url() else {
        return;
    };
    let Db::Postgres(url) = postgres_db(&base, "replicas").await else {
        unreachable!("postgres_db makes a PostgreSQL URL");
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Replica::start(&tmp.path().join("a"), &url).await;
    let b = Replica::start(&tmp.path().join("b"), &url).await;
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
        pg_count(&mut conn, "SELECT COUNT(*) FROM jobs").await,
        JOBS as i64
    );
    assert_eq!(
        pg_count(
            &mut conn,
            "SELECT COUNT(*) FROM jobs WHERE state = 'SUCCEEDED' AND attempt = 1"
        )
        .await,
        JOBS as i64,
        "none lost, none retried"
    );
    assert_eq!(
        pg_count(&mut conn, "SELECT COUNT(*) FROM leases").await,
        JOBS as i64
    );
    assert_eq!(
        pg_count(&mut conn, "SELECT COUNT(DISTINCT job_id) FROM leases").await,
        JOBS as i64,
        "one lease per job: none ran twice"
    );
    assert_eq!(
        pg_count(
            &mut conn,
            "SELECT COUNT(*) FROM job_events WHERE state = 'RUNNING'"
        )
        .await,
        JOBS as i64
    );
    assert_eq!(
        pg_count(
            &mut conn,
            "SELECT COUNT(*) FROM job_events WHERE state = 'SUCCEEDED'"
        )
        .await,
        JOBS as i64
    );
    conn.close().await.ok();
}

/// Replica B caches a node's key; an admin deletes the node on replica A
/// and it registers again there with a new key (a stolen or lost key is
/// replaced this way): B refuses the old key within a second (it hears the
/// deletion through PostgreSQL's NOTIFY) and accepts the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_key_is_refused_on_the_other_replica() {
    let Some(base) = postgres_url() else {
        return;
    };
    let Db::Postgres(url) = postgres_db(&base, "replica_keys").await else {
        unreachable!("postgres_db makes a PostgreSQL URL");
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Replica::start(&tmp.path().join("a"), &url).await;
    let b = Replica::start(&tmp.path().join("b"), &url).await;
    let node = TestNode::new(&tmp.path().join("node"), &a.api);
    node.register(None).await;
    let old_key_on_b = TestNode::new(&tmp.path().join("node"), &b.api);
    old_key_on_b.heartbeat("cached").await;

    let (status, _) = a
        .api
        .admin_send(
            reqwest::Method::DELETE,
            &format!("/api/nodes/{}", node.id()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let token = a.api.join_token(json!({"node_id": node.id()})).await;
    let twin = node.twin(&tmp.path().join("twin"), &a.api);
    twin.register_with(Some(&token))
        .await
        .expect("the new key registers");

    let replaced = Instant::now();
    let request = HeartbeatRequest {
        observed_generation: Some("old".into()),
        ready: Some(true),
        gpus: Vec::new(),
        status: json!({}),
        power: None,
        spec_revision: None,
    };
    loop {
        match old_key_on_b.client.heartbeat(&request).await {
            Err(err) => {
                assert_eq!(err.code(), Some("invalid_signature"), "{err}");
                break;
            }
            Ok(_) => assert!(
                replaced.elapsed() < Duration::from_secs(1),
                "replica B still takes the old key after 1 s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "replica B refused the old key {:?} after the new one registered",
        replaced.elapsed()
    );
    TestNode::new(&tmp.path().join("twin"), &b.api)
        .heartbeat("new")
        .await;
}
