//! The user's side of the jobs API: typed calls over a [`BearerClient`]
//! holding an API key (or the admin token): submit, get, list, cancel,
//! logs, and following a job's log as server-sent events.

use uuid::Uuid;

use super::api::{JobList, JobLogs, JobState, JobSubmission, JobView, LogChunk};
use super::routes::IDEMPOTENCY_KEY;
use crate::coordinator::bearer_client::{BearerClient, BearerClientError};

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
        let mut query = Vec::new();
        if let Some(state) = state {
            query.push(format!("state={}", state.as_str()));
        }
        if let Some(token) = continue_token {
            query.push(format!("continue={token}"));
        }
        let path = if query.is_empty() {
            "/api/jobs".to_string()
        } else {
            format!("/api/jobs?{}", query.join("&"))
        };
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
    /// `on_chunk`; returns the final state.
    pub async fn follow(
        &self,
        id: Uuid,
        mut on_chunk: impl FnMut(&LogChunk),
    ) -> Result<JobState, BearerClientError> {
        let what = format!("GET /api/jobs/{id}/logs?follow=true");
        let mut response = self
            .http
            .stream(&format!("/api/jobs/{id}/logs?follow=true"))
            .await?;
        let mut events = SseParser::default();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|source| BearerClientError::Transport {
                    url: what.clone(),
                    source,
                })?;
            let Some(bytes) = chunk else {
                // The stream ended without its `end` event: ask for the state.
                return Ok(self.get(id).await?.state);
            };
            for (event, data) in events.push(&bytes) {
                let decode = |source| BearerClientError::Decode {
                    what: what.clone(),
                    source,
                };
                match event.as_str() {
                    "log" => on_chunk(&serde_json::from_str(&data).map_err(decode)?),
                    "end" => {
                        let end: serde_json::Value = serde_json::from_str(&data).map_err(decode)?;
                        return serde_json::from_value(end["state"].clone()).map_err(decode);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Server-sent events from a byte stream: `(event, data)` per blank-line
/// terminated block; comments (keep-alives) are skipped.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    /// Adds bytes and returns the events they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = "message".to_string();
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if !data.is_empty() {
                events.push((event, data.join("\n")));
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
        assert!(parser.push(b"event: log\ndata: {\"a\"").is_empty());
        let events = parser.push(b":1}\n\n: keep-alive\n\nevent: end\ndata: {}\n\n");
        assert_eq!(
            events,
            [
                ("log".to_string(), "{\"a\":1}".to_string()),
                ("end".to_string(), "{}".to_string())
            ]
        );
    }
}
