//! `garage job submit|get|logs|cancel|list`: jobs on the network, through
//! a coordinator, with an API key from `GARAGE_API_KEY` or
//! `--api-key-file` (never a flag value). `garage job run` (local) is
//! elsewhere. Logs go to stderr as they come; results (job views as JSON,
//! tables) to stdout.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use super::api::{JobState, JobSubmission, JobType, JobView, LogChunk};
use super::client::JobsClient;
use crate::coordinator::bearer_client::{ApiKeyArgs, BearerClientError};

/// How often `--wait` without `--follow` asks for the job's state.
const WAIT_POLL: Duration = Duration::from_secs(1);

/// The network subcommands of `garage job`.
#[derive(Debug, clap::Subcommand)]
pub enum NetworkJobCommand {
    /// Submit a job to a coordinator: FILE is a container job file (as for
    /// `garage job run`) or a submission document (`type`, `job` or
    /// `inference`, `placement`, `timeout`, `expiresAfter`, `maxAttempts`).
    /// Prints the job as JSON; with --wait or --follow, its final state
    /// (exit 0 only when it succeeded).
    Submit {
        #[command(flatten)]
        api: ApiKeyArgs,
        file: PathBuf,
        /// Run only on a node of this market (GPU class, `GET /api/markets`).
        #[arg(long)]
        market: Option<String>,
        /// The same key submits the job only once (retries are safe).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Wait until the job ends.
        #[arg(long)]
        wait: bool,
        /// Stream the job's log to stderr until it ends (implies --wait).
        #[arg(long)]
        follow: bool,
    },
    /// Show one job as JSON (state, reason, history, result).
    Get {
        #[command(flatten)]
        api: ApiKeyArgs,
        id: Uuid,
    },
    /// Print a job's log; with -f, follow it until the job ends.
    Logs {
        #[command(flatten)]
        api: ApiKeyArgs,
        id: Uuid,
        #[arg(short, long)]
        follow: bool,
    },
    /// Cancel a queued or running job.
    Cancel {
        #[command(flatten)]
        api: ApiKeyArgs,
        id: Uuid,
    },
    /// List your jobs, newest first.
    List {
        #[command(flatten)]
        api: ApiKeyArgs,
        /// Only jobs in this state (QUEUED, RUNNING, SUCCEEDED, …).
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
    },
}

fn parse_state(text: &str) -> Result<JobState, String> {
    JobState::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
        format!("{text} is not a job state (QUEUED, RUNNING, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, EXPIRED)")
    })
}

/// Why a job command failed.
#[derive(Debug, thiserror::Error)]
pub enum JobCliError {
    #[error("cannot read the job file {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: Box<crate::spec::SpecError>,
    },
    #[error("{}: not a job file nor a submission document: {message}", file.display())]
    Document { file: PathBuf, message: String },
    #[error(transparent)]
    Api(#[from] BearerClientError),
}

/// The submission a file holds: a container job file is wrapped, a
/// submission document taken as it is; `--market` overrides its placement.
pub fn submission(file: &Path, market: Option<String>) -> Result<JobSubmission, JobCliError> {
    let read = |source| JobCliError::Read {
        file: file.to_owned(),
        source: Box::new(source),
    };
    let text = crate::spec::read_text(file).map_err(read)?;
    let (value, _) =
        crate::document::locate::load(&text, file, &crate::jobs::JOB_FILE).map_err(read)?;
    let document = |message: String| JobCliError::Document {
        file: file.to_owned(),
        message,
    };
    let mut submission: JobSubmission = if value.get("ops").is_some() {
        JobSubmission {
            kind: JobType::Container,
            job: Some(value),
            inference: None,
            placement: Default::default(),
            timeout: None,
            expires_after: None,
            max_attempts: None,
        }
    } else {
        serde_json::from_value(value).map_err(|err| document(err.to_string()))?
    };
    if market.is_some() {
        submission.placement.market = market;
    }
    Ok(submission)
}

fn print_view(view: &JobView) {
    println!("{}", serde_json::to_string_pretty(view).unwrap_or_default());
}

fn write_chunk(chunk: &LogChunk) {
    let _ = std::io::stderr().write_all(chunk.data.as_bytes());
}

/// Runs one network job subcommand; `Ok(false)` when a waited-for job did
/// not succeed.
pub async fn run(command: NetworkJobCommand) -> Result<bool, JobCliError> {
    match command {
        NetworkJobCommand::Submit {
            api,
            file,
            market,
            idempotency_key,
            wait,
            follow,
        } => {
            let submission = submission(&file, market)?;
            let client = JobsClient::new(api.client()?);
            let view = client
                .submit(&submission, idempotency_key.as_deref())
                .await?;
            eprintln!("==> job {} {}", view.job_id, view.state.as_str());
            if !(wait || follow) {
                print_view(&view);
                return Ok(true);
            }
            if follow {
                client.follow(view.job_id, write_chunk).await?;
            } else {
                while !client.get(view.job_id).await?.state.is_final() {
                    tokio::time::sleep(WAIT_POLL).await;
                }
            }
            let done = client.get(view.job_id).await?;
            print_view(&done);
            Ok(done.state == JobState::Succeeded)
        }
        NetworkJobCommand::Get { api, id } => {
            print_view(&JobsClient::new(api.client()?).get(id).await?);
            Ok(true)
        }
        NetworkJobCommand::Logs { api, id, follow } => {
            let client = JobsClient::new(api.client()?);
            if follow {
                let state = client.follow(id, write_chunk).await?;
                eprintln!("==> job {id} {}", state.as_str());
            } else {
                let logs = client.logs(id).await?;
                logs.chunks.iter().for_each(write_chunk);
            }
            Ok(true)
        }
        NetworkJobCommand::Cancel { api, id } => {
            let view = JobsClient::new(api.client()?).cancel(id).await?;
            eprintln!("==> job {id} {}", view.state.as_str());
            Ok(true)
        }
        NetworkJobCommand::List { api, state } => {
            let client = JobsClient::new(api.client()?);
            let mut out = String::from(
                "JOB                                   STATE      TYPE       CREATED                   REASON\n",
            );
            let mut next: Option<String> = None;
            loop {
                let page = client.list(state, next.as_deref()).await?;
                for job in &page.jobs {
                    let _ = writeln!(
                        out,
                        "{:<37} {:<10} {:<10} {:<25} {}",
                        job.job_id,
                        job.state.as_str(),
                        job.kind.as_str(),
                        job.created_at,
                        job.reason
                    );
                }
                match page.continue_token {
                    Some(token) => next = Some(token),
                    None => break,
                }
            }
            print!("{out}");
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: NetworkJobCommand,
    }

    #[test]
    fn the_api_key_is_no_command_line_value() {
        let cli = Cli::try_parse_from(["job", "submit", "j.yaml", "--market", "h100", "--follow"])
            .expect("parses");
        assert!(matches!(
            cli.command,
            NetworkJobCommand::Submit { follow: true, ref market, .. } if market.as_deref() == Some("h100")
        ));
        assert!(Cli::try_parse_from(["job", "get", "x", "--api-key", "gk_x"]).is_err());
        assert!(Cli::try_parse_from(["job", "logs", &Uuid::nil().to_string(), "-f"]).is_ok());
    }

    #[test]
    fn a_job_file_is_wrapped_and_a_submission_taken_as_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = dir.path().join("job.yaml");
        std::fs::write(
            &job,
            "version: \"0.1\"\ntype: container\nops:\n  - type: container/run\n    id: a\n    args:\n      image: busybox\n",
        )
        .expect("write");
        let wrapped = submission(&job, Some("cpu".into())).expect("job file");
        assert_eq!(wrapped.kind, JobType::Container);
        assert_eq!(wrapped.placement.market.as_deref(), Some("cpu"));
        let doc = dir.path().join("infer.json");
        std::fs::write(
            &doc,
            r#"{"type": "inference", "inference": {"model": "m", "prompt": "hi"}, "maxAttempts": 1}"#,
        )
        .expect("write");
        let taken = submission(&doc, None).expect("submission");
        assert_eq!(
            (taken.kind, taken.max_attempts),
            (JobType::Inference, Some(1))
        );
    }
}
