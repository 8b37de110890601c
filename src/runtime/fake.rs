//! An in-memory [`ContainerRuntime`] for fast tests of the reconciler: the
//! same contract as the Docker one, with knobs to inject drift and failures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::{
    labels, ContainerRuntime, ContainerSpec, ContainerState, Health, ObservedContainer,
    RuntimeError, RuntimeEvent, Termination,
};

#[derive(Debug, Clone)]
struct FakeContainer {
    name: String,
    labels: BTreeMap<String, String>,
    state: ContainerState,
    exit_code: Option<i64>,
    /// Bumped on every start, standing in for the engine's start time.
    starts: u64,
    termination: Termination,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    containers: BTreeMap<String, FakeContainer>,
    images: BTreeSet<String>,
    /// Every mutating call, in order, for assertions.
    calls: Vec<String>,
    /// Pulls of these images panic (a bug in a step).
    panicking_images: BTreeSet<String>,
    /// Pulls of these images take this long (a slow registry).
    slow_images: BTreeMap<String, std::time::Duration>,
}

/// A fake engine. Cloning shares the same state.
#[derive(Debug, Clone)]
pub struct FakeRuntime {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<RuntimeEvent>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        let (events, _) = broadcast::channel(1024);
        FakeRuntime {
            inner: Arc::default(),
            events,
        }
    }
}

impl FakeRuntime {
    /// A fake engine that already holds `images` (nothing else can be "pulled").
    pub fn with_images<'a>(images: impl IntoIterator<Item = &'a str>) -> Self {
        let fake = FakeRuntime::default();
        fake.lock()
            .images
            .extend(images.into_iter().map(String::from));
        fake
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock only happens in a failing test.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn emit(&self, id: &str, action: &str) {
        // No subscriber is fine: nobody is watching yet.
        let _ = self.events.send(RuntimeEvent {
            container_id: id.into(),
            action: action.into(),
        });
    }

    /// Mutating calls made so far (`create NAME`, `start ID`, `remove ID`, `pull IMAGE`).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Adds a container as if someone else created it (labels decide ownership).
    pub fn insert_foreign(&self, name: &str, labels: BTreeMap<String, String>) -> String {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = format!("c{}", inner.next_id);
        let container = FakeContainer {
            name: name.into(),
            labels,
            state: ContainerState::Running,
            exit_code: None,
            starts: 1,
            termination: Termination::default(),
        };
        inner.containers.insert(id.clone(), container);
        id
    }

    /// Pulling `image` panics, as a bug in a step would.
    pub fn panic_on_pull(&self, image: &str) {
        self.lock().panicking_images.insert(image.into());
    }

    /// Pulling `image` takes `delay` (on tokio's clock).
    pub fn slow_pull(&self, image: &str, delay: std::time::Duration) {
        self.lock().slow_images.insert(image.into(), delay);
    }

    /// The container exits on its own with `code` (a crash, or `docker stop`).
    pub fn exit(&self, id: &str, code: i64) {
        self.exit_with(id, code, Termination::default());
    }

    /// Like [`FakeRuntime::exit`], leaving `termination` as its last words.
    pub fn exit_with(&self, id: &str, code: i64, termination: Termination) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.state = ContainerState::Exited;
            c.exit_code = Some(code);
            c.termination = termination;
        }
        self.emit(id, "die");
    }

    /// The container disappears behind the agent's back (`docker rm -f`).
    pub fn delete(&self, id: &str) {
        self.lock().containers.remove(id);
        self.emit(id, "destroy");
    }

    /// Ids and states of every container, owned or not.
    pub fn snapshot(&self) -> BTreeMap<String, (String, ContainerState)> {
        self.lock()
            .containers
            .iter()
            .map(|(id, c)| (id.clone(), (c.name.clone(), c.state)))
            .collect()
    }
}

impl ContainerRuntime for FakeRuntime {
    async fn list_owned(&self, node: &str) -> Result<Vec<ObservedContainer>, RuntimeError> {
        let inner = self.lock();
        let owned = inner.containers.iter().filter(|(_, c)| {
            c.labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE)
                && c.labels.get(labels::NODE).map(String::as_str) == Some(node)
        });
        Ok(owned
            .map(|(id, c)| ObservedContainer {
                id: id.clone(),
                name: c.name.clone(),
                labels: c.labels.clone(),
                state: c.state,
                health: Health::None,
                exit_code: c.exit_code,
                started_at: Some(c.starts.to_string()),
            })
            .collect())
    }

    async fn ensure_image(&self, image: &str) -> Result<(), RuntimeError> {
        let delay = {
            let mut inner = self.lock();
            inner.calls.push(format!("pull {image}"));
            assert!(
                !inner.panicking_images.contains(image),
                "the fake was told to panic pulling {image}"
            );
            inner.slow_images.get(image).copied()
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let inner = self.lock();
        if inner.images.contains(image) {
            Ok(())
        } else {
            Err(RuntimeError::ImageUnavailable {
                image: image.into(),
                source: "no registry in the fake".into(),
            })
        }
    }

    async fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        spec: &ContainerSpec,
    ) -> Result<String, RuntimeError> {
        let mut inner = self.lock();
        inner.calls.push(format!("create {name}"));
        if inner.containers.values().any(|c| c.name == name) {
            return Err(RuntimeError::Create {
                name: name.into(),
                source: "name already in use".into(),
            });
        }
        if !inner.images.contains(&spec.image) {
            return Err(RuntimeError::Create {
                name: name.into(),
                source: format!("no such image: {}", spec.image).into(),
            });
        }
        inner.next_id += 1;
        let id = format!("c{}", inner.next_id);
        let container = FakeContainer {
            name: name.into(),
            labels: labels.clone(),
            state: ContainerState::Created,
            exit_code: None,
            starts: 0,
            termination: Termination::default(),
        };
        inner.containers.insert(id.clone(), container);
        drop(inner);
        self.emit(&id, "create");
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.calls.push(format!("start {id}"));
        match inner.containers.get_mut(id) {
            Some(c) => {
                c.state = ContainerState::Running;
                c.exit_code = None;
                c.starts += 1;
            }
            None => {
                return Err(RuntimeError::Start {
                    id: id.into(),
                    source: "no such container".into(),
                })
            }
        }
        drop(inner);
        self.emit(id, "start");
        Ok(())
    }

    async fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        self.lock().calls.push(format!("stop {id}"));
        self.exit(id, 0);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.calls.push(format!("remove {id}"));
        inner.containers.remove(id);
        drop(inner);
        self.emit(id, "destroy");
        Ok(())
    }

    async fn termination(&self, id: &str) -> Result<Termination, RuntimeError> {
        match self.lock().containers.get(id) {
            Some(c) => Ok(c.termination.clone()),
            None => Err(RuntimeError::Inspect {
                id: id.into(),
                source: "no such container".into(),
            }),
        }
    }

    fn events(&self, _node: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
        BroadcastStream::new(self.events.subscribe())
            .filter_map(|event| async move { event.ok().map(Ok) })
            .boxed()
    }
}
