//! node.yaml → controller inputs. On every watch tick the file is read
//! whole; unchanged text is ignored, a valid new revision becomes a
//! [`Target`], anything else becomes `SpecInvalid` and the controller keeps
//! converging to the last good spec (never pruning on a bad one).

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::gpu::GpuInventory;
use crate::metrics::{self, AgentMetrics};
use crate::reconcile::{Input, Target};
use crate::spec::{self, NodeSpec, SpecError};

/// Builds the controller's target from a validated spec.
pub fn target_from(spec: &NodeSpec, gpus: &GpuInventory) -> Result<Target, SpecError> {
    Ok(Target {
        generation: spec.generation().to_string(),
        desired: spec.desired(gpus)?,
        settings: spec.reconcile(),
    })
}

/// Reads the spec file when told to, and says what changed.
#[derive(Debug)]
pub struct SpecSource {
    path: PathBuf,
    node: String,
    gpus: GpuInventory,
    last_text: Option<String>,
    metrics: AgentMetrics,
}

impl SpecSource {
    /// `initial_text` is the text the agent started from.
    pub fn new(
        path: PathBuf,
        node: &str,
        gpus: GpuInventory,
        initial_text: String,
        metrics: AgentMetrics,
    ) -> Self {
        SpecSource {
            path,
            node: node.into(),
            gpus,
            last_text: Some(initial_text),
            metrics,
        }
    }

    /// Reads the file; `None` when its text did not change.
    pub fn read(&mut self) -> Option<Input> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) => {
                // Mid-swap or deleted: report, keep the last good spec, and
                // re-read whatever appears next.
                self.last_text = None;
                self.metrics
                    .spec_reloads
                    .with_label_values(&[metrics::RESULT_ERROR])
                    .inc();
                return Some(Input::SpecInvalid(format!(
                    "cannot read {}: {err}",
                    self.path.display()
                )));
            }
        };
        if self.last_text.as_deref() == Some(text.as_str()) {
            return None;
        }
        self.last_text = Some(text.clone());
        let result = spec::parse(&text, &self.path).map_err(|e| e.to_string()).and_then(|spec| {
            if spec.name() != self.node {
                return Err(format!(
                    "{}: metadata.name changed from {} to {}; a running agent cannot rename its node (fix: restore the name, or `garage down` and start the agent again)",
                    self.path.display(),
                    self.node,
                    spec.name()
                ));
            }
            target_from(&spec, &self.gpus).map_err(|e| e.to_string())
        });
        match result {
            Ok(target) => {
                tracing::info!(generation = %target.generation, "new spec revision");
                self.metrics
                    .spec_reloads
                    .with_label_values(&[metrics::RESULT_SUCCESS])
                    .inc();
                Some(Input::Target(Box::new(target)))
            }
            Err(err) => {
                tracing::warn!(error = %err, "node.yaml is invalid; keeping the last good spec");
                self.metrics
                    .spec_reloads
                    .with_label_values(&[metrics::RESULT_ERROR])
                    .inc();
                Some(Input::SpecInvalid(err.to_string()))
            }
        }
    }

    /// Reads on every tick until either channel closes.
    pub async fn run(mut self, mut ticks: mpsc::Receiver<()>, inputs: mpsc::Sender<Input>) {
        while ticks.recv().await.is_some() {
            if let Some(input) = self.read() {
                if inputs.send(input).await.is_err() {
                    return;
                }
            }
        }
    }
}
