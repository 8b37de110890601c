//! Group commit of heartbeats. A verified heartbeat queues here with the
//! nonce that signed it; one task takes whatever has queued (up to
//! [`MAX_BATCH`]) and writes it in one transaction — each nonce, node row
//! and history entry — then answers every request after the commit. An
//! acknowledged heartbeat is durable and its nonce is stored with it (a
//! replay is refused, also after a restart and on another replica), at one
//! commit per batch instead of two per heartbeat. A batch that fails is
//! written again one heartbeat per transaction, so one bad row cannot fail
//! its neighbours.

use axum::http::StatusCode;
use sqlx::AnyConnection;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::api::{HeartbeatRequest, NodeState};
use super::heartbeats::{record_heartbeat_in, Retention};
use crate::coordinator::http::error::ApiError;
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::parameters::Parameters;
use crate::coordinator::store::nonces::remember_nonce_in;
use crate::coordinator::store::{query_err, Store, StoreError};

/// Heartbeats written in one transaction at most.
pub const MAX_BATCH: usize = 512;
/// Heartbeats waiting for the writer at most; more wait to queue (each
/// holds a status of at most 64 KiB: 64 MiB in all).
const QUEUE: usize = 1024;

/// A verified heartbeat to record.
#[derive(Debug)]
pub struct Beat {
    pub node_id: Uuid,
    /// The signature's nonce, remembered with the heartbeat.
    pub nonce: String,
    /// When the nonce's request would be stale anyway.
    pub nonce_expires_ms: i64,
    pub heartbeat: HeartbeatRequest,
    pub now_ms: i64,
}

/// What became of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored; the node was in `before`, and is told the interval.
    Online {
        before: NodeState,
        interval_secs: u64,
    },
    /// The node is not registered (any more).
    UnknownNode,
    /// The nonce was used before: nothing was written.
    Replayed,
}

/// Why a heartbeat was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the heartbeat writer has stopped")]
    Stopped,
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Store(err) => err.into(),
            WriteError::Stopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the coordinator is shutting down; send the heartbeat again",
            ),
        }
    }
}

struct Pending {
    beat: Beat,
    reply: oneshot::Sender<Result<Recorded, StoreError>>,
}

/// Queues heartbeats for the writer task; cheap to clone. The task ends
/// once every handle is dropped and the queue is drained; the coordinator
/// runs it under its supervisor, so a panic there stops the process rather
/// than leaving heartbeats unanswered.
#[derive(Debug, Clone)]
pub struct HeartbeatWriter {
    queue: mpsc::Sender<Pending>,
}

/// What the writer task needs.
struct Writer {
    store: Store,
    parameters: Parameters,
    retain: Retention,
    metrics: CoordinatorMetrics,
}

impl HeartbeatWriter {
    /// The handle and the writer task, for the caller to run.
    pub fn new(
        store: Store,
        parameters: Parameters,
        retain: Retention,
        metrics: CoordinatorMetrics,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            store,
            parameters,
            retain,
            metrics,
        };
        (HeartbeatWriter { queue }, writer.run(rx))
    }

    /// Records `beat`; returns once its transaction committed.
    pub async fn record(&self, beat: Beat) -> Result<Recorded, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { beat, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        Ok(answer.await.map_err(|_| WriteError::Stopped)??)
    }
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.metrics.heartbeat_batch.observe(batch.len() as f64);
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    /// Writes `batch` in one transaction, or (when that fails) each
    /// heartbeat in its own, and answers every request.
    async fn write(&self, batch: Vec<Pending>) {
        let beats: Vec<&Beat> = batch.iter().map(|p| &p.beat).collect();
        let result = self.transaction(&beats).await;
        match result {
            Ok(outcomes) => {
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcome));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(pending) = batch.into_iter().next() {
                    let _ = pending.reply.send(Err(e));
                }
            }
            Err(_) => {
                for pending in batch {
                    let outcome = self.transaction(&[&pending.beat]).await;
                    let _ = pending
                        .reply
                        .send(outcome.map(|mut o| o.pop().unwrap_or(Recorded::UnknownNode)));
                }
            }
        }
    }

    /// One transaction over `beats`: the outcome of each, in order. Rows
    /// are written in node-id order, so replicas' batches on one PostgreSQL
    /// take their row locks in one order and cannot deadlock.
    async fn transaction(&self, beats: &[&Beat]) -> Result<Vec<Recorded>, StoreError> {
        let mut order: Vec<usize> = (0..beats.len()).collect();
        order.sort_by_key(|&i| beats[i].node_id);
        let _turn = self.store.write_turn().await;
        let mut tx = self.store.pool.begin().await.map_err(query_err("begin"))?;
        let mut outcomes = vec![Recorded::UnknownNode; beats.len()];
        let mut interval = None;
        for i in order {
            outcomes[i] = self.one(&mut tx, beats[i], &mut interval).await?;
        }
        tx.commit().await.map_err(query_err("commit heartbeats"))?;
        Ok(outcomes)
    }

    /// One heartbeat inside the batch's transaction; `interval`: the
    /// heartbeat interval, read once per batch after its first write (on
    /// SQLite a transaction that writes first takes the write lock at once).
    async fn one(
        &self,
        conn: &mut AnyConnection,
        beat: &Beat,
        interval: &mut Option<u64>,
    ) -> Result<Recorded, StoreError> {
        if !remember_nonce_in(conn, beat.node_id, &beat.nonce, beat.nonce_expires_ms).await? {
            return Ok(Recorded::Replayed);
        }
        let Some(before) = record_heartbeat_in(
            conn,
            beat.node_id,
            &beat.heartbeat,
            beat.now_ms,
            self.retain,
        )
        .await?
        else {
            return Ok(Recorded::UnknownNode);
        };
        let interval_secs = match *interval {
            Some(seconds) => seconds,
            None => {
                let seconds = self
                    .parameters
                    .heartbeat_interval_secs_in(conn, beat.now_ms)
                    .await?;
                *interval = Some(seconds);
                seconds
            }
        };
        Ok(Recorded::Online {
            before,
            interval_secs,
        })
    }
}

#[cfg(test)]
mod tests;
