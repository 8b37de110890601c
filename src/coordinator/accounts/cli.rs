//! `garage account create|list|revoke` (admin): the flags, and what each
//! does through a running coordinator's admin API. Output is returned as
//! text for `main.rs` to print; the API key is printed once, on stdout.

use std::fmt::Write as _;

use super::api::{AccountCreated, AccountList, CreateAccountRequest};
use crate::coordinator::bearer_client::{AdminArgs, BearerClientError, Output};

/// `garage account …`.
#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Make a client account and print its API key (only this once) on stdout.
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// A unique name: 1-64 of a-z, 0-9, '.', '_', '-'.
        name: String,
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
}

/// Runs one `garage account` subcommand.
pub async fn run(command: AccountCommand) -> Result<Output, BearerClientError> {
    match command {
        AccountCommand::Create { admin, name } => {
            let made: AccountCreated = admin
                .client()?
                .post("/api/accounts", &CreateAccountRequest { name }, &[])
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
            let client = admin.client()?;
            let mut out = String::from(
                "ID                NAME                             CREATED                   STATE\n",
            );
            let mut next: Option<String> = None;
            loop {
                let path = match &next {
                    Some(token) => format!("/api/accounts?continue={token}"),
                    None => "/api/accounts".to_string(),
                };
                let page: AccountList = client.get(&path).await?;
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
        AccountCommand::Revoke { admin, id } => {
            admin
                .client()?
                .delete(&format!("/api/accounts/{id}"))
                .await?;
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
