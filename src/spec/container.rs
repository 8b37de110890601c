//! The YAML shape of a container: user `containers` entries and the parts
//! (ports, mounts, security, health, resources, GPUs) shared with podman and
//! the worker. Shape only; checks live in `validate`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::quantity::DURATION_PATTERN;
use crate::document::string_or_list::StringOrList;

/// One extra container, run next to podman and the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    /// Unique name, a DNS label; `podman` and `worker` are reserved.
    pub name: String,
    /// Image reference, `[registry/]path[:tag][@sha256:digest]`.
    pub image: String,
    /// Replaces the image's entrypoint when set.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Replaces the image's command when set.
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<Port>,
    /// Named volumes and host paths mounted into the container.
    #[serde(default)]
    pub mounts: Vec<VolumeMount>,
    /// GPUs for this container: `none` (default), `auto`, `all` or a list of indices.
    #[serde(default)]
    pub gpu: GpuRequestSpec,
    /// Run privileged; excludes `capabilities`.
    #[serde(default)]
    pub privileged: bool,
    /// Linux capabilities to add and drop.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Docker security options, e.g. `seccomp=unconfined`.
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// Devices, `host[:container[:permissions]]`, e.g. `/dev/fuse`.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Health check run inside the container.
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
    /// When the agent restarts the container after it exits (default `Always`).
    #[serde(default)]
    pub restart_policy: RestartPolicySpec,
    /// Limits.
    #[serde(default)]
    pub resources: Resources,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Port {
    /// Port inside the container, 1-65535.
    #[schemars(range(min = 1))]
    pub container_port: u16,
    /// Port on the host, 1-65535 (default: `containerPort`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub host_port: Option<u16>,
    /// Host address to bind (default: all addresses).
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
    /// `TCP` (default) or `UDP`.
    #[serde(default)]
    pub protocol: ProtocolSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum ProtocolSpec {
    #[default]
    TCP,
    UDP,
}

/// A mount: exactly one of `volume` (a named volume, created when missing)
/// and `hostPath` (an absolute path on the host), at `mountPath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["volume"]}, {"required": ["hostPath"]}]))]
pub struct VolumeMount {
    /// Name of a named volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// Absolute path on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// Absolute path inside the container.
    pub mount_path: String,
    /// Mount read-only (default `false`).
    #[serde(default)]
    pub read_only: bool,
}

/// Capabilities added to and dropped from the default set (`ALL` allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capabilities {
    /// Capabilities to add, without `CAP_`, e.g. `NET_ADMIN`.
    #[serde(default)]
    pub add: Vec<String>,
    /// Capabilities to drop, without `CAP_`.
    #[serde(default)]
    pub drop: Vec<String>,
}

/// Docker-style health check; `command` runs without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// Command and arguments; exit 0 means healthy.
    pub command: Vec<String>,
    /// Time between checks (default `30s`).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: String,
    /// Time one check may take (default `30s`).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: String,
    /// Consecutive failures that make the container unhealthy (default 3).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Grace period after start when failures do not count (default `0`).
    #[serde(default = "default_start_period")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub start_period: String,
}

fn default_interval() -> String {
    "30s".into()
}
fn default_retries() -> u32 {
    3
}
fn default_start_period() -> String {
    "0".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum RestartPolicySpec {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// Container limits; absent means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// Memory limit: `512Mi`, `16Gi`, `1G`, `500M` or plain bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// CPU limit: `0.5`, `2`, `"2"` or millicores `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Quantity>,
    /// Size of `/dev/shm`, same units as `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<Quantity>,
}

/// A Kubernetes-style quantity, written as a number or a string; kept as
/// text here and parsed by `validate` (so a bad one is reported in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity(pub String);

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 512Mi, 16Gi, 0.5 or \"2\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
        }
        d.deserialize_any(QuantityVisitor)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number, or a string like `512Mi`, `16Gi`, `1G`, `0.5`, `500m`.",
            "type": ["string", "number"],
            "pattern": r"^[0-9]+(\.[0-9]+)?([mkKMGTP]|[KMGTP]i)?$",
            "exclusiveMinimum": 0
        })
    }
}

/// GPUs for one container: `none`, `auto`, `all` or a list of indices.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GpuRequestSpec {
    #[default]
    None,
    Auto,
    All,
    Indices(Vec<u32>),
}

impl Serialize for GpuRequestSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuRequestSpec::None => s.serialize_str("none"),
            GpuRequestSpec::Auto => s.serialize_str("auto"),
            GpuRequestSpec::All => s.serialize_str("all"),
            GpuRequestSpec::Indices(indices) => indices.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for GpuRequestSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = "`none`, `auto`, `all` or a list of GPU indices";
        match StringOrList::deserialize(d, expecting)? {
            StringOrList::String(word) => match word.as_str() {
                "none" => Ok(GpuRequestSpec::None),
                "auto" => Ok(GpuRequestSpec::Auto),
                "all" => Ok(GpuRequestSpec::All),
                other => Err(de::Error::unknown_variant(other, &["none", "auto", "all"])),
            },
            StringOrList::List(indices) => Ok(GpuRequestSpec::Indices(indices)),
        }
    }
}

impl JsonSchema for GpuRequestSpec {
    fn schema_name() -> Cow<'static, str> {
        "GpuRequest".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`none`, `auto` (all GPUs if the host has any), `all`, or GPU indices.",
            "oneOf": [
                { "type": "string", "enum": ["none", "auto", "all"] },
                { "type": "array", "items": { "type": "integer", "minimum": 0 }, "minItems": 1 }
            ]
        })
    }
}
