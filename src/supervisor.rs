//! The one supervisor shape of the long-running commands (`garage run`,
//! `garage coordinator`): their tasks in a `JoinSet` under one cancellation
//! token; a stop request or the first task to end stops the rest, waiting a
//! bounded time before aborting what has not finished.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long stopping tasks get before they are aborted.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Waits for `stop` or the first task to end, cancels `cancel`, and drains
/// the rest. The result is the first task's (`Ok` when `stop` came first);
/// `what` names the process in the log line about an early end.
pub async fn supervise<E: Display + Send + 'static>(
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
            joined.unwrap_or(Ok(()))
        }
    };
    cancel.cancel();
    let drain = async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(err)) = joined {
                tracing::warn!(error = %err, "task ended with an error while stopping");
            }
        }
    };
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        tasks.abort_all();
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_task_to_fail_stops_the_others() {
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
        let watcher = cancel.clone();
        tasks.spawn(async move {
            watcher.cancelled().await;
            Ok(())
        });
        tasks.spawn(async { Err("engine gone".to_string()) });
        let result = supervise(tasks, std::future::pending(), &cancel, "test").await;
        assert_eq!(result, Err("engine gone".to_string()));
        assert!(cancel.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_cancels_and_a_stuck_task_is_aborted() {
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
        tasks.spawn(std::future::pending());
        let result = supervise(tasks, async {}, &cancel, "test").await;
        assert_eq!(result, Ok(()));
        assert!(cancel.is_cancelled());
    }
}
