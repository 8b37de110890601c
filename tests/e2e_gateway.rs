//! The network's OpenAI endpoint, end to end: the real coordinator binary,
//! two real agents (`garage run`) each with a real `garage worker` serving
//! SmolLM2 on a loopback port the coordinator is never told (each node
//! reaches the coordinator only through its own outbound link), and the
//! official `openai` Python client (tests/reference/gateway_client_check.py)
//! pointed at the coordinator. Each node takes 8 requests at once, so 16
//! concurrent streams spread over both; node DE decodes two at a time (the
//! rest wait in its worker's queue, without a token) and is SIGKILLed (agent
//! and worker) once one of its streams has a token: its streams in flight
//! end with an error event, its queued requests move to node SE and wait
//! there for a slot. Afterwards every
//! request's bill is checked against what its client received, and the
//! ledger's audit against every invariant. Skipped without the model, the
//! reference venv or the engine unless CI's GARAGE_REQUIRE_* say otherwise.

mod common;
mod network_support;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use network_support::{Coordinator, Process, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};
use support::metric_sum;
use support::{free_port, garage_bin, Agent, Node};

/// How long the whole concurrent run may take, each request included.
const BOUND: Duration = Duration::from_secs(120);

fn worker(model: &std::path::Path, port: u16, max_batch: u32) -> Process {
    Process(
        Command::new(garage_bin())
            .args(["worker", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--model")
            .arg(model)
            .args([
                "--model-name",
                "smollm2",
                "--max-batch",
                &max_batch.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start garage worker"),
    )
}

/// A node spec: coordinator, location, and the gateway link to `worker`.
fn spec(node: &Node, coordinator: &str, country: &str, worker_port: u16, slots: u32) -> String {
    format!(
        "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    {label}: \"{run}\"\nspec:\n  coordinator:\n    url: {coordinator}\n  location:\n    country: {country}\n  gpu:\n    mode: none\n  metrics:\n    listen: {metrics}\n  containers: []\n  gateway:\n    serve: true\n    workerUrl: http://127.0.0.1:{worker_port}\n    slots: {slots}\n",
        name = node.name,
        label = support::RUN_LABEL,
        run = support::run_id(),
        metrics = node.metrics,
    )
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = format!("http://127.0.0.1:{port}/readyz");
    while !reqwest::get(&url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "worker {port} not ready in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for `n` links serving smollm2; returns them.
async fn wait_links(coordinator: &Coordinator, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, list) = coordinator
            .send(ADMIN_TOKEN, Method::GET, "/api/gateway/links", None)
            .await;
        let links: Vec<Value> = list["links"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|l| {
                l["models"]
                    .as_array()
                    .is_some_and(|m| m.contains(&json!("smollm2")))
            })
            .collect();
        if links.len() >= n {
            return links;
        }
        assert!(
            Instant::now() < deadline,
            "{n} links not up in 60 s: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_client_is_served_by_linked_nodes_and_survives_a_killed_node() {
    let Some(model) = common::smollm2_gguf() else {
        return;
    };
    let Some(python) = common::python() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = Coordinator::start(&tmp.path().join("coordinator")).await;
    let key = coordinator.api_key("gateway-client");

    let (se_port, de_port) = (free_port(), free_port());
    let _se_worker = worker(&model, se_port, 8);
    let mut de_worker = Some(worker(&model, de_port, 2));
    wait_ready(se_port).await;
    wait_ready(de_port).await;

    let se = Node::new("gw-se");
    se.write_atomic(&spec(&se, &coordinator.base, "SE", se_port, 8));
    let _se_agent = Agent::start(&se);
    let de = Node::new("gw-de");
    de.write_atomic(&spec(&de, &coordinator.base, "DE", de_port, 8));
    let de_agent = Agent::start(&de);

    let links = wait_links(&coordinator, 2).await;
    let node_of = |country: &str| {
        links
            .iter()
            .find(|l| l["country"] == country)
            .and_then(|l| l["nodeId"].as_str())
            .unwrap_or_else(|| panic!("no {country} link: {links:?}"))
            .to_string()
    };
    let (node_se, node_de) = (node_of("SE"), node_of("DE"));

    let config = tmp.path().join("gateway.json");
    let kill_de = vec![
        de_agent.pid(),
        de_worker.as_ref().map(|w| w.0.id()).unwrap(),
    ];
    std::fs::write(
        &config,
        json!({
            "gateway": format!("{}/v1", coordinator.base),
            "api_key": key,
            "direct": format!("http://127.0.0.1:{se_port}/v1"),
            "model": "smollm2",
            "node_se": node_se,
            "node_de": node_de,
            "kill_de": kill_de,
            "bound_s": BOUND.as_secs(),
        })
        .to_string(),
    )
    .expect("write the client's config");
    let started = Instant::now();
    let out = support::output_with_timeout(
        Command::new(&python)
            .arg(common::script("gateway_client_check.py"))
            .arg(&config),
        BOUND + Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the openai client's checks failed:\n{}\n{}\nagent DE log:\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr),
        de_agent.log_text()
    );
    assert!(started.elapsed() < BOUND + Duration::from_secs(60));
    // The killed worker is gone; dropping it reaps it.
    drop(de_worker.take());

    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|r| serde_json::from_str(r).expect("RESULT is JSON"))
        .expect("the script printed its RESULT");
    let requests = result["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 16);
    let mut broken = 0;
    let mut on_de_ok = 0;
    for r in requests {
        let id = r["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no request id: {r}"));
        let (status, bill) = coordinator
            .send(
                &key,
                Method::GET,
                &format!("/api/gateway/requests/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{bill}");
        assert_eq!(bill["state"], "settled", "{r} {bill}");
        assert_eq!(
            bill["nodeId"], r["node"],
            "billed to the serving node: {r} {bill}"
        );
        if r["error"].is_null() {
            let usage = &r["usage"];
            assert_eq!(bill["completionTokens"], usage["completion"], "{r} {bill}");
            assert_eq!(bill["promptTokens"], usage["prompt"], "{r} {bill}");
            if r["node"] == node_de.as_str() {
                on_de_ok += 1;
            }
        } else {
            broken += 1;
            assert_eq!(
                r["node"],
                node_de.as_str(),
                "only the killed node's streams break: {r}"
            );
            assert!(r["error"].as_str().unwrap().contains("node"), "{r}");
            assert_eq!(
                bill["completionTokens"], r["tokens"],
                "charged only what was delivered: {r} {bill}"
            );
            assert_eq!(bill["promptTokens"], 0, "{bill}");
        }
    }
    assert!(
        broken >= 1,
        "the killed node had a stream in flight: {result}"
    );
    let served_se = requests
        .iter()
        .filter(|r| r["node"] == node_se.as_str())
        .count();
    assert!(served_se + broken + on_de_ok == 16, "{result}");

    let metrics = reqwest::get(format!("{}/metrics", coordinator.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    // Node DE took about half the streams and decoded two: the rest had no
    // token when it died and were moved.
    assert!(
        metric_sum(&metrics, "garage_gateway_retries_total").unwrap_or(0.0) >= 3.0,
        "queued requests of the killed node moved to the other node:\n{metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "garage_gateway_first_token_overhead_seconds_count"
        )
        .unwrap_or(0.0)
            >= 16.0
    );
    let (_, audit) = coordinator
        .send(ADMIN_TOKEN, Method::GET, "/api/ledger/audit", None)
        .await;
    assert_eq!(audit["ok"], true, "{audit}");
    assert_eq!(
        audit["open_holds"], 0,
        "no hold outlives its request: {audit}"
    );
}
