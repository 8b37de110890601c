//! `garage register`: one registration of this node with
//! `spec.coordinator.url` (the agent also registers at start), signed with
//! the node's identity and carrying its GPUs, location and benchmark.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::benchmark::saved::{self, SavedReportError};
use crate::coordinator::{ClientError, CoordinatorClient};
use crate::coordinator_link;
use crate::gpu::GpuInventory;
use crate::spec::{self, SpecError};

use super::{IdentityError, NodeIdentity};

/// Why the node was not registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{path}: spec.coordinator.url is not set (fix: add `coordinator: {{url: http://HOST:7070}}` under spec)")]
    NoCoordinator { path: PathBuf },
    #[error(transparent)]
    Benchmark(#[from] SavedReportError),
    #[error("registering with the coordinator")]
    Register(#[source] ClientError),
    #[error("cannot read the join token file {path} (fix: pass the file the admin's `garage coordinator token create` output was saved to)")]
    JoinTokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where `register` finds a join token: the file wins over the value
/// (`--join-token` or `GARAGE_JOIN_TOKEN`).
#[derive(Debug, Default)]
pub struct JoinTokenInput {
    pub file: Option<PathBuf>,
    pub value: Option<String>,
}

impl JoinTokenInput {
    fn read(self) -> Result<Option<String>, RegisterError> {
        let text = match self.file {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|source| RegisterError::JoinTokenFile { path, source })?,
            ),
            None => self.value,
        };
        Ok(text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
    }
}

/// What `register` got from the coordinator.
#[derive(Debug)]
pub struct Registered {
    pub node_id: uuid::Uuid,
    pub market: String,
    /// False when the node was known and its facts were updated.
    pub created: bool,
    pub coordinator: String,
    pub with_benchmark: bool,
}

/// Registers the node of the spec at `path` with `spec.coordinator.url`,
/// once: its identity from `state_dir`, its GPUs and location, and the
/// benchmark report in `benchmark` (else the one saved in `state_dir`), and
/// the join token a new node needs. Registering again updates the node's
/// facts and needs no token.
pub async fn register(
    path: &Path,
    state_dir: &Path,
    benchmark: Option<&Path>,
    join_token: JoinTokenInput,
) -> Result<Registered, RegisterError> {
    let spec = spec::load(path)?;
    let url = spec
        .coordinator_url()
        .ok_or_else(|| RegisterError::NoCoordinator {
            path: path.to_path_buf(),
        })?
        .to_string();
    let join_token = join_token.read()?;
    let identity = Arc::new(NodeIdentity::load_or_create(state_dir)?);
    let report = match benchmark {
        Some(file) => Some(saved::read(file)?),
        None => saved::read_saved(state_dir)?,
    };
    let with_benchmark = report.is_some();
    let gpus = tokio::task::spawn_blocking(GpuInventory::detect)
        .await
        .unwrap_or_default();
    let client = CoordinatorClient::new(&url, identity).map_err(RegisterError::Register)?;
    let mut request = coordinator_link::registration(&client, &spec, &gpus, report);
    request.join_token = join_token;
    let answer = client
        .register(&request)
        .await
        .map_err(RegisterError::Register)?;
    Ok(Registered {
        node_id: client.identity().node_id(),
        market: answer.market,
        created: answer.created,
        coordinator: url,
        with_benchmark,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_token_file_wins_over_the_value_and_is_trimmed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("join-token");
        std::fs::write(&file, "gjt_from_file\n").expect("write");
        let both = JoinTokenInput {
            file: Some(file.clone()),
            value: Some("gjt_from_env".into()),
        };
        assert_eq!(both.read().expect("read").as_deref(), Some("gjt_from_file"));
        let value = JoinTokenInput {
            file: None,
            value: Some(" gjt_from_env ".into()),
        };
        assert_eq!(value.read().expect("read").as_deref(), Some("gjt_from_env"));
        assert_eq!(JoinTokenInput::default().read().expect("none"), None);
        let missing = JoinTokenInput {
            file: Some(tmp.path().join("nope")),
            value: None,
        };
        let err = missing.read().expect_err("missing");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
