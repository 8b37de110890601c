//! Debian's HAProxy in front of coordinator replicas, as an operator runs
//! it: round robin, `/healthz` checked every 200 ms, a request whose
//! connection to a dead replica is refused sent to another one
//! (`option redispatch`). Started in the foreground on a free loopback port
//! with a configuration of the test's own; each answer names the replica
//! that gave it (`X-Served-By`); killed on drop. Skips (says
//! why) where `haproxy` is missing, unless `GARAGE_REQUIRE_HAPROXY=1`,
//! which `.ci/run` sets.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// How often HAProxy asks each replica's `/healthz`.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(200);
/// Failed checks before a replica is taken out (and passed ones to come back).
pub const CHECKS_TO_CHANGE: u32 = 2;

/// An `haproxy` process balancing over replicas on loopback ports.
pub struct LoadBalancer {
    child: Child,
    pub base: String,
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration for a frontend on `port` over `replicas`.
fn config(port: u16, replicas: &[u16]) -> String {
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  server replica{i} 127.0.0.1:{p} check\n"))
        .collect();
    let inter = CHECK_INTERVAL.as_millis();
    format!(
        "global\n  maxconn 4096\n\n\
         defaults\n  mode http\n  timeout connect 500ms\n  timeout client 60s\n  \
         timeout server 60s\n  retries 3\n  option redispatch 1\n\n\
         frontend coordinators\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\n\
         backend replicas\n  balance roundrobin\n  option httpchk GET /healthz\n  \
         http-check expect status 200\n  \
         http-response set-header X-Served-By %[srv_name]\n  \
         default-server inter {inter}ms fall {CHECKS_TO_CHANGE} rise {CHECKS_TO_CHANGE}\n{servers}"
    )
}

impl LoadBalancer {
    /// Starts HAProxy over `replicas` with its configuration and log in
    /// `dir`, and waits (10 s at most) until it answers `/healthz` through
    /// a replica. `None` when `haproxy` is not installed (a failure when
    /// `GARAGE_REQUIRE_HAPROXY=1`).
    pub async fn start(dir: &Path, replicas: &[u16]) -> Option<LoadBalancer> {
        if Command::new("haproxy").arg("-v").output().is_err() {
            assert!(
                std::env::var_os("GARAGE_REQUIRE_HAPROXY").is_none(),
                "GARAGE_REQUIRE_HAPROXY is set but haproxy is not installed (apt-get install haproxy)"
            );
            eprintln!("skipping: haproxy is not installed (apt-get install haproxy)");
            return None;
        }
        let port = free_port();
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config(port, replicas)).expect("write haproxy.cfg");
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy log");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let lb = LoadBalancer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", lb.base)).await {
                if r.status().is_success() {
                    return Some(lb);
                }
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not answer within 10 s; see {}",
                dir.join("haproxy.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
