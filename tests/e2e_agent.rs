//! The agent (`garage run`) converging continuously: edits, removals, drift
//! repair, crash backoff, status, metrics, a clean SIGTERM, and its HTTP
//! server under more idle connections than it has file descriptors.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Acceptance: editing one component while `garage run` runs recreates only
/// that container, within 2 s of the write; the others keep their IDs.
#[test]
fn editing_one_component_recreates_only_it_within_2s() {
    let node = Node::new("edit-one");
    let mut comps = vec![
        Component::sleeper("a"),
        Component::sleeper("b").env("VERSION", "1"),
        Component::sleeper("c"),
    ];
    node.write(&comps);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let before = node.wait_running(&["a", "b", "c"], CONVERGE_TIMEOUT);

    comps[1] = Component::sleeper("b").env("VERSION", "2");
    let written = Instant::now();
    node.write(&comps);
    let (new_b, took) = wait_replaced(
        &node.name,
        "b",
        &before["b"].id,
        written,
        Duration::from_secs(10),
    );
    assert!(
        took <= Duration::from_secs(2),
        "b was recreated {took:?} after the write (must be within 2 s)"
    );
    let env = docker_ok(&["inspect", "--format", "{{json .Config.Env}}", &new_b]);
    assert!(env.contains("VERSION=2"), "new b lacks the edit: {env}");

    // Give the agent time to do anything wrong, then compare.
    std::thread::sleep(Duration::from_secs(1));
    let after = node.wait_running(&["a", "b", "c"], CONVERGE_TIMEOUT);
    assert_eq!(after["b"].id, new_b);
    for comp in ["a", "c"] {
        assert_eq!(after[comp].id, before[comp].id, "{comp} was recreated");
        assert_eq!(
            after[comp].started_at, before[comp].started_at,
            "{comp} was restarted"
        );
    }
}

/// Acceptance: removing a component removes its container; a container
/// without garage labels from the same image is never touched.
#[test]
fn removing_a_component_removes_it_and_spares_unlabelled_containers() {
    let foreign = ForeignContainer::start("remove");
    let foreign_before = foreign.inspect().expect("foreign container");
    let node = Node::new("remove");
    node.write(&[Component::sleeper("keep"), Component::sleeper("drop")]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let before = node.wait_running(&["drop", "keep"], CONVERGE_TIMEOUT);

    node.write(&[Component::sleeper("keep")]);
    let after = node.wait_running(&["keep"], Duration::from_secs(10));
    assert_eq!(after["keep"].id, before["keep"].id, "keep was recreated");
    assert!(
        docker(&["inspect", &before["drop"].id]).status.code() != Some(0),
        "the removed component's container still exists"
    );

    // The agent must leave the foreign container alone, also over a resync.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        foreign.inspect(),
        Some(foreign_before),
        "agent touched an unlabelled container"
    );
}

/// Acceptance: `docker rm -f` of an owned container: back within 2 s.
#[test]
fn removed_container_is_back_within_2s() {
    let node = Node::new("rm-f");
    node.write(&[Component::sleeper("a"), Component::sleeper("b")]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let before = node.wait_running(&["a", "b"], CONVERGE_TIMEOUT);

    node.remove_and_expect_back(&before, "a", "b", "steady state");
}

/// Acceptance: `docker stop` of an owned container: restarted.
#[test]
fn stopped_container_is_restarted() {
    let node = Node::new("stop");
    node.write(&[Component::sleeper("a")]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let before = node.wait_running(&["a"], CONVERGE_TIMEOUT);

    docker_ok(&["stop", "-t", "1", &before["a"].id]);
    let after = wait_until(
        "a to run again after docker stop",
        Duration::from_secs(20),
        POLL,
        || {
            let m = node.owned();
            let a = m.get("a")?;
            (a.running() && a.started_at != before["a"].started_at).then(|| a.clone())
        },
    );
    assert!(after.running());
    wait_until(
        "status to count the restart of a",
        Duration::from_secs(5),
        POLL,
        || {
            let s = agent.try_status()?;
            (component(&s, "a")?["restarts"].as_i64()? >= 1).then_some(())
        },
    );
}

/// Acceptance: a container that always crashes shows growing backoff in
/// status and metrics; the other components are not disturbed.
#[test]
fn crashing_container_shows_growing_backoff() {
    let node = Node::new("crash").with_backoff("1s", "8s");
    node.write(&[
        Component::sleeper("steady"),
        Component::with_command("crasher", &["sh", "-c", "exit 3"]).restart("Always"),
    ]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let steady = wait_until("steady to run", CONVERGE_TIMEOUT, POLL, || {
        node.owned().get("steady").filter(|c| c.running()).cloned()
    });

    let mut backoffs: Vec<f64> = Vec::new();
    let mut restarts: Vec<i64> = Vec::new();
    let mut metric_max = 0.0f64;
    let mut last_exit = None;
    let mut last_status = serde_json::Value::Null;
    let seen = try_wait_until(Duration::from_secs(45), Duration::from_millis(200), || {
        let s = agent.try_status()?;
        let c = component(&s, "crasher")?.clone();
        last_status = s;
        if let Some(b) = c["backoffSeconds"].as_f64() {
            if backoffs.last() != Some(&b) {
                backoffs.push(b);
            }
        }
        if let Some(r) = c["restarts"].as_i64() {
            if restarts.last() != Some(&r) {
                restarts.push(r);
            }
        }
        if let Some(e) = c["lastExitCode"].as_i64() {
            last_exit = Some(e);
        }
        if let Ok((200, m)) = http_get(&agent.url, "/metrics") {
            if let Some(v) = metric(&m, "garage_component_backoff_seconds", &[("kind", "extra")]) {
                metric_max = metric_max.max(v);
            }
        }
        let max_b = backoffs.iter().cloned().fold(0.0, f64::max);
        let grew = backoffs.iter().any(|&b| b > 0.0) && max_b >= 4.0;
        (grew && restarts.len() >= 3 && metric_max >= 2.0).then_some(())
    });
    assert!(
        seen.is_some(),
        "no growing backoff seen in 45 s: backoffSeconds {backoffs:?}, restarts {restarts:?}, \
         max garage_component_backoff_seconds{{kind=\"extra\"}} {metric_max}; last /status: {last_status:#}"
    );
    let first_positive = backoffs.iter().find(|&&b| b > 0.0).unwrap();
    assert!(
        backoffs.iter().cloned().fold(0.0, f64::max) > *first_positive,
        "backoff did not grow: {backoffs:?}"
    );
    assert!(
        backoffs.iter().all(|&b| b <= 8.0 + 1e-9),
        "backoff exceeded the configured max of 8s: {backoffs:?}"
    );
    assert_eq!(last_exit, Some(3), "lastExitCode of crasher");
    let m = agent.metrics();
    assert!(
        metric_sum(&m, "garage_container_restarts_total").unwrap_or(0.0) >= 2.0,
        "garage_container_restarts_total did not count the restarts"
    );
    let now = node.owned();
    assert_eq!(now["steady"].id, steady.id, "steady was recreated");
    assert_eq!(
        now["steady"].started_at, steady.started_at,
        "steady was restarted"
    );
    let s = agent.status();
    assert_ne!(
        condition_status(&s, "Ready"),
        "True",
        "Ready=True with a crashing component: {s:#}"
    );
}

/// `/status` after converging: node, generation, the four conditions, one
/// entry per component matching the engine; `garage status` prints it;
/// `/healthz` and `/readyz` answer.
#[test]
fn status_reports_converged_node() {
    let node = Node::new("status");
    node.write(&[Component::sleeper("a"), Component::sleeper("b")]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let running = node.wait_running(&["a", "b"], CONVERGE_TIMEOUT);
    let s = wait_until(
        "Ready=True in /status",
        Duration::from_secs(10),
        POLL,
        || {
            let s = agent.try_status()?;
            (condition_status(&s, "Ready") == "True").then_some(s)
        },
    );
    assert_eq!(s["node"], node.name.as_str(), "{s:#}");
    let observed = s["observedGeneration"]
        .as_str()
        .expect("observedGeneration");
    assert!(!observed.is_empty());
    assert_eq!(s["lastAppliedGeneration"].as_str(), Some(observed), "{s:#}");
    assert_eq!(
        s["lastAttemptedGeneration"].as_str(),
        Some(observed),
        "{s:#}"
    );
    for ty in ["Ready", "Progressing", "Degraded", "SpecValid"] {
        let c = condition(&s, ty).unwrap_or_else(|| panic!("no {ty} condition: {s:#}"));
        assert!(
            c["reason"].is_string() && c["message"].is_string(),
            "{ty}: {c}"
        );
        assert!(
            c["lastTransitionTime"]
                .as_str()
                .is_some_and(|t| t.contains('T')),
            "{ty} lastTransitionTime is not RFC 3339: {c}"
        );
    }
    assert_eq!(condition_status(&s, "SpecValid"), "True");
    assert_eq!(condition_status(&s, "Degraded"), "False");
    for comp in ["a", "b"] {
        let c = component(&s, comp).unwrap_or_else(|| panic!("no component {comp}: {s:#}"));
        assert_eq!(c["kind"], "extra", "{c}");
        assert_eq!(c["state"], "running", "{c}");
        assert_eq!(
            c["containerId"].as_str(),
            Some(running[comp].id.as_str()),
            "{c}"
        );
        assert_eq!(c["restarts"].as_i64(), Some(0), "{c}");
    }

    let out = garage(&["status", "--url", &agent.url]);
    assert!(out.status.success(), "garage status: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&node.name),
        "garage status does not name the node: {}",
        show(&out)
    );
    for path in ["/healthz", "/readyz"] {
        let (code, body) = http_get(&agent.url, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(code, 200, "GET {path}: {body}");
    }
}

/// Acceptance: `promtool check metrics` passes on the agent's /metrics.
#[test]
fn promtool_check_metrics_passes() {
    let node = Node::new("promtool");
    node.write(&[Component::sleeper("a")]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    node.wait_running(&["a"], CONVERGE_TIMEOUT);
    // Force one drift correction so the counters have samples.
    let a = node.owned()["a"].id.clone();
    docker_ok(&["rm", "-f", &a]);
    wait_replaced(&node.name, "a", &a, Instant::now(), Duration::from_secs(10));
    let text = agent.metrics();

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install Debian's prometheus package (.ci/run does)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let status = try_wait_until(Duration::from_secs(30), POLL, || child.try_wait().unwrap());
    let out = match status {
        Some(_) => child.wait_with_output().unwrap(),
        None => {
            let _ = child.kill();
            panic!("promtool did not finish in 30 s");
        }
    };
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}\n--- /metrics:\n{text}",
        show(&out)
    );
}

/// Every metric family of the contract is exposed (label vectors need their
/// fixed label values initialised to show up before the first event).
#[test]
fn metrics_expose_every_contract_family() {
    let node = Node::new("metrics");
    node.write(&[Component::sleeper("a")]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    node.wait_running(&["a"], CONVERGE_TIMEOUT);
    let text = wait_until(
        "a successful reconcile in /metrics",
        Duration::from_secs(10),
        POLL,
        || {
            let t = agent.metrics();
            metric(&t, "garage_reconciles_total", &[("result", "success")])
                .filter(|v| *v >= 1.0)
                .map(|_| t)
        },
    );
    let families = [
        ("garage_reconciles_total", "counter"),
        ("garage_reconcile_duration_seconds", "histogram"),
        ("garage_drift_corrections_total", "counter"),
        ("garage_owned_containers", "gauge"),
        ("garage_container_restarts_total", "counter"),
        ("garage_component_backoff_seconds", "gauge"),
        ("garage_spec_valid", "gauge"),
        ("garage_observed_generation", "gauge"),
        (
            "garage_last_successful_reconcile_timestamp_seconds",
            "gauge",
        ),
        ("garage_event_stream_reconnects_total", "counter"),
        ("garage_build_info", "gauge"),
        ("garage_node_power_draw_watts", "gauge"),
        ("garage_node_solar_production_watts", "gauge"),
        ("garage_node_power_surplus_watts", "gauge"),
        ("garage_node_energy_joules_total", "counter"),
        ("garage_node_solar_energy_joules_total", "counter"),
        ("garage_agent_gateway_link_up", "gauge"),
        ("garage_agent_gateway_link_connects_total", "counter"),
        ("garage_agent_gateway_requests_total", "counter"),
        ("garage_agent_gateway_in_flight", "gauge"),
    ];
    let missing: Vec<String> = families
        .iter()
        .filter(|(name, ty)| !text.contains(&format!("# TYPE {name} {ty}")))
        .map(|(name, ty)| format!("{name} ({ty})"))
        .collect();
    assert!(
        missing.is_empty(),
        "missing metric families: {missing:?}\n--- /metrics:\n{text}"
    );
    assert_eq!(metric(&text, "garage_spec_valid", &[]), Some(1.0));
    // The energy monitor samples at start: a CPU-only host draws at least
    // the estimate's idle power.
    assert!(
        metric(&text, "garage_node_power_draw_watts", &[]).is_some_and(|w| w >= 15.0),
        "--- /metrics:\n{text}"
    );
    assert_eq!(
        metric(
            &text,
            "garage_owned_containers",
            &[("kind", "extra"), ("state", "running")]
        ),
        Some(1.0),
        "--- /metrics:\n{text}"
    );
    assert!(
        metric_samples(&text, "garage_build_info")
            .iter()
            .any(|(l, v)| *v == 1.0 && l.contains_key("version")),
        "garage_build_info{{version}} 1 missing"
    );
}

/// Acceptance: SIGTERM stops the agent cleanly (exit 0) and leaves the
/// workloads running.
#[test]
fn sigterm_exits_0_and_leaves_containers_running() {
    let node = Node::new("sigterm");
    node.write(&[Component::sleeper("a"), Component::sleeper("b")]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let before = node.wait_running(&["a", "b"], CONVERGE_TIMEOUT);

    agent.signal("TERM");
    let status = agent.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "agent exit after SIGTERM: {status}; log:\n{}",
        agent.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = node.owned();
    assert_eq!(
        describe(&after),
        describe(&before),
        "SIGTERM changed the containers"
    );
    assert!(after.values().all(|c| c.running()));
}

/// Issue 9, D18: a second agent for the same node (a copied node.yaml with
/// another metrics port and state folder) refuses to start, naming the
/// first agent's pid and spec; the first one's containers are untouched.
#[test]
fn a_second_agent_for_the_same_node_refuses_to_start() {
    let node = Node::new("twin");
    node.write(&[Component::sleeper("a")]);
    let mut first = Agent::start(&node);
    first.wait_serving();
    let before = node.wait_running(&["a"], CONVERGE_TIMEOUT);

    let twin = tempfile::tempdir().expect("tempdir");
    let twin_spec = twin.path().join("node.yaml");
    let text = std::fs::read_to_string(&node.path).expect("read node.yaml");
    let other_port = format!("127.0.0.1:{}", free_port());
    let copied = text.replace(&node.metrics.to_string(), &other_port);
    assert_ne!(copied, text, "the metrics address was not in node.yaml");
    std::fs::write(&twin_spec, copied).expect("write the copy");
    let out = output_with_timeout(
        Command::new(garage_bin()).args(["run", "-f", twin_spec.to_str().unwrap()]),
        Duration::from_secs(30),
    );
    assert!(
        !out.status.success(),
        "the second agent ran: {}",
        show(&out)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("pid {}", first.pid())),
        "the error does not name the first agent's pid: {}",
        show(&out)
    );
    assert!(
        said.contains(&node.path.display().to_string()),
        "the error does not name the first agent's spec: {}",
        show(&out)
    );

    std::thread::sleep(Duration::from_secs(2));
    let after = node.owned();
    assert_eq!(describe(&after), describe(&before), "containers changed");
    assert_eq!(
        after["a"].started_at, before["a"].started_at,
        "a was restarted"
    );
    assert!(first.exited().is_none(), "the first agent stopped");
}

/// Issue 9, D20: a crash-looping container's exit reason or last output
/// lines are in `/status`.
#[test]
fn a_crash_looping_container_shows_its_last_output_in_the_status() {
    let node = Node::new("last-words");
    node.write(&[Component::with_command(
        "crash",
        &["sh", "-c", "echo cannot open model.gguf >&2; exit 3"],
    )]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let s = wait_until(
        "the crash's last output in /status",
        CONVERGE_TIMEOUT,
        POLL,
        || {
            let s = agent.try_status()?;
            let tail = component(&s, "crash")?["lastTermination"]["logTail"].clone();
            tail.as_array()?
                .iter()
                .any(|l| l.as_str() == Some("cannot open model.gguf"))
                .then_some(s)
        },
    );
    let c = component(&s, "crash").unwrap();
    assert_eq!(c["lastExitCode"].as_i64(), Some(3), "{c}");
    let out = garage(&["status", "--url", &agent.url]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("| cannot open model.gguf"),
        "garage status does not show the last output: {}",
        show(&out)
    );
}

/// Issue 9, B4: 1,100 half-open connections under a 1,024 file limit left
/// the servers unanswered. Under `ulimit -n 256`, 400 idle connections must
/// leave `/healthz` answering at once, with no flood of EMFILE in the log.
#[test]
fn idle_connections_beyond_the_file_limit_leave_the_agent_answering() {
    let node = Node::new("fdlimit");
    node.write(&[Component::sleeper("a")]);
    let mut agent = Agent::start_with_file_limit(&node, 256);
    agent.wait_serving();
    node.wait_running(&["a"], CONVERGE_TIMEOUT);
    let addr = agent.url.trim_start_matches("http://").to_string();
    let idle: Vec<std::net::TcpStream> = (0..400)
        .map(|i| {
            std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect #{i}: {e}"))
        })
        .collect();
    for _ in 0..3 {
        let started = Instant::now();
        let answer = http_get(&agent.url, "/healthz");
        assert!(
            matches!(answer, Ok((200, _))) && started.elapsed() < Duration::from_secs(2),
            "/healthz after {:?}: {answer:?}; log:\n{}",
            started.elapsed(),
            agent.log_text()
        );
    }
    drop(idle);
    let log = agent.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
}
