//! A job's bill in the store, always inside the transaction of the job
//! transition that causes it: [`hold_in`] at submission (payer → the job's
//! escrow), [`settle_in`] when a lease completes (escrow → node, fee →
//! treasury, the rest back), [`void_in`] when the job ends unrun (all
//! back). `job_costs.state` moves from `held` exactly once, by a
//! conditional UPDATE, and the transfer ids (`pay:<job>`, …) are unique:
//! a job is paid at most once, whichever node or replica asks.

use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::account::LedgerAccount;
use super::cost::{self, Split};
use super::store::{transfer_in, LedgerError, NewTransfer, TransferKind};
use crate::coordinator::store::{query_err, Store, StoreError};

/// Who pays for a job, and at what price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub payer: LedgerAccount,
    /// µGAI per second.
    pub price_per_second: i64,
}

/// A job's bill as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCostRow {
    pub payer: String,
    pub price_per_second: i64,
    pub held: i64,
    /// `held`, `settled` or `voided`.
    pub state: String,
    pub node_id: Option<String>,
    pub billed_seconds: Option<i64>,
    pub paid: Option<i64>,
    pub fee: Option<i64>,
    pub fee_basis_points: Option<i64>,
    pub refunded: Option<i64>,
    pub settled_at_ms: Option<i64>,
}

/// Holds price × timeout of `job_id` from the payer; refused with
/// [`LedgerError::Insufficient`] when the payer's balance does not cover it.
pub async fn hold_in(
    conn: &mut AnyConnection,
    job_id: Uuid,
    charge: &Charge,
    timeout_ms: i64,
    now_ms: i64,
) -> Result<i64, LedgerError> {
    let held = cost::hold(charge.price_per_second, timeout_ms).ok_or_else(|| {
        LedgerError::Insufficient {
            account: charge.payer.key(),
            balance: 0,
            needed: i64::MAX,
        }
    })?;
    sqlx::query(
        "INSERT INTO job_costs (job_id, payer, price_per_second, held, state) \
         VALUES ($1, $2, $3, $4, 'held')",
    )
    .bind(job_id.to_string())
    .bind(charge.payer.key())
    .bind(charge.price_per_second)
    .bind(held)
    .execute(&mut *conn)
    .await
    .map_err(query_err("record a job's bill"))?;
    if held > 0 {
        let transfer = NewTransfer {
            id: format!("hold:{job_id}"),
            debit: charge.payer.clone(),
            credit: LedgerAccount::Escrow(job_id),
            amount: held,
            kind: TransferKind::Hold,
            job_id: Some(job_id),
            memo: format!("hold for job {job_id}"),
        };
        transfer_in(conn, &transfer, now_ms).await?;
    }
    Ok(held)
}

/// The payer, price and hold of a job still held.
async fn open_bill(
    conn: &mut AnyConnection,
    job_id: Uuid,
) -> Result<Option<(LedgerAccount, i64, i64)>, StoreError> {
    let row = sqlx::query(
        "SELECT payer, price_per_second, held FROM job_costs WHERE job_id = $1 AND state = 'held'",
    )
    .bind(job_id.to_string())
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_err("read a job's bill"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let read = || query_err("read a job's bill");
    let payer: String = row.try_get(0).map_err(read())?;
    let payer = LedgerAccount::parse(&payer).ok_or_else(|| StoreError::CorruptRow {
        table: "job_costs",
        key: job_id.to_string(),
        problem: format!("payer {payer:?}"),
    })?;
    Ok(Some((
        payer,
        row.try_get(1).map_err(read())?,
        row.try_get(2).map_err(read())?,
    )))
}

/// Settles a held job that ran `billed_ms` on `node_id` under its
/// completing lease; `None` when the job has no open bill (free, or
/// settled or voided before).
pub async fn settle_in(
    conn: &mut AnyConnection,
    job_id: Uuid,
    node_id: Uuid,
    billed_ms: i64,
    fee_basis_points: i64,
    now_ms: i64,
) -> Result<Option<Split>, LedgerError> {
    let Some((payer, price, held)) = open_bill(conn, job_id).await? else {
        return Ok(None);
    };
    let split = cost::split(held, price, billed_ms, fee_basis_points);
    let closed = sqlx::query(
        "UPDATE job_costs SET state = 'settled', node_id = $2, billed_ms = $3, \
         billed_seconds = $4, paid = $5, fee = $6, fee_basis_points = $7, refunded = $8, \
         settled_at = $9 WHERE job_id = $1 AND state = 'held'",
    )
    .bind(job_id.to_string())
    .bind(node_id.to_string())
    .bind(billed_ms)
    .bind(split.billed_seconds)
    .bind(split.paid)
    .bind(split.fee)
    .bind(fee_basis_points)
    .bind(split.refunded)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(query_err("settle a job's bill"))?;
    if closed.rows_affected() != 1 {
        return Ok(None);
    }
    let escrow = LedgerAccount::Escrow(job_id);
    let parts = [
        (
            "pay",
            LedgerAccount::Node(node_id),
            split.paid,
            TransferKind::Pay,
        ),
        ("fee", LedgerAccount::Treasury, split.fee, TransferKind::Fee),
        ("refund", payer, split.refunded, TransferKind::Refund),
    ];
    for (what, credit, amount, kind) in parts {
        if amount == 0 {
            continue;
        }
        let transfer = NewTransfer {
            id: format!("{what}:{job_id}"),
            debit: escrow.clone(),
            credit,
            amount,
            kind,
            job_id: Some(job_id),
            memo: format!(
                "{what} for job {job_id} ({} s billed)",
                split.billed_seconds
            ),
        };
        transfer_in(conn, &transfer, now_ms).await?;
    }
    Ok(Some(split))
}

/// Gives a held job's whole hold back; `None` when it has no open bill.
pub async fn void_in(
    conn: &mut AnyConnection,
    job_id: Uuid,
    why: &str,
    now_ms: i64,
) -> Result<Option<i64>, LedgerError> {
    let Some((payer, _, held)) = open_bill(conn, job_id).await? else {
        return Ok(None);
    };
    let closed = sqlx::query(
        "UPDATE job_costs SET state = 'voided', billed_seconds = 0, paid = 0, fee = 0, \
         refunded = held, settled_at = $2 WHERE job_id = $1 AND state = 'held'",
    )
    .bind(job_id.to_string())
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(query_err("void a job's bill"))?;
    if closed.rows_affected() != 1 {
        return Ok(None);
    }
    if held > 0 {
        let transfer = NewTransfer {
            id: format!("refund:{job_id}"),
            debit: LedgerAccount::Escrow(job_id),
            credit: payer,
            amount: held,
            kind: TransferKind::Refund,
            job_id: Some(job_id),
            memo: format!("hold of job {job_id} voided: {why}"),
        };
        transfer_in(conn, &transfer, now_ms).await?;
    }
    Ok(Some(held))
}

impl Store {
    /// A job's bill (`None`: the job is free: submitted by the admin or
    /// the coordinator itself).
    pub async fn job_cost(&self, job_id: Uuid) -> Result<Option<JobCostRow>, StoreError> {
        let row = sqlx::query(
            "SELECT payer, price_per_second, held, state, node_id, billed_seconds, paid, fee, \
             fee_basis_points, refunded, settled_at FROM job_costs WHERE job_id = $1",
        )
        .bind(job_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a job's bill"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let read = || query_err("read a job's bill");
        Ok(Some(JobCostRow {
            payer: row.try_get(0).map_err(read())?,
            price_per_second: row.try_get(1).map_err(read())?,
            held: row.try_get(2).map_err(read())?,
            state: row.try_get(3).map_err(read())?,
            node_id: row.try_get(4).map_err(read())?,
            billed_seconds: row.try_get(5).map_err(read())?,
            paid: row.try_get(6).map_err(read())?,
            fee: row.try_get(7).map_err(read())?,
            fee_basis_points: row.try_get(8).map_err(read())?,
            refunded: row.try_get(9).map_err(read())?,
            settled_at_ms: row.try_get(10).map_err(read())?,
        }))
    }
}
