//! Leases in the store: a claim takes the oldest eligible QUEUED job (with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, under the single writer on
//! SQLite) and makes it RUNNING under a new lease id; renew and complete
//! are conditional UPDATEs on that lease id, so a superseded or expired
//! lease changes nothing. Every lease ever granted is kept in `leases`:
//! that is how a late request is told apart (409) from a stranger's (403).

use std::collections::BTreeSet;

use sqlx::Row;
use uuid::Uuid;

use super::api::{JobState, JobType, Outcome};
use super::placement::fit::{fits, Claimant};
use super::store::{
    job_columns, job_row, lease_granted_at, ledger_failure, parse_uuid, record, JobRow, Transition,
};
use crate::coordinator::ledger::settle::{settle_in, void_in};
use crate::coordinator::store::{query_err, Backend, Store, StoreError};

/// Candidates one claim looks at (the first whose labels match wins).
const CLAIM_BATCH: i64 = 32;

const CANDIDATES: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE state = 'QUEUED' AND (market IS NULL OR market = $1) \
     AND (min_vram_mib IS NULL OR min_vram_mib <= $2) \
     AND ((kind = 'container' AND $3 = 1) OR (kind = 'inference' AND $4 = 1)) \
     AND (expires_at IS NULL OR expires_at > $5) ORDER BY created_at, job_id LIMIT $6"
);
const CANDIDATES_LOCKED: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE state = 'QUEUED' AND (market IS NULL OR market = $1) \
     AND (min_vram_mib IS NULL OR min_vram_mib <= $2) \
     AND ((kind = 'container' AND $3 = 1) OR (kind = 'inference' AND $4 = 1)) \
     AND (expires_at IS NULL OR expires_at > $5) ORDER BY created_at, job_id LIMIT $6 \
     FOR UPDATE SKIP LOCKED"
);

/// A market's queued jobs, oldest first (index `jobs_queue_market`).
const QUEUED_IN_MARKET: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE state = 'QUEUED' AND market = $1 \
     AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at, job_id LIMIT $3"
);
/// The queued jobs that name no market, oldest first.
const QUEUED_IN_NO_MARKET: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE state = 'QUEUED' AND market IS NULL \
     AND (expires_at IS NULL OR expires_at > $1) ORDER BY created_at, job_id LIMIT $2"
);

/// A lease just granted.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    pub lease_id: Uuid,
    pub attempt: u32,
    pub expires_at_ms: i64,
    pub job: JobRow,
}

/// Who holds a lease, from the lease record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOwner {
    pub job_id: Uuid,
    pub node_id: Uuid,
}

/// Why a request under a lease changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Another lease is the job's current one (it was requeued).
    Superseded,
    /// The lease's time ran out before this request.
    Expired,
}

/// What a renew did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewed {
    /// Extended to this time.
    Extended {
        expires_at_ms: i64,
    },
    /// The job was cancelled or timed out by the coordinator: stop it.
    Stop,
    Stale(Stale),
}

/// How a job ended, as its node reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending<'a> {
    pub outcome: Outcome,
    pub reason: &'a str,
    /// The result as JSON text.
    pub result: &'a str,
}

/// What a complete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// Ended now in this state.
    Final(JobState),
    /// Ended before (an earlier complete, a cancel, the sweep) in this state.
    Already(JobState),
    Stale(Stale),
}

impl Store {
    /// Gives `claimant` the oldest job it may run, under a new lease of
    /// `lease_ms`; `None` when there is none.
    pub async fn claim(
        &self,
        claimant: &Claimant,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Granted>, StoreError> {
        let takes = |kind| i64::from(claimant.job_types.contains(&kind));
        let query = match self.backend() {
            Backend::Postgres => CANDIDATES_LOCKED,
            Backend::Sqlite => CANDIDATES,
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let rows = sqlx::query(query)
            .bind(claimant.market.clone())
            .bind(i64::try_from(claimant.vram_mib).unwrap_or(i64::MAX))
            .bind(takes(JobType::Container))
            .bind(takes(JobType::Inference))
            .bind(now_ms)
            .bind(CLAIM_BATCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err("find a job to claim"))?;
        let mut chosen = None;
        for row in &rows {
            let job = job_row(row)?;
            if fits(&job, claimant, now_ms) {
                chosen = Some(job);
                break;
            }
        }
        let Some(job) = chosen else {
            return Ok(None);
        };
        let granted = lease_in(&mut tx, job, claimant, lease_ms, now_ms).await?;
        if granted.is_some() {
            tx.commit().await.map_err(query_err("commit a claim"))?;
        }
        Ok(granted)
    }

    /// A placement round's candidates (not locked): for each of `markets`,
    /// its oldest `limit` queued jobs not past their `expiresAfter`, and
    /// the oldest `limit` that name no market (any node may take those);
    /// all oldest first. Read market by market, so a backlog no parked
    /// claim can take (another market's) never hides the jobs behind it.
    pub async fn queued_jobs(
        &self,
        markets: &BTreeSet<&str>,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<JobRow>, StoreError> {
        let mut jobs = self.queued_in(None, now_ms, limit).await?;
        for market in markets {
            jobs.extend(self.queued_in(Some(market), now_ms, limit).await?);
        }
        jobs.sort_by_key(|job| (job.created_at_ms, job.job_id));
        Ok(jobs)
    }

    /// The oldest `limit` queued jobs of `market` (`None`: of no market).
    async fn queued_in(
        &self,
        market: Option<&str>,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<JobRow>, StoreError> {
        let query = match market {
            Some(_) => QUEUED_IN_MARKET,
            None => QUEUED_IN_NO_MARKET,
        };
        let mut query = sqlx::query(query);
        if let Some(market) = market {
            query = query.bind(market.to_string());
        }
        let rows = query
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list queued jobs"))?;
        rows.iter().map(job_row).collect()
    }

    /// Leases each job to its claimant if it is still queued, all in one
    /// transaction (one commit for a whole placement round); returns the
    /// granted ones with their `tag`s, leaving out jobs another claim or
    /// replica took first. Jobs are taken in job id order, so two
    /// replicas' rounds lock rows in the same order and cannot deadlock.
    pub async fn lease_jobs<T>(
        &self,
        mut matches: Vec<(T, JobRow, &Claimant)>,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(T, Granted)>, StoreError> {
        matches.sort_by_key(|(_, job, _)| job.job_id);
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let mut granted = Vec::with_capacity(matches.len());
        for (tag, job, claimant) in matches {
            if let Some(lease) = lease_in(&mut tx, job, claimant, lease_ms, now_ms).await? {
                granted.push((tag, lease));
            }
        }
        tx.commit()
            .await
            .map_err(query_err("commit a round's leases"))?;
        Ok(granted)
    }

    /// The job and node of a lease ever granted.
    pub async fn lease_owner(&self, lease_id: Uuid) -> Result<Option<LeaseOwner>, StoreError> {
        let row = sqlx::query("SELECT job_id, node_id FROM leases WHERE lease_id = $1")
            .bind(lease_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read a lease"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job: String = row.try_get(0).map_err(query_err("read a lease"))?;
        let node: String = row.try_get(1).map_err(query_err("read a lease"))?;
        Ok(Some(LeaseOwner {
            job_id: parse_uuid("job_id", &job)?,
            node_id: parse_uuid("node_id", &node)?,
        }))
    }

    /// Moves a live lease's end to `now_ms + lease_ms`.
    pub async fn renew(
        &self,
        lease: LeaseOwner,
        lease_id: Uuid,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Renewed, StoreError> {
        let expires_at_ms = now_ms.saturating_add(lease_ms);
        let _turn = self.write_turn().await;
        let renewed = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $3 WHERE job_id = $1 AND lease_id = $2 \
             AND state = 'RUNNING' AND lease_expires_at >= $4",
        )
        .bind(lease.job_id.to_string())
        .bind(lease_id.to_string())
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("renew a lease"))?;
        if renewed.rows_affected() == 1 {
            return Ok(Renewed::Extended { expires_at_ms });
        }
        Ok(match self.lease_standing(lease.job_id, lease_id).await? {
            Standing::Stopped(_) => Renewed::Stop,
            Standing::Live => Renewed::Stale(Stale::Expired),
            Standing::Stale(stale) => Renewed::Stale(stale),
        })
    }

    /// Ends the job under a live lease with `outcome` and settles its bill
    /// in the same transaction: this lease's node is paid for the time
    /// since the lease was granted (at `fee_basis_points`), or, for a job
    /// that never started, the hold goes back. A repeat (or a complete
    /// after a cancel) answers the job's final state and pays nothing.
    pub async fn complete(
        &self,
        lease: LeaseOwner,
        lease_id: Uuid,
        ending: Ending<'_>,
        fee_basis_points: i64,
        now_ms: i64,
    ) -> Result<Completed, StoreError> {
        let Ending {
            outcome,
            reason,
            result,
        } = ending;
        let state = outcome.state();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let row = sqlx::query(
            "UPDATE jobs SET state = $3, reason = $4, result = $5, updated_at = $6, \
             finished_at = $6, lease_expires_at = NULL WHERE job_id = $1 AND lease_id = $2 \
             AND state = 'RUNNING' AND lease_expires_at >= $6 RETURNING attempt",
        )
        .bind(lease.job_id.to_string())
        .bind(lease_id.to_string())
        .bind(state.as_str())
        .bind(reason.to_string())
        .bind(result.to_string())
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("complete a job"))?;
        if let Some(row) = row {
            let attempt: i64 = row.try_get(0).map_err(query_err("read an attempt"))?;
            end_lease(&mut tx, lease_id, state.as_str(), now_ms).await?;
            if outcome.is_billed() {
                let ran_ms = now_ms - lease_granted_at(&mut tx, lease_id).await?;
                settle_in(
                    &mut tx,
                    lease.job_id,
                    lease.node_id,
                    ran_ms,
                    fee_basis_points,
                    now_ms,
                )
                .await
                .map_err(ledger_failure)?;
            } else {
                void_in(
                    &mut tx,
                    lease.job_id,
                    "it never started on the node",
                    now_ms,
                )
                .await
                .map_err(ledger_failure)?;
            }
            let event = Transition::new(
                lease.job_id,
                state,
                reason,
                attempt,
                Some(lease.node_id),
                now_ms,
            );
            record(&mut tx, &event).await?;
            tx.commit()
                .await
                .map_err(query_err("commit a completion"))?;
            return Ok(Completed::Final(state));
        }
        drop(tx);
        Ok(match self.lease_standing(lease.job_id, lease_id).await? {
            Standing::Stopped(state) => Completed::Already(state),
            Standing::Live => Completed::Stale(Stale::Expired),
            Standing::Stale(stale) => Completed::Stale(stale),
        })
    }

    /// Where a lease stands when a conditional UPDATE under it changed
    /// nothing.
    pub(super) async fn lease_standing(
        &self,
        job_id: Uuid,
        lease_id: Uuid,
    ) -> Result<Standing, StoreError> {
        let job = self.job(job_id).await?;
        Ok(match job {
            Some(job) if job.lease_id == Some(lease_id) => {
                if job.state.is_final() {
                    Standing::Stopped(job.state)
                } else {
                    // RUNNING under this lease but past its end (not swept yet).
                    Standing::Live
                }
            }
            // Another lease holds the job now.
            Some(job) if job.lease_id.is_some() => Standing::Stale(Stale::Superseded),
            // The sweep took the job back (requeued, or failed at the last attempt).
            _ => Standing::Stale(Stale::Expired),
        })
    }
}

/// Makes a QUEUED `job` RUNNING under a new lease for `claimant` inside the
/// caller's transaction (one conditional UPDATE: `None` when the job is no
/// longer queued), with its lease record and transition.
async fn lease_in(
    conn: &mut sqlx::AnyConnection,
    job: JobRow,
    claimant: &Claimant,
    lease_ms: i64,
    now_ms: i64,
) -> Result<Option<Granted>, StoreError> {
    let lease_id = Uuid::new_v4();
    let expires_at_ms = now_ms.saturating_add(lease_ms);
    let reason = format!("running on node {}", claimant.node_id);
    let row = sqlx::query(
        "UPDATE jobs SET state = 'RUNNING', reason = $2, attempt = attempt + 1, \
         lease_id = $3, lease_node = $4, lease_expires_at = $5, \
         deadline_at = $6 + timeout_ms + $7, updated_at = $6, \
         started_at = COALESCE(started_at, $6) WHERE job_id = $1 AND state = 'QUEUED' \
         RETURNING attempt",
    )
    .bind(job.job_id.to_string())
    .bind(reason.clone())
    .bind(lease_id.to_string())
    .bind(claimant.node_id.to_string())
    .bind(expires_at_ms)
    .bind(now_ms)
    .bind(lease_ms)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_err("lease a job"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let attempt: i64 = row.try_get(0).map_err(query_err("read an attempt"))?;
    sqlx::query(
        "INSERT INTO leases (lease_id, job_id, node_id, attempt, granted_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(lease_id.to_string())
    .bind(job.job_id.to_string())
    .bind(claimant.node_id.to_string())
    .bind(attempt)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(query_err("record a lease"))?;
    let event = Transition::new(
        job.job_id,
        JobState::Running,
        reason,
        attempt,
        Some(claimant.node_id),
        now_ms,
    );
    record(conn, &event).await?;
    Ok(Some(Granted {
        lease_id,
        attempt: u32::try_from(attempt).unwrap_or_default(),
        expires_at_ms,
        job,
    }))
}

/// A lease seen from its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// The job's current lease, and the job has ended in this state.
    Stopped(JobState),
    /// The job's current lease, RUNNING (an UPDATE that failed found it
    /// past its end).
    Live,
    Stale(Stale),
}

/// Marks a lease ended with `outcome` (first end wins).
pub(super) async fn end_lease(
    conn: &mut sqlx::AnyConnection,
    lease_id: Uuid,
    outcome: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE leases SET ended_at = $2, outcome = $3 WHERE lease_id = $1 AND ended_at IS NULL",
    )
    .bind(lease_id.to_string())
    .bind(now_ms)
    .bind(outcome.to_string())
    .execute(conn)
    .await
    .map_err(query_err("end a lease"))?;
    Ok(())
}
