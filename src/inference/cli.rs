//! Command-line flags of `garage worker`, for `main.rs` to flatten into its
//! subcommand, and the call that serves until a stop signal; the worker
//! itself is [`crate::inference::serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::backend::DeviceChoice;
use super::hub::ModelRef;
use super::server::{self, WorkerConfig, WorkerError, DEFAULT_PREFILL_CHUNK};

/// `--device` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

/// Flags of `garage worker`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Address the OpenAI-compatible API listens on.
    #[arg(long, env = "GARAGE_WORKER_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,
    /// A Hugging Face model directory or a .gguf file, or a Hugging Face
    /// repository: hf:owner/name[/file.gguf][@revision].
    #[arg(long, env = "GARAGE_WORKER_MODEL")]
    pub model: ModelRef,
    /// Cache for models fetched from the hub (default: $HF_HOME/hub or
    /// ~/.cache/huggingface/hub). HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE
    /// apply as in Hugging Face's tools.
    #[arg(long, env = "GARAGE_MODEL_CACHE")]
    pub model_cache: Option<PathBuf>,
    /// Compute device: CUDA when built with it and a driver is present, else CPU.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceArg,
    /// Sequences decoded together per forward pass.
    #[arg(long, default_value_t = 8)]
    pub max_batch: usize,
    /// Requests waiting for a slot before new ones get 429.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Prompt tokens one forward pass takes while other requests are
    /// generating (a long prompt is fed in chunks instead of stalling
    /// them); 0 feeds every prompt whole.
    #[arg(long, default_value_t = DEFAULT_PREFILL_CHUNK)]
    pub prefill_chunk: usize,
    /// Cap on prompt + completion tokens, and on the positions the worker
    /// allocates for (default: 8192, or the model's context when smaller).
    #[arg(long)]
    pub max_context: Option<usize>,
    /// Model id reported by /v1/models (default: directory or file name).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Directory for CUDA's compiled-kernel cache.
    #[arg(long, env = "GARAGE_WORKER_KERNEL_CACHE")]
    pub kernel_cache: Option<PathBuf>,
}

impl WorkerArgs {
    /// Serves the worker these flags describe until `stop` resolves.
    pub async fn run(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ExitCode, WorkerError> {
        server::serve(WorkerConfig::from(self), stop).await?;
        Ok(ExitCode::SUCCESS)
    }
}

impl From<DeviceArg> for DeviceChoice {
    fn from(arg: DeviceArg) -> Self {
        match arg {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
        }
    }
}

impl From<WorkerArgs> for WorkerConfig {
    fn from(a: WorkerArgs) -> Self {
        WorkerConfig {
            listen: a.listen,
            model: a.model,
            model_cache: a.model_cache,
            device: a.device.into(),
            max_batch: a.max_batch.max(1),
            queue_capacity: a.queue.max(1),
            prefill_chunk: a.prefill_chunk,
            max_context: a.max_context,
            model_name: a.model_name,
            kernel_cache: a.kernel_cache,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        worker: WorkerArgs,
    }

    #[test]
    fn flags_become_a_worker_config() {
        let cli = Cli::try_parse_from([
            "worker",
            "--listen",
            "127.0.0.1:9000",
            "--model",
            "/models/smollm2.gguf",
            "--device",
            "cpu",
            "--max-batch",
            "4",
        ])
        .expect("parses");
        let config = WorkerConfig::from(cli.worker);
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.device, DeviceChoice::Cpu);
        assert_eq!(config.max_batch, 4);
        assert_eq!(config.queue_capacity, 64);
        assert!(Cli::try_parse_from(["worker", "--model", "m", "--device", "tpu"]).is_err());
    }
}
