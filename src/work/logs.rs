//! One job's log on its way to the coordinator: the executor pushes output
//! into a bounded buffer ([`LogSink`], never blocking the job), each piece
//! numbered in order per lease; the shipper sends what is buffered in
//! batches and removes it only once the coordinator stored it, so after an
//! outage the same chunks with the same `seq` are sent again (the
//! coordinator stores a `seq` once). Output that finds the buffer full is
//! dropped and replaced by one marker line saying how much.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::backoff::{Backoff, Policy};
use crate::coordinator::api::{AppendLogsRequest, LogStream, NewLogChunk};

use super::coordinator::{CallError, JobCoordinator};

/// Unsent log bytes kept per job (the coordinator keeps 1 MiB per job).
pub const BUFFER_BYTES: usize = 1024 * 1024;
/// The largest chunk; longer output is split.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Log bytes per request (the coordinator takes bodies up to 1 MiB).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Chunks per request.
pub const BATCH_CHUNKS: usize = 100;
/// How long output gathers before a batch goes (fewer, larger requests).
pub const LINGER: Duration = Duration::from_millis(100);
/// Retries of a batch the coordinator did not take.
pub const RETRY: Policy = Policy {
    jitter: true,
    ..Policy::doubling(Duration::from_millis(250), Duration::from_secs(5))
};

#[derive(Debug, Default)]
struct Buffer {
    chunks: VecDeque<NewLogChunk>,
    bytes: usize,
    next_seq: u64,
    /// Bytes dropped since the last marker.
    dropped: usize,
    /// No more output is taken (the coordinator's cap was reached).
    closed: bool,
}

impl Buffer {
    fn push_chunk(&mut self, stream: LogStream, data: String) {
        self.bytes += data.len();
        self.chunks.push_back(NewLogChunk {
            seq: self.next_seq,
            stream,
            data,
        });
        self.next_seq += 1;
    }

    fn push(&mut self, stream: LogStream, text: &str) {
        if self.closed || text.is_empty() {
            return;
        }
        if self.bytes + text.len() > BUFFER_BYTES {
            self.dropped += text.len();
            return;
        }
        if self.dropped > 0 {
            let marker = format!(
                "[garage: {} bytes of log dropped while the coordinator did not take them]\n",
                self.dropped
            );
            self.dropped = 0;
            self.push_chunk(LogStream::Stderr, marker);
        }
        let mut rest = text;
        while !rest.is_empty() {
            let mut cut = rest.len().min(CHUNK_BYTES);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            self.push_chunk(stream, rest[..cut].to_owned());
            rest = &rest[cut..];
        }
    }

    /// The oldest chunks, up to a batch.
    fn batch(&self) -> Vec<NewLogChunk> {
        let mut bytes = 0;
        let mut batch = Vec::new();
        for chunk in &self.chunks {
            if batch.len() == BATCH_CHUNKS
                || (bytes + chunk.data.len() > BATCH_BYTES && !batch.is_empty())
            {
                break;
            }
            bytes += chunk.data.len();
            batch.push(chunk.clone());
        }
        batch
    }

    /// Forgets the chunks up to and including `last_seq`.
    fn sent(&mut self, last_seq: u64) {
        while self.chunks.front().is_some_and(|c| c.seq <= last_seq) {
            if let Some(chunk) = self.chunks.pop_front() {
                self.bytes -= chunk.data.len();
            }
        }
    }
}

/// Where the executor writes a job's output. Cheap to clone; never blocks.
#[derive(Debug, Clone, Default)]
pub struct LogSink {
    buffer: Arc<Mutex<Buffer>>,
    wake: Arc<Notify>,
}

impl LogSink {
    pub fn new() -> Self {
        LogSink::default()
    }

    /// Appends output of `stream` (bytes that are not UTF-8 are replaced).
    pub fn push(&self, stream: LogStream, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        self.lock().push(stream, &text);
        self.wake.notify_one();
    }

    /// Unsent chunks.
    pub fn pending(&self) -> usize {
        self.lock().chunks.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the shipper stopped on its own.
#[derive(Debug, PartialEq, Eq)]
pub enum ShipEnd {
    /// The coordinator says the client cancelled the job.
    Cancel,
    /// The lease is gone: stop the job.
    LeaseLost,
}

/// Sends `sink`'s chunks for `lease_id` until the lease is lost or the job
/// cancelled (returned), or forever (the caller drops it after a last
/// [`flush`]).
pub async fn ship<C: JobCoordinator>(coordinator: &C, lease_id: Uuid, sink: &LogSink) -> ShipEnd {
    let mut retries = Backoff::new(RETRY);
    loop {
        let batch = sink.lock().batch();
        if batch.is_empty() {
            sink.wake.notified().await;
            tokio::time::sleep(LINGER).await;
            continue;
        }
        match send(coordinator, lease_id, sink, batch).await {
            Ok(false) => retries.reset(),
            Ok(true) => return ShipEnd::Cancel,
            Err(CallError::LeaseLost(_)) => return ShipEnd::LeaseLost,
            Err(err) => {
                tracing::debug!(error = %crate::error_text::one_line(&err), %lease_id, "log chunks not taken; sending them again");
                tokio::time::sleep(retries.fail()).await;
            }
        }
    }
}

/// Sends whatever is buffered once; an error leaves it buffered.
pub async fn flush<C: JobCoordinator>(
    coordinator: &C,
    lease_id: Uuid,
    sink: &LogSink,
) -> Result<(), CallError> {
    loop {
        let batch = sink.lock().batch();
        if batch.is_empty() {
            return Ok(());
        }
        send(coordinator, lease_id, sink, batch).await?;
    }
}

/// One batch; true when the coordinator says the job was cancelled.
async fn send<C: JobCoordinator>(
    coordinator: &C,
    lease_id: Uuid,
    sink: &LogSink,
    chunks: Vec<NewLogChunk>,
) -> Result<bool, CallError> {
    let last = chunks.last().map_or(0, |c| c.seq);
    let answer = coordinator
        .append_logs(lease_id, &AppendLogsRequest { chunks })
        .await?;
    let mut buffer = sink.lock();
    buffer.sent(last);
    if answer.truncated {
        // The coordinator drops everything later: stop buffering it.
        buffer.closed = true;
        buffer.chunks.clear();
        buffer.bytes = 0;
    }
    Ok(answer.cancel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_numbered_in_order_and_split_into_chunks() {
        let mut buffer = Buffer::default();
        buffer.push(LogStream::Stdout, "one\n");
        buffer.push(LogStream::Stderr, &"x".repeat(CHUNK_BYTES + 5));
        let seqs: Vec<(u64, usize)> = buffer
            .chunks
            .iter()
            .map(|c| (c.seq, c.data.len()))
            .collect();
        assert_eq!(seqs, vec![(0, 4), (1, CHUNK_BYTES), (2, 5)]);
        buffer.sent(1);
        assert_eq!(buffer.chunks.front().map(|c| c.seq), Some(2));
        assert_eq!(buffer.bytes, 5);
    }

    #[test]
    fn a_full_buffer_drops_output_and_says_so_once_there_is_room() {
        let mut buffer = Buffer::default();
        buffer.push(LogStream::Stdout, &"a".repeat(BUFFER_BYTES));
        buffer.push(LogStream::Stdout, "lost\n");
        buffer.push(LogStream::Stdout, "lost too\n");
        assert_eq!(buffer.bytes, BUFFER_BYTES);
        let last = buffer.chunks.back().map_or(0, |c| c.seq);
        buffer.sent(last);
        buffer.push(LogStream::Stdout, "back\n");
        let texts: Vec<&str> = buffer.chunks.iter().map(|c| c.data.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "[garage: 14 bytes of log dropped while the coordinator did not take them]\n",
                "back\n"
            ]
        );
    }

    #[test]
    fn a_batch_is_bounded_in_chunks_and_bytes() {
        let mut buffer = Buffer::default();
        for _ in 0..(BATCH_CHUNKS + 10) {
            buffer.push(LogStream::Stdout, "line\n");
        }
        assert_eq!(buffer.batch().len(), BATCH_CHUNKS);
        let mut buffer = Buffer::default();
        buffer.push(LogStream::Stdout, &"b".repeat(BATCH_BYTES * 2));
        let bytes: usize = buffer.batch().iter().map(|c| c.data.len()).sum();
        assert_eq!(bytes, BATCH_BYTES);
    }
}
