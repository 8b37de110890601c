//! The user's side of the jobs API: typed calls over a [`BearerClient`]
//! holding an API key (or the admin token): submit, get, list, cancel,
//! logs, and following a job's log as server-sent events (resumed after a
//! lost connection with `Last-Event-ID`).

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::api::{JobList, JobLogs, JobState, JobSubmission, JobView, LogChunk};
use crate::coordinator::bearer_client::{page_path, BearerClient, BearerClientError};
use crate::coordinator::http::idempotency::IDEMPOTENCY_KEY;

/// How long a followed log keeps trying to reconnect without progress.
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);
/// The pause between reconnects.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// A jobs client for one coordinator and one key.
#[derive(Debug)]
pub struct JobsClient {
    http: BearerClient,
}

impl JobsClient {
    pub fn new(http: BearerClient) -> Self {
        JobsClient { http }
    }

    /// `POST /api/jobs`; the same `idempotency_key` answers the same job.
    pub async fn submit(
        &self,
        submission: &JobSubmission,
        idempotency_key: Option<&str>,
    ) -> Result<JobView, BearerClientError> {
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|key| (IDEMPOTENCY_KEY, key))
            .into_iter()
            .collect();
        self.http.post("/api/jobs", submission, &headers).await
    }

    /// `GET /api/jobs/{id}`.
    pub async fn get(&self, id: Uuid) -> Result<JobView, BearerClientError> {
        self.http.get(&format!("/api/jobs/{id}")).await
    }

    /// `GET /api/jobs`, one page (newest first).
    pub async fn list(
        &self,
        state: Option<JobState>,
        continue_token: Option<&str>,
    ) -> Result<JobList, BearerClientError> {
        let path = page_path("/api/jobs", state.map(|s| s.as_str()), continue_token);
        self.http.get(&path).await
    }

    /// `POST /api/jobs/{id}/cancel`.
    pub async fn cancel(&self, id: Uuid) -> Result<JobView, BearerClientError> {
        self.http
            .post(
                &format!("/api/jobs/{id}/cancel"),
                &serde_json::json!({}),
                &[],
            )
            .await
    }

    /// `GET /api/jobs/{id}/logs`: the log stored so far.
    pub async fn logs(&self, id: Uuid) -> Result<JobLogs, BearerClientError> {
        self.http.get(&format!("/api/jobs/{id}/logs")).await
    }

    /// Follows a job's log until the job ends, handing each chunk to
    /// `on_chunk` once; returns the final state. A lost stream (the
    /// coordinator restarted, the connection broke) is resumed after the
    /// last chunk seen, for up to [`RECONNECT_FOR`] without progress.
    pub async fn follow(
        &self,
        id: Uuid,
        mut on_chunk: impl FnMut(&LogChunk),
    ) -> Result<JobState, BearerClientError> {
        let mut last_id: Option<String> = None;
        let mut lost_since: Option<Instant> = None;
        loop {
            let mut progressed = false;
            let failure = match self
                .follow_once(id, &mut last_id, &mut progressed, &mut on_chunk)
                .await
            {
                Ok(Some(state)) => return Ok(state),
                Ok(None) => None,
                Err(err) if transient(&err) => Some(err),
                Err(err) => return Err(err),
            };
            if progressed {
                lost_since = None;
            }
            if lost_since.get_or_insert_with(Instant::now).elapsed() > RECONNECT_FOR {
                return match failure {
                    Some(err) => Err(err),
                    None => Ok(self.get(id).await?.state),
                };
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// One stream: `Some(state)` at its `end` event, `None` when it ended
    /// before.
    async fn follow_once(
        &self,
        id: Uuid,
        last_id: &mut Option<String>,
        progressed: &mut bool,
        on_chunk: &mut impl FnMut(&LogChunk),
    ) -> Result<Option<JobState>, BearerClientError> {
        let path = format!("/api/jobs/{id}/logs?follow=true");
        let headers: Vec<(&str, &str)> = last_id
            .as_deref()
            .map(|last| ("last-event-id", last))
            .into_iter()
            .collect();
        let mut response = self.http.stream(&path, &headers).await?;
        let mut events = SseParser::default();
        loop {
            let bytes = response
                .chunk()
                .await
                .map_err(|source| BearerClientError::Transport {
                    url: path.clone(),
                    source,
                })?;
            let Some(bytes) = bytes else {
                return Ok(None);
            };
            for event in events.push(&bytes) {
                *progressed = true;
                let decode = |source| BearerClientError::Decode {
                    what: format!("GET {path}"),
                    source,
                };
                match event.kind.as_str() {
                    "log" => {
                        on_chunk(&serde_json::from_str(&event.data).map_err(decode)?);
                        if event.id.is_some() {
                            last_id.clone_from(&event.id);
                        }
                    }
                    "end" => {
                        let end: serde_json::Value =
                            serde_json::from_str(&event.data).map_err(decode)?;
                        return serde_json::from_value(end["state"].clone())
                            .map(Some)
                            .map_err(decode);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// True for failures a retry can outlive: the coordinator unreachable or
/// failing.
fn transient(err: &BearerClientError) -> bool {
    match err {
        BearerClientError::Transport { .. } => true,
        BearerClientError::Refused { status, .. } => *status >= 500,
        _ => false,
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub kind: String,
    pub data: String,
    pub id: Option<String>,
}

/// Server-sent events from a byte stream: `(event, data)` per blank-line
/// terminated block; comments (keep-alives) are skipped.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    /// Adds bytes and returns the events they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut kind = "message".to_string();
            let mut id = None;
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    kind = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().to_string());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if !data.is_empty() {
                events.push(SseEvent {
                    kind,
                    data: data.join("\n"),
                    id,
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_across_reads_and_keep_alives_skipped() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"event: log\nid: 1.0\ndata: {\"a\"").is_empty());
        let events = parser.push(b":1}\n\n: keep-alive\n\nevent: end\ndata: {}\n\n");
        assert_eq!(
            events,
            [
                SseEvent {
                    kind: "log".into(),
                    data: "{\"a\":1}".into(),
                    id: Some("1.0".into())
                },
                SseEvent {
                    kind: "end".into(),
                    data: "{}".into(),
                    id: None
                }
            ]
        );
    }
}
