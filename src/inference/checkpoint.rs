//! A loaded model source: config, host weights, tokenizer and chat template,
//! whichever format (Hugging Face directory or GGUF file) it came from.

use std::path::{Path, PathBuf};

use crate::inference::chat_template::ChatTemplate;
use crate::inference::config::LlamaConfig;
use crate::inference::gguf::{self, GgufError};
use crate::inference::hf::{self, HfError};
use crate::inference::tokenizer::TextTokenizer;
use crate::inference::weights::WeightMap;

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

/// Everything read from a model source, before it is put on a device.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model id the API reports (directory or file stem).
    pub name: String,
    pub config: LlamaConfig,
    pub weights: WeightMap,
    pub tokenizer: TextTokenizer,
    pub chat_template: Option<ChatTemplate>,
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
