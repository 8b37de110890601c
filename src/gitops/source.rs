//! Where a node's spec lives in git: the repository URL, the ref to follow,
//! the node file (with `{name}` for the node's name), the optional fleet
//! defaults, the poll interval and the keys whose signatures are accepted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The file of fleet-wide defaults, at the repository's root.
pub const FLEET_FILE: &str = "fleet.yaml";
/// The node file when none is given.
pub const DEFAULT_NODE_PATH: &str = "nodes/{name}.yaml";
/// How often the remote is asked for new commits when no interval is given.
pub const DEFAULT_POLL: Duration = Duration::from_secs(30);

/// One node's spec source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// `https://…`, `ssh://…` or `git@host:path`, `git://…`, `file://…` or a local path.
    pub url: String,
    /// A branch, a tag or a commit id.
    pub reference: String,
    /// The node's name: `{name}` in `path`, and `metadata.name` where the
    /// rendered spec has none.
    pub node: String,
    /// The node file in the repository, `{name}` replaced by `node`.
    pub path: String,
    pub poll: Duration,
    /// A file of allowed signers (`ssh-ed25519 AAAA…` per line, as git's
    /// `gpg.ssh.allowedSignersFile`): only commits signed by one of them are
    /// applied. `None`: signatures are not checked.
    pub allowed_signers: Option<PathBuf>,
}

impl GitSource {
    /// The node file's path in the repository.
    pub fn node_path(&self) -> String {
        self.path.replace("{name}", &self.node)
    }

    /// Where the repository is kept in the state directory: one bare
    /// repository per URL.
    pub fn cache_dir(&self, state_dir: &Path) -> PathBuf {
        let digest = Sha256::digest(self.url.as_bytes());
        state_dir.join("git").join(hex::encode(&digest[..8]))
    }

    /// How the spec is named in messages: `URL@REF:nodes/n1.yaml`.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.url, self.reference, self.node_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_name_fills_the_path_and_each_url_has_its_own_cache() {
        let source = GitSource {
            url: "file:///srv/fleet.git".into(),
            reference: "main".into(),
            node: "n1".into(),
            path: DEFAULT_NODE_PATH.into(),
            poll: DEFAULT_POLL,
            allowed_signers: None,
        };
        assert_eq!(source.node_path(), "nodes/n1.yaml");
        assert_eq!(source.label(), "file:///srv/fleet.git@main:nodes/n1.yaml");
        let other = GitSource {
            url: "file:///srv/other.git".into(),
            ..source.clone()
        };
        let state = Path::new("/state");
        assert!(source.cache_dir(state).starts_with("/state/git"));
        assert_ne!(source.cache_dir(state), other.cache_dir(state));
    }
}
