//! `garage account create|list|revoke` (admin) and `balance|transfers`
//! (the client's own, by API key): the flags, and what each does through a
//! running coordinator's API. Output is returned as
//! text for `main.rs` to print; the API key is printed once, on stdout.

use std::fmt::Write as _;

use super::client::AccountsClient;
use crate::coordinator::bearer_client::{AdminArgs, BearerClientError, Output};
use crate::coordinator::ledger::cli::{own_balance, own_transfers, OwnAccountArgs};

/// `garage account …`.
#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Make a client account and print its API key (only this once) on stdout.
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// A unique name: 1-64 of a-z, 0-9, '.', '_', '-'.
        name: String,
        /// Where its gateway requests are served by default: EU, country
        /// codes (SE) or Swedish price areas (SE3), comma-separated.
        #[arg(long)]
        residency: Option<String>,
    },
    /// List client accounts (never their keys).
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke an account's API key by its id (the part between gk_ and the
    /// second underscore).
    Revoke {
        #[command(flatten)]
        admin: AdminArgs,
        id: String,
    },
    /// Your account's GAI balance (by your API key).
    Balance {
        #[command(flatten)]
        own: OwnAccountArgs,
    },
    /// Your account's transfers, newest first (by your API key).
    Transfers {
        #[command(flatten)]
        own: OwnAccountArgs,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Runs one `garage account` subcommand.
pub async fn run(command: AccountCommand) -> Result<Output, BearerClientError> {
    match command {
        AccountCommand::Create {
            admin,
            name,
            residency,
        } => {
            let made = AccountsClient::new(admin.client()?)
                .create(&name, residency.as_deref())
                .await?;
            Ok(Output {
                stdout: format!("{}\n", made.api_key),
                stderr: format!(
                    "account {} ({}): its API key is shown only now. Give it to the client in a \
                     file (garage job … --api-key-file FILE, mode 0600) or as GARAGE_API_KEY, \
                     not on a command line.\n",
                    made.view.name, made.view.id
                ),
            })
        }
        AccountCommand::List { admin } => {
            let client = AccountsClient::new(admin.client()?);
            let mut out = String::from(
                "ID                NAME                             CREATED                   STATE\n",
            );
            let mut next: Option<String> = None;
            loop {
                let page = client.list(next.as_deref()).await?;
                for a in &page.accounts {
                    let _ = writeln!(
                        out,
                        "{:<17} {:<32} {:<25} {}",
                        a.id, a.name, a.created_at, a.state
                    );
                }
                match page.continue_token {
                    Some(token) => next = Some(token),
                    None => break,
                }
            }
            Ok(Output {
                stdout: out,
                stderr: String::new(),
            })
        }
        AccountCommand::Balance { own } => own_balance(&own).await,
        AccountCommand::Transfers { own, limit } => own_transfers(&own, limit).await,
        AccountCommand::Revoke { admin, id } => {
            AccountsClient::new(admin.client()?).revoke(&id).await?;
            Ok(Output {
                stdout: String::new(),
                stderr: format!("revoked account {id}\n"),
            })
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
        command: AccountCommand,
    }

    #[test]
    fn the_admin_token_is_no_command_line_value() {
        let cli = Cli::try_parse_from(["account", "create", "alice"]).expect("parses");
        assert!(matches!(cli.command, AccountCommand::Create { name, .. } if name == "alice"));
        assert!(Cli::try_parse_from(["account", "create", "alice", "--admin-token", "x"]).is_err());
        assert!(Cli::try_parse_from(["account", "revoke"]).is_err());
    }
}
