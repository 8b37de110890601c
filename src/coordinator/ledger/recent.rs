//! The ledger at a glance, for the dashboard: the largest balances and the
//! newest transfers (index scans: `ledger_accounts_balance`,
//! `ledger_transfers_at`).

use sqlx::Row;

use super::store::{read_transfer, transfer_columns, BalanceRow, TransferRow};
use crate::coordinator::store::{query_err, Store, StoreError};

impl Store {
    /// The `limit` largest client and node balances, largest first.
    pub async fn top_balances(&self, limit: i64) -> Result<Vec<BalanceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, kind, balance FROM ledger_accounts \
             WHERE kind IN ('client', 'node') AND balance > 0 ORDER BY balance DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list the top balances"))?;
        let read = || query_err("read a balance row");
        rows.iter()
            .map(|row| {
                Ok(BalanceRow {
                    account: row.try_get(0).map_err(read())?,
                    kind: row.try_get(1).map_err(read())?,
                    balance: row.try_get(2).map_err(read())?,
                })
            })
            .collect()
    }

    /// The `limit` newest transfers, newest first.
    pub async fn recent_transfers(&self, limit: i64) -> Result<Vec<TransferRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM ledger_transfers ORDER BY at DESC, transfer_id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list the newest transfers"))?;
        rows.iter().map(read_transfer).collect()
    }
}
