//! The spec's repository: a bare copy in the state directory, fetched with
//! gix (no work tree, no `git` program but for `file://`'s upload-pack and
//! ssh's client), the followed ref resolved to a commit, the node and fleet
//! files read from that commit's tree within the document limits, and its
//! signature checked. Blocking: the poller runs it on a blocking thread.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::progress::Discard;
use gix::remote::Direction;

use crate::document::limits::MAX_FILE_BYTES;

use super::signature::{AllowedSigners, SignatureError};
use super::source::{GitSource, FLEET_FILE};

/// Branches and tags as the remote has them (a bare copy, like `git clone
/// --bare`), moved even where the remote rewrote history.
const MIRROR_REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Why the repository could not be fetched or its ref resolved: nothing
/// new is known, the node keeps its last applied revision.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot fetch {url}: {message} (fix: check the URL, the network and the credentials)")]
    Fetch { url: String, message: String },
    #[error("{url} has no branch, tag or commit {reference} (fix: push it, or name an existing one with --ref)")]
    NoRef { url: String, reference: String },
    #[error("cannot read the local copy of {url} in {path}: {message} (fix: remove that directory; the next fetch clones again)")]
    Local {
        url: String,
        path: String,
        message: String,
    },
}

/// Why one commit's spec cannot be applied: the commit is remembered and
/// not read again until the ref moves.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("{path} is not in the commit (fix: add the node's file, or point --path at it)")]
    NoFile { path: String },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
    #[error("cannot read {path} from the commit: {message}")]
    Read { path: String, message: String },
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// The files of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// `fleet.yaml` at the root, when the commit has one.
    pub fleet: Option<String>,
    /// The node's file.
    pub node: String,
    /// The signer's key fingerprint, when signatures are checked.
    pub signer: Option<String>,
}

/// What the ref points at now.
#[derive(Debug)]
pub struct Fetched {
    /// The commit id, 40 hex digits.
    pub commit: String,
    pub files: Result<Files, CommitError>,
}

/// Fetches `source` into `cache` (cloning it the first time), then reads
/// the commit its ref points at.
pub fn sync(
    source: &GitSource,
    cache: &Path,
    signers: Option<&AllowedSigners>,
    interrupt: &AtomicBool,
) -> Result<Fetched, GitError> {
    fetch(source, cache, interrupt)?;
    read(source, cache, signers)
}

/// Brings the local copy up to date with the remote.
pub fn fetch(source: &GitSource, cache: &Path, interrupt: &AtomicBool) -> Result<(), GitError> {
    let fetch_error = |message: String| GitError::Fetch {
        url: source.url.clone(),
        message,
    };
    if let Ok(repo) = gix::open(cache) {
        // The source's URL with a mirror's refspecs, whatever the copy's
        // configuration says.
        let remote = repo
            .remote_at(source.url.as_str())
            .and_then(|remote| remote.with_refspecs(MIRROR_REFSPECS, Direction::Fetch))
            .map_err(|err| fetch_error(err.to_string()))?;
        remote
            .connect(Direction::Fetch)
            .map_err(|err| fetch_error(err.to_string()))?
            .prepare_fetch(Discard, Default::default())
            .map_err(|err| fetch_error(err.to_string()))?
            .receive(Discard, interrupt)
            .map_err(|err| fetch_error(err.to_string()))?;
        return Ok(());
    }
    // No usable copy: start over (a failed clone removes what it made).
    if cache.exists() {
        std::fs::remove_dir_all(cache).map_err(|err| local_error(source, cache, err))?;
    }
    if let Some(parent) = cache.parent() {
        // Private, like the rest of the state directory (the node's key
        // lives there too, and the identity refuses a directory others reach).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|err| local_error(source, cache, err))?;
    }
    let mut clone = gix::prepare_clone_bare(source.url.as_str(), cache)
        .map_err(|err| fetch_error(err.to_string()))?;
    clone
        .fetch_only(Discard, interrupt)
        .map_err(|err| fetch_error(err.to_string()))?;
    Ok(())
}

/// Reads the commit the ref points at in the local copy (as last fetched).
pub fn read(
    source: &GitSource,
    cache: &Path,
    signers: Option<&AllowedSigners>,
) -> Result<Fetched, GitError> {
    let repo = gix::open(cache).map_err(|err| local_error(source, cache, err))?;
    let commit = resolve(&repo, &source.reference).ok_or_else(|| GitError::NoRef {
        url: source.url.clone(),
        reference: source.reference.clone(),
    })?;
    let id = commit.id.to_string();
    Ok(Fetched {
        files: files(&repo, &commit, source, signers),
        commit: id,
    })
}

/// The commit `reference` names: a branch, a tag or a commit id, in that
/// order.
fn resolve<'repo>(repo: &'repo gix::Repository, reference: &str) -> Option<gix::Commit<'repo>> {
    let names = [
        format!("refs/heads/{reference}"),
        format!("refs/tags/{reference}"),
    ];
    let named = names.iter().find_map(|name| {
        let mut found = repo.try_find_reference(name.as_str()).ok()??;
        found.peel_to_commit().ok()
    });
    named.or_else(|| {
        let id = gix::ObjectId::from_hex(reference.as_bytes()).ok()?;
        repo.find_object(id).ok()?.peel_to_commit().ok()
    })
}

fn files(
    repo: &gix::Repository,
    commit: &gix::Commit<'_>,
    source: &GitSource,
    signers: Option<&AllowedSigners>,
) -> Result<Files, CommitError> {
    let signer = match signers {
        Some(signers) => {
            let signature = commit.signature().map_err(|err| CommitError::Read {
                path: "the commit's signature".into(),
                message: err.to_string(),
            })?;
            let fingerprint = match signature {
                Some((signature, signed)) => {
                    signers.verify(Some(signature.as_bytes()), signed.to_bstring().as_bytes())?
                }
                None => signers.verify(None, &[])?,
            };
            Some(fingerprint)
        }
        None => None,
    };
    let tree = commit.tree().map_err(|err| CommitError::Read {
        path: "the commit's tree".into(),
        message: err.to_string(),
    })?;
    let node_path = source.node_path();
    let node =
        blob_text(repo, &tree, &node_path)?.ok_or(CommitError::NoFile { path: node_path })?;
    let fleet = blob_text(repo, &tree, FLEET_FILE)?;
    Ok(Files {
        fleet,
        node,
        signer,
    })
}

/// The text of the file at `path` in `tree`; `None` when there is none.
fn blob_text(
    repo: &gix::Repository,
    tree: &gix::Tree<'_>,
    path: &str,
) -> Result<Option<String>, CommitError> {
    let read_error = |message: String| CommitError::Read {
        path: path.to_string(),
        message,
    };
    let Some(entry) = tree
        .lookup_entry_by_path(path)
        .map_err(|err| read_error(err.to_string()))?
    else {
        return Ok(None);
    };
    if !entry.mode().is_blob() {
        return Err(read_error("it is not a file".into()));
    }
    // The size is read from the object's header before the object itself.
    let header = repo
        .find_header(entry.object_id())
        .map_err(|err| read_error(err.to_string()))?;
    if header.size() > MAX_FILE_BYTES as u64 {
        return Err(CommitError::TooLarge {
            path: path.to_string(),
        });
    }
    let object = entry.object().map_err(|err| read_error(err.to_string()))?;
    String::from_utf8(object.data.clone())
        .map(Some)
        .map_err(|_| CommitError::NotText {
            path: path.to_string(),
        })
}

fn local_error(source: &GitSource, cache: &Path, err: impl std::fmt::Display) -> GitError {
    GitError::Local {
        url: source.url.clone(),
        path: cache.display().to_string(),
        message: err.to_string(),
    }
}
