//! Flags and output of the commands that speak for this node to the
//! coordinator, flattened into the binary's top level: `garage identity`,
//! `garage register` ([`super::register`]) and `garage api`
//! ([`super::api_request`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::api_request::{self, ApiCommandError, ApiRequest, Coordinator};
use super::register::{self, JoinTokenInput, RegisterError};
use super::{IdentityError, NodeIdentity};
use crate::spec::default_state_dir;

/// The identity commands.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Print this node's id for the coordinator, making its identity (id and
    /// ed25519 key, mode 0600) in the state directory when missing.
    Identity {
        #[arg(long, env = "GARAGE_STATE_DIR", default_value = ".garage")]
        state_dir: PathBuf,
    },
    /// Register the node with spec.coordinator.url once (the agent also does
    /// at start); registering again updates its facts.
    Register {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The node's state directory; default: .garage next to the spec file.
        #[arg(long, env = "GARAGE_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// A `garage benchmark --json` report to send (default: benchmark.json
        /// in the state directory, when there is one).
        #[arg(long)]
        benchmark: Option<PathBuf>,
        /// A file holding the join token the coordinator's admin gave you
        /// (needed only for the node's first registration).
        #[arg(long)]
        join_token_file: Option<PathBuf>,
        /// The join token itself; prefer GARAGE_JOIN_TOKEN or --join-token-file,
        /// which other users cannot see in the process list.
        #[arg(long, env = "GARAGE_JOIN_TOKEN", hide_env_values = true)]
        join_token: Option<String>,
    },
    /// Send one request to the coordinator signed with this node's identity
    /// and print the answer's body (the status goes to stderr; exit 1 on
    /// 400 and above), e.g. `garage api -f node.yaml GET /api/nodes`.
    Api {
        /// The node's state directory; default: .garage next to --file, else ./.garage.
        #[arg(long, env = "GARAGE_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// The coordinator's URL (default: spec.coordinator.url of --file, else of ./node.yaml).
        #[arg(long, conflicts_with = "file")]
        coordinator: Option<String>,
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// GET, POST, PUT, PATCH or DELETE.
        method: String,
        /// The path with its query, e.g. /api/nodes?limit=10.
        path: String,
        /// The request body, or @FILE to send FILE's contents.
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
    },
}

/// Why an identity command failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityCommandError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(transparent)]
    Api(#[from] ApiCommandError),
}

impl IdentityCommand {
    /// Runs the command and prints its result on stdout.
    pub async fn run(self) -> Result<ExitCode, IdentityCommandError> {
        match self {
            IdentityCommand::Identity { state_dir } => {
                println!("{}", NodeIdentity::load_or_create(&state_dir)?.node_id());
            }
            IdentityCommand::Register {
                file,
                state_dir,
                benchmark,
                join_token_file,
                join_token,
            } => {
                let state_dir = state_dir.unwrap_or_else(|| default_state_dir(&file));
                let join_token = JoinTokenInput {
                    file: join_token_file,
                    value: join_token,
                };
                let r =
                    register::register(&file, &state_dir, benchmark.as_deref(), join_token).await?;
                println!(
                    "node {} {} at {} in market {}{}",
                    r.node_id,
                    if r.created { "registered" } else { "updated" },
                    r.coordinator,
                    r.market,
                    if r.with_benchmark {
                        ", with its benchmark"
                    } else {
                        ""
                    }
                );
            }
            IdentityCommand::Api {
                state_dir,
                coordinator,
                file,
                method,
                path,
                data,
            } => {
                let (state_dir, coordinator) = Coordinator::from_args(coordinator, file, state_dir);
                let request = ApiRequest { method, path, data };
                let answer = api_request::api(&state_dir, &coordinator, &request).await?;
                eprintln!("HTTP {}", answer.status);
                let mut stdout = std::io::stdout();
                let _ = stdout.write_all(&answer.body);
                if !answer.body.ends_with(b"\n") {
                    let _ = stdout.write_all(b"\n");
                }
                if answer.status >= 400 {
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
