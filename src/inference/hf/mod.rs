//! Hugging Face model directory: `config.json`, `model.safetensors` (or
//! shards listed in `model.safetensors.index.json`), `tokenizer.json` and the
//! chat template from `tokenizer_config.json`.

mod safetensors;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::safetensors::SafetensorsError;
use crate::inference::chat_template::{ChatTemplate, TemplateError};
use crate::inference::checkpoint::Checkpoint;
use crate::inference::config::{ConfigError, LlamaConfig};
use crate::inference::shard_name::{self, ShardNameError};
use crate::inference::tokenizer::{TextTokenizer, TokenizerError};
use crate::inference::weights::WeightMap;

/// Why a Hugging Face directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{dir}: no model.safetensors or model.safetensors.index.json")]
    NoWeights { dir: PathBuf },
    #[error("{path}: invalid shard index")]
    Index {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: refusing a shard listed in the index")]
    ShardName {
        path: PathBuf,
        #[source]
        source: ShardNameError,
    },
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    #[error("{path}: tokenizer file is missing (every model directory needs tokenizer.json)")]
    MissingTokenizer { path: PathBuf },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid tokenizer_config.json")]
    TokenizerConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: chat template")]
    Template {
        path: PathBuf,
        #[source]
        source: TemplateError,
    },
}

#[derive(Debug, Deserialize)]
struct ShardIndex {
    weight_map: std::collections::HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenSpec {
    Text(String),
    Added { content: String },
}

impl TokenSpec {
    fn text(&self) -> &str {
        match self {
            TokenSpec::Text(t) => t,
            TokenSpec::Added { content } => content,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TemplateSpec {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Debug, Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

#[derive(Debug, Default, Deserialize)]
struct TokenizerConfig {
    bos_token: Option<TokenSpec>,
    eos_token: Option<TokenSpec>,
    add_bos_token: Option<bool>,
    chat_template: Option<TemplateSpec>,
}

/// Loads a model directory in the Hugging Face layout.
pub fn load_dir(dir: &Path) -> Result<Checkpoint, HfError> {
    let config = LlamaConfig::from_hf_file(&dir.join("config.json"))?;

    let index_path = dir.join("model.safetensors.index.json");
    let single = dir.join("model.safetensors");
    let files: Vec<PathBuf> = if index_path.is_file() {
        let index_err = |source: Box<dyn std::error::Error + Send + Sync>| HfError::Index {
            path: index_path.clone(),
            source,
        };
        let text = std::fs::read_to_string(&index_path).map_err(|e| index_err(e.into()))?;
        let index: ShardIndex = serde_json::from_str(&text).map_err(|e| index_err(e.into()))?;
        let names: BTreeSet<String> = index.weight_map.into_values().collect();
        for name in &names {
            shard_name::check(name).map_err(|source| HfError::ShardName {
                path: index_path.clone(),
                source,
            })?;
        }
        names.into_iter().map(|n| dir.join(n)).collect()
    } else if single.is_file() {
        vec![single]
    } else {
        return Err(HfError::NoWeights {
            dir: dir.to_path_buf(),
        });
    };
    let mut weights = WeightMap::new(dir);
    for file in &files {
        safetensors::read_into(file, &mut weights)?;
    }

    let tokenizer_path = dir.join("tokenizer.json");
    if !tokenizer_path.is_file() {
        return Err(HfError::MissingTokenizer {
            path: tokenizer_path,
        });
    }
    let tc_path = dir.join("tokenizer_config.json");
    let tc: TokenizerConfig = if tc_path.is_file() {
        let text = std::fs::read_to_string(&tc_path).map_err(|source| HfError::Read {
            path: tc_path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| HfError::TokenizerConfig {
            path: tc_path.clone(),
            source,
        })?
    } else {
        TokenizerConfig::default()
    };
    let mut tokenizer = TextTokenizer::from_file(&tokenizer_path)?;
    let bos_text = tc.bos_token.as_ref().map(|t| t.text().to_string());
    let eos_text = tc.eos_token.as_ref().map(|t| t.text().to_string());
    let bos = config
        .bos_token_id
        .or_else(|| bos_text.as_deref().and_then(|t| tokenizer.token_id(t)));
    let mut eos = config.eos_token_ids.clone();
    if let Some(id) = eos_text.as_deref().and_then(|t| tokenizer.token_id(t)) {
        if !eos.contains(&id) {
            eos.push(id);
        }
    }
    tokenizer.set_special(bos, eos, tc.add_bos_token.unwrap_or(bos.is_some()));

    let template_source = match tc.chat_template {
        None => None,
        Some(TemplateSpec::One(t)) => Some(t),
        Some(TemplateSpec::Named(list)) => {
            let default = list.iter().position(|t| t.name == "default").unwrap_or(0);
            list.into_iter().nth(default).map(|t| t.template)
        }
    };
    let chat_template = template_source
        .map(|source| {
            ChatTemplate::new(
                source,
                bos_text.clone().unwrap_or_default(),
                eos_text.clone().unwrap_or_default(),
            )
        })
        .transpose()
        .map_err(|source| HfError::Template {
            path: tc_path.clone(),
            source,
        })?;

    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    Ok(Checkpoint {
        name,
        config,
        weights,
        tokenizer,
        chat_template,
    })
}
