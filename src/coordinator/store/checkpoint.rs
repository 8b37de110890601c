//! SQLite's WAL checkpoints off the request path. By default SQLite
//! checkpoints inside whichever commit takes the WAL past 1,000 pages — a
//! heartbeat batch's commit among them, which then waits for the database
//! file to be written and synced. Every connection turns that off
//! (`wal_autocheckpoint = 0`, see [`Store::connect`]) and this task
//! checkpoints every [`PERIOD`] instead, `PASSIVE`ly: it never waits for
//! readers or writers, and never makes them wait.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{query_err, Backend, Store, StoreError};

/// How often the WAL is copied back into the database file.
pub const PERIOD: Duration = Duration::from_millis(500);

impl Store {
    /// One passive checkpoint (SQLite); nothing on PostgreSQL.
    pub(in crate::coordinator) async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("checkpoint the WAL"))?;
        Ok(())
    }
}

/// Checkpoints every [`PERIOD`] until `cancel` fires (returns at once on
/// PostgreSQL). A failed checkpoint is logged and tried again next period.
pub async fn run(store: Store, cancel: CancellationToken) {
    if store.backend() != Backend::Sqlite {
        return;
    }
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(err) = store.checkpoint().await {
            tracing::warn!(error = %err, "WAL checkpoint failed; retrying next period");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With automatic checkpoints off, the WAL keeps every commit until a
    /// checkpoint copies it back; after one, a new writer starts the WAL
    /// from its beginning again (it does not grow past one period's worth).
    #[tokio::test]
    async fn commits_stay_in_the_wal_until_the_checkpoint() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("c.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("store");
        let wal = tmp.path().join("c.db-wal");
        let write = |n: i64| {
            let store = store.clone();
            async move {
                for i in 0..n {
                    sqlx::query("INSERT INTO request_nonces (node_id, nonce, expires_at) VALUES ($1, $2, 0)")
                        .bind(format!("node-{i}"))
                        .bind(format!("{n}-{i}-{}", "x".repeat(400)))
                        .execute(&store.pool)
                        .await
                        .expect("insert");
                }
            }
        };
        write(2_000).await;
        let grown = std::fs::metadata(&wal).expect("wal").len();
        assert!(
            grown > 8_000_000,
            "the WAL holds every commit: {grown} bytes"
        );
        store.checkpoint().await.expect("checkpoint");
        write(10).await;
        let after = std::fs::metadata(&wal).expect("wal").len();
        assert_eq!(after, grown, "the WAL file is reused in place, not grown");
        store.checkpoint().await.expect("checkpoint");
        store.close().await;
    }
}
