//! Inference jobs on the node's own worker: the job's request sent to the
//! worker's OpenAI API on 127.0.0.1 (`/v1/chat/completions` for
//! `messages`, `/v1/completions` for `prompt`) with its sampling fields;
//! the worker's answer is the job's result.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::coordinator::api::{InferenceRequest, LogStream, Outcome};

use super::execution::Execution;
use super::logs::LogSink;

/// The longest an inference job may take when its lease does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the worker may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the worker gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("the job's request is not an inference request")]
    Request(#[source] serde_json::Error),
    #[error("the job has neither `messages` nor `prompt`")]
    Empty,
    #[error("cannot build the HTTP client for the worker")]
    Build(#[source] reqwest::Error),
    #[error("the worker at {url} did not answer")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the worker at {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

/// Sends inference jobs to one worker.
#[derive(Debug, Clone)]
pub struct InferenceRunner {
    http: reqwest::Client,
    base: String,
}

impl InferenceRunner {
    /// For the worker whose API is at `base`, e.g. `http://127.0.0.1:8000`.
    pub fn new(base: &str) -> Result<Self, InferenceError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(InferenceError::Build)?;
        Ok(InferenceRunner {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The worker answers `GET /v1/models` (it has loaded its model).
    pub async fn ready(&self) -> bool {
        self.http
            .get(format!("{}/v1/models", self.base))
            .timeout(READY_TIMEOUT)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }

    /// Runs the request in `spec` within `timeout` (0: [`DEFAULT_TIMEOUT`]).
    pub async fn run(
        &self,
        spec: &serde_json::Value,
        timeout: Duration,
        logs: &LogSink,
        cancel: &CancellationToken,
    ) -> Execution {
        let timeout = if timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            timeout
        };
        tokio::select! {
            answer = tokio::time::timeout(timeout, self.ask(spec, logs)) => match answer {
                Ok(Ok(response)) => Execution {
                    outcome: Outcome::Succeeded,
                    reason: None,
                    result: response,
                    host_lost: false,
                },
                Ok(Err(err)) => Execution::failed(crate::error_text::one_line(&err)),
                Err(_) => Execution {
                    outcome: Outcome::TimedOut,
                    reason: Some(format!(
                        "the worker gave no answer within the job's timeout of {}",
                        humantime::format_duration(timeout)
                    )),
                    result: serde_json::Value::Null,
                    host_lost: false,
                },
            },
            () = cancel.cancelled() => Execution::failed("cancelled while the worker answered"),
        }
    }

    /// The worker's answer to the request in `spec`.
    pub async fn ask(
        &self,
        spec: &serde_json::Value,
        logs: &LogSink,
    ) -> Result<serde_json::Value, InferenceError> {
        let request: InferenceRequest =
            serde_json::from_value(spec.clone()).map_err(InferenceError::Request)?;
        let (path, body) = openai_request(&request)?;
        let url = format!("{}{path}", self.base);
        logs.push(
            LogStream::Stderr,
            format!("inference: model {} via {path}\n", request.model).as_bytes(),
        );
        let unreachable = |source| InferenceError::Unreachable {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(InferenceError::Refused {
                url,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|err| InferenceError::Refused {
            url,
            status: status.as_u16(),
            body: format!("not JSON: {err}"),
        })
    }
}

/// The worker path and OpenAI body for `request`.
pub fn openai_request(
    request: &InferenceRequest,
) -> Result<(&'static str, serde_json::Value), InferenceError> {
    let mut body = serde_json::json!({ "model": request.model });
    let path = match (&request.messages, &request.prompt) {
        (Some(messages), _) => {
            body["messages"] = serde_json::to_value(messages).unwrap_or_default();
            "/v1/chat/completions"
        }
        (None, Some(prompt)) => {
            body["prompt"] = serde_json::Value::String(prompt.clone());
            "/v1/completions"
        }
        (None, None) => return Err(InferenceError::Empty),
    };
    if let Some(n) = request.max_tokens {
        body["max_tokens"] = n.into();
    }
    if let Some(t) = request.temperature {
        body["temperature"] = t.into();
    }
    if let Some(p) = request.top_p {
        body["top_p"] = p.into();
    }
    if let Some(seed) = request.seed {
        body["seed"] = seed.into();
    }
    if !request.stop.is_empty() {
        body["stop"] = request.stop.clone().into();
    }
    Ok((path, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::api::ChatMessage;

    fn request() -> InferenceRequest {
        InferenceRequest {
            model: "smollm2".into(),
            messages: None,
            prompt: None,
            max_tokens: Some(8),
            temperature: Some(0.0),
            top_p: None,
            seed: Some(7),
            stop: vec!["\n".into()],
        }
    }

    #[test]
    fn messages_go_to_chat_and_a_prompt_to_completions_with_the_sampling_fields() {
        let chat = InferenceRequest {
            messages: Some(vec![ChatMessage {
                role: "user".into(),
                content: "hi".into(),
            }]),
            ..request()
        };
        let (path, body) = openai_request(&chat).expect("chat");
        assert_eq!(path, "/v1/chat/completions");
        assert_eq!(
            body,
            serde_json::json!({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 8, "temperature": 0.0, "seed": 7, "stop": ["\n"]})
        );
        let text = InferenceRequest {
            prompt: Some("Once".into()),
            ..request()
        };
        let (path, body) = openai_request(&text).expect("prompt");
        assert_eq!(path, "/v1/completions");
        assert_eq!(body["prompt"], "Once");
        assert!(matches!(
            openai_request(&request()),
            Err(InferenceError::Empty)
        ));
    }

    #[tokio::test]
    async fn an_unreachable_worker_fails_the_job_with_the_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let runner = InferenceRunner::new(&format!("http://{addr}")).expect("runner");
        let spec = serde_json::to_value(InferenceRequest {
            prompt: Some("x".into()),
            ..request()
        })
        .expect("json");
        let execution = runner
            .run(
                &spec,
                Duration::from_secs(5),
                &LogSink::new(),
                &CancellationToken::new(),
            )
            .await;
        assert_eq!(execution.outcome, Outcome::NotStarted);
        let reason = execution.reason.unwrap_or_default();
        assert!(reason.contains("did not answer"), "{reason}");
    }
}
