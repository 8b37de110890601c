//! The node's side of the coordinator API: an HTTP client that signs every
//! request with the node's key (`identity::signing`). The agent uses it; it
//! keeps no state beyond the identity and retries nothing by itself.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::{
    ErrorBody, GpuInfo, HeartbeatRequest, HeartbeatResponse, Location, RegisterRequest,
    RegisterResponse,
};
use crate::identity::{signing, NodeIdentity};

/// Per-request limit, connect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to the coordinator failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("coordinator URL {url:?} is not an http:// or https:// URL (fix: set spec.coordinator.url to http://host:port or https://host)")]
    BadUrl { url: String },
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("cannot reach the coordinator at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the coordinator refused {path} with {status} {code}: {message}")]
    Refused {
        path: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("the coordinator's answer to {path} is not what this node understands")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// True when trying again later can succeed (the coordinator is
    /// unreachable or failed), false when the request itself is refused.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The error code of a refusal (e.g. "unknown_node").
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A signed client for one node and one coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorClient {
    http: reqwest::Client,
    base: String,
    identity: Arc<NodeIdentity>,
}

impl CoordinatorClient {
    /// `base_url` is the coordinator's root, e.g. `http://127.0.0.1:7070`.
    pub fn new(base_url: &str, identity: Arc<NodeIdentity>) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(ClientError::BadUrl {
                url: base_url.into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(ClientError::Build)?;
        Ok(CoordinatorClient {
            http,
            base,
            identity,
        })
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// A registration of this node with the given facts.
    pub fn registration(
        &self,
        gpu_info: Vec<GpuInfo>,
        location: Location,
        benchmark: Option<serde_json::Value>,
    ) -> RegisterRequest {
        RegisterRequest {
            node_id: self.identity.node_id(),
            public_key: self.identity.public_key_hex(),
            gpu_info,
            location,
            benchmark,
            join_token: None,
        }
    }

    /// `POST /api/nodes/register`.
    pub async fn register(
        &self,
        request: &RegisterRequest,
    ) -> Result<RegisterResponse, ClientError> {
        self.post("/api/nodes/register", request).await
    }

    /// `POST /api/nodes/{id}/heartbeat` for this node.
    pub async fn heartbeat(
        &self,
        request: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ClientError> {
        let path = format!("/api/nodes/{}/heartbeat", self.identity.node_id());
        self.post(&path, request).await
    }

    /// Signs and sends a JSON POST to `path`, decoding the answer.
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        let body = serde_json::to_vec(body).map_err(|source| ClientError::Decode {
            path: path.into(),
            source,
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let signed = self
            .identity
            .sign_request("POST", path, &body, now, &signing::new_nonce());
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let response = request.body(body).send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => (body.error.code, body.error.message),
                Err(_) => (
                    "unknown".into(),
                    String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                ),
            };
            return Err(ClientError::Refused {
                path: path.into(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            path: path.into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_coordinators_other_schemes_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let identity =
            Arc::new(NodeIdentity::load_or_create(&dir.path().join("node")).expect("identity"));
        for url in [
            "http://127.0.0.1:7070",
            "https://coordinator.garage.example/",
        ] {
            let client = CoordinatorClient::new(url, identity.clone()).expect(url);
            assert!(!client.base.ends_with('/'), "{}", client.base);
        }
        let e = CoordinatorClient::new("ftp://x", identity)
            .expect_err("ftp")
            .to_string();
        assert!(e.contains("not an http:// or https:// URL"), "{e}");
    }
}
