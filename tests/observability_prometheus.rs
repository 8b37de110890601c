//! The Prometheus and Grafana files in `manifests/` against the real thing
//! (issue 15). promtool checks the shipped configuration and runs the alert
//! rules' unit tests (manifests/prometheus/alerts_test.yml). Then a real
//! Prometheus (Debian's `prometheus`), on the shipped configuration with
//! 1 s intervals and loopback targets in the shipped targets-file format,
//! scrapes a real coordinator, a real agent (`garage run` on the real
//! engine, one test container, a gateway link) and a real worker (`garage
//! worker` on a tiny checkpoint), after one streamed completion went through
//! the coordinator's gateway to that worker: every target is up with the
//! `instance` the relabelling promises, the seven alerts load and evaluate,
//! and every panel expression of manifests/grafana/garage.json returns data.
//!
//! A panel may be empty only where its description says when, with a
//! sentence starting "Empty when" or "Empty until" (no GPU on this machine,
//! no job ended...): an empty panel without one fails, naming the panel. A
//! panel that declares it and has data passes (it is "may be empty"). Every
//! `garage_*` metric a panel or alert names must be one Prometheus scraped
//! here or one the source defines (the GPU metrics, absent without a GPU).
//!
//! Skipped without `prometheus`/`promtool` unless GARAGE_REQUIRE_PROMETHEUS=1
//! (CI), and like the other worker tests without the reference venv unless
//! GARAGE_REQUIRE_REFERENCE=1; needs the Docker engine like every agent test.

mod common;
mod network_support;
mod prometheus_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use network_support::{Coordinator, Process, ADMIN_TOKEN};
use prometheus_support::{Prometheus, Target};
use serde_json::{json, Value};
use support::{free_port, garage_bin, Agent, Node, IMAGE, RUN_LABEL};

/// The alerts of manifests/prometheus/alerts.yml.
const ALERTS: [&str; 7] = [
    "GarageNodeOffline",
    "GarageContainerCrashLoop",
    "GarageSpecInvalid",
    "GarageWorkerQueueFull",
    "GarageHeartbeatAuthRejectionsSpike",
    "GarageJobFailureRateHigh",
    "GarageLedgerAuditFailing",
];
/// What `$__rate_interval` becomes: Grafana's value for a 15 s scrape.
const RATE_INTERVAL: &str = "1m";
/// Sentences that declare when a panel is empty.
const EMPTY_MARKERS: [&str; 2] = ["Empty when", "Empty until"];
/// Longest wait for each stage (targets up, rules evaluated, data present).
const STAGE: Duration = Duration::from_secs(60);

/// The node's spec: its coordinator, one test container, and the gateway
/// link to `worker_port`.
fn spec(node: &Node, coordinator: &str, worker_port: u16) -> String {
    format!(
        "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    {RUN_LABEL}: \"{run}\"\nspec:\n  coordinator:\n    url: {coordinator}\n  gpu:\n    mode: none\n  metrics:\n    listen: {metrics}\n  containers:\n    - name: sleeper\n      image: {IMAGE}\n      command: [sleep, \"3600\"]\n  gateway:\n    serve: true\n    workerUrl: http://127.0.0.1:{worker_port}\n    slots: 2\n",
        name = node.name,
        run = support::run_id(),
        metrics = node.metrics,
    )
}

/// `garage worker` on the tiny checkpoint in `model`, logging to `log`.
fn worker(model: &Path, port: u16, log: &Path) -> Process {
    let log = std::fs::File::create(log).expect("worker log");
    Process(
        Command::new(garage_bin())
            .args(["worker", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--device", "cpu", "--model-name", "tiny", "--queue", "8"])
            .arg("--model")
            .arg(model)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start garage worker"),
    )
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after
/// [`STAGE`] with `what` and the last thing `check` said.
async fn within_stage<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + STAGE;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what} not within {STAGE:?}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_kind_and_every_dashboard_panel_has_data() {
    if !prometheus_support::available() {
        return;
    }
    let manifests = prometheus_support::manifests();
    prometheus_support::promtool(&manifests, &["check", "config", "prometheus.yml"]);
    prometheus_support::promtool(&manifests, &["test", "rules", "alerts_test.yml"]);
    let Some(python) = common::python() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("tiny");
    common::make_tiny(&python, &model, &[]);

    // --------------------------------------------- coordinator, worker, agent
    let coordinator = Coordinator::start(&tmp.path().join("coordinator")).await;
    let worker_port = free_port();
    let worker_log = tmp.path().join("worker.log");
    let _worker = worker(&model, worker_port, &worker_log);
    let worker_log = &worker_log;
    within_stage("the worker ready", || async move {
        match reqwest::get(format!("http://127.0.0.1:{worker_port}/readyz")).await {
            Ok(r) if r.status().is_success() => Ok(()),
            other => Err(format!(
                "{other:?}\n{}",
                std::fs::read_to_string(worker_log).unwrap_or_default()
            )),
        }
    })
    .await;
    let node = Node::new("prom");
    node.write_atomic(&spec(&node, &coordinator.base, worker_port));
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    coordinator.wait_online(1).await;
    let coordinator = &coordinator;
    within_stage("the node's gateway link", || async move {
        let (_, links) = coordinator
            .send(
                ADMIN_TOKEN,
                reqwest::Method::GET,
                "/api/gateway/links",
                None,
            )
            .await;
        let serving = links["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["models"] == json!(["tiny"])));
        if serving {
            Ok(())
        } else {
            Err(links.to_string())
        }
    })
    .await;

    // ------------------------------------------------------------ prometheus
    let prometheus_dir = tmp.path().join("prometheus");
    let coordinator_address = format!("127.0.0.1:{}", coordinator.port);
    let config = prometheus_support::write_config(
        &prometheus_dir,
        &[
            (
                "agents",
                Target {
                    address: node.metrics.to_string(),
                    node: &node.name,
                },
            ),
            (
                "workers",
                Target {
                    address: format!("127.0.0.1:{worker_port}"),
                    node: &node.name,
                },
            ),
            (
                "coordinators",
                Target {
                    address: coordinator_address,
                    node: "coordinator",
                },
            ),
        ],
    );
    prometheus_support::promtool(&prometheus_dir, &["check", "config", "prometheus.yml"]);
    let prometheus = &Prometheus::start(&config, &prometheus_dir, free_port()).await;

    // Every target up, with the instance its `node` label gives it.
    let expected: BTreeMap<&str, &str> = [
        ("garage-agent", node.name.as_str()),
        ("garage-worker", node.name.as_str()),
        ("garage-coordinator", "coordinator"),
    ]
    .into();
    let expected = &expected;
    within_stage("every target up", || async move {
        let targets = prometheus.api("targets", &[("state", "active")]).await?;
        let seen: BTreeMap<String, (String, String)> = targets["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["labels"]["job"].as_str().unwrap_or_default().to_string(),
                    (
                        t["labels"]["instance"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        format!("{} {}", t["health"], t["lastError"]),
                    ),
                )
            })
            .collect();
        let all_up = expected.iter().all(|(job, instance)| {
            seen.get(*job)
                .is_some_and(|(i, health)| i == instance && health.starts_with("\"up\""))
        });
        if all_up && seen.len() == expected.len() {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    within_stage("up == 1 for every job", || async move {
        let up = prometheus.query("up == 1").await?;
        let jobs: BTreeSet<&str> = up
            .iter()
            .filter_map(|(labels, _)| labels["job"].as_str())
            .collect();
        if jobs.len() == 3 && jobs.iter().all(|j| expected.contains_key(j)) {
            Ok(())
        } else {
            Err(format!("{up:?}"))
        }
    })
    .await;

    // One streamed completion through the gateway, to the worker.
    let key = coordinator.api_key("prometheus-client");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/completions", coordinator.base))
        .bearer_auth(&key)
        .timeout(Duration::from_secs(60))
        .json(&json!({"model": "tiny", "prompt": "hello", "max_tokens": 8, "stream": true}))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("the stream ends");
    assert!(body.contains("[DONE]"), "{body}");
    within_stage("the completion in Prometheus", || async move {
        let seen = prometheus
            .query(r#"sum(garage_gateway_requests_total{outcome="ok"}) > 0 and sum(garage_inference_requests_total) > 0"#)
            .await?;
        if seen.is_empty() {
            Err("not scraped yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;

    // ----------------------------------------------------------------- rules
    within_stage("the seven alerts loaded and evaluated", || async move {
        let rules = prometheus.api("rules", &[("type", "alert")]).await?;
        let loaded: BTreeMap<String, String> = rules["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_string(),
                    format!("{} {}", r["health"], r["lastError"]),
                )
            })
            .collect();
        let names: BTreeSet<&str> = loaded.keys().map(String::as_str).collect();
        assert_eq!(names, ALERTS.into(), "the alerts Prometheus loaded");
        if loaded.values().all(|h| h.starts_with("\"ok\"")) {
            Ok(())
        } else {
            Err(format!("{loaded:?}"))
        }
    })
    .await;

    // ------------------------------------------------------------- dashboard
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/grafana/garage.json"),
        )
        .expect("garage.json"),
    )
    .expect("garage.json is JSON");
    let variables = variable_values(prometheus, &dashboard).await;
    let queries = panel_queries(&dashboard, &variables);
    assert!(queries.len() >= 40, "only {} panel queries", queries.len());
    let mut empty: Vec<&PanelQuery> = Vec::new();
    let deadline = Instant::now() + STAGE;
    let mut pending: Vec<&PanelQuery> = queries.iter().collect();
    // Rates need two scrapes of a series: what is empty at first is asked again.
    while !pending.is_empty() {
        let mut still = Vec::new();
        for query in pending {
            let samples = prometheus.query(&query.expr).await.unwrap_or_else(|e| {
                panic!("{}: Prometheus refused {}: {e}", query.name, query.expr)
            });
            let data = samples.iter().filter(|(_, v)| !v.is_nan()).count();
            if data == 0 {
                still.push(query);
            } else {
                println!("{:>4} samples  {}", data, query.name);
            }
        }
        pending = still;
        if Instant::now() >= deadline || pending.iter().all(|q| q.declared_empty) {
            empty = pending;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let undeclared: Vec<String> = empty
        .iter()
        .filter(|q| !q.declared_empty)
        .map(|q| format!("{}: {}", q.name, q.expr))
        .collect();
    for query in empty.iter().filter(|q| q.declared_empty) {
        println!("   empty (declared)  {}", query.name);
    }
    assert!(
        undeclared.is_empty(),
        "panel queries without data whose description does not say when they are empty \
         (\"Empty when ...\"):\n{}",
        undeclared.join("\n")
    );

    // Every metric named is a real one.
    let scraped: BTreeSet<String> = prometheus
        .api("label/__name__/values", &[])
        .await
        .expect("metric names")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let alerts = std::fs::read_to_string(prometheus_support::manifests().join("alerts.yml"))
        .expect("alerts.yml");
    let named = metric_names(
        queries
            .iter()
            .map(|q| q.expr.as_str())
            .chain([alerts.as_str()]),
    );
    let defined = defined_metric_names();
    let unknown: Vec<&String> = named
        .iter()
        .filter(|n| !scraped.contains(*n) && !defined.contains(base_name(n)))
        .collect();
    assert!(unknown.is_empty(), "metrics no binary exports: {unknown:?}");
}

/// One expression of one panel, ready to evaluate.
struct PanelQuery {
    /// `row / panel title / refId`.
    name: String,
    expr: String,
    declared_empty: bool,
}

/// Each query variable's first value, from evaluating its
/// `label_values(metric, label)` against Prometheus.
async fn variable_values(prometheus: &Prometheus, dashboard: &Value) -> BTreeMap<String, String> {
    let label_values = regex::Regex::new(r"^label_values\((\w+),\s*(\w+)\)$").expect("regex");
    let mut values = BTreeMap::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        let name = variable["name"].as_str().expect("variable name");
        match variable["type"].as_str() {
            Some("datasource") => {
                assert_eq!(name, "DS_PROMETHEUS");
                assert_eq!(variable["query"], "prometheus");
            }
            Some("query") => {
                let definition = variable["definition"].as_str().expect("definition");
                assert_eq!(
                    variable["query"]["query"], definition,
                    "{name}: definition and query differ"
                );
                let parts = label_values.captures(definition).unwrap_or_else(|| {
                    panic!("{name}: not label_values(metric, label): {definition}")
                });
                let samples = prometheus.query(&parts[1]).await.expect("variable query");
                let mut found: Vec<&str> = samples
                    .iter()
                    .filter_map(|(labels, _)| labels[&parts[2]].as_str())
                    .collect();
                found.sort_unstable();
                let first = found
                    .first()
                    .unwrap_or_else(|| panic!("variable {name} ({definition}) has no value"));
                // Substituted into `=~"$name"` as is: no regex or string escapes needed.
                assert!(
                    first
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "{first}"
                );
                values.insert(name.to_string(), (*first).to_string());
            }
            other => panic!("variable {name} of unexpected type {other:?}"),
        }
    }
    values
}

/// Every panel's target expressions with the variables substituted.
fn panel_queries(dashboard: &Value, variables: &BTreeMap<String, String>) -> Vec<PanelQuery> {
    let datasource = json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    let mut row = String::new();
    let mut queries = Vec::new();
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("panel title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        if panel["type"] == "row" {
            row = title.to_string();
            continue;
        }
        assert_eq!(panel["datasource"], datasource, "{title}");
        let description = panel["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{title} has no description");
        let declared_empty = EMPTY_MARKERS.iter().any(|m| description.contains(m));
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert_eq!(target["datasource"], datasource, "{title}");
            let mut expr = target["expr"].as_str().expect("expr").to_string();
            expr = expr.replace("$__rate_interval", RATE_INTERVAL);
            for (name, value) in variables {
                expr = expr.replace(&format!("${{{name}}}"), value);
                expr = expr.replace(&format!("${name}"), value);
            }
            assert!(!expr.contains('$'), "{title}: unknown variable in {expr}");
            queries.push(PanelQuery {
                name: format!(
                    "{row} / {title} / {}",
                    target["refId"].as_str().unwrap_or("?")
                ),
                expr,
                declared_empty,
            });
        }
    }
    queries
}

/// The `garage_*` names in `texts`.
fn metric_names<'a>(texts: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let name = regex::Regex::new(r"\bgarage_[a-z0-9_]+").expect("regex");
    texts
        .flat_map(|t| name.find_iter(t).map(|m| m.as_str().to_string()))
        .collect()
}

/// A histogram series' metric: `x_bucket`, `x_sum`, `x_count` → `x`.
fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// Every metric name the source registers (a `"garage_…"` literal in src/).
fn defined_metric_names() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).expect("src folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut source = String::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut source,
    );
    let literal = regex::Regex::new(r#""(garage_[a-z0-9_]+)""#).expect("regex");
    literal
        .captures_iter(&source)
        .map(|c| c[1].to_string())
        .collect()
}
