//! The stores the collector cleans, behind one small trait: the host
//! engine's images (only what the node's own containers used is the
//! node's), the model files its containers named in named volumes (the
//! same rule), and the node's podman host (every image in it is the node's,
//! loaded or pulled for its jobs).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::error_text::one_line;
use crate::runtime::docker::{
    model_reference, DockerRuntime, ImageFacts, PodmanJobEngine, MODELS_MOUNT,
};
use crate::spec::PodmanHost;

/// What a store holds now.
#[derive(Debug, Default)]
pub struct Usage {
    /// References the node uses now (recorded as used now).
    pub used: BTreeMap<String, String>,
    /// References of the node's the listing showed, with their facts
    /// (recorded as used now only when not recorded yet; a candidate's
    /// facts are taken from here before the store is asked again).
    pub present: BTreeMap<String, ImageFacts>,
    /// Image ids some container uses: never removed.
    pub in_use: HashSet<String>,
}

/// One image store.
pub trait ImageStore {
    /// The `store` label of the metrics, and the records' file stem.
    fn name(&self) -> &'static str;
    async fn usage(&self) -> Result<Usage, String>;
    /// The image a recorded reference names now, if any.
    async fn facts(&self, reference: &str) -> Result<Option<ImageFacts>, String>;
    async fn remove(&self, reference: &str) -> Result<(), String>;
    /// The host directory whose filesystem holds the store.
    async fn disk_path(&self) -> Option<PathBuf>;
}

/// The host engine's images, as the node's containers use them.
#[derive(Debug)]
pub struct HostStore {
    pub runtime: Arc<DockerRuntime>,
    pub node: String,
}

impl ImageStore for HostStore {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn usage(&self) -> Result<Usage, String> {
        let usage = self
            .runtime
            .image_use(&self.node)
            .await
            .map_err(|err| one_line(&err))?;
        Ok(Usage {
            used: usage.owned,
            present: BTreeMap::new(),
            in_use: usage.in_use,
        })
    }

    async fn facts(&self, reference: &str) -> Result<Option<ImageFacts>, String> {
        self.runtime
            .image_facts(reference)
            .await
            .map_err(|err| one_line(&err))
    }

    async fn remove(&self, reference: &str) -> Result<(), String> {
        self.runtime
            .remove_image_reference(reference)
            .await
            .map_err(|err| one_line(&err))
    }

    async fn disk_path(&self) -> Option<PathBuf> {
        self.runtime
            .data_root()
            .await
            .ok()
            .flatten()
            .map(PathBuf::from)
    }
}

/// The node's podman host's image store (images by id).
#[derive(Debug)]
pub struct PodmanStore {
    pub host: PodmanHost,
}

impl PodmanStore {
    async fn engine(&self) -> Result<PodmanJobEngine, String> {
        PodmanJobEngine::connect(&self.host)
            .await
            .map_err(|err| one_line(&err))
    }
}

impl ImageStore for PodmanStore {
    fn name(&self) -> &'static str {
        "podman"
    }

    async fn usage(&self) -> Result<Usage, String> {
        let (store, in_use) = self.engine().await?.store_images().await?;
        let used = store
            .keys()
            .filter(|id| in_use.contains(*id))
            .map(|id| (id.clone(), id.clone()))
            .collect();
        Ok(Usage {
            used,
            present: store,
            in_use,
        })
    }

    /// The usage listing holds every image of the store: one it did not
    /// show is gone.
    async fn facts(&self, _reference: &str) -> Result<Option<ImageFacts>, String> {
        Ok(None)
    }

    async fn remove(&self, reference: &str) -> Result<(), String> {
        self.engine().await?.remove_store_image(reference).await
    }

    async fn disk_path(&self) -> Option<PathBuf> {
        let engine = self.engine().await.ok()?;
        engine.volume_path(&self.host.cache_volume).await
    }
}

/// Model files in named volumes (`VOLUME:/models/PATH`), as the node's
/// containers name them (`--model /models/PATH`, the worker's shape), on
/// the same engine and disk as [`HostStore`].
#[derive(Debug)]
pub struct ModelStore(pub HostStore);

impl ModelStore {
    /// The host path of a recorded model file; `None` for a reference that
    /// is not `VOLUME:/models/PATH` or whose volume is gone.
    async fn host_path(&self, reference: &str) -> Result<Option<PathBuf>, String> {
        let Some((volume, path)) = reference.split_once(':') else {
            return Ok(None);
        };
        if model_reference(&format!("--model {path}"), volume).as_deref() != Some(reference) {
            return Ok(None);
        }
        let inside = path
            .trim_start_matches(MODELS_MOUNT)
            .trim_start_matches('/');
        let root = self
            .0
            .runtime
            .volume_path(volume)
            .await
            .map_err(|err| one_line(&err))?;
        Ok(root.map(|root| root.join(inside)))
    }
}

impl ImageStore for ModelStore {
    fn name(&self) -> &'static str {
        "models"
    }

    async fn usage(&self) -> Result<Usage, String> {
        let usage = self
            .0
            .runtime
            .model_use(&self.0.node)
            .await
            .map_err(|err| one_line(&err))?;
        Ok(Usage {
            used: usage.owned.into_iter().map(|r| (r.clone(), r)).collect(),
            present: BTreeMap::new(),
            in_use: usage.in_use,
        })
    }

    async fn facts(&self, reference: &str) -> Result<Option<ImageFacts>, String> {
        let Some(path) = self.host_path(reference).await? else {
            return Ok(None);
        };
        Ok(std::fs::symlink_metadata(&path)
            .ok()
            .filter(|meta| meta.is_file())
            .map(|meta| ImageFacts {
                id: reference.to_string(),
                size_bytes: meta.len(),
            }))
    }

    async fn remove(&self, reference: &str) -> Result<(), String> {
        let path = self
            .host_path(reference)
            .await?
            .ok_or_else(|| format!("{reference} is not a model file in a volume"))?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(format!("cannot remove {}: {err}", path.display())),
        }
    }

    async fn disk_path(&self) -> Option<PathBuf> {
        // Named volumes live under the engine's data directory.
        self.0.disk_path().await
    }
}
