//! Job logs in the store: chunks per attempt with the node's sequence
//! numbers (a chunk sent twice is stored once), bounded per job by
//! [`MAX_JOB_LOG_BYTES`]: the chunk that crosses the cap is cut and ends
//! with a marker, later ones are dropped.

use sqlx::Row;
use uuid::Uuid;

use super::api::{LogChunk, LogStream, NewLogChunk};
use super::lease_store::{LeaseOwner, Stale, Standing};
use crate::coordinator::http::limits::MAX_JOB_LOG_BYTES;
use crate::coordinator::store::{query_err, Backend, Store, StoreError};

/// Ends the chunk that reached the cap.
pub fn cap_marker() -> String {
    format!("\n[garage: this job's log reached its cap of {MAX_JOB_LOG_BYTES} bytes; later output was dropped]\n")
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Stored {
        accepted: u32,
        truncated: bool,
        /// The job was cancelled (or timed out): stop it.
        cancel: bool,
    },
    Stale(Stale),
}

/// `data` cut to at most `room` bytes (at a character boundary) with the
/// marker, or whole when it fits.
pub fn fit(data: &str, room: i64) -> (String, bool) {
    let room = usize::try_from(room.max(0)).unwrap_or(usize::MAX);
    if data.len() <= room {
        return (data.to_string(), false);
    }
    let mut cut = room;
    while !data.is_char_boundary(cut) {
        cut -= 1;
    }
    (format!("{}{}", &data[..cut], cap_marker()), true)
}

impl Store {
    /// Stores `chunks` of the attempt of a lease that is the job's current
    /// one (running, or stopped by the coordinator so the last lines still
    /// arrive).
    pub async fn append_logs(
        &self,
        lease: LeaseOwner,
        lease_id: Uuid,
        chunks: &[NewLogChunk],
        now_ms: i64,
    ) -> Result<Appended, StoreError> {
        let query = match self.backend() {
            Backend::Postgres => {
                "SELECT state, lease_id, lease_expires_at, log_bytes, attempt FROM jobs \
                 WHERE job_id = $1 FOR UPDATE"
            }
            Backend::Sqlite => {
                "SELECT state, lease_id, lease_expires_at, log_bytes, attempt FROM jobs \
                 WHERE job_id = $1"
            }
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let row = sqlx::query(query)
            .bind(lease.job_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("read a job for its logs"))?;
        let read = || query_err("read a job for its logs");
        let Some(row) = row else {
            return Ok(Appended::Stale(Stale::Superseded));
        };
        let state: String = row.try_get(0).map_err(read())?;
        let current: Option<String> = row.try_get(1).map_err(read())?;
        let expires_at: Option<i64> = row.try_get(2).map_err(read())?;
        let mut log_bytes: i64 = row.try_get(3).map_err(read())?;
        let attempt: i64 = row.try_get(4).map_err(read())?;
        let ours = current.as_deref() == Some(lease_id.to_string().as_str());
        let running = state == "RUNNING";
        if !ours || (running && expires_at.is_some_and(|at| at < now_ms)) {
            drop(tx);
            return Ok(match self.lease_standing(lease.job_id, lease_id).await? {
                Standing::Stale(stale) => Appended::Stale(stale),
                Standing::Live | Standing::Stopped(_) => Appended::Stale(Stale::Expired),
            });
        }
        let mut ordered: Vec<&NewLogChunk> = chunks.iter().collect();
        ordered.sort_by_key(|chunk| chunk.seq);
        let mut accepted = 0;
        for chunk in ordered {
            if log_bytes >= MAX_JOB_LOG_BYTES {
                break;
            }
            let (data, cut) = fit(&chunk.data, MAX_JOB_LOG_BYTES - log_bytes);
            let inserted = sqlx::query(
                "INSERT INTO job_logs (job_id, attempt, seq, stream, data, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, attempt, seq) DO NOTHING",
            )
            .bind(lease.job_id.to_string())
            .bind(attempt)
            .bind(i64::try_from(chunk.seq).unwrap_or(i64::MAX))
            .bind(chunk.stream.as_str())
            .bind(data)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_err("store a log chunk"))?;
            if inserted.rows_affected() == 1 {
                accepted += 1;
                log_bytes = if cut {
                    MAX_JOB_LOG_BYTES
                } else {
                    log_bytes.saturating_add(i64::try_from(chunk.data.len()).unwrap_or(i64::MAX))
                };
            }
        }
        sqlx::query("UPDATE jobs SET log_bytes = $2 WHERE job_id = $1")
            .bind(lease.job_id.to_string())
            .bind(log_bytes)
            .execute(&mut *tx)
            .await
            .map_err(query_err("count a job's log"))?;
        tx.commit().await.map_err(query_err("commit log chunks"))?;
        Ok(Appended::Stored {
            accepted,
            truncated: log_bytes >= MAX_JOB_LOG_BYTES,
            cancel: !running,
        })
    }

    /// Up to `limit` chunks of a job after `after` (attempt, seq), in order.
    pub async fn job_logs(
        &self,
        job_id: Uuid,
        after: Option<(u32, u64)>,
        limit: u32,
    ) -> Result<Vec<LogChunk>, StoreError> {
        let (attempt, seq) = after.map_or((-1, -1), |(a, s)| {
            (i64::from(a), i64::try_from(s).unwrap_or(i64::MAX))
        });
        let rows = sqlx::query(
            "SELECT attempt, seq, stream, data FROM job_logs WHERE job_id = $1 \
             AND (attempt > $2 OR (attempt = $2 AND seq > $3)) ORDER BY attempt, seq LIMIT $4",
        )
        .bind(job_id.to_string())
        .bind(attempt)
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read a job's log"))?;
        rows.iter()
            .map(|row| {
                let read = || query_err("read a log chunk");
                let attempt: i64 = row.try_get(0).map_err(read())?;
                let seq: i64 = row.try_get(1).map_err(read())?;
                let stream: String = row.try_get(2).map_err(read())?;
                Ok(LogChunk {
                    seq: u64::try_from(seq).unwrap_or_default(),
                    stream: if stream == "stderr" {
                        LogStream::Stderr
                    } else {
                        LogStream::Stdout
                    },
                    data: row.try_get(3).map_err(read())?,
                    attempt: u32::try_from(attempt).unwrap_or_default(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_over_the_room_is_cut_at_a_character_with_the_marker() {
        assert_eq!(fit("hello", 5), ("hello".to_string(), false));
        let (cut, truncated) = fit("héllo", 2);
        assert!(truncated);
        assert!(cut.starts_with('h') && !cut.starts_with("hé"), "{cut}");
        assert!(cut.ends_with(&cap_marker()));
        assert_eq!(fit("x", 0), (cap_marker(), true));
    }
}
