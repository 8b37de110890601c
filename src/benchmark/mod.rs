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
pub mod results;
pub mod saved;

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

pub use self::cli::BenchmarkArgs;
use self::compute::{ComputeLimits, ProbeError};
use self::inference::{InferenceLimits, InferenceProbeError};
pub use self::results::{
    BenchmarkReport, ComputeReport, GpuFacts, InferenceReport, SCHEMA_VERSION,
};
use crate::gpu::{class, telemetry};
use crate::inference::backend::{self, BackendKind, DeviceChoice, OnBackend};
use crate::inference::hub::{self, HubError, HubOptions, ModelRef};
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
    #[error("fetching {model}")]
    Fetch {
        model: String,
        #[source]
        source: Box<HubError>,
    },
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

/// Picks the model: `--model` when given (a path that must exist, or a
/// hub repository, fetched into `model_cache` like the worker does), else
/// the worker's model in the node spec at `node_file` when it is on this
/// host (a path that exists, or a hub model already in this host's cache),
/// else none.
pub async fn select_model(
    model: Option<ModelRef>,
    model_cache: Option<PathBuf>,
    node_file: Option<&Path>,
) -> Result<ModelSelection, BenchmarkError> {
    let hub_options = HubOptions::from_env(model_cache);
    match model {
        Some(ModelRef::Local(path)) if path.exists() => return Ok(ModelSelection::Path(path)),
        Some(ModelRef::Local(path)) => return Err(BenchmarkError::ModelNotFound { path }),
        Some(model) => {
            return hub::resolve(&model, &hub_options)
                .await
                .map(ModelSelection::Path)
                .map_err(|source| BenchmarkError::Fetch {
                    model: model.to_string(),
                    source: Box::new(source),
                })
        }
        None => {}
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
        Some(WorkerModel::Hub { model, volume }) => {
            // Only what is already here: a benchmark does not download the
            // worker's model unless asked to with --model.
            let cached = HubOptions {
                offline: true,
                ..hub_options
            };
            let reference = ModelRef::Hub(model.clone());
            if let Ok(path) = hub::resolve(&reference, &cached).await {
                return Ok(ModelSelection::Path(path));
            }
            format!(
                "the worker's model {model} is fetched into volume {volume} and is not in this \
                 host's cache {}: pass --model PATH, or --model {model} to fetch it",
                cached.cache_dir.display()
            )
        }
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
    let started_at = crate::clock::rfc3339_secs(std::time::SystemTime::now());
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

    #[tokio::test]
    async fn an_explicit_model_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("m.gguf");
        let select = || select_model(Some(ModelRef::Local(model.clone())), None, None);
        assert!(matches!(
            select().await,
            Err(BenchmarkError::ModelNotFound { .. })
        ));
        std::fs::write(&model, b"").expect("write");
        assert_eq!(
            select().await.expect("selects"),
            ModelSelection::Path(model.clone())
        );
    }

    #[tokio::test]
    async fn the_worker_model_is_used_when_it_is_on_this_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"").expect("write");
        let file = node_file(dir.path(), &format!("path: {}", model.display()));
        assert_eq!(
            select_model(None, None, Some(&file))
                .await
                .expect("selects"),
            ModelSelection::Path(model)
        );
    }

    #[tokio::test]
    async fn no_model_is_a_reason_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Some(dir.path().join("hub-cache"));
        let reason = |selection| match selection {
            ModelSelection::None { reason } => reason,
            other => panic!("expected no model, got {other:?}"),
        };
        assert!(reason(select_model(None, None, None).await.expect("ok")).contains("--model"));
        let file = node_file(dir.path(), "path: /models/absent.gguf");
        let why = reason(select_model(None, None, Some(&file)).await.expect("ok"));
        assert!(
            why.contains("/models/absent.gguf") && why.contains("garage-models"),
            "{why}"
        );
        let file = node_file(
            dir.path(),
            "huggingFace:\n        repo: HuggingFaceTB/SmolLM2-135M-Instruct",
        );
        let why = reason(select_model(None, cache, Some(&file)).await.expect("ok"));
        assert!(
            why.contains("hf:HuggingFaceTB/SmolLM2-135M-Instruct@main")
                && why.contains("hub-cache"),
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
