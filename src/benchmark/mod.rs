//! `garage benchmark`: what this node can do, for its operator and the
//! coordinator's markets. Host facts ([`host`]), GPU facts from NVML, memory
//! bandwidth and matmul rate on the burn backend the worker would use
//! ([`compute`]), and the worker's model's speed ([`inference`]), gathered
//! into a [`BenchmarkReport`]. Blocking work: callers run it off the async
//! runtime. Progress goes to a caller's callback; nothing here prints.

pub mod cli;
pub mod compute;
pub mod host;
pub mod inference;
pub mod report;

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

pub use self::cli::BenchmarkArgs;
use self::compute::{ComputeLimits, ProbeError};
use self::inference::{InferenceLimits, InferenceProbeError};
pub use self::report::{BenchmarkReport, ComputeReport, GpuFacts, InferenceReport, SCHEMA_VERSION};
use crate::gpu::{class, telemetry};
use crate::inference::backend::{self, BackendKind, DeviceChoice, OnBackend};
use crate::spec::{self, SpecError, WorkerModel};

/// Why the benchmark could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    // Boxed: the spec and loader errors carry file positions and paths, and
    // a large error would make every `Result` here as large.
    #[error(transparent)]
    Spec(Box<SpecError>),
    #[error("{path}: no such model (expected a directory or a .gguf file)")]
    ModelNotFound { path: PathBuf },
    #[error("measuring compute")]
    Probe(#[from] ProbeError),
    #[error("measuring inference with {path}")]
    Inference {
        path: PathBuf,
        #[source]
        source: Box<InferenceProbeError>,
    },
}

/// Which model the inference probe runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSelection {
    Path(PathBuf),
    /// No model on this host; the report says why.
    None {
        reason: String,
    },
}

/// What to measure and how hard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchmarkOptions {
    /// Small sizes and few repetitions (seconds instead of tens of seconds).
    pub quick: bool,
    pub model: ModelSelection,
    pub device: DeviceChoice,
}

/// Picks the model: `--model` when given (it must exist), else the worker's
/// model in the node spec at `node_file` when that is a path on this host,
/// else none.
pub fn select_model(
    model: Option<PathBuf>,
    node_file: Option<&Path>,
) -> Result<ModelSelection, BenchmarkError> {
    if let Some(path) = model {
        return if path.exists() {
            Ok(ModelSelection::Path(path))
        } else {
            Err(BenchmarkError::ModelNotFound { path })
        };
    }
    let Some(file) = node_file else {
        return Ok(ModelSelection::None {
            reason: "pass --model PATH, or -f node.yaml with a worker model".into(),
        });
    };
    let spec = spec::load(file).map_err(|e| BenchmarkError::Spec(Box::new(e)))?;
    let reason = match spec.worker_model() {
        None => format!("{} runs no worker", file.display()),
        Some(WorkerModel::Path { path, volume }) => {
            let path = PathBuf::from(path);
            if path.exists() {
                return Ok(ModelSelection::Path(path));
            }
            format!(
                "the worker's model {} is in volume {volume}, not on this host: pass --model PATH",
                path.display()
            )
        }
        Some(WorkerModel::HuggingFace { repo, revision }) => format!(
            "the worker's model is Hugging Face {repo}@{revision}, not a local path: pass --model PATH"
        ),
    };
    Ok(ModelSelection::None { reason })
}

/// The probes that run on the chosen backend.
struct Probes<'a> {
    options: &'a BenchmarkOptions,
    progress: &'a dyn Fn(&str),
}

impl OnBackend for Probes<'_> {
    type Output = Result<(ComputeReport, InferenceReport), BenchmarkError>;

    fn run<B: Backend>(self, device: B::Device, kind: BackendKind) -> Self::Output {
        let (compute_limits, inference_limits) = if self.options.quick {
            (ComputeLimits::quick(), InferenceLimits::quick())
        } else {
            (ComputeLimits::full(), InferenceLimits::full())
        };
        let name = B::name(&device);
        (self.progress)(&format!("measuring memory bandwidth on {}", kind.as_str()));
        let memory_bandwidth = compute::bandwidth::<B>(&device, &compute_limits)?;
        (self.progress)(&format!("measuring f32 matmul on {}", kind.as_str()));
        let matmul_f32 = compute::matmul::<B>(&device, &compute_limits)?;
        let inference = match &self.options.model {
            ModelSelection::None { reason } => InferenceReport::Skipped {
                reason: reason.clone(),
            },
            ModelSelection::Path(path) => {
                (self.progress)(&format!(
                    "loading {} and measuring inference on {}",
                    path.display(),
                    kind.as_str()
                ));
                let run = inference::measure::<B>(path, &device, &inference_limits).map_err(
                    |source| BenchmarkError::Inference {
                        path: path.clone(),
                        source: Box::new(source),
                    },
                )?;
                InferenceReport::Measured(run)
            }
        };
        let compute = ComputeReport {
            backend: kind,
            backend_name: name,
            memory_bandwidth,
            matmul_f32,
        };
        Ok((compute, inference))
    }
}

/// Runs the benchmark, reporting each step to `progress`.
pub fn run(
    options: &BenchmarkOptions,
    progress: &dyn Fn(&str),
) -> Result<BenchmarkReport, BenchmarkError> {
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    progress("reading host facts");
    let host = host::detect();
    progress("reading GPUs through NVML");
    let (gpus, no_gpu_reason) = match telemetry::sample_host() {
        Ok(sample) if sample.gpus.is_empty() => (Vec::new(), Some("NVML found no GPUs".into())),
        Ok(sample) => (GpuFacts::from_host(&sample), None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let (compute, inference) = backend::run_on(options.device, None, Probes { options, progress })?;
    Ok(BenchmarkReport {
        schema_version: SCHEMA_VERSION,
        garage_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        quick: options.quick,
        class: class::host_class(gpus.iter().map(|g| g.name.as_str())),
        gpu_model: gpus.first().map(|g| g.name.clone()),
        host,
        gpus,
        no_gpu_reason,
        compute,
        inference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_file(dir: &Path, model: &str) -> PathBuf {
        let file = dir.join("node.yaml");
        let text = format!(
            "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  worker:\n    model:\n      {model}\n"
        );
        std::fs::write(&file, text).expect("write node.yaml");
        file
    }

    #[test]
    fn an_explicit_model_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("m.gguf");
        assert!(matches!(
            select_model(Some(model.clone()), None),
            Err(BenchmarkError::ModelNotFound { .. })
        ));
        std::fs::write(&model, b"").expect("write");
        assert_eq!(
            select_model(Some(model.clone()), None).expect("selects"),
            ModelSelection::Path(model)
        );
    }

    #[test]
    fn the_worker_model_is_used_when_it_is_on_this_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"").expect("write");
        let file = node_file(dir.path(), &format!("path: {}", model.display()));
        assert_eq!(
            select_model(None, Some(&file)).expect("selects"),
            ModelSelection::Path(model)
        );
    }

    #[test]
    fn no_model_is_a_reason_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reason = |selection| match selection {
            ModelSelection::None { reason } => reason,
            other => panic!("expected no model, got {other:?}"),
        };
        assert!(reason(select_model(None, None).expect("ok")).contains("--model"));
        let file = node_file(dir.path(), "path: /models/absent.gguf");
        let why = reason(select_model(None, Some(&file)).expect("ok"));
        assert!(
            why.contains("/models/absent.gguf") && why.contains("garage-models"),
            "{why}"
        );
        let file = node_file(
            dir.path(),
            "huggingFace:\n        repo: HuggingFaceTB/SmolLM2-135M-Instruct",
        );
        let why = reason(select_model(None, Some(&file)).expect("ok"));
        assert!(
            why.contains("HuggingFaceTB/SmolLM2-135M-Instruct@main"),
            "{why}"
        );
    }

    #[test]
    fn a_quick_run_on_the_cpu_fills_every_section() {
        let options = BenchmarkOptions {
            quick: true,
            model: ModelSelection::None {
                reason: "test".into(),
            },
            device: DeviceChoice::Cpu,
        };
        let steps = std::sync::Mutex::new(Vec::new());
        let report = run(&options, &|step| {
            steps.lock().expect("lock").push(step.to_owned());
        })
        .expect("runs");
        assert_eq!(report.schema_version, SCHEMA_VERSION);
        assert_eq!(report.compute.backend, BackendKind::Cpu);
        assert!(report.compute.memory_bandwidth.gb_per_s > 0.0);
        assert!(report.compute.matmul_f32.gflop_per_s > 0.0);
        assert_eq!(report.gpus.is_empty(), report.no_gpu_reason.is_some());
        assert!(matches!(report.inference, InferenceReport::Skipped { .. }));
        assert!(steps.lock().expect("lock").len() >= 4);
    }
}
