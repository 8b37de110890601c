//! Spec file → a stream of "it may have changed" ticks. Watches the
//! directory (editors save by renaming a new file over the old one, which a
//! watch on the file itself loses), keeps only events for the file's exact
//! name or the first hop of its symlink (Kubernetes-style `..data` swaps),
//! and debounces bursts. Reading and parsing is the caller's business.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Errors of setting up the watch.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{path} has no parent directory to watch")]
    NoParent { path: PathBuf },
    #[error("cannot watch directory {dir}")]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// A live watch on one spec file. Dropping it stops the watch.
#[derive(Debug)]
pub struct SpecWatch {
    _watcher: RecommendedWatcher,
    raw: mpsc::UnboundedReceiver<()>,
    debounce: Duration,
}

/// Names in the file's directory whose change may change the file's content.
fn relevant_names(path: &Path) -> HashSet<OsString> {
    let mut names = HashSet::new();
    if let Some(name) = path.file_name() {
        names.insert(name.to_os_string());
    }
    if let Ok(target) = std::fs::read_link(path) {
        if let Some(Component::Normal(first)) = target.components().next() {
            if target.is_relative() {
                names.insert(first.to_os_string());
            }
        }
    }
    names
}

impl SpecWatch {
    /// Starts watching `path`'s directory.
    pub fn new(path: &Path, debounce: Duration) -> Result<Self, WatchError> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = absolute
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| WatchError::NoParent {
                path: path.to_path_buf(),
            })?
            .to_path_buf();
        let names = relevant_names(&absolute);
        let (tx, raw) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    Ok(event) => event
                        .paths
                        .iter()
                        .any(|p| p.file_name().is_some_and(|n| names.contains(n))),
                    // An error from the watcher: re-read to be safe.
                    Err(_) => true,
                };
                if relevant {
                    // The receiver is gone only when the agent is stopping.
                    let _ = tx.send(());
                }
            })
            .map_err(|source| WatchError::Watch {
                dir: dir.clone(),
                source,
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch {
                dir: dir.clone(),
                source,
            })?;
        Ok(SpecWatch {
            _watcher: watcher,
            raw,
            debounce,
        })
    }

    /// Sends one tick to `out` per debounced burst, until `out` closes.
    pub async fn run(mut self, out: mpsc::Sender<()>) {
        debounce(&mut self.raw, &out, self.debounce).await;
    }
}

/// Trailing-edge debounce: a tick goes out once `quiet` passed without a raw
/// event, or at the latest `10 × quiet` after the burst began.
pub async fn debounce(
    raw: &mut mpsc::UnboundedReceiver<()>,
    out: &mpsc::Sender<()>,
    quiet: Duration,
) {
    while raw.recv().await.is_some() {
        let deadline = Instant::now() + quiet * 10;
        loop {
            let until = (Instant::now() + quiet).min(deadline);
            match tokio::time::timeout_at(until, raw.recv()).await {
                Ok(Some(())) if Instant::now() < deadline => continue,
                Ok(None) => return,
                _ => break,
            }
        }
        if out.send(()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_becomes_one_tick_after_the_quiet_period() {
        let (raw_tx, mut raw) = mpsc::unbounded_channel();
        let (out, mut ticks) = mpsc::channel(8);
        let task =
            tokio::spawn(async move { debounce(&mut raw, &out, Duration::from_millis(100)).await });
        for _ in 0..5 {
            raw_tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert!(ticks.try_recv().is_err(), "no tick while the burst goes on");
        tokio::time::sleep(Duration::from_millis(101)).await;
        assert_eq!(ticks.recv().await, Some(()));
        assert!(ticks.try_recv().is_err(), "exactly one tick per burst");
        drop(raw_tx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_burst_still_ticks_at_the_cap() {
        let (raw_tx, mut raw) = mpsc::unbounded_channel();
        let (out, mut ticks) = mpsc::channel(8);
        let task =
            tokio::spawn(async move { debounce(&mut raw, &out, Duration::from_millis(100)).await });
        let start = Instant::now();
        while ticks.try_recv().is_err() {
            raw_tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "the cap must fire"
            );
        }
        assert!(start.elapsed() >= Duration::from_millis(1000));
        drop(raw_tx);
        task.await.unwrap();
    }

    #[test]
    fn follows_the_first_hop_of_a_relative_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..2026")).unwrap();
        std::fs::write(dir.path().join("..2026/node.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("..2026", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/node.yaml", dir.path().join("node.yaml")).unwrap();
        let names = relevant_names(&dir.path().join("node.yaml"));
        assert!(names.contains(&OsString::from("node.yaml")));
        assert!(names.contains(&OsString::from("..data")));
    }
}
