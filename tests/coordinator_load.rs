//! The heartbeat load generator against the real `garage coordinator`
//! binary at a low rate: every registration and every signed heartbeat is
//! answered with a 2xx, and every counted request is accounted for. The
//! throughput and p99 search over the same generator is a benchmark:
//! `benches/coordinator_load.rs`, run by `benches/heartbeat_load.sh`.

mod coordinator_support;
mod load_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use load_support::generator::{
    http_client, make_nodes, register_all, run_step, Server, StepTime, Target,
};
use load_support::heartbeat_body;

const NODES: usize = 20;
const RATE: u32 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registration_and_heartbeat_is_answered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let database = format!("sqlite://{}", tmp.path().join("coordinator.db").display());
    let bin = Path::new(env!("CARGO_BIN_EXE_garage"));
    let server = Server::start(bin, tmp.path(), &database).await;
    let nodes = make_nodes(NODES);
    let http = http_client();

    let (_, failures) = register_all(&http, &server.base, &nodes).await;
    assert_eq!(failures, 0, "registrations failed");

    let body = Arc::new(heartbeat_body());
    let time = StepTime {
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs(2),
    };
    for target in [Target::Heartbeat, Target::Healthz] {
        let step = run_step(&http, &server, &nodes, &body, target, RATE, time).await;
        assert_eq!(step.offered, 80, "{target:?}: {step:?}");
        assert_eq!(step.errors, 0, "{target:?}: {step:?}");
        assert_eq!(step.answered, step.offered, "{target:?}: {step:?}");
        assert!(step.p50_ms <= step.p99_ms, "{target:?}: {step:?}");
        assert!(step.p99_ms <= step.max_ms, "{target:?}: {step:?}");
    }
}
