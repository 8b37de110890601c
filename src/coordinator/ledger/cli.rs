//! `garage ledger audit|mint|balance|transfers` (the operator's view:
//! audit is public, the rest need the admin token) and the client's own
//! `garage account balance|transfers` (by API key). Amounts print in GAI
//! with their µGAI.

use std::fmt::Write as _;

use super::api::TransferList;
use super::client::LedgerClient;
use crate::coordinator::accounts::keys::ApiKey;
use crate::coordinator::bearer_client::{
    AdminArgs, ApiKeyArgs, BearerClient, BearerClientError, Output,
};
use crate::coordinator::parameters::names::MICRO_GAI;

/// `garage ledger …`.
#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// The ledger's totals and whether every invariant holds (public);
    /// exits 1 when one breaks.
    Audit {
        /// The coordinator's URL.
        #[arg(
            long,
            env = "GARAGE_COORDINATOR_URL",
            default_value = "http://127.0.0.1:7070"
        )]
        url: String,
    },
    /// Mint GAI into an account (admin).
    Mint {
        #[command(flatten)]
        admin: AdminArgs,
        /// client:<id>, node:<uuid> or treasury.
        account: String,
        /// µGAI (1 GAI = 1000000 µGAI).
        amount_ugai: i64,
        #[arg(long, default_value = "")]
        memo: String,
        /// Names this mint: running the command again with the same key
        /// mints nothing more (default: a new UUID).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Any account's balance (admin).
    Balance {
        #[command(flatten)]
        admin: AdminArgs,
        account: String,
    },
    /// Any account's transfers, newest first (admin).
    Transfers {
        #[command(flatten)]
        admin: AdminArgs,
        account: String,
        /// At most this many (newest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// The client's own ledger account, by its API key.
#[derive(Debug, clap::Args)]
pub struct OwnAccountArgs {
    #[command(flatten)]
    pub key: ApiKeyArgs,
}

impl OwnAccountArgs {
    /// A client with the key, and the ledger account the key names.
    fn open(&self) -> Result<(LedgerClient, String), BearerClientError> {
        let key = self.key.key()?;
        let id = ApiKey::parse(&key)
            .map(|parsed| parsed.id)
            .ok_or(BearerClientError::NoApiKey)?;
        let client = LedgerClient::new(BearerClient::new(&self.key.url, key)?);
        Ok((client, format!("client:{id}")))
    }
}

/// `12.345678 GAI (12345678 µGAI)`.
pub fn gai(ugai: i64) -> String {
    let sign = if ugai < 0 { "-" } else { "" };
    let abs = ugai.unsigned_abs();
    let unit = MICRO_GAI.unsigned_abs();
    format!("{sign}{}.{:06} GAI ({ugai} µGAI)", abs / unit, abs % unit)
}

/// Runs one `garage ledger` subcommand.
pub async fn run(command: LedgerCommand) -> Result<Output, BearerClientError> {
    match command {
        LedgerCommand::Audit { url } => {
            let audit = LedgerClient::new(BearerClient::anonymous(&url)?)
                .audit()
                .await?;
            let mut out = String::new();
            let _ = writeln!(out, "supply       {}", gai(audit.supply_ugai));
            let _ = writeln!(out, "balances     {}", gai(audit.balances_ugai));
            let _ = writeln!(out, "treasury     {}", gai(audit.treasury_ugai));
            let _ = writeln!(
                out,
                "open holds   {} ({})",
                audit.open_holds,
                gai(audit.held_ugai)
            );
            let _ = writeln!(out, "transfers    {}", audit.transfers);
            for invariant in &audit.invariants {
                let mark = if invariant.holds { "ok    " } else { "BROKEN" };
                let _ = writeln!(
                    out,
                    "{mark} {:<28} {}{}",
                    invariant.name,
                    invariant.meaning,
                    if invariant.holds {
                        String::new()
                    } else {
                        format!(" ({} rows)", invariant.breaking)
                    }
                );
            }
            if audit.ok {
                Ok(Output {
                    stdout: out,
                    stderr: String::new(),
                })
            } else {
                Err(BearerClientError::Refused {
                    what: "the ledger audit".into(),
                    status: 200,
                    code: "invariant_broken".into(),
                    message: format!("an invariant does not hold:\n{out}"),
                })
            }
        }
        LedgerCommand::Mint {
            admin,
            account,
            amount_ugai,
            memo,
            idempotency_key,
        } => {
            let key = idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let request = super::api::MintRequest {
                account,
                amount_ugai,
                memo,
            };
            let minted = LedgerClient::new(admin.client()?)
                .mint(&request, &key)
                .await?;
            let note = if minted.minted_now {
                format!(
                    "minted {} into {}\n",
                    gai(amount_ugai),
                    minted.balance.account
                )
            } else {
                format!("idempotency key {key} minted before; nothing was minted now\n")
            };
            Ok(Output {
                stdout: format!("{}\n", gai(minted.balance.balance_ugai)),
                stderr: note,
            })
        }
        LedgerCommand::Balance { admin, account } => {
            balance(&LedgerClient::new(admin.client()?), &account).await
        }
        LedgerCommand::Transfers {
            admin,
            account,
            limit,
        } => transfers(&LedgerClient::new(admin.client()?), &account, limit).await,
    }
}

/// `garage account balance`: the caller's own balance.
pub async fn own_balance(args: &OwnAccountArgs) -> Result<Output, BearerClientError> {
    let (client, account) = args.open()?;
    balance(&client, &account).await
}

/// `garage account transfers`: the caller's own transfers.
pub async fn own_transfers(
    args: &OwnAccountArgs,
    limit: usize,
) -> Result<Output, BearerClientError> {
    let (client, account) = args.open()?;
    transfers(&client, &account, limit).await
}

async fn balance(client: &LedgerClient, account: &str) -> Result<Output, BearerClientError> {
    let view = client.balance(account).await?;
    Ok(Output {
        stdout: format!("{}\n", gai(view.balance_ugai)),
        stderr: format!("{}:\n", view.account),
    })
}

async fn transfers(
    client: &LedgerClient,
    account: &str,
    limit: usize,
) -> Result<Output, BearerClientError> {
    let mut out = String::from(
        "AT                        KIND    AMOUNT µGAI  FROM → TO                                            MEMO\n",
    );
    let mut shown = 0;
    let mut next: Option<String> = None;
    while shown < limit {
        let page: TransferList = client.transfers(account, next.as_deref()).await?;
        for t in page.transfers.iter().take(limit - shown) {
            let _ = writeln!(
                out,
                "{:<25} {:<7} {:>12}  {} → {}  {}",
                t.at, t.kind, t.amount_ugai, t.debit, t.credit, t.memo
            );
            shown += 1;
        }
        match page.continue_token {
            Some(token) if shown < limit => next = Some(token),
            _ => break,
        }
    }
    Ok(Output {
        stdout: out,
        stderr: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_in_gai_with_their_micro_units() {
        assert_eq!(gai(12_345_678), "12.345678 GAI (12345678 µGAI)");
        assert_eq!(gai(5), "0.000005 GAI (5 µGAI)");
        assert_eq!(gai(-1_000_000), "-1.000000 GAI (-1000000 µGAI)");
    }
}
