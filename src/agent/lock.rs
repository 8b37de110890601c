//! One agent per node name and engine (issue 9, D18: two agents for the same
//! node recreated each other's containers forever). The lock is an exclusive
//! `flock` on a file in one well-known host folder, [`LOCK_ROOT`], named by
//! the node and the engine's id, so every agent on this host that drives this
//! engine finds it whatever its state directory. The kernel drops the lock
//! with its process, so a SIGKILLed agent never blocks its restart; a lease
//! on the engine would need a holder-alive check to get the same. Agents on
//! other hosts driving the same engine over TCP do not see it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The host folder of node locks: world-writable with the sticky bit, like
/// `/run/lock` itself, so agents of different users share it.
pub const LOCK_ROOT: &str = "/run/lock/garage";

/// Why the node lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("node {node} is already run by another agent on this engine: pid {pid}, spec {spec} (lock {lock}); stop that agent, or give this node its own metadata.name")]
    Held {
        node: String,
        pid: String,
        spec: String,
        lock: PathBuf,
    },
    #[error("cannot take the node lock {path} (fix: make {} a folder this user can write, or remove it)", LOCK_ROOT)]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct NodeLock {
    _file: File,
    path: PathBuf,
}

impl NodeLock {
    /// Takes the lock of `node` on the engine `engine_id` in `root`, and
    /// records this process and `spec` in it for whoever finds it held.
    pub fn acquire(
        root: &Path,
        engine_id: &str,
        node: &str,
        spec: &Path,
    ) -> Result<NodeLock, LockError> {
        let engine = hex::encode(&Sha256::digest(engine_id.as_bytes())[..8]);
        let path = root.join(format!("{node}@{engine}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        ensure_root(root).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // A holder that is still writing leaves the fields unknown.
                let _ = file.read_to_string(&mut text);
                let field = |key: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(key))
                        .map_or_else(|| "unknown".to_string(), str::to_string)
                };
                return Err(LockError::Held {
                    node: node.into(),
                    pid: field("pid "),
                    spec: field("spec "),
                    lock: path,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        let spec = std::path::absolute(spec).unwrap_or_else(|_| spec.to_path_buf());
        let owner = format!(
            "pid {}\nspec {}\nengine {engine_id}\n",
            std::process::id(),
            spec.display()
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(owner.as_bytes()))
            .map_err(io)?;
        Ok(NodeLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes `root` when missing, open to every user with the sticky bit; an
/// existing folder is left as it is.
fn ensure_root(root: &Path) -> std::io::Result<()> {
    match fs::DirBuilder::new().mode(0o755).create(root) {
        Ok(()) => fs::set_permissions(root, fs::Permissions::from_mode(0o1777)),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_agent_for_the_node_is_refused_naming_the_owner() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path().join("locks");
        let held = NodeLock::acquire(&root, "engine-1", "n1", Path::new("/etc/a/node.yaml"))
            .expect("first lock");
        let refused = NodeLock::acquire(&root, "engine-1", "n1", Path::new("/etc/b/node.yaml"))
            .expect_err("second lock");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("spec /etc/a/node.yaml"), "{message}");
        NodeLock::acquire(&root, "engine-2", "n1", Path::new("/etc/b/node.yaml"))
            .expect("the same name on another engine is another node");
        NodeLock::acquire(&root, "engine-1", "n2", Path::new("/etc/b/node.yaml"))
            .expect("another node on the same engine");
        drop(held);
        NodeLock::acquire(&root, "engine-1", "n1", Path::new("/etc/b/node.yaml"))
            .expect("a released lock is free again");
    }

    #[test]
    fn the_root_is_made_shared_and_sticky() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("locks");
        let _lock = NodeLock::acquire(&root, "e", "n1", Path::new("node.yaml")).expect("lock");
        let mode = fs::metadata(&root).expect("root").permissions().mode();
        assert_eq!(mode & 0o7777, 0o1777);
    }
}
