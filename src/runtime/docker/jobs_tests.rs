//! The podman create request built from a job container, and the limits
//! verdict read next to the socket.

use std::collections::BTreeMap;

use crate::jobs::engine::JobContainer;
use crate::jobs::job::Limits;
use crate::jobs::limits::Enforcement;

use super::{create_body, verdict};

#[test]
fn create_request_carries_memory_cpu_shm_and_pids_limits() {
    let spec = JobContainer {
        image: "garage-test/busybox:1".into(),
        network: "garage-job-1-net".into(),
        labels: BTreeMap::from([("ai.garage.job-run".into(), "1".into())]),
        limits: Limits {
            memory_bytes: Some(512 << 20),
            nano_cpus: Some(1_500_000_000),
            shm_size_bytes: Some(32 << 20),
            pids: Some(64),
        },
        ..Default::default()
    };
    let host = create_body(&spec).host_config.expect("a host config");
    assert_eq!(host.memory, Some(512 << 20));
    assert_eq!(host.nano_cpus, Some(1_500_000_000));
    assert_eq!(host.shm_size, Some(32 << 20));
    assert_eq!(host.pids_limit, Some(64));
    assert_eq!(host.network_mode.as_deref(), Some("garage-job-1-net"));
}

#[test]
fn unset_limits_stay_unset_in_the_request() {
    let host = create_body(&JobContainer::default())
        .host_config
        .expect("a host config");
    assert_eq!(
        (host.memory, host.nano_cpus, host.shm_size, host.pids_limit),
        (None, None, None, None)
    );
}

#[tokio::test]
async fn verdict_file_next_to_the_socket_decides_enforcement() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("limits");
    let missing = verdict(&file).await;
    assert!(
        matches!(&missing, Enforcement::NotEnforced(why) if why.contains("docker/build.sh podman")),
        "{missing:?}"
    );
    std::fs::write(&file, "not enforced: cgroup v1 read-only on this host\n").expect("write");
    assert_eq!(
        verdict(&file).await.describe(),
        "not enforced: cgroup v1 read-only on this host"
    );
    std::fs::write(&file, "enforced: cgroup v2, podman manages job cgroups\n").expect("write");
    assert!(verdict(&file).await.is_enforced());
}
