//! Spec file → a stream of "it may have changed" ticks. Watches the
//! directory (editors save by renaming a new file over the old one, which a
//! watch on the file itself loses), keeps only events for the file's exact
//! name or the first hop of its symlink (Kubernetes-style `..data` swaps),
//! and debounces bursts. When the directory itself is deleted or moved the
//! watch is re-established on the path once it exists again, ticking every
//! [`REWATCH_EVERY`] meanwhile so the spec is re-read while the watch is
//! broken (issue 9, D15). Reading and parsing is the caller's business.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// While the directory's watch is broken: how often to try again (and tick).
pub const REWATCH_EVERY: Duration = Duration::from_secs(1);

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

/// A watch on one spec file. Dropping it stops the watch.
#[derive(Debug)]
pub struct SpecWatch {
    path: PathBuf,
    dir: PathBuf,
    live: Live,
    debounce: Duration,
}

/// One inotify (or other backend) watch on the directory.
#[derive(Debug)]
struct Live {
    _watcher: RecommendedWatcher,
    raw: mpsc::UnboundedReceiver<()>,
    /// Notified when the directory itself was deleted or moved away.
    broken: Arc<Notify>,
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
        let live = Live::start(&absolute, &dir)?;
        Ok(SpecWatch {
            path: absolute,
            dir,
            live,
            debounce,
        })
    }

    /// Sends one tick to `out` per debounced burst, until `out` closes.
    pub async fn run(self, out: mpsc::Sender<()>) {
        let SpecWatch {
            path,
            dir,
            mut live,
            debounce: quiet,
        } = self;
        loop {
            let broken = Arc::clone(&live.broken);
            tokio::select! {
                () = debounce(&mut live.raw, &out, quiet) => return,
                () = broken.notified() => {}
            }
            drop(live);
            tracing::warn!(dir = %dir.display(), "the spec's directory was deleted or moved; re-reading the spec every {REWATCH_EVERY:?} until it can be watched again");
            live = loop {
                if out.send(()).await.is_err() {
                    return;
                }
                tokio::time::sleep(REWATCH_EVERY).await;
                if let Ok(live) = Live::start(&path, &dir) {
                    tracing::info!(dir = %dir.display(), "watching the spec's directory again");
                    break live;
                }
            };
            // The file may have come back before the new watch saw it.
            if out.send(()).await.is_err() {
                return;
            }
        }
    }
}

impl Live {
    fn start(path: &Path, dir: &Path) -> Result<Live, WatchError> {
        let names = relevant_names(path);
        let (tx, raw) = mpsc::unbounded_channel();
        let broken = Arc::new(Notify::new());
        let notify_broken = Arc::clone(&broken);
        let watched = dir.to_path_buf();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    Ok(event) => {
                        if event.paths.contains(&watched) {
                            // The directory itself went away: this watch is dead.
                            notify_broken.notify_one();
                        }
                        event
                            .paths
                            .iter()
                            .any(|p| p.file_name().is_some_and(|n| names.contains(n)))
                    }
                    // An error from the watcher: re-read to be safe.
                    Err(_) => true,
                };
                if relevant {
                    // The receiver is gone only when the agent is stopping.
                    let _ = tx.send(());
                }
            })
            .map_err(|source| WatchError::Watch {
                dir: dir.to_path_buf(),
                source,
            })?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch {
                dir: dir.to_path_buf(),
                source,
            })?;
        Ok(Live {
            _watcher: watcher,
            raw,
            broken,
        })
    }
}

/// Trailing-edge debounce: a tick goes out once `quiet` passed without a raw
/// event (the file is quiet), or at the latest `10 × quiet` after the burst
/// began, so a file touched without pause is still read.
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

    #[tokio::test]
    async fn a_deleted_and_recreated_directory_is_watched_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("conf");
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("node.yaml");
        std::fs::write(&path, "1").unwrap();
        let watch = SpecWatch::new(&path, Duration::from_millis(20)).unwrap();
        let (out, mut ticks) = mpsc::channel(64);
        let task = tokio::spawn(watch.run(out));
        std::fs::remove_dir_all(&dir).unwrap();
        // Ticks while broken: the spec is re-read (and found missing).
        tokio::time::timeout(Duration::from_secs(5), ticks.recv())
            .await
            .expect("a tick after the directory was deleted");
        std::fs::create_dir(&dir).unwrap();
        // Once watched again, a write is seen as it happens.
        tokio::time::sleep(REWATCH_EVERY * 3).await;
        while ticks.try_recv().is_ok() {}
        std::fs::write(&path, "2").unwrap();
        let tick = tokio::time::timeout(REWATCH_EVERY / 2, ticks.recv()).await;
        assert!(
            matches!(tick, Ok(Some(()))),
            "a write into the recreated directory went unseen"
        );
        drop(ticks);
        task.abort();
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
