//! The green bonus in the store: for a settled job whose energy was partly
//! solar, `greenBonusBasisPoints` of what it was charged, for the solar
//! share, from the treasury to the node that ran it, under the transfer id
//! `green:<job>` (paid at most once). Never more than the treasury holds:
//! a short treasury pays what it has, an empty one nothing, so no balance
//! goes below zero.

use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::account::LedgerAccount;
use super::cost;
use super::store::{balance_in, transfer_in, LedgerError, NewTransfer, TransferKind};
use crate::coordinator::store::query_err;

/// Pays the green bonus of `job_id` to `node_id` inside the caller's
/// transaction; the µGAI paid (0 when the job is free, unsettled, settled
/// to another node, all grid, or the treasury is empty).
pub async fn pay_green_bonus_in(
    conn: &mut AnyConnection,
    job_id: Uuid,
    node_id: Uuid,
    solar_fraction: f64,
    bonus_basis_points: i64,
    now_ms: i64,
) -> Result<i64, LedgerError> {
    let row = sqlx::query(
        "SELECT paid, fee FROM job_costs WHERE job_id = $1 AND state = 'settled' AND node_id = $2",
    )
    .bind(job_id.to_string())
    .bind(node_id.to_string())
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_err("read a settled bill"))?;
    let Some(row) = row else {
        return Ok(0);
    };
    let read = || query_err("read a settled bill");
    let paid: Option<i64> = row.try_get(0).map_err(read())?;
    let fee: Option<i64> = row.try_get(1).map_err(read())?;
    let charged = paid.unwrap_or(0).saturating_add(fee.unwrap_or(0));
    let bonus = cost::green_bonus(charged, solar_fraction, bonus_basis_points);
    let treasury = balance_in(conn, &LedgerAccount::Treasury.key())
        .await?
        .unwrap_or(0);
    let amount = bonus.min(treasury);
    if amount <= 0 {
        return Ok(0);
    }
    let transfer = NewTransfer {
        id: format!("green:{job_id}"),
        debit: LedgerAccount::Treasury,
        credit: LedgerAccount::Node(node_id),
        amount,
        kind: TransferKind::Green,
        job_id: Some(job_id),
        memo: if amount < bonus {
            format!(
                "green bonus for job {job_id} ({:.0} % solar; {amount} of {bonus} µGAI: the treasury held no more)",
                solar_fraction * 100.0
            )
        } else {
            format!(
                "green bonus for job {job_id} ({:.0} % solar)",
                solar_fraction * 100.0
            )
        },
    };
    transfer_in(conn, &transfer, now_ms).await?;
    Ok(amount)
}
