//! An inference job through the network: the real coordinator binary, a
//! real `garage worker` process serving SmolLM2 (skipped without the model
//! file unless `GARAGE_REQUIRE_SMOLLM2=1`), and the agent's work task with
//! the node's executor and its signed client, in this process (an agent
//! would run the worker in a container; this is the same runner pointed at
//! a worker process). The market has a qualification, so the node first
//! passes it through the same work task (SmolLM2's greedy " Paris"); then
//! the job's answer is the worker's greedy answer.

mod common;
mod network_support;
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garage::coordinator::api::Location;
use garage::coordinator::CoordinatorClient;
use garage::gpu::GpuInventory;
use garage::identity::NodeIdentity;
use garage::metrics::AgentMetrics;
use garage::reconcile::NodeStatus;
use garage::spec::JobKind;
use garage::work::inference::InferenceRunner;
use garage::work::{self, NodeExecutor, RunningJobs, WorkSettings};
use network_support::{Coordinator, Process, ADMIN_TOKEN, JOB_LIMIT};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_job_returns_the_workers_answer() {
    let Some(model) = common::smollm2_gguf() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = Coordinator::start(&tmp.path().join("coordinator")).await;
    let key = coordinator.api_key("carol");

    let port = support::free_port();
    let worker_base = format!("http://127.0.0.1:{port}");
    let _worker = Process(
        Command::new(support::garage_bin())
            .args(["worker", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--model")
            .arg(&model)
            .args(["--model-name", "smollm2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start garage worker"),
    );
    let runner = InferenceRunner::new(&worker_base).expect("runner");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !runner.ready().await {
        assert!(
            Instant::now() < deadline,
            "the worker did not serve within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let identity = NodeIdentity::load_or_create(&tmp.path().join("node")).expect("identity");
    let client = CoordinatorClient::new(&coordinator.base, Arc::new(identity)).expect("client");
    let registration = client.registration(Vec::new(), Location::default(), None);
    let (_status_tx, status) = tokio::sync::watch::channel(NodeStatus::new("inference-node"));
    let stop = CancellationToken::new();
    let heartbeats = tokio::spawn(garage::coordinator_link::run(
        client.clone(),
        registration,
        GpuInventory::none("test"),
        status,
        tokio::sync::watch::channel(None).1,
        AgentMetrics::new(),
    ));
    coordinator.wait_online(1).await;
    let qualification = json!({
        "model": "smollm2",
        "prompt": "The capital of France is",
        "expected": " Paris",
        "max_tokens": 3,
        "min_tokens_per_second": 0.1,
    });
    let (status, set) = coordinator
        .send(
            ADMIN_TOKEN,
            reqwest::Method::PUT,
            "/api/markets/cpu/qualification",
            Some(qualification),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    let executor = NodeExecutor {
        containers: None,
        inference: Some(runner),
    };
    let task = tokio::spawn(work::run(
        Arc::new(client),
        Arc::new(executor),
        Arc::new(work::Unmetered),
        WorkSettings::new(1, &[JobKind::Inference], BTreeMap::new()),
        RunningJobs::new(),
        AgentMetrics::new(),
        stop.clone(),
    ));

    let request = json!({
        "model": "smollm2",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "temperature": 0.0,
    });
    let submission =
        json!({"type": "inference", "inference": request, "placement": {"market": "cpu"}});
    let (status, view) = coordinator
        .send(&key, reqwest::Method::POST, "/api/jobs", Some(submission))
        .await;
    assert_eq!(status, 201, "{view}");
    let id = view["job_id"].as_str().expect("job_id").to_owned();
    let view = coordinator
        .wait_state(&key, &id, "SUCCEEDED", JOB_LIMIT)
        .await;
    let answer = view["result"]["choices"][0]["message"]["content"].clone();
    let (_, nodes) = coordinator
        .send(ADMIN_TOKEN, reqwest::Method::GET, "/api/nodes", None)
        .await;
    let node_id = nodes["nodes"][0]["node_id"].as_str().expect("node_id");
    let (_, node) = coordinator
        .send(
            ADMIN_TOKEN,
            reqwest::Method::GET,
            &format!("/api/nodes/{node_id}"),
            None,
        )
        .await;
    assert_eq!(
        node["qualification"]["qualified"], true,
        "the node passed the qualification before it took the job: {node}"
    );
    assert!(node["qualification"]["tokens_per_second"].as_f64() > Some(0.1));
    assert!(
        answer.as_str().is_some_and(|text| !text.is_empty()),
        "{view}"
    );

    let direct: Value = reqwest::Client::new()
        .post(format!("{worker_base}/v1/chat/completions"))
        .json(&request)
        .send()
        .await
        .expect("the worker answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        direct["choices"][0]["message"]["content"], answer,
        "the job's answer is the worker's greedy answer"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("the work task stops")
        .expect("joined");
    heartbeats.abort();
}
