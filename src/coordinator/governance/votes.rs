//! Votes in the store: casting one (a second vote of the same voter
//! replaces the first until the deadline) and listing a proposal's votes.
//! A vote first takes the proposal's row with a conditional UPDATE (`WHERE
//! state = 'open' AND deadline_at > now`), so a vote and the tally never
//! interleave: on PostgreSQL the later one waits for the row and then sees
//! the other's result; SQLite has one writer.

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::api::{Choice, VoteVia, VoteView};
use super::store::corrupt;
use crate::clock::rfc3339_millis;
use crate::coordinator::store::{query_err, Store, StoreError};

/// What became of a vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cast {
    /// Recorded (replacing the voter's earlier vote, if any).
    Counted(VoteView),
    /// There is no such proposal.
    Unknown,
    /// Voting ended at `deadline_ms` (or the proposal is tallied).
    Closed { deadline_ms: i64 },
    /// The voter had no voting power when the proposal opened.
    NoPower,
}

fn vote_view(row: &AnyRow) -> Result<VoteView, StoreError> {
    let read = || query_err("read a vote");
    let id: String = row.try_get("proposal_id").map_err(read())?;
    let choice: String = row.try_get("choice").map_err(read())?;
    let via: String = row.try_get("via").map_err(read())?;
    Ok(VoteView {
        proposal_id: Uuid::parse_str(&id).map_err(|err| corrupt(&id, err.to_string()))?,
        voter: row.try_get("voter").map_err(read())?,
        choice: Choice::parse(&choice)
            .ok_or_else(|| corrupt(&id, format!("vote choice {choice:?}")))?,
        power: row.try_get("power").map_err(read())?,
        via: VoteVia::parse(&via).ok_or_else(|| corrupt(&id, format!("vote via {via:?}")))?,
        cast_at: rfc3339_millis(row.try_get("cast_at").map_err(read())?),
        replaced: row.try_get("replaced").map_err(read())?,
    })
}

impl Store {
    /// `voter` (a ledger account key) votes `choice` on proposal `id` at `now_ms`.
    pub async fn cast_vote(
        &self,
        id: Uuid,
        voter: &str,
        choice: Choice,
        via: VoteVia,
        now_ms: i64,
    ) -> Result<Cast, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let open = sqlx::query(
            "UPDATE proposals SET ballots = ballots + 1 \
             WHERE proposal_id = $1 AND state = 'open' AND deadline_at > $2",
        )
        .bind(id.to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("take a proposal for a vote"))?;
        if open.rows_affected() != 1 {
            let deadline = sqlx::query("SELECT deadline_at FROM proposals WHERE proposal_id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_err("read a proposal's deadline"))?;
            return match deadline {
                Some(row) => Ok(Cast::Closed {
                    deadline_ms: row
                        .try_get(0)
                        .map_err(query_err("read a proposal's deadline"))?,
                }),
                None => Ok(Cast::Unknown),
            };
        }
        let power =
            sqlx::query("SELECT power FROM proposal_voters WHERE proposal_id = $1 AND voter = $2")
                .bind(id.to_string())
                .bind(voter.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_err("read a voter's power"))?;
        let Some(power) = power else {
            return Ok(Cast::NoPower);
        };
        let power: i64 = power
            .try_get(0)
            .map_err(query_err("read a voter's power"))?;
        sqlx::query(
            "INSERT INTO proposal_votes (proposal_id, voter, choice, power, via, cast_at, replaced) \
             VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (proposal_id, voter) DO UPDATE \
             SET choice = $3, via = $5, cast_at = $6, replaced = proposal_votes.replaced + 1",
        )
        .bind(id.to_string())
        .bind(voter.to_string())
        .bind(choice.as_str())
        .bind(power)
        .bind(via.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record a vote"))?;
        let row = sqlx::query(
            "SELECT proposal_id, voter, choice, power, via, cast_at, replaced FROM proposal_votes \
             WHERE proposal_id = $1 AND voter = $2",
        )
        .bind(id.to_string())
        .bind(voter.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err("read a vote"))?;
        let view = vote_view(&row)?;
        tx.commit().await.map_err(query_err("commit a vote"))?;
        Ok(Cast::Counted(view))
    }

    /// Up to `limit + 1` votes on proposal `id` by voters after `after`.
    pub async fn votes_page(
        &self,
        id: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VoteView>, StoreError> {
        let rows = sqlx::query(
            "SELECT proposal_id, voter, choice, power, via, cast_at, replaced FROM proposal_votes \
             WHERE proposal_id = $1 AND voter > $2 ORDER BY voter LIMIT $3",
        )
        .bind(id.to_string())
        .bind(after.unwrap_or_default().to_string())
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list votes"))?;
        rows.iter().map(vote_view).collect()
    }
}
