//! The ledger's audit: supply, balances and holds read in one snapshot,
//! and every invariant of NETWORK.md's "Money" checked in SQL against the
//! stored rows (not against what the code believes): the supply is the sum
//! of balances, no balance is negative, every balance is the replay of its
//! transfers, every bill's escrow holds what the bill says, finished jobs
//! hold nothing, and no job is paid twice; gateway requests' bills
//! (`gateway::billing`) likewise.

use sqlx::{AnyConnection, Row};

use super::api::{Invariant, LedgerAudit};
use crate::coordinator::store::{query_err, Backend, Store, StoreError};

/// Job states no job leaves, as SQL.
const FINAL_STATES: &str = "('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELLED', 'EXPIRED')";

/// Each invariant: its name, what it means, and a query counting the rows
/// that break it.
fn invariant_queries() -> [(&'static str, &'static str, String); 9] {
    [
        (
            "supply_equals_balances",
            "the minted supply equals the sum of all balances",
            "SELECT CASE WHEN (SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM ledger_accounts) = 0 \
             AND (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_transfers WHERE kind = 'mint') \
             = (SELECT CAST(COALESCE(-SUM(balance), 0) AS BIGINT) FROM ledger_accounts WHERE kind = 'issuer') \
             THEN 0 ELSE 1 END"
                .to_string(),
        ),
        (
            "no_negative_balance",
            "no account but the issuer is below zero",
            "SELECT COUNT(*) FROM ledger_accounts WHERE kind <> 'issuer' AND balance < 0".to_string(),
        ),
        (
            "balances_replay_transfers",
            "every balance equals its credits minus its debits",
            "SELECT COUNT(*) FROM ledger_accounts a WHERE a.balance <> \
             CAST(COALESCE((SELECT SUM(t.amount) FROM ledger_transfers t WHERE t.credit = a.account), 0) AS BIGINT) \
             - CAST(COALESCE((SELECT SUM(t.amount) FROM ledger_transfers t WHERE t.debit = a.account), 0) AS BIGINT)"
                .to_string(),
        ),
        (
            "escrow_matches_bills",
            "a held job's escrow holds its hold; a settled or voided one holds nothing",
            "SELECT COUNT(*) FROM job_costs c LEFT JOIN ledger_accounts a \
             ON a.account = 'escrow:' || c.job_id \
             WHERE COALESCE(a.balance, 0) <> CASE WHEN c.state = 'held' THEN c.held ELSE 0 END"
                .to_string(),
        ),
        (
            "finished_jobs_hold_nothing",
            "no job in a final state has an open hold",
            format!(
                "SELECT COUNT(*) FROM job_costs c JOIN jobs j ON j.job_id = c.job_id \
                 WHERE c.state = 'held' AND j.state IN {FINAL_STATES}"
            ),
        ),
        (
            "paid_at_most_once",
            "no job has more than one payment, and only settled jobs have one",
            "SELECT COUNT(*) FROM ledger_transfers t LEFT JOIN job_costs c ON c.job_id = t.job_id \
             WHERE t.kind IN ('pay', 'fee') AND t.job_id IS NOT NULL \
             AND (c.state IS NULL OR c.state <> 'settled')"
                .to_string(),
        ),
        (
            "gateway_escrow_matches_bills",
            "a held gateway request's escrow holds its hold; a settled or voided one holds nothing",
            "SELECT COUNT(*) FROM gateway_bills g LEFT JOIN ledger_accounts a \
             ON a.account = 'escrow:' || g.request_id \
             WHERE COALESCE(a.balance, 0) <> CASE WHEN g.state = 'held' THEN g.held ELSE 0 END \
             OR (g.state <> 'held' AND COALESCE(g.paid, 0) + COALESCE(g.fee, 0) + COALESCE(g.refunded, 0) <> g.held)"
                .to_string(),
        ),
        (
            "gateway_paid_at_most_once",
            "every payment or fee without a job is the one of a settled gateway request",
            // `pay:<request>` and `fee:<request>`: the id follows 4 characters.
            "SELECT COUNT(*) FROM ledger_transfers t LEFT JOIN gateway_bills g \
             ON g.request_id = SUBSTR(t.transfer_id, 5) \
             WHERE t.kind IN ('pay', 'fee') AND t.job_id IS NULL \
             AND (g.state IS NULL OR g.state <> 'settled')"
                .to_string(),
        ),
        (
            "settlements_add_up",
            "every settled bill's payment, fee and refund add up to its hold",
            "SELECT COUNT(*) FROM job_costs WHERE state <> 'held' \
             AND COALESCE(paid, 0) + COALESCE(fee, 0) + COALESCE(refunded, 0) <> held"
                .to_string(),
        ),
    ]
}

async fn scalar(conn: &mut AnyConnection, sql: &str) -> Result<i64, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(query_err("audit the ledger"))
}

impl Store {
    /// The audit, read in one snapshot.
    pub async fn audit(&self) -> Result<LedgerAudit, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await
                .map_err(query_err("audit the ledger"))?;
        }
        let supply = scalar(
            &mut tx,
            "SELECT CAST(COALESCE(-SUM(balance), 0) AS BIGINT) FROM ledger_accounts WHERE kind = 'issuer'",
        )
        .await?;
        let balances = scalar(
            &mut tx,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM ledger_accounts WHERE kind <> 'issuer'",
        )
        .await?;
        let treasury = scalar(
            &mut tx,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM ledger_accounts WHERE kind = 'treasury'",
        )
        .await?;
        let open_holds = scalar(
            &mut tx,
            "SELECT COUNT(*) FROM ledger_accounts WHERE kind = 'escrow' AND balance > 0",
        )
        .await?;
        let held = scalar(
            &mut tx,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM ledger_accounts WHERE kind = 'escrow'",
        )
        .await?;
        let transfers = scalar(&mut tx, "SELECT COUNT(*) FROM ledger_transfers").await?;
        let mut invariants = Vec::new();
        for (name, meaning, sql) in invariant_queries() {
            let breaking = scalar(&mut tx, &sql).await?;
            invariants.push(Invariant {
                name: name.to_string(),
                meaning: meaning.to_string(),
                holds: breaking == 0,
                breaking,
            });
        }
        tx.commit().await.map_err(query_err("audit the ledger"))?;
        Ok(LedgerAudit {
            ok: invariants.iter().all(|i| i.holds),
            supply_ugai: supply,
            balances_ugai: balances,
            treasury_ugai: treasury,
            open_holds,
            held_ugai: held,
            transfers,
            invariants,
        })
    }
}
