//! Leases as fencing tokens, on SQLite and PostgreSQL: an expired lease
//! requeues its job for another node and the first node's late renew and
//! complete get 409; a node completing another node's lease gets 403; the
//! last attempt's expiry fails the job ("node lost"); a job past its
//! timeout ends TIMED_OUT and its renew says stop; job types and labels
//! choose the node; a coordinator restarted mid-job (promptly, with a
//! claim waiting and a log followed) lets the job finish.

#[macro_use]
mod coordinator_support;

use std::path::Path;
use std::time::Duration;

use coordinator_support::jobs::{refusal, submission};
use coordinator_support::*;
use garage::coordinator::api::Outcome;
use garage::coordinator::bearer_client::BearerClient;
use garage::coordinator::jobs::client::JobsClient;
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
    let client =
        JobsClient::new(BearerClient::new(&coordinator.base, key.clone()).expect("client"));
    let job_id: uuid::Uuid = id.parse().expect("uuid");
    let resumed = tokio::spawn(async move {
        let mut seen = String::new();
        let state = client
            .follow(job_id, |chunk| seen.push_str(&chunk.data))
            .await
            .expect("followed across the restart");
        (state, seen)
    });
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
    let (state, seen) = resumed.await.expect("follow task");
    assert_eq!(
        (state.as_str(), seen.as_str()),
        ("SUCCEEDED", "before\nafter\n"),
        "each chunk once, across the restart"
    );
    coordinator.stop().await;
}
on_both_databases!(restart_sqlite, restart_postgres, restart_mid_job);

async fn past_timeout(dir: &Path, db: Db) {
    let coordinator = start(dir, &db).await;
    let node = TestNode::new(&dir.join("node"), &coordinator);
    node.register(None).await;
    let key = coordinator.account("alice").await;
    let mut body = submission("cpu");
    body["timeout"] = json!("1s");
    let id = coordinator.submit(&key, body).await;
    let lease = node.claim(5).await.expect("a lease");
    // The node keeps renewing but never reports: one lease past its timeout
    // the sweep ends the job, and the next renew says stop.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let renewed = node.client.renew(lease.lease_id).await.expect("renew");
        if renewed.cancel {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never told to stop");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let job = coordinator.job(&key, &id).await;
    assert_eq!(job["state"], "TIMED_OUT", "{job}");
    let late = node.complete(&lease, Outcome::Succeeded, json!({})).await;
    assert_eq!(late.expect("answered"), "TIMED_OUT");
    coordinator.stop().await;
}
on_both_databases!(timeout_sqlite, timeout_postgres, past_timeout);

async fn types_and_labels_route_jobs(dir: &Path, db: Db) {
    use garage::coordinator::api::{ClaimRequest, JobType};
    let coordinator = start(dir, &db).await;
    let containers = TestNode::new(&dir.join("containers"), &coordinator);
    let workers = TestNode::new(&dir.join("workers"), &coordinator);
    containers.register(None).await;
    workers.register(None).await;
    let key = coordinator.account("alice").await;
    let inference = json!({
        "type": "inference",
        "inference": {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]},
        "placement": {"market": "cpu", "labels": {"zone": "garage-7"}}
    });
    let id = coordinator.submit(&key, inference).await;
    let claim = |types: Vec<JobType>, zone: Option<&str>| ClaimRequest {
        slots: 1,
        job_types: types,
        labels: zone
            .map(|z| [("zone".to_string(), z.to_string())].into())
            .unwrap_or_default(),
        wait_seconds: Some(0),
        power: None,
    };
    let none = containers
        .client
        .claim(&claim(vec![JobType::Container], Some("garage-7")))
        .await
        .expect("answered");
    assert!(
        none.is_none(),
        "a container-only node gets no inference job"
    );
    let none = workers
        .client
        .claim(&claim(vec![JobType::Inference], Some("elsewhere")))
        .await
        .expect("answered");
    assert!(none.is_none(), "labels must match");
    let lease = workers
        .client
        .claim(&claim(vec![JobType::Inference], Some("garage-7")))
        .await
        .expect("answered")
        .expect("the inference job");
    assert_eq!(lease.job_id.to_string(), id);
    assert_eq!(lease.kind, JobType::Inference);
    assert_eq!(lease.spec["model"], "smollm2");
    let answer = json!({"choices": [{"message": {"role": "assistant", "content": "hej"}}]});
    let done = workers
        .complete(&lease, Outcome::Succeeded, answer.clone())
        .await;
    assert_eq!(done.expect("completed"), "SUCCEEDED");
    assert_eq!(coordinator.job(&key, &id).await["result"], answer);
    coordinator.stop().await;
}
on_both_databases!(
    routing_sqlite,
    routing_postgres,
    types_and_labels_route_jobs
);
