//! Transfers in the store. [`transfer_in`] is the one writer of balances:
//! inside the caller's transaction it records the transfer under its unique
//! id (a repeat with the same id changes nothing and says so; the same id
//! for another transfer is refused), debits with a conditional UPDATE
//! (`balance >= amount`, also guarded by the table's CHECK) and credits.
//! Reading: balances and an account's transfers, a page at a time.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::account::LedgerAccount;
use crate::coordinator::store::{query_err, Store, StoreError};

/// The columns [`read_transfer`] reads, for `concat!` in queries.
macro_rules! transfer_columns {
    () => {
        "transfer_id, debit, credit, amount, kind, job_id, memo, at"
    };
}
pub(super) use transfer_columns;

/// Why a transfer was refused.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{account} holds {balance} µGAI and {needed} µGAI are needed")]
    Insufficient {
        account: String,
        balance: i64,
        needed: i64,
    },
    #[error("transfer id {id} was used before for another transfer (fix: use a new id for a new transfer)")]
    IdReused { id: String },
    #[error("{account} cannot receive minted GAI (fix: mint to the treasury, a client or a node)")]
    NotMintable { account: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a transfer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    Mint,
    Hold,
    Pay,
    Fee,
    Refund,
    /// The green bonus, from the treasury to a node.
    Green,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Mint => "mint",
            TransferKind::Hold => "hold",
            TransferKind::Pay => "pay",
            TransferKind::Fee => "fee",
            TransferKind::Refund => "refund",
            TransferKind::Green => "green",
        }
    }
}

/// A transfer to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// Unique: the same id twice is one transfer.
    pub id: String,
    pub debit: LedgerAccount,
    pub credit: LedgerAccount,
    /// µGAI, above 0.
    pub amount: i64,
    pub kind: TransferKind,
    pub job_id: Option<Uuid>,
    pub memo: String,
}

/// Whether a transfer happened now or before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now,
    /// The same transfer was made before under this id.
    Before,
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    pub id: String,
    pub debit: String,
    pub credit: String,
    pub amount: i64,
    pub kind: String,
    pub job_id: Option<String>,
    pub memo: String,
    pub at_ms: i64,
}

/// A balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub account: String,
    pub kind: String,
    pub balance: i64,
}

/// One credit of a batch from one debit account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    /// Unique: the same id twice is one transfer.
    pub id: String,
    pub account: LedgerAccount,
    /// µGAI, above 0.
    pub amount: i64,
    pub kind: TransferKind,
    pub memo: String,
}

/// Makes `transfer` inside the caller's transaction; on an error the
/// caller must roll back (a debit may have been refused after the record).
pub async fn transfer_in(
    conn: &mut AnyConnection,
    transfer: &NewTransfer,
    now_ms: i64,
) -> Result<Applied, LedgerError> {
    let credit = Credit {
        id: transfer.id.clone(),
        account: transfer.credit.clone(),
        amount: transfer.amount,
        kind: transfer.kind,
        memo: transfer.memo.clone(),
    };
    transfers_from_in(conn, &transfer.debit, &[credit], transfer.job_id, now_ms).await
}

/// Makes one transfer per credit, all from `debit`, inside the caller's
/// transaction: the transfers recorded in one statement, the debit of
/// their sum in one conditional UPDATE (refused below zero), each credit
/// one upsert. Either all were made now, or all before (a retry of the
/// same batch); anything else is refused and the caller must roll back.
pub async fn transfers_from_in(
    conn: &mut AnyConnection,
    debit: &LedgerAccount,
    credits: &[Credit],
    job_id: Option<Uuid>,
    now_ms: i64,
) -> Result<Applied, LedgerError> {
    debug_assert!(credits.iter().all(|c| c.amount > 0 && c.account != *debit));
    if credits.is_empty() {
        return Ok(Applied::Now);
    }
    let sql = format!(
        "INSERT INTO ledger_transfers (transfer_id, debit, credit, amount, kind, job_id, memo, at) \
         VALUES {} ON CONFLICT (transfer_id) DO NOTHING",
        value_rows(credits.len(), 8)
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for credit in credits {
        insert = insert
            .bind(credit.id.clone())
            .bind(debit.key())
            .bind(credit.account.key())
            .bind(credit.amount)
            .bind(credit.kind.as_str())
            .bind(job_id.map(|id| id.to_string()))
            .bind(credit.memo.clone())
            .bind(now_ms);
    }
    let inserted = insert
        .execute(&mut *conn)
        .await
        .map_err(query_err("record transfers"))?
        .rows_affected();
    if inserted != credits.len() as u64 {
        return made_before(conn, debit, credits, inserted).await;
    }
    let total = credits
        .iter()
        .try_fold(0i64, |sum, c| sum.checked_add(c.amount))
        .ok_or_else(|| LedgerError::Insufficient {
            account: debit.key(),
            balance: 0,
            needed: i64::MAX,
        })?;
    let debited = sqlx::query(
        "UPDATE ledger_accounts SET balance = balance - $2 WHERE account = $1 \
         AND (kind = 'issuer' OR balance >= $2)",
    )
    .bind(debit.key())
    .bind(total)
    .execute(&mut *conn)
    .await
    .map_err(query_err("debit an account"))?;
    if debited.rows_affected() != 1 {
        let balance = balance_in(conn, &debit.key()).await?.unwrap_or(0);
        return Err(LedgerError::Insufficient {
            account: debit.key(),
            balance,
            needed: total,
        });
    }
    // One upsert credits every account, each once (summed first: one
    // statement may not update a row twice).
    let mut sums: BTreeMap<String, (&'static str, i64)> = BTreeMap::new();
    for credit in credits {
        let sum = sums
            .entry(credit.account.key())
            .or_insert((credit.account.kind(), 0));
        sum.1 += credit.amount;
    }
    let sql = format!(
        "INSERT INTO ledger_accounts (account, kind, balance, created_at) VALUES {} \
         ON CONFLICT (account) DO UPDATE SET balance = ledger_accounts.balance + excluded.balance",
        value_rows(sums.len(), 4)
    );
    let mut credit = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (account, (kind, amount)) in sums {
        credit = credit.bind(account).bind(kind).bind(amount).bind(now_ms);
    }
    credit
        .execute(&mut *conn)
        .await
        .map_err(query_err("credit accounts"))?;
    Ok(Applied::Now)
}

/// `($1, $2, …), (…)`: `rows` rows of `columns` numbered placeholders.
fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A batch whose ids were (partly) used before: a retry when every
/// transfer is stored exactly as asked, refused otherwise.
async fn made_before(
    conn: &mut AnyConnection,
    debit: &LedgerAccount,
    credits: &[Credit],
    inserted: u64,
) -> Result<Applied, LedgerError> {
    for credit in credits {
        let same = transfer_row(conn, &credit.id).await?.is_some_and(|row| {
            row.debit == debit.key()
                && row.credit == credit.account.key()
                && row.amount == credit.amount
        });
        if !same || inserted != 0 {
            return Err(LedgerError::IdReused {
                id: credit.id.clone(),
            });
        }
    }
    Ok(Applied::Before)
}

/// Mints `amount` into `account` from the issuer under `transfer_id`.
pub async fn mint_in(
    conn: &mut AnyConnection,
    account: &LedgerAccount,
    amount: i64,
    transfer_id: &str,
    memo: &str,
    now_ms: i64,
) -> Result<Applied, LedgerError> {
    if !account.may_receive_mint() {
        return Err(LedgerError::NotMintable {
            account: account.key(),
        });
    }
    let transfer = NewTransfer {
        id: transfer_id.to_string(),
        debit: LedgerAccount::Issuer,
        credit: account.clone(),
        amount,
        kind: TransferKind::Mint,
        job_id: None,
        memo: memo.to_string(),
    };
    transfer_in(conn, &transfer, now_ms).await
}

/// The balance of `account`, if it was ever opened.
pub async fn balance_in(
    conn: &mut AnyConnection,
    account: &str,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT balance FROM ledger_accounts WHERE account = $1")
        .bind(account.to_string())
        .fetch_optional(conn)
        .await
        .map_err(query_err("read a balance"))?;
    row.map(|row| row.try_get(0))
        .transpose()
        .map_err(query_err("read a balance"))
}

async fn transfer_row(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<TransferRow>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM ledger_transfers WHERE transfer_id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await
    .map_err(query_err("read a transfer"))?;
    row.as_ref().map(read_transfer).transpose()
}

pub(super) fn read_transfer(row: &sqlx::any::AnyRow) -> Result<TransferRow, StoreError> {
    let read = || query_err("read a transfer");
    Ok(TransferRow {
        id: row.try_get(0).map_err(read())?,
        debit: row.try_get(1).map_err(read())?,
        credit: row.try_get(2).map_err(read())?,
        amount: row.try_get(3).map_err(read())?,
        kind: row.try_get(4).map_err(read())?,
        job_id: row.try_get(5).map_err(read())?,
        memo: row.try_get(6).map_err(read())?,
        at_ms: row.try_get(7).map_err(read())?,
    })
}

/// Where a page of transfers continues: older than (at, transfer id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferCursor {
    pub at_ms: i64,
    pub id: String,
}

impl TransferCursor {
    pub fn key(row: &TransferRow) -> String {
        format!("{}.{}", row.at_ms, row.id)
    }

    pub fn parse(key: &str) -> Option<Self> {
        let (at, id) = key.split_once('.')?;
        Some(TransferCursor {
            at_ms: at.parse().ok()?,
            id: id.to_string(),
        })
    }
}

impl Store {
    /// Makes one transfer in its own transaction.
    pub async fn transfer(
        &self,
        transfer: &NewTransfer,
        now_ms: i64,
    ) -> Result<Applied, LedgerError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let applied = transfer_in(&mut tx, transfer, now_ms).await?;
        tx.commit().await.map_err(query_err("commit a transfer"))?;
        Ok(applied)
    }

    /// Mints in its own transaction.
    pub async fn mint(
        &self,
        account: &LedgerAccount,
        amount: i64,
        transfer_id: &str,
        memo: &str,
        now_ms: i64,
    ) -> Result<Applied, LedgerError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let applied = mint_in(&mut tx, account, amount, transfer_id, memo, now_ms).await?;
        tx.commit().await.map_err(query_err("commit a mint"))?;
        Ok(applied)
    }

    /// One account's balance (`None`: never opened).
    pub async fn balance(&self, account: &LedgerAccount) -> Result<Option<BalanceRow>, StoreError> {
        let row =
            sqlx::query("SELECT account, kind, balance FROM ledger_accounts WHERE account = $1")
                .bind(account.key())
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read a balance"))?;
        row.map(|row| {
            let read = || query_err("read a balance");
            Ok(BalanceRow {
                account: row.try_get(0).map_err(read())?,
                kind: row.try_get(1).map_err(read())?,
                balance: row.try_get(2).map_err(read())?,
            })
        })
        .transpose()
    }

    /// Up to `limit + 1` transfers into or out of `account` older than
    /// `before`, newest first.
    pub async fn transfers_page(
        &self,
        account: &LedgerAccount,
        before: Option<&TransferCursor>,
        limit: u32,
    ) -> Result<Vec<TransferRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM ledger_transfers WHERE (debit = $1 OR credit = $1) \
             AND (at < $2 OR (at = $2 AND transfer_id < $3)) \
             ORDER BY at DESC, transfer_id DESC LIMIT $4"
        ))
        .bind(account.key())
        .bind(before.map_or(i64::MAX, |c| c.at_ms))
        .bind(before.map_or_else(String::new, |c| c.id.clone()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list transfers"))?;
        rows.iter().map(read_transfer).collect()
    }

    /// Every transfer of one job, oldest first.
    pub async fn job_transfers(&self, job_id: Uuid) -> Result<Vec<TransferRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM ledger_transfers WHERE job_id = $1 ORDER BY at, transfer_id"
        ))
        .bind(job_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list a job's transfers"))?;
        rows.iter().map(read_transfer).collect()
    }
}
