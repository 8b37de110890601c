//! Flags and output of the node commands (`garage validate|schema|plan|apply|down`),
//! flattened into the binary's top level; the work is in [`super`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::NodeCommandError;
use crate::spec;

/// The node commands.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Check a node spec; exit 0 when valid (warnings, if any, on stderr), 1 with the error's file:line:column when not.
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
        #[arg(long, default_value = "120s", value_parser = crate::spec::quantity::parse_duration)]
        timeout: Duration,
    },
    /// Remove every container this node owns.
    // Listed after the agent's `run` and `status` in `garage --help`, where
    // it stood before the commands were grouped (ties sort by name).
    #[command(display_order = 8)]
    Down {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

impl NodeCommand {
    /// Runs the command and prints its result on stdout.
    pub async fn run(self) -> Result<ExitCode, NodeCommandError> {
        match self {
            NodeCommand::Validate { file } => {
                let spec = spec::load(&file)?;
                for warning in spec.warnings() {
                    eprintln!("{warning}");
                }
                println!(
                    "{}: valid (node {}, generation {})",
                    file.display(),
                    spec.name(),
                    spec.generation()
                );
            }
            NodeCommand::Schema => {
                let schema = spec::schema();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&schema).unwrap_or_default()
                );
            }
            NodeCommand::Plan { file } => {
                let plan = super::plan_file(&file).await?;
                print!("{plan}");
                if !plan.is_empty() {
                    return Ok(ExitCode::from(2));
                }
            }
            NodeCommand::Apply {
                file,
                wait,
                timeout,
            } => {
                let report = super::apply(&file, wait, timeout).await?;
                print!("{}", report.plan);
                if wait {
                    print!("\n{}", report.status.render());
                }
            }
            NodeCommand::Down { file } => {
                let count = super::down(&file).await?;
                println!("removed {count} container(s)");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
