//! Fixtures shared by the end-to-end tests (`mod support;` in each
//! `tests/e2e_*.rs`): the real Docker engine through the `docker` CLI, a
//! `node.yaml` in a temporary folder, the `garage` binary as a child
//! process, a plain HTTP client for `/status` and `/metrics`, and a Docker
//! socket proxy that can cut the agent's connections.
//!
//! Isolation: every node is named `t<run id>-<test>` and carries the label
//! `garage.test/run=<run id>`; cleanup only ever removes containers that
//! carry both that run label and the test's node label, so tests running in
//! parallel (and other people's containers on the same engine) are safe.
//! Every wait is bounded.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The tiny offline image every test container uses (`docker/test-image.sh`).
pub const IMAGE: &str = "garage-test/busybox:1";
/// Label put in `metadata.labels` of every test node.
pub const RUN_LABEL: &str = "garage.test/run";
pub const MANAGED_BY: &str = "ai.garage.managed-by";
pub const NODE_LABEL: &str = "ai.garage.node";
pub const COMPONENT_LABEL: &str = "ai.garage.component";
pub const HASH_LABEL: &str = "ai.garage.config-hash";

/// Upper bound for one CLI call (`garage apply --wait` included).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(90);
/// Upper bound for the agent to converge a small node from nothing.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
pub const POLL: Duration = Duration::from_millis(50);

// ------------------------------------------------------------------ run id

/// Unique per test process: lower-case, short, valid in container names.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let mixed = (nanos as u64) ^ ((std::process::id() as u64) << 40);
        format!("{:08x}", (mixed ^ (mixed >> 32)) as u32)
    })
}

// ------------------------------------------------------------ bounded waits

/// Polls `check` every `poll` until it returns `Some`, or panics after
/// `timeout` naming `what`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    match try_wait_until(timeout, poll, &mut check) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Like [`wait_until`] but returns `None` on timeout.
pub fn try_wait_until<T>(
    timeout: Duration,
    poll: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(poll);
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let status = match try_wait_until(timeout, Duration::from_millis(20), || {
        child.try_wait().expect("try_wait")
    }) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{desc} did not finish within {timeout:?}");
        }
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

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

// --------------------------------------------------------------- node.yaml

/// One entry of `spec.containers`.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub restart_policy: Option<String>,
}

impl Component {
    /// A container that sleeps for an hour.
    pub fn sleeper(name: &str) -> Component {
        Component::with_command(name, &["sleep", "3600"])
    }
    pub fn with_command(name: &str, command: &[&str]) -> Component {
        Component {
            name: name.to_string(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            restart_policy: None,
        }
    }
    pub fn env(mut self, k: &str, v: &str) -> Component {
        self.env.insert(k.to_string(), v.to_string());
        self
    }
    pub fn restart(mut self, policy: &str) -> Component {
        self.restart_policy = Some(policy.to_string());
        self
    }
}

/// Backoff written into `spec.reconcile.backoff` (small, so tests are fast).
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: String,
    pub max: String,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: "1s".into(),
            max: "8s".into(),
        }
    }
}

/// A test node: unique name, `node.yaml` in a temporary folder, a metrics
/// port of its own. Dropping it removes the node's containers (by run label
/// and node label), also when the test failed.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub metrics: SocketAddr,
    pub backoff: Backoff,
    revision: AtomicUsize,
}

impl Node {
    /// `test` becomes part of the node name: lower-case letters, digits, `-`.
    pub fn new(test: &str) -> Node {
        ensure_engine_and_image();
        let name = format!("t{}-{test}", run_id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("garage-{name}-"))
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("node.yaml");
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let node = Node {
            name,
            dir,
            path,
            metrics,
            backoff: Backoff::default(),
            revision: AtomicUsize::new(0),
        };
        node.cleanup();
        node
    }

    pub fn with_backoff(mut self, initial: &str, max: &str) -> Node {
        self.backoff = Backoff {
            initial: initial.into(),
            max: max.into(),
        };
        self
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.metrics)
    }

    /// The full `node.yaml` text for these components.
    pub fn yaml(&self, components: &[Component]) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "apiVersion: garage.ai/v1alpha1");
        let _ = writeln!(y, "kind: Node");
        let _ = writeln!(y, "metadata:");
        let _ = writeln!(y, "  name: {}", self.name);
        let _ = writeln!(y, "  labels:");
        let _ = writeln!(y, "    {RUN_LABEL}: \"{}\"", run_id());
        let _ = writeln!(y, "spec:");
        let _ = writeln!(y, "  metrics:");
        let _ = writeln!(y, "    listen: {}", self.metrics);
        let _ = writeln!(y, "  reconcile:");
        let _ = writeln!(y, "    backoff:");
        let _ = writeln!(y, "      initial: {}", self.backoff.initial);
        let _ = writeln!(y, "      max: {}", self.backoff.max);
        if components.is_empty() {
            let _ = writeln!(y, "  containers: []");
        } else {
            let _ = writeln!(y, "  containers:");
        }
        for c in components {
            let _ = writeln!(y, "    - name: {}", c.name);
            let _ = writeln!(y, "      image: {IMAGE}");
            let cmd: Vec<String> = c.command.iter().map(|s| yaml_str(s)).collect();
            let _ = writeln!(y, "      command: [{}]", cmd.join(", "));
            if !c.env.is_empty() {
                let _ = writeln!(y, "      env:");
                for (k, v) in &c.env {
                    let _ = writeln!(y, "        {k}: {}", yaml_str(v));
                }
            }
            if let Some(p) = &c.restart_policy {
                let _ = writeln!(y, "      restartPolicy: {p}");
            }
        }
        y
    }

    /// Writes the spec the way most tests want it: atomically.
    pub fn write(&self, components: &[Component]) {
        self.write_atomic(&self.yaml(components));
    }

    /// Editor-style save: write a temporary file in the same folder, then
    /// rename it over `node.yaml`.
    pub fn write_atomic(&self, text: &str) {
        let n = self.revision.fetch_add(1, Ordering::SeqCst);
        let tmp = self.dir.path().join(format!(".node.yaml.{n}.tmp"));
        fs::write(&tmp, text).expect("write temporary spec");
        fs::rename(&tmp, &self.path).expect("rename spec into place");
    }

    /// In-place save: open the existing file, truncate, write (two syscalls
    /// with a short pause between, as slow editors and `>` redirects do).
    pub fn write_in_place(&self, text: &str) {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .expect("open spec for in-place write");
        f.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(20));
        let (head, tail) = text.split_at(text.len() / 2);
        f.write_all(head.as_bytes()).expect("write first half");
        f.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(20));
        f.write_all(tail.as_bytes()).expect("write second half");
        f.sync_all().expect("sync");
    }

    /// Symlink swap (ConfigMap / GitOps style): the new text goes into a fresh
    /// folder `rev-N/node.yaml`, then a new symlink is renamed over
    /// `node.yaml`, so `node.yaml` always resolves to a complete file.
    pub fn write_symlink_swap(&self, text: &str) {
        let n = self.revision.fetch_add(1, Ordering::SeqCst);
        let rev = self.dir.path().join(format!("rev-{n}"));
        fs::create_dir_all(&rev).expect("create revision folder");
        fs::write(rev.join("node.yaml"), text).expect("write revision");
        let link = self.dir.path().join(format!(".node.yaml.{n}.link"));
        std::os::unix::fs::symlink(format!("rev-{n}/node.yaml"), &link).expect("symlink");
        fs::rename(&link, &self.path).expect("rename symlink over spec");
    }

    /// The line number (1-based) of the first line of node.yaml containing
    /// `needle`.
    pub fn line_of(&self, text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in spec"))
            + 1
    }

    pub fn owned(&self) -> BTreeMap<String, Container> {
        owned(&self.name)
    }

    pub fn wait_running(
        &self,
        components: &[&str],
        timeout: Duration,
    ) -> BTreeMap<String, Container> {
        wait_running(&self.name, components, timeout)
    }

    /// Removes this node's containers (run label + node label only).
    pub fn cleanup(&self) {
        remove_labelled(&[(NODE_LABEL, &self.name)]);
    }

    /// `garage ARGS...` with a bounded run time.
    pub fn garage(&self, args: &[&str]) -> Output {
        garage(args)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- containers of {} at failure: {}",
                self.name,
                describe(&self.owned())
            );
            if let Ok(text) = fs::read_to_string(&self.path) {
                eprintln!("--- {} at failure:\n{text}", self.path.display());
            }
        }
        self.cleanup();
    }
}

/// Quotes a YAML scalar when it is not a plain word.
pub fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.'))
        && s.parse::<f64>().is_err()
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("string to JSON")
    }
}

// ------------------------------------------------------------------- garage

pub fn garage_bin() -> &'static str {
    env!("CARGO_BIN_EXE_garage")
}

/// Runs `garage ARGS...` to completion (bounded by [`CLI_TIMEOUT`]).
pub fn garage(args: &[&str]) -> Output {
    output_with_timeout(Command::new(garage_bin()).args(args), CLI_TIMEOUT)
}

/// Formats a CLI result for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `garage apply -f node.yaml --wait --timeout 60s`, asserting success.
pub fn apply_ok(node: &Node) -> Output {
    let path = node.path.to_str().unwrap();
    let out = garage(&["apply", "-f", path, "--wait", "--timeout", "60s"]);
    assert!(out.status.success(), "garage apply failed: {}", show(&out));
    out
}

/// The agent (`garage run -f node.yaml`) as a child process; killed when
/// dropped, and its log printed when the test is failing.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    pub log: PathBuf,
    pub url: String,
}

impl Agent {
    pub fn start(node: &Node) -> Agent {
        Agent::start_with_env(node, &[])
    }

    pub fn start_with_env(node: &Node, env: &[(&str, &str)]) -> Agent {
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = node
            .dir
            .path()
            .join(format!("agent-{}.log", N.fetch_add(1, Ordering::SeqCst)));
        let file = fs::File::create(&log).expect("create agent log");
        let mut cmd = Command::new(garage_bin());
        cmd.args(["run", "-f", node.path.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("GARAGE_TEST_LOG").unwrap_or_else(|_| "info,garage=debug".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log handle"))
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn garage run");
        Agent {
            child,
            log,
            url: node.url(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/status` answers (panics early if the agent exited).
    pub fn wait_serving(&mut self) {
        let mut last_err = String::new();
        let ok = try_wait_until(CONVERGE_TIMEOUT, Duration::from_millis(100), || {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("agent exited early with {s}; log:\n{}", self.log_text());
            }
            match http_get(&self.url, "/status") {
                Ok((200, _)) => Some(()),
                Ok((code, body)) => {
                    last_err = format!("HTTP {code}: {body}");
                    None
                }
                Err(e) => {
                    last_err = e;
                    None
                }
            }
        });
        assert!(
            ok.is_some(),
            "agent did not serve {}/status within {CONVERGE_TIMEOUT:?}: {last_err}",
            self.url
        );
    }

    /// `GET /status` parsed as JSON.
    pub fn status(&self) -> Value {
        let (code, body) =
            http_get(&self.url, "/status").unwrap_or_else(|e| panic!("GET /status: {e}"));
        assert_eq!(code, 200, "GET /status answered {code}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
    }

    /// Like [`Agent::status`] but `None` on any error (for polling).
    pub fn try_status(&self) -> Option<Value> {
        match http_get(&self.url, "/status") {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// `GET /metrics` text.
    pub fn metrics(&self) -> String {
        let (code, body) =
            http_get(&self.url, "/metrics").unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        assert_eq!(code, 200, "GET /metrics answered {code}: {body}");
        body
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on agent")
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...) with kill(1).
    pub fn signal(&self, sig: &str) {
        let out = output_with_timeout(
            Command::new("kill").args([format!("-{sig}"), self.pid().to_string()]),
            Duration::from_secs(5),
        );
        assert!(out.status.success(), "kill -{sig} failed: {}", show(&out));
    }

    /// Waits (bounded) for the agent to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let r = try_wait_until(timeout, POLL, || self.child.try_wait().expect("try_wait"));
        r.unwrap_or_else(|| {
            panic!(
                "agent did not exit within {timeout:?}; log:\n{}",
                self.log_text()
            )
        })
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- agent log {} ---\n{}\n--- end of agent log ---",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

// --------------------------------------------------------------------- http

/// Minimal HTTP/1.1 GET (Connection: close); returns (status code, body).
/// Handles `Content-Length`, chunked and read-to-close bodies.
pub fn http_get(base: &str, path: &str) -> Result<(u16, String), String> {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.set_write_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok((code, String::from_utf8_lossy(&body).to_string()))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line")?;
        let size_txt = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap().trim(), 16)
            .map_err(|e| format!("chunk size {size_txt:?}: {e}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

// ------------------------------------------------------------ status, metrics

/// The entry of `components` named `name` in a `/status` document.
pub fn component<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["components"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// The condition of type `ty` in a `/status` document.
pub fn condition<'a>(status: &'a Value, ty: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// `status` of condition `ty` ("True"/"False"/"Unknown"), or "" if absent.
pub fn condition_status(status: &Value, ty: &str) -> String {
    condition(status, ty)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The value of one sample `name{labels...}` in Prometheus text; `labels`
/// must all match (others may be present). `None` when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_samples(text, name)
        .into_iter()
        .find(|(ls, _)| {
            labels
                .iter()
                .all(|(k, v)| ls.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
}

/// Sum of every sample of `name` (any labels); `None` when there is none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let s = metric_samples(text, name);
    (!s.is_empty()).then(|| s.iter().map(|(_, v)| v).sum())
}

/// Every sample of exactly `name`, with its labels.
pub fn metric_samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            let Some(end) = r.find('}') else { continue };
            (parse_labels(&r[..end]), r[end + 1..].trim())
        } else if rest.starts_with(' ') {
            (BTreeMap::new(), rest.trim())
        } else {
            continue; // another metric sharing the prefix
        };
        let value = value.split_whitespace().next().unwrap_or_default();
        if let Ok(v) = value.parse::<f64>() {
            found.push((labels, v));
        }
    }
    found
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let Some(after) = after.strip_prefix('"') else {
            break;
        };
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        m.insert(key, val);
        rest = &after[end..];
    }
    m
}

/// True when `msg` holds `FILE:LINE:COL` for this file name and line
/// (any column), e.g. `/tmp/x/node.yaml:12:7`.
pub fn has_location(msg: &str, file_name: &str, line: usize) -> bool {
    let needle = format!("{file_name}:{line}:");
    msg.match_indices(&needle).any(|(i, _)| {
        msg[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

// ---------------------------------------------------------- socket proxy

/// A Unix-socket proxy in front of the Docker engine. Point the agent at it
/// with `DOCKER_HOST=unix://<path>`; [`DockerProxy::cut`] drops every live
/// connection (the agent's event stream included) while still accepting new
/// ones, which is what an engine restart looks like from the client side.
#[derive(Debug)]
pub struct DockerProxy {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accepted: Arc<AtomicUsize>,
}

impl DockerProxy {
    pub fn start() -> DockerProxy {
        let upstream = upstream_socket();
        let dir = tempfile::Builder::new()
            .prefix("garage-proxy-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("docker.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let listener = {
            let _guard = rt.enter();
            tokio::net::UnixListener::bind(&path).expect("bind proxy socket")
        };
        let (live2, accepted2) = (live.clone(), accepted.clone());
        rt.spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    continue;
                };
                accepted2.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::UnixStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                let mut live = live2.lock().unwrap();
                live.retain(|h| !h.is_finished());
                live.push(task.abort_handle());
            }
        });
        DockerProxy {
            path,
            _dir: dir,
            rt: Some(rt),
            live,
            accepted,
        }
    }

    /// `unix://<path>`, for DOCKER_HOST.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Drops every live connection; returns how many were cut.
    pub fn cut(&self) -> usize {
        let mut live = self.live.lock().unwrap();
        let n = live.iter().filter(|h| !h.is_finished()).count();
        for h in live.drain(..) {
            h.abort();
        }
        n
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.cut();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The engine's socket: DOCKER_HOST when it is `unix://`, else the default.
fn upstream_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => PathBuf::from(h.trim_start_matches("unix://")),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

/// The full id of the *running* container of `component`, with one
/// `docker ps` call (cheap enough for tight latency polling).
pub fn running_id(node: &str, component: &str) -> Option<String> {
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
        .next()
        .map(str::to_string)
}

/// Waits until `component` runs in a container other than `old_id`;
/// returns the new id and the time it took from `since`.
pub fn wait_replaced(
    node: &str,
    component: &str,
    old_id: &str,
    since: Instant,
    timeout: Duration,
) -> (String, Duration) {
    let id = wait_until(
        &format!("a new running container for {component} of {node}"),
        timeout,
        Duration::from_millis(20),
        || running_id(node, component).filter(|id| id != old_id),
    );
    (id, since.elapsed())
}
