//! `garage proposal create|vote|list|show`: governance through a running
//! coordinator. Create and vote act as an account (`GARAGE_API_KEY` or
//! `--api-key-file`), as the admin (`--admin`: `GARAGE_ADMIN_TOKEN` or
//! `--admin-token-file`) or as a node (`--node`: signed with the identity in
//! `--state-dir`, like `garage api`); list and show need no credentials.
//! Results go to stdout (JSON, or a table for `list`), notes to stderr.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use uuid::Uuid;

use super::api::{
    Choice, MintProposal, NewProposal, ParameterProposal, ProposalKind, ProposalState,
};
use super::client::{GovernanceClient, GovernanceClientError, Voter};
use crate::coordinator::bearer_client::{
    AdminArgs, ApiKeyArgs, BearerClient, BearerClientError, Output,
};
use crate::coordinator::{ClientError, CoordinatorClient};
use crate::identity::{IdentityError, NodeIdentity, KEY_FILE};

/// Who acts: an account, the admin or a node.
#[derive(Debug, Clone, clap::Args)]
pub struct VoterArgs {
    #[command(flatten)]
    pub api: ApiKeyArgs,
    /// Act as the admin (GARAGE_ADMIN_TOKEN or --admin-token-file).
    #[arg(long, conflicts_with = "node")]
    pub admin: bool,
    /// File holding the admin token (with --admin).
    #[arg(long, requires = "admin")]
    pub admin_token_file: Option<PathBuf>,
    /// Act as the node whose identity is in --state-dir (signed requests).
    #[arg(long)]
    pub node: bool,
    /// The node's state directory (with --node).
    #[arg(long, env = "GARAGE_STATE_DIR", default_value = ".garage")]
    pub state_dir: PathBuf,
}

/// Where the coordinator is (reads need nothing else).
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// The coordinator's URL.
    #[arg(
        long = "coordinator",
        env = "GARAGE_COORDINATOR_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    pub url: String,
}

/// `garage proposal …`.
#[derive(Debug, clap::Subcommand)]
pub enum ProposalCommand {
    /// Open a proposal: with --parameter a parameter change, with --mint a
    /// mint, else a signal (text only). Prints the proposal as JSON.
    Create {
        #[command(flatten)]
        voter: VoterArgs,
        /// 1-120 characters.
        #[arg(long)]
        title: String,
        /// At most 8 KiB.
        #[arg(long, default_value = "")]
        description: String,
        /// NAME=VALUE, e.g. networkFeeBasisPoints=300 (see GET /api/parameters).
        #[arg(long, value_parser = parse_parameter, conflicts_with = "mint")]
        parameter: Option<ParameterProposal>,
        /// ACCOUNT=µGAI, e.g. treasury=1000000 (client:<id>, node:<uuid> or treasury).
        #[arg(long, value_parser = parse_mint)]
        mint: Option<MintProposal>,
        /// How long votes are taken, e.g. 2d (1s to 90d; default: the
        /// governance.votingPeriodSeconds parameter).
        #[arg(long, value_parser = parse_period)]
        voting_period: Option<i64>,
        /// RFC 3339: when a passed parameter takes effect (default: the deadline).
        #[arg(long, requires = "parameter")]
        effective_at: Option<String>,
    },
    /// Vote on a proposal; voting again replaces your vote until the deadline.
    Vote {
        #[command(flatten)]
        voter: VoterArgs,
        id: Uuid,
        #[arg(value_parser = parse_choice)]
        choice: Choice,
    },
    /// List proposals, newest first.
    List {
        #[command(flatten)]
        read: ReadArgs,
        /// Only proposals in this state (open, passed, rejected, no_quorum).
        #[arg(long, value_parser = parse_state)]
        state: Option<ProposalState>,
    },
    /// Show one proposal (tally and result) as JSON; with --votes, its votes too.
    Show {
        #[command(flatten)]
        read: ReadArgs,
        id: Uuid,
        #[arg(long)]
        votes: bool,
    },
}

/// Why a proposal command failed.
#[derive(Debug, thiserror::Error)]
pub enum ProposalCliError {
    #[error("there is no node identity in {dir} (fix: pass the node's --state-dir)")]
    NoIdentity { dir: PathBuf },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Node(#[from] ClientError),
    #[error(transparent)]
    Api(#[from] BearerClientError),
    #[error(transparent)]
    Call(#[from] GovernanceClientError),
}

fn parse_parameter(text: &str) -> Result<ParameterProposal, String> {
    let (name, value) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let value = value
        .parse()
        .map_err(|_| format!("{value:?} is not an integer"))?;
    Ok(ParameterProposal {
        name: name.to_string(),
        value,
    })
}

fn parse_mint(text: &str) -> Result<MintProposal, String> {
    let (account, amount) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not ACCOUNT=µGAI"))?;
    let amount_ugai = amount
        .parse()
        .map_err(|_| format!("{amount:?} is not a whole number of µGAI"))?;
    Ok(MintProposal {
        account: account.to_string(),
        amount_ugai,
    })
}

fn parse_period(text: &str) -> Result<i64, String> {
    let period = crate::spec::quantity::parse_duration(text)?;
    if period.subsec_nanos() != 0 {
        return Err(format!("{text} is not whole seconds"));
    }
    i64::try_from(period.as_secs()).map_err(|_| format!("{text} is too long"))
}

fn parse_choice(text: &str) -> Result<Choice, String> {
    Choice::parse(&text.to_ascii_lowercase())
        .ok_or_else(|| format!("{text} is not a choice (yes, no, abstain)"))
}

fn parse_state(text: &str) -> Result<ProposalState, String> {
    ProposalState::parse(&text.to_ascii_lowercase()).ok_or_else(|| {
        format!("{text} is not a proposal state (open, passed, rejected, no_quorum)")
    })
}

impl VoterArgs {
    /// The client acting for this voter.
    fn client(&self) -> Result<GovernanceClient, ProposalCliError> {
        let reader = BearerClient::new(&self.api.url, String::new())?;
        let voter = if self.node {
            if !self.state_dir.join(KEY_FILE).exists() {
                return Err(ProposalCliError::NoIdentity {
                    dir: self.state_dir.clone(),
                });
            }
            let identity = Arc::new(NodeIdentity::load_or_create(&self.state_dir)?);
            Voter::Node(CoordinatorClient::new(&self.api.url, identity)?)
        } else if self.admin {
            let admin = AdminArgs {
                url: self.api.url.clone(),
                admin_token_file: self.admin_token_file.clone(),
            };
            Voter::Bearer(admin.client()?)
        } else {
            Voter::Bearer(self.api.client()?)
        };
        Ok(GovernanceClient::new(reader, Some(voter)))
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}

/// Runs one `garage proposal` subcommand.
pub async fn run(command: ProposalCommand) -> Result<Output, ProposalCliError> {
    match command {
        ProposalCommand::Create {
            voter,
            title,
            description,
            parameter,
            mint,
            voting_period,
            effective_at,
        } => {
            let kind = match (&parameter, &mint) {
                (Some(_), _) => ProposalKind::Parameter,
                (None, Some(_)) => ProposalKind::Mint,
                (None, None) => ProposalKind::Signal,
            };
            let proposal = NewProposal {
                kind,
                title,
                description,
                parameter,
                mint,
                voting_period_seconds: voting_period,
                effective_at,
            };
            let view = voter.client()?.create(&proposal).await?;
            Ok(Output {
                stderr: format!(
                    "==> proposal {} open until {} ({} voters, {} µGAI of voting power)\n",
                    view.proposal_id, view.deadline, view.voters, view.total_power
                ),
                stdout: json(&view),
            })
        }
        ProposalCommand::Vote { voter, id, choice } => {
            let vote = voter.client()?.vote(id, choice).await?;
            let replaced = if vote.replaced > 0 {
                " (replacing the earlier vote)"
            } else {
                ""
            };
            Ok(Output {
                stderr: format!(
                    "==> {} voted {} on proposal {id} with {} µGAI{replaced}\n",
                    vote.voter,
                    vote.choice.as_str(),
                    vote.power
                ),
                stdout: json(&vote),
            })
        }
        ProposalCommand::List { read, state } => {
            let client = GovernanceClient::new(BearerClient::new(&read.url, String::new())?, None);
            let mut out = String::from(
                "PROPOSAL                              STATE      KIND       DEADLINE                  TITLE\n",
            );
            let mut next: Option<String> = None;
            loop {
                let page = client.list(state, next.as_deref()).await?;
                for p in &page.proposals {
                    let _ = writeln!(
                        out,
                        "{:<37} {:<10} {:<10} {:<25} {}",
                        p.proposal_id,
                        p.state.as_str(),
                        p.kind.as_str(),
                        p.deadline,
                        p.title
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
        ProposalCommand::Show { read, id, votes } => {
            let client = GovernanceClient::new(BearerClient::new(&read.url, String::new())?, None);
            let mut stdout = json(&client.get(id).await?);
            if votes {
                let mut all = Vec::new();
                let mut next: Option<String> = None;
                loop {
                    let page = client.votes(id, next.as_deref()).await?;
                    all.extend(page.votes);
                    match page.continue_token {
                        Some(token) => next = Some(token),
                        None => break,
                    }
                }
                stdout.push_str(&json(&all));
            }
            Ok(Output {
                stdout,
                stderr: String::new(),
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
        command: ProposalCommand,
    }

    #[test]
    fn flags_become_a_proposal_and_credentials_are_no_flag_values() {
        let cli = Cli::try_parse_from([
            "proposal",
            "create",
            "--title",
            "Lower the fee",
            "--parameter",
            "networkFeeBasisPoints=300",
            "--voting-period",
            "2s",
            "--admin",
        ])
        .expect("parses");
        let ProposalCommand::Create {
            parameter,
            voting_period,
            voter,
            ..
        } = cli.command
        else {
            panic!("not create");
        };
        assert_eq!(
            parameter,
            Some(ParameterProposal {
                name: "networkFeeBasisPoints".into(),
                value: 300
            })
        );
        assert_eq!(voting_period, Some(2));
        assert!(voter.admin && !voter.node);
        for bad in [
            &["proposal", "create", "--title", "t", "--parameter", "fee"][..],
            &["proposal", "create", "--title", "t", "--admin", "--node"],
            &["proposal", "create", "--title", "t", "--mint", "treasury=x"],
            &["proposal", "vote", "x", "maybe"],
            &["proposal", "vote", &Uuid::nil().to_string(), "perhaps"],
            &["proposal", "list", "--api-key", "gk_x"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let vote = Cli::try_parse_from(["proposal", "vote", &Uuid::nil().to_string(), "YES"])
            .expect("parses");
        assert!(matches!(
            vote.command,
            ProposalCommand::Vote {
                choice: Choice::Yes,
                ..
            }
        ));
    }
}
