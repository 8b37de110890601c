//! Image admission: how a job's image reaches podman. An image podman
//! already holds is used; one the node allows from the host engine
//! (`spec.podman.jobs.hostImages` patterns) is copied from there; any other
//! is pulled, so a job can never name an arbitrary image the host engine
//! happens to hold.

use super::engine::{EngineError, ImageSource, JobEngine};

pub use crate::spec::{HostImages, PatternError};

/// Present in podman; else copied from the host engine when `host_images`
/// allows it (no network needed, and the operator's copy wins); else pulled.
/// `progress` hears each fallback in words.
pub async fn ensure_image<E: JobEngine>(
    engine: &E,
    host_images: &HostImages,
    image: &str,
    progress: impl Fn(String),
) -> Result<ImageSource, EngineError> {
    if engine.has_image(image).await? {
        return Ok(ImageSource::Present);
    }
    let not_copied = if host_images.allows(image) {
        match engine.load_image_from_host(image).await {
            Ok(()) => return Ok(ImageSource::LoadedFromHost),
            Err(err) => format!("copy from the host engine: {err}"),
        }
    } else {
        format!(
            "not copied from the host engine: it matches no pattern of spec.podman.jobs.hostImages \
             (fix: add a pattern such as `{}` there to run images the host engine holds, or use an \
             image podman can pull)",
            suggested_pattern(image)
        )
    };
    progress(format!("{not_copied}; pulling {image}"));
    match engine.pull_image(image).await {
        Ok(()) => Ok(ImageSource::Pulled),
        Err(pull_error) => Err(EngineError::Step {
            step: "bringing the image into podman",
            message: format!("{image}: {not_copied}; pull: {pull_error}"),
        }),
    }
}

/// The image's repository path with its last segment as `*`
/// (`garage-test/busybox:1` → `garage-test/*`), or the image itself.
fn suggested_pattern(image: &str) -> String {
    match image.rsplit_once('/') {
        Some((repo, _)) => format!("{repo}/*"),
        None => image.to_owned(),
    }
}
