//! The tally sweep, safe on every replica at once: a proposal whose
//! deadline passed is tallied in one transaction that first takes it with
//! a conditional UPDATE (`WHERE state = 'open'`), so exactly one replica
//! tallies it; the same transaction schedules a passed parameter
//! (`parameters::store::schedule_in`) or mints a passed mint
//! (`ledger::store::mint_in`, transfer id `proposal:<id>:mint`), records the
//! result and frees the proposer's open-proposal slot. Storage errors are
//! logged and retried next sweep.

use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::api::{ProposalState, Tally};
use super::store::{proposal_in, tally_in};
use super::tally::decide;
use crate::clock::unix_millis;
use crate::coordinator::ledger::store::mint_in;
use crate::coordinator::ledger::{LedgerAccount, LedgerError};
use crate::coordinator::parameters::store::schedule_in;
use crate::coordinator::parameters::{Parameter, ParameterError};
use crate::coordinator::store::{query_err, Store, StoreError};

/// How often each replica looks for proposals past their deadline.
pub const PERIOD: Duration = Duration::from_millis(250);
/// Proposals tallied per sweep (the rest wait for the next one).
const BATCH: i64 = 100;

/// Why a tally could not be made (it is tried again next sweep).
#[derive(Debug, thiserror::Error)]
pub enum TallyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("proposal {id}: its stored parameter cannot be scheduled")]
    Parameter {
        id: Uuid,
        #[source]
        source: ParameterError,
    },
    #[error("proposal {id}: its stored mint account {account:?} is not a ledger account")]
    MintAccount { id: Uuid, account: String },
    #[error("proposal {id}: minting failed")]
    Mint {
        id: Uuid,
        #[source]
        source: LedgerError,
    },
}

/// A proposal this replica tallied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tallied {
    pub proposal_id: Uuid,
    pub state: ProposalState,
    pub tally: Tally,
    pub reason: String,
}

/// Runs until `cancel` fires.
pub async fn run(store: Store, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match sweep_once(&store, unix_millis()).await {
            Ok(tallied) => {
                for t in &tallied {
                    tracing::info!(proposal_id = %t.proposal_id, state = t.state.as_str(), reason = %t.reason, "proposal tallied");
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, cause = ?std::error::Error::source(&err).map(ToString::to_string), "tally sweep failed; retrying next sweep");
            }
        }
    }
}

/// One sweep at `now_ms`: every proposal this replica tallied.
pub async fn sweep_once(store: &Store, now_ms: i64) -> Result<Vec<Tallied>, TallyError> {
    let rows = sqlx::query(
        "SELECT proposal_id FROM proposals WHERE state = 'open' AND deadline_at <= $1 \
         ORDER BY deadline_at LIMIT $2",
    )
    .bind(now_ms)
    .bind(BATCH)
    .fetch_all(&store.pool)
    .await
    .map_err(query_err("find proposals to tally"))?;
    let mut done = Vec::new();
    for row in &rows {
        let id: String = row
            .try_get(0)
            .map_err(query_err("read a proposal to tally"))?;
        let id = Uuid::parse_str(&id).map_err(|err| super::store::corrupt(&id, err.to_string()))?;
        if let Some(tallied) = tally_one(store, id, now_ms).await? {
            done.push(tallied);
        }
    }
    Ok(done)
}

/// Tallies proposal `id` if it is still open and past its deadline;
/// `None` when another replica did (or it is not due).
pub async fn tally_one(
    store: &Store,
    id: Uuid,
    now_ms: i64,
) -> Result<Option<Tallied>, TallyError> {
    let _turn = store.write_turn().await;
    let mut tx = store.pool.begin().await.map_err(query_err("begin"))?;
    // Takes the row: another replica's tally, or a late vote, waits for
    // this transaction and then finds the proposal no longer open.
    let taken = sqlx::query(
        "UPDATE proposals SET tallied_at = $2 \
         WHERE proposal_id = $1 AND state = 'open' AND deadline_at <= $2",
    )
    .bind(id.to_string())
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(query_err("take a proposal for its tally"))?;
    if taken.rows_affected() != 1 {
        return Ok(None);
    }
    let Some(row) = proposal_in(&mut tx, id).await? else {
        return Ok(None);
    };
    let tally = tally_in(&mut tx, id).await?;
    let decision = decide(&row.frozen, &tally);
    if decision.state == ProposalState::Passed {
        let source = format!("proposal {id}");
        if let (Some(change), Some(at)) = (&row.parameter, row.effective_at_ms) {
            let parameter = Parameter::parse(&change.name)
                .and_then(|p| p.check(change.value).map(|_| p))
                .map_err(|source| TallyError::Parameter { id, source })?;
            schedule_in(&mut tx, &parameter, change.value, at, &source, now_ms).await?;
        }
        if let Some(mint) = &row.mint {
            let account =
                LedgerAccount::parse(&mint.account).ok_or_else(|| TallyError::MintAccount {
                    id,
                    account: mint.account.clone(),
                })?;
            mint_in(
                &mut tx,
                &account,
                mint.amount_ugai,
                &format!("proposal:{id}:mint"),
                &source,
                now_ms,
            )
            .await
            .map_err(|source| TallyError::Mint { id, source })?;
        }
    }
    sqlx::query(
        "UPDATE proposals SET state = $2, yes_power = $3, no_power = $4, abstain_power = $5, \
         result = $6 WHERE proposal_id = $1",
    )
    .bind(id.to_string())
    .bind(decision.state.as_str())
    .bind(tally.yes)
    .bind(tally.no)
    .bind(tally.abstain)
    .bind(decision.reason.clone())
    .execute(&mut *tx)
    .await
    .map_err(query_err("record a tally"))?;
    sqlx::query(
        "UPDATE proposal_proposers SET open_proposals = open_proposals - 1 WHERE proposer = $1",
    )
    .bind(row.proposer.clone())
    .execute(&mut *tx)
    .await
    .map_err(query_err("free a proposer's slot"))?;
    tx.commit().await.map_err(query_err("commit a tally"))?;
    Ok(Some(Tallied {
        proposal_id: id,
        state: decision.state,
        tally,
        reason: decision.reason,
    }))
}
