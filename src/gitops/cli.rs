//! `garage fleet`: render one node's spec from a fleet directory
//! (`fleet.yaml` + `nodes/<name>.yaml`), and validate every node of one.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::fleet::{self, FleetError};

/// The fleet commands.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Print node NAME's spec: fleet.yaml's defaults with nodes/NAME.yaml
    /// merged on (JSON Merge Patch, RFC 7396), validated.
    Render {
        /// The node's name (its file is nodes/NAME.yaml).
        #[arg(long)]
        node: String,
        /// The fleet directory (a checkout of the fleet's repository).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Render and validate every node of the fleet directory; fails when
    /// any node's spec is invalid.
    Validate {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

impl FleetCommand {
    pub fn run(self) -> Result<ExitCode, FleetError> {
        match self {
            FleetCommand::Render { node, dir } => {
                let (text, _) = fleet::render_from_dir(&dir, &node)?;
                print!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            FleetCommand::Validate { dir } => {
                let names = fleet::node_names(&dir)?;
                let mut failed = 0;
                for name in &names {
                    match fleet::render_from_dir(&dir, name) {
                        Ok(_) => println!("{name}: valid"),
                        Err(err) => {
                            failed += 1;
                            println!("{name}: {}", crate::error_text::one_line(&err));
                        }
                    }
                }
                println!("{} of {} nodes valid", names.len() - failed, names.len());
                Ok(if failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
        }
    }
}
