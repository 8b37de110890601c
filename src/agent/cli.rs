//! Flags and output of the agent's commands, flattened into the binary's top
//! level: `garage run` (the agent, until a stop signal) and `garage status`
//! (a running agent's status, read over its HTTP endpoint).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use super::{AgentError, SpecOrigin};
use crate::gitops::{self, GitSource};
use crate::reconcile::NodeStatus;
use crate::spec::{self, SpecError};

/// The agent's commands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run the agent: watch the spec and the engine, converge continuously.
    /// Without --file it uses ./node.yaml, written from the embedded default
    /// example when missing; with --git it follows a fleet repository.
    Run {
        #[arg(short = 'f', long = "file", conflicts_with = "git")]
        file: Option<PathBuf>,
        /// The node's state directory (its identity for the coordinator, a
        /// git spec's repository); default: .garage next to the spec file
        /// (in the current directory for --git).
        #[arg(long, env = "GARAGE_STATE_DIR")]
        state_dir: Option<PathBuf>,
        #[command(flatten)]
        git: GitArgs,
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

/// `garage run --git`: the spec from a fleet repository.
#[derive(Debug, clap::Args)]
pub struct GitArgs {
    /// The fleet repository (https://, ssh://, git://, file:// or a path):
    /// the agent fetches it every --poll and converges to the node's file
    /// at the ref's newest commit.
    #[arg(long)]
    git: Option<String>,
    /// The branch, tag or commit to follow.
    #[arg(long = "ref", default_value = "main", requires = "git")]
    reference: String,
    /// The node's file in the repository; {name} is the node's name.
    /// fleet.yaml at the root, when there is one, holds the defaults.
    #[arg(long, default_value = gitops::source::DEFAULT_NODE_PATH, requires = "git")]
    path: String,
    /// The node's name (default: the host's name).
    #[arg(long, requires = "git")]
    node: Option<String>,
    /// How often the repository is fetched.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, requires = "git")]
    poll: Duration,
    /// Apply only commits signed by an SSH key this file lists (git's
    /// allowed signers format).
    #[arg(long, requires = "git")]
    allowed_signers: Option<PathBuf>,
}

impl GitArgs {
    fn source(self) -> Option<GitSource> {
        let url = self.git?;
        Some(GitSource {
            url,
            reference: self.reference,
            node: self.node.unwrap_or_else(host_name),
            path: self.path,
            poll: self.poll,
            allowed_signers: self.allowed_signers,
        })
    }
}

/// The host's name, as the kernel has it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "node".into())
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
            AgentCommand::Run {
                file,
                state_dir,
                git,
            } => {
                let origin = match (git.source(), file) {
                    (Some(git), _) => SpecOrigin::Git(git),
                    (None, Some(file)) => SpecOrigin::File(file),
                    (None, None) => SpecOrigin::File(
                        super::ensure_default_spec(Path::new("node.yaml"))
                            .map_err(AgentCommandError::DefaultSpec)?,
                    ),
                };
                let state_dir = state_dir.unwrap_or_else(|| match &origin {
                    SpecOrigin::File(file) => crate::spec::default_state_dir(file),
                    SpecOrigin::Git(_) => PathBuf::from(".garage"),
                });
                run_agent(&origin, &state_dir, stop).await?;
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
    origin: &SpecOrigin,
    state_dir: &Path,
    stop: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let cancel = CancellationToken::new();
    let agent = super::run(origin, state_dir, cancel.clone());
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
