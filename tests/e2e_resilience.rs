//! The agent surviving its own failures: a cut Docker connection (through a
//! socket proxy, since CI cannot restart the shared engine) and a SIGKILL.

mod support;

use std::time::Duration;

use support::*;

/// Acceptance: event stream cut while running: the agent reconnects
/// (garage_event_stream_reconnects_total grows) and still repairs drift.
#[test]
fn event_stream_cut_reconnects_and_still_repairs() {
    let proxy = DockerProxy::start();
    let node = Node::new("stream-cut");
    node.write(&[Component::sleeper("a"), Component::sleeper("b")]);
    let mut agent = Agent::start_with_env(&node, &[("DOCKER_HOST", &proxy.docker_host())]);
    agent.wait_serving();
    let before = node.wait_running(&["a", "b"], CONVERGE_TIMEOUT);
    assert!(
        proxy.accepted() > 0,
        "the agent did not connect through the proxy"
    );

    let reconnects = |agent: &Agent| {
        http_get(&agent.url, "/metrics")
            .ok()
            .and_then(|(_, m)| metric(&m, "garage_event_stream_reconnects_total", &[]))
    };
    let r0 = reconnects(&agent).unwrap_or(0.0);
    let cut = proxy.cut();
    assert!(
        cut > 0,
        "no live connection to cut (is the event stream open?)"
    );
    let r1 = wait_until(
        "garage_event_stream_reconnects_total to grow after the cut",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || reconnects(&agent).filter(|r| *r > r0),
    );
    eprintln!("reconnects {r0} -> {r1} after cutting {cut} connections");

    // Drift after the reconnect is still seen and repaired promptly.
    node.remove_and_expect_back(&before, "a", "b", "after the reconnect");
}

/// Acceptance: agent killed with SIGKILL and restarted: adopts what exists,
/// recreates nothing.
#[test]
fn sigkilled_agent_restarts_and_adopts_without_recreating() {
    let node = Node::new("adopt");
    node.write(&[
        Component::sleeper("a"),
        Component::sleeper("b").env("X", "1"),
        Component::sleeper("c"),
    ]);
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let before = node.wait_running(&["a", "b", "c"], CONVERGE_TIMEOUT);
    wait_until("Ready=True", Duration::from_secs(10), POLL, || {
        (condition_status(&agent.try_status()?, "Ready") == "True").then_some(())
    });
    agent.kill9();
    drop(agent);

    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let s = wait_until(
        "Ready=True after the restart",
        CONVERGE_TIMEOUT,
        POLL,
        || {
            let s = agent.try_status()?;
            (condition_status(&s, "Ready") == "True").then_some(s)
        },
    );
    // Leave room for a wrong recreate to happen before comparing.
    std::thread::sleep(Duration::from_secs(2));
    let after = node.owned();
    assert_eq!(
        describe(&after),
        describe(&before),
        "restarted agent changed containers"
    );
    for (comp, c) in &before {
        assert_eq!(after[comp].started_at, c.started_at, "{comp} was restarted");
        let sc = component(&s, comp).unwrap_or_else(|| panic!("no {comp} in /status: {s:#}"));
        assert_eq!(
            sc["containerId"].as_str(),
            Some(c.id.as_str()),
            "adopted id of {comp}"
        );
    }
}
