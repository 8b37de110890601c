//! The real Docker engine through the `docker` CLI: containers by label,
//! waits for running components, cleanup by run label, free ports.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

// ------------------------------------------------------------------ docker

/// Runs the docker CLI; returns its output whatever the exit code.
pub fn docker(args: &[&str]) -> Output {
    output_with_timeout(Command::new("docker").args(args), Duration::from_secs(60))
}

/// Runs the docker CLI and returns trimmed stdout; panics on failure.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Panics with a clear message when no engine answers; builds the test
/// image when it is missing. Runs once per test process.
pub fn ensure_engine_and_image() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        if !info.status.success() {
            return Err(format!(
                "no Docker engine answers (DOCKER_HOST={:?}): {}\n\
                 start one (dockerd) or run .ci/run, which starts it",
                std::env::var("DOCKER_HOST").ok(),
                String::from_utf8_lossy(&info.stderr).trim()
            ));
        }
        if docker(&["image", "inspect", IMAGE]).status.success() {
            return Ok(());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/test-image.sh");
        eprintln!("test image {IMAGE} missing: running {}", script.display());
        let out = output_with_timeout(&mut Command::new(&script), Duration::from_secs(180));
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}); it builds {IMAGE} offline from Debian's busybox-static\n\
                 stdout:\n{}\nstderr:\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// One container as `docker inspect` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// `running`, `exited`, `created`, `restarting`, ...
    pub state: String,
    pub started_at: String,
    pub exit_code: i64,
    /// `healthy`, `unhealthy`, `starting`; empty without a health check.
    pub health: String,
    pub labels: BTreeMap<String, String>,
}

impl Container {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
    pub fn component(&self) -> Option<&str> {
        self.labels.get(COMPONENT_LABEL).map(String::as_str)
    }
}

/// Inspects the given containers; ones that vanished meanwhile are skipped.
pub fn inspect(ids: &[String]) -> Vec<Container> {
    let mut found = Vec::new();
    for id in ids {
        // One at a time: a container removed between `ps` and `inspect`
        // must not fail the whole listing.
        let out = docker(&["inspect", id]);
        if !out.status.success() {
            continue;
        }
        let v: Value = serde_json::from_slice(&out.stdout).expect("docker inspect JSON");
        for c in v.as_array().into_iter().flatten() {
            found.push(parse_inspect(c));
        }
    }
    found
}

fn parse_inspect(c: &Value) -> Container {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let labels = c["Config"]["Labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
        .unwrap_or_default();
    Container {
        id: s(&c["Id"]),
        name: s(&c["Name"]).trim_start_matches('/').to_string(),
        state: s(&c["State"]["Status"]),
        started_at: s(&c["State"]["StartedAt"]),
        exit_code: c["State"]["ExitCode"].as_i64().unwrap_or(-1),
        health: s(&c["State"]["Health"]["Status"]),
        labels,
    }
}

/// Every container (running or not) carrying all of the given labels.
pub fn containers_with_labels(labels: &[(&str, &str)]) -> Vec<Container> {
    let mut args = vec!["ps".to_string(), "-aq".into(), "--no-trunc".into()];
    for (k, v) in labels {
        args.push("--filter".into());
        args.push(format!("label={k}={v}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let ids: Vec<String> = docker_ok(&argv).lines().map(str::to_string).collect();
    inspect(&ids)
}

/// The containers garage owns for `node`, by component name. Panics when
/// two containers claim one component (the agent must never leave that).
pub fn owned(node: &str) -> BTreeMap<String, Container> {
    let mut map = BTreeMap::new();
    for c in containers_with_labels(&[(MANAGED_BY, "garage"), (NODE_LABEL, node)]) {
        let comp = c.component().unwrap_or("<no component label>").to_string();
        if let Some(prev) = map.insert(comp.clone(), c.clone()) {
            // Transient during a recreate is possible; report it clearly.
            eprintln!(
                "note: two containers for component {comp}: {} ({}) and {} ({})",
                prev.id, prev.state, c.id, c.state
            );
            if prev.running() && !c.running() {
                map.insert(comp, prev);
            }
        }
    }
    map
}

/// Waits until exactly `components` are running for `node` (no others).
pub fn wait_running(
    node: &str,
    components: &[&str],
    timeout: Duration,
) -> BTreeMap<String, Container> {
    let want: Vec<String> = components.iter().map(|c| c.to_string()).collect();
    let mut last = BTreeMap::new();
    let r = try_wait_until(timeout, POLL, || {
        last = owned(node);
        let names: Vec<&String> = last.keys().collect();
        let all_running = last.values().all(Container::running);
        (names == want.iter().collect::<Vec<_>>() && all_running).then(|| last.clone())
    });
    r.unwrap_or_else(|| {
        panic!(
            "timed out after {timeout:?} waiting for components {components:?} of {node} \
             to run; last seen: {}",
            describe(&last)
        )
    })
}

pub fn describe(map: &BTreeMap<String, Container>) -> String {
    let mut s = String::new();
    for (k, c) in map {
        let _ = write!(
            s,
            "[{k}: {} {} exit={}] ",
            &c.id[..12.min(c.id.len())],
            c.state,
            c.exit_code
        );
    }
    if s.is_empty() {
        s.push_str("(none)");
    }
    s
}

/// Removes (force) every container with the run label and `extra` labels.
pub fn remove_labelled(extra: &[(&str, &str)]) {
    let mut labels = vec![(RUN_LABEL, run_id())];
    labels.extend_from_slice(extra);
    let mut args = vec!["ps".to_string(), "-aq".into()];
    for (k, v) in &labels {
        args.push("--filter".into());
        args.push(format!("label={k}={v}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&argv);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let mut rm = vec!["rm", "-f"];
        rm.extend(ids.iter().map(String::as_str));
        let _ = docker(&rm);
    }
}

/// A container garage must never touch: no `ai.garage.*` labels and no test
/// labels either; removed by id when dropped.
#[derive(Debug)]
pub struct ForeignContainer {
    pub id: String,
    pub name: String,
}

impl ForeignContainer {
    pub fn start(name_hint: &str) -> ForeignContainer {
        ensure_engine_and_image();
        let name = format!("t{}-foreign-{name_hint}", run_id());
        let id = docker_ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "3600"]);
        ForeignContainer { id, name }
    }
    pub fn inspect(&self) -> Option<Container> {
        inspect(std::slice::from_ref(&self.id)).pop()
    }
}

impl Drop for ForeignContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
    }
}

// -------------------------------------------------------------------- ports

/// A free TCP port on 127.0.0.1, never handed out twice in this process.
pub fn free_port() -> u16 {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(Default::default);
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if used.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free port found in 100 tries");
}

/// The full id of the *running* container of `component`, with one
/// `docker ps` call (cheap enough for tight latency polling).
pub fn running_id(node: &str, component: &str) -> Option<String> {
    running_ids(node, component).into_iter().next()
}

/// Waits until `component` runs in a container other than `old_id`;
/// returns the new id and the time from `since` until it ran. Returns once
/// `old_id` is gone too: a changed component's rollout keeps the old
/// container until the new one is ready.
pub fn wait_replaced(
    node: &str,
    component: &str,
    old_id: &str,
    since: Instant,
    timeout: Duration,
) -> (String, Duration) {
    let (id, took) = wait_until(
        &format!("a new running container for {component} of {node}"),
        timeout,
        Duration::from_millis(20),
        || {
            running_ids(node, component)
                .into_iter()
                .find(|id| id != old_id)
                .map(|id| (id, since.elapsed()))
        },
    );
    wait_until(
        &format!("the old container of {component} of {node} gone"),
        timeout,
        Duration::from_millis(20),
        || (!running_ids(node, component).iter().any(|id| id == old_id)).then_some(()),
    );
    (id, took)
}

/// The full ids of the running containers of `component`.
pub fn running_ids(node: &str, component: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label={NODE_LABEL}={node}"),
        "--filter",
        &format!("label={COMPONENT_LABEL}={component}"),
        "--filter",
        "status=running",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
