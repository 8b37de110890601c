//! The production [`ContainerRuntime`]: the Docker Engine API through bollard.
//! Podman's Docker-compatible socket speaks the same API.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerSummary, HealthStatusEnum};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions,
    LogsOptionsBuilder, RemoveContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::create_body::container_body;
use super::{status_code, ApiError};
use crate::runtime::{
    labels, ContainerRuntime, ContainerSpec, ContainerState, EngineCause, Health,
    ObservedContainer, RuntimeError, RuntimeEvent, Termination, LOG_LINE_MAX, LOG_TAIL_LINES,
};

/// How long a stopped container gets between SIGTERM and SIGKILL (Docker's
/// own default).
const STOP_GRACE_SECONDS: i32 = 10;

/// A connection to one Docker-API engine (Docker or podman).
///
/// The API version is negotiated on the first call that reaches the engine,
/// so an agent started while the daemon is down keeps running and connects
/// once it is back (old engines speak API 1.41 only).
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    client: Arc<Mutex<Client>>,
    endpoint: String,
    /// Images known to be present, so a drift repair skips the inspect
    /// round trip; forgotten when a create says the image is gone.
    present_images: Arc<Mutex<HashSet<String>>>,
}

#[derive(Debug, Clone)]
struct Client {
    docker: Docker,
    negotiated: bool,
}

impl DockerRuntime {
    /// Connects through `DOCKER_HOST` (or the default socket). Fails only when
    /// the address itself is unusable; an engine that is down is retried.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let docker = Docker::connect_with_defaults().map_err(|err| RuntimeError::Unreachable {
            endpoint: endpoint.clone(),
            source: Box::new(ApiError::from(err)),
        })?;
        let runtime = DockerRuntime {
            client: Arc::new(Mutex::new(Client {
                docker,
                negotiated: false,
            })),
            endpoint,
            present_images: Arc::default(),
        };
        if let Err(err) = runtime.docker().await {
            tracing::warn!(error = %err, "container engine not reachable yet; will keep trying");
        }
        Ok(runtime)
    }

    /// The engine's own id (`docker info`'s ID), which names it whatever
    /// address it is reached by; the address itself when the engine has none.
    pub async fn engine_id(&self) -> Result<String, RuntimeError> {
        let docker = self.docker().await?;
        let info = docker
            .info()
            .await
            .map_err(|err| RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                source: Box::new(ApiError::from(err)),
            })?;
        Ok(info
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| self.endpoint.clone()))
    }

    /// The client, with its API version negotiated once the engine answers.
    pub(super) async fn docker(&self) -> Result<Docker, RuntimeError> {
        let client = self.lock().clone();
        if client.negotiated {
            return Ok(client.docker);
        }
        let docker =
            client
                .docker
                .negotiate_version()
                .await
                .map_err(|err| RuntimeError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    source: Box::new(ApiError::from(err)),
                })?;
        *self.lock() = Client {
            docker: docker.clone(),
            negotiated: true,
        };
        Ok(docker)
    }

    /// Forgets that `image` is present (it is being removed).
    pub(super) fn forget_image(&self, image: &str) {
        self.images().remove(image);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Client> {
        // The guarded value is a plain client handle: a poisoned lock holds a usable one.
        self.client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn images(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A set of names: a poisoned lock still holds a usable one.
        self.present_images
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn observe(
        &self,
        docker: &Docker,
        summary: ContainerSummary,
    ) -> Option<ObservedContainer> {
        let id = summary.id?;
        let labels: BTreeMap<String, String> =
            summary.labels.unwrap_or_default().into_iter().collect();
        let state = summary
            .state
            .map(|s| ContainerState::parse(s.as_ref()))
            .unwrap_or(ContainerState::Unknown);
        let name = summary
            .names
            .and_then(|names| names.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let mut observed = ObservedContainer {
            id,
            name,
            labels,
            state,
            health: health_from_status(summary.status.as_deref().unwrap_or("")),
            exit_code: None,
            started_at: None,
        };
        // The list answer has no exit code; only stopped containers need it.
        if state != ContainerState::Running {
            if let Ok(inspect) = docker.inspect_container(&observed.id, None).await {
                if let Some(s) = inspect.state {
                    observed.exit_code = s.exit_code;
                    observed.started_at = s.started_at;
                    observed.health = match s.health.and_then(|h| h.status) {
                        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
                        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
                        Some(HealthStatusEnum::STARTING) => Health::Starting,
                        _ => Health::None,
                    };
                }
            }
        }
        Some(observed)
    }

    /// The engine's answer in `err` as the cause of a failed step; a call
    /// that got no answer means the engine is unreachable.
    fn refused(&self, err: BollardError) -> Result<EngineCause, RuntimeError> {
        let answered = status_code(&err).is_some();
        let err: EngineCause = Box::new(ApiError::from(err));
        if answered {
            Ok(err)
        } else {
            Err(RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                source: err,
            })
        }
    }
}

/// Docker's list answer says "Up 3 minutes (healthy)"; the same words podman uses.
fn health_from_status(status: &str) -> Health {
    if status.contains("(healthy)") {
        Health::Healthy
    } else if status.contains("(unhealthy)") {
        Health::Unhealthy
    } else if status.contains("health: starting") {
        Health::Starting
    } else {
        Health::None
    }
}

impl ContainerRuntime for DockerRuntime {
    async fn list_owned(&self, node: &str) -> Result<Vec<ObservedContainer>, RuntimeError> {
        let filters = HashMap::from([("label".to_string(), labels::owned_filter(node))]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let docker = self.docker().await?;
        let summaries = match docker.list_containers(Some(options)).await {
            Ok(summaries) => summaries,
            Err(err) => {
                return Err(RuntimeError::List {
                    source: self.refused(err)?,
                });
            }
        };
        let observed =
            futures::future::join_all(summaries.into_iter().map(|s| self.observe(&docker, s)))
                .await;
        Ok(observed.into_iter().flatten().collect())
    }

    /// Pulls only when the image is missing (Kubernetes' `IfNotPresent`).
    async fn ensure_image(&self, image: &str) -> Result<(), RuntimeError> {
        if self.images().contains(image) {
            return Ok(());
        }
        let docker = self.docker().await?;
        match docker.inspect_image(image).await {
            Ok(_) => {
                self.images().insert(image.to_string());
                return Ok(());
            }
            Err(err) if status_code(&err) == Some(404) => {}
            Err(err) => {
                let source = self.refused(err)?;
                return Err(RuntimeError::ImageUnavailable {
                    image: image.into(),
                    source,
                });
            }
        }
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|err| RuntimeError::ImageUnavailable {
                image: image.into(),
                source: Box::new(ApiError::from(err)),
            })?;
        self.images().insert(image.to_string());
        Ok(())
    }

    async fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        spec: &ContainerSpec,
    ) -> Result<String, RuntimeError> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let body = container_body(labels, spec);
        let docker = self.docker().await?;
        match docker.create_container(Some(options), body).await {
            Ok(response) => Ok(response.id),
            Err(err) => {
                if status_code(&err) == Some(404) {
                    self.images().remove(&spec.image);
                }
                Err(RuntimeError::Create {
                    name: name.into(),
                    source: self.refused(err)?,
                })
            }
        }
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        match docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            // 304: already running, which is what we wanted.
            Err(err) if status_code(&err) == Some(304) => Ok(()),
            Err(err) => Err(RuntimeError::Start {
                id: id.into(),
                source: self.refused(err)?,
            }),
        }
    }

    async fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        let options = StopContainerOptions {
            t: Some(STOP_GRACE_SECONDS),
            ..Default::default()
        };
        let docker = self.docker().await?;
        match docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped; 404: gone.
            Err(err) if matches!(status_code(&err), Some(304 | 404)) => Ok(()),
            Err(err) => Err(RuntimeError::Stop {
                id: id.into(),
                source: self.refused(err)?,
            }),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let docker = self.docker().await?;
        match docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 404: already gone; 409: removal already in progress.
            Err(err) if matches!(status_code(&err), Some(404 | 409)) => Ok(()),
            Err(err) => Err(RuntimeError::Remove {
                id: id.into(),
                source: self.refused(err)?,
            }),
        }
    }

    async fn termination(&self, id: &str) -> Result<Termination, RuntimeError> {
        let docker = self.docker().await?;
        let failed = |source| RuntimeError::Inspect {
            id: id.into(),
            source,
        };
        let state = match docker.inspect_container(id, None).await {
            Ok(inspect) => inspect.state.unwrap_or_default(),
            Err(err) => return Err(failed(self.refused(err)?)),
        };
        let reason = match (state.oom_killed, state.error) {
            (Some(true), _) => Some("killed: out of memory".to_string()),
            (_, Some(error)) if !error.is_empty() => Some(error),
            _ => None,
        };
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&LOG_TAIL_LINES.to_string())
            .build();
        let chunks: Vec<_> = match docker.logs(id, Some(options)).try_collect().await {
            Ok(chunks) => chunks,
            Err(err) => return Err(failed(self.refused(err)?)),
        };
        let text: String = chunks.iter().map(ToString::to_string).collect();
        Ok(Termination {
            reason,
            log_tail: log_tail(&text),
        })
    }

    fn events(&self, node: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), labels::owned_filter(node)),
        ]);
        let options = EventsOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let runtime = self.clone();
        futures::stream::once(async move { runtime.docker().await })
            .flat_map(move |docker| match docker {
                Ok(docker) => docker
                    .events(Some(options.clone()))
                    .map(|event| match event {
                        Ok(message) => Ok(RuntimeEvent {
                            container_id: message.actor.and_then(|a| a.id).unwrap_or_default(),
                            action: message.action.unwrap_or_default(),
                        }),
                        Err(err) => Err(RuntimeError::Events {
                            source: Box::new(ApiError::from(err)),
                        }),
                    })
                    .boxed(),
                Err(err) => futures::stream::once(async move { Err(err) }).boxed(),
            })
            .boxed()
    }
}

/// The last [`LOG_TAIL_LINES`] non-empty lines of `text`, each cut to
/// [`LOG_LINE_MAX`] bytes at a character boundary.
fn log_tail(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..]
        .iter()
        .map(|line| {
            let mut end = line.len().min(LOG_LINE_MAX);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line[..end].to_string()
        })
        .collect()
}
