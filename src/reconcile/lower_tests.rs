//! Defaults and lowering onto hosts with and without GPUs, and the GPU
//! requests a host cannot meet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::gpu::{GpuDevice, GpuInventory};
use crate::runtime::{
    ComponentKind, ContainerSpec, DesiredComponent, DesiredState, DeviceMapping, GpuRequest,
    HealthCheck, Mount, MountSource, PortBinding, Protocol, Resources, RestartPolicy, Security,
};
use crate::spec::limits::MAX_CONTAINERS;
use crate::spec::test_support::{containers, parse_text, EXAMPLE, HEAD};
use crate::spec::types::PowerSource;
use crate::spec::ReconcileSettings;

use super::lower::desired_state;
use super::plan::plan;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("fleet".to_owned(), "stockholm".to_owned())])
}

#[test]
fn defaults_applied() {
    let text = "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: tiny\nspec:\n  podman: {}\n  containers:\n    - name: box\n      image: busybox\n      ports: [{containerPort: 80}]\n      healthCheck: {command: [/bin/true]}\n";
    let spec = parse_text(text).expect("minimal spec is valid");
    assert_eq!(spec.metrics_listen().to_string(), "127.0.0.1:9464");
    assert_eq!(spec.reconcile(), ReconcileSettings::default());
    assert_eq!(spec.reconcile().resync, Duration::from_secs(30));
    assert_eq!(spec.coordinator_url(), None);
    assert_eq!(spec.power().source, PowerSource::Grid);
    let desired = desired_state(&spec, &GpuInventory::default()).expect("no GPU asked for");
    let podman = desired.components[0].container();
    assert_eq!(podman.image, "garage/podman:0.1");
    assert_eq!(podman.security.cap_add, strings(&["ALL"]));
    assert_eq!(
        podman.mounts[0].source,
        MountSource::Volume("garage-podman-socket".into())
    );
    let others = &desired.components[1];
    assert_eq!(others.restart, RestartPolicy::Always);
    assert_eq!(
        others.container().ports,
        vec![PortBinding {
            host_ip: None,
            host_port: 80,
            container_port: 80,
            protocol: Protocol::Tcp
        }]
    );
    let health = others.container().health.as_ref().expect("health check");
    assert_eq!(
        (health.interval, health.retries),
        (Duration::from_secs(30), 3)
    );
}

#[test]
fn auto_gpu_mode_uses_gpus_when_present() {
    let spec = parse_text(EXAMPLE).expect("valid");
    let host = GpuInventory {
        devices: vec![GpuDevice {
            index: 0,
            name: "H100".into(),
            uuid: "GPU-0".into(),
            memory_total_bytes: 1,
        }],
        unavailable_reason: None,
        persistenced_dir: None,
    };
    let desired = desired_state(&spec, &host).expect("GPUs present");
    let podman = desired.components[0].container();
    assert_eq!(podman.gpus, GpuRequest::All);
    assert_eq!(
        podman.env.get("ENABLE_GPU").map(String::as_str),
        Some("true")
    );
    assert_eq!(desired.components[1].container().gpus, GpuRequest::All);
    assert_eq!(desired.components[2].container().gpus, GpuRequest::None);
}

#[test]
fn podman_with_gpus_gets_the_persistenced_directory_when_the_host_has_it() {
    let spec = parse_text(EXAMPLE).expect("valid");
    let persistenced = Mount {
        source: MountSource::Bind("/run/nvidia-persistenced".into()),
        target: "/run/nvidia-persistenced".into(),
        read_only: true,
    };
    let gpu_host = |persistenced_dir: Option<&str>| GpuInventory {
        devices: vec![GpuDevice {
            index: 0,
            name: "H100".into(),
            uuid: "GPU-0".into(),
            memory_total_bytes: 1,
        }],
        unavailable_reason: None,
        persistenced_dir: persistenced_dir.map(String::from),
    };
    let desired =
        desired_state(&spec, &gpu_host(Some("/run/nvidia-persistenced"))).expect("GPUs present");
    assert!(desired.components[0]
        .container()
        .mounts
        .contains(&persistenced));
    assert!(
        !desired.components[1]
            .container()
            .mounts
            .contains(&persistenced),
        "only the podman host gets it"
    );
    let without = desired_state(&spec, &gpu_host(None)).expect("GPUs present");
    assert!(!without.components[0]
        .container()
        .mounts
        .contains(&persistenced));
    let no_gpu_mode = parse_text(&EXAMPLE.replace("mode: auto", "mode: none")).expect("valid");
    let desired = desired_state(&no_gpu_mode, &gpu_host(Some("/run/nvidia-persistenced")))
        .expect("no GPUs asked for");
    assert!(!desired.components[0]
        .container()
        .mounts
        .contains(&persistenced));
}

#[test]
fn example_lowers_without_gpu() {
    let spec = parse_text(EXAMPLE).expect("valid");
    let desired =
        desired_state(&spec, &GpuInventory::none("NVML not available")).expect("auto mode");
    let podman = DesiredComponent::new(
        "podman",
        ComponentKind::Podman,
        RestartPolicy::Always,
        ContainerSpec {
            image: "garage/podman:0.1".into(),
            entrypoint: strings(&["podman"]),
            command: strings(&[
                "system",
                "service",
                "--time=0",
                "unix:///podman/podman.sock",
            ]),
            mounts: vec![
                Mount {
                    source: MountSource::Volume("garage-podman-socket".into()),
                    target: "/podman".into(),
                    read_only: false,
                },
                Mount {
                    source: MountSource::Volume("garage-podman-cache".into()),
                    target: "/var/lib/containers".into(),
                    read_only: false,
                },
            ],
            security: Security {
                privileged: false,
                cap_add: strings(&["ALL"]),
                cap_drop: strings(&["SYS_RESOURCE"]),
                security_opt: strings(&[
                    "seccomp=unconfined",
                    "apparmor=unconfined",
                    "systempaths=unconfined",
                ]),
                devices: vec![DeviceMapping {
                    host_path: "/dev/fuse".into(),
                    container_path: "/dev/fuse".into(),
                    permissions: "rwm".into(),
                }],
            },
            health: Some(HealthCheck {
                test: strings(&[
                    "curl",
                    "-fsS",
                    "-o",
                    "/dev/null",
                    "--unix-socket",
                    "/podman/podman.sock",
                    "http://podman/_ping",
                ]),
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(2),
                retries: 3,
                start_period: Duration::ZERO,
            }),
            labels: labels(),
            ..ContainerSpec::default()
        },
    );
    let worker = DesiredComponent::new(
        "worker",
        ComponentKind::Worker,
        RestartPolicy::Always,
        ContainerSpec {
            image: "garage/worker:0.1".into(),
            entrypoint: strings(&["garage"]),
            command: strings(&[
                "worker",
                "--listen",
                "0.0.0.0:8000",
                "--model",
                "/models/smollm2-135m-instruct.Q4_1.gguf",
            ]),
            env: BTreeMap::from([("RUST_LOG".to_owned(), "info".to_owned())]),
            ports: vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: 8000,
                container_port: 8000,
                protocol: Protocol::Tcp,
            }],
            mounts: vec![Mount {
                source: MountSource::Volume("garage-models".into()),
                target: "/models".into(),
                read_only: true,
            }],
            resources: Resources {
                memory_bytes: Some(4 << 30),
                nano_cpus: Some(2_000_000_000),
                shm_size_bytes: None,
            },
            labels: labels(),
            ..ContainerSpec::default()
        },
    );
    let proxy = DesiredComponent::new(
        "node-exporter-proxy",
        ComponentKind::Extra,
        RestartPolicy::Always,
        ContainerSpec {
            image: "garage-test/busybox:1".into(),
            command: strings(&["httpd", "-f", "-p", "9100"]),
            ports: vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: 19100,
                container_port: 9100,
                protocol: Protocol::Tcp,
            }],
            health: Some(HealthCheck {
                test: strings(&["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9100/"]),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(3),
                retries: 3,
                start_period: Duration::ZERO,
            }),
            labels: labels(),
            ..ContainerSpec::default()
        },
    );
    let expected = DesiredState {
        node: "garage-node-1".into(),
        components: vec![podman, worker, proxy],
    };
    assert_eq!(desired, expected);
}

#[test]
fn hub_model_gets_a_writable_volume_and_a_cache_flag() {
    let text = "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  \
                worker:\n    model:\n      huggingFace:\n        repo: o/n\n        \
                file: m.Q4_1.gguf\n";
    let spec = parse_text(text).expect("valid");
    let desired = desired_state(&spec, &GpuInventory::none("NVML not available")).expect("lowers");
    let worker = desired
        .components
        .iter()
        .find(|c| c.name == "worker")
        .expect("worker");
    assert_eq!(
        worker.container().command,
        strings(&[
            "worker",
            "--listen",
            "0.0.0.0:8000",
            "--model",
            "hf:o/n/m.Q4_1.gguf@main",
            "--model-cache",
            "/models/hub",
        ])
    );
    assert!(
        !worker.container().mounts[0].read_only,
        "downloads land in the volume"
    );

    let bad = text.replace("file: m.Q4_1.gguf", "file: ../escape.gguf");
    let e = parse_text(&bad).expect_err("rejected").to_string();
    assert!(
        e.contains("spec.worker.model.huggingFace") && e.contains("file path"),
        "{e}"
    );
}

#[test]
fn gpu_mode_on_gpu_less_host() {
    let text = EXAMPLE.replace("mode: auto", "mode: all");
    let spec = parse_text(&text).expect("valid spec");
    let host = GpuInventory::none("NVML not available: libnvidia-ml.so.1 not found");
    let err = desired_state(&spec, &host)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("node.yaml:24:11: spec.gpu.mode: this host has no GPU (NVML not available: libnvidia-ml.so.1 not found) (fix: use `mode: auto` or `mode: none`)".into())
    );
}

#[test]
fn container_gpu_on_gpu_less_host() {
    let text =
        format!("{HEAD}  containers:\n    - name: a\n      image: busybox\n      gpu: [0]\n");
    let spec = parse_text(&text).expect("valid spec");
    let err = desired_state(&spec, &GpuInventory::default())
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("node.yaml:9:7: spec.containers[0].gpu: this host has no GPU (NVML found no devices) (fix: use `gpu: auto` or `gpu: none`)".into())
    );
}

#[test]
fn gpu_index_beyond_count() {
    let text = EXAMPLE.replace("mode: auto", "mode: indices\n    indices: [0, 1]");
    let spec = parse_text(&text).expect("valid spec");
    let host = GpuInventory {
        devices: vec![GpuDevice {
            index: 0,
            name: "H100".into(),
            uuid: "GPU-0".into(),
            memory_total_bytes: 80 << 30,
        }],
        unavailable_reason: None,
        persistenced_dir: None,
    };
    let err = desired_state(&spec, &host)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("node.yaml:25:5: spec.gpu.indices: GPU index 1 does not exist; this host has 1 GPU(s) (fix: use indices 0 to 0)".into())
    );
}

#[test]
fn the_largest_spec_validates_and_plans_fast() {
    let text = containers(MAX_CONTAINERS, 40);
    let started = Instant::now();
    let spec = parse_text(&text).expect("valid spec");
    let desired = desired_state(&spec, &GpuInventory::none("test host")).expect("lowers");
    let plan = plan(&desired, &[]);
    assert_eq!(plan.steps.len(), MAX_CONTAINERS);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "validate and plan took {took:?}"
    );
}
