//! The job sweep, safe on every replica at once: each transition is one
//! conditional UPDATE in its own transaction, so exactly one replica wins
//! it. An expired lease requeues its job (attempt + 1 at the next claim)
//! or, at `maxAttempts`, fails it ("node lost"); a QUEUED job past
//! `expiresAfter` becomes EXPIRED; a RUNNING job past its timeout (plus
//! one lease of grace for the node to report it) becomes TIMED_OUT.
//! Storage errors are logged and retried next sweep.

use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::api::JobState;
use super::lease_store::end_lease;
use super::routes::JobsState;
use super::store::{ledger_failure, parse_uuid, record, Transition};
use crate::clock::unix_millis;
use crate::coordinator::ledger::settle::void_in;
use crate::coordinator::store::{query_err, Store, StoreError};

/// Jobs the sweep ends because a time passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overdue {
    /// QUEUED past `expiresAfter` → EXPIRED.
    Unplaced,
    /// RUNNING past its timeout plus one lease → TIMED_OUT (the lease stays,
    /// so the node's renew is told to stop).
    PastTimeout,
}

/// Expired leases handled per sweep (the rest wait for the next one).
const BATCH: i64 = 200;

/// How often the sweep runs for a lease duration: a quarter of it,
/// between 100 ms and 5 s.
pub fn period(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Runs until `cancel` fires.
pub async fn run(state: JobsState, period: Duration, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match sweep_once(&state.store, unix_millis()).await {
            Ok(transitions) => {
                for t in &transitions {
                    state.count(t.state);
                    tracing::info!(job_id = %t.job_id, state = t.state.as_str(), reason = %t.reason, "job swept");
                }
                if transitions.iter().any(|t| t.state == JobState::Queued) {
                    state.wake.notify_waiters();
                }
            }
            Err(err) => tracing::warn!(error = %err, "job sweep failed; retrying next sweep"),
        }
    }
}

/// One sweep at `now_ms`: every transition this replica won.
pub async fn sweep_once(store: &Store, now_ms: i64) -> Result<Vec<Transition>, StoreError> {
    let mut done = store.expire_leases(now_ms).await?;
    done.extend(store.finish_overdue(now_ms, Overdue::Unplaced).await?);
    done.extend(store.finish_overdue(now_ms, Overdue::PastTimeout).await?);
    Ok(done)
}

impl Store {
    /// Requeues or fails jobs whose lease ended without a renew.
    async fn expire_leases(&self, now_ms: i64) -> Result<Vec<Transition>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_id, lease_id, lease_node, attempt, max_attempts FROM jobs \
             WHERE state = 'RUNNING' AND lease_expires_at < $1 ORDER BY lease_expires_at LIMIT $2",
        )
        .bind(now_ms)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("find expired leases"))?;
        let mut done = Vec::new();
        for row in &rows {
            let read = || query_err("read an expired lease");
            let job_id: String = row.try_get(0).map_err(read())?;
            let lease_id: String = row.try_get(1).map_err(read())?;
            let node: Option<String> = row.try_get(2).map_err(read())?;
            let attempt: i64 = row.try_get(3).map_err(read())?;
            let max_attempts: i64 = row.try_get(4).map_err(read())?;
            let node = node.map(|n| parse_uuid("lease_node", &n)).transpose()?;
            let lost = node.map_or_else(|| "its node".to_string(), |n| format!("node {n}"));
            let (state, reason) = if attempt < max_attempts {
                (
                    JobState::Queued,
                    format!(
                        "lease of {lost} expired (attempt {attempt} of {max_attempts}); requeued"
                    ),
                )
            } else {
                (
                    JobState::Failed,
                    format!("node lost: the lease of {lost} expired at the last attempt ({attempt} of {max_attempts})"),
                )
            };
            let _turn = self.write_turn().await;
            let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
            let changed = sqlx::query(
                "UPDATE jobs SET state = $3, reason = $4, lease_id = NULL, lease_node = NULL, \
                 lease_expires_at = NULL, deadline_at = NULL, updated_at = $5, \
                 finished_at = CASE WHEN $3 = 'FAILED' THEN $5 ELSE NULL END \
                 WHERE job_id = $1 AND lease_id = $2 AND state = 'RUNNING' \
                 AND lease_expires_at < $5",
            )
            .bind(job_id.clone())
            .bind(lease_id.clone())
            .bind(state.as_str())
            .bind(reason.clone())
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_err("expire a lease"))?;
            if changed.rows_affected() != 1 {
                continue;
            }
            end_lease(
                &mut tx,
                parse_uuid("lease_id", &lease_id)?,
                "expired",
                now_ms,
            )
            .await?;
            let job_uuid = parse_uuid("job_id", &job_id)?;
            if state == JobState::Failed {
                void_in(&mut tx, job_uuid, "node lost", now_ms)
                    .await
                    .map_err(ledger_failure)?;
            }
            let event = Transition::new(job_uuid, state, reason, attempt, node, now_ms);
            record(&mut tx, &event).await?;
            tx.commit().await.map_err(query_err("commit an expiry"))?;
            done.push(event);
        }
        Ok(done)
    }

    /// Ends the jobs `overdue` names whose time has passed.
    async fn finish_overdue(
        &self,
        now_ms: i64,
        overdue: Overdue,
    ) -> Result<Vec<Transition>, StoreError> {
        let (query, from, to, reason) = match overdue {
            Overdue::Unplaced => (
                "UPDATE jobs SET state = $2, reason = $3, updated_at = $1, finished_at = $1 \
                 WHERE state = $4 AND expires_at IS NOT NULL AND expires_at < $1 \
                 RETURNING job_id, attempt, lease_node",
                "QUEUED",
                JobState::Expired,
                "not placed before expiresAfter",
            ),
            Overdue::PastTimeout => (
                "UPDATE jobs SET state = $2, reason = $3, updated_at = $1, finished_at = $1 \
                 WHERE state = $4 AND deadline_at IS NOT NULL AND deadline_at < $1 \
                 RETURNING job_id, attempt, lease_node",
                "RUNNING",
                JobState::TimedOut,
                "ran past its timeout without the node reporting it",
            ),
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let rows = sqlx::query(query)
            .bind(now_ms)
            .bind(to.as_str())
            .bind(reason)
            .bind(from)
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err("end overdue jobs"))?;
        let mut done = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = || query_err("read an overdue job");
            let job_id: String = row.try_get(0).map_err(read())?;
            let attempt: i64 = row.try_get(1).map_err(read())?;
            let node: Option<String> = row.try_get(2).map_err(read())?;
            let job_uuid = parse_uuid("job_id", &job_id)?;
            void_in(&mut tx, job_uuid, reason, now_ms)
                .await
                .map_err(ledger_failure)?;
            let event = Transition::new(
                job_uuid,
                to,
                reason,
                attempt,
                node.map(|n| parse_uuid("lease_node", &n)).transpose()?,
                now_ms,
            );
            record(&mut tx, &event).await?;
            done.push(event);
        }
        tx.commit()
            .await
            .map_err(query_err("commit overdue jobs"))?;
        Ok(done)
    }
}
