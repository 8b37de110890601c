//! Disk hygiene (issue 18, `spec.gc`): kubelet's image garbage collection
//! for the node's images, on the host engine (what the node's own
//! containers used), for the model files its containers named in named
//! volumes, and in its podman host (the job images). Every interval
//! the collector records what each store's containers use (`records`),
//! offers what no container of anyone uses to the policy (`policy`: age and
//! disk watermarks), and removes what it chooses, one image at a time,
//! never forced (`stores`). Removals are logged with their reason and
//! counted in `/metrics`.

pub mod policy;
pub mod records;
mod stores;

use std::path::Path;
use std::sync::Arc;

use crate::metrics::AgentMetrics;
use crate::runtime::docker::DockerRuntime;
use crate::spec::gc::GcSettings;
use crate::spec::PodmanHost;

use policy::{Candidate, Disk, Reason};
use records::Records;
use stores::{HostStore, ImageStore, ModelStore, PodmanStore};

/// What one pass over one store did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// References removed, with the reason.
    pub removed: Vec<(String, Reason)>,
    /// Bytes the removed images held.
    pub reclaimed_bytes: u64,
}

/// One store and what the node has recorded of it.
#[derive(Debug)]
struct Tracked<S> {
    store: S,
    records: Records,
    /// The last error logged, so a lasting one is logged once.
    last_error: Option<String>,
}

impl<S> Tracked<S> {
    fn new(store: S, state_dir: &Path, file: &str) -> Self {
        Tracked {
            store,
            records: Records::load(state_dir, file),
            last_error: None,
        }
    }
}

/// The node's image collector.
#[derive(Debug)]
pub struct Collector {
    settings: GcSettings,
    metrics: AgentMetrics,
    host: Tracked<HostStore>,
    models: Tracked<ModelStore>,
    podman: Option<Tracked<PodmanStore>>,
}

impl Collector {
    /// Collects the host engine's images the node's containers used, and
    /// the job images of `podman` when the node has one.
    pub fn new(
        runtime: Arc<DockerRuntime>,
        node: &str,
        podman: Option<PodmanHost>,
        settings: GcSettings,
        state_dir: &Path,
        metrics: AgentMetrics,
    ) -> Self {
        Collector {
            settings,
            metrics,
            host: Tracked::new(
                HostStore {
                    runtime: Arc::clone(&runtime),
                    node: node.to_string(),
                },
                state_dir,
                "images.json",
            ),
            models: Tracked::new(
                ModelStore(HostStore {
                    runtime,
                    node: node.to_string(),
                }),
                state_dir,
                "models.json",
            ),
            podman: podman
                .map(|host| Tracked::new(PodmanStore { host }, state_dir, "podman-images.json")),
        }
    }

    /// Collects every interval, until dropped.
    pub async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = crate::clock::unix_secs();
            collect(&mut self.host, now, &self.settings, &self.metrics).await;
            collect(&mut self.models, now, &self.settings, &self.metrics).await;
            if let Some(podman) = &mut self.podman {
                collect(podman, now, &self.settings, &self.metrics).await;
            }
        }
    }
}

/// One pass over one store; a failure is logged once while it lasts.
async fn collect<S: ImageStore>(
    tracked: &mut Tracked<S>,
    now: u64,
    settings: &GcSettings,
    metrics: &AgentMetrics,
) {
    match pass(tracked, now, settings, metrics).await {
        Ok(_) => tracked.last_error = None,
        Err(message) => {
            if tracked.last_error.as_ref() != Some(&message) {
                tracing::warn!(store = tracked.store.name(), error = %message, "image collection failed; trying again next interval");
                tracked.last_error = Some(message);
            }
        }
    }
}

/// Record, choose, remove.
async fn pass<S: ImageStore>(
    tracked: &mut Tracked<S>,
    now: u64,
    settings: &GcSettings,
    metrics: &AgentMetrics,
) -> Result<PassReport, String> {
    let Tracked { store, records, .. } = tracked;
    let usage = store.usage().await?;
    for (reference, id) in &usage.used {
        records.touch(reference, id, now);
    }
    for (reference, facts) in &usage.present {
        records.note(reference, &facts.id, now);
    }
    let recorded: Vec<(String, String, u64)> = records
        .iter()
        .filter(|(reference, record)| {
            !usage.used.contains_key(*reference) && !usage.in_use.contains(&record.id)
        })
        .map(|(reference, record)| (reference.clone(), record.id.clone(), record.last_used))
        .collect();
    let mut candidates = Vec::new();
    for (reference, id, last_used) in recorded {
        let facts = match usage.present.get(&reference) {
            Some(facts) => Some(facts.clone()),
            None => store.facts(&reference).await?,
        };
        match facts {
            // The reference now names another image (someone tagged over
            // it): not what the node used, not the node's to remove.
            Some(facts) if facts.id == id => candidates.push(Candidate {
                reference,
                id,
                size_bytes: facts.size_bytes,
                last_used,
            }),
            _ => records.forget(&reference),
        }
    }
    let disk = disk(store).await;
    if let Some(disk) = disk {
        metrics
            .gc_disk_used_ratio
            .with_label_values(&[store.name()])
            .set(disk.used_bytes as f64 / disk.total_bytes.max(1) as f64);
    }
    let mut report = PassReport::default();
    for (candidate, reason) in policy::choose(candidates, now, settings, disk) {
        match store.remove(&candidate.reference).await {
            Ok(()) => {
                tracing::info!(
                    store = store.name(),
                    image = %candidate.reference,
                    id = %candidate.id,
                    bytes = candidate.size_bytes,
                    reason = reason.as_str(),
                    unused_seconds = now.saturating_sub(candidate.last_used),
                    "removed an image the node no longer uses"
                );
                metrics
                    .gc_removed_images
                    .with_label_values(&[store.name(), reason.as_str()])
                    .inc();
                metrics
                    .gc_reclaimed_bytes
                    .with_label_values(&[store.name()])
                    .inc_by(candidate.size_bytes);
                records.forget(&candidate.reference);
                report.reclaimed_bytes += candidate.size_bytes;
                report.removed.push((candidate.reference, reason));
            }
            // In use since it was listed, or refused: kept, tried again.
            Err(err) => {
                tracing::warn!(store = store.name(), image = %candidate.reference, error = %err, "not removing an image")
            }
        }
    }
    if let Err(err) = records.save() {
        tracing::warn!(error = %err, "cannot save the image records");
    }
    Ok(report)
}

/// The use of the filesystem under the store; `None` when it cannot be
/// read (then only `maxAge` removes).
async fn disk<S: ImageStore>(store: &S) -> Option<Disk> {
    let path = store.disk_path().await?;
    match rustix::fs::statvfs(&path) {
        Ok(stats) => Some(Disk {
            used_bytes: stats
                .f_blocks
                .saturating_sub(stats.f_bfree)
                .saturating_mul(stats.f_frsize),
            total_bytes: stats.f_blocks.saturating_mul(stats.f_frsize),
        }),
        Err(err) => {
            tracing::debug!(store = store.name(), path = %path.display(), error = %err, "cannot read the store's disk use");
            None
        }
    }
}
