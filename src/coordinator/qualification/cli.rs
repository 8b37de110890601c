//! `garage market qualification set|get|delete MARKET` (admin): a market's
//! qualification through a running coordinator's admin API. Output is
//! returned as text for `main.rs` to print.

use super::api::{MarketQualification, Qualification};
use crate::coordinator::bearer_client::{AdminArgs, BearerClientError, Output};

/// `garage market …`.
#[derive(Debug, clap::Subcommand)]
pub enum MarketCommand {
    /// The job a node of a market must pass before it takes the market's jobs.
    Qualification {
        #[command(subcommand)]
        command: QualificationCommand,
    },
}

/// `garage market qualification …`.
#[derive(Debug, clap::Subcommand)]
pub enum QualificationCommand {
    /// Set (or replace) MARKET's qualification; nodes that passed before stay qualified.
    Set {
        #[command(flatten)]
        admin: AdminArgs,
        market: String,
        /// The model the node's worker answers with.
        #[arg(long)]
        model: String,
        /// The prompt, answered greedily.
        #[arg(long)]
        prompt: String,
        /// Text the answer must start with or contain.
        #[arg(long)]
        expected: String,
        /// 1 to 4096.
        #[arg(long, default_value_t = 16)]
        max_tokens: u32,
        /// Completion tokens per second from the lease grant to the complete.
        #[arg(long)]
        min_tokens_per_second: f64,
    },
    /// Print MARKET's qualification as JSON.
    Get {
        #[command(flatten)]
        admin: AdminArgs,
        market: String,
    },
    /// Remove MARKET's qualification: its nodes take its jobs again.
    Delete {
        #[command(flatten)]
        admin: AdminArgs,
        market: String,
    },
}

/// Runs one `garage market` subcommand.
pub async fn run(command: MarketCommand) -> Result<Output, BearerClientError> {
    let MarketCommand::Qualification { command } = command;
    let path = |market: &str| format!("/api/markets/{market}/qualification");
    match command {
        QualificationCommand::Set {
            admin,
            market,
            model,
            prompt,
            expected,
            max_tokens,
            min_tokens_per_second,
        } => {
            let body = Qualification {
                model,
                prompt,
                expected,
                max_tokens,
                min_tokens_per_second,
            };
            let set: MarketQualification = admin.client()?.put(&path(&market), &body).await?;
            Ok(Output {
                stdout: json_line(&set),
                stderr: format!("market {market}: nodes take its jobs once they pass this\n"),
            })
        }
        QualificationCommand::Get { admin, market } => {
            let got: MarketQualification = admin.client()?.get(&path(&market)).await?;
            Ok(Output {
                stdout: json_line(&got),
                stderr: String::new(),
            })
        }
        QualificationCommand::Delete { admin, market } => {
            admin.client()?.delete(&path(&market)).await?;
            Ok(Output {
                stdout: String::new(),
                stderr: format!("market {market} has no qualification now\n"),
            })
        }
    }
}

fn json_line(value: &MarketQualification) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}
