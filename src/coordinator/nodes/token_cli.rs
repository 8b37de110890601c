//! `garage coordinator token create|list|revoke`: the flags, and what each
//! does through a running coordinator's admin API (the admin token as
//! `bearer_client::AdminArgs` finds it). Output is returned as text for
//! `main.rs` to print.

use std::fmt::Write as _;
use std::time::Duration;

use uuid::Uuid;

use super::api::{CreateJoinTokenRequest, JoinTokenCreated, JoinTokenList};
use super::join_tokens::{MAX_TTL, MAX_USES};
use crate::coordinator::bearer_client::{page_path, AdminArgs, BearerClientError, Output};

/// Subcommands of `garage coordinator`.
#[derive(Debug, clap::Subcommand)]
pub enum CoordinatorCommand {
    /// Join tokens that admit new nodes (through a running coordinator).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `garage coordinator token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a join token and print it (only this once) on stdout.
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// How long it admits nodes, e.g. 10m, 24h, 30d (at most 365d).
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        ttl: Duration,
        /// How many new nodes it admits.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USES)))]
        uses: u32,
        /// Admit only this node id (needed to bring back a deleted id).
        #[arg(long)]
        node_id: Option<Uuid>,
    },
    /// List join tokens (never their secrets).
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke a join token by its id (the part between gjt_ and the dot).
    Revoke {
        #[command(flatten)]
        admin: AdminArgs,
        id: String,
    },
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = crate::spec::quantity::parse_duration(text)?;
    if ttl < Duration::from_secs(1) || ttl > MAX_TTL {
        return Err(format!("{text} is outside 1s to 365d"));
    }
    Ok(ttl)
}

/// Runs one `garage coordinator` subcommand.
pub async fn run(command: CoordinatorCommand) -> Result<Output, BearerClientError> {
    let CoordinatorCommand::Token { command } = command;
    match command {
        TokenCommand::Create {
            admin,
            ttl,
            uses,
            node_id,
        } => {
            let request = CreateJoinTokenRequest {
                ttl_seconds: Some(ttl.as_secs().max(1)),
                uses: Some(uses),
                node_id,
            };
            let made: JoinTokenCreated = admin
                .client()?
                .post("/api/join-tokens", &request, &[])
                .await?;
            let bound = made
                .view
                .node_id
                .map_or_else(String::new, |id| format!(", only for node {id}"));
            Ok(Output {
                stdout: format!("{}\n", made.token),
                stderr: format!(
                    "join token {}: admits {} new node(s) until {}{bound}. It is shown only now: \
                     give it to the node in a file (garage register --join-token-file FILE) or \
                     as GARAGE_JOIN_TOKEN, not on a command line.\n",
                    made.view.id, made.view.uses_total, made.view.expires_at
                ),
            })
        }
        TokenCommand::List { admin } => {
            let client = admin.client()?;
            let mut out = String::from("ID                NODE                                  USES LEFT  EXPIRES                   STATE\n");
            let mut next: Option<String> = None;
            loop {
                let path = page_path("/api/join-tokens", None, next.as_deref());
                let page: JoinTokenList = client.get(&path).await?;
                for t in &page.tokens {
                    let node = t
                        .node_id
                        .map_or_else(|| "-".to_string(), |id| id.to_string());
                    let uses = format!("{}/{}", t.uses_left, t.uses_total);
                    let _ = writeln!(
                        out,
                        "{:<17} {:<37} {:<10} {:<25} {}",
                        t.id, node, uses, t.expires_at, t.state
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
        TokenCommand::Revoke { admin, id } => {
            admin
                .client()?
                .delete(&format!("/api/join-tokens/{id}"))
                .await?;
            Ok(Output {
                stdout: String::new(),
                stderr: format!("revoked join token {id}\n"),
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
        command: CoordinatorCommand,
    }

    #[test]
    fn create_takes_ttl_uses_and_a_node_id_with_bounds() {
        let cli = Cli::try_parse_from([
            "coordinator",
            "token",
            "create",
            "--ttl",
            "10m",
            "--uses",
            "3",
            "--node-id",
            "00000000-0000-0000-0000-000000000007",
        ])
        .expect("parses");
        let CoordinatorCommand::Token {
            command: TokenCommand::Create {
                ttl, uses, node_id, ..
            },
        } = cli.command
        else {
            panic!("not create: {cli:?}");
        };
        assert_eq!((ttl, uses), (Duration::from_secs(600), 3));
        assert_eq!(node_id, Some(Uuid::from_u128(7)));
        for bad in [["--ttl", "0s"], ["--ttl", "400d"], ["--uses", "0"]] {
            let mut args = vec!["coordinator", "token", "create"];
            args.extend(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
        assert!(
            Cli::try_parse_from(["coordinator", "token", "create", "--admin-token", "x"]).is_err()
        );
    }
}
