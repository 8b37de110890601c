//! SQLite's WAL checkpoints off the request path. By default SQLite
//! checkpoints inside whichever commit takes the WAL past 1,000 pages — a
//! heartbeat batch's commit among them, which then waits for the database
//! file to be written and synced. Every connection turns that off
//! (`wal_autocheckpoint = 0`, see [`Store::connect`]) and this task
//! checkpoints every [`PERIOD`] instead, `PASSIVE`ly: it never waits for
//! readers or writers, and never makes them wait.
//!
//! A passive checkpoint copies the WAL back but cannot make the next
//! writer start the WAL from its beginning while readers still read
//! through it, and under a steady load some always do: the file then grows
//! without end (10 GB in five minutes of registrations, measured). So once
//! the WAL holds more than [`RESTART_FRAMES`], the task takes the writer
//! turn and checkpoints in `RESTART` mode, which waits for those readers
//! (milliseconds) so the next commit writes from the WAL's start again.

use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::{query_err, Backend, Store, StoreError};

/// How often the WAL is copied back into the database file.
pub const PERIOD: Duration = Duration::from_millis(500);
/// WAL frames (pages) past which a checkpoint waits for readers so the WAL
/// restarts: 16 MiB of 4 KiB pages.
pub const RESTART_FRAMES: i64 = 4096;

impl Store {
    /// One passive checkpoint, and a restarting one under the writer turn
    /// when the WAL has grown past [`RESTART_FRAMES`] (SQLite); nothing on
    /// PostgreSQL. Returns the WAL's frames before it.
    pub(in crate::coordinator) async fn checkpoint(&self) -> Result<i64, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let frames = self
            .checkpoint_mode("PRAGMA wal_checkpoint(PASSIVE)")
            .await?;
        if frames > RESTART_FRAMES {
            let _turn = self.write_turn().await;
            self.checkpoint_mode("PRAGMA wal_checkpoint(RESTART)")
                .await?;
        }
        Ok(frames)
    }

    /// Runs one `wal_checkpoint` pragma; the frames the WAL held.
    async fn checkpoint_mode(&self, pragma: &'static str) -> Result<i64, StoreError> {
        let row = sqlx::query(pragma)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("checkpoint the WAL"))?;
        row.try_get::<i64, _>(1)
            .map_err(query_err("read the WAL's size"))
    }
}

/// Checkpoints every [`PERIOD`] until `cancel` fires (SQLite; the server
/// runs it only there). A failed checkpoint is logged and tried again next
/// period.
pub async fn run(store: Store, cancel: CancellationToken) {
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

    async fn write(store: &Store, round: i64, rows: i64) {
        for i in 0..rows {
            sqlx::query(
                "INSERT INTO request_nonces (node_id, nonce, expires_at) VALUES ($1, $2, 0)",
            )
            .bind(format!("node-{i}"))
            .bind(format!("{round}-{i}-{}", "x".repeat(400)))
            .execute(&store.pool)
            .await
            .expect("insert");
        }
    }

    /// Two readers that each hold a read transaction for a millisecond,
    /// over and over, so one is nearly always reading through the WAL.
    fn readers(store: &Store, stop: &CancellationToken) -> tokio::task::JoinSet<()> {
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..2 {
            let (store, stop) = (store.clone(), stop.clone());
            readers.spawn(async move {
                while !stop.is_cancelled() {
                    let mut tx = store.pool.begin().await.expect("begin");
                    sqlx::query("SELECT COUNT(*) FROM request_nonces")
                        .fetch_one(&mut *tx)
                        .await
                        .expect("read");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    tx.commit().await.expect("end the read");
                }
            });
        }
        readers
    }

    /// With automatic checkpoints off and readers always reading, rounds of
    /// commits each followed by a checkpoint keep the WAL bounded: past
    /// [`RESTART_FRAMES`] the checkpoint waits for the readers, and the next
    /// commit writes from the WAL's start again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_steady_reads_and_writes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("c.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("store");
        let stop = CancellationToken::new();
        let mut readers = readers(&store, &stop);
        let wal = tmp.path().join("c.db-wal");
        let mut largest = 0;
        for round in 0..24 {
            write(&store, round, 300).await;
            let frames = store.checkpoint().await.expect("checkpoint");
            largest = largest.max(frames);
        }
        stop.cancel();
        while let Some(done) = readers.join_next().await {
            done.expect("reader");
        }
        let bytes = std::fs::metadata(&wal).expect("wal").len();
        // 24 rounds of ~900 frames would make ~21,600 frames (~85 MB).
        assert!(
            largest < 2 * RESTART_FRAMES,
            "the WAL grew to {largest} frames"
        );
        assert!(bytes < 40_000_000, "the WAL file grew to {bytes} bytes");
        store.close().await;
    }
}
