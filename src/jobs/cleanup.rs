//! Removing what job runs created: a finished run's own containers,
//! networks and volumes (until a fresh list shows none), and the litter of
//! runs that crashed (no process holds their run lock any more).

use std::collections::BTreeMap;
use std::time::Duration;

use super::engine::{JobEngine, Labelled, ResourceKind};
use super::slots::JobLocks;

/// How long cleanup may take after a run.
const CLEANUP_LIMIT: Duration = Duration::from_secs(30);
/// Remove-and-list passes of a run's cleanup, and the pause between them.
const CLEANUP_PASSES: usize = 5;
const CLEANUP_RETRY: Duration = Duration::from_millis(300);

/// Removes what job runs of this node left behind, except runs still
/// alive (their process holds the run lock) and `keep`. Returns the
/// errors; an unreachable engine is one error, retried next time.
pub(super) async fn sweep<E: JobEngine>(
    engine: &E,
    node: &str,
    locks: &JobLocks,
    keep: Option<&str>,
) -> Vec<String> {
    let items = match engine.list_labelled(node).await {
        Ok(items) => items,
        Err(err) => return vec![err.to_string()],
    };
    let mut alive: BTreeMap<String, bool> = BTreeMap::new();
    let stale: Vec<Labelled> = items
        .into_iter()
        .filter(|item| Some(item.run.as_str()) != keep)
        .filter(|item| {
            !*alive
                .entry(item.run.clone())
                .or_insert_with(|| locks.run_alive(&item.run))
        })
        .collect();
    if !stale.is_empty() {
        tracing::info!(
            count = stale.len(),
            "removing what crashed job runs left behind"
        );
    }
    remove_all(engine, stale).await
}

/// Removes everything run `run_id` created, within [`CLEANUP_LIMIT`];
/// returns what could not be removed (the next run's sweep retries).
pub(super) async fn cleanup_run<E: JobEngine>(engine: &E, node: &str, run_id: &str) -> Vec<String> {
    let work = async {
        // A podman host that went away is usually back in a moment (the
        // agent restarts it): wait for it rather than leave litter.
        for _ in 0..40 {
            if engine.ping().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Until a fresh list shows nothing of this run: under load podman
        // can refuse a removal (a container still being torn down holds
        // its network) or list a container late, so one pass may leave
        // litter behind.
        let mut errors = Vec::new();
        for pass in 0..CLEANUP_PASSES {
            if pass > 0 {
                tokio::time::sleep(CLEANUP_RETRY).await;
            }
            let ours: Vec<Labelled> = match engine.list_labelled(node).await {
                Ok(items) => items.into_iter().filter(|i| i.run == run_id).collect(),
                Err(err) => {
                    return vec![format!(
                        "{err}; what run {run_id} created is removed by the next run's sweep"
                    )]
                }
            };
            if ours.is_empty() {
                return Vec::new();
            }
            errors = remove_all(engine, ours).await;
        }
        errors
    };
    tokio::time::timeout(CLEANUP_LIMIT, work)
        .await
        .unwrap_or_else(|_| {
            vec![format!(
                "cleanup took longer than {CLEANUP_LIMIT:?}; the next run's sweep retries"
            )]
        })
}

/// Containers first (they hold the volumes and networks), then the rest.
async fn remove_all<E: JobEngine>(engine: &E, mut items: Vec<Labelled>) -> Vec<String> {
    items.sort_by_key(|i| match i.kind {
        ResourceKind::Container => 0,
        ResourceKind::Volume => 1,
        ResourceKind::Network => 2,
    });
    let mut errors = Vec::new();
    for item in &items {
        if let Err(err) = engine.remove(item).await {
            errors.push(err.to_string());
        }
    }
    errors
}
