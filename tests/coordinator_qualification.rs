//! Market qualification, on SQLite and PostgreSQL with simulated signed
//! nodes: a node of a market with a qualification gets only its
//! qualification job until it passed (never the queued job); a right answer
//! at speed qualifies it and then it gets the queued job; a wrong answer or
//! a too slow one does not, and it waits out the pause; a node that takes
//! no inference jobs gets nothing there; a market without a qualification
//! is unchanged; a qualification job whose lease expires is a failed try;
//! the node and market views show claimed vs qualified.

#[macro_use]
mod coordinator_support;

use std::path::Path;
use std::time::{Duration, Instant};

use coordinator_support::jobs::submission;
use coordinator_support::*;
use garage::coordinator::api::{ClaimRequest, JobType, Outcome};
use reqwest::Method;
use serde_json::{json, Value};

const PATH: &str = "/api/markets/cpu/qualification";

fn paris(min_tokens_per_second: f64) -> Value {
    json!({
        "model": "smollm2-135m",
        "prompt": "The capital of France is",
        "expected": " Paris.",
        "max_tokens": 3,
        "min_tokens_per_second": min_tokens_per_second
    })
}

fn answer(text: &str) -> Value {
    json!({"choices": [{"index": 0, "text": text}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
}

async fn qualify(coordinator: &Api, min_tokens_per_second: f64) {
    let (status, set) = coordinator
        .admin_send(Method::PUT, PATH, Some(paris(min_tokens_per_second)))
        .await;
    assert_eq!(status, 200, "{set}");
}

async fn node_qualification(coordinator: &Api, node: &TestNode) -> Value {
    let (status, view) = coordinator.get(&format!("/api/nodes/{}", node.id())).await;
    assert_eq!(status, 200, "{view}");
    view["qualification"].clone()
}

async fn right_answer_qualifies(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    let (status, body) = coordinator.get(PATH).await;
    assert_eq!(status, 401, "only the admin reads a qualification: {body}");
    let (status, body) = coordinator.admin_get(PATH).await;
    assert_error(status, &body, 404, "not_found");
    qualify(&coordinator, 1.0).await;
    let (status, stored) = coordinator.admin_get(PATH).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["qualification"], paris(1.0));

    let node = TestNode::new(&dir.join("node"), &coordinator);
    node.register(None).await;
    let key = coordinator.account("alice").await;
    let queued = coordinator.submit(&key, submission("cpu")).await;

    let test = node.claim(5).await.expect("the qualification job");
    assert_ne!(test.job_id.to_string(), queued);
    assert_eq!(test.kind, JobType::Inference);
    assert_eq!(test.spec["prompt"], "The capital of France is");
    assert_eq!(test.spec["temperature"], 0.0);
    let view = node_qualification(&coordinator, &node).await;
    assert_eq!(view["market"], "cpu");
    assert_eq!(view["qualified"], false);
    assert_eq!(view["running_job"], test.job_id.to_string());
    assert!(
        node.claim(0).await.is_none(),
        "no second qualification job, no queued job while it runs"
    );
    let (_, jobs) = coordinator
        .client_send(&key, Method::GET, "/api/jobs", None, &[])
        .await;
    assert_eq!(
        jobs["jobs"].as_array().expect("jobs").len(),
        1,
        "the qualification job is no client's: {jobs}"
    );

    let done = node
        .complete(&test, Outcome::Succeeded, answer(" Paris. The"))
        .await;
    assert_eq!(done.expect("completed"), "SUCCEEDED");
    let view = node_qualification(&coordinator, &node).await;
    assert_eq!(view["qualified"], true, "{view}");
    assert!(view["qualified_at"].is_string(), "{view}");
    assert!(view["tokens_per_second"].as_f64().expect("speed") >= 1.0);
    assert!(view.get("running_job").is_none(), "{view}");
    let (_, markets) = coordinator.get("/api/markets").await;
    assert_eq!(markets["markets"][0]["market"], "cpu");
    assert_eq!(markets["markets"][0]["qualified"], 1, "{markets}");

    let work = node.claim(5).await.expect("the queued job");
    assert_eq!(work.job_id.to_string(), queued);
    coordinator.stop().await;
}
on_both_databases!(qualified_sqlite, qualified_postgres, right_answer_qualifies);

async fn wrong_or_slow_fails(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    qualify(&coordinator, 10.0).await;
    let wrong = TestNode::new(&dir.join("wrong"), &coordinator);
    let slow = TestNode::new(&dir.join("slow"), &coordinator);
    let containers = TestNode::new(&dir.join("containers"), &coordinator);
    wrong.register(None).await;
    slow.register(None).await;
    containers.register(None).await;
    let key = coordinator.account("alice").await;
    let queued = coordinator.submit(&key, submission("cpu")).await;

    let containers_only = ClaimRequest {
        slots: 1,
        job_types: vec![JobType::Container],
        labels: Default::default(),
        wait_seconds: Some(0),
        power: None,
    };
    let none = containers
        .client
        .claim(&containers_only)
        .await
        .expect("answered");
    assert!(none.is_none(), "no inference, no qualification, no work");

    let test = wrong.claim(5).await.expect("the qualification job");
    let done = wrong
        .complete(&test, Outcome::Succeeded, answer(" Lyon."))
        .await;
    assert_eq!(done.expect("completed"), "SUCCEEDED");
    let view = node_qualification(&coordinator, &wrong).await;
    assert_eq!(view["qualified"], false, "{view}");
    let failure = view["last_failure"].as_str().expect("last_failure");
    assert!(failure.starts_with("wrong answer"), "{failure}");
    assert!(view["retry_after"].is_string(), "{view}");
    assert!(
        wrong.claim(0).await.is_none(),
        "a failed node waits out the pause and never gets the queued job"
    );

    // No node answers three tokens this fast.
    qualify(&coordinator, 1.0e9).await;
    let test = slow.claim(5).await.expect("the qualification job");
    let done = slow
        .complete(&test, Outcome::Succeeded, answer(" Paris."))
        .await;
    assert_eq!(done.expect("completed"), "SUCCEEDED");
    let view = node_qualification(&coordinator, &slow).await;
    assert_eq!(view["qualified"], false, "{view}");
    let failure = view["last_failure"].as_str().expect("last_failure");
    assert!(failure.starts_with("too slow"), "{failure}");
    assert!(view["tokens_per_second"].as_f64().expect("measured") > 0.0);
    assert!(slow.claim(0).await.is_none());
    let (_, markets) = coordinator.get("/api/markets").await;
    assert_eq!(markets["markets"][0]["qualified"], 0, "{markets}");
    let job = coordinator.job(&key, &queued).await;
    assert_eq!(job["state"], "QUEUED", "{job}");

    // Without the qualification the market is open again.
    let (status, _) = coordinator.admin_send(Method::DELETE, PATH, None).await;
    assert_eq!(status, 204);
    assert!(node_qualification(&coordinator, &slow).await.is_null());
    let work = slow.claim(5).await.expect("the queued job");
    assert_eq!(work.job_id.to_string(), queued);
    coordinator.stop().await;
}
on_both_databases!(failed_sqlite, failed_postgres, wrong_or_slow_fails);

async fn other_markets_unchanged(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    let (status, body) = coordinator
        .admin_send(
            Method::PUT,
            "/api/markets/h100/qualification",
            Some(paris(50.0)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = coordinator
        .admin_send(Method::PUT, PATH, Some(paris(0.0)))
        .await;
    assert_error(status, &body, 400, "invalid_qualification");
    let node = TestNode::new(&dir.join("node"), &coordinator);
    node.register(None).await;
    let key = coordinator.account("alice").await;
    let queued = coordinator.submit(&key, submission("cpu")).await;
    let work = node.claim(5).await.expect("the queued job");
    assert_eq!(work.job_id.to_string(), queued);
    assert!(node_qualification(&coordinator, &node).await.is_null());
    let (_, markets) = coordinator.get("/api/markets").await;
    assert!(
        markets["markets"][0].get("qualified").is_none(),
        "{markets}"
    );
    coordinator.stop().await;
}
on_both_databases!(
    unchanged_sqlite,
    unchanged_postgres,
    other_markets_unchanged
);

async fn lost_qualification_fails(dir: &Path, db: Db) {
    let mut config = Coordinator::config(&dir.join("coordinator"), &db);
    config.lease_duration = Duration::from_secs(1);
    let coordinator = Coordinator::start_with(config).await;
    qualify(&coordinator, 1.0).await;
    let node = TestNode::new(&dir.join("node"), &coordinator);
    node.register(None).await;
    let test = node.claim(5).await.expect("the qualification job");
    // The node goes silent; the sweep fails the one-attempt job.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(node.claim(0).await.is_none(), "no retry within the pause");
        let view = node_qualification(&coordinator, &node).await;
        if let Some(failure) = view["last_failure"].as_str() {
            assert!(failure.contains("node lost"), "{failure}");
            assert!(view.get("running_job").is_none(), "{view}");
            break;
        }
        assert_eq!(view["running_job"], test.job_id.to_string(), "{view}");
        assert!(Instant::now() < deadline, "no failure recorded: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    coordinator.stop().await;
}
on_both_databases!(lost_sqlite, lost_postgres, lost_qualification_fails);
