//! The node's side of the coordinator API: an HTTP client that signs every
//! request with the node's key (`identity::signing`) for the coordinator's
//! published id (fetched once from `GET /api/coordinator`): registration,
//! heartbeats, and the job protocol (claim, renew, append_logs, complete).
//! The agent and `garage api` use it; it keeps no state beyond the identity
//! and that id, and retries only a request refused for a changed
//! coordinator id.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use reqwest::Method;
use uuid::Uuid;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::{
    AppendLogsRequest, AppendLogsResponse, ClaimRequest, CompleteRequest, CompleteResponse,
    CoordinatorInfo, ErrorBody, GpuInfo, HeartbeatRequest, HeartbeatResponse, Lease, Location,
    RegisterRequest, RegisterResponse, RenewResponse,
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

/// Where the coordinator publishes its id.
pub const COORDINATOR_INFO_PATH: &str = "/api/coordinator";

/// A coordinator's answer as it came, for callers that show it (`garage api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub body: Bytes,
}

/// A signed client for one node and one coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorClient {
    http: reqwest::Client,
    base: String,
    identity: Arc<NodeIdentity>,
    /// The coordinator's id once fetched; forgotten when it refuses a
    /// request as signed for another id (it was rebuilt on a new database).
    coordinator_id: Arc<Mutex<Option<Uuid>>>,
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
            coordinator_id: Arc::default(),
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

    /// `POST /api/nodes/{id}/claim`: waits up to `request.wait_seconds`
    /// (capped at 30 by the coordinator) for a job; `None` when none came.
    pub async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, ClientError> {
        let path = format!("/api/nodes/{}/claim", self.identity.node_id());
        let wait = Duration::from_secs(u64::from(request.wait_seconds.unwrap_or(25).min(30)));
        let body = encode(&path, request)?;
        let answer = self
            .send_signed_with(Method::POST, &path, body, wait + REQUEST_TIMEOUT)
            .await?;
        if answer.status == 204 {
            return Ok(None);
        }
        decode_answer(&path, &answer).map(Some)
    }

    /// `POST /api/nodes/{id}/leases/{lease_id}/renew`. A 409 (the lease is
    /// no longer the job's) is `Refused` with code `lease_expired` or
    /// `lease_superseded`: stop the job. `cancel: true`: stop it too.
    pub async fn renew(&self, lease_id: Uuid) -> Result<RenewResponse, ClientError> {
        let path = self.lease_path(lease_id, "renew");
        self.post(&path, &serde_json::json!({})).await
    }

    /// `POST /api/nodes/{id}/leases/{lease_id}/logs`: chunks with their
    /// sequence numbers; resending a chunk is harmless.
    pub async fn append_logs(
        &self,
        lease_id: Uuid,
        request: &AppendLogsRequest,
    ) -> Result<AppendLogsResponse, ClientError> {
        let path = self.lease_path(lease_id, "logs");
        self.post(&path, request).await
    }

    /// `POST /api/nodes/{id}/leases/{lease_id}/complete`; idempotent.
    pub async fn complete(
        &self,
        lease_id: Uuid,
        request: &CompleteRequest,
    ) -> Result<CompleteResponse, ClientError> {
        let path = self.lease_path(lease_id, "complete");
        self.post(&path, request).await
    }

    fn lease_path(&self, lease_id: Uuid, action: &str) -> String {
        format!(
            "/api/nodes/{}/leases/{lease_id}/{action}",
            self.identity.node_id()
        )
    }

    /// The coordinator's id (the audience of every signature), fetched at
    /// the first call.
    pub async fn coordinator_id(&self) -> Result<Uuid, ClientError> {
        let cached = *self
            .coordinator_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = cached {
            return Ok(id);
        }
        let url = format!("{}{COORDINATOR_INFO_PATH}", self.base);
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let response = self.http.get(&url).send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(refusal(COORDINATOR_INFO_PATH, status.as_u16(), &bytes));
        }
        let info: CoordinatorInfo =
            serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
                path: COORDINATOR_INFO_PATH.into(),
                source,
            })?;
        *self
            .coordinator_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(info.coordinator_id);
        Ok(info.coordinator_id)
    }

    /// Signs and sends one request; any status is an answer. A refusal as
    /// signed for another coordinator id is retried once with the id fetched
    /// again (the coordinator moved to a new database).
    pub async fn send_signed(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<RawResponse, ClientError> {
        self.send_signed_with(method, path, body, REQUEST_TIMEOUT)
            .await
    }

    /// [`Self::send_signed`] with its own per-request limit (a long poll).
    async fn send_signed_with(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<RawResponse, ClientError> {
        let first = self
            .send_once(method.clone(), path, body.clone(), timeout)
            .await?;
        if first.status != 401 || refused_code(&first.body).as_deref() != Some("wrong_coordinator")
        {
            return Ok(first);
        }
        tracing::info!(coordinator = %self.base, "the coordinator's id changed; fetching it again");
        self.forget_coordinator_id();
        self.send_once(method, path, body, timeout).await
    }

    /// Forgets the coordinator's id, so the next signature fetches it again
    /// (a request this client did not send was refused as signed for
    /// another coordinator).
    pub fn forget_coordinator_id(&self) {
        *self
            .coordinator_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The coordinator's root URL, e.g. `http://127.0.0.1:7070` (no
    /// trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The signature headers of an empty-body `method` request to `path`,
    /// for a request sent by other means: the gateway link's WebSocket
    /// upgrade (`GET` of the link path), verified like any signed node
    /// request. Fetches the coordinator's id at the first call.
    pub async fn signed_headers(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<Vec<(&'static str, String)>, ClientError> {
        Ok(self.sign(method, path, &[]).await?.pairs().into())
    }

    /// Signs `method path body` for the coordinator, now, with a new nonce.
    async fn sign(
        &self,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<signing::SignedHeaders, ClientError> {
        let coordinator = self.coordinator_id().await?;
        let now = i64::try_from(crate::clock::unix_secs()).unwrap_or(i64::MAX);
        Ok(self.identity.sign_request(
            coordinator,
            method.as_str(),
            path,
            body,
            now,
            &signing::new_nonce(),
        ))
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<RawResponse, ClientError> {
        let signed = self.sign(&method, path, &body).await?;
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).timeout(timeout);
        if !body.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let response = request.body(body).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        Ok(RawResponse { status, body })
    }

    /// Signs and sends a JSON POST to `path`, decoding the answer.
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        let body = encode(path, body)?;
        let answer = self.send_signed(Method::POST, path, body).await?;
        decode_answer(path, &answer)
    }
}

fn encode<B: Serialize>(path: &str, body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(|source| ClientError::Decode {
        path: path.into(),
        source,
    })
}

/// A 2xx answer's body decoded; a refusal otherwise.
fn decode_answer<R: DeserializeOwned>(path: &str, answer: &RawResponse) -> Result<R, ClientError> {
    if !(200..300).contains(&answer.status) {
        return Err(refusal(path, answer.status, &answer.body));
    }
    serde_json::from_slice(&answer.body).map_err(|source| ClientError::Decode {
        path: path.into(),
        source,
    })
}

/// The `code` of an `{"error": {"code", "message"}}` body.
fn refused_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|body| body.error.code)
}

fn refusal(path: &str, status: u16, body: &[u8]) -> ClientError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (
            "unknown".into(),
            String::from_utf8_lossy(body).chars().take(200).collect(),
        ),
    };
    ClientError::Refused {
        path: path.into(),
        status,
        code,
        message,
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
