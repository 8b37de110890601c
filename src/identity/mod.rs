//! The node's identity: a UUID and an ed25519 key pair kept in the node's
//! state directory (directory 0700, key file 0600), made once at first start.
//! The secret key never leaves this module except as signatures and is never
//! printed or logged; loading refuses a key that group or others can read,
//! and a state directory that is not private ([`ensure_private_dir`]).

pub mod api_request;
pub mod cli;
pub mod register;
pub mod signing;

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::TryRngCore;
use uuid::Uuid;

/// File holding the secret key (hex of the 32-byte ed25519 seed).
pub const KEY_FILE: &str = "node.key";
/// File holding the node id (a UUID).
pub const ID_FILE: &str = "node-id";

/// Why the identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot create the state directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is readable by group or others (mode {mode:04o}); refusing to use a secret others can read (fix: chmod 600 {path})")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the state directory {path} has mode {mode:04o}: group or others can reach it; refusing to keep secrets there, and not changing a directory this program did not make (fix: chmod 700 {path}, or choose another directory)")]
    DirPermissions { path: PathBuf, mode: u32 },
    #[error("the state directory {path} is owned by uid {owner}, not by this user (uid {user}); refusing to keep secrets there (fix: choose a directory of your own, or as root: chown {user} {path})")]
    DirOwner {
        path: PathBuf,
        owner: u32,
        user: u32,
    },
    #[error("the state directory {path} exists but is not a directory (fix: move it away, or choose another directory)")]
    NotADir { path: PathBuf },
    #[error("{path} is not a node key: {problem} (fix: restore it from a backup, or move it and node-id away to make a new identity, which must register again)")]
    BadKey {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("{path} does not hold a node id (fix: restore it from a backup, or move it and node.key away to make a new identity)")]
    BadId {
        path: PathBuf,
        #[source]
        source: uuid::Error,
    },
    #[error("{present} exists but {missing} does not; refusing to make half an identity (fix: restore {missing}, or move {present} away to make a new identity)")]
    Incomplete { present: PathBuf, missing: PathBuf },
    #[error("the operating system's random number generator failed")]
    Random(#[source] rand::rand_core::OsError),
}

/// A node's id and signing key.
pub struct NodeIdentity {
    node_id: Uuid,
    key: SigningKey,
}

impl fmt::Debug for NodeIdentity {
    // Written by hand so that the secret key can never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node_id", &self.node_id)
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// Loads the identity in `dir`, making it (and `dir`) when neither file
    /// exists; `dir` must be private ([`ensure_private_dir`]).
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        ensure_private_dir(dir)?;
        let key_path = dir.join(KEY_FILE);
        let id_path = dir.join(ID_FILE);
        match (key_path.exists(), id_path.exists()) {
            (true, true) => Self::load(&key_path, &id_path),
            (false, false) => Self::create(dir, &key_path, &id_path),
            (true, false) => Err(IdentityError::Incomplete {
                present: key_path,
                missing: id_path,
            }),
            (false, true) => Err(IdentityError::Incomplete {
                present: id_path,
                missing: key_path,
            }),
        }
    }

    fn load(key_path: &Path, id_path: &Path) -> Result<Self, IdentityError> {
        let text = read_private_file(key_path)?;
        let bad_key = |problem| IdentityError::BadKey {
            path: key_path.to_path_buf(),
            problem,
        };
        let bytes = hex::decode(text.trim()).map_err(|_| bad_key("not hexadecimal"))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| bad_key("not 32 bytes long"))?;
        let id_text = std::fs::read_to_string(id_path).map_err(|source| IdentityError::Read {
            path: id_path.to_path_buf(),
            source,
        })?;
        let node_id = Uuid::parse_str(id_text.trim()).map_err(|source| IdentityError::BadId {
            path: id_path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_seed(node_id, &seed))
    }

    /// An identity from its id and the 32-byte seed of its key, held in
    /// memory only: a node keeps its own on disk ([`Self::load_or_create`]);
    /// load generators make many this way.
    pub fn from_seed(node_id: Uuid, seed: &[u8; 32]) -> Self {
        NodeIdentity {
            node_id,
            key: SigningKey::from_bytes(seed),
        }
    }

    fn create(dir: &Path, key_path: &Path, id_path: &Path) -> Result<Self, IdentityError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(IdentityError::Random)?;
        let identity = NodeIdentity {
            node_id: Uuid::new_v4(),
            key: SigningKey::from_bytes(&seed),
        };
        // The id is written first: a crash between the two writes leaves an
        // id without a key, which `load_or_create` reports instead of
        // silently pairing an old id with a new key.
        write_private_file(id_path, format!("{}\n", identity.node_id).as_bytes())?;
        write_private_file(key_path, format!("{}\n", hex::encode(seed)).as_bytes())?;
        tracing::info!(node_id = %identity.node_id, dir = %dir.display(), "made a new node identity");
        Ok(identity)
    }

    pub fn node_id(&self) -> Uuid {
        self.node_id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as the coordinator expects it (hex of 32 bytes).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs a request for the coordinator with id `coordinator`; see
    /// [`signing::canonical_message`].
    pub fn sign_request(
        &self,
        coordinator: Uuid,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> signing::SignedHeaders {
        let message = signing::canonical_message(
            coordinator,
            method,
            path,
            body,
            timestamp,
            nonce,
            self.node_id,
        );
        signing::SignedHeaders {
            node_id: self.node_id,
            coordinator,
            timestamp,
            nonce: nonce.to_string(),
            signature: hex::encode(self.key.sign(message.as_bytes()).to_bytes()),
        }
    }
}

/// Makes `dir` (mode 0700, parents included) when it is missing; an existing
/// one must be a directory owned by this user that group and others cannot
/// reach, as PostgreSQL checks its data directory. An existing directory is
/// never chmod-ed: pointed at /tmp or a home directory, that would break the
/// host (issue 9, B9).
pub fn ensure_private_dir(dir: &Path) -> Result<(), IdentityError> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| IdentityError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                });
        }
        Err(source) => {
            return Err(IdentityError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_dir() {
        return Err(IdentityError::NotADir {
            path: dir.to_path_buf(),
        });
    }
    let user = effective_uid().map_err(|source| IdentityError::Read {
        path: PathBuf::from("/proc/self"),
        source,
    })?;
    if meta.uid() != user {
        return Err(IdentityError::DirOwner {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            user,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::DirPermissions {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// This process's effective user id: the owner of `/proc/self` (proc(5)),
/// which needs no unsafe call and no extra crate.
fn effective_uid() -> std::io::Result<u32> {
    std::fs::metadata("/proc/self").map(|meta| meta.uid())
}

/// Reads a secret file, refusing one that group or others can read.
pub fn read_private_file(path: &Path) -> Result<String, IdentityError> {
    let read_err = |source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(path)
        .map_err(read_err)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` with mode 0600 through a temporary file and a
/// rename, so a crash never leaves a half-written file under the real name.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // `mode` applies only to new files; a leftover temporary file may be wider.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| IdentityError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_makes_private_files_and_later_starts_load_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        let made = NodeIdentity::load_or_create(&dir).expect("made");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        let loaded = NodeIdentity::load_or_create(&dir).expect("loaded");
        assert_eq!(made.node_id(), loaded.node_id());
        assert_eq!(made.public_key_hex(), loaded.public_key_hex());
    }

    #[test]
    fn debug_output_never_holds_the_secret() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // tempdir() makes 0755 directories; the state directory must be private.
        let dir = tmp.path().join("node");
        let identity = NodeIdentity::load_or_create(&dir).expect("made");
        let secret = std::fs::read_to_string(dir.join(KEY_FILE)).expect("key");
        let debug = format!("{identity:?}");
        assert!(!debug.contains(secret.trim()), "{debug}");
        assert!(debug.contains(&identity.node_id().to_string()));
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // tempdir() makes 0755 directories; the state directory must be private.
        let dir = tmp.path().join("node");
        NodeIdentity::load_or_create(&dir).expect("made");
        let key = dir.join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = NodeIdentity::load_or_create(&dir).expect_err("refused");
        assert!(
            matches!(err, IdentityError::Permissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn an_existing_state_dir_others_can_reach_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = NodeIdentity::load_or_create(&dir).expect_err("refused");
        assert!(
            matches!(err, IdentityError::DirPermissions { mode: 0o755, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 700 {}", dir.display())) && text.contains("0755"),
            "{text}"
        );
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "the directory was changed");
        assert!(!dir.join(KEY_FILE).exists(), "no secret written into it");
    }

    #[test]
    fn a_missing_state_dir_is_made_private_with_its_parents() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b/state");
        ensure_private_dir(&dir).expect("made");
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure_private_dir(&dir).expect("an existing private directory is fine");
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let err = ensure_private_dir(&file).expect_err("a file");
        assert!(matches!(err, IdentityError::NotADir { .. }), "{err}");
    }

    #[test]
    fn a_state_dir_owned_by_another_user_is_refused() {
        if effective_uid().expect("uid") != 0 {
            eprintln!("skipping: only root can give a directory to another user");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
        let err = NodeIdentity::load_or_create(&dir).expect_err("refused");
        assert!(
            matches!(err, IdentityError::DirOwner { owner: 65534, .. }),
            "{err}"
        );
    }

    #[test]
    fn half_an_identity_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // tempdir() makes 0755 directories; the state directory must be private.
        let dir = tmp.path().join("node");
        NodeIdentity::load_or_create(&dir).expect("made");
        std::fs::remove_file(dir.join(KEY_FILE)).expect("rm");
        let err = NodeIdentity::load_or_create(&dir).expect_err("refused");
        assert!(matches!(err, IdentityError::Incomplete { .. }), "{err}");
    }

    #[test]
    fn a_corrupt_key_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // tempdir() makes 0755 directories; the state directory must be private.
        let dir = tmp.path().join("node");
        NodeIdentity::load_or_create(&dir).expect("made");
        std::fs::write(dir.join(KEY_FILE), "zz\n").expect("write");
        let err = NodeIdentity::load_or_create(&dir).expect_err("refused");
        assert!(matches!(err, IdentityError::BadKey { .. }), "{err}");
    }
}
