//! What the image collector (`crate::gc`) asks of a node's podman host:
//! the images in its store (all of them the node's: loaded or pulled for
//! its jobs), which its containers use, removing one, and where the store
//! lives on the host.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use bollard::query_parameters::{ListContainersOptions, ListImagesOptions, RemoveImageOptions};

use super::images::ImageFacts;
use super::jobs::PodmanJobEngine;
use super::{status_code, ApiError};

impl PodmanJobEngine {
    /// Every image in podman's store by id, and the ids its containers use.
    pub async fn store_images(
        &self,
    ) -> Result<(BTreeMap<String, ImageFacts>, HashSet<String>), String> {
        let images = self
            .podman
            .list_images(Some(ListImagesOptions::default()))
            .await
            .map_err(|err| ApiError::from(err).to_string())?;
        let containers = self
            .podman
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(|err| ApiError::from(err).to_string())?;
        let store = images
            .into_iter()
            .map(|image| {
                let id = bare_id(&image.id);
                let facts = ImageFacts {
                    id: id.clone(),
                    size_bytes: u64::try_from(image.size).unwrap_or(0),
                };
                (id, facts)
            })
            .collect();
        let in_use = containers
            .into_iter()
            .filter_map(|c| c.image_id.as_deref().map(bare_id))
            .collect();
        Ok((store, in_use))
    }

    /// Removes the image `id` from podman's store, never forced (podman
    /// refuses an image a container uses). One already gone is no error.
    pub async fn remove_store_image(&self, id: &str) -> Result<(), String> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        match self.podman.remove_image(id, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(err) if status_code(&err) == Some(404) => Ok(()),
            Err(err) => Err(ApiError::from(err).to_string()),
        }
    }

    /// Where the volume `volume` (podman's image store) lives on the host.
    pub async fn volume_path(&self, volume: &str) -> Option<PathBuf> {
        let volume = self.host.inspect_volume(volume).await.ok()?;
        Some(PathBuf::from(volume.mountpoint))
    }
}

/// An image id without its `sha256:` prefix (podman's compatible API writes
/// it on images and not on containers, or the other way round).
fn bare_id(id: &str) -> String {
    id.trim_start_matches("sha256:").to_string()
}
