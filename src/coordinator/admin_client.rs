//! The admin's side of the coordinator API: a bearer-token HTTP client for
//! the join-token endpoints, used by `garage coordinator token …`.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::api::{CreateJoinTokenRequest, ErrorBody, JoinTokenCreated, JoinTokenList};

/// Per-request limit, connect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("coordinator URL {url:?} is not an http:// or https:// URL (fix: pass --url http://HOST:7070)")]
    BadUrl { url: String },
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("cannot reach the coordinator at {url} (is it running? check --url)")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the coordinator refused {what} with {status} {code}: {message}")]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("the coordinator's answer to {what} is not what this program understands")]
    Decode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An admin client for one coordinator.
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl std::fmt::Debug for AdminClient {
    // By hand: the token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    pub fn new(base_url: &str, token: String) -> Result<Self, AdminClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(AdminClientError::BadUrl {
                url: base_url.into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(AdminClientError::Build)?;
        Ok(AdminClient { http, base, token })
    }

    /// `POST /api/join-tokens`.
    pub async fn create_join_token(
        &self,
        request: &CreateJoinTokenRequest,
    ) -> Result<JoinTokenCreated, AdminClientError> {
        let builder = self
            .http
            .post(format!("{}/api/join-tokens", self.base))
            .json(request);
        self.send("POST /api/join-tokens", builder)
            .await
            .and_then(|bytes| decode("POST /api/join-tokens", &bytes))
    }

    /// `GET /api/join-tokens`, one page.
    pub async fn join_tokens(
        &self,
        continue_token: Option<&str>,
    ) -> Result<JoinTokenList, AdminClientError> {
        let mut builder = self.http.get(format!("{}/api/join-tokens", self.base));
        if let Some(token) = continue_token {
            builder = builder.query(&[("continue", token)]);
        }
        self.send("GET /api/join-tokens", builder)
            .await
            .and_then(|bytes| decode("GET /api/join-tokens", &bytes))
    }

    /// `DELETE /api/join-tokens/{id}`.
    pub async fn revoke_join_token(&self, id: &str) -> Result<(), AdminClientError> {
        let builder = self
            .http
            .delete(format!("{}/api/join-tokens/{id}", self.base));
        self.send(&format!("DELETE /api/join-tokens/{id}"), builder)
            .await
            .map(drop)
    }

    async fn send(
        &self,
        what: &str,
        builder: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, AdminClientError> {
        let transport = |source| AdminClientError::Transport {
            url: self.base.clone(),
            source,
        };
        let response = builder
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            return Ok(bytes);
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (
                "unknown".into(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err(AdminClientError::Refused {
            what: what.into(),
            status: status.as_u16(),
            code,
            message,
        })
    }
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, AdminClientError> {
    serde_json::from_slice(bytes).map_err(|source| AdminClientError::Decode {
        what: what.into(),
        source,
    })
}
