//! Network jobs end to end: the real coordinator binary (SQLite; the
//! requeue also on PostgreSQL where `GARAGE_TEST_POSTGRES_URL` names one; short
//! leases), real agents (`garage run` with `spec.jobs.accept`) and their
//! real podman hosts. A job submitted with `garage job submit --wait
//! --follow` runs in a node's podman with its log on the terminal; a
//! cancel removes the job container within 5 s; a coordinator restarted
//! mid-job does not stop the job; a job for a market without an online
//! node waits QUEUED and runs when the node is back; a node SIGKILLed
//! mid-job loses the job to the other node once, and its late complete
//! gets 409. Skipped without Docker or the podman image, unless
//! `GARAGE_REQUIRE_E2E=1`. Every wait is bounded.

mod coordinator_support;
mod network_support;
mod support;

use std::time::{Duration, Instant};

use coordinator_support::Db;
use network_support::{job, wait_for, Coordinator, Node, JOB_LIMIT};
use serde_json::Value;
use std::process::{Command, Stdio};
use support::{garage_bin, podman_prerequisites};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_network_jobs_follows_cancel_and_survives_a_coordinator_restart() {
    if !podman_prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut coordinator = Coordinator::start(&tmp.path().join("coordinator")).await;
    let key = coordinator.api_key("alice");
    let mut node = Node::new("work", &coordinator.base);
    node.start();
    coordinator.wait_online(1).await;

    // Submitted with the CLI, followed to the end: the log reaches the
    // terminal and the result comes back.
    let file = node.dir.path().join("hello.json");
    std::fs::write(
        &file,
        job("net-hello", "echo hello-from-podman; echo answer=42"),
    )
    .expect("job file");
    let submit = Command::new(garage_bin())
        .args([
            "job",
            "submit",
            file.to_str().expect("utf-8"),
            "--market",
            "cpu",
            "--wait",
            "--follow",
        ])
        .args(["--coordinator", &coordinator.base])
        .env("GARAGE_API_KEY", &key)
        .stdin(Stdio::null())
        .output();
    let done = tokio::task::spawn_blocking(move || submit)
        .await
        .expect("join")
        .expect("garage job submit runs");
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "{stderr}\n{}", node.log());
    assert!(stderr.contains("hello-from-podman"), "{stderr}");
    let view: Value = serde_json::from_slice(&done.stdout).expect("the job as JSON");
    assert_eq!(view["state"], "SUCCEEDED", "{view}");
    assert_eq!(view["result"]["status"], "succeeded", "{view}");
    assert_eq!(view["result"]["ops"][0]["exitCode"], 0, "{view}");
    // The node metered the job: Wh > 0, within the draw it can have over
    // the job's seconds (the estimate's bounds when it estimated).
    let energy = &view["result"]["energy"];
    let wh = energy["energy_wh"].as_f64().unwrap_or_default();
    let seconds = energy["seconds"].as_f64().unwrap_or_default();
    assert!(wh > 0.0 && seconds > 0.0, "{view}");
    let average_watts = wh * 3600.0 / seconds;
    assert!(average_watts < 5_000.0, "{view}");
    if energy["measured_by"] == "estimate" {
        use garage::energy::draw::{CORE_WATTS, IDLE_WATTS};
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            average_watts >= IDLE_WATTS * 0.999
                && average_watts <= (IDLE_WATTS + CORE_WATTS * cores) * 1.001,
            "{view}"
        );
    }
    assert!(
        node.job_containers().is_empty(),
        "{}",
        node.job_containers()
    );
    let (_, metrics) = support::http_get(&node.metrics, "/metrics").expect("/metrics");
    let count = |name: &str, labels: &[(&str, &str)]| support::metric(&metrics, name, labels);
    assert_eq!(
        count("garage_network_job_claims_total", &[("result", "leased")]),
        Some(1.0)
    );
    assert_eq!(
        count("garage_network_job_leases_total", &[("end", "completed")]),
        Some(1.0)
    );
    assert_eq!(
        count(
            "garage_network_job_completions_total",
            &[("outcome", "succeeded")]
        ),
        Some(1.0)
    );
    assert_eq!(count("garage_network_jobs_running", &[]), Some(0.0));

    // Cancel of a running job: its container is gone within 5 s.
    let id = coordinator
        .submit(&key, &job("net-cancel", "echo long; sleep 300"))
        .await;
    coordinator
        .wait_state(&key, &id, "RUNNING", JOB_LIMIT)
        .await;
    wait_for(
        "the job container in podman",
        Duration::from_secs(60),
        || !node.job_containers().is_empty(),
    );
    assert_eq!(node.network_jobs().len(), 1, "{:?}", node.network_jobs());
    let (status, view) = coordinator
        .send(
            &key,
            reqwest::Method::POST,
            &format!("/api/jobs/{id}/cancel"),
            None,
        )
        .await;
    assert!(status < 300, "{status} {view}");
    let cancelled = Instant::now();
    wait_for(
        "the cancelled job's container to go",
        Duration::from_secs(5),
        || node.job_containers().is_empty(),
    );
    eprintln!(
        "cancelled job's container gone after {:?}",
        cancelled.elapsed()
    );
    assert_eq!(coordinator.job(&key, &id).await["state"], "CANCELLED");

    // The coordinator restarted mid-job (same database): the job goes on.
    let id = coordinator
        .submit(
            &key,
            &job("net-restart", "echo before; sleep 6; echo after"),
        )
        .await;
    coordinator
        .wait_state(&key, &id, "RUNNING", JOB_LIMIT)
        .await;
    coordinator.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    coordinator.restart().await;
    let view = coordinator
        .wait_state(&key, &id, "SUCCEEDED", JOB_LIMIT)
        .await;
    assert_eq!(view["attempt"], 1, "the job ran once: {view}");

    // No online node in the market: the job waits QUEUED, saying so, and
    // runs when the node is back.
    node.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let id = coordinator
            .submit(&key, &job("net-queued", "echo queued-then-ran"))
            .await;
        let view = coordinator.job(&key, &id).await;
        if view["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no online node")
        {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the node never went offline: {view}"
        );
        let _ = coordinator
            .send(
                &key,
                reqwest::Method::POST,
                &format!("/api/jobs/{id}/cancel"),
                None,
            )
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(coordinator.job(&key, &id).await["state"], "QUEUED");
    node.start();
    coordinator
        .wait_state(&key, &id, "SUCCEEDED", JOB_LIMIT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_node_completes_on_the_other_and_the_late_complete_gets_409() {
    if !podman_prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    requeue_of_a_killed_node(tmp.path(), "sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_node_is_requeued_on_postgresql_too() {
    let Some(url) = coordinator_support::postgres_url() else {
        return;
    };
    if !podman_prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let Db::Postgres(url) = coordinator_support::postgres_db(&url, "e2e_requeue").await else {
        unreachable!("postgres_db makes a PostgreSQL database");
    };
    requeue_of_a_killed_node(tmp.path(), "pg", Some(url)).await;
}

/// Two nodes, the job's node SIGKILLed mid-job: the job is requeued once,
/// completes on the other node, and the first lease's complete gets 409.
/// `db` keeps the node names of the two variants apart: they run at once,
/// and two agents of one node name refuse each other (the node lock).
async fn requeue_of_a_killed_node(tmp: &std::path::Path, db: &str, database_url: Option<String>) {
    let coordinator = Coordinator::start_on(&tmp.join("coordinator"), database_url).await;
    let key = coordinator.api_key("bob");
    let mut first = Node::new(&format!("first-{db}"), &coordinator.base);
    let mut second = Node::new(&format!("second-{db}"), &coordinator.base);
    first.start();
    coordinator.wait_online(1).await;
    // The second node comes up once the first holds the job.
    let id = coordinator
        .submit(
            &key,
            &job("net-requeue", "echo start; sleep 8; echo finished"),
        )
        .await;
    coordinator
        .wait_state(&key, &id, "RUNNING", JOB_LIMIT)
        .await;
    let mut held = Vec::new();
    wait_for(
        "the first node shows the job",
        Duration::from_secs(10),
        || {
            held = first.network_jobs();
            !held.is_empty()
        },
    );
    let old_lease: uuid::Uuid = held[0]["leaseId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("leaseId");
    second.start();
    first.kill9();
    let view = coordinator
        .wait_state(&key, &id, "SUCCEEDED", JOB_LIMIT)
        .await;
    assert_eq!(view["attempt"], 2, "requeued once: {view}");
    let queued = view["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|event| event["state"] == "QUEUED")
        .count();
    assert_eq!(queued, 2, "submitted, then requeued once: {view}");

    first
        .assert_late_complete_refused(&coordinator.base, old_lease)
        .await;
}
