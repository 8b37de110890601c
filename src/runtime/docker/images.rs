//! What the image collector (`crate::gc`) asks of the engine: which images
//! and model files every container uses (all of them, the node's and
//! anyone's), the facts of one image, the engine's data directory, where a
//! volume lives, and removing one image reference.

use std::collections::{BTreeMap, HashSet};

use bollard::models::ContainerSummary;
use bollard::query_parameters::{ListContainersOptions, RemoveImageOptions};

use super::containers::DockerRuntime;
use super::{status_code, ApiError};
use crate::runtime::{labels, RuntimeError};

/// Images by the containers that use them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageUse {
    /// Image ids some container (any, in any state) was made from.
    pub in_use: HashSet<String>,
    /// The references the node's own containers were made from, with the
    /// image id each resolved to.
    pub owned: BTreeMap<String, String>,
}

/// Model files by the containers that name them: `VOLUME:/models/PATH` for
/// a container with `--model /models/PATH` in its command and the named
/// volume VOLUME mounted at `/models` (the worker's shape).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelUse {
    /// Model files some container (any, in any state) names.
    pub in_use: HashSet<String>,
    /// Those the node's own containers name.
    pub owned: HashSet<String>,
}

/// Where models are mounted in a worker.
pub const MODELS_MOUNT: &str = "/models";

/// The model file `command` names (`--model /models/…`) in the volume
/// mounted at [`MODELS_MOUNT`], as `VOLUME:/models/…`.
pub fn model_reference(command: &str, volume: &str) -> Option<String> {
    let mut words = command.split_whitespace();
    words.by_ref().find(|word| *word == "--model")?;
    let path = words.next()?;
    let inside = path.strip_prefix(MODELS_MOUNT)?.strip_prefix('/')?;
    let plain = !inside.is_empty()
        && std::path::Path::new(inside)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then(|| format!("{volume}:{path}"))
}

/// One image as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    pub size_bytes: u64,
}

impl DockerRuntime {
    /// Every container on the engine, in any state, and the label filter
    /// of `node`'s own.
    async fn every_container(
        &self,
        node: &str,
    ) -> Result<(Vec<ContainerSummary>, Vec<String>), RuntimeError> {
        let docker = self.docker().await?;
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let containers =
            docker
                .list_containers(Some(options))
                .await
                .map_err(|err| RuntimeError::List {
                    source: Box::new(ApiError::from(err)),
                })?;
        Ok((containers, labels::owned_filter(node)))
    }

    /// The images every container uses, and those of `node`'s containers.
    pub async fn image_use(&self, node: &str) -> Result<ImageUse, RuntimeError> {
        let (containers, owned_labels) = self.every_container(node).await?;
        let mut usage = ImageUse::default();
        for container in containers {
            let Some(id) = container.image_id.filter(|id| !id.is_empty()) else {
                continue;
            };
            let container_labels = container.labels.unwrap_or_default();
            let owned = is_owned(&owned_labels, &container_labels);
            if let (true, Some(reference)) = (owned, container.image) {
                usage.owned.insert(reference, id.clone());
            }
            usage.in_use.insert(id);
        }
        Ok(usage)
    }

    /// The model files every container names, and those of `node`'s.
    pub async fn model_use(&self, node: &str) -> Result<ModelUse, RuntimeError> {
        let (containers, owned_labels) = self.every_container(node).await?;
        let mut usage = ModelUse::default();
        for container in containers {
            let volume = container
                .mounts
                .unwrap_or_default()
                .into_iter()
                .find_map(|mount| {
                    (mount.destination.as_deref() == Some(MODELS_MOUNT)).then_some(mount.name?)
                });
            let (Some(volume), Some(command)) = (volume, container.command) else {
                continue;
            };
            let Some(model) = model_reference(&command, &volume) else {
                continue;
            };
            let container_labels = container.labels.unwrap_or_default();
            if is_owned(&owned_labels, &container_labels) {
                usage.owned.insert(model.clone());
            }
            usage.in_use.insert(model);
        }
        Ok(usage)
    }

    /// Where the named volume `volume` lives on the host.
    pub async fn volume_path(
        &self,
        volume: &str,
    ) -> Result<Option<std::path::PathBuf>, RuntimeError> {
        let docker = self.docker().await?;
        match docker.inspect_volume(volume).await {
            Ok(volume) => Ok(Some(std::path::PathBuf::from(volume.mountpoint))),
            Err(err) if status_code(&err) == Some(404) => Ok(None),
            Err(err) => Err(RuntimeError::List {
                source: Box::new(ApiError::from(err)),
            }),
        }
    }

    /// The image `reference` names; `None` when the engine has none.
    pub async fn image_facts(&self, reference: &str) -> Result<Option<ImageFacts>, RuntimeError> {
        let docker = self.docker().await?;
        match docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(ImageFacts {
                id: image.id.unwrap_or_default(),
                size_bytes: image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            })),
            Err(err) if status_code(&err) == Some(404) => Ok(None),
            Err(err) => Err(RuntimeError::ImageUnavailable {
                image: reference.into(),
                source: Box::new(ApiError::from(err)),
            }),
        }
    }

    /// The engine's data directory (`docker info`'s DockerRootDir).
    pub async fn data_root(&self) -> Result<Option<String>, RuntimeError> {
        let docker = self.docker().await?;
        let info = docker.info().await.map_err(|err| RuntimeError::List {
            source: Box::new(ApiError::from(err)),
        })?;
        Ok(info.docker_root_dir.filter(|dir| !dir.is_empty()))
    }

    /// Removes the reference `reference` (`docker rmi`, never forced: the
    /// engine refuses an image a container uses). The image itself goes
    /// with its last reference. A reference already gone is no error.
    pub async fn remove_image_reference(&self, reference: &str) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        self.forget_image(reference);
        match docker.remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(err) if status_code(&err) == Some(404) => Ok(()),
            Err(err) => Err(RuntimeError::RemoveImage {
                image: reference.into(),
                source: Box::new(ApiError::from(err)),
            }),
        }
    }
}

/// Whether a container's labels carry every `key=value` of `filter`.
fn is_owned(filter: &[String], labels: &std::collections::HashMap<String, String>) -> bool {
    filter.iter().all(|pair| {
        pair.split_once('=')
            .is_some_and(|(key, value)| labels.get(key).map(String::as_str) == Some(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_command_names_its_model_in_the_volume() {
        let command = "garage worker --listen 0.0.0.0:8000 --model /models/smollm2.Q4_1.gguf";
        assert_eq!(
            model_reference(command, "garage-models").as_deref(),
            Some("garage-models:/models/smollm2.Q4_1.gguf")
        );
        assert_eq!(
            model_reference("garage worker --model hf:org/name", "v"),
            None,
            "a hub model"
        );
        assert_eq!(model_reference("sleep 3600", "v"), None);
        assert_eq!(
            model_reference("w --model /models/../etc/passwd", "v"),
            None
        );
        assert_eq!(model_reference("w --model /modelsx/a", "v"), None);
    }
}
