//! Command-line flags of `garage benchmark`, for `main.rs` to flatten into
//! its subcommand, model selection and printing; the run itself is
//! [`crate::benchmark::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use super::{select_model, BenchmarkError, BenchmarkOptions};
use crate::inference::cli::DeviceArg;
use crate::inference::hub::ModelRef;

/// Flags of `garage benchmark`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchmarkArgs {
    /// Print the report as JSON (for the coordinator) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Small sizes and few repetitions: seconds, rougher figures.
    #[arg(long)]
    pub quick: bool,
    /// The model to time: a Hugging Face directory or a .gguf file, or a
    /// hub repository (hf:owner/name[/file.gguf][@revision], fetched as the
    /// worker does); default: the worker's model in --file, when it is on
    /// this host.
    #[arg(long)]
    pub model: Option<ModelRef>,
    /// Cache for models fetched from the hub (default: $HF_HOME/hub or
    /// ~/.cache/huggingface/hub).
    #[arg(long, env = "GARAGE_MODEL_CACHE")]
    pub model_cache: Option<PathBuf>,
    /// The node spec whose worker model is timed when --model is absent.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Compute device: CUDA when built with it and a driver is present, else CPU.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceArg,
}

/// Why `garage benchmark` printed no report.
#[derive(Debug, thiserror::Error)]
pub enum BenchmarkCommandError {
    #[error(transparent)]
    Benchmark(#[from] BenchmarkError),
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl BenchmarkArgs {
    /// Measures on a blocking thread, progress on stderr, and prints the
    /// report on stdout (JSON with `--json`, else a table).
    pub async fn run(self) -> Result<ExitCode, BenchmarkCommandError> {
        let options = self.options().await?;
        let measured = tokio::task::spawn_blocking(move || {
            super::run(&options, &|step| eprintln!("==> {step}"))
        })
        .await??;
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&measured).unwrap_or_default()
            );
        } else {
            print!("{}", measured.render());
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The options these flags ask for; fails when --model does not exist
    /// or cannot be fetched, or --file is not a valid node spec.
    pub async fn options(&self) -> Result<BenchmarkOptions, BenchmarkError> {
        let model = select_model(
            self.model.clone(),
            self.model_cache.clone(),
            self.file.as_deref(),
        )
        .await?;
        Ok(BenchmarkOptions {
            quick: self.quick,
            model,
            device: self.device.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::benchmark::ModelSelection;
    use crate::inference::backend::DeviceChoice;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        benchmark: BenchmarkArgs,
    }

    #[tokio::test]
    async fn flags_become_options() {
        let cli = Cli::try_parse_from(["benchmark", "--json", "--quick", "--device", "cpu"])
            .expect("parses");
        assert!(cli.benchmark.json);
        let options = cli.benchmark.options().await.expect("options");
        assert!(options.quick);
        assert_eq!(options.device, DeviceChoice::Cpu);
        assert!(matches!(options.model, ModelSelection::None { .. }));
        let cli = Cli::try_parse_from(["benchmark"]).expect("parses");
        assert_eq!(
            cli.benchmark.options().await.expect("options").device,
            DeviceChoice::Auto
        );
        let cli = Cli::try_parse_from([
            "benchmark",
            "--model",
            "hf:HuggingFaceTB/SmolLM2-135M-Instruct",
        ])
        .expect("parses");
        assert!(matches!(cli.benchmark.model, Some(ModelRef::Hub(_))));
        assert!(Cli::try_parse_from(["benchmark", "--model", "hf:no-owner"]).is_err());
        assert!(Cli::try_parse_from(["benchmark", "--device", "tpu"]).is_err());
    }
}
