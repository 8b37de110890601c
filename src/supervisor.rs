//! The one supervisor shape of the long-running commands (`garage run`,
//! `garage coordinator`): their tasks in a `JoinSet` under one cancellation
//! token; a stop request or the first task to end stops the rest, waiting a
//! bounded time before aborting what has not finished. A task that panics
//! ends the process with an error naming the panic, never with success.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// How long stopping tasks get before they are aborted.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A supervised task panicked (or was aborted from outside the supervisor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {what} task panicked: {message} (this is a bug in garage; please report it with the log above)")]
pub struct TaskPanicked {
    /// The process, as given to [`supervise`].
    pub what: String,
    /// The panic's message, or why the task did not finish.
    pub message: String,
}

impl TaskPanicked {
    fn new(what: &str, err: JoinError) -> Self {
        let message = if err.is_panic() {
            let payload = err.into_panic();
            payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string())
        } else {
            "the task was cancelled before it finished".to_string()
        };
        TaskPanicked {
            what: what.to_string(),
            message,
        }
    }
}

/// Waits for `stop` or the first task to end, cancels `cancel`, and drains
/// the rest. The result is the first task's (`Ok` when `stop` came first,
/// [`TaskPanicked`] when it panicked); `what` names the process in the log.
pub async fn supervise<E: Display + From<TaskPanicked> + Send + 'static>(
    mut tasks: JoinSet<Result<(), E>>,
    stop: impl Future<Output = ()>,
    cancel: &CancellationToken,
    what: &str,
) -> Result<(), E> {
    let first = tokio::select! {
        () = stop => Ok(()),
        Some(joined) = tasks.join_next() => {
            if !cancel.is_cancelled() {
                tracing::error!("a {what} task ended unexpectedly; stopping the {what}");
            }
            joined.unwrap_or_else(|err| {
                let panicked = TaskPanicked::new(what, err);
                tracing::error!(panic = %panicked.message, "a {what} task panicked");
                Err(panicked.into())
            })
        }
    };
    cancel.cancel();
    let drain = async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "task ended with an error while stopping");
                }
                Err(err) => {
                    let panicked = TaskPanicked::new(what, err);
                    tracing::error!(panic = %panicked.message, "a {what} task panicked while stopping");
                }
                Ok(Ok(())) => {}
            }
        }
    };
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        tasks.abort_all();
    }
    first
}

/// Resolves at the first SIGTERM or SIGINT.
pub async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task error as the long-running commands have them.
    #[derive(Debug, PartialEq, thiserror::Error)]
    enum TestError {
        #[error("{0}")]
        Failed(String),
        #[error(transparent)]
        Panicked(#[from] TaskPanicked),
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_task_to_fail_stops_the_others() {
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<Result<(), TestError>> = JoinSet::new();
        let watcher = cancel.clone();
        tasks.spawn(async move {
            watcher.cancelled().await;
            Ok(())
        });
        tasks.spawn(async { Err(TestError::Failed("engine gone".to_string())) });
        let result = supervise(tasks, std::future::pending(), &cancel, "test").await;
        assert_eq!(result, Err(TestError::Failed("engine gone".to_string())));
        assert!(cancel.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_an_error_naming_the_panic() {
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<Result<(), TestError>> = JoinSet::new();
        let watcher = cancel.clone();
        tasks.spawn(async move {
            watcher.cancelled().await;
            Ok(())
        });
        tasks.spawn(async { panic!("overflow when adding duration to instant") });
        let result = supervise(tasks, std::future::pending(), &cancel, "agent").await;
        let panicked = TaskPanicked {
            what: "agent".into(),
            message: "overflow when adding duration to instant".into(),
        };
        assert_eq!(result, Err(TestError::Panicked(panicked.clone())));
        assert!(cancel.is_cancelled());
        let text = panicked.to_string();
        assert!(
            text.contains("agent task panicked: overflow when adding duration to instant"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_formatted_panic_message_is_kept() {
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<Result<(), TestError>> = JoinSet::new();
        let limit = 3;
        tasks.spawn(async move { panic!("index {} out of range", limit + 1) });
        let result = supervise(tasks, std::future::pending(), &cancel, "test").await;
        assert!(
            matches!(&result, Err(TestError::Panicked(p)) if p.message == "index 4 out of range"),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_cancels_and_a_stuck_task_is_aborted() {
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<Result<(), TestError>> = JoinSet::new();
        tasks.spawn(std::future::pending());
        let result = supervise(tasks, async {}, &cancel, "test").await;
        assert_eq!(result, Ok(()));
        assert!(cancel.is_cancelled());
    }
}
