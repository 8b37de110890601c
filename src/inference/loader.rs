//! Loads a [`Checkpoint`] from a path: a Hugging Face directory or a `.gguf`
//! file, each through its own loader.

use std::path::{Path, PathBuf};

use crate::inference::checkpoint::Checkpoint;
use crate::inference::gguf::{self, GgufError};
use crate::inference::hf::{self, HfError};

/// Why a model path could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: no such model (expected a directory or a .gguf file)")]
    NotFound { path: PathBuf },
    #[error(transparent)]
    Hf(#[from] HfError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// Loads a Hugging Face directory or a `.gguf` file.
pub fn load(path: &Path) -> Result<Checkpoint, LoadError> {
    if path.is_dir() {
        Ok(hf::load_dir(path)?)
    } else if path.is_file() {
        Ok(gguf::load_file(path)?)
    } else {
        Err(LoadError::NotFound {
            path: path.to_path_buf(),
        })
    }
}
