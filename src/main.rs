//! The `garage` command: parses arguments, sets up logging and hands over
//! to the library. Errors are rendered for people here and nowhere else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use garage::commands::{self, CommandError};

#[derive(Debug, Parser)]
#[command(
    name = "garage",
    version,
    about = "Garage AI node agent: converge this Docker host to node.yaml"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "GARAGE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a node spec; exit 0 when valid, 1 with the error's file:line:column when not.
    Validate { file: PathBuf },
    /// Print the JSON Schema of node.yaml.
    Schema,
    /// Show what apply would change and why; exit 0 nothing to do, 2 changes pending, 1 error.
    Plan {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Converge the engine to the spec once.
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Wait until every component runs (and is healthy where checked).
        #[arg(long)]
        wait: bool,
        /// Give up after this long (e.g. 90s, 5m).
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
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
    /// Remove every container this node owns.
    Down {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
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
    /// Serve a Llama-architecture model over an OpenAI-compatible API
    /// (what the worker container runs).
    Worker {
        #[command(flatten)]
        args: garage::inference::WorkerArgs,
    },
    /// Measure this node: host and GPU facts, memory bandwidth, matmul rate
    /// and the model's tokens/s. Progress on stderr, the report on stdout.
    Benchmark {
        #[command(flatten)]
        args: garage::benchmark::BenchmarkArgs,
    },
    /// Container jobs in the node's podman host.
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Run the coordinator: node registration, signed heartbeats, nodes and
    /// markets over HTTP (OpenAPI at /api/openapi.json); or, with `token`,
    /// manage the join tokens of a running one.
    Coordinator {
        #[command(flatten)]
        args: garage::coordinator::CoordinatorArgs,
        #[command(subcommand)]
        command: Option<garage::coordinator::nodes::token_cli::CoordinatorCommand>,
    },
    /// Client accounts and their API keys (admin, through a running coordinator).
    Account {
        #[command(subcommand)]
        command: garage::coordinator::accounts::cli::AccountCommand,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Prints an error with its chain of causes.
fn report(err: &dyn std::error::Error) {
    eprintln!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            report(&err);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Validate { file } => match garage::spec::load(&file) {
            Ok(spec) => {
                println!(
                    "{}: valid (node {}, generation {})",
                    file.display(),
                    spec.name(),
                    spec.generation()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                report(&err);
                ExitCode::FAILURE
            }
        },
        Command::Schema => {
            let schema = garage::spec::schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Command::Plan { file } => match commands::plan_file(&file).await {
            Ok(plan) => {
                print!("{plan}");
                if plan.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(err) => failed(&err),
        },
        Command::Apply {
            file,
            wait,
            timeout,
        } => match commands::apply(&file, wait, timeout).await {
            Ok(report) => {
                print!("{}", report.plan);
                if wait {
                    print!("\n{}", report.status.render());
                }
                ExitCode::SUCCESS
            }
            Err(err) => failed(&err),
        },
        Command::Run { file, state_dir } => {
            let file = match file {
                Some(file) => file,
                None => match garage::agent::ensure_default_spec(std::path::Path::new("node.yaml"))
                {
                    Ok(file) => file,
                    Err(err) => {
                        report(&err);
                        return ExitCode::FAILURE;
                    }
                },
            };
            let state_dir = state_dir.unwrap_or_else(|| garage::agent::default_state_dir(&file));
            run_agent(file, state_dir).await
        }
        Command::Status { url, file, json } => {
            let url = match (url, file) {
                (Some(url), _) => url,
                (None, Some(file)) => match garage::spec::load(&file) {
                    Ok(spec) => format!("http://{}", spec.metrics_listen()),
                    Err(err) => return failed(&CommandError::from(err)),
                },
                (None, None) => "http://127.0.0.1:9464".to_string(),
            };
            match commands::fetch_status(&url).await {
                Ok(status) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&status).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(status) => {
                    print!("{}", status.render());
                    ExitCode::SUCCESS
                }
                Err(err) => failed(&err),
            }
        }
        Command::Down { file } => match commands::down(&file).await {
            Ok(count) => {
                println!("removed {count} container(s)");
                ExitCode::SUCCESS
            }
            Err(err) => failed(&err),
        },
        Command::Identity { state_dir } => match commands::identity(&state_dir) {
            Ok(id) => {
                println!("{id}");
                ExitCode::SUCCESS
            }
            Err(err) => failed(&err),
        },
        Command::Register {
            file,
            state_dir,
            benchmark,
            join_token_file,
            join_token,
        } => {
            let state_dir = state_dir.unwrap_or_else(|| garage::agent::default_state_dir(&file));
            let join_token = commands::JoinTokenInput {
                file: join_token_file,
                value: join_token,
            };
            match commands::register(&file, &state_dir, benchmark.as_deref(), join_token).await {
                Ok(r) => {
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
                    ExitCode::SUCCESS
                }
                Err(err) => failed(&err),
            }
        }
        Command::Api {
            state_dir,
            coordinator,
            file,
            method,
            path,
            data,
        } => {
            let (state_dir, coordinator) =
                commands::api::Coordinator::from_args(coordinator, file, state_dir);
            let request = commands::api::ApiRequest { method, path, data };
            match commands::api::api(&state_dir, &coordinator, &request).await {
                Ok(answer) => {
                    use std::io::Write;
                    eprintln!("HTTP {}", answer.status);
                    let mut stdout = std::io::stdout();
                    let _ = stdout.write_all(&answer.body);
                    if !answer.body.ends_with(b"\n") {
                        let _ = stdout.write_all(b"\n");
                    }
                    if answer.status >= 400 {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(err) => {
                    report(&err);
                    ExitCode::FAILURE
                }
            }
        }
        Command::Job { command } => job_command(command).await,
        Command::Account { command } => {
            match garage::coordinator::accounts::cli::run(command).await {
                Ok(output) => {
                    eprint!("{}", output.stderr);
                    print!("{}", output.stdout);
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    report(&err);
                    ExitCode::FAILURE
                }
            }
        }
        Command::Benchmark { args } => benchmark(args).await,
        Command::Coordinator {
            command: Some(command),
            ..
        } => match garage::coordinator::nodes::token_cli::run(command).await {
            Ok(output) => {
                eprint!("{}", output.stderr);
                print!("{}", output.stdout);
                ExitCode::SUCCESS
            }
            Err(err) => {
                report(&err);
                ExitCode::FAILURE
            }
        },
        Command::Coordinator {
            args,
            command: None,
        } => {
            let config = garage::coordinator::CoordinatorConfig::from(args);
            match garage::coordinator::serve(config, wait_for_stop_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    report(&err);
                    ExitCode::FAILURE
                }
            }
        }
        Command::Worker { args } => {
            let config = garage::inference::WorkerConfig::from(args);
            match garage::inference::serve(config, wait_for_stop_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    report(&err);
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn failed(err: &CommandError) -> ExitCode {
    report(err);
    ExitCode::FAILURE
}

async fn benchmark(args: garage::benchmark::BenchmarkArgs) -> ExitCode {
    let options = match args.options().await {
        Ok(options) => options,
        Err(err) => {
            report(&err);
            return ExitCode::FAILURE;
        }
    };
    let run = tokio::task::spawn_blocking(move || {
        garage::benchmark::run(&options, &|step| eprintln!("==> {step}"))
    })
    .await;
    match run {
        Ok(Ok(measured)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&measured).unwrap_or_default()
                );
            } else {
                print!("{}", measured.render());
            }
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            report(&err);
            ExitCode::FAILURE
        }
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

async fn run_agent(file: PathBuf, state_dir: PathBuf) -> ExitCode {
    let cancel = CancellationToken::new();
    let agent = garage::agent::run(&file, &state_dir, cancel.clone());
    tokio::pin!(agent);
    let result = tokio::select! {
        result = &mut agent => result,
        () = wait_for_stop_signal() => {
            tracing::info!("stop signal received; stopping the agent (workloads keep running)");
            cancel.cancel();
            agent.await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

// --- jobs section (owned by src/jobs) ---

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Run a job file in the node's podman host; logs stream to stderr, the
    /// result is printed as JSON. Exit 0 succeeded, 1 failed, timed out or refused.
    Run {
        file: PathBuf,
        /// The node spec naming the podman host.
        #[arg(long = "node-file", default_value = "node.yaml")]
        node_file: PathBuf,
        /// The node's state directory, holding its job-slot locks (default
        /// `.garage` next to the node file, as `garage run` uses).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Check a job file; exit 0 when valid, 1 with the error's file:line:column when not.
    Validate { file: PathBuf },
    /// Print the JSON Schema of job files.
    Schema,
    #[command(flatten)]
    Network(garage::coordinator::jobs::cli::NetworkJobCommand),
}

async fn job_command(command: JobCommand) -> ExitCode {
    use garage::jobs::runner::RunEvent;
    use std::io::Write;
    match command {
        JobCommand::Validate { file } => match garage::jobs::load(&file) {
            Ok(job) => {
                println!(
                    "{}: valid (job {}, {} op(s))",
                    file.display(),
                    job.name,
                    job.ops.len()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                report(&err);
                ExitCode::FAILURE
            }
        },
        JobCommand::Network(command) => match garage::coordinator::jobs::cli::run(command).await {
            Ok(succeeded) => ExitCode::from(u8::from(!succeeded)),
            Err(err) => {
                report(&err);
                ExitCode::FAILURE
            }
        },
        JobCommand::Schema => {
            let schema = garage::jobs::schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        JobCommand::Run {
            file,
            node_file,
            state_dir,
        } => {
            let state_dir =
                state_dir.unwrap_or_else(|| garage::agent::default_state_dir(&node_file));
            let observer = |event: RunEvent<'_>| match event {
                RunEvent::Progress(text) => eprintln!("==> {text}"),
                RunEvent::Log { chunk, .. } => {
                    let _ = std::io::stderr().write_all(&chunk.bytes);
                }
            };
            let cancel = CancellationToken::new();
            let run =
                garage::jobs::command::run_file(&file, &node_file, &state_dir, &observer, &cancel);
            tokio::pin!(run);
            let result = tokio::select! {
                result = &mut run => result,
                () = wait_for_stop_signal() => {
                    eprintln!("==> stop signal: killing the job and cleaning up");
                    cancel.cancel();
                    run.await
                }
            };
            match result {
                Ok(job) => {
                    println!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
                    if job.status == garage::jobs::JobStatus::Succeeded {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!(
                            "error: job {}: {}",
                            job.status.as_str(),
                            job.reason.as_deref().unwrap_or("")
                        );
                        ExitCode::FAILURE
                    }
                }
                Err(err) => {
                    report(&err);
                    ExitCode::FAILURE
                }
            }
        }
    }
}
