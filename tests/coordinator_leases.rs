//! Leases as fencing tokens, on SQLite and PostgreSQL: an expired lease
//! requeues its job for another node and the first node's late renew and
//! complete get 409; a node completing another node's lease gets 403; the
//! last attempt's expiry fails the job ("node lost"); a coordinator
//! restarted mid-job (promptly, with a claim waiting and a log followed)
//! lets the job finish.

#[macro_use]
mod coordinator_support;

use std::path::Path;
use std::time::Duration;

use coordinator_support::jobs::{refusal, submission};
use coordinator_support::*;
use garage::coordinator::api::Outcome;
use serde_json::json;

/// A coordinator whose leases last 1 s (swept every 250 ms).
async fn start(dir: &Path, db: &Db) -> Coordinator {
    let mut config = Coordinator::config(&dir.join("coordinator"), db);
    config.lease_duration = Duration::from_secs(1);
    Coordinator::start_with(config).await
}

async fn requeue_and_fencing(dir: &Path, db: Db) {
    let coordinator = start(dir, &db).await;
    let first = TestNode::new(&dir.join("first"), &coordinator);
    let second = TestNode::new(&dir.join("second"), &coordinator);
    first.register(None).await;
    second.register(None).await;
    let key = coordinator.account("alice").await;
    let id = coordinator.submit(&key, submission("cpu")).await;

    let lost = first.claim(5).await.expect("the first lease");
    assert_eq!(lost.attempt, 1);
    // The first node goes silent; the sweep requeues the job.
    let requeued = coordinator
        .wait_job(&key, &id, "QUEUED", Duration::from_secs(10))
        .await;
    assert!(
        requeued["reason"]
            .as_str()
            .expect("reason")
            .contains("requeued"),
        "{requeued}"
    );
    let taken = second.claim(5).await.expect("the second lease");
    assert_eq!((taken.job_id, taken.attempt), (lost.job_id, 2));

    assert_eq!(
        refusal(first.client.renew(lost.lease_id).await),
        (409, "lease_superseded".into())
    );
    let late = first
        .complete(&lost, Outcome::Succeeded, json!({"from": "first"}))
        .await;
    assert_eq!(refusal(late), (409, "lease_superseded".into()));
    // Signed by the first node, for the second node's lease.
    let stolen = first.complete(&taken, Outcome::Succeeded, json!({})).await;
    assert_eq!(refusal(stolen), (403, "not_your_lease".into()));

    second.log(&taken, 0, "done\n").await;
    let done = second
        .complete(&taken, Outcome::Succeeded, json!({"from": "second"}))
        .await;
    assert_eq!(done.expect("completed"), "SUCCEEDED");
    let job = coordinator.job(&key, &id).await;
    assert_eq!(job["result"], json!({"from": "second"}), "{job}");
    assert_eq!(job["attempt"], 2);
    let states: Vec<&str> = job["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["state"].as_str().expect("state"))
        .collect();
    assert_eq!(
        states,
        ["QUEUED", "RUNNING", "QUEUED", "RUNNING", "SUCCEEDED"]
    );
    coordinator.stop().await;
}
on_both_databases!(requeue_sqlite, requeue_postgres, requeue_and_fencing);

async fn last_attempt_lost(dir: &Path, db: Db) {
    let coordinator = start(dir, &db).await;
    let node = TestNode::new(&dir.join("node"), &coordinator);
    node.register(None).await;
    let key = coordinator.account("alice").await;
    let mut body = submission("cpu");
    body["maxAttempts"] = json!(1);
    let id = coordinator.submit(&key, body).await;
    let lease = node.claim(5).await.expect("a lease");
    let failed = coordinator
        .wait_job(&key, &id, "FAILED", Duration::from_secs(10))
        .await;
    let reason = failed["reason"].as_str().expect("reason");
    assert!(reason.starts_with("node lost"), "{reason}");
    assert_eq!(
        refusal(node.client.renew(lease.lease_id).await),
        (409, "lease_expired".into())
    );
    assert!(
        node.claim(1).await.is_none(),
        "a failed job is not offered again"
    );
    coordinator.stop().await;
}
on_both_databases!(lost_sqlite, lost_postgres, last_attempt_lost);

async fn restart_mid_job(dir: &Path, db: Db) {
    let mut config = Coordinator::config(&dir.join("coordinator"), &db);
    config.lease_duration = Duration::from_secs(10);
    let coordinator = Coordinator::start_with(config.clone()).await;
    let node = TestNode::new(&dir.join("node"), &coordinator);
    node.register(None).await;
    let key = coordinator.account("alice").await;
    let id = coordinator.submit(&key, submission("cpu")).await;
    let lease = node.claim(5).await.expect("a lease");
    node.log(&lease, 0, "before\n").await;
    // A followed log and a waiting claim do not hold the shutdown up.
    let follow = reqwest::Client::new()
        .get(format!(
            "{}/api/jobs/{id}/logs?follow=true",
            coordinator.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("following");
    let idle = TestNode::new(&dir.join("idle"), &coordinator);
    idle.register(None).await;
    let waiting = tokio::spawn(async move { idle.claim(25).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let addr = coordinator.addr;
    let stopping = std::time::Instant::now();
    coordinator.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    assert!(waiting.await.expect("claim").is_none());
    assert!(follow.text().await.expect("ended").contains("before"));

    let coordinator = Coordinator::start_on(addr, config).await;
    assert!(
        !node
            .client
            .renew(lease.lease_id)
            .await
            .expect("renewed")
            .cancel
    );
    node.log(&lease, 1, "after\n").await;
    let done = node
        .complete(&lease, Outcome::Succeeded, json!({"exit_code": 0}))
        .await;
    assert_eq!(done.expect("completed"), "SUCCEEDED");
    let job = coordinator.job(&key, &id).await;
    assert_eq!(
        (&job["state"], &job["attempt"]),
        (&json!("SUCCEEDED"), &json!(1))
    );
    coordinator.stop().await;
}
on_both_databases!(restart_sqlite, restart_postgres, restart_mid_job);
