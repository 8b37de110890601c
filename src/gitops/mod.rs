//! Node specs from git (issue 18), the GitOps way: where the spec lives
//! (`source`), the fleet layout rendered into one node's spec (`fleet`),
//! fetching a commit's files without a work tree (`repo`), commit signatures
//! (`signature`) and the `garage fleet` commands (`cli`). The agent's poll
//! loop (`agent::git_source`) feeds what these read to the controller.

pub mod cli;
pub mod fleet;
pub mod repo;
pub mod signature;
pub mod source;

pub use fleet::FleetError;
pub use repo::{Fetched, GitError};
pub use source::GitSource;

/// Installs rustls' ring provider as the process default, once: gix's https
/// client (reqwest 0.13, built without a provider of its own) takes it from
/// there. Later calls find it installed and do nothing.
pub fn install_tls_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
