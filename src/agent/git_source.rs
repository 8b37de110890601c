//! The agent's git spec source (`garage run --git`, issue 18): every poll interval the repository is
//! fetched (on a blocking thread, one fetch at a time, bounded by
//! [`FETCH_TIMEOUT`]), and a commit the ref newly points at is rendered and
//! handed to the controller as the next target, tagged with its commit id.
//! An unreachable remote, a bad commit or an invalid file is reported once
//! and the node keeps its last applied revision; a commit is read once,
//! until the ref moves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::gitops::fleet::{self, Layer};
use crate::gitops::repo::{self, Fetched, GitError};
use crate::gitops::signature::{AllowedSigners, SignatureError};
use crate::gitops::source::{GitSource, FLEET_FILE};
use crate::metrics::{self, AgentMetrics};
use crate::reconcile::Input;

use super::spec_source::{Read, SpecSource};

/// The longest one fetch may take; a fetch past it is interrupted, and the
/// next waits until it has let go.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the agent cannot start from git.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Signers(#[from] SignatureError),
    #[error("cannot start from {label}: {message}")]
    Unusable { label: String, message: String },
}

/// The first spec, before the agent starts.
#[derive(Debug)]
pub struct FirstRevision {
    pub commit: String,
    pub text: String,
}

/// Polls one git spec source.
#[derive(Debug)]
pub struct Poller {
    source: GitSource,
    cache: PathBuf,
    signers: Option<Arc<AllowedSigners>>,
    spec: SpecSource,
    metrics: AgentMetrics,
    /// The commit last read, applied or refused.
    commit: Option<String>,
    /// The remote could not be fetched last time.
    unreachable: bool,
    /// A fetch still running after its timeout.
    straggler: Option<JoinHandle<()>>,
}

/// Loads the allowed signers `source` names, if any.
pub fn signers(source: &GitSource) -> Result<Option<Arc<AllowedSigners>>, SignatureError> {
    source
        .allowed_signers
        .as_deref()
        .map(|path| AllowedSigners::load(path).map(Arc::new))
        .transpose()
}

/// The spec to start from: the remote's commit, or, when the remote cannot
/// be fetched, the commit of the last fetch in `state_dir`.
pub async fn first_revision(
    source: &GitSource,
    state_dir: &Path,
    signers: Option<Arc<AllowedSigners>>,
) -> Result<FirstRevision, StartError> {
    let cache = source.cache_dir(state_dir);
    let unusable = |message: String| StartError::Unusable {
        label: source.label(),
        message,
    };
    let fetched = match fetch(
        source.clone(),
        cache.clone(),
        signers.clone(),
        FETCH_TIMEOUT,
    )
    .await
    {
        Ok(fetched) => fetched,
        Err(err) => {
            tracing::warn!(error = %crate::error_text::one_line(&err), "starting from the last fetched commit");
            let (source, cache) = (source.clone(), cache.clone());
            tokio::task::spawn_blocking(move || repo::read(&source, &cache, signers.as_deref()))
                .await
                .map_err(|err| unusable(err.to_string()))?
                .map_err(|_| unusable(crate::error_text::one_line(&err)))?
        }
    };
    let text = render(source, &fetched)
        .map_err(|message| unusable(format!("commit {}: {message}", fetched.commit)))?;
    Ok(FirstRevision {
        commit: fetched.commit,
        text,
    })
}

impl Poller {
    /// `spec` evaluates the rendered text (it started from commit `first`).
    pub fn new(
        source: GitSource,
        state_dir: &Path,
        signers: Option<Arc<AllowedSigners>>,
        spec: SpecSource,
        first: Option<String>,
        metrics: AgentMetrics,
    ) -> Self {
        Poller {
            cache: source.cache_dir(state_dir),
            source,
            signers,
            spec,
            metrics,
            commit: first,
            unreachable: false,
            straggler: None,
        }
    }

    /// Polls until `inputs` closes.
    pub async fn run(mut self, inputs: mpsc::Sender<Input>) {
        let mut ticks = tokio::time::interval(self.source.poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Read::Changed(input) = self.poll().await {
                if inputs.send(input).await.is_err() {
                    return;
                }
            }
        }
    }

    /// One fetch, and what it changed.
    pub async fn poll(&mut self) -> Read {
        if self
            .straggler
            .as_ref()
            .is_some_and(|fetch| !fetch.is_finished())
        {
            return Read::Unchanged;
        }
        let fetched = fetch(
            self.source.clone(),
            self.cache.clone(),
            self.signers.clone(),
            FETCH_TIMEOUT,
        )
        .await;
        let result = if fetched.is_ok() {
            metrics::RESULT_SUCCESS
        } else {
            metrics::RESULT_ERROR
        };
        self.metrics.git_syncs.with_label_values(&[result]).inc();
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(FetchFailure::TimedOut(straggler)) => {
                self.straggler = Some(straggler);
                return self.unreachable(format!(
                    "fetching {} took longer than {FETCH_TIMEOUT:?}",
                    self.source.url
                ));
            }
            Err(FetchFailure::Git(err)) => {
                return self.unreachable(crate::error_text::one_line(&err));
            }
        };
        let recovered = std::mem::take(&mut self.unreachable);
        if !recovered && self.commit.as_deref() == Some(fetched.commit.as_str()) {
            return Read::Unchanged;
        }
        if recovered {
            self.spec.forget();
        }
        self.commit = Some(fetched.commit.clone());
        match render(&self.source, &fetched) {
            Ok(text) => self.spec.evaluate(text, Some(&fetched.commit)),
            Err(message) => {
                let message = format!("commit {}: {message}", fetched.commit);
                tracing::warn!(error = %message, "the node keeps its last applied revision");
                self.spec.failed(message, Input::SpecInvalid)
            }
        }
    }

    fn unreachable(&mut self, message: String) -> Read {
        self.unreachable = true;
        let message = match &self.commit {
            Some(commit) => format!("{message}; keeping commit {commit}"),
            None => message,
        };
        let read = self.spec.failed(message.clone(), Input::SpecUnreachable);
        if matches!(read, Read::Changed(_)) {
            tracing::warn!(error = %message, "cannot fetch the node spec; the node keeps its last applied revision");
        }
        read
    }
}

/// A fetch that did not come back.
#[derive(Debug, thiserror::Error)]
enum FetchFailure {
    #[error(transparent)]
    Git(GitError),
    #[error("the fetch timed out")]
    TimedOut(JoinHandle<()>),
}

/// Fetches and reads on a blocking thread, interrupted after `timeout`.
async fn fetch(
    source: GitSource,
    cache: PathBuf,
    signers: Option<Arc<AllowedSigners>>,
    timeout: Duration,
) -> Result<Fetched, FetchFailure> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let flag = Arc::clone(&interrupt);
    let task = tokio::task::spawn_blocking(move || {
        let _receiver_gone = tx.send(repo::sync(&source, &cache, signers.as_deref(), &flag));
    });
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result.map_err(FetchFailure::Git),
        Ok(Err(_)) => Err(FetchFailure::Git(GitError::Fetch {
            url: String::new(),
            message: "the fetch thread stopped".into(),
        })),
        Err(_) => {
            interrupt.store(true, Ordering::Relaxed);
            Err(FetchFailure::TimedOut(task))
        }
    }
}

/// The node's spec at a fetched commit, as text; a commit that has none
/// (no file, bad signature, not YAML) says why.
fn render(source: &GitSource, fetched: &Fetched) -> Result<String, String> {
    let files = fetched.files.as_ref().map_err(|err| err.to_string())?;
    let node_path = source.node_path();
    fleet::render(
        files.fleet.as_deref().map(|text| Layer {
            label: FLEET_FILE,
            text,
        }),
        Layer {
            label: &node_path,
            text: &files.node,
        },
        &source.node,
    )
    .map_err(|err| crate::error_text::one_line(&err))
}
