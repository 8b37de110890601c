//! The podman component and container jobs: a node with only the podman
//! component (`PodmanNode`), `garage job run` against it, and what is left
//! inside the nested podman afterwards. Used by `tests/e2e_jobs.rs`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{docker, garage_bin, IMAGE};

pub const PODMAN_IMAGE: &str = "garage/podman:0.1";

/// Trimmed stdout, whatever the exit status.
pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// True when the engine and both images are here; otherwise says why and
/// (unless CI requires these tests) lets the test pass as skipped.
pub fn podman_prerequisites() -> bool {
    let missing = if !Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        Some("no Docker engine answers".to_owned())
    } else {
        [PODMAN_IMAGE, IMAGE]
            .into_iter()
            .find(|image| !docker(&["image", "inspect", image]).status.success())
            .map(|image| {
                format!("image {image} is missing (docker/build.sh, docker/test-image.sh)")
            })
    };
    match missing {
        None => true,
        Some(why) => {
            assert!(
                std::env::var_os("GARAGE_REQUIRE_E2E").is_none(),
                "GARAGE_REQUIRE_E2E is set but {why}"
            );
            eprintln!("skipping: {why}");
            false
        }
    }
}

/// A node with only the podman component; removed on drop.
pub struct PodmanNode {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub spec: PathBuf,
    agent: Option<Child>,
}

impl PodmanNode {
    pub fn new(test: &str) -> PodmanNode {
        let name = format!("j{}-{test}", super::run_id());
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = dir.path().join("node.yaml");
        let port = super::free_port();
        std::fs::write(
            &spec,
            format!(
                "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    {label}: \"{run}\"\nspec:\n  gpu:\n    mode: none\n  metrics:\n    listen: 127.0.0.1:{port}\n  reconcile:\n    backoff:\n      initial: 1s\n      max: 5s\n  podman:\n    socketVolume: {name}-sock\n    cacheVolume: {name}-cache\n    jobs:\n      maxConcurrent: 2\n      hostImages: [\"{IMAGE}\"]\n",
                label = super::RUN_LABEL,
                run = super::run_id()
            ),
        )
        .expect("write node.yaml");
        PodmanNode {
            name,
            dir,
            spec,
            agent: None,
        }
    }

    pub fn podman_container(&self) -> String {
        format!("garage-{}-podman", self.name)
    }

    /// `garage apply --wait`: the podman component runs and is Ready.
    pub fn apply(&self) -> Duration {
        let started = Instant::now();
        let out = super::output_with_timeout(
            Command::new(garage_bin()).args([
                "apply",
                "-f",
                self.spec.to_str().expect("utf8"),
                "--wait",
                "--timeout",
                "80s",
            ]),
            super::CLI_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "apply failed: {}\n{}",
            text(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    }

    pub fn socket(&self) -> PathBuf {
        let out = docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Mountpoint}}",
            &format!("{}-sock", self.name),
        ]);
        assert!(out.status.success(), "socket volume exists");
        PathBuf::from(text(&out)).join("podman.sock")
    }

    pub fn write_job(&self, file: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, body).expect("write job");
        path
    }

    pub fn job_command(&self, job: &Path) -> Command {
        let mut cmd = Command::new(garage_bin());
        cmd.args([
            "job",
            "run",
            job.to_str().expect("utf8"),
            "--node-file",
            self.spec.to_str().expect("utf8"),
        ]);
        cmd
    }

    /// Runs a job to its end: (exit success, the JSON report or Null, stderr).
    pub fn run_job(&self, job: &Path) -> (bool, Value, String) {
        let out = super::output_with_timeout(&mut self.job_command(job), JOB_LIMIT);
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.success(),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `podman <args>` inside the node's podman container.
    pub fn podman(&self, args: &[&str]) -> String {
        let container = self.podman_container();
        let mut all = vec!["exec", container.as_str(), "podman"];
        all.extend_from_slice(args);
        text(&docker(&all))
    }

    /// Names of every job container, network and volume inside podman.
    pub fn job_leftovers(&self) -> Vec<String> {
        let filter = "label=ai.garage.job-run";
        let mut names = Vec::new();
        for args in [
            vec!["ps", "-a", "--filter", filter, "--format", "{{.Names}}"],
            vec!["network", "ls", "--filter", filter, "--format", "{{.Name}}"],
            vec!["volume", "ls", "--filter", filter, "--format", "{{.Name}}"],
        ] {
            names.extend(
                self.podman(&args)
                    .lines()
                    .map(str::to_owned)
                    .filter(|l| !l.is_empty()),
            );
        }
        names
    }

    pub fn start_agent(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("agent.log")).expect("log file");
        let child = Command::new(garage_bin())
            .args(["run", "-f", self.spec.to_str().expect("utf8")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        self.agent = Some(child);
    }
}

impl Drop for PodmanNode {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        let _ = Command::new(garage_bin())
            .args(["down", "-f", self.spec.to_str().unwrap_or_default()])
            .output();
        let _ = docker(&["rm", "-f", &self.podman_container()]);
        let _ = docker(&[
            "volume",
            "rm",
            "-f",
            &format!("{}-sock", self.name),
            &format!("{}-cache", self.name),
        ]);
    }
}

/// `GET /_ping` on a unix socket; the body.
pub fn ping(socket: &Path) -> Option<String> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_owned())
}

pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    super::wait_until(what, limit, Duration::from_millis(100), || {
        check().then_some(())
    });
}

/// Upper bound for one `garage job run` of these tests' short jobs.
pub const JOB_LIMIT: Duration = Duration::from_secs(120);

pub const JOB_HEAD: &str = "version: \"0.1\"\ntype: container\n";
