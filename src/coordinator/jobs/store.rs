//! The jobs tables: submission (idempotent per owner and key), the job
//! row and its view, pages, cancel, and the transition record every state
//! change writes in the same transaction. Leases are in `lease_store`,
//! logs in `log_store`, the sweep's transitions in `sweep_store`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::api::{EnergyPreference, JobEvent, JobState, JobType, Placement};
use super::submit::{green_wait, NewJob};
use crate::clock::rfc3339_millis;
use crate::coordinator::ledger::settle::{hold_in, settle_in, void_in, Charge};
use crate::coordinator::ledger::LedgerError;
use crate::coordinator::store::{query_err, Store, StoreError};

/// A job as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job_id: Uuid,
    pub owner: String,
    pub kind: JobType,
    pub spec: serde_json::Value,
    pub placement: Placement,
    pub timeout_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub max_attempts: u32,
    pub attempt: u32,
    pub state: JobState,
    pub reason: Option<String>,
    pub lease_id: Option<Uuid>,
    pub lease_node: Option<Uuid>,
    pub lease_expires_at_ms: Option<i64>,
    /// A green job waits for a node on solar surplus until then.
    pub green_until_ms: Option<i64>,
    pub result: Option<serde_json::Value>,
    pub log_bytes: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// The columns [`job_row`] reads, for `concat!` in queries.
macro_rules! job_columns {
    () => {
        "job_id, owner, kind, spec, market, min_vram_mib, labels, constraints, timeout_ms, \
         expires_at, max_attempts, attempt, state, reason, lease_id, lease_node, \
         lease_expires_at, result, log_bytes, created_at, updated_at, finished_at, energy, \
         green_until"
    };
}
pub(super) use job_columns;

/// Where a page of jobs continues: older than this (created_at, job_id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    pub created_at_ms: i64,
    pub job_id: String,
}

impl JobCursor {
    /// The `continue` key of a job.
    pub fn key(job: &JobRow) -> String {
        format!("{}.{}", job.created_at_ms, job.job_id)
    }

    pub fn parse(key: &str) -> Option<Self> {
        let (at, id) = key.split_once('.')?;
        Some(JobCursor {
            created_at_ms: at.parse().ok()?,
            job_id: Uuid::parse_str(id).ok()?.to_string(),
        })
    }
}

/// What a submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Queued now (its hold placed, when it is charged).
    Created(Uuid),
    /// Submitted before with the same idempotency key.
    Existing(Uuid),
    /// Not queued: the payer's balance does not cover the hold.
    Unfunded { balance: i64, needed: i64 },
}

/// A ledger error inside a job transition: refusals cannot happen there
/// (they would be bugs), so they surface as storage errors.
pub(super) fn ledger_failure(err: LedgerError) -> StoreError {
    match err {
        LedgerError::Store(err) => err,
        other => StoreError::Ledger(other.to_string()),
    }
}

impl Store {
    /// Records a new QUEUED job and, when `charge` is given, holds its price
    /// × timeout from the payer in the same transaction; or finds the job
    /// this owner submitted before with the same idempotency key.
    pub async fn insert_job(
        &self,
        owner: &str,
        idempotency_key: Option<&str>,
        job: &NewJob,
        charge: Option<&Charge>,
        now_ms: i64,
    ) -> Result<Inserted, StoreError> {
        let job_id = Uuid::new_v4();
        let timeout_ms = i64::try_from(job.timeout.as_millis()).unwrap_or(i64::MAX);
        let expires_at = job.expires_after.map(|after| {
            now_ms.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
        });
        let labels = serde_json::to_string(&job.placement.labels).unwrap_or_else(|_| "{}".into());
        let constraints =
            serde_json::to_string(&job.placement.constraints).unwrap_or_else(|_| "{}".into());
        let min_vram = job
            .placement
            .min_vram_mib
            .map(|mib| i64::try_from(mib).unwrap_or(i64::MAX));
        let green_until = green_wait(&job.placement)
            .map(|wait| now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)));
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let inserted = sqlx::query(
            "INSERT INTO jobs (job_id, owner, idempotency_key, kind, spec, market, min_vram_mib, \
             labels, constraints, timeout_ms, expires_at, max_attempts, state, reason, \
             created_at, updated_at, energy, green_until) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, 'QUEUED', 'submitted', $13, $13, $14, $15) \
             ON CONFLICT (owner, idempotency_key) DO NOTHING",
        )
        .bind(job_id.to_string())
        .bind(owner.to_string())
        .bind(idempotency_key.map(str::to_string))
        .bind(job.kind.as_str())
        .bind(job.spec.to_string())
        .bind(job.placement.market.clone())
        .bind(min_vram)
        .bind(labels)
        .bind(constraints)
        .bind(timeout_ms)
        .bind(expires_at)
        .bind(i64::from(job.max_attempts))
        .bind(now_ms)
        .bind(job.placement.energy.as_str())
        .bind(green_until)
        .execute(&mut *tx)
        .await
        .map_err(query_err("insert a job"))?;
        if inserted.rows_affected() == 1 {
            if let Some(charge) = charge {
                match hold_in(&mut tx, job_id, charge, timeout_ms, now_ms).await {
                    Ok(_) => {}
                    Err(LedgerError::Insufficient {
                        balance, needed, ..
                    }) => return Ok(Inserted::Unfunded { balance, needed }),
                    Err(err) => return Err(ledger_failure(err)),
                }
            }
            let event = Transition::new(job_id, JobState::Queued, "submitted", 0, None, now_ms);
            record(&mut tx, &event).await?;
            tx.commit().await.map_err(query_err("commit a job"))?;
            return Ok(Inserted::Created(job_id));
        }
        drop(tx);
        let existing: String =
            sqlx::query("SELECT job_id FROM jobs WHERE owner = $1 AND idempotency_key = $2")
                .bind(owner.to_string())
                .bind(idempotency_key.map(str::to_string))
                .fetch_one(&self.pool)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(query_err("read a job by idempotency key"))?;
        Ok(Inserted::Existing(parse_uuid("job_id", &existing)?))
    }

    /// One job.
    pub async fn job(&self, job_id: Uuid) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE job_id = $1"
        ))
        .bind(job_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a job"))?;
        row.as_ref().map(job_row).transpose()
    }

    /// A job's transitions, oldest first.
    pub async fn job_history(&self, job_id: Uuid) -> Result<Vec<JobEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, state, reason, attempt, node_id FROM job_events WHERE job_id = $1 \
             ORDER BY seq",
        )
        .bind(job_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read a job's history"))?;
        rows.iter()
            .map(|row| {
                let state: String = row
                    .try_get("state")
                    .map_err(query_err("read a job event"))?;
                let attempt: i64 = row
                    .try_get("attempt")
                    .map_err(query_err("read a job event"))?;
                let node: Option<String> = row
                    .try_get("node_id")
                    .map_err(query_err("read a job event"))?;
                Ok(JobEvent {
                    at: rfc3339_millis(row.try_get("at").map_err(query_err("read a job event"))?),
                    state: parse_state(&job_id.to_string(), &state)?,
                    reason: row
                        .try_get("reason")
                        .map_err(query_err("read a job event"))?,
                    attempt: u32::try_from(attempt).unwrap_or_default(),
                    node_id: node.map(|n| parse_uuid("node_id", &n)).transpose()?,
                })
            })
            .collect()
    }

    /// Up to `limit + 1` jobs older than `before`, newest first; only
    /// `owner`'s when given, only those in `state` when given.
    pub async fn jobs_page(
        &self,
        owner: Option<&str>,
        state: Option<JobState>,
        before: Option<&JobCursor>,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE ($1 = '' OR owner = $1) AND ($2 = '' OR state = $2) \
             AND (created_at < $3 OR (created_at = $3 AND job_id < $4)) \
             ORDER BY created_at DESC, job_id DESC LIMIT $5"
        ))
        .bind(owner.unwrap_or_default().to_string())
        .bind(state.map_or("", JobState::as_str).to_string())
        .bind(before.map_or(i64::MAX, |c| c.created_at_ms))
        .bind(before.map_or_else(String::new, |c| c.job_id.clone()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list jobs"))?;
        rows.iter().map(job_row).collect()
    }

    /// Cancels a job that has not finished; a running one keeps its lease
    /// id so the node's next renew learns of it, and its node is paid for
    /// the time it ran (at `fee_basis_points`); a queued one gets its hold
    /// back. Returns the job's state afterwards and whether this call
    /// cancelled it; `None` for no job.
    pub async fn cancel_job(
        &self,
        job_id: Uuid,
        fee_basis_points: i64,
        now_ms: i64,
    ) -> Result<Option<(JobState, bool)>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'CANCELLED', reason = 'cancelled by the client', \
             updated_at = $2, finished_at = $2 WHERE job_id = $1 \
             AND state IN ('QUEUED', 'RUNNING') RETURNING attempt, lease_node, lease_id",
        )
        .bind(job_id.to_string())
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("cancel a job"))?;
        if let Some(row) = row {
            let attempt: i64 = row.try_get(0).map_err(query_err("read a job"))?;
            let node: Option<String> = row.try_get(1).map_err(query_err("read a job"))?;
            let node = node.map(|n| parse_uuid("lease_node", &n)).transpose()?;
            let lease: Option<String> = row.try_get(2).map_err(query_err("read a job"))?;
            match (lease, node) {
                (Some(lease), Some(node)) => {
                    let lease = parse_uuid("lease_id", &lease)?;
                    let ran_ms = now_ms - lease_granted_at(&mut tx, lease).await?;
                    settle_in(&mut tx, job_id, node, ran_ms, fee_basis_points, now_ms)
                        .await
                        .map_err(ledger_failure)?;
                }
                _ => {
                    void_in(&mut tx, job_id, "cancelled before it ran", now_ms)
                        .await
                        .map_err(ledger_failure)?;
                }
            }
            let event = Transition::new(
                job_id,
                JobState::Cancelled,
                "cancelled by the client",
                attempt,
                node,
                now_ms,
            );
            record(&mut tx, &event).await?;
            tx.commit().await.map_err(query_err("commit a cancel"))?;
            return Ok(Some((JobState::Cancelled, true)));
        }
        drop(tx);
        Ok(self.job(job_id).await?.map(|job| (job.state, false)))
    }
}

/// One state change, as recorded in `job_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub job_id: Uuid,
    pub state: JobState,
    pub reason: String,
    pub attempt: i64,
    pub node_id: Option<Uuid>,
    pub at_ms: i64,
}

impl Transition {
    pub fn new(
        job_id: Uuid,
        state: JobState,
        reason: impl Into<String>,
        attempt: i64,
        node_id: Option<Uuid>,
        at_ms: i64,
    ) -> Self {
        Transition {
            job_id,
            state,
            reason: reason.into(),
            attempt,
            node_id,
            at_ms,
        }
    }
}

/// When a lease was granted.
pub(super) async fn lease_granted_at(
    conn: &mut AnyConnection,
    lease_id: Uuid,
) -> Result<i64, StoreError> {
    sqlx::query("SELECT granted_at FROM leases WHERE lease_id = $1")
        .bind(lease_id.to_string())
        .fetch_one(conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(query_err("read when a lease was granted"))
}

/// Records a transition; called inside the transaction that made it, after
/// the conditional UPDATE that won the job row.
pub(in crate::coordinator) async fn record(
    conn: &mut AnyConnection,
    event: &Transition,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO job_events (job_id, seq, at, state, reason, attempt, node_id) VALUES \
         ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = $1), $2, $3, $4, \
         $5, $6)",
    )
    .bind(event.job_id.to_string())
    .bind(event.at_ms)
    .bind(event.state.as_str())
    .bind(event.reason.clone())
    .bind(event.attempt)
    .bind(event.node_id.map(|id| id.to_string()))
    .execute(conn)
    .await
    .map_err(query_err("record a job transition"))?;
    Ok(())
}

pub(super) fn parse_uuid(column: &'static str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|err| StoreError::CorruptRow {
        table: "jobs",
        key: text.to_string(),
        problem: format!("{column}: {err}"),
    })
}

fn parse_state(job_id: &str, text: &str) -> Result<JobState, StoreError> {
    JobState::parse(text).ok_or_else(|| StoreError::CorruptRow {
        table: "jobs",
        key: job_id.to_string(),
        problem: format!("state {text:?}"),
    })
}

/// Reads a row of [`job_columns!`].
pub(super) fn job_row(row: &AnyRow) -> Result<JobRow, StoreError> {
    let id: String = row.try_get("job_id").map_err(query_err("read a job row"))?;
    let corrupt = |problem: String| StoreError::CorruptRow {
        table: "jobs",
        key: id.clone(),
        problem,
    };
    let get_i64 = |column: &str| -> Result<i64, StoreError> {
        row.try_get(column).map_err(query_err("read a job row"))
    };
    let get_opt_i64 = |column: &str| -> Result<Option<i64>, StoreError> {
        row.try_get(column).map_err(query_err("read a job row"))
    };
    let get_text = |column: &str| -> Result<String, StoreError> {
        row.try_get(column).map_err(query_err("read a job row"))
    };
    let get_opt_text = |column: &str| -> Result<Option<String>, StoreError> {
        row.try_get(column).map_err(query_err("read a job row"))
    };
    let json = |column: &str, text: &str| -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(text).map_err(|err| corrupt(format!("{column}: {err}")))
    };
    let kind = get_text("kind")?;
    let labels = get_text("labels")?;
    let constraints = get_text("constraints")?;
    let state = get_text("state")?;
    let energy = match get_text("energy")?.as_str() {
        "prefer-green" => EnergyPreference::PreferGreen,
        _ => EnergyPreference::Any,
    };
    let created_at_ms = get_i64("created_at")?;
    let green_until_ms = get_opt_i64("green_until")?;
    let small = |value: i64| u32::try_from(value).unwrap_or_default();
    Ok(JobRow {
        job_id: parse_uuid("job_id", &id)?,
        owner: get_text("owner")?,
        kind: JobType::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        spec: json("spec", &get_text("spec")?)?,
        placement: Placement {
            market: get_opt_text("market")?,
            min_vram_mib: get_opt_i64("min_vram_mib")?.map(|v| u64::try_from(v).unwrap_or(0)),
            labels: serde_json::from_str(&labels)
                .map_err(|err| corrupt(format!("labels: {err}")))?,
            constraints: serde_json::from_str(&constraints)
                .map_err(|err| corrupt(format!("constraints: {err}")))?,
            energy,
            green_wait: green_until_ms.map(|until| {
                let wait = u64::try_from(until.saturating_sub(created_at_ms)).unwrap_or(0);
                humantime::format_duration(std::time::Duration::from_secs(wait / 1000)).to_string()
            }),
        },
        timeout_ms: get_i64("timeout_ms")?,
        expires_at_ms: get_opt_i64("expires_at")?,
        max_attempts: small(get_i64("max_attempts")?),
        attempt: small(get_i64("attempt")?),
        state: parse_state(&id, &state)?,
        reason: get_opt_text("reason")?,
        lease_id: get_opt_text("lease_id")?
            .map(|l| parse_uuid("lease_id", &l))
            .transpose()?,
        lease_node: get_opt_text("lease_node")?
            .map(|n| parse_uuid("lease_node", &n))
            .transpose()?,
        lease_expires_at_ms: get_opt_i64("lease_expires_at")?,
        green_until_ms,
        result: get_opt_text("result")?
            .map(|text| json("result", &text))
            .transpose()?,
        log_bytes: get_i64("log_bytes")?,
        created_at_ms,
        updated_at_ms: get_i64("updated_at")?,
        finished_at_ms: get_opt_i64("finished_at")?,
    })
}
