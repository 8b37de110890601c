//! Safe rollouts (issue 18) on the real engine: a change to a broken image
//! (it runs, its health check never passes) is rolled back within the readiness timeout,
//! the old container serving throughout (beside the new one, or stopped and
//! started again where a host port forbids two), `RolloutFailed` shows, the
//! change is not retried, and a fixed change then rolls forward.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// The readiness timeout the specs give a new container.
const READINESS: Duration = Duration::from_secs(4);

/// The server every revision runs: httpd on 8080 inside the container.
const SERVE: &str = "echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp";
/// Ready when the server answers, asked with the image's own wget.
const CHECK: &str = "wget -q -O /dev/null http://127.0.0.1:8080/index.html";

/// One component `svc` on `image` serving [`SERVE`], checked by [`CHECK`],
/// with `extra` lines (ports) under it.
fn spec(node: &Node, image: &str, rev: &str, extra: &str) -> String {
    let header = node.yaml(&[]).replace("  containers: []\n", "");
    let header = header.replacen(
        "  reconcile:\n",
        &format!(
            "  reconcile:\n    rollout:\n      readinessTimeout: {}s\n      minReady: 1s\n",
            READINESS.as_secs()
        ),
        1,
    );
    format!(
        "{header}  containers:\n    - name: svc\n      image: {image}\n      command: [sh, -c, {SERVE:?}]\n      env:\n        REV: \"{rev}\"\n      healthCheck:\n        command: [sh, -c, {CHECK:?}]\n        interval: 1s\n        timeout: 1s\n        retries: 1\n{extra}"
    )
}

/// A broken image: the test image with an HTTP proxy that is not there, so
/// its server runs but its health check never reaches it (never ready).
/// Removed when dropped.
struct BrokenImage(String);

impl BrokenImage {
    fn build(test: &str) -> BrokenImage {
        let tag = format!("garage-test/rollout-broken-{}-{test}:1", run_id());
        let dir = tempfile::tempdir().expect("tempdir");
        let dockerfile = format!(
            "FROM {IMAGE}\nLABEL {RUN_LABEL}={}\nENV http_proxy=http://127.0.0.1:9\n",
            run_id()
        );
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        docker_ok(&["build", "-q", "-t", &tag, dir.path().to_str().unwrap()]);
        BrokenImage(tag)
    }
}

impl Drop for BrokenImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// What the server in container `id` answers, asked inside it.
fn answers_inside(id: &str) -> bool {
    let out = docker(&[
        "exec",
        id,
        "wget",
        "-q",
        "-O",
        "-",
        "http://127.0.0.1:8080/index.html",
    ]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok"
}

fn svc_containers(node: &Node) -> Vec<Container> {
    containers_with_labels(&[(NODE_LABEL, &node.name), (COMPONENT_LABEL, "svc")])
}

fn degraded(status: &Value) -> (String, String) {
    let c = condition(status, "Degraded").expect("Degraded");
    (
        c["reason"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Waits for the rollback: one `svc` container again, `Degraded` saying
/// `RolloutFailed`; checks on every look that `serving` holds.
fn wait_rolled_back(node: &Node, agent: &Agent, serving: impl Fn() -> bool) -> Value {
    let started = Instant::now();
    let status = wait_until("the rollout rolled back", READINESS * 4, POLL, || {
        assert!(
            serving(),
            "the old container stopped serving {:?} into the rollout",
            started.elapsed()
        );
        let status = agent.try_status()?;
        (degraded(&status).0 == "RolloutFailed" && svc_containers(node).len() == 1)
            .then_some(status)
    });
    status
}

#[test]
fn a_broken_image_rolls_back_beside_the_old_container_and_a_fix_rolls_forward() {
    let node = Node::new("rollout-surge");
    let broken = BrokenImage::build("surge");
    node.write_atomic(&spec(&node, IMAGE, "1", ""));
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let old = wait_until("svc healthy", CONVERGE_TIMEOUT, POLL, || {
        let c = svc_containers(&node).pop()?;
        (c.running() && c.health == "healthy").then_some(c.id)
    });

    // Revision 2's image never passes its health check; the old server
    // answers on every look until the rollback.
    node.write_atomic(&spec(&node, &broken.0, "2", ""));
    let status = wait_rolled_back(&node, &agent, || answers_inside(&old));
    let (_, message) = degraded(&status);
    let generation = status["observedGeneration"].as_str().unwrap_or_default();
    assert!(
        message.contains(generation),
        "names the revision {generation}: {message}"
    );
    assert_eq!(
        condition_status(&status, "Ready"),
        "True",
        "the old container serves: {status}"
    );
    assert_eq!(svc_containers(&node)[0].id, old);

    // Not retried while the spec stays.
    std::thread::sleep(READINESS / 2);
    let left = svc_containers(&node);
    assert_eq!(left.len(), 1, "retried: {left:?}");
    assert_eq!(left[0].id, old);

    // A fixed image rolls forward.
    node.write_atomic(&spec(&node, IMAGE, "3", ""));
    let status = wait_until("revision 3 applied", CONVERGE_TIMEOUT, POLL, || {
        let status = agent.try_status()?;
        let left = svc_containers(&node);
        let forward = left.len() == 1 && left[0].id != old && left[0].running();
        (forward && status["lastAppliedGeneration"] == status["observedGeneration"])
            .then_some(status)
    });
    assert_eq!(degraded(&status).0, "AsExpected", "{status}");
    assert!(answers_inside(&svc_containers(&node)[0].id));
}

#[test]
fn with_a_host_port_the_old_container_stops_first_and_comes_back() {
    let node = Node::new("rollout-port");
    let broken = BrokenImage::build("port");
    let port = free_port();
    let ports = format!("      ports:\n        - containerPort: 8080\n          hostPort: {port}\n          hostIP: 127.0.0.1\n");
    node.write_atomic(&spec(&node, IMAGE, "1", &ports));
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    let url = format!("http://127.0.0.1:{port}");
    let old = wait_until("svc healthy and answering", CONVERGE_TIMEOUT, POLL, || {
        let c = svc_containers(&node).pop()?;
        let answers = matches!(http_get(&url, "/index.html"), Ok((200, _)));
        (c.running() && c.health == "healthy" && answers).then_some(c.id)
    });

    node.write_atomic(&spec(&node, &broken.0, "2", &ports));
    // The port allows one container: the old one is stopped while the new
    // one tries, so only "at most one runs" holds during the rollout.
    let one_at_most = || svc_containers(&node).iter().filter(|c| c.running()).count() <= 1;
    wait_rolled_back(&node, &agent, one_at_most);
    let back = wait_until(
        "the old container answering again",
        CONVERGE_TIMEOUT,
        POLL,
        || {
            let c = svc_containers(&node).pop()?;
            (c.running() && matches!(http_get(&url, "/index.html"), Ok((200, _)))).then_some(c.id)
        },
    );
    assert_eq!(
        back, old,
        "the old container was started again, not made anew"
    );
}
