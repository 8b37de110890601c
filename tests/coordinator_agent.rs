//! The agent's side of the coordinator: `garage run` with
//! `spec.coordinator.url` makes its identity next to node.yaml, registers,
//! heartbeats its status when it changes, keeps converging while the
//! coordinator is down, and reports again once it is back. Needs the Docker
//! engine and the test image, like the other agent tests.

mod coordinator_support;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use coordinator_support::{Coordinator, Db};
use serde_json::Value;
use support::{Agent, Component, Node};

/// The node as the coordinator lists it, once it satisfies `ok`.
async fn wait_for_node(
    coordinator: &Coordinator,
    limit: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (_, list) = coordinator.get("/api/nodes").await;
        if let Some(node) = list["nodes"].as_array().and_then(|n| n.first()) {
            if ok(node) {
                return node.clone();
            }
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; nodes: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn with_coordinator(yaml: &str, base: &str) -> String {
    yaml.replacen(
        "spec:\n",
        &format!("spec:\n  coordinator:\n    url: {base}\n"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_registers_reports_changes_and_rides_out_an_outage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A long interval: quick reports can only come from status changes.
    let mut config = Coordinator::config(&tmp.path().join("coordinator"), &Db::Sqlite);
    config.heartbeat_interval = Duration::from_secs(30);
    let coordinator = Coordinator::start_with(config.clone()).await;

    let node = Node::new("coord-agent");
    node.write_atomic(&with_coordinator(
        &node.yaml(&[Component::sleeper("a")]),
        &coordinator.base,
    ));
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    node.wait_running(&["a"], support::CONVERGE_TIMEOUT);

    let first_generation = agent.status()["observedGeneration"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let listed = wait_for_node(
        &coordinator,
        Duration::from_secs(30),
        "registered and ready",
        |n| {
            n["state"] == "online"
                && n["ready"] == true
                && n["observed_generation"] == first_generation.as_str()
        },
    )
    .await;
    let key = node
        .dir
        .path()
        .join(".garage")
        .join(garage::identity::KEY_FILE);
    let mode = std::fs::metadata(&key)
        .expect("node.key next to node.yaml")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let node_id = listed["node_id"].as_str().expect("id").to_string();

    // The coordinator goes away; the node's spec changes meanwhile.
    let addr = coordinator.addr;
    coordinator.stop().await;
    node.write_atomic(&with_coordinator(
        &node.yaml(&[Component::sleeper("a"), Component::sleeper("b")]),
        &format!("http://{addr}"),
    ));
    // Converging does not wait for the coordinator.
    node.wait_running(&["a", "b"], support::CONVERGE_TIMEOUT);
    let second_generation = agent.status()["observedGeneration"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(first_generation, second_generation);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        agent
            .log_text()
            .contains("cannot report to the coordinator"),
        "{}",
        agent.log_text()
    );

    // Back on the same address and database: the same node, the new generation.
    let coordinator = Coordinator::start_on(addr, config).await;
    let listed = wait_for_node(
        &coordinator,
        Duration::from_secs(30),
        "reported after the outage",
        |n| n["observed_generation"] == second_generation.as_str() && n["state"] == "online",
    )
    .await;
    assert_eq!(listed["node_id"], node_id.as_str());
    // Heartbeats carry the node's power; the coordinator keeps it with the
    // status document (a grid node: draw only, measured or estimated).
    let (code, history) = coordinator
        .admin_get(&format!("/api/nodes/{node_id}/heartbeats"))
        .await;
    assert_eq!(code, 200, "{history}");
    let power = &history["heartbeats"][0]["status"]["power"];
    assert_eq!(power["source"], "grid", "{history}");
    assert!(
        power["draw_watts"].as_f64().is_some_and(|w| w > 0.0),
        "{history}"
    );
    assert!(power["draw_measured_by"].is_string(), "{history}");
    let (_, list) = coordinator.get("/api/nodes").await;
    assert_eq!(list["nodes"].as_array().map(Vec::len), Some(1), "{list}");
    let metrics = agent.metrics();
    let reports = |request: &str, result: &str| {
        support::metric(
            &metrics,
            "garage_coordinator_reports_total",
            &[("request", request), ("result", result)],
        )
        .unwrap_or(0.0)
    };
    assert!(reports("register", "success") >= 1.0, "{metrics}");
    assert!(reports("heartbeat", "success") >= 1.0, "{metrics}");
    assert!(
        reports("heartbeat", "error") >= 1.0,
        "the outage: {metrics}"
    );
    let secret = std::fs::read_to_string(&key).expect("key");
    assert!(
        !agent.log_text().contains(secret.trim()),
        "the node key was logged"
    );
    drop(agent);
    coordinator.stop().await;
}

/// Acceptance: three agents, each with its own state directory, register and
/// heartbeat; one killed goes offline within three intervals; started again
/// it is online under the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_heartbeat_and_a_killed_one_goes_offline_and_comes_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let interval = Duration::from_secs(1);
    let mut config = Coordinator::config(&tmp.path().join("coordinator"), &Db::Sqlite);
    config.heartbeat_interval = interval;
    config.offline_after = 2;
    let coordinator = Coordinator::start_with(config).await;

    let nodes: Vec<Node> = ["trio-a", "trio-b", "trio-c"]
        .into_iter()
        .map(Node::new)
        .collect();
    let mut agents: Vec<Agent> = nodes
        .iter()
        .map(|node| {
            node.write_atomic(&with_coordinator(
                &node.yaml(&[Component::sleeper("s")]),
                &coordinator.base,
            ));
            Agent::start(node)
        })
        .collect();
    let online = |list: &Value| -> Vec<String> {
        list["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["state"] == "online")
            .filter_map(|n| n["node_id"].as_str().map(str::to_owned))
            .collect()
    };
    let start = Instant::now();
    let ids = loop {
        let (_, list) = coordinator.get("/api/nodes").await;
        let ids = online(&list);
        if ids.len() == 3 {
            break ids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "three online: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id_of = |node: &Node| {
        std::fs::read_to_string(
            node.dir
                .path()
                .join(".garage")
                .join(garage::identity::ID_FILE),
        )
        .expect("node-id")
        .trim()
        .to_string()
    };
    let victim = id_of(&nodes[1]);
    assert!(ids.contains(&victim), "{ids:?} lacks {victim}");

    agents[1].kill9();
    let killed = Instant::now();
    loop {
        let (_, node) = coordinator.get(&format!("/api/nodes/{victim}")).await;
        if node["state"] == "offline" {
            break;
        }
        assert!(
            killed.elapsed() < interval * 3,
            "still {} after three intervals",
            node["state"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let offline_after = killed.elapsed();
    let (_, list) = coordinator.get("/api/nodes").await;
    assert_eq!(online(&list).len(), 2, "the others stay online: {list}");

    agents[1] = Agent::start(&nodes[1]);
    let restarted = Instant::now();
    loop {
        let (_, node) = coordinator.get(&format!("/api/nodes/{victim}")).await;
        if node["state"] == "online" {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "not online again: {node}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(id_of(&nodes[1]), victim, "the same identity");
    let (_, list) = coordinator.get("/api/nodes").await;
    assert_eq!(list["nodes"].as_array().map(Vec::len), Some(3), "{list}");
    eprintln!("offline {offline_after:?} after SIGKILL (interval {interval:?}, offline after 2)");
    drop(agents);
    coordinator.stop().await;
}
