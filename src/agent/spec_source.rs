//! node.yaml → controller inputs. On every watch tick the file is read
//! whole; unchanged text (or the same failure again) is ignored, a valid new
//! revision becomes a [`Target`], a missing file `SpecMissing`, anything else
//! `SpecInvalid`, and the controller keeps converging to the last good spec
//! (never pruning on a bad one). An empty file is a save still being
//! written, until it stays empty for [`UNFINISHED_GRACE`].

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::gpu::GpuInventory;
use crate::metrics::{self, AgentMetrics};
use crate::reconcile::{Input, Target};
use crate::spec::{self, SpecError};

/// How long an empty node.yaml counts as a save in progress (issue 9, D16:
/// a truncate-and-write save was read empty and reported invalid).
pub const UNFINISHED_GRACE: Duration = Duration::from_secs(1);

/// What one read of the file found.
#[derive(Debug)]
pub enum Read {
    /// Something the controller must hear about.
    Changed(Input),
    /// The same text, or the same failure, as last time.
    Unchanged,
    /// The file is empty: most likely a save between truncate and write.
    Unfinished,
}

/// The last thing read, to tell changes from repeats.
#[derive(Debug, PartialEq, Eq)]
enum Last {
    Text(String),
    Failed(String),
}

/// Reads the spec file when told to, and says what changed.
#[derive(Debug)]
pub struct SpecSource {
    path: PathBuf,
    node: String,
    gpus: GpuInventory,
    last: Last,
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
            last: Last::Text(initial_text),
            metrics,
        }
    }

    /// Reads the file. `settled` says the writer had time to finish, so an
    /// empty file is taken as it is.
    pub fn read(&mut self, settled: bool) -> Read {
        // At most the spec size limit is read (issue 9, C11).
        let text = match spec::read_text(&self.path) {
            Ok(text) => text,
            Err(err) => {
                // Mid-swap, deleted or too large: report once, keep the last
                // good spec, and re-read whatever appears next.
                let missing = matches!(&err, SpecError::Read { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound);
                let message = match &err {
                    SpecError::Read { source, .. } => {
                        format!("cannot read {}: {source}", self.path.display())
                    }
                    other => other.to_string(),
                };
                let input = if missing {
                    Input::SpecMissing
                } else {
                    Input::SpecInvalid
                };
                return self.failed(message, input);
            }
        };
        if text.trim().is_empty() && !settled {
            return Read::Unfinished;
        }
        self.evaluate(text, None)
    }

    /// Parses and validates a spec's text (a file's, or one rendered from
    /// a git commit, `revision`); text equal to the last (at the same
    /// revision: a new commit is reported even where the node's text is
    /// the same, so the node shows it applied) is `Unchanged`.
    pub fn evaluate(&mut self, text: String, revision: Option<&str>) -> Read {
        let seen = match revision {
            Some(commit) => Last::Text(format!("{commit}\n{text}")),
            None => Last::Text(text.clone()),
        };
        if self.last == seen {
            return Read::Unchanged;
        }
        self.last = seen;
        let result = spec::parse(&text, &self.path).map_err(|e| e.to_string()).and_then(|spec| {
            if spec.name() != self.node {
                return Err(format!(
                    "{}: metadata.name changed from {} to {}; a running agent cannot rename its node (fix: restore the name, or `garage down` and start the agent again)",
                    self.path.display(),
                    self.node,
                    spec.name()
                ));
            }
            log_warnings(&spec);
            Target::from_spec(&spec, &self.gpus).map_err(|e| e.to_string())
        });
        let result = match revision {
            Some(commit) => result
                .map(|target| Target {
                    revision: Some(commit.to_string()),
                    ..target
                })
                .map_err(|err| format!("commit {commit}: {err}")),
            None => result,
        };
        match result {
            Ok(target) => {
                tracing::info!(generation = %target.generation, revision = ?target.revision, "new spec revision");
                self.metrics
                    .spec_reloads
                    .with_label_values(&[metrics::RESULT_SUCCESS])
                    .inc();
                Read::Changed(Input::Target(Box::new(target)))
            }
            Err(err) => {
                tracing::warn!(error = %err, "the node spec is invalid; keeping the last good spec");
                self.metrics
                    .spec_reloads
                    .with_label_values(&[metrics::RESULT_ERROR])
                    .inc();
                Read::Changed(Input::SpecInvalid(err))
            }
        }
    }

    /// Forgets the last text, so the next evaluation reports it again (a
    /// source that was unreachable is back).
    pub fn forget(&mut self) {
        self.last = Last::Failed(String::new());
    }

    /// Records a failure the caller found (a fetch, a render); the same
    /// failure again is `Unchanged`.
    pub fn failed(&mut self, message: String, input: fn(String) -> Input) -> Read {
        if self.last == Last::Failed(message.clone()) {
            return Read::Unchanged;
        }
        self.last = Last::Failed(message.clone());
        self.metrics
            .spec_reloads
            .with_label_values(&[metrics::RESULT_ERROR])
            .inc();
        Read::Changed(input(message))
    }

    /// Reads on every tick, and once more [`UNFINISHED_GRACE`] after an
    /// empty read, until either channel closes.
    pub async fn run(mut self, mut ticks: mpsc::Receiver<()>, inputs: mpsc::Sender<Input>) {
        let mut recheck: Option<Instant> = None;
        loop {
            let settled = tokio::select! {
                tick = ticks.recv() => match tick {
                    Some(()) => false,
                    None => return,
                },
                () = tokio::time::sleep_until(recheck.unwrap_or_else(Instant::now)), if recheck.is_some() => true,
            };
            recheck = None;
            match self.read(settled) {
                Read::Changed(input) => {
                    if inputs.send(input).await.is_err() {
                        return;
                    }
                }
                Read::Unchanged => {}
                Read::Unfinished => recheck = Some(Instant::now() + UNFINISHED_GRACE),
            }
        }
    }
}

/// Logs what validation accepted but doubts (a price area the coordinates
/// contradict), at each start and reload.
pub fn log_warnings(spec: &spec::NodeSpec) {
    for warning in spec.warnings() {
        tracing::warn!(%warning, "node.yaml");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::DEFAULT_SPEC;

    fn source(path: &std::path::Path) -> SpecSource {
        let spec = spec::parse(DEFAULT_SPEC, path).expect("the default spec is valid");
        SpecSource::new(
            path.to_path_buf(),
            spec.name(),
            GpuInventory::none("test"),
            DEFAULT_SPEC.to_string(),
            AgentMetrics::new(),
        )
    }

    /// The next input within `within`, if any.
    async fn next(inputs: &mut mpsc::Receiver<Input>, within: Duration) -> Option<Input> {
        tokio::time::timeout(within, inputs.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_read_waits_for_the_write_and_a_lasting_one_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.yaml");
        std::fs::write(&path, DEFAULT_SPEC).expect("write");
        let (ticks_tx, ticks) = mpsc::channel(8);
        let (inputs_tx, mut inputs) = mpsc::channel(8);
        tokio::spawn(source(&path).run(ticks, inputs_tx));

        // Truncated, then written: the empty moment is not an input.
        std::fs::write(&path, "").expect("truncate");
        ticks_tx.send(()).await.expect("tick");
        assert!(next(&mut inputs, Duration::from_millis(200))
            .await
            .is_none());
        std::fs::write(&path, format!("{DEFAULT_SPEC}\n# edited\n")).expect("write");
        ticks_tx.send(()).await.expect("tick");
        let input = next(&mut inputs, Duration::from_millis(200)).await;
        assert!(matches!(input, Some(Input::Target(_))), "{input:?}");
        assert!(
            next(&mut inputs, UNFINISHED_GRACE * 2).await.is_none(),
            "the finished save was read once"
        );

        // Empty and staying empty: reported after the grace.
        std::fs::write(&path, "").expect("truncate");
        ticks_tx.send(()).await.expect("tick");
        let input = next(&mut inputs, UNFINISHED_GRACE * 2).await;
        assert!(matches!(input, Some(Input::SpecInvalid(_))), "{input:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_file_is_reported_once_as_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.yaml");
        let mut source = source(&path);
        let first = source.read(false);
        assert!(
            matches!(first, Read::Changed(Input::SpecMissing(ref m)) if m.contains("node.yaml")),
            "{first:?}"
        );
        assert!(matches!(source.read(false), Read::Unchanged));
    }
}
