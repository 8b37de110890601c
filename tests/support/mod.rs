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

mod agent;
mod docker;
mod http;
mod node;
mod podman;
mod proxy;

// Each test file uses a different part of the support; like `dead_code`
// above, an unused re-export in one of them is not a defect.
#[allow(unused_imports)]
pub use {agent::*, docker::*, http::*, node::*, podman::*, proxy::*};

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
