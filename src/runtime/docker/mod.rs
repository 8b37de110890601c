//! The Docker Engine API through bollard: the agent's containers
//! ([`DockerRuntime`], the [`super::ContainerRuntime`]) and the jobs inside
//! podman ([`PodmanJobEngine`], the [`crate::jobs::engine::JobEngine`]).
//! The only module that imports bollard; its errors leave as [`ApiError`].

mod containers;
mod create_body;
mod images;
mod jobs;
mod podman_health;
mod podman_images;

use std::fmt;

use bollard::errors::Error as BollardError;

pub use containers::DockerRuntime;
pub use images::{model_reference, ImageFacts, ImageUse, ModelUse, MODELS_MOUNT};
pub use jobs::PodmanJobEngine;

/// A failed Docker-API call: reads as the engine's own message when the
/// engine answered, as the transport's error when it did not.
#[derive(Debug)]
pub struct ApiError(BollardError);

impl From<BollardError> for ApiError {
    fn from(err: BollardError) -> Self {
        ApiError(err)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            BollardError::DockerResponseServerError { message, .. } => f.write_str(message),
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {}

/// The HTTP status of the engine's answer in `err`; `None` when none came.
fn status_code(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_as_the_engine_message_and_keeps_its_status() {
        let err = BollardError::DockerResponseServerError {
            status_code: 404,
            message: "No such image: busybox:9".into(),
        };
        assert_eq!(status_code(&err), Some(404));
        assert_eq!(ApiError::from(err).to_string(), "No such image: busybox:9");
    }

    #[test]
    fn no_answer_has_no_status_and_reads_as_the_transport_error() {
        let err = BollardError::RequestTimeoutError;
        assert_eq!(status_code(&err), None);
        let text = err.to_string();
        assert_eq!(ApiError::from(err).to_string(), text);
    }
}
