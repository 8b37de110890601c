//! The narrow seam between the job runner and the engine that runs jobs
//! (podman's Docker-compatible API). The production implementation is
//! `crate::runtime::docker::PodmanJobEngine`; tests may use any other.

use std::collections::BTreeMap;
use std::future::Future;

use futures::stream::BoxStream;

use super::job::Limits;
use super::limits::Enforcement;

/// Everything the engine needs to create one job container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobContainer {
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub work_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The job's own network.
    pub network: String,
    /// (engine volume name, path in the container, read-only).
    pub volumes: Vec<(String, String, bool)>,
    pub expose: Vec<u16>,
    pub limits: Limits,
    /// Hand every GPU of the podman host to the container (CDI).
    pub gpu: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// A piece of a container's output, as the engine delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub stream: LogStream,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Container,
    Network,
    Volume,
}

/// Something a job run created, found by its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    pub kind: ResourceKind,
    /// Container id, or network/volume name.
    pub id: String,
    /// The run that created it (its run label).
    pub run: String,
}

/// How an image reached the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ImageSource {
    Present,
    Pulled,
    LoadedFromHost,
}

/// Errors of the job engine seam, each naming the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the podman API at {endpoint} does not answer: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("{step} failed: {message}")]
    Step { step: &'static str, message: String },
}

/// All the job runner may ask of the engine. Removing something missing
/// succeeds, so cleanup is safe to repeat.
pub trait JobEngine: Send + Sync + 'static {
    /// `GET /_ping`.
    fn ping(&self) -> impl Future<Output = Result<(), EngineError>> + Send;
    fn has_image(&self, image: &str) -> impl Future<Output = Result<bool, EngineError>> + Send;
    /// Pulls `image` from its registry into the engine.
    fn pull_image(&self, image: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Copies `image` from the host's Docker engine (save → load).
    fn load_image_from_host(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Creates (does not start) a container; returns its id.
    fn create_container(
        &self,
        name: &str,
        spec: &JobContainer,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    fn start(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Follows the container's output until it exits.
    fn logs(&self, id: &str) -> BoxStream<'static, Result<LogChunk, EngineError>>;
    /// Waits for the container to exit; returns its exit code.
    fn wait(&self, id: &str) -> impl Future<Output = Result<i64, EngineError>> + Send;
    /// SIGKILL; a container that already exited is fine.
    fn kill(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// A tar archive of `path` in the container, at most `max_bytes` long
    /// (longer archives are cut; the caller reads what is complete).
    fn copy_out(
        &self,
        id: &str,
        path: &str,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send;
    /// Containers, networks and volumes of job runs on `node`.
    fn list_labelled(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<Vec<Labelled>, EngineError>> + Send;
    /// Force-removes one of them (containers with their anonymous volumes).
    fn remove(&self, item: &Labelled) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Why the engine went away, in words (e.g. the podman container's
    /// state on the host), when something can be said.
    fn diagnose(&self) -> impl Future<Output = Option<String>> + Send;
    /// Whether the limits set on job containers are enforced on this host.
    fn limits(&self) -> impl Future<Output = Enforcement> + Send;
}
