//! Cross-process locks for job runs and job slots: `flock` locks on files in
//! `job-locks/` of the node's state directory (mode 0700, owned by the user
//! running the node). The kernel releases a lock when its holder dies,
//! however it dies, so a crashed run never holds a slot and a sweep can tell
//! a live run's resources from a dead one's; and a process without access to
//! the state directory can neither take nor squat a slot. (Linux only, like
//! the rest of the node.)

use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

/// The lock directory inside the node's state directory.
const LOCK_DIR: &str = "job-locks";

#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("cannot create the job lock directory {} (fix: make the state directory writable for this user, or pass another one with --state-dir)", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing the job lock directory {}: it is mode {mode:04o} and owned by uid {owner}, so other local users could take or squat job slots (fix: `chown {uid} {d} && chmod 0700 {d}`, or remove it and let the node make it again)", dir.display(), d = dir.display())]
    Unsafe {
        dir: PathBuf,
        mode: u32,
        owner: u32,
        uid: u32,
    },
    #[error("cannot open or lock the job lock file {} (fix: check that {} belongs to the user running the node)", file.display(), file.parent().unwrap_or(file).display())]
    Lock {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("job run {run} is already held by another process")]
    RunHeld { run: String },
}

/// The job locks of one node, in its state directory.
#[derive(Debug, Clone)]
pub struct JobLocks {
    dir: PathBuf,
    node: String,
}

/// A held lock; released on drop or when the process exits.
#[derive(Debug)]
pub struct Held {
    _file: File,
    /// A run's lock file is removed with its lock; a slot's stays for reuse.
    remove: Option<PathBuf>,
    pub name: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(path) = self.remove.take() {
            // Still locked while it goes: a probe can never see a live run's
            // file unlocked. A file left behind reads as a dead run.
            let _ = std::fs::remove_file(path);
        }
    }
}

impl JobLocks {
    /// The locks of `node` under `state_dir`, making `state_dir` and its
    /// lock directory (0700) when missing. An existing lock directory that
    /// another user owns or others may enter is refused, never re-moded.
    pub fn open(state_dir: &Path, node: &str) -> Result<JobLocks, SlotError> {
        let dir = state_dir.join(LOCK_DIR);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| SlotError::CreateDir {
                dir: dir.clone(),
                source,
            })?;
        let meta = std::fs::metadata(&dir).map_err(|source| SlotError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        let uid = rustix::process::geteuid().as_raw();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.uid() != uid || mode & 0o077 != 0 {
            return Err(SlotError::Unsafe {
                dir,
                mode,
                owner: meta.uid(),
                uid,
            });
        }
        Ok(JobLocks {
            dir,
            node: node.to_owned(),
        })
    }

    /// The directory holding the lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{}.{what}.lock", self.node))
    }

    fn try_hold(&self, what: &str, remove: bool) -> Result<Option<Held>, SlotError> {
        let path = self.file(what);
        let lock_error = |source| SlotError::Lock {
            file: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(lock_error)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Held {
                _file: file,
                remove: remove.then_some(path),
                name: what.to_owned(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(lock_error(source)),
        }
    }

    /// Marks run `run` as alive for as long as the value lives.
    pub fn hold_run(&self, run: &str) -> Result<Held, SlotError> {
        self.try_hold(&format!("run-{run}"), true)?
            .ok_or_else(|| SlotError::RunHeld {
                run: run.to_owned(),
            })
    }

    /// True while some process holds run `run`. Call it only for runs whose
    /// resources were seen in the engine (they exist only after their lock
    /// was taken): a dead run's leftover lock file is removed here.
    pub fn run_alive(&self, run: &str) -> bool {
        let path = self.file(&format!("run-{run}"));
        let Ok(file) = File::open(&path) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                false
            }
            Err(TryLockError::WouldBlock) => true,
            // Cannot tell: keep the run's resources rather than remove a live one's.
            Err(TryLockError::Error(_)) => true,
        }
    }

    /// One of the node's `max` job slots, when one is free.
    pub fn try_slot(&self, max: u32) -> Result<Option<Held>, SlotError> {
        for index in 0..max {
            if let Some(held) = self.try_hold(&format!("slot-{index}"), false)? {
                return Ok(Some(held));
            }
        }
        Ok(None)
    }

    /// Waits for a free slot until `deadline`; `waiting` is called once when
    /// the first try finds every slot taken.
    pub async fn wait_for_slot(
        &self,
        max: u32,
        deadline: Instant,
        waiting: impl FnOnce(),
    ) -> Result<Option<Held>, SlotError> {
        let mut waiting = Some(waiting);
        loop {
            if let Some(held) = self.try_slot(max)? {
                return Ok(Some(held));
            }
            if let Some(notify) = waiting.take() {
                notify();
            }
            let next = Instant::now() + Duration::from_millis(200);
            if next >= deadline {
                return Ok(None);
            }
            tokio::time::sleep_until(next).await;
        }
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
