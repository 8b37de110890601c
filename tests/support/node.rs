//! A `node.yaml` in a temporary folder, written the ways editors save.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

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

    /// Keeps `node.yaml` in a folder `sub` of the node's folder (the agent's
    /// logs stay outside it), for tests that delete the spec's folder.
    pub fn in_subdir(mut self, sub: &str) -> Node {
        let dir = self.dir.path().join(sub);
        fs::create_dir_all(&dir).expect("create the spec folder");
        self.path = dir.join("node.yaml");
        self
    }

    /// The folder `node.yaml` is in.
    pub fn spec_dir(&self) -> PathBuf {
        self.path
            .parent()
            .expect("node.yaml has a folder")
            .to_path_buf()
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
        let tmp = self.spec_dir().join(format!(".node.yaml.{n}.tmp"));
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
        let rev = self.spec_dir().join(format!("rev-{n}"));
        fs::create_dir_all(&rev).expect("create revision folder");
        fs::write(rev.join("node.yaml"), text).expect("write revision");
        let link = self.spec_dir().join(format!(".node.yaml.{n}.link"));
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

    /// `docker rm -f` of `victim`'s container (ids from `before`): asserts a
    /// new one runs within 2 s and `keep` still runs the same container.
    pub fn remove_and_expect_back(
        &self,
        before: &BTreeMap<String, Container>,
        victim: &str,
        keep: &str,
        when: &str,
    ) {
        let killed = Instant::now();
        docker_ok(&["rm", "-f", &before[victim].id]);
        let (_, took) = wait_replaced(
            &self.name,
            victim,
            &before[victim].id,
            killed,
            Duration::from_secs(10),
        );
        assert!(
            took <= Duration::from_secs(2),
            "{victim} came back {took:?} after rm -f ({when}; must be within 2 s)"
        );
        let after = self.wait_running(&[victim, keep], Duration::from_secs(5));
        assert_eq!(
            after[keep].id, before[keep].id,
            "{keep} was recreated ({when})"
        );
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
