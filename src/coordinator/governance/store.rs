//! Proposals in the store: opening one (the proposer's open-proposal count,
//! the row with the live quorum and threshold, and the voting power frozen
//! from the ledger, in one transaction), reading one with its tally so far,
//! and listing them newest first.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::api::{
    Choice, MintProposal, ParameterProposal, ProposalKind, ProposalState, ProposalView, Tally,
};
use super::rules::{Action, ValidProposal, MAX_OPEN_PER_PROPOSER};
use super::tally::{quorum_reached, Frozen};
use crate::clock::rfc3339_millis;
use crate::coordinator::store::{query_err, Store, StoreError};

/// The proposer recorded for the admin's proposals.
pub const ADMIN_PROPOSER: &str = "admin";

/// The columns [`proposal_row`] reads, for `concat!` in queries.
macro_rules! proposal_columns {
    () => {
        "proposal_id, kind, title, description, parameter, parameter_value, mint_account, \
         mint_amount, effective_at, proposer, state, quorum_bps, threshold_bps, total_power, \
         voters, ballots, created_at, deadline_at, tallied_at, yes_power, no_power, \
         abstain_power, result"
    };
}

/// A proposal as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRow {
    pub proposal_id: Uuid,
    pub kind: ProposalKind,
    pub title: String,
    pub description: String,
    pub parameter: Option<ParameterProposal>,
    pub mint: Option<MintProposal>,
    pub effective_at_ms: Option<i64>,
    pub proposer: String,
    pub state: ProposalState,
    pub frozen: Frozen,
    pub voters: i64,
    pub ballots: i64,
    pub created_at_ms: i64,
    pub deadline_ms: i64,
    pub tallied_at_ms: Option<i64>,
    /// The final tally, once tallied.
    pub tallied: Option<Tally>,
    pub result: Option<String>,
}

impl ProposalRow {
    /// The public view with `tally` (so far, or final).
    pub fn view(&self, tally: Tally) -> ProposalView {
        ProposalView {
            proposal_id: self.proposal_id,
            kind: self.kind,
            title: self.title.clone(),
            description: self.description.clone(),
            parameter: self.parameter.clone(),
            mint: self.mint.clone(),
            proposer: self.proposer.clone(),
            state: self.state,
            created_at: rfc3339_millis(self.created_at_ms),
            deadline: rfc3339_millis(self.deadline_ms),
            effective_at: self.effective_at_ms.map(rfc3339_millis),
            quorum_basis_points: self.frozen.quorum_bps,
            threshold_basis_points: self.frozen.threshold_bps,
            total_power: self.frozen.total_power,
            voters: self.voters,
            ballots: self.ballots,
            tally,
            quorum_reached: quorum_reached(&self.frozen, &tally),
            result: self.result.clone(),
            tallied_at: self.tallied_at_ms.map(rfc3339_millis),
        }
    }

    /// The `continue` key of a proposal.
    pub fn cursor_key(&self) -> String {
        format!("{}.{}", self.created_at_ms, self.proposal_id)
    }
}

/// Where a page of proposals starts (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalCursor {
    pub created_at_ms: i64,
    pub proposal_id: String,
}

impl ProposalCursor {
    pub fn parse(key: &str) -> Option<Self> {
        let (at, id) = key.split_once('.')?;
        Some(ProposalCursor {
            created_at_ms: at.parse().ok()?,
            proposal_id: Uuid::parse_str(id).ok()?.to_string(),
        })
    }
}

/// Why a proposal was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOpened {
    /// The proposer has [`MAX_OPEN_PER_PROPOSER`] open already.
    TooMany,
    /// The proposer is not the admin and had no voting power at open.
    NoPower,
}

pub(super) fn corrupt(key: &str, problem: String) -> StoreError {
    StoreError::CorruptRow {
        table: "proposals",
        key: key.to_string(),
        problem,
    }
}

fn proposal_row(row: &AnyRow) -> Result<ProposalRow, StoreError> {
    let read = || query_err("read a proposal");
    let id: String = row.try_get("proposal_id").map_err(read())?;
    let kind: String = row.try_get("kind").map_err(read())?;
    let state: String = row.try_get("state").map_err(read())?;
    let parameter: Option<String> = row.try_get("parameter").map_err(read())?;
    let value: Option<i64> = row.try_get("parameter_value").map_err(read())?;
    let account: Option<String> = row.try_get("mint_account").map_err(read())?;
    let amount: Option<i64> = row.try_get("mint_amount").map_err(read())?;
    let yes: Option<i64> = row.try_get("yes_power").map_err(read())?;
    let no: Option<i64> = row.try_get("no_power").map_err(read())?;
    let abstain: Option<i64> = row.try_get("abstain_power").map_err(read())?;
    Ok(ProposalRow {
        proposal_id: Uuid::parse_str(&id).map_err(|err| corrupt(&id, err.to_string()))?,
        kind: ProposalKind::parse(&kind).ok_or_else(|| corrupt(&id, format!("kind {kind:?}")))?,
        title: row.try_get("title").map_err(read())?,
        description: row.try_get("description").map_err(read())?,
        parameter: parameter
            .zip(value)
            .map(|(name, value)| ParameterProposal { name, value }),
        mint: account
            .zip(amount)
            .map(|(account, amount_ugai)| MintProposal {
                account,
                amount_ugai,
            }),
        effective_at_ms: row.try_get("effective_at").map_err(read())?,
        proposer: row.try_get("proposer").map_err(read())?,
        state: ProposalState::parse(&state)
            .ok_or_else(|| corrupt(&id, format!("state {state:?}")))?,
        frozen: Frozen {
            total_power: row.try_get("total_power").map_err(read())?,
            quorum_bps: row.try_get("quorum_bps").map_err(read())?,
            threshold_bps: row.try_get("threshold_bps").map_err(read())?,
        },
        voters: row.try_get("voters").map_err(read())?,
        ballots: row.try_get("ballots").map_err(read())?,
        created_at_ms: row.try_get("created_at").map_err(read())?,
        deadline_ms: row.try_get("deadline_at").map_err(read())?,
        tallied_at_ms: row.try_get("tallied_at").map_err(read())?,
        tallied: match (yes, no, abstain) {
            (Some(yes), Some(no), Some(abstain)) => Some(Tally {
                yes,
                no,
                abstain,
                votes: 0,
            }),
            _ => None,
        },
        result: row.try_get("result").map_err(read())?,
    })
}

/// The power behind each choice of the votes cast on `id`, and how many.
pub(super) async fn tally_in(conn: &mut AnyConnection, id: Uuid) -> Result<Tally, StoreError> {
    let rows = sqlx::query(
        "SELECT choice, CAST(COALESCE(SUM(power), 0) AS BIGINT), COUNT(*) FROM proposal_votes \
         WHERE proposal_id = $1 GROUP BY choice",
    )
    .bind(id.to_string())
    .fetch_all(conn)
    .await
    .map_err(query_err("count a proposal's votes"))?;
    let mut tally = Tally::default();
    for row in &rows {
        let read = || query_err("count a proposal's votes");
        let choice: String = row.try_get(0).map_err(read())?;
        let power: i64 = row.try_get(1).map_err(read())?;
        let count: i64 = row.try_get(2).map_err(read())?;
        match Choice::parse(&choice) {
            Some(Choice::Yes) => tally.yes = power,
            Some(Choice::No) => tally.no = power,
            Some(Choice::Abstain) => tally.abstain = power,
            None => return Err(corrupt(&id.to_string(), format!("vote choice {choice:?}"))),
        }
        tally.votes += count;
    }
    Ok(tally)
}

/// The proposal `id` inside a transaction.
pub(super) async fn proposal_in(
    conn: &mut AnyConnection,
    id: Uuid,
) -> Result<Option<ProposalRow>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        proposal_columns!(),
        " FROM proposals WHERE proposal_id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await
    .map_err(query_err("read a proposal"))?;
    row.as_ref().map(proposal_row).transpose()
}

/// The view of `row`: its final tally once tallied, else the votes so far.
async fn with_tally(
    conn: &mut AnyConnection,
    row: &ProposalRow,
) -> Result<ProposalView, StoreError> {
    let counted = tally_in(conn, row.proposal_id).await?;
    let tally = match row.tallied {
        Some(done) => Tally {
            votes: counted.votes,
            ..done
        },
        None => counted,
    };
    Ok(row.view(tally))
}

impl Store {
    /// Opens `proposal` by `proposer` at `now_ms` with the live quorum and
    /// threshold, freezing every client and node account's balance as its
    /// voting power. Refused when the proposer has too many open or (not
    /// being the admin) no voting power.
    pub async fn open_proposal(
        &self,
        proposer: &str,
        proposal: &ValidProposal,
        quorum_bps: i64,
        threshold_bps: i64,
        now_ms: i64,
    ) -> Result<Result<Uuid, NotOpened>, StoreError> {
        let id = Uuid::new_v4();
        let (parameter, value, effective_at, account, amount) = match &proposal.action {
            Action::Parameter {
                parameter,
                value,
                effective_at_ms,
            } => (
                Some(parameter.name()),
                Some(*value),
                Some(*effective_at_ms),
                None,
                None,
            ),
            Action::Mint { account, amount } => {
                (None, None, None, Some(account.key()), Some(*amount))
            }
            Action::Signal => (None, None, None, None, None),
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        sqlx::query(
            "INSERT INTO proposal_proposers (proposer, open_proposals) VALUES ($1, 0) \
             ON CONFLICT (proposer) DO NOTHING",
        )
        .bind(proposer.to_string())
        .execute(&mut *tx)
        .await
        .map_err(query_err("count a proposer's proposals"))?;
        // One row per proposer: replicas opening at once queue on it.
        let counted = sqlx::query(
            "UPDATE proposal_proposers SET open_proposals = open_proposals + 1 \
             WHERE proposer = $1 AND open_proposals < $2",
        )
        .bind(proposer.to_string())
        .bind(MAX_OPEN_PER_PROPOSER)
        .execute(&mut *tx)
        .await
        .map_err(query_err("count a proposer's proposals"))?;
        if counted.rows_affected() != 1 {
            return Ok(Err(NotOpened::TooMany));
        }
        sqlx::query(
            "INSERT INTO proposals (proposal_id, kind, title, description, parameter, \
             parameter_value, mint_account, mint_amount, effective_at, proposer, state, \
             quorum_bps, threshold_bps, created_at, deadline_at) VALUES ($1, $2, $3, $4, $5, \
             $6, $7, $8, $9, $10, 'open', $11, $12, $13, $14)",
        )
        .bind(id.to_string())
        .bind(proposal.action.kind().as_str())
        .bind(proposal.title.clone())
        .bind(proposal.description.clone())
        .bind(parameter)
        .bind(value)
        .bind(account)
        .bind(amount)
        .bind(effective_at)
        .bind(proposer.to_string())
        .bind(quorum_bps)
        .bind(threshold_bps)
        .bind(now_ms)
        .bind(proposal.deadline_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("open a proposal"))?;
        // The snapshot: one statement, so it is one consistent moment of the ledger.
        sqlx::query(
            "INSERT INTO proposal_voters (proposal_id, voter, power) SELECT $1, account, balance \
             FROM ledger_accounts WHERE kind IN ('client', 'node') AND balance > 0",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(query_err("freeze the voting power"))?;
        if proposer != ADMIN_PROPOSER {
            let power = sqlx::query(
                "SELECT power FROM proposal_voters WHERE proposal_id = $1 AND voter = $2",
            )
            .bind(id.to_string())
            .bind(proposer.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("read a proposer's voting power"))?;
            if power.is_none() {
                return Ok(Err(NotOpened::NoPower));
            }
        }
        sqlx::query(
            "UPDATE proposals SET \
             total_power = (SELECT CAST(COALESCE(SUM(power), 0) AS BIGINT) FROM proposal_voters \
                 WHERE proposal_id = $1), \
             voters = (SELECT COUNT(*) FROM proposal_voters WHERE proposal_id = $1) \
             WHERE proposal_id = $1",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(query_err("total the voting power"))?;
        tx.commit().await.map_err(query_err("commit a proposal"))?;
        Ok(Ok(id))
    }

    /// The proposal `id` with its tally (so far while open, final after).
    pub async fn proposal(&self, id: Uuid) -> Result<Option<ProposalView>, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_err("read a proposal"))?;
        match proposal_in(&mut conn, id).await? {
            Some(row) => Ok(Some(with_tally(&mut conn, &row).await?)),
            None => Ok(None),
        }
    }

    /// Up to `limit + 1` proposals (in `state`, if given) older than
    /// `before`, newest first, with their tallies.
    pub async fn proposals_page(
        &self,
        state: Option<ProposalState>,
        before: Option<&ProposalCursor>,
        limit: u32,
    ) -> Result<Vec<(ProposalRow, ProposalView)>, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_err("list proposals"))?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            proposal_columns!(),
            " FROM proposals WHERE ($1 = '' OR state = $1) \
             AND (created_at < $2 OR (created_at = $2 AND proposal_id < $3)) \
             ORDER BY created_at DESC, proposal_id DESC LIMIT $4"
        ))
        .bind(state.map_or("", ProposalState::as_str).to_string())
        .bind(before.map_or(i64::MAX, |c| c.created_at_ms))
        .bind(before.map_or_else(String::new, |c| c.proposal_id.clone()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err("list proposals"))?;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let row = proposal_row(row)?;
            let view = with_tally(&mut conn, &row).await?;
            page.push((row, view));
        }
        Ok(page)
    }
}
