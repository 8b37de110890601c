//! A real Prometheus for the observability test (`mod prometheus_support;`):
//! Debian's `prometheus` and `promtool` found on PATH (skip or fail, as
//! `GARAGE_REQUIRE_PROMETHEUS` says), the shipped configuration made into a
//! loopback one, the server as a child process killed on drop, and its HTTP
//! API (`/api/v1/...`). Every wait is bounded.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::output_with_timeout;

/// The shipped Prometheus files.
pub fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/prometheus")
}

/// True when `prometheus` and `promtool` start; otherwise says why and lets
/// the test pass as skipped, unless `GARAGE_REQUIRE_PROMETHEUS=1` (`.ci/run`
/// installs Debian's prometheus and sets it), where a missing one fails.
pub fn available() -> bool {
    for binary in ["prometheus", "promtool"] {
        if let Err(err) = Command::new(binary)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            assert!(
                std::env::var("GARAGE_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
                "GARAGE_REQUIRE_PROMETHEUS=1 but {binary} does not start ({err}); \
                 install Debian's prometheus package"
            );
            eprintln!("skipping: {binary} is not installed ({err}); apt-get install prometheus");
            return false;
        }
    }
    true
}

/// `promtool ARGS...` in `dir`, asserting success.
pub fn promtool(dir: &Path, args: &[&str]) -> Output {
    let out = output_with_timeout(
        Command::new("promtool").args(args).current_dir(dir),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One scrape target: its address and the `node` label the targets file
/// gives it.
pub struct Target<'a> {
    pub address: String,
    pub node: &'a str,
}

/// The shipped prometheus.yml and alerts.yml copied into `dir`, every
/// interval set to 1 s, and `targets/<kind>.yml` listing `targets` per kind
/// (`agents`, `workers`, `coordinators`) in the shipped files' format.
pub fn write_config(dir: &Path, targets: &[(&str, Target<'_>)]) -> PathBuf {
    let shipped = fs::read_to_string(manifests().join("prometheus.yml")).expect("prometheus.yml");
    let intervals = regex::Regex::new(
        r"(?m)^(\s*(?:scrape_interval|scrape_timeout|evaluation_interval):\s*)\S+",
    )
    .expect("valid regex");
    let rewritten = intervals.find_iter(&shipped).count();
    assert!(
        rewritten >= 6,
        "expected the global and per-job intervals in prometheus.yml, found {rewritten}"
    );
    let config = intervals.replace_all(&shipped, "${1}1s");
    fs::create_dir_all(dir.join("targets")).expect("targets folder");
    let path = dir.join("prometheus.yml");
    fs::write(&path, config.as_ref()).expect("write prometheus.yml");
    fs::copy(manifests().join("alerts.yml"), dir.join("alerts.yml")).expect("copy alerts.yml");
    for kind in ["agents", "workers", "coordinators"] {
        let mut text = String::new();
        for (_, target) in targets.iter().filter(|(k, _)| *k == kind) {
            text.push_str(&format!(
                "- targets: [\"{}\"]\n  labels:\n    node: {}\n",
                target.address, target.node
            ));
        }
        assert!(!text.is_empty(), "no {kind} target");
        fs::write(dir.join("targets").join(format!("{kind}.yml")), text).expect("targets file");
    }
    path
}

/// `prometheus` on a loopback port with its data in `dir`; killed on drop,
/// its log printed when the test is failing.
pub struct Prometheus {
    child: Child,
    log: PathBuf,
    pub base: String,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts it on `config` and waits (30 s at most) until it is ready.
    pub async fn start(config: &Path, dir: &Path, port: u16) -> Prometheus {
        let log = dir.join("prometheus.log");
        let file = fs::File::create(&log).expect("prometheus log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("start prometheus");
        let mut prometheus = Prometheus {
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                panic!(
                    "prometheus exited with {status}:\n{}",
                    prometheus.log_text()
                );
            }
            let ready = prometheus
                .client
                .get(format!("{}/-/ready", prometheus.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 30 s:\n{}",
                prometheus.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/v1/<path>` with `query`; the `data` of a successful answer,
    /// or the error Prometheus gave.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|e| format!("GET /api/v1/{path}: {e}"))?;
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("GET /api/v1/{path}: not JSON: {e}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// An instant query's samples: `(labels, value)` of each series (a
    /// scalar answer is one sample without labels).
    pub async fn query(&self, expr: &str) -> Result<Vec<(Value, f64)>, String> {
        let data = self.api("query", &[("query", expr)]).await?;
        let value = |v: &Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok());
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s["metric"].clone(), value(&s["value"])?)))
                .collect()),
            Some("scalar") => Ok(value(&data["result"])
                .map(|v| (Value::Null, v))
                .into_iter()
                .collect()),
            other => Err(format!("unexpected result type {other:?} for {expr}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- prometheus log ---\n{}", self.log_text());
        }
    }
}
