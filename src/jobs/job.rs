//! The validated job: what the runner reads. Built only by `validate`;
//! nothing here is checked again later.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

/// A job that parsed and validated.
#[derive(Debug, Clone)]
pub struct Job {
    /// `meta.name`, else the file's stem.
    pub name: String,
    pub timeout: Duration,
    pub ops: Vec<RunOp>,
    /// Largest GPU memory any part of the job asks for, in bytes.
    pub required_vram_bytes: Option<u64>,
}

impl Job {
    /// True when some op asks for GPUs.
    pub fn wants_gpu(&self) -> bool {
        self.ops.iter().any(|op| op.gpu)
    }

    /// Every image the job runs, each once, in order.
    pub fn images(&self) -> Vec<String> {
        let mut images: Vec<String> = Vec::new();
        for op in &self.ops {
            if !images.contains(&op.image) {
                images.push(op.image.clone());
            }
        }
        images
    }

    /// Every job volume, each once, in order.
    pub fn volumes(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for volume in self.ops.iter().flat_map(|op| &op.volumes) {
            if !names.contains(&volume.name) {
                names.push(volume.name.clone());
            }
        }
        names
    }
}

/// One `container/run` op.
#[derive(Debug, Clone)]
pub struct RunOp {
    pub id: String,
    pub image: String,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when set.
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub work_dir: Option<String>,
    pub gpu: bool,
    pub volumes: Vec<VolumeMount>,
    pub expose: Vec<u16>,
    pub limits: Limits,
    pub results: Vec<Extractor>,
    /// Directory whose files are returned after the op.
    pub output: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The job-level name (the engine's volume name is derived per run).
    pub name: String,
    pub dest: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub nano_cpus: Option<u64>,
    pub shm_size_bytes: Option<u64>,
    /// `resources.pids`; the node's default applies when unset.
    pub pids: Option<u32>,
}

/// A named value pulled out of the logs.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub name: String,
    pub regex: Regex,
    pub stdout: bool,
    pub stderr: bool,
}
