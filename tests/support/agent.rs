//! The `garage` binary: one-shot commands and the agent as a child process.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::*;

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
        Agent::spawn(node, env, None)
    }

    /// `garage run` with other arguments than `-f node.yaml` (a spec from
    /// git: `--git URL --node NAME …`); it serves at the node's address.
    pub fn start_with_args(node: &Node, args: &[&str]) -> Agent {
        Agent::spawn_args(node, args, &[], None)
    }

    /// The agent under `ulimit -n nofile`: a shell lowers the limit, then
    /// execs it.
    pub fn start_with_file_limit(node: &Node, nofile: u32) -> Agent {
        Agent::spawn(node, &[], Some(nofile))
    }

    fn spawn(node: &Node, env: &[(&str, &str)], nofile: Option<u32>) -> Agent {
        Agent::spawn_args(node, &["-f", node.path.to_str().unwrap()], env, nofile)
    }

    fn spawn_args(node: &Node, args: &[&str], env: &[(&str, &str)], nofile: Option<u32>) -> Agent {
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = node
            .dir
            .path()
            .join(format!("agent-{}.log", N.fetch_add(1, Ordering::SeqCst)));
        let file = fs::File::create(&log).expect("create agent log");
        let mut cmd = match nofile {
            None => Command::new(garage_bin()),
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(garage_bin());
                shell
            }
        };
        cmd.arg("run")
            .args(args)
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
