//! What the image collector (`crate::gc`) asks of the engine: which images
//! every container uses (all of them, the node's and anyone's), the facts
//! of one image, the engine's data directory, and removing one reference.

use std::collections::{BTreeMap, HashSet};

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

/// One image as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    pub size_bytes: u64,
}

impl DockerRuntime {
    /// The images every container uses, and those of `node`'s containers.
    pub async fn image_use(&self, node: &str) -> Result<ImageUse, RuntimeError> {
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
        let owned_labels = labels::owned_filter(node);
        let mut usage = ImageUse::default();
        for container in containers {
            let Some(id) = container.image_id.filter(|id| !id.is_empty()) else {
                continue;
            };
            let container_labels = container.labels.unwrap_or_default();
            let owned = owned_labels.iter().all(|pair| {
                pair.split_once('=').is_some_and(|(key, value)| {
                    container_labels.get(key).map(String::as_str) == Some(value)
                })
            });
            if let (true, Some(reference)) = (owned, container.image) {
                usage.owned.insert(reference, id.clone());
            }
            usage.in_use.insert(id);
        }
        Ok(usage)
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
