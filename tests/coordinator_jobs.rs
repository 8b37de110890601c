//! Jobs through the API on SQLite and PostgreSQL, with simulated signed
//! nodes: a job's whole life (claim → logs → renew → complete → result and
//! log visible, also followed as server-sent events), what a client may
//! see, idempotent submission, API keys refused (401), bad input (field
//! path, unknown market), cancel, expiry, and caps on logs and results.

#[macro_use]
mod coordinator_support;

use std::time::Duration;

use coordinator_support::jobs::{hello_job, refusal, submission};
use coordinator_support::*;
use garage::coordinator::api::Outcome;
use reqwest::Method;
use serde_json::json;

async fn with_node(dir: &std::path::Path, db: Db) -> (Coordinator, TestNode, String) {
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    let node = TestNode::new(&dir.join("node"), &coordinator);
    node.register(None).await;
    let key = coordinator.account("alice").await;
    (coordinator, node, key)
}

async fn job_life(dir: &std::path::Path, db: Db) {
    let (coordinator, node, key) = with_node(dir, db).await;
    let id = coordinator.submit(&key, submission("cpu")).await;
    let queued = coordinator.job(&key, &id).await;
    assert_eq!(queued["state"], "QUEUED", "{queued}");
    assert_eq!(queued["max_attempts"], 2);

    let lease = node.claim(5).await.expect("a lease");
    assert_eq!((lease.job_id.to_string(), lease.attempt), (id.clone(), 1));
    assert_eq!(lease.spec, hello_job());
    assert_eq!(node.log(&lease, 0, "hello\n").await, 1);
    assert_eq!(
        node.log(&lease, 0, "hello\n").await,
        0,
        "a resent seq is stored once"
    );
    assert_eq!(node.log(&lease, 1, "answer=42\n").await, 1);
    let renewed = node.client.renew(lease.lease_id).await.expect("renewed");
    assert!(!renewed.cancel);
    let running = coordinator.job(&key, &id).await;
    assert_eq!(running["state"], "RUNNING");
    assert_eq!(running["node_id"], node.id().to_string());

    let result = json!({"exit_code": 0, "results": {"answer": "42"}});
    let done = node
        .complete(&lease, Outcome::Succeeded, result.clone())
        .await;
    assert_eq!(done.expect("completed"), "SUCCEEDED");
    let again = node.complete(&lease, Outcome::Failed, json!({})).await;
    assert_eq!(
        again.expect("idempotent"),
        "SUCCEEDED",
        "a repeat changes nothing"
    );

    let job = coordinator.job(&key, &id).await;
    assert_eq!(
        (&job["state"], &job["result"]),
        (&json!("SUCCEEDED"), &result)
    );
    let states: Vec<&str> = job["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["QUEUED", "RUNNING", "SUCCEEDED"]);
    let (status, logs) = coordinator
        .client_send(
            &key,
            Method::GET,
            &format!("/api/jobs/{id}/logs"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{logs}");
    let text: String = logs["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .map(|c| c["data"].as_str().expect("data"))
        .collect();
    assert_eq!(text, "hello\nanswer=42\n");

    let followed = reqwest::Client::new()
        .get(format!(
            "{}/api/jobs/{id}/logs?follow=true",
            coordinator.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("follow")
        .text()
        .await
        .expect("stream ends with the job");
    assert!(followed.contains("answer=42"), "{followed}");
    assert!(
        followed.contains("event: end") && followed.contains("SUCCEEDED"),
        "{followed}"
    );

    // Only the owner (and the admin) see a job.
    let bob = coordinator.account("bob").await;
    let (status, _) = coordinator
        .client_send(&bob, Method::GET, &format!("/api/jobs/{id}"), None, &[])
        .await;
    assert_eq!(status, 404);
    let (_, list) = coordinator
        .client_send(&bob, Method::GET, "/api/jobs", None, &[])
        .await;
    assert_eq!(list["jobs"], json!([]), "{list}");
    let (_, list) = coordinator.admin_get("/api/jobs?state=SUCCEEDED").await;
    assert_eq!(list["jobs"][0]["job_id"], id.as_str(), "{list}");
    assert!(coordinator
        .metrics()
        .await
        .contains("garage_coordinator_job_transitions_total{state=\"SUCCEEDED\"} 1"));
    coordinator.stop().await;
}
on_both_databases!(job_life_sqlite, job_life_postgres, job_life);

async fn keys_and_bad_input(dir: &std::path::Path, db: Db) {
    let (coordinator, _node, key) = with_node(dir, db).await;
    let body = submission("cpu");
    for (bearer, code) in [
        (None, "api_key_required"),
        (Some("gk_nope"), "malformed_api_key"),
        (Some("not-the-admin-token"), "malformed_api_key"),
        (
            Some(format!("gk_{}_{}", "0".repeat(16), "0".repeat(64)).as_str()),
            "invalid_api_key",
        ),
    ] {
        let mut request = reqwest::Client::new().post(format!("{}/api/jobs", coordinator.base));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.json(&body).send().await.expect("answered");
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.expect("json");
        assert_error(status, &answer, 401, code);
    }
    let (status, list) = coordinator.admin_get("/api/accounts").await;
    assert_eq!(status, 200, "{list}");
    let account = list["accounts"][0]["id"].as_str().expect("id").to_string();
    assert!(key.starts_with(&format!("gk_{account}_")));
    let (status, _) = coordinator
        .admin_send(Method::DELETE, &format!("/api/accounts/{account}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, answer) = coordinator
        .client_send(&key, Method::POST, "/api/jobs", Some(body), &[])
        .await;
    assert_error(status, &answer, 401, "api_key_revoked");
    assert!(coordinator.rejections("api_key").await >= 5);

    let carol = coordinator.account("carol").await;
    let mut bad = hello_job();
    bad["ops"][0]["args"]["imagee"] = json!("x");
    let (status, answer) = coordinator
        .client_send(
            &carol,
            Method::POST,
            "/api/jobs",
            Some(json!({"job": bad})),
            &[],
        )
        .await;
    assert_error(status, &answer, 400, "invalid_job");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("job.ops[0].args"), "{message}");
    let (status, answer) = coordinator
        .client_send(
            &carol,
            Method::POST,
            "/api/jobs",
            Some(submission("h200")),
            &[],
        )
        .await;
    assert_error(status, &answer, 400, "unknown_market");
    let (status, answer) = coordinator
        .client_send(
            &carol,
            Method::POST,
            "/api/jobs",
            Some(json!({"jobb": {}})),
            &[],
        )
        .await;
    assert_error(status, &answer, 400, "invalid_json");

    // The same idempotency key from the same account: the same job.
    let header = [("Idempotency-Key", "order-17")];
    let (first, a) = coordinator
        .client_send(
            &carol,
            Method::POST,
            "/api/jobs",
            Some(submission("cpu")),
            &header,
        )
        .await;
    let (second, b) = coordinator
        .client_send(
            &carol,
            Method::POST,
            "/api/jobs",
            Some(submission("cpu")),
            &header,
        )
        .await;
    assert_eq!((first, second), (201, 200));
    assert_eq!(a["job_id"], b["job_id"]);
    let dave = coordinator.account("dave").await;
    let (status, c) = coordinator
        .client_send(
            &dave,
            Method::POST,
            "/api/jobs",
            Some(submission("cpu")),
            &header,
        )
        .await;
    assert_eq!(status, 201);
    assert_ne!(a["job_id"], c["job_id"], "keys are per account");
    coordinator.stop().await;
}
on_both_databases!(
    keys_and_bad_input_sqlite,
    keys_and_bad_input_postgres,
    keys_and_bad_input
);

async fn cancel_and_expiry(dir: &std::path::Path, db: Db) {
    let (coordinator, node, key) = with_node(dir, db).await;
    let running = coordinator.submit(&key, submission("cpu")).await;
    let lease = node.claim(5).await.expect("a lease");
    let (status, view) = coordinator
        .client_send(
            &key,
            Method::POST,
            &format!("/api/jobs/{running}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (status, &view["state"]),
        (200, &json!("CANCELLED")),
        "{view}"
    );
    assert!(
        node.client
            .renew(lease.lease_id)
            .await
            .expect("renew")
            .cancel
    );
    let late = node.complete(&lease, Outcome::Succeeded, json!({})).await;
    assert_eq!(late.expect("answered"), "CANCELLED", "the cancel stands");
    let (status, answer) = coordinator
        .client_send(
            &key,
            Method::POST,
            &format!("/api/jobs/{running}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200, "cancelling twice is fine: {answer}");

    // Nothing claims jobs for a market without online nodes: they say so, then expire.
    let gpu = TestNode::new(&dir.join("gpu"), &coordinator);
    gpu.register(Some("NVIDIA GeForce RTX 4090")).await;
    coordinator
        .wait_state(&gpu, "offline", Duration::from_secs(10))
        .await;
    let mut body = submission("rtx-4090");
    body["expiresAfter"] = json!("2s");
    let waiting = coordinator.submit(&key, body).await;
    let job = coordinator.job(&key, &waiting).await;
    let reason = job["reason"].as_str().expect("reason");
    assert!(
        reason.contains("no online node in market rtx-4090"),
        "{reason}"
    );
    let expired = coordinator
        .wait_job(&key, &waiting, "EXPIRED", Duration::from_secs(10))
        .await;
    assert!(expired["finished_at"].is_string(), "{expired}");

    let done = coordinator.submit(&key, submission("cpu")).await;
    let lease = node.claim(5).await.expect("a lease");
    node.complete(&lease, Outcome::Succeeded, json!({}))
        .await
        .expect("done");
    let (status, answer) = coordinator
        .client_send(
            &key,
            Method::POST,
            &format!("/api/jobs/{done}/cancel"),
            None,
            &[],
        )
        .await;
    assert_error(status, &answer, 409, "job_finished");
    coordinator.stop().await;
}
on_both_databases!(
    cancel_and_expiry_sqlite,
    cancel_and_expiry_postgres,
    cancel_and_expiry
);

async fn logs_and_results_are_capped(dir: &std::path::Path, db: Db) {
    let (coordinator, node, key) = with_node(dir, db).await;
    let id = coordinator.submit(&key, submission("cpu")).await;
    let lease = node.claim(5).await.expect("a lease");
    let big = "x".repeat(700 * 1024);
    assert_eq!(node.log(&lease, 0, &big).await, 1);
    assert_eq!(node.log(&lease, 1, &big).await, 1, "cut at the cap");
    assert_eq!(node.log(&lease, 2, "more").await, 0, "dropped past the cap");
    let result = json!({"out": "y".repeat(600 * 1024)});
    node.complete(&lease, Outcome::Succeeded, result)
        .await
        .expect("done");
    let job = coordinator.job(&key, &id).await;
    assert_eq!(
        job["result"]["truncated"], true,
        "{}",
        job["result"]["message"]
    );
    let (_, logs) = coordinator
        .client_send(
            &key,
            Method::GET,
            &format!("/api/jobs/{id}/logs"),
            None,
            &[],
        )
        .await;
    assert_eq!(logs["truncated"], true);
    let chunks = logs["chunks"].as_array().expect("chunks");
    assert_eq!(chunks.len(), 2);
    let last = chunks[1]["data"].as_str().expect("data");
    assert!(
        last.ends_with("later output was dropped]\n"),
        "{}",
        &last[last.len() - 100..]
    );
    coordinator.stop().await;
}
on_both_databases!(
    logs_capped_sqlite,
    logs_capped_postgres,
    logs_and_results_are_capped
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_waits_for_a_job_and_answers_204_after_its_window() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (coordinator, node, key) = with_node(tmp.path(), Db::Sqlite).await;
    let start = std::time::Instant::now();
    assert!(node.claim(1).await.is_none());
    assert!(start.elapsed() >= Duration::from_millis(900));
    let waiting = tokio::spawn(async move { (node.claim(10).await, node) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = coordinator.submit(&key, submission("cpu")).await;
    let submitted = std::time::Instant::now();
    let (lease, node) = waiting.await.expect("claim task");
    assert_eq!(lease.expect("woken").job_id.to_string(), id);
    assert!(submitted.elapsed() < Duration::from_secs(2));
    let _ = refusal(node.client.renew(uuid::Uuid::new_v4()).await);
    coordinator.stop().await;
}
