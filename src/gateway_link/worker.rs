//! The worker as the link sees it before announcing anything: the models
//! its `GET /v1/models` lists (the OpenAI list, `{"data":[{"id":…}]}`),
//! and waiting, polled at a bounded interval, until it lists some.

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, Policy};
use crate::coordinator::gateway::frames::MAX_MODELS;

/// One question to the worker.
pub const MODELS_TIMEOUT: Duration = Duration::from_secs(5);
/// Polls of a worker that does not answer yet: 1 s doubling to 10 s.
pub const POLL: Policy = Policy::doubling(Duration::from_secs(1), Duration::from_secs(10));

/// Why the worker's models could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("the worker at {url} does not answer")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the worker at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the worker at {url} answered something other than an OpenAI model list")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the worker at {url} lists no model")]
    Empty { url: String },
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<Model>,
}

#[derive(Deserialize)]
struct Model {
    id: String,
}

/// The worker's model ids (at most [`MAX_MODELS`], in its order).
pub async fn models(http: &reqwest::Client, worker_url: &str) -> Result<Vec<String>, ModelsError> {
    let url = format!("{worker_url}/v1/models");
    let response = http
        .get(&url)
        .timeout(MODELS_TIMEOUT)
        .send()
        .await
        .map_err(|source| ModelsError::Unreachable {
            url: url.clone(),
            source,
        })?;
    if !response.status().is_success() {
        return Err(ModelsError::Status {
            url,
            status: response.status().as_u16(),
        });
    }
    let list: ModelList = response
        .json()
        .await
        .map_err(|source| ModelsError::Decode {
            url: url.clone(),
            source,
        })?;
    let ids: Vec<String> = list
        .data
        .into_iter()
        .map(|m| m.id)
        .take(MAX_MODELS)
        .collect();
    if ids.is_empty() {
        return Err(ModelsError::Empty { url });
    }
    Ok(ids)
}

/// Polls until the worker lists its models; `None` when `cancel` fires
/// first. `on_wait` hears each failure (the link's status shows it).
pub async fn wait_for_models(
    http: &reqwest::Client,
    worker_url: &str,
    cancel: &CancellationToken,
    mut on_wait: impl FnMut(&ModelsError),
) -> Option<Vec<String>> {
    let mut polls = Backoff::new(POLL);
    loop {
        let attempt = tokio::select! {
            () = cancel.cancelled() => return None,
            attempt = models(http, worker_url) => attempt,
        };
        match attempt {
            Ok(models) => return Some(models),
            Err(err) => {
                let delay = polls.fail();
                let failures = polls.failures();
                if failures == 1 || failures.is_power_of_two() {
                    tracing::info!(error = %crate::error_text::one_line(&err), failures, "gateway link waits for the worker");
                }
                on_wait(&err);
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
