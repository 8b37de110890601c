//! The podman, worker and `containers` sections → unresolved components
//! (complete container specs that wait only for the host's GPUs). Each
//! component's container is built here, the host-dependent part of podman's
//! included ([`podman_gpu_access`], applied when lowering finds GPUs).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::runtime::{
    ComponentKind, ContainerSpec, HealthCheck, Mount, MountSource, PortBinding, Protocol,
    RestartPolicy,
};

use super::container::{Capabilities, Container};
use super::container_fields::{
    container_gpu, image, port_binding, resources, restart_policy, security, volume, volume_mount,
};
use super::limits::{self, MAX_CONTAINERS};
use super::model_ref::ModelRef;
use super::names;
use super::node::{GpuWant, UnresolvedComponent};
use super::ports::HostPorts;
use super::types::{NodeDocument, Podman, Worker};
use super::validate::Checker;
use super::SpecError;

const MODEL_CACHE_FLAG: &str = "--model-cache";
/// Where the worker keeps hub downloads: inside the model volume, so they
/// survive the container.
const HUB_CACHE_IN_VOLUME: &str = "/models/hub";

/// Names the agent gives its own components; user containers may not use them.
const RESERVED: [&str; 2] = ["podman", "worker"];

/// The API socket's file name in the socket volume (mounted at `/podman`).
pub(super) const PODMAN_SOCKET_FILE: &str = "podman.sock";

/// Ready means podman's API answers `_ping` on its socket (not a TCP port):
/// the engine runs this check inside the podman container, and the
/// reconciler's Ready condition waits for "healthy".
fn podman_ready_check() -> HealthCheck {
    HealthCheck {
        test: [
            "curl",
            "-fsS",
            "-o",
            "/dev/null",
            "--unix-socket",
            "/podman/podman.sock",
            "http://podman/_ping",
        ]
        .map(String::from)
        .to_vec(),
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        retries: 3,
        start_period: Duration::ZERO,
    }
}

/// Security options podman needs where `--privileged` is refused (ENVIRONMENT.md).
const PODMAN_SECURITY_OPT: [&str; 3] = [
    "seccomp=unconfined",
    "apparmor=unconfined",
    "systempaths=unconfined",
];

pub(super) fn components(
    c: &Checker<'_>,
    doc: &NodeDocument,
    node_gpu: GpuWant,
    metrics_listen: SocketAddr,
) -> Result<Vec<UnresolvedComponent>, SpecError> {
    let labels = &doc.metadata.labels;
    let gpu_path = if matches!(node_gpu, GpuWant::Indices(_)) {
        "spec.gpu.indices"
    } else {
        "spec.gpu.mode"
    };
    let node_component = |name: &str, kind, container| UnresolvedComponent {
        name: name.to_owned(),
        kind,
        restart: RestartPolicy::Always,
        container: ContainerSpec {
            labels: labels.clone(),
            ..container
        },
        gpu: node_gpu.clone(),
        gpu_site: c.at.value(gpu_path),
        gpu_setting: "mode",
    };
    let mut out = Vec::new();
    let mut ports = HostPorts::with_agent_metrics(metrics_listen);
    if let Some(podman) = doc.spec.podman.as_ref().filter(|p| p.enabled) {
        out.push(node_component(
            "podman",
            ComponentKind::Podman,
            podman_container(c, podman)?,
        ));
    }
    if let Some(worker) = doc.spec.worker.as_ref().filter(|w| w.enabled) {
        let container = worker_container(c, worker)?;
        for port in &container.ports {
            ports
                .bind(port, "spec.worker.port".to_owned())
                .map_err(|why| c.invalid("spec.worker.port", why, "choose another port"))?;
        }
        out.push(node_component("worker", ComponentKind::Worker, container));
    }
    let containers = &doc.spec.containers;
    if containers.len() > MAX_CONTAINERS {
        return Err(c.invalid(
            &format!("spec.containers[{MAX_CONTAINERS}]"),
            format!(
                "{} containers, more than the limit of {MAX_CONTAINERS}",
                containers.len()
            ),
            "run fewer containers on one node, or split them over several nodes",
        ));
    }
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(containers.len());
    for (i, extra) in containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        let name_path = format!("{path}.name");
        c.check(
            &name_path,
            names::dns_label(&extra.name),
            "use lowercase letters, digits and `-`",
        )?;
        if RESERVED.contains(&extra.name.as_str()) {
            return Err(c.invalid(
                &name_path,
                format!(
                    "the name `{}` is reserved for the node's own component",
                    extra.name
                ),
                "choose another name",
            ));
        }
        if let Some(first) = names.insert(&extra.name, i) {
            return Err(c.invalid(
                &name_path,
                format!(
                    "the name `{}` is already used by spec.containers[{first}]",
                    extra.name
                ),
                "give every container a unique name",
            ));
        }
        let container = extra_container(c, &path, extra)?;
        for (j, port) in container.ports.iter().enumerate() {
            let port_path = format!("{path}.ports[{j}].hostPort");
            ports
                .bind(port, port_path.clone())
                .map_err(|why| c.invalid(&port_path, why, "choose another hostPort"))?;
        }
        out.push(UnresolvedComponent {
            name: extra.name.clone(),
            kind: ComponentKind::Extra,
            restart: restart_policy(extra.restart_policy),
            container: ContainerSpec {
                labels: labels.clone(),
                ..container
            },
            gpu: container_gpu(c, &path, &extra.gpu)?,
            gpu_site: c.at.value(&format!("{path}.gpu")),
            gpu_setting: "gpu",
        });
    }
    Ok(out)
}

fn podman_container(c: &Checker<'_>, podman: &Podman) -> Result<ContainerSpec, SpecError> {
    let path = "spec.podman";
    image(c, path, &podman.image)?;
    let security = if podman.privileged {
        // Privileged already has every device and capability; options the
        // user wrote are still passed on.
        let opts = podman.security_opt.as_deref().unwrap_or_default();
        let devices = podman.devices.as_deref().unwrap_or_default();
        security(c, path, true, podman.capabilities.as_ref(), opts, devices)?
    } else {
        let default_caps = Capabilities {
            add: vec!["ALL".into()],
            drop: vec!["SYS_RESOURCE".into()],
        };
        let default_opts = PODMAN_SECURITY_OPT.map(String::from).to_vec();
        let capabilities = podman.capabilities.as_ref().unwrap_or(&default_caps);
        let opts = podman.security_opt.as_deref().unwrap_or(&default_opts);
        let default_devices = vec!["/dev/fuse".to_owned()];
        let devices = podman.devices.as_deref().unwrap_or(&default_devices);
        security(c, path, false, Some(capabilities), opts, devices)?
    };
    let socket = volume(c, &format!("{path}.socketVolume"), &podman.socket_volume)?;
    let cache = volume(c, &format!("{path}.cacheVolume"), &podman.cache_volume)?;
    Ok(ContainerSpec {
        image: podman.image.clone(),
        // Set both so the command does not depend on how the image was built.
        entrypoint: vec!["podman".into()],
        command: [
            "system",
            "service",
            "--time=0",
            "unix:///podman/podman.sock",
        ]
        .map(String::from)
        .to_vec(),
        mounts: vec![
            Mount {
                source: socket,
                target: "/podman".into(),
                read_only: false,
            },
            Mount {
                source: cache,
                target: "/var/lib/containers".into(),
                read_only: false,
            },
        ],
        security,
        health: Some(podman_ready_check()),
        ..ContainerSpec::default()
    })
}

/// The part of podman's container that depends on the host, once lowering
/// has given it GPUs: podman is told to pass them on, and sees the NVIDIA
/// persistence daemon's socket directory where the host has one.
pub(super) fn podman_gpu_access(container: &mut ContainerSpec, persistenced_dir: Option<&str>) {
    container.env.insert("ENABLE_GPU".into(), "true".into());
    // Read-only is enough: connecting to a Unix socket is allowed on a
    // read-only mount.
    if let Some(dir) = persistenced_dir {
        container.mounts.push(Mount {
            source: MountSource::Bind(dir.to_owned()),
            target: dir.to_owned(),
            read_only: true,
        });
    }
}

fn worker_container(c: &Checker<'_>, worker: &Worker) -> Result<ContainerSpec, SpecError> {
    let path = "spec.worker";
    image(c, path, &worker.image)?;
    let mut hub = false;
    let model = match (&worker.model.path, &worker.model.hugging_face) {
        (Some(model), None) => {
            c.check(
                &format!("{path}.model.path"),
                names::absolute_path(model),
                "write a path under /models",
            )?;
            model.clone()
        }
        (None, Some(hf)) => {
            if hf.revision.is_empty() || hf.revision.contains(char::is_whitespace) {
                return Err(c.invalid(
                    &format!("{path}.model.huggingFace.revision"),
                    format!("`{}` is not a revision", hf.revision),
                    "write a branch, tag or commit, e.g. main",
                ));
            }
            let file = hf
                .file
                .as_deref()
                .map_or(String::new(), |f| format!("/{f}"));
            let reference = format!("hf:{}{file}@{}", hf.repo, hf.revision);
            if let Err(e) = reference.parse::<ModelRef>() {
                return Err(c.invalid(
                    &format!("{path}.model.huggingFace"),
                    e.to_string(),
                    "write repo as `owner/name`, e.g. HuggingFaceTB/SmolLM2-135M-Instruct, \
                     and file as a path inside it",
                ));
            }
            hub = true;
            reference
        }
        _ => {
            return Err(c.invalid(
                &format!("{path}.model"),
                "the model needs exactly one of `path` and `huggingFace`",
                "keep one of them",
            ))
        }
    };
    let port = worker.port;
    if port == 0 {
        return Err(c.invalid(
            &format!("{path}.port"),
            "port must be 1-65535, got 0",
            "pick a free port, e.g. 8000",
        ));
    }
    c.env(&format!("{path}.env"), &worker.env)?;
    let models = volume(c, &format!("{path}.modelVolume"), &worker.model_volume)?;
    let mut command = vec![
        "worker".into(),
        "--listen".into(),
        format!("0.0.0.0:{port}"),
        "--model".into(),
        model,
    ];
    if hub {
        command.extend([MODEL_CACHE_FLAG.into(), HUB_CACHE_IN_VOLUME.into()]);
    }
    Ok(ContainerSpec {
        image: worker.image.clone(),
        entrypoint: vec!["garage".into()],
        command,
        env: worker.env.clone(),
        ports: vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: port,
            container_port: port,
            protocol: Protocol::Tcp,
        }],
        // A hub model is downloaded into the volume, so the worker writes it.
        mounts: vec![Mount {
            source: models,
            target: "/models".into(),
            read_only: !hub,
        }],
        resources: resources(c, &format!("{path}.resources"), &worker.resources)?,
        ..ContainerSpec::default()
    })
}

fn extra_container(
    c: &Checker<'_>,
    path: &str,
    spec: &Container,
) -> Result<ContainerSpec, SpecError> {
    image(c, path, &spec.image)?;
    c.env(&format!("{path}.env"), &spec.env)?;
    let ports = spec
        .ports
        .iter()
        .enumerate()
        .map(|(j, port)| port_binding(c, &format!("{path}.ports[{j}]"), port))
        .collect::<Result<_, _>>()?;
    let mut mounts: Vec<Mount> = Vec::with_capacity(spec.mounts.len());
    let mut targets: HashSet<&str> = HashSet::with_capacity(spec.mounts.len());
    for (j, written) in spec.mounts.iter().enumerate() {
        let mount = volume_mount(c, &format!("{path}.mounts[{j}]"), written)?;
        if !targets.insert(&written.mount_path) {
            return Err(c.invalid(
                &format!("{path}.mounts[{j}].mountPath"),
                format!("`{}` is mounted twice", mount.target),
                "mount each path once",
            ));
        }
        mounts.push(mount);
    }
    let health = match &spec.health_check {
        Some(check) => {
            let hc = format!("{path}.healthCheck");
            if check.command.is_empty() {
                return Err(c.invalid(
                    &format!("{hc}.command"),
                    "the health check command is empty",
                    "write a command, e.g. [wget, -q, http://127.0.0.1/]",
                ));
            }
            let period = limits::HEALTH_PERIOD;
            Some(HealthCheck {
                test: check.command.clone(),
                interval: c.duration(&format!("{hc}.interval"), &check.interval, period)?,
                timeout: c.duration(&format!("{hc}.timeout"), &check.timeout, period)?,
                retries: check.retries,
                start_period: c.duration(
                    &format!("{hc}.startPeriod"),
                    &check.start_period,
                    limits::HEALTH_START_PERIOD,
                )?,
            })
        }
        None => None,
    };
    Ok(ContainerSpec {
        image: spec.image.clone(),
        entrypoint: spec.entrypoint.clone(),
        command: spec.command.clone(),
        env: spec.env.clone(),
        ports,
        mounts,
        security: security(
            c,
            path,
            spec.privileged,
            spec.capabilities.as_ref(),
            &spec.security_opt,
            &spec.devices,
        )?,
        health,
        resources: resources(c, &format!("{path}.resources"), &spec.resources)?,
        ..ContainerSpec::default()
    })
}
