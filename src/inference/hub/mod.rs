//! Where the worker's model comes from: a local path, or a Hugging Face
//! repository (`hf:owner/name[/file.gguf][@revision]`) fetched with hf-hub
//! into a cache directory (the node's model volume). A complete cached
//! snapshot is used without asking the hub, so a node restarts offline.

mod fetch;
mod progress;

use std::path::{Path, PathBuf};

pub use self::fetch::HubError;
pub use crate::spec::{HubModel, ModelRef, ModelRefError};

/// The public hub; `HF_ENDPOINT` replaces it (mirrors, tests).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How to reach the hub and where to keep what it sends.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// hf-hub's cache layout (`models--owner--name/{blobs,refs,snapshots}`).
    pub cache_dir: PathBuf,
    pub endpoint: String,
    /// Never ask the hub: only a complete cached snapshot will do.
    pub offline: bool,
    pub token: Option<String>,
}

impl HubOptions {
    /// `cache_dir` when given, else `$HF_HOME/hub` or `~/.cache/huggingface/hub`;
    /// `HF_ENDPOINT`, `HF_HUB_OFFLINE` and `HF_TOKEN` as Hugging Face's own
    /// tools read them.
    pub fn from_env(cache_dir: Option<PathBuf>) -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cache_dir = cache_dir
            .or_else(|| env("HF_HOME").map(|h| Path::new(&h).join("hub")))
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache/huggingface/hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        HubOptions {
            cache_dir,
            endpoint: env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            offline: env("HF_HUB_OFFLINE").is_some_and(|v| !matches!(v.as_str(), "0" | "false")),
            token: env("HF_TOKEN"),
        }
    }
}

/// Why a hub model could not be made local.
/// (downloading what is missing unless offline).
pub async fn resolve(model: &ModelRef, options: &HubOptions) -> Result<PathBuf, HubError> {
    match model {
        ModelRef::Local(path) => Ok(path.clone()),
        ModelRef::Hub(hub) => fetch::fetch(hub, options).await,
    }
}
