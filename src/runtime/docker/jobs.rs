//! The production [`JobEngine`]: podman's Docker-compatible API on the API
//! socket in the podman component's socket volume, plus the host's Docker
//! engine for finding that volume, copying images in (`docker save` →
//! podman's `/images/load`) and saying what happened when podman vanishes.
//! Job containers never touch the host engine. Whether podman enforces
//! limits is the verdict the podman image writes next to its socket.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, DownloadFromContainerOptions, ImportImageOptions,
    KillContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::jobs::engine::{
    EngineError, JobContainer, JobEngine, Labelled, LogChunk, LogStream, ResourceKind,
};
use crate::jobs::limits::Enforcement;
use crate::spec::PodmanHost;

use super::create_body::job_body;
use super::podman_health::{podman_verdict, verdict, Verdict};
use super::{status_code, ApiError};
use crate::runtime::labels;

/// Seconds a single API call to podman may take (image loads included).
const API_TIMEOUT_SECS: u64 = 600;

/// The file next to the socket where docker/podman/podman-wrapper.sh writes,
/// at every start, whether podman manages cgroups (`enforced: …` or
/// `not enforced: …`).
const LIMITS_FILE: &str = "limits";

/// Jobs through the podman socket of one node.
#[derive(Debug, Clone)]
pub struct PodmanJobEngine {
    pub(super) podman: Docker,
    pub(super) host: Docker,
    socket: PathBuf,
    podman_container: String,
    /// The podman container's id and start time when we connected, to tell
    /// later whether it stopped, restarted or was replaced meanwhile.
    podman_seen: Option<(String, Option<String>)>,
}

fn step(step: &'static str) -> impl Fn(BollardError) -> EngineError {
    move |err| EngineError::Step {
        step,
        message: ApiError::from(err).to_string(),
    }
}

impl PodmanJobEngine {
    /// Finds the socket of `podman` through the host engine and connects.
    pub async fn connect(podman: &PodmanHost) -> Result<Self, EngineError> {
        let unreachable = |endpoint: &str, message: String| EngineError::Unreachable {
            endpoint: endpoint.to_owned(),
            message,
        };
        let host = Docker::connect_with_defaults()
            .map_err(|e| unreachable("the host Docker engine", e.to_string()))?
            .negotiate_version()
            .await
            .map_err(|e| unreachable("the host Docker engine", e.to_string()))?;
        let volume = host
            .inspect_volume(&podman.socket_volume)
            .await
            .map_err(|e| {
                unreachable(
                    &format!("volume {}", podman.socket_volume),
                    ApiError::from(e).to_string(),
                )
            })?;
        let socket = PathBuf::from(volume.mountpoint).join(&podman.socket_file);
        Self::connect_socket(socket, host, &podman.container).await
    }

    /// Connects to a podman socket at a known path.
    async fn connect_socket(
        socket: PathBuf,
        host: Docker,
        podman_container: &str,
    ) -> Result<Self, EngineError> {
        let endpoint = format!("unix://{}", socket.display());
        let unreachable = |message: String| EngineError::Unreachable {
            endpoint: endpoint.clone(),
            message,
        };
        let podman = Docker::connect_with_unix(&endpoint, API_TIMEOUT_SECS, API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let podman_seen = host
            .inspect_container(podman_container, None)
            .await
            .ok()
            .and_then(|i| Some((i.id?, i.state.and_then(|s| s.started_at))));
        Ok(PodmanJobEngine {
            podman,
            host,
            socket,
            podman_container: podman_container.to_owned(),
            podman_seen,
        })
    }

    /// The socket this engine talks to.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl JobEngine for PodmanJobEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.podman
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| EngineError::Unreachable {
                endpoint: self.endpoint(),
                message: e.to_string(),
            })
    }

    async fn has_image(&self, image: &str) -> Result<bool, EngineError> {
        match self.podman.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(err) if status_code(&err) == Some(404) => Ok(false),
            Err(err) => Err(step("inspecting the image in podman")(err)),
        }
    }

    async fn pull_image(&self, image: &str) -> Result<(), EngineError> {
        let options = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        self.podman
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(step("pulling the image into podman"))
    }

    async fn load_image_from_host(&self, image: &str) -> Result<(), EngineError> {
        // Fail early with a plain message when the host does not have it.
        self.host
            .inspect_image(image)
            .await
            .map_err(step("finding the image on the host's Docker engine"))?;
        let tar = self.host.export_image(image);
        let mut loaded = false;
        let mut answers = self.podman.import_image_stream(
            ImportImageOptions {
                quiet: true,
                ..Default::default()
            },
            tar,
            None,
        );
        while let Some(answer) = answers.next().await {
            let info = answer.map_err(step("loading the image into podman"))?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Step {
                    step: "loading the image into podman",
                    message: error,
                });
            }
            loaded = true;
        }
        if !loaded {
            tracing::debug!(image, "podman's load answered nothing; checking the image");
        }
        if self.has_image(image).await? {
            Ok(())
        } else {
            Err(EngineError::Step {
                step: "loading the image into podman",
                message: format!("podman does not list {image} after the load"),
            })
        }
    }

    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.podman
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(step("creating the job network"))
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.podman
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(step("creating a job volume"))
    }

    async fn create_container(
        &self,
        name: &str,
        spec: &JobContainer,
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        self.podman
            .create_container(Some(options), job_body(spec))
            .await
            .map(|r| r.id)
            .map_err(step("creating the job container"))
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.podman
            .start_container(id, None)
            .await
            .map_err(step("starting the job container"))
    }

    fn logs(&self, id: &str) -> BoxStream<'static, Result<LogChunk, EngineError>> {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        self.podman
            .logs(id, Some(options))
            .filter_map(|item| async move {
                match item {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        Some(Ok(LogChunk {
                            stream: LogStream::Stdout,
                            bytes: message.to_vec(),
                        }))
                    }
                    Ok(LogOutput::StdErr { message }) => Some(Ok(LogChunk {
                        stream: LogStream::Stderr,
                        bytes: message.to_vec(),
                    })),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(err) => Some(Err(step("following the job's logs")(err))),
                }
            })
            .boxed()
    }

    async fn wait(&self, id: &str) -> Result<i64, EngineError> {
        let mut answers = self.podman.wait_container(id, None);
        match answers.next().await {
            Some(Ok(answer)) => Ok(answer.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(err)) => Err(step("waiting for the job container")(err)),
            None => Err(EngineError::Step {
                step: "waiting for the job container",
                message: "the engine closed the wait without an exit code".into(),
            }),
        }
    }

    async fn kill(&self, id: &str) -> Result<(), EngineError> {
        match self
            .podman
            .kill_container(id, None::<KillContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            // 404 gone, 409 not running: nothing left to kill.
            Err(err) if matches!(status_code(&err), Some(404 | 409)) => Ok(()),
            Err(err) => Err(step("killing the job container")(err)),
        }
    }

    async fn copy_out(
        &self,
        id: &str,
        path: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, EngineError> {
        let options = DownloadFromContainerOptions {
            path: path.to_owned(),
        };
        let mut archive = Vec::new();
        let mut stream = self.podman.download_from_container(id, Some(options));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(step("reading the output directory"))?;
            let room = max_bytes.saturating_sub(archive.len());
            archive.extend_from_slice(&chunk[..room.min(chunk.len())]);
            if archive.len() >= max_bytes {
                break;
            }
        }
        Ok(archive)
    }

    async fn list_labelled(&self, node: &str) -> Result<Vec<Labelled>, EngineError> {
        let filters = HashMap::from([("label".to_string(), labels::job_filter(node))]);
        let run_of = |labels: Option<HashMap<String, String>>| {
            labels.and_then(|mut l| l.remove(labels::JOB_RUN))
        };
        let containers = self
            .podman
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(step("listing job containers"))?;
        let networks = self
            .podman
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .map_err(step("listing job networks"))?;
        let volumes = self
            .podman
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(step("listing job volumes"))?;
        let mut out = Vec::new();
        for c in containers {
            if let (Some(id), Some(run)) = (c.id, run_of(c.labels)) {
                out.push(Labelled {
                    kind: ResourceKind::Container,
                    id,
                    run,
                });
            }
        }
        for n in networks {
            if let (Some(name), Some(run)) = (n.name, run_of(n.labels)) {
                out.push(Labelled {
                    kind: ResourceKind::Network,
                    id: name,
                    run,
                });
            }
        }
        for v in volumes.volumes.unwrap_or_default() {
            if let Some(run) = run_of(Some(v.labels)) {
                out.push(Labelled {
                    kind: ResourceKind::Volume,
                    id: v.name,
                    run,
                });
            }
        }
        Ok(out)
    }

    async fn remove(&self, item: &Labelled) -> Result<(), EngineError> {
        let result = match item.kind {
            ResourceKind::Container => {
                self.podman
                    .remove_container(
                        &item.id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: true,
                            ..Default::default()
                        }),
                    )
                    .await
            }
            ResourceKind::Network => self.podman.remove_network(&item.id).await,
            ResourceKind::Volume => {
                self.podman
                    .remove_volume(&item.id, Some(RemoveVolumeOptions { force: true }))
                    .await
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(err) if status_code(&err) == Some(404) => Ok(()),
            Err(err) => Err(EngineError::Step {
                step: "removing what a job created",
                message: format!("{}: {}", item.id, ApiError::from(err)),
            }),
        }
    }

    async fn diagnose(&self) -> Option<String> {
        // The engine reports a kill a moment after the socket drops: give
        // its state a second to settle before calling podman merely silent.
        for _ in 0..10 {
            let seen = self.podman_seen.as_ref();
            match podman_verdict(&self.host, &self.podman, &self.podman_container, seen).await {
                Some(Verdict::Silent) => tokio::time::sleep(Duration::from_millis(100)).await,
                Some(Verdict::Known(why)) => return Some(why),
                None => return None,
            }
        }
        Some(format!(
            "the podman container {} runs but its API does not answer",
            self.podman_container
        ))
    }

    async fn limits(&self) -> Enforcement {
        verdict(&self.socket.with_file_name(LIMITS_FILE)).await
    }
}
