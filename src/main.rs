//! The `garage` command: parses arguments, sets up logging and hands each
//! command group to its `cli.rs` in the library. Errors are rendered for
//! people here and nowhere else.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use garage::{agent, benchmark, coordinator, gitops, identity, inference, jobs, node, supervisor};

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
    #[command(flatten)]
    Node(node::cli::NodeCommand),
    #[command(flatten)]
    Agent(agent::cli::AgentCommand),
    #[command(flatten)]
    Identity(identity::cli::IdentityCommand),
    /// Serve a Llama-architecture model over an OpenAI-compatible API
    /// (what the worker container runs).
    Worker(inference::WorkerArgs),
    /// Measure this node: host and GPU facts, memory bandwidth, matmul rate
    /// and the model's tokens/s. Progress on stderr, the report on stdout.
    Benchmark(benchmark::BenchmarkArgs),
    /// A fleet's specs in one directory (fleet.yaml and nodes/NAME.yaml):
    /// render one node's, validate all.
    Fleet {
        #[command(subcommand)]
        command: gitops::cli::FleetCommand,
    },
    /// Jobs: run one in this node's podman host, or submit, follow and
    /// cancel jobs on the network through a coordinator.
    Job {
        #[command(subcommand)]
        command: jobs::cli::JobCommand,
    },
    /// Run the coordinator: node registration, signed heartbeats, nodes and
    /// markets over HTTP (OpenAPI at /api/openapi.json); or, with `token`,
    /// manage the join tokens of a running one.
    Coordinator(coordinator::cli::CoordinatorCli),
    /// Client accounts and their API keys (admin), and your own balance
    /// and transfers (by API key), through a running coordinator.
    Account {
        #[command(subcommand)]
        command: coordinator::accounts::cli::AccountCommand,
    },
    /// Markets' qualification jobs (admin, through a running coordinator).
    Market {
        #[command(subcommand)]
        command: coordinator::qualification::cli::MarketCommand,
    },
    /// The GAI ledger: the public audit, and minting, balances and
    /// transfers of any account (admin).
    Ledger {
        #[command(subcommand)]
        command: coordinator::ledger::cli::LedgerCommand,
    },
    /// Governance: open proposals, vote, list and show them (through a
    /// running coordinator).
    Proposal {
        #[command(subcommand)]
        command: coordinator::governance::cli::ProposalCommand,
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

/// Prints an error with its chain of causes and fails.
fn report(err: &dyn std::error::Error) -> ExitCode {
    eprintln!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    ExitCode::FAILURE
}

fn finish<E: std::error::Error>(result: Result<ExitCode, E>) -> ExitCode {
    result.unwrap_or_else(|err| report(&err))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    gitops::install_tls_provider();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(dispatch(cli.command)),
        Err(err) => report(&err),
    }
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Node(command) => finish(command.run().await),
        Command::Agent(command) => finish(command.run(supervisor::stop_signal()).await),
        Command::Identity(command) => finish(command.run().await),
        Command::Worker(args) => finish(args.run(supervisor::stop_signal()).await),
        Command::Benchmark(args) => finish(args.run().await),
        Command::Fleet { command } => finish(command.run()),
        Command::Job { command } => finish(command.run(supervisor::stop_signal()).await),
        Command::Coordinator(command) => finish(command.run(supervisor::stop_signal()).await),
        Command::Account { command } => finish(
            coordinator::accounts::cli::run(command)
                .await
                .map(|out| out.print()),
        ),
        Command::Market { command } => finish(
            coordinator::qualification::cli::run(command)
                .await
                .map(|out| out.print()),
        ),
        Command::Ledger { command } => finish(
            coordinator::ledger::cli::run(command)
                .await
                .map(|out| out.print()),
        ),
        Command::Proposal { command } => finish(
            coordinator::governance::cli::run(command)
                .await
                .map(|out| out.print()),
        ),
    }
}
