//! The engine's create requests built from our container specs: the agent's
//! containers ([`ContainerSpec`] with its labels) and a job's containers
//! inside podman ([`JobContainer`]).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, DeviceMapping as BollardDevice, DeviceRequest, EndpointSettings,
    HealthConfig, HostConfig, Mount as BollardMount, MountType, NetworkingConfig,
    PortBinding as BollardPort, RestartPolicy as BollardRestart, RestartPolicyNameEnum,
};

use crate::jobs::engine::JobContainer;
use crate::runtime::{ContainerSpec, GpuRequest, MountSource};

const SYSTEMPATHS_UNCONFINED: &str = "systempaths=unconfined";

/// The create request for one of the agent's containers.
pub(super) fn container_body(
    labels: &BTreeMap<String, String>,
    spec: &ContainerSpec,
) -> ContainerCreateBody {
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let mut port_bindings: HashMap<String, Option<Vec<BollardPort>>> = HashMap::new();
    for port in &spec.ports {
        port_bindings
            .entry(format!(
                "{}/{}",
                port.container_port,
                port.protocol.as_str()
            ))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(BollardPort {
                host_ip: port.host_ip.clone(),
                host_port: Some(port.host_port.to_string()),
            });
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| {
            let (typ, source) = match &m.source {
                MountSource::Volume(name) => (MountType::VOLUME, name.clone()),
                MountSource::Bind(path) => (MountType::BIND, path.clone()),
            };
            BollardMount {
                target: Some(m.target.clone()),
                source: Some(source),
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            }
        })
        .collect::<Vec<_>>();
    let gpu = |device_ids: Option<Vec<String>>, count: Option<i64>| DeviceRequest {
        driver: Some(String::new()),
        count,
        device_ids,
        capabilities: Some(vec![vec!["gpu".to_string()]]),
        options: None,
    };
    let device_requests = match &spec.gpus {
        GpuRequest::None => None,
        GpuRequest::All => Some(vec![gpu(None, Some(-1))]),
        GpuRequest::Indices(ids) => Some(vec![gpu(
            Some(ids.iter().map(u32::to_string).collect()),
            None,
        )]),
    };
    let devices = spec
        .security
        .devices
        .iter()
        .map(|d| BollardDevice {
            path_on_host: Some(d.host_path.clone()),
            path_in_container: Some(d.container_path.clone()),
            cgroup_permissions: Some(d.permissions.clone()),
        })
        .collect::<Vec<_>>();
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let healthcheck = spec.health.as_ref().map(|h| HealthConfig {
        test: Some(
            std::iter::once("CMD".to_string())
                .chain(h.test.iter().cloned())
                .collect(),
        ),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        start_interval: None,
    });
    let to_i64 = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    // `systempaths=unconfined` is a docker CLI option, not an engine one: the
    // CLI turns it into empty masked and read-only path lists, and the engine
    // rejects it in SecurityOpt ("invalid --security-opt 2").
    let unconfined_paths = spec
        .security
        .security_opt
        .iter()
        .any(|o| o == SYSTEMPATHS_UNCONFINED);
    let security_opt: Vec<String> = spec
        .security
        .security_opt
        .iter()
        .filter(|o| *o != SYSTEMPATHS_UNCONFINED)
        .cloned()
        .collect();
    let host_config = HostConfig {
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        mounts: (!mounts.is_empty()).then_some(mounts),
        privileged: Some(spec.security.privileged),
        cap_add: non_empty(&spec.security.cap_add),
        cap_drop: non_empty(&spec.security.cap_drop),
        security_opt: non_empty(&security_opt),
        masked_paths: unconfined_paths.then(Vec::new),
        readonly_paths: unconfined_paths.then(Vec::new),
        devices: (!devices.is_empty()).then_some(devices),
        device_requests,
        memory: to_i64(spec.resources.memory_bytes),
        nano_cpus: to_i64(spec.resources.nano_cpus),
        shm_size: to_i64(spec.resources.shm_size_bytes),
        // The agent is the one owner of restarts (with backoff); the engine never restarts.
        restart_policy: Some(BollardRestart {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: non_empty(&spec.entrypoint),
        cmd: non_empty(&spec.command),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        exposed_ports: {
            let ports: Vec<String> = spec
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.container_port, p.protocol.as_str()))
                .collect();
            (!ports.is_empty()).then_some(ports)
        },
        labels: Some(labels.clone().into_iter().collect()),
        healthcheck,
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The create request for one job container, on the run's own network.
pub(super) fn job_body(spec: &JobContainer) -> ContainerCreateBody {
    let to_i64 = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let mounts: Vec<BollardMount> = spec
        .volumes
        .iter()
        .map(|(name, dest, read_only)| BollardMount {
            target: Some(dest.clone()),
            source: Some(name.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(*read_only),
            ..Default::default()
        })
        .collect();
    // GPUs inside podman are CDI devices (the podman image writes the spec
    // at start when the node hands it GPUs).
    let devices = spec.gpu.then(|| {
        vec![BollardDevice {
            path_on_host: Some("nvidia.com/gpu=all".into()),
            path_in_container: Some("nvidia.com/gpu=all".into()),
            cgroup_permissions: Some("rwm".into()),
        }]
    });
    let host_config = HostConfig {
        mounts: (!mounts.is_empty()).then_some(mounts),
        memory: to_i64(spec.limits.memory_bytes),
        nano_cpus: to_i64(spec.limits.nano_cpus),
        shm_size: to_i64(spec.limits.shm_size_bytes),
        pids_limit: spec.limits.pids.map(i64::from),
        devices,
        network_mode: Some(spec.network.clone()),
        ..Default::default()
    };
    let exposed: Vec<String> = spec.expose.iter().map(|p| format!("{p}/tcp")).collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.work_dir.clone(),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                spec.network.clone(),
                EndpointSettings::default(),
            )])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::job_body;
    use crate::jobs::engine::JobContainer;
    use crate::jobs::job::Limits;

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
        let host = job_body(&spec).host_config.expect("a host config");
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.shm_size, Some(32 << 20));
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.network_mode.as_deref(), Some("garage-job-1-net"));
    }

    #[test]
    fn unset_limits_stay_unset_in_the_request() {
        let host = job_body(&JobContainer::default())
            .host_config
            .expect("a host config");
        assert_eq!(
            (host.memory, host.nano_cpus, host.shm_size, host.pids_limit),
            (None, None, None, None)
        );
    }
}
