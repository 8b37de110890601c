//! Placement on SQLite and PostgreSQL: a job's residency is a hard filter
//! (20 jobs for Sweden all run on the SE3 node beside a German one, and
//! with only the German node online they stay queued with the reason), and
//! scored placement gives `prefer-green` jobs to the node on solar surplus
//! while plain jobs go to either node. A backlog in one market never holds
//! back another market's jobs.

#[macro_use]
mod coordinator_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use coordinator_support::jobs::hello_job;
use coordinator_support::*;
use garage::coordinator::api::{ClaimRequest, JobType, Location, Outcome, PowerReport};
use serde_json::{json, Value};

const JOBS: usize = 20;
/// How long one scenario's claim loop may run.
const WORK_LIMIT: Duration = Duration::from_secs(60);

fn german() -> Location {
    Location {
        country: Some("DE".into()),
        region: None,
        latitude: Some(52.52),
        longitude: Some(13.40),
    }
}

/// A node in Germany (the default test node is in SE3).
async fn register_in_germany(node: &TestNode) {
    let request = node.client.registration(Vec::new(), german(), None);
    node.client.register(&request).await.expect("registers");
}

/// A node's power while its panels make `production_watts` against a draw
/// of 200 W (`None`: a grid node without panels).
fn power(production_watts: Option<f64>) -> PowerReport {
    PowerReport {
        source: if production_watts.is_some() {
            "solar"
        } else {
            "grid"
        }
        .into(),
        policy: "any".into(),
        draw_watts: 200.0,
        draw_measured_by: "estimate".into(),
        production_watts,
        production_source: production_watts.map(|_| "model".into()),
        production_ok: production_watts.map(|_| true),
        surplus_watts: production_watts.map(|p| p - 200.0),
    }
}

/// One claim (one slot) waiting up to `wait_seconds`.
async fn claim(
    node: &TestNode,
    power: Option<PowerReport>,
    wait_seconds: u32,
) -> Option<garage::coordinator::api::Lease> {
    let request = ClaimRequest {
        slots: 1,
        job_types: vec![JobType::Container],
        labels: BTreeMap::new(),
        wait_seconds: Some(wait_seconds),
        power,
    };
    node.client.claim(&request).await.expect("claim answered")
}

/// Claims and completes jobs on `node` until `stop` jobs were done by all
/// workers together or [`WORK_LIMIT`] passes; the ids this node ran.
async fn work(
    node: &TestNode,
    power: Option<PowerReport>,
    done: &std::sync::atomic::AtomicUsize,
    stop: usize,
) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let started = Instant::now();
    let mut ran = Vec::new();
    while done.load(Ordering::SeqCst) < stop && started.elapsed() < WORK_LIMIT {
        let Some(lease) = claim(node, power.clone(), 1).await else {
            continue;
        };
        let state = node
            .complete(&lease, Outcome::Succeeded, json!({"exit_code": 0}))
            .await
            .expect("completes");
        assert_eq!(state, "SUCCEEDED");
        ran.push(lease.job_id.to_string());
        done.fetch_add(1, Ordering::SeqCst);
    }
    ran
}

async fn submit_many(coordinator: &Coordinator, key: &str, placement: Value) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        let body = json!({"job": hello_job(), "placement": placement});
        ids.push(coordinator.submit(key, body).await);
    }
    ids
}

async fn residency_is_a_hard_filter(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    let de = TestNode::new(&dir.join("de"), &coordinator);
    register_in_germany(&de).await;
    let key = coordinator.account("alice").await;
    let sweden_only = json!({"constraints": {"residency": {"countries": ["SE"]}}});
    let ids = submit_many(&coordinator, &key, sweden_only).await;

    // Only the German node is online: it gets nothing, each job says why.
    assert!(
        claim(&de, None, 1).await.is_none(),
        "a DE node ran a job for SE"
    );
    for id in &ids {
        let job = coordinator.job(&key, id).await;
        assert_eq!(job["state"], "QUEUED", "{job}");
        let reason = job["reason"].as_str().expect("reason");
        assert!(
            reason.contains("no online node satisfies its residency (countries SE)"),
            "{reason}"
        );
    }

    // The SE3 node comes: every job runs there, the DE node claiming beside it.
    let se = TestNode::new(&dir.join("se"), &coordinator);
    se.register(None).await;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (on_se, on_de) = tokio::join!(work(&se, None, &done, JOBS), work(&de, None, &done, JOBS));
    assert!(on_de.is_empty(), "jobs for SE ran in DE: {on_de:?}");
    let mut ran = on_se.clone();
    ran.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(ran, want, "every job ran once, on the SE node");
    for id in &ids {
        let job = coordinator.job(&key, id).await;
        assert_eq!(job["node_id"], se.id().to_string(), "{job}");
    }

    // A job for the EU runs in Germany; one for SE4 stays queued.
    let eu = json!({"job": hello_job(), "placement": {"constraints": {"residency": {"eu": true}}}});
    let eu_id = coordinator.submit(&key, eu).await;
    let lease = claim(&de, None, 2).await.expect("the EU job in DE");
    assert_eq!(lease.job_id.to_string(), eu_id);
    let se4 = json!({"job": hello_job(), "placement": {"constraints": {"residency": {"priceAreas": ["SE4"]}}}});
    let se4_id = coordinator.submit(&key, se4).await;
    assert!(
        claim(&se, None, 1).await.is_none(),
        "an SE3 node ran an SE4 job"
    );
    let reason = coordinator.job(&key, &se4_id).await["reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap_or_default()
            .contains("priceAreas SE4"),
        "{reason}"
    );
    coordinator.stop().await;
}
on_both_databases!(
    residency_sqlite,
    residency_postgres,
    residency_is_a_hard_filter
);

async fn green_jobs_go_to_the_solar_node(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    let solar = TestNode::new(&dir.join("solar"), &coordinator);
    let grid = TestNode::new(&dir.join("grid"), &coordinator);
    solar.register(None).await;
    grid.register(None).await;
    let key = coordinator.account("alice").await;
    let sunny = Some(power(Some(800.0)));

    let green = submit_many(&coordinator, &key, json!({"energy": "prefer-green"})).await;
    let reason = coordinator.job(&key, &green[0]).await["reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap_or_default()
            .starts_with("prefer-green: waiting for a node on solar surplus"),
        "{reason}"
    );
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (on_solar, on_grid) = tokio::join!(
        work(&solar, sunny.clone(), &done, JOBS),
        work(&grid, Some(power(None)), &done, JOBS)
    );
    assert!(
        on_grid.is_empty(),
        "prefer-green jobs ran on the grid node: {on_grid:?}"
    );
    assert_eq!(
        on_solar.len(),
        JOBS,
        "every prefer-green job ran on the solar node"
    );

    let plain = submit_many(&coordinator, &key, json!({})).await;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (on_solar, on_grid) = tokio::join!(
        work(&solar, sunny, &done, JOBS),
        work(&grid, Some(power(None)), &done, JOBS)
    );
    assert_eq!(
        on_solar.len() + on_grid.len(),
        JOBS,
        "every plain job ran once"
    );
    assert!(
        !on_grid.is_empty(),
        "plain jobs go to either node; the grid node got none of {}",
        plain.len()
    );
    coordinator.stop().await;
}
on_both_databases!(
    green_sqlite,
    green_postgres,
    green_jobs_go_to_the_solar_node
);

/// More queued jobs than a round reads (256) wait for a market no node
/// claims in: the job behind them in the claiming node's market is still
/// placed at once (rounds read each parked market's queue of its own).
async fn a_backlog_elsewhere_does_not_hold_back_a_market(dir: &Path, db: Db) {
    const BACKLOG: usize = 300;
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    let idle_gpu = TestNode::new(&dir.join("h100"), &coordinator);
    idle_gpu.register(Some("NVIDIA H100 80GB HBM3")).await;
    let cpu = TestNode::new(&dir.join("cpu"), &coordinator);
    cpu.register(None).await;
    let key = coordinator.account("alice").await;
    for _ in 0..BACKLOG {
        let body = json!({"job": hello_job(), "placement": {"market": "h100"}});
        coordinator.submit(&key, body).await;
    }
    let behind = coordinator
        .submit(
            &key,
            json!({"job": hello_job(), "placement": {"market": "cpu"}}),
        )
        .await;
    let lease = claim(&cpu, None, 2)
        .await
        .expect("the cpu job behind the h100 backlog is placed");
    assert_eq!(lease.job_id.to_string(), behind);
    coordinator.stop().await;
}
on_both_databases!(
    backlog_sqlite,
    backlog_postgres,
    a_backlog_elsewhere_does_not_hold_back_a_market
);
