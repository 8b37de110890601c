//! Disk hygiene (issue 18, `spec.gc`): kubelet's image garbage collection
//! for the images the node's own containers were made from. Every interval
//! the collector records the references the node's containers use
//! (`records`), offers those no container of anyone uses to the policy
//! (`policy`: age and disk watermarks), and removes what it chooses, one
//! reference at a time, never forced. Removals are logged with their reason
//! and counted in `/metrics`.

pub mod policy;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::metrics::AgentMetrics;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::RuntimeError;
use crate::spec::gc::GcSettings;

use policy::{Candidate, Disk};
use records::Records;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// References removed, with the reason.
    pub removed: Vec<(String, policy::Reason)>,
    /// Bytes the removed images held.
    pub reclaimed_bytes: u64,
}

/// The node's image collector.
#[derive(Debug)]
pub struct Collector {
    runtime: Arc<DockerRuntime>,
    node: String,
    settings: GcSettings,
    records: Records,
    metrics: AgentMetrics,
    /// The filesystem watched for the watermarks, once known.
    data_root: Option<PathBuf>,
    /// The last error logged, so a lasting one is logged once.
    last_error: Option<String>,
}

impl Collector {
    pub fn new(
        runtime: Arc<DockerRuntime>,
        node: &str,
        settings: GcSettings,
        state_dir: &Path,
        metrics: AgentMetrics,
    ) -> Self {
        Collector {
            runtime,
            node: node.to_string(),
            settings,
            records: Records::load(state_dir),
            metrics,
            data_root: None,
            last_error: None,
        }
    }

    /// Collects every interval, until dropped.
    pub async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.pass().await {
                Ok(_) => self.last_error = None,
                Err(err) => {
                    let message = crate::error_text::one_line(&err);
                    if self.last_error.as_ref() != Some(&message) {
                        tracing::warn!(error = %message, "image collection failed; trying again next interval");
                        self.last_error = Some(message);
                    }
                }
            }
        }
    }

    /// One look: record, choose, remove.
    pub async fn pass(&mut self) -> Result<PassReport, RuntimeError> {
        let usage = self.runtime.image_use(&self.node).await?;
        let now = crate::clock::unix_secs();
        for (reference, id) in &usage.owned {
            self.records.touch(reference, id, now);
        }
        let mut candidates = Vec::new();
        let recorded: Vec<(String, String, u64)> = self
            .records
            .iter()
            .filter(|(reference, record)| {
                !usage.owned.contains_key(*reference) && !usage.in_use.contains(&record.id)
            })
            .map(|(reference, record)| (reference.clone(), record.id.clone(), record.last_used))
            .collect();
        for (reference, id, last_used) in recorded {
            match self.runtime.image_facts(&reference).await? {
                // The reference now names another image (someone tagged
                // over it): not what the node used, not ours to remove.
                Some(facts) if facts.id == id => candidates.push(Candidate {
                    reference,
                    id,
                    size_bytes: facts.size_bytes,
                    last_used,
                }),
                _ => self.records.forget(&reference),
            }
        }
        let disk = self.disk().await;
        if let Some(disk) = disk {
            self.metrics
                .gc_disk_used_ratio
                .set(disk.used_bytes as f64 / disk.total_bytes.max(1) as f64);
        }
        let mut report = PassReport::default();
        for (candidate, reason) in policy::choose(candidates, now, &self.settings, disk) {
            match self
                .runtime
                .remove_image_reference(&candidate.reference)
                .await
            {
                Ok(()) => {
                    tracing::info!(
                        image = %candidate.reference,
                        id = %candidate.id,
                        bytes = candidate.size_bytes,
                        reason = reason.as_str(),
                        unused_seconds = now.saturating_sub(candidate.last_used),
                        "removed an image the node no longer uses"
                    );
                    self.metrics
                        .gc_removed_images
                        .with_label_values(&[reason.as_str()])
                        .inc();
                    self.metrics.gc_reclaimed_bytes.inc_by(candidate.size_bytes);
                    self.records.forget(&candidate.reference);
                    report.reclaimed_bytes += candidate.size_bytes;
                    report.removed.push((candidate.reference, reason));
                }
                // In use since it was listed, or refused: kept, tried again.
                Err(err) => {
                    tracing::warn!(image = %candidate.reference, error = %crate::error_text::one_line(&err), "not removing an image")
                }
            }
        }
        if let Err(err) = self.records.save() {
            tracing::warn!(error = %err, "cannot save the image records");
        }
        Ok(report)
    }

    /// The use of the engine's data filesystem; `None` when it cannot be
    /// read (then only `maxAge` removes).
    async fn disk(&mut self) -> Option<Disk> {
        if self.data_root.is_none() {
            self.data_root = self
                .runtime
                .data_root()
                .await
                .ok()
                .flatten()
                .map(PathBuf::from);
        }
        let root = self.data_root.as_ref()?;
        match rustix::fs::statvfs(root) {
            Ok(stats) => Some(Disk {
                used_bytes: stats
                    .f_blocks
                    .saturating_sub(stats.f_bfree)
                    .saturating_mul(stats.f_frsize),
                total_bytes: stats.f_blocks.saturating_mul(stats.f_frsize),
            }),
            Err(err) => {
                tracing::debug!(path = %root.display(), error = %err, "cannot read the engine's disk use");
                None
            }
        }
    }
}
