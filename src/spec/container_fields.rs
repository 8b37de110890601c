//! Validated lowering of the parts every container shares: image, volumes,
//! ports, mounts, security, resources, GPU request and restart policy.

use crate::document::Checker;

use super::checks::unique_indices;
use super::container::{
    Capabilities, GpuRequestSpec, Port, ProtocolSpec, Quantity, Resources as ResourcesSpec,
    RestartPolicySpec, VolumeMount,
};
use super::container_spec::{
    DeviceMapping, Mount, MountSource, PortBinding, Protocol, Resources, RestartPolicy, Security,
};
use super::names;
use super::node::GpuWant;
use super::quantity;
use super::SpecError;

pub(super) fn image(c: &Checker<'_>, path: &str, image: &str) -> Result<(), SpecError> {
    c.check(
        &format!("{path}.image"),
        names::image_reference(image),
        "write e.g. `busybox:1.36` or `registry.example.org/team/app:1.0`",
    )
}

pub(super) fn volume(c: &Checker<'_>, path: &str, name: &str) -> Result<MountSource, SpecError> {
    c.check(
        path,
        names::volume_name(name),
        "use letters, digits, `_`, `.` and `-`",
    )?;
    Ok(MountSource::Volume(name.to_owned()))
}

pub(super) fn port_binding(
    c: &Checker<'_>,
    path: &str,
    port: &Port,
) -> Result<PortBinding, SpecError> {
    let host_port = port.host_port.unwrap_or(port.container_port);
    for (field, value) in [
        ("containerPort", port.container_port),
        ("hostPort", host_port),
    ] {
        if value == 0 {
            return Err(c.invalid(
                &format!("{path}.{field}"),
                "port must be 1-65535, got 0",
                "pick a port from 1 to 65535",
            ));
        }
    }
    if let Some(ip) = &port.host_ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(c.invalid(
                &format!("{path}.hostIP"),
                format!("`{ip}` is not an IP address"),
                "write e.g. 127.0.0.1 or ::1",
            ));
        }
    }
    Ok(PortBinding {
        host_ip: port.host_ip.clone(),
        host_port,
        container_port: port.container_port,
        protocol: match port.protocol {
            ProtocolSpec::TCP => Protocol::Tcp,
            ProtocolSpec::UDP => Protocol::Udp,
        },
    })
}

pub(super) fn volume_mount(
    c: &Checker<'_>,
    path: &str,
    mount: &VolumeMount,
) -> Result<Mount, SpecError> {
    let source = match (&mount.volume, &mount.host_path) {
        (Some(name), None) => volume(c, &format!("{path}.volume"), name)?,
        (None, Some(host)) => {
            c.check(
                &format!("{path}.hostPath"),
                names::absolute_path(host),
                "write an absolute host path",
            )?;
            MountSource::Bind(host.clone())
        }
        _ => {
            return Err(c.invalid(
                path,
                "a mount needs exactly one of `volume` and `hostPath`",
                "keep one of them",
            ))
        }
    };
    c.check(
        &format!("{path}.mountPath"),
        names::absolute_path(&mount.mount_path),
        "write an absolute path inside the container",
    )?;
    Ok(Mount {
        source,
        target: mount.mount_path.clone(),
        read_only: mount.read_only,
    })
}

pub(super) fn security(
    c: &Checker<'_>,
    path: &str,
    privileged: bool,
    capabilities: Option<&Capabilities>,
    security_opt: &[String],
    devices: &[String],
) -> Result<Security, SpecError> {
    let mut out = Security {
        privileged,
        security_opt: security_opt.to_vec(),
        ..Security::default()
    };
    if let Some(caps) = capabilities {
        if privileged {
            return Err(c.invalid(
                &format!("{path}.capabilities"),
                "`privileged: true` already grants every capability",
                "remove `capabilities` or set `privileged: false`",
            ));
        }
        for (list, names_in) in [("add", &caps.add), ("drop", &caps.drop)] {
            for (k, cap) in names_in.iter().enumerate() {
                c.check(
                    &format!("{path}.capabilities.{list}[{k}]"),
                    names::capability(cap),
                    "write e.g. NET_ADMIN",
                )?;
            }
        }
        out.cap_add = caps.add.clone();
        out.cap_drop = caps.drop.clone();
    }
    for (k, device) in devices.iter().enumerate() {
        let (host_path, container_path, permissions) = names::device(device).map_err(|m| {
            c.invalid(
                &format!("{path}.devices[{k}]"),
                m,
                "write `/dev/x` or `/dev/x:/dev/y:rwm`",
            )
        })?;
        out.devices.push(DeviceMapping {
            host_path,
            container_path,
            permissions,
        });
    }
    Ok(out)
}

pub(super) fn resources(
    c: &Checker<'_>,
    path: &str,
    spec: &ResourcesSpec,
) -> Result<Resources, SpecError> {
    let bytes = |field: &str, q: &Option<Quantity>| -> Result<Option<u64>, SpecError> {
        q.as_ref()
            .map(|q| {
                quantity::parse_bytes(&q.0).map_err(|why| {
                    c.invalid(
                        &format!("{path}.{field}"),
                        format!("invalid quantity `{}`: {why}", q.0),
                        "write e.g. 512Mi, 16Gi, 1G, 500M or plain bytes",
                    )
                })
            })
            .transpose()
    };
    let nano_cpus = spec
        .cpus
        .as_ref()
        .map(|q| {
            quantity::parse_nano_cpus(&q.0).map_err(|why| {
                c.invalid(
                    &format!("{path}.cpus"),
                    format!("invalid CPU amount `{}`: {why}", q.0),
                    "write e.g. 0.5, 2 or 500m",
                )
            })
        })
        .transpose()?;
    Ok(Resources {
        memory_bytes: bytes("memory", &spec.memory)?,
        nano_cpus,
        shm_size_bytes: bytes("shmSize", &spec.shm_size)?,
    })
}

pub(super) fn container_gpu(
    c: &Checker<'_>,
    path: &str,
    gpu: &GpuRequestSpec,
) -> Result<GpuWant, SpecError> {
    Ok(match gpu {
        GpuRequestSpec::None => GpuWant::None,
        GpuRequestSpec::Auto => GpuWant::Auto,
        GpuRequestSpec::All => GpuWant::All,
        GpuRequestSpec::Indices(indices) => {
            if indices.is_empty() {
                return Err(c.invalid(
                    &format!("{path}.gpu"),
                    "an empty GPU list",
                    "write `none` or list indices",
                ));
            }
            unique_indices(c, &format!("{path}.gpu"), indices)?;
            GpuWant::Indices(indices.clone())
        }
    })
}

pub(super) fn restart_policy(policy: RestartPolicySpec) -> RestartPolicy {
    match policy {
        RestartPolicySpec::Always => RestartPolicy::Always,
        RestartPolicySpec::OnFailure => RestartPolicy::OnFailure,
        RestartPolicySpec::Never => RestartPolicy::Never,
    }
}
