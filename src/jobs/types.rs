//! A job file as written: serde + JSON Schema types, modelled on Nosana's
//! job definitions (`version`, `type`, `meta`, `ops[]` of `container/run`
//! with their `args`, and per-op `results`). Field names follow Nosana's
//! (snake_case) so a Nosana job in the supported subset runs unchanged.
//! Shape only; every value check lives in `validate`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::document::string_or_list::StringOrList;
use crate::spec::container::Quantity;
use crate::spec::quantity::DURATION_PATTERN;

/// A container job: one or more operations run in order inside the node's
/// podman host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Garage AI Job")]
pub struct JobDocument {
    /// Version of the job format; `0.1` (Nosana's).
    pub version: JobVersion,
    /// Kind of job; `container`.
    #[serde(rename = "type")]
    pub kind: JobKind,
    /// Free-form facts about the job and what it needs from a node.
    #[serde(default)]
    pub meta: Meta,
    /// The whole job may take at most this long, image transfer included;
    /// past it the running container is killed and the job reported as
    /// timed out (default `10m`).
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: String,
    /// The operations, run one after the other; the first that fails ends
    /// the job.
    #[schemars(length(min = 1))]
    pub ops: Vec<Op>,
}

fn default_timeout() -> String {
    "10m".into()
}

/// The one supported format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JobVersion {
    #[serde(rename = "0.1")]
    V0_1,
}

/// The one supported job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Container,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Who or what submitted the job (`cli`, `coordinator`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// A name for people; defaults to the file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What a node needs to run the job at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_requirements: Option<SystemRequirements>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SystemRequirements {
    /// GPU memory in GB (10^9 bytes) the job needs on one GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub required_vram: Option<f64>,
}

/// One operation. Only `container/run` exists so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Op {
    /// `container/run`.
    #[serde(rename = "type")]
    pub kind: OpKind,
    /// Unique within the job, a DNS label; names the op's container.
    pub id: String,
    /// What to run.
    pub args: RunArgs,
    /// Values extracted from the op's logs: name → regular expression. The
    /// value is the first capture group (or the whole match) of the last
    /// matching line.
    #[serde(default)]
    pub results: BTreeMap<String, ResultSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OpKind {
    #[serde(rename = "container/run")]
    ContainerRun,
}

/// The arguments of `container/run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// Image reference, `[registry/]path[:tag][@sha256:digest]`. Pulled by
    /// podman, or copied from the host's Docker engine when it has it.
    pub image: String,
    /// Replaces the image's command: a list runs as is, a string runs
    /// through `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Command>,
    /// Replaces the image's entrypoint: a list, or a string split by
    /// `/bin/sh -c` the same way as `cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Command>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<String>,
    /// Give the container the node's GPUs (refused on a node without GPUs).
    #[serde(default)]
    pub gpu: bool,
    /// GPU memory in GB (10^9 bytes) the op needs; implies nothing without `gpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub required_vram: Option<f64>,
    /// Job volumes: created empty for the job, shared by its ops, removed
    /// with the job.
    #[serde(default)]
    pub volumes: Vec<JobVolume>,
    /// Ports the op serves, reachable from the job's network.
    #[serde(default)]
    pub expose: Ports,
    /// Limits for the op's container.
    #[serde(default)]
    pub resources: JobResources,
    /// A directory inside the container whose files are returned with the
    /// result after the op ends (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// A volume of the job, mounted at `dest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobVolume {
    /// Name within the job, a DNS label.
    pub name: String,
    /// Absolute path inside the container.
    pub dest: String,
    /// Mount read-only (default `false`).
    #[serde(default)]
    pub read_only: bool,
}

/// Limits for one op; absent memory and CPU mean the podman host's own
/// limits. Enforced where the podman host manages cgroups (the job report's
/// `limits` says whether it does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct JobResources {
    /// Memory limit: `512Mi`, `16Gi`, `1G` or plain bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// CPU limit: `0.5`, `2` or millicores `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Quantity>,
    /// Size of `/dev/shm` (default 64Mi, podman's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<Quantity>,
    /// Most processes and threads the container may have at once (default
    /// the node's `spec.podman.jobs.pidsLimit`, 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4194304))]
    pub pids: Option<u32>,
}

/// A regular expression, or one with the log streams it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ResultSpec {
    /// Matched against stdout and stderr.
    Regex(String),
    Detailed(DetailedResult),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetailedResult {
    /// Regular expression (Rust `regex` syntax), matched line by line.
    pub regex: String,
    /// Streams to read (default both).
    #[serde(default = "both_streams", rename = "logType")]
    pub log_type: Vec<LogType>,
}

fn both_streams() -> Vec<LogType> {
    vec![LogType::Stdout, LogType::Stderr]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogType {
    Stdout,
    Stderr,
}

/// A command: a string (run through `/bin/sh -c`) or a list of arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Command::Shell(text) => s.serialize_str(text),
            Command::Exec(args) => args.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = "a command string or a list of arguments";
        Ok(match StringOrList::deserialize(d, expecting)? {
            StringOrList::String(text) => Command::Shell(text),
            StringOrList::List(args) => Command::Exec(args),
        })
    }
}

impl JsonSchema for Command {
    fn schema_name() -> Cow<'static, str> {
        "Command".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A string run through `/bin/sh -c`, or a list of arguments.",
            "oneOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

/// Exposed ports: one port or a list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ports(pub Vec<u16>);

impl Serialize for Ports {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortsVisitor;
        impl<'de> Visitor<'de> for PortsVisitor {
            type Value = Ports;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number 1-65535 or a list of them")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ports, E> {
                port(v).map(|p| Ports(vec![p]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ports, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("port must be 1-65535, got {v}")))
                    .and_then(port)
                    .map(|p| Ports(vec![p]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ports, A::Error> {
                let mut ports = Vec::new();
                while let Some(p) = seq.next_element::<u64>()? {
                    ports.push(port(p)?);
                }
                Ok(Ports(ports))
            }
        }
        d.deserialize_any(PortsVisitor)
    }
}

fn port<E: de::Error>(v: u64) -> Result<u16, E> {
    match u16::try_from(v) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(E::custom(format!("port must be 1-65535, got {v}"))),
    }
}

impl JsonSchema for Ports {
    fn schema_name() -> Cow<'static, str> {
        "Ports".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A port number or a list of port numbers.",
            "oneOf": [
                { "type": "integer", "minimum": 1, "maximum": 65535 },
                { "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 65535 } }
            ]
        })
    }
}
