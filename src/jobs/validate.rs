//! Checks a parsed job document and turns it into a [`Job`]; every error
//! points at the line and column of the offending field.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use regex::Regex;

use crate::document::{Checker, Locations};
use crate::spec::{limits, names, quantity};

use super::job::{Extractor, Job, Limits, RunOp, VolumeMount};
use super::types::{Command, JobDocument, JobResources, LogType, Op, ResultSpec};
use super::JobFileError;

/// Checks only job files make, as methods of the document's [`Checker`].
trait JobChecks {
    /// A size written at `path`, in bytes.
    fn bytes(&self, path: &str, text: &str) -> Result<u64, JobFileError>;

    /// GPU memory at `path`, written in GB, in bytes.
    fn vram(&self, path: &str, gb: f64) -> Result<u64, JobFileError>;
}

impl JobChecks for Checker<'_> {
    fn bytes(&self, path: &str, text: &str) -> Result<u64, JobFileError> {
        quantity::parse_bytes(text).map_err(|why| {
            self.invalid(
                path,
                format!("invalid size `{text}`: {why}"),
                "write a size like 512Mi, 2Gi or 1G",
            )
        })
    }

    fn vram(&self, path: &str, gb: f64) -> Result<u64, JobFileError> {
        if gb.is_finite() && gb >= 0.0 {
            // GB as Nosana counts them (10^9 bytes); far below u64::MAX.
            Ok((gb * 1e9) as u64)
        } else {
            Err(self.invalid(
                path,
                format!("required VRAM must be 0 or more GB, got {gb}"),
                "write the GPU memory in GB, e.g. 8",
            ))
        }
    }
}

/// Validates `doc`; `file` names the job when `meta.name` is absent.
pub(super) fn validate(
    doc: &JobDocument,
    at: &Locations,
    file: &Path,
) -> Result<Job, JobFileError> {
    let c = Checker { at };
    let name = match &doc.meta.name {
        Some(name) => {
            c.check(
                "meta.name",
                names::dns_label(name),
                "use lowercase letters, digits and `-`",
            )?;
            name.clone()
        }
        None => default_name(file),
    };
    let timeout = quantity::parse_duration(&doc.timeout).map_err(|why| {
        c.invalid(
            "timeout",
            format!("invalid duration `{}`: {why}", doc.timeout),
            "write a duration like 30s, 10m or 1h30m",
        )
    })?;
    let range = limits::JOB_TIMEOUT;
    range.check(&doc.timeout, timeout).map_err(|why| {
        c.invalid(
            "timeout",
            why,
            &format!("write a duration {}", range.describe()),
        )
    })?;
    if doc.ops.is_empty() {
        return Err(c.invalid(
            "ops",
            "a job needs at least one op",
            "add a `container/run` op",
        ));
    }
    let mut required_vram_bytes = match doc
        .meta
        .system_requirements
        .as_ref()
        .and_then(|r| r.required_vram)
    {
        Some(gb) => Some(c.vram("meta.system_requirements.required_vram", gb)?),
        None => None,
    };
    let mut ops = Vec::with_capacity(doc.ops.len());
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(doc.ops.len());
    for (i, op) in doc.ops.iter().enumerate() {
        let path = format!("ops[{i}]");
        if let Some(first) = ids.insert(&op.id, i) {
            return Err(c.invalid(
                &format!("{path}.id"),
                format!("the id `{}` is already used by ops[{first}]", op.id),
                "give every op a unique id",
            ));
        }
        let op = run_op(&c, &path, op)?;
        if let Some(bytes) = op.1 {
            required_vram_bytes = Some(required_vram_bytes.map_or(bytes, |b| b.max(bytes)));
        }
        ops.push(op.0);
    }
    Ok(Job {
        name,
        timeout,
        ops,
        required_vram_bytes,
    })
}

/// The file's stem made into a DNS label (`Hello_World.yaml` → `hello-world`).
fn default_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("job")
        .to_ascii_lowercase();
    let label: String = stem
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "job".to_owned()
    } else {
        label.chars().take(40).collect()
    }
}

fn run_op(c: &Checker<'_>, path: &str, op: &Op) -> Result<(RunOp, Option<u64>), JobFileError> {
    c.check(
        &format!("{path}.id"),
        names::dns_label(&op.id),
        "use lowercase letters, digits and `-`",
    )?;
    let args = &op.args;
    let a = format!("{path}.args");
    c.check(
        &format!("{a}.image"),
        names::image_reference(&args.image),
        "write an image like garage-test/busybox:1 or docker.io/library/ubuntu:24.04",
    )?;
    for key in args.env.keys() {
        names::env_key(key)
            .map_err(|m| c.invalid_key(&format!("{a}.env.{key}"), m, "rename the variable"))?;
    }
    names::env_sizes(&args.env).map_err(|(key, why)| {
        c.invalid(
            &format!("{a}.env.{key}"),
            why,
            "pass large data in a volume instead of the environment",
        )
    })?;
    if let Some(dir) = &args.work_dir {
        c.check(
            &format!("{a}.work_dir"),
            names::absolute_path(dir),
            "write an absolute path, e.g. /work",
        )?;
    }
    if let Some(dir) = &args.output {
        c.check(
            &format!("{a}.output"),
            names::absolute_path(dir),
            "write an absolute path, e.g. /output",
        )?;
    }
    let vram = match args.required_vram {
        Some(gb) => {
            let bytes = c.vram(&format!("{a}.required_vram"), gb)?;
            if !args.gpu && bytes > 0 {
                return Err(c.invalid(
                    &format!("{a}.required_vram"),
                    "`required_vram` needs `gpu: true`",
                    "set `gpu: true` or remove `required_vram`",
                ));
            }
            Some(bytes)
        }
        None => None,
    };
    let mut volumes: Vec<VolumeMount> = Vec::with_capacity(args.volumes.len());
    let mut dests: HashSet<&str> = HashSet::with_capacity(args.volumes.len());
    for (j, volume) in args.volumes.iter().enumerate() {
        let v = format!("{a}.volumes[{j}]");
        c.check(
            &format!("{v}.name"),
            names::dns_label(&volume.name),
            "use lowercase letters, digits and `-`",
        )?;
        c.check(
            &format!("{v}.dest"),
            names::absolute_path(&volume.dest),
            "write an absolute path, e.g. /data",
        )?;
        if !dests.insert(&volume.dest) {
            return Err(c.invalid(
                &format!("{v}.dest"),
                format!("`{}` is mounted twice", volume.dest),
                "mount each path once",
            ));
        }
        volumes.push(VolumeMount {
            name: volume.name.clone(),
            dest: volume.dest.clone(),
            read_only: volume.read_only,
        });
    }
    let mut exposed = HashSet::with_capacity(args.expose.0.len());
    for (j, port) in args.expose.0.iter().enumerate() {
        if !exposed.insert(port) {
            return Err(c.invalid(
                &format!("{a}.expose[{j}]"),
                format!("port {port} is listed twice"),
                "list each port once",
            ));
        }
    }
    let results = extractors(c, path, &op.results)?;
    Ok((
        RunOp {
            id: op.id.clone(),
            image: args.image.clone(),
            entrypoint: args.entrypoint.as_ref().map(argv),
            cmd: args.cmd.as_ref().map(argv),
            env: args.env.clone(),
            work_dir: args.work_dir.clone(),
            gpu: args.gpu,
            volumes,
            expose: args.expose.0.clone(),
            limits: limits(c, &format!("{a}.resources"), &args.resources)?,
            results,
            output: args.output.clone(),
        },
        vram,
    ))
}

/// A shell string runs through `/bin/sh -c` (as Nosana does).
fn argv(command: &Command) -> Vec<String> {
    match command {
        Command::Shell(text) => vec!["/bin/sh".into(), "-c".into(), text.clone()],
        Command::Exec(args) => args.clone(),
    }
}

/// The kernel's largest `pid_max` (2^22).
const MAX_PIDS: u32 = 4_194_304;

fn limits(c: &Checker<'_>, path: &str, r: &JobResources) -> Result<Limits, JobFileError> {
    let memory_bytes = match &r.memory {
        Some(q) => Some(c.bytes(&format!("{path}.memory"), &q.0)?),
        None => None,
    };
    let shm_size_bytes = match &r.shm_size {
        Some(q) => Some(c.bytes(&format!("{path}.shm_size"), &q.0)?),
        None => None,
    };
    let nano_cpus = match &r.cpus {
        Some(q) => Some(quantity::parse_nano_cpus(&q.0).map_err(|why| {
            c.invalid(
                &format!("{path}.cpus"),
                format!("invalid CPU count `{}`: {why}", q.0),
                "write e.g. 0.5, 2 or 500m",
            )
        })?),
        None => None,
    };
    if let Some(pids) = r.pids.filter(|&p| p > MAX_PIDS) {
        return Err(c.invalid(
            &format!("{path}.pids"),
            format!("`pids` must be at most {MAX_PIDS} (the kernel's largest pid_max), got {pids}"),
            "write a smaller limit, e.g. 1024",
        ));
    }
    for (field, value) in [
        ("memory", memory_bytes),
        ("shm_size", shm_size_bytes),
        ("cpus", nano_cpus),
        ("pids", r.pids.map(u64::from)),
    ] {
        if value == Some(0) {
            return Err(c.invalid(
                &format!("{path}.{field}"),
                format!("`{field}` must be more than 0"),
                "write a positive amount or remove the field",
            ));
        }
    }
    Ok(Limits {
        memory_bytes,
        nano_cpus,
        shm_size_bytes,
        pids: r.pids,
    })
}

fn extractors(
    c: &Checker<'_>,
    path: &str,
    results: &BTreeMap<String, ResultSpec>,
) -> Result<Vec<Extractor>, JobFileError> {
    let mut out = Vec::with_capacity(results.len());
    for (name, spec) in results {
        let key = format!("{path}.results.{name}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(c.invalid_key(
                &key,
                format!("`{name}` is not a result name"),
                "use letters, digits, `_`, `-` and `.`",
            ));
        }
        let (pattern, regex_path, streams) = match spec {
            ResultSpec::Regex(pattern) => (pattern, key.clone(), None),
            ResultSpec::Detailed(detailed) => (
                &detailed.regex,
                format!("{key}.regex"),
                Some(&detailed.log_type),
            ),
        };
        let regex = Regex::new(pattern).map_err(|err| {
            c.invalid(
                &regex_path,
                format!("invalid regular expression: {err}"),
                "write a Rust `regex` pattern, e.g. 'loss=([0-9.]+)'",
            )
        })?;
        let (stdout, stderr) = match streams {
            None => (true, true),
            Some(types) if types.is_empty() => {
                return Err(c.invalid(
                    &format!("{key}.logType"),
                    "no log stream to read",
                    "list stdout, stderr or both",
                ))
            }
            Some(types) => (
                types.contains(&LogType::Stdout),
                types.contains(&LogType::Stderr),
            ),
        };
        out.push(Extractor {
            name: name.clone(),
            regex,
            stdout,
            stderr,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
