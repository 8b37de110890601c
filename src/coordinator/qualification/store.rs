//! The qualification tables, and the claim in front of the jobs queue: a
//! node of a market with a qualification it has not passed gets only its
//! qualification job, made for it and leased to it at once (never QUEUED,
//! one attempt, owned by no client); its complete is judged here.

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::api::{NodeQualification, Qualification};
use super::check::{self, Verdict, QUALIFICATION_TIMEOUT_MS, RETRY_PAUSE_MS};
use crate::clock::rfc3339_millis;
use crate::coordinator::jobs::api::{JobState, JobType};
use crate::coordinator::jobs::lease_store::Granted;
use crate::coordinator::jobs::placement::fit::Claimant;
use crate::coordinator::jobs::store::{record, Transition};
use crate::coordinator::parameters::store::value_in;
use crate::coordinator::parameters::Parameter;
use crate::coordinator::store::{query_err, Store, StoreError};

/// The owner of qualification jobs: no client account has this id.
pub const QUALIFICATION_OWNER: &str = "coordinator:qualification";

/// A node's row for one market.
#[derive(Debug, Clone, PartialEq, Default)]
struct Standing {
    job_id: Option<Uuid>,
    passed_at_ms: Option<i64>,
    tokens_per_second: Option<f64>,
    last_failure: Option<String>,
    failed_at_ms: Option<i64>,
}

fn standing(row: &AnyRow) -> Result<Standing, StoreError> {
    let read = || query_err("read a node's qualification");
    let job: Option<String> = row.try_get("job_id").map_err(read())?;
    Ok(Standing {
        job_id: job.and_then(|id| Uuid::parse_str(&id).ok()),
        passed_at_ms: row.try_get("passed_at").map_err(read())?,
        tokens_per_second: row.try_get("tokens_per_second").map_err(read())?,
        last_failure: row.try_get("last_failure").map_err(read())?,
        failed_at_ms: row.try_get("failed_at").map_err(read())?,
    })
}

impl Store {
    /// Sets `market`'s qualification; nodes that passed before stay passed.
    pub async fn set_qualification(
        &self,
        market: &str,
        qualification: &Qualification,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO market_qualifications (market, model, prompt, expected, max_tokens, \
             min_tokens_per_second, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (market) DO UPDATE SET model = $2, prompt = $3, expected = $4, \
             max_tokens = $5, min_tokens_per_second = $6, updated_at = $7",
        )
        .bind(market.to_string())
        .bind(qualification.model.clone())
        .bind(qualification.prompt.clone())
        .bind(qualification.expected.clone())
        .bind(i64::from(qualification.max_tokens))
        .bind(qualification.min_tokens_per_second)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("set a qualification"))?;
        Ok(())
    }

    /// `market`'s qualification and when it was set; `None` without one.
    pub async fn qualification(
        &self,
        market: &str,
    ) -> Result<Option<(Qualification, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT model, prompt, expected, max_tokens, min_tokens_per_second, updated_at \
             FROM market_qualifications WHERE market = $1",
        )
        .bind(market.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a qualification"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let read = || query_err("read a qualification");
        let max_tokens: i64 = row.try_get(3).map_err(read())?;
        let qualification = Qualification {
            model: row.try_get(0).map_err(read())?,
            prompt: row.try_get(1).map_err(read())?,
            expected: row.try_get(2).map_err(read())?,
            max_tokens: u32::try_from(max_tokens).unwrap_or(u32::MAX),
            min_tokens_per_second: row.try_get(4).map_err(read())?,
        };
        Ok(Some((qualification, row.try_get(5).map_err(read())?)))
    }

    /// Removes `market`'s qualification; false when it had none.
    pub async fn delete_qualification(&self, market: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM market_qualifications WHERE market = $1")
            .bind(market.to_string())
            .execute(&self.pool)
            .await
            .map_err(query_err("delete a qualification"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn standing(&self, node_id: Uuid, market: &str) -> Result<Standing, StoreError> {
        let row = sqlx::query(
            "SELECT job_id, passed_at, tokens_per_second, last_failure, failed_at \
             FROM node_qualifications WHERE node_id = $1 AND market = $2",
        )
        .bind(node_id.to_string())
        .bind(market.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a node's qualification"))?;
        row.as_ref().map_or(Ok(Standing::default()), standing)
    }

    /// Node `node_id`'s standing in `market`; `None` when the market has no
    /// qualification.
    pub async fn node_qualification(
        &self,
        node_id: Uuid,
        market: &str,
    ) -> Result<Option<NodeQualification>, StoreError> {
        if self.qualification(market).await?.is_none() {
            return Ok(None);
        }
        let standing = self.standing(node_id, market).await?;
        Ok(Some(NodeQualification {
            market: market.to_string(),
            qualified: standing.passed_at_ms.is_some(),
            qualified_at: standing.passed_at_ms.map(rfc3339_millis),
            tokens_per_second: standing.tokens_per_second,
            running_job: standing.job_id,
            last_failure: standing.last_failure,
            last_failure_at: standing.failed_at_ms.map(rfc3339_millis),
            retry_after: standing
                .failed_at_ms
                .filter(|_| standing.passed_at_ms.is_none())
                .map(|at| rfc3339_millis(at.saturating_add(RETRY_PAUSE_MS))),
        }))
    }

    /// Nodes that passed `market`'s qualification; `None` without one.
    pub async fn qualified_nodes(&self, market: &str) -> Result<Option<u64>, StoreError> {
        if self.qualification(market).await?.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT COUNT(*) FROM node_qualifications WHERE market = $1 AND passed_at IS NOT NULL",
        )
        .bind(market.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("count qualified nodes"))?;
        let count: i64 = row.try_get(0).map_err(query_err("count qualified nodes"))?;
        Ok(Some(u64::try_from(count).unwrap_or_default()))
    }

    /// A first-come claim through the qualification gate: the market's
    /// queue when the market has no qualification or the node passed it;
    /// else what [`Store::qualification_claim`] gives.
    pub async fn claim_qualified(
        &self,
        claimant: &Claimant,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Granted>, StoreError> {
        match self.qualification_claim(claimant, lease_ms, now_ms).await? {
            Some(gated) => Ok(gated),
            None => self.claim(claimant, lease_ms, now_ms).await,
        }
    }

    /// The qualification gate of a claim: `None` when the market has no
    /// qualification or the node passed it (the claim is placed like any);
    /// else the node's qualification job, or nothing while one runs, during
    /// the pause after a failure, or when the node takes no inference jobs.
    pub async fn qualification_claim(
        &self,
        claimant: &Claimant,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Option<Granted>>, StoreError> {
        let Some((qualification, _)) = self.qualification(&claimant.market).await? else {
            return Ok(None);
        };
        let standing = self.standing(claimant.node_id, &claimant.market).await?;
        if standing.passed_at_ms.is_some() {
            return Ok(None);
        }
        if !claimant.job_types.contains(&JobType::Inference) {
            return Ok(Some(None));
        }
        let mut failed_at = standing.failed_at_ms;
        if let Some(job_id) = standing.job_id {
            // A job that ended without a complete (the sweep failed it: node
            // lost) is a failed try.
            let reason = match self.job(job_id).await? {
                Some(job) if !job.state.is_final() => return Ok(Some(None)),
                Some(job) => format!(
                    "the qualification job ended {}: {}",
                    job.state.as_str(),
                    job.reason.unwrap_or_default()
                ),
                None => format!("the qualification job {job_id} is gone"),
            };
            let verdict = Verdict::Failed {
                tokens_per_second: None,
                reason,
            };
            self.record_verdict(job_id, &verdict, now_ms).await?;
            failed_at = Some(now_ms);
        }
        if failed_at.is_some_and(|at| now_ms < at.saturating_add(RETRY_PAUSE_MS)) {
            return Ok(Some(None));
        }
        self.lease_qualification(claimant, &qualification, lease_ms, now_ms)
            .await
            .map(Some)
    }

    /// Makes the node's qualification job, RUNNING under a new lease.
    async fn lease_qualification(
        &self,
        claimant: &Claimant,
        qualification: &Qualification,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Granted>, StoreError> {
        let job_id = Uuid::new_v4();
        let lease_id = Uuid::new_v4();
        let expires_at_ms = now_ms.saturating_add(lease_ms);
        let spec =
            serde_json::to_string(&check::request(qualification)).unwrap_or_else(|_| "{}".into());
        let reason = format!(
            "qualifying node {} for market {}",
            claimant.node_id, claimant.market
        );
        let turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        // Wins only when no other qualification job runs for this node.
        let taken = sqlx::query(
            "INSERT INTO node_qualifications (node_id, market, job_id) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id, market) DO UPDATE SET job_id = $3 \
             WHERE node_qualifications.job_id IS NULL",
        )
        .bind(claimant.node_id.to_string())
        .bind(claimant.market.clone())
        .bind(job_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(query_err("start a qualification"))?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO jobs (job_id, owner, kind, spec, market, labels, constraints, \
             timeout_ms, max_attempts, attempt, state, reason, lease_id, lease_node, \
             lease_expires_at, deadline_at, created_at, updated_at, started_at) VALUES \
             ($1, $2, 'inference', $3, $4, '{}', '{}', $5, 1, 1, 'RUNNING', $6, $7, $8, $9, \
             $10, $11, $11, $11)",
        )
        .bind(job_id.to_string())
        .bind(QUALIFICATION_OWNER)
        .bind(spec)
        .bind(claimant.market.clone())
        .bind(QUALIFICATION_TIMEOUT_MS)
        .bind(reason.clone())
        .bind(lease_id.to_string())
        .bind(claimant.node_id.to_string())
        .bind(expires_at_ms)
        .bind(now_ms.saturating_add(QUALIFICATION_TIMEOUT_MS + lease_ms))
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("make a qualification job"))?;
        sqlx::query(
            "INSERT INTO leases (lease_id, job_id, node_id, attempt, granted_at) \
             VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(lease_id.to_string())
        .bind(job_id.to_string())
        .bind(claimant.node_id.to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record a lease"))?;
        let event = Transition::new(
            job_id,
            JobState::Running,
            reason,
            1,
            Some(claimant.node_id),
            now_ms,
        );
        record(&mut tx, &event).await?;
        tx.commit()
            .await
            .map_err(query_err("commit a qualification lease"))?;
        drop(turn);
        let Some(job) = self.job(job_id).await? else {
            return Ok(None);
        };
        Ok(Some(Granted {
            lease_id,
            attempt: 1,
            expires_at_ms,
            job,
        }))
    }

    /// Judges a just completed job if it is a qualification job (`None`
    /// otherwise) and records the verdict.
    pub async fn judge_qualification(
        &self,
        job_id: Uuid,
        lease_id: Uuid,
        state: JobState,
        result: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Option<Verdict>, StoreError> {
        let row = sqlx::query(
            "SELECT q.market, l.granted_at FROM node_qualifications q \
             JOIN leases l ON l.job_id = q.job_id WHERE q.job_id = $1 AND l.lease_id = $2",
        )
        .bind(job_id.to_string())
        .bind(lease_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("find a qualification job"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let read = || query_err("read a qualification job");
        let market: String = row.try_get(0).map_err(read())?;
        let granted_at: i64 = row.try_get(1).map_err(read())?;
        let Some((qualification, _)) = self.qualification(&market).await? else {
            let verdict = Verdict::Failed {
                tokens_per_second: None,
                reason: format!("market {market} has no qualification any more"),
            };
            self.record_verdict(job_id, &verdict, now_ms).await?;
            return Ok(Some(verdict));
        };
        let minimum = {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(query_err("read a qualification minimum"))?;
            let parameter = Parameter::QualificationMinTokensPerSecond(market.clone());
            value_in(&mut conn, &parameter, now_ms).await?
        };
        let qualification = check::with_minimum(qualification, minimum);
        let verdict = check::judge(&qualification, state, result, now_ms - granted_at);
        self.record_verdict(job_id, &verdict, now_ms).await?;
        Ok(Some(verdict))
    }

    /// Ends the node's qualification job `job_id` with `verdict`.
    async fn record_verdict(
        &self,
        job_id: Uuid,
        verdict: &Verdict,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let query = match verdict {
            Verdict::Passed { tokens_per_second } => sqlx::query(
                "UPDATE node_qualifications SET job_id = NULL, passed_at = $2, \
                 tokens_per_second = $3 WHERE job_id = $1",
            )
            .bind(job_id.to_string())
            .bind(now_ms)
            .bind(*tokens_per_second),
            Verdict::Failed {
                tokens_per_second,
                reason,
            } => sqlx::query(
                "UPDATE node_qualifications SET job_id = NULL, failed_at = $2, \
                 tokens_per_second = $3, last_failure = $4 WHERE job_id = $1",
            )
            .bind(job_id.to_string())
            .bind(now_ms)
            .bind(*tokens_per_second)
            .bind(reason.clone()),
        };
        let _turn = self.write_turn().await;
        query
            .execute(&self.pool)
            .await
            .map_err(query_err("record a qualification verdict"))?;
        Ok(())
    }
}
