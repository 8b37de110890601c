//! Flags and output of the agent's commands, flattened into the binary's top
//! level: `garage run` (the agent, until a stop signal) and `garage status`
//! (a running agent's status, read over its HTTP endpoint).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use super::AgentError;
use crate::reconcile::NodeStatus;
use crate::spec::{self, SpecError};

/// The agent's commands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run the agent: watch the spec and the engine, converge continuously.
    /// Without --file it uses ./node.yaml, written from the embedded default
    /// example when missing.
    Run {
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// The node's state directory (its identity for the coordinator);
        /// default: .garage next to the spec file.
        #[arg(long, env = "GARAGE_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print a running agent's status.
    Status {
        /// The agent's address; defaults to spec.metrics.listen of --file, else 127.0.0.1:9464.
        #[arg(long)]
        url: Option<String>,
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Why an agent command failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentCommandError {
    #[error(transparent)]
    DefaultSpec(std::io::Error),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cannot get the agent's status from {url}: {message} (is `garage run` running? check spec.metrics.listen)")]
    Status { url: String, message: String },
}

impl AgentCommand {
    /// Runs the command; `garage run` stops cleanly when `stop` resolves
    /// (workloads keep running).
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<ExitCode, AgentCommandError> {
        match self {
            AgentCommand::Run { file, state_dir } => {
                let file = match file {
                    Some(file) => file,
                    None => super::ensure_default_spec(Path::new("node.yaml"))
                        .map_err(AgentCommandError::DefaultSpec)?,
                };
                let state_dir = state_dir.unwrap_or_else(|| crate::spec::default_state_dir(&file));
                run_agent(&file, &state_dir, stop).await?;
            }
            AgentCommand::Status { url, file, json } => {
                let url = match (url, file) {
                    (Some(url), _) => url,
                    (None, Some(file)) => format!("http://{}", spec::load(&file)?.metrics_listen()),
                    (None, None) => "http://127.0.0.1:9464".to_string(),
                };
                let status = fetch_status(&url).await?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&status).unwrap_or_default()
                    );
                } else {
                    print!("{}", status.render());
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

async fn run_agent(
    file: &Path,
    state_dir: &Path,
    stop: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let cancel = CancellationToken::new();
    let agent = super::run(file, state_dir, cancel.clone());
    tokio::pin!(agent);
    tokio::select! {
        result = &mut agent => result,
        () = stop => {
            tracing::info!("stop signal received; stopping the agent (workloads keep running)");
            cancel.cancel();
            agent.await
        }
    }
}

/// The status a running agent serves at `base_url` (e.g. `http://127.0.0.1:9464`).
pub async fn fetch_status(base_url: &str) -> Result<NodeStatus, AgentCommandError> {
    let url = format!("{}/status", base_url.trim_end_matches('/'));
    let error = |message: String| AgentCommandError::Status {
        url: url.clone(),
        message,
    };
    let response = reqwest::get(&url).await.map_err(|e| error(e.to_string()))?;
    let response = response
        .error_for_status()
        .map_err(|e| error(e.to_string()))?;
    response
        .json::<NodeStatus>()
        .await
        .map_err(|e| error(e.to_string()))
}
