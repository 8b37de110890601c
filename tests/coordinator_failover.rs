//! The replica drill: two coordinator replicas (the real binary) on one
//! PostgreSQL behind a real HAProxy, under load — nodes heartbeating and
//! nodes claiming and completing jobs, all through the load balancer —
//! and replica A SIGKILLed in the middle. Afterwards:
//! - no acknowledged heartbeat and no acknowledged completion is lost (each
//!   is in the database), every job completed exactly once and the ledger's
//!   audit holds;
//! - every request A acknowledged, sent again to B (and through the load
//!   balancer), is refused as a replay;
//! - errors happen only from the kill until [`ERRORS_STOP_WITHIN`] after it
//!   (the requests A had in flight), and B serves everything after.

mod coordinator_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coordinator_support::binary::Replica;
use coordinator_support::haproxy::LoadBalancer;
use coordinator_support::jobs::submission;
use coordinator_support::*;
use garage::coordinator::api::{
    ClaimRequest, CompleteRequest, HeartbeatRequest, JobType, Lease, Outcome,
};
use garage::identity::signing::{self, SignedHeaders};
use garage::identity::NodeIdentity;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

const HEARTBEATERS: usize = 16;
const CLAIMERS: usize = 8;
const JOBS: usize = 800;
/// How long a claimer "runs" each job, so completions go on past the kill.
const WORK: Duration = Duration::from_millis(50);
/// Each heartbeating node's pause between heartbeats.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(50);
const KILL_AFTER: Duration = Duration::from_secs(3);
const LOAD_AFTER_KILL: Duration = Duration::from_secs(5);
/// The stated bound: no request fails later than this after the kill.
const ERRORS_STOP_WITHIN: Duration = Duration::from_secs(2);
/// Every job done within this, lost leases (5 s) expired and re-run included.
const JOBS_DONE_WITHIN: Duration = Duration::from_secs(120);
/// The response header HAProxy adds: the replica that answered.
const SERVED_BY: &str = "x-served-by";

/// A signed request that was acknowledged, kept to be replayed.
#[derive(Debug, Clone)]
struct Acked {
    path: String,
    headers: SignedHeaders,
    body: Vec<u8>,
    /// The HAProxy server name of the replica that answered.
    replica: String,
}

/// What the load saw: acknowledged requests and failed ones (when).
#[derive(Debug, Default)]
struct Record {
    heartbeats: Vec<(uuid::Uuid, String, Acked)>,
    completions: Vec<(uuid::Uuid, Acked)>,
    failures: Vec<(Instant, String)>,
    answered_after_bound: usize,
}

/// The shared drill state.
struct Drill {
    http: reqwest::Client,
    base: String,
    coordinator: uuid::Uuid,
    record: Mutex<Record>,
    killed_at: Mutex<Option<Instant>>,
    stop_heartbeats: AtomicBool,
    done_jobs: Mutex<HashSet<uuid::Uuid>>,
}

/// An answer through the load balancer.
struct Answer {
    status: u16,
    body: Value,
    replica: String,
}

impl Drill {
    /// Signs `body` for `path` as `node` and POSTs it through the load
    /// balancer; the answer, or `None` (recorded) on a transport error.
    async fn post(
        &self,
        node: &NodeIdentity,
        path: &str,
        body: Vec<u8>,
    ) -> (SignedHeaders, Option<Answer>) {
        let headers = node.sign_request(
            self.coordinator,
            "POST",
            path,
            &body,
            now_secs(),
            &signing::new_nonce(),
        );
        let answer = send(&self.http, &self.base, path, &headers, body).await;
        match &answer {
            Err(err) => self.failed(format!("{path}: {err}")),
            Ok(a) if a.status >= 500 => self.failed(format!("{path}: {} {}", a.status, a.body)),
            Ok(_) => self.answered(),
        }
        (headers, answer.ok())
    }

    fn failed(&self, what: String) {
        let mut record = self.record.lock().expect("record");
        record.failures.push((Instant::now(), what));
    }

    fn answered(&self) {
        let killed_at = *self.killed_at.lock().expect("kill time");
        if killed_at.is_some_and(|at| at.elapsed() > ERRORS_STOP_WITHIN) {
            self.record.lock().expect("record").answered_after_bound += 1;
        }
    }
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    headers: &SignedHeaders,
    body: Vec<u8>,
) -> Result<Answer, reqwest::Error> {
    let mut request = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json");
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await?;
    let status = response.status().as_u16();
    let replica = response
        .headers()
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await?;
    Ok(Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        replica,
    })
}

/// One node's heartbeats until told to stop, each with its own generation
/// marker so the database can be searched for it.
async fn heartbeats(drill: Arc<Drill>, node: Arc<NodeIdentity>) {
    let path = format!("/api/nodes/{}/heartbeat", node.node_id());
    let mut k = 0u32;
    while !drill.stop_heartbeats.load(Ordering::Relaxed) {
        k += 1;
        let generation = format!("drill-{k}");
        let request = HeartbeatRequest {
            observed_generation: Some(generation.clone()),
            ready: Some(true),
            gpus: Vec::new(),
            status: json!({"conditions": [{"type": "Ready", "status": "True"}]}),
            power: None,
            spec_revision: None,
        };
        let body = serde_json::to_vec(&request).expect("serialises");
        let (headers, answer) = drill.post(&node, &path, body.clone()).await;
        if let Some(answer) = answer.filter(|a| a.status == 200) {
            let acked = Acked {
                path: path.clone(),
                headers,
                body,
                replica: answer.replica,
            };
            let mut record = drill.record.lock().expect("record");
            record.heartbeats.push((node.node_id(), generation, acked));
        }
        tokio::time::sleep(HEARTBEAT_EVERY).await;
    }
}

/// Completes `lease`, again (it is idempotent) until it is acknowledged or
/// the lease is gone (a replica died before its claim's answer came back;
/// the job is leased again once the lease expires).
async fn complete(drill: &Drill, node: &NodeIdentity, lease: &Lease) {
    let path = format!(
        "/api/nodes/{}/leases/{}/complete",
        node.node_id(),
        lease.lease_id
    );
    let request = CompleteRequest {
        outcome: Outcome::Succeeded,
        reason: None,
        result: json!({"by": node.node_id()}),
    };
    let body = serde_json::to_vec(&request).expect("serialises");
    for _ in 0..50 {
        let (headers, answer) = drill.post(node, &path, body.clone()).await;
        match answer {
            Some(a) if a.status == 200 => {
                assert_eq!(a.body["state"], "SUCCEEDED", "{}", a.body);
                let acked = Acked {
                    path,
                    headers,
                    body,
                    replica: a.replica,
                };
                let mut record = drill.record.lock().expect("record");
                record.completions.push((lease.job_id, acked));
                drill.done_jobs.lock().expect("done").insert(lease.job_id);
                return;
            }
            Some(a) if a.status == 409 => return,
            Some(a) if a.status < 500 => panic!("completion refused: {} {}", a.status, a.body),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("lease {} not completed in 50 tries", lease.lease_id);
}

/// Claims and completes jobs through the load balancer until every job is
/// done.
async fn claims(drill: Arc<Drill>, node: TestNode) {
    let started = Instant::now();
    let request = ClaimRequest {
        slots: 1,
        job_types: vec![JobType::Container],
        labels: Default::default(),
        wait_seconds: Some(1),
        power: None,
    };
    while drill.done_jobs.lock().expect("done").len() < JOBS {
        assert!(
            started.elapsed() < JOBS_DONE_WITHIN,
            "jobs left after {JOBS_DONE_WITHIN:?}"
        );
        match node.client.claim(&request).await {
            Ok(Some(lease)) => {
                tokio::time::sleep(WORK).await;
                complete(&drill, node.client.identity(), &lease).await;
            }
            Ok(None) => {}
            Err(err) => {
                drill.failed(format!("claim: {err}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_under_load_loses_nothing_and_its_traffic_moves() {
    let Some(base) = postgres_url() else {
        return;
    };
    let Db::Postgres(url) = postgres_db(&base, "failover").await else {
        unreachable!("postgres_db makes a PostgreSQL URL");
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = Replica::start(&tmp.path().join("a"), &url).await;
    let b = Replica::start(&tmp.path().join("b"), &url).await;
    let Some(lb) = LoadBalancer::start(tmp.path(), &[a.port(), b.port()]).await else {
        return;
    };
    let api = Api::external(&lb.base);
    // Open registration admits 10 new ids per address per replica: a token.
    let token = api
        .join_token(json!({"uses": HEARTBEATERS + CLAIMERS}))
        .await;
    let mut nodes = Vec::new();
    for i in 0..HEARTBEATERS + CLAIMERS {
        let node = TestNode::new(&tmp.path().join(format!("node-{i}")), &api);
        node.register_with(Some(&token)).await.expect("registers");
        nodes.push(node);
    }
    let key = api.account("drill").await;
    for _ in 0..JOBS {
        api.submit(&key, submission("cpu")).await;
    }
    let drill = Arc::new(Drill {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        base: lb.base.clone(),
        coordinator: api.coordinator_id().await,
        record: Mutex::default(),
        killed_at: Mutex::default(),
        stop_heartbeats: AtomicBool::new(false),
        done_jobs: Mutex::default(),
    });

    let mut load = tokio::task::JoinSet::new();
    for node in nodes.drain(..HEARTBEATERS) {
        let identity =
            Arc::new(NodeIdentity::load_or_create(&node.dir).expect("the node's identity"));
        load.spawn(heartbeats(drill.clone(), identity));
    }
    for node in nodes {
        load.spawn(claims(drill.clone(), node));
    }
    tokio::time::sleep(KILL_AFTER).await;
    let done_before_kill = drill.done_jobs.lock().expect("done").len();
    let killed_at = Instant::now();
    a.kill();
    *drill.killed_at.lock().expect("kill time") = Some(killed_at);
    tokio::time::sleep(LOAD_AFTER_KILL).await;
    drill.stop_heartbeats.store(true, Ordering::Relaxed);
    while let Some(joined) = load.join_next().await {
        joined.expect("a load task");
    }
    let record = std::mem::take(&mut *drill.record.lock().expect("record"));
    report(&record, killed_at, done_before_kill);
    check_failures(&record, killed_at);
    check_durable(&url, &record).await;
    check_replays(&record, &lb.base, &b.api.base).await;
    let (status, audit) = b.api.admin_get("/api/ledger/audit").await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(
        audit["ok"], true,
        "the ledger's audit after the drill: {audit}"
    );
}

fn report(record: &Record, killed_at: Instant, done_before_kill: usize) {
    let last = record
        .failures
        .iter()
        .map(|(at, _)| at.saturating_duration_since(killed_at))
        .max();
    eprintln!(
        "drill: {} heartbeats and {} completions acknowledged ({} jobs done before the kill); \
         {} failed requests, the last {last:?} after the kill; {} answered after the bound",
        record.heartbeats.len(),
        record.completions.len(),
        done_before_kill,
        record.failures.len(),
        record.answered_after_bound,
    );
}

/// Failures only from the kill to the bound after it, and traffic served after.
fn check_failures(record: &Record, killed_at: Instant) {
    for (at, what) in &record.failures {
        assert!(*at >= killed_at, "a request failed before the kill: {what}");
        assert!(
            at.duration_since(killed_at) <= ERRORS_STOP_WITHIN,
            "a request failed {:?} after the kill (bound {ERRORS_STOP_WITHIN:?}): {what}",
            at.duration_since(killed_at)
        );
    }
    assert!(
        record.answered_after_bound > 100,
        "the load balancer did not move the traffic: {} answers after the bound",
        record.answered_after_bound
    );
    for replica in ["replica0", "replica1"] {
        assert!(
            record
                .heartbeats
                .iter()
                .any(|(_, _, a)| a.replica == replica),
            "no heartbeat was answered by {replica}"
        );
    }
}

/// Every acknowledged heartbeat and completion is in the database; every
/// job succeeded exactly once.
async fn check_durable(url: &str, record: &Record) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let stored: HashSet<(String, String)> =
        sqlx::query("SELECT node_id, observed_generation FROM heartbeats")
            .fetch_all(&mut conn)
            .await
            .expect("heartbeats")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
    for (node, generation, acked) in &record.heartbeats {
        assert!(
            stored.contains(&(node.to_string(), generation.clone())),
            "heartbeat {generation} of {node}, acknowledged by {}, is not in the database",
            acked.replica
        );
    }
    for (job, acked) in &record.completions {
        let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE job_id = $1")
            .bind(job.to_string())
            .fetch_one(&mut conn)
            .await
            .expect("the job's state");
        assert_eq!(
            state, "SUCCEEDED",
            "job {job}, completion acknowledged by {}",
            acked.replica
        );
    }
    let jobs = JOBS as i64;
    assert_eq!(
        pg_count(
            &mut conn,
            "SELECT COUNT(*) FROM jobs WHERE state = 'SUCCEEDED'"
        )
        .await,
        jobs
    );
    assert_eq!(
        pg_count(
            &mut conn,
            "SELECT COUNT(*) FROM job_events WHERE state = 'SUCCEEDED'"
        )
        .await,
        jobs,
        "every job completed exactly once"
    );
    conn.close().await.ok();
}

/// Every request the killed replica acknowledged, and a sample of the
/// others, sent again: refused as a replay by B and through the balancer.
async fn check_replays(record: &Record, lb: &str, replica_b: &str) {
    let acked: Vec<&Acked> = record
        .heartbeats
        .iter()
        .map(|(_, _, a)| a)
        .chain(record.completions.iter().map(|(_, a)| a))
        .collect();
    let by_a: Vec<&Acked> = acked
        .iter()
        .copied()
        .filter(|a| a.replica == "replica0")
        .collect();
    assert!(!by_a.is_empty(), "replica A acknowledged nothing");
    let http = reqwest::Client::new();
    let sample = acked
        .iter()
        .copied()
        .step_by(acked.len().div_ceil(50).max(1));
    for (base, request) in by_a
        .iter()
        .map(|a| (replica_b, *a))
        .chain(sample.map(|a| (lb, a)))
    {
        let answer = send(
            &http,
            base,
            &request.path,
            &request.headers,
            request.body.clone(),
        )
        .await
        .expect("the replay is answered");
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (401, Some("replayed_request")),
            "{} acknowledged by {} and sent again to {base}: {}",
            request.path,
            request.replica,
            answer.body
        );
    }
    eprintln!(
        "replays: {} requests acknowledged by A refused by B",
        by_a.len()
    );
}
