//! `garage api`: one request to the coordinator signed with this node's
//! identity, answered as it came (like `gh api` or `kubectl get --raw`), so
//! an operator can see what the coordinator says to this node.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Method;

use crate::coordinator::client::RawResponse;
use crate::coordinator::{ClientError, CoordinatorClient};
use crate::identity::{IdentityError, NodeIdentity, KEY_FILE};
use crate::spec::{self, SpecError};

/// Which coordinator to call.
#[derive(Debug, Clone)]
pub enum Coordinator {
    Url(String),
    /// `spec.coordinator.url` of this node spec.
    Spec(PathBuf),
}

impl Coordinator {
    /// From the command line: `--coordinator URL` (identity in `state_dir`,
    /// default `./.garage`), else `-f FILE` (default `./node.yaml`; identity
    /// default `.garage` next to it). Returns the state directory too.
    pub fn from_args(
        url: Option<String>,
        file: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> (PathBuf, Coordinator) {
        match url {
            Some(url) => (
                state_dir.unwrap_or_else(|| PathBuf::from(".garage")),
                Coordinator::Url(url),
            ),
            None => {
                let file = file.unwrap_or_else(|| PathBuf::from("node.yaml"));
                (
                    state_dir.unwrap_or_else(|| crate::spec::default_state_dir(&file)),
                    Coordinator::Spec(file),
                )
            }
        }
    }
}

/// One request as given on the command line.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: String,
    /// With the query, e.g. `/api/nodes?limit=10`.
    pub path: String,
    /// `-d`: the body itself, or `@FILE` to read it from FILE.
    pub data: Option<String>,
}

/// Why `garage api` sent nothing or got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiCommandError {
    #[error("{path}: spec.coordinator.url is not set (fix: add `coordinator: {{url: http://HOST:7070}}` under spec, or pass --coordinator URL)")]
    NoCoordinator { path: PathBuf },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("there is no node identity in {dir} (fix: pass the node's --state-dir, or make one with `garage identity --state-dir {dir}` and register it)")]
    NoIdentity { dir: PathBuf },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{method:?} is not an HTTP method (fix: use GET, POST, PUT, PATCH or DELETE)")]
    BadMethod { method: String },
    #[error("{path:?} is not an API path (fix: start it with '/', e.g. /api/nodes)")]
    BadPath { path: String },
    #[error("cannot read the request body from {path} (given as -d @{path})")]
    ReadBody {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Sends `request` signed with the identity in `state_dir`; any status is
/// an answer.
pub async fn api(
    state_dir: &Path,
    coordinator: &Coordinator,
    request: &ApiRequest,
) -> Result<RawResponse, ApiCommandError> {
    let method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
        .ok()
        .filter(|m| m.as_str().bytes().all(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| ApiCommandError::BadMethod {
            method: request.method.clone(),
        })?;
    if !request.path.starts_with('/') {
        return Err(ApiCommandError::BadPath {
            path: request.path.clone(),
        });
    }
    let body = match request.data.as_deref() {
        None => Vec::new(),
        Some(data) => match data.strip_prefix('@') {
            Some(file) => std::fs::read(file).map_err(|source| ApiCommandError::ReadBody {
                path: PathBuf::from(file),
                source,
            })?,
            None => data.as_bytes().to_vec(),
        },
    };
    let url = match coordinator {
        Coordinator::Url(url) => url.clone(),
        Coordinator::Spec(path) => spec::load(path)?
            .coordinator_url()
            .ok_or_else(|| ApiCommandError::NoCoordinator { path: path.clone() })?
            .to_string(),
    };
    if !state_dir.join(KEY_FILE).exists() {
        return Err(ApiCommandError::NoIdentity {
            dir: state_dir.to_path_buf(),
        });
    }
    let identity = Arc::new(NodeIdentity::load_or_create(state_dir)?);
    let client = CoordinatorClient::new(&url, identity)?;
    Ok(client.send_signed(method, &request.path, body).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, data: Option<&str>) -> ApiRequest {
        ApiRequest {
            method: method.into(),
            path: path.into(),
            data: data.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_anything_is_sent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let nowhere = Coordinator::Url("http://127.0.0.1:9".into());
        let err = api(tmp.path(), &nowhere, &request("GE T", "/api/nodes", None))
            .await
            .expect_err("method");
        assert!(matches!(err, ApiCommandError::BadMethod { .. }), "{err}");
        let err = api(tmp.path(), &nowhere, &request("get", "api/nodes", None))
            .await
            .expect_err("path");
        assert!(matches!(err, ApiCommandError::BadPath { .. }), "{err}");
        let missing = tmp.path().join("missing.json");
        let data = format!("@{}", missing.display());
        let err = api(tmp.path(), &nowhere, &request("post", "/x", Some(&data)))
            .await
            .expect_err("body file");
        assert!(err.to_string().contains("missing.json"), "{err}");
        let err = api(tmp.path(), &nowhere, &request("get", "/api/nodes", None))
            .await
            .expect_err("identity");
        assert!(matches!(err, ApiCommandError::NoIdentity { .. }), "{err}");
        assert!(
            err.to_string().contains("garage identity --state-dir"),
            "{err}"
        );
    }
}
