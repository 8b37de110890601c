//! GGUF model files (what llama.cpp and Ollama use): Llama hyper-parameters,
//! tensors (F32/F16/BF16 as f32; Q4_0/Q4_1/Q8_0 matrices kept in their
//! blocks for the quantised kernels; renamed to the Hugging Face names the
//! model expects), tokenizer and chat template.

mod quant;
mod reader;
mod vocab;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use self::reader::{ParseError, Value};
use crate::inference::chat_template::{ChatTemplate, TemplateError};
use crate::inference::checkpoint::Checkpoint;
use crate::inference::config::{ConfigError, LlamaConfig};
use crate::inference::tokenizer::{TextTokenizer, TokenizerError};
use garage_kernels::{BlockError, QuantMatrix};

use crate::inference::weights::{HostTensor, HostWeight, WeightMap};

/// Why a GGUF file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    TooLarge(#[from] crate::meminfo::TooLarge),
    #[error("{path}: corrupt or truncated GGUF file")]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("{path}: architecture {arch:?} is not supported (only llama)")]
    Architecture { path: PathBuf, arch: String },
    #[error("{path}: metadata {key} is missing or not a number")]
    Metadata { path: PathBuf, key: String },
    #[error("{path}: tensor {ROPE_FREQS} holds {found} values, the model needs {expected} (head_dim / 2), all positive")]
    RopeFreqs {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: tokenizer")]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: TokenizerError,
    },
    #[error("{path}: tensor {tensor}")]
    Blocks {
        path: PathBuf,
        tensor: String,
        #[source]
        source: BlockError,
    },
    #[error("{path}: chat template")]
    Template {
        path: PathBuf,
        #[source]
        source: TemplateError,
    },
}

/// llama.cpp's Llama-3 rope scaling: one divisor per rotary frequency.
const ROPE_FREQS: &str = "rope_freqs.weight";

/// Hugging Face name of a GGUF tensor, `None` for tensors the model does not use.
fn hf_name(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let part = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{part}"))
}

/// llama.cpp's converter interleaves the two rotary halves of each Q/K head
/// (its RoPE rotates adjacent pairs); the source row of each row in the
/// Hugging Face layout. `None` (leave as is) for a shape that does not split
/// into heads, for the shape check to report.
fn unpermuted_order(rows: usize, heads: usize) -> Option<Vec<usize>> {
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return None;
    }
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut order = vec![0; rows];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                order[h * head_dim + j * half + i] = h * head_dim + i * 2 + j;
            }
        }
    }
    Some(order)
}

fn unpermute_rows(w: HostWeight, heads: usize) -> HostWeight {
    let shape = w.shape();
    let [rows, cols] = shape[..] else {
        return w;
    };
    let Some(order) = unpermuted_order(rows, heads) else {
        return w;
    };
    match w {
        HostWeight::Quant(m) => HostWeight::Quant(m.select_rows(&order)),
        HostWeight::Dense(t) => HostWeight::Dense(HostTensor {
            shape: t.shape.clone(),
            data: order
                .iter()
                .flat_map(|&r| &t.data[r * cols..(r + 1) * cols])
                .copied()
                .collect(),
        }),
    }
}

/// Loads a `.gguf` file.
pub fn load_file(path: &Path) -> Result<Checkpoint, GgufError> {
    // The file is read whole: one larger than memory (a sparse file claiming
    // 26 GB aborted the worker) is refused first.
    crate::meminfo::check_fits(path, crate::meminfo::read())?;
    let bytes = std::fs::read(path).map_err(|source| GgufError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let header = reader::parse(&bytes).map_err(|source| GgufError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = &header.metadata;
    let arch = meta
        .get("general.architecture")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if arch != "llama" {
        return Err(GgufError::Architecture {
            path: path.to_path_buf(),
            arch,
        });
    }
    let (tokenizer, tokens) = vocab::build(meta).map_err(|source| GgufError::Tokenizer {
        path: path.to_path_buf(),
        source,
    })?;
    let mut config = gguf_config(path, meta, &header.tensors, tokens.len())?;

    let mut weights = WeightMap::new(path);
    for info in &header.tensors {
        if info.name == ROPE_FREQS {
            let factors = info.kind.dequantize(&bytes[info.start..info.end]);
            let expected = config.head_dim / 2;
            if factors.len() != expected || factors.iter().any(|f| !(*f > 0.0 && f.is_finite())) {
                return Err(GgufError::RopeFreqs {
                    path: path.to_path_buf(),
                    found: factors.len(),
                    expected,
                });
            }
            config.rope_freq_factors = Some(factors.into_iter().map(f64::from).collect());
            continue;
        }
        let Some(name) = hf_name(&info.name) else {
            continue;
        };
        let raw = &bytes[info.start..info.end];
        let shape: Vec<usize> = info.dims.iter().rev().copied().collect();
        let mut weight = match (info.kind.block_format(), &shape[..]) {
            (Some(format), &[rows, cols]) => {
                HostWeight::Quant(QuantMatrix::from_ggml(format, rows, cols, raw).map_err(
                    |source| GgufError::Blocks {
                        path: path.to_path_buf(),
                        tensor: info.name.clone(),
                        source,
                    },
                )?)
            }
            _ => HostWeight::Dense(HostTensor {
                shape,
                data: info.kind.dequantize(raw),
            }),
        };
        if info.name.ends_with("attn_q.weight") {
            weight = unpermute_rows(weight, config.num_heads);
        } else if info.name.ends_with("attn_k.weight") {
            weight = unpermute_rows(weight, config.num_kv_heads);
        }
        weights.insert_weight(name, weight, path);
    }

    let token_text = |key: &str| {
        meta.get(key)
            .and_then(Value::as_u64)
            .and_then(|id| tokens.get(id as usize).cloned())
    };
    let mut text_tokenizer = TextTokenizer::new(tokenizer);
    let add_bos = matches!(
        meta.get("tokenizer.ggml.add_bos_token"),
        Some(Value::Bool(true))
    );
    text_tokenizer.set_special(config.bos_token_id, config.eos_token_ids.clone(), add_bos);
    let chat_template = meta
        .get("tokenizer.chat_template")
        .and_then(Value::as_str)
        .map(|source| {
            ChatTemplate::new(
                source.to_string(),
                token_text("tokenizer.ggml.bos_token_id").unwrap_or_default(),
                token_text("tokenizer.ggml.eos_token_id").unwrap_or_default(),
            )
        })
        .transpose()
        .map_err(|source| GgufError::Template {
            path: path.to_path_buf(),
            source,
        })?;
    let name = path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    Ok(Checkpoint {
        name,
        config,
        weights,
        tokenizer: text_tokenizer,
        chat_template,
    })
}

fn gguf_config(
    path: &Path,
    meta: &HashMap<String, Value>,
    tensors: &[reader::TensorInfo],
    n_tokens: usize,
) -> Result<LlamaConfig, GgufError> {
    let missing = |key: &str| GgufError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
    };
    let int = |key: &str| {
        meta.get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| missing(key))
    };
    let hidden = int("llama.embedding_length")?;
    let heads = int("llama.attention.head_count")?;
    let float = |key: &str, default: f64| meta.get(key).and_then(Value::as_f64).unwrap_or(default);
    let config = LlamaConfig {
        hidden_size: hidden,
        intermediate_size: int("llama.feed_forward_length")?,
        num_layers: int("llama.block_count")?,
        num_heads: heads,
        num_kv_heads: int("llama.attention.head_count_kv").unwrap_or(heads),
        head_dim: int("llama.rope.dimension_count").unwrap_or(hidden / heads.max(1)),
        vocab_size: int("llama.vocab_size").unwrap_or(n_tokens),
        max_position_embeddings: int("llama.context_length")?,
        rms_norm_eps: float("llama.attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta: float("llama.rope.freq_base", 10000.0),
        rope_scaling: None,
        rope_freq_factors: None,
        tie_word_embeddings: !tensors.iter().any(|t| t.name == "output.weight"),
        bos_token_id: meta
            .get("tokenizer.ggml.bos_token_id")
            .and_then(Value::as_u64)
            .map(|v| v as u32),
        eos_token_ids: meta
            .get("tokenizer.ggml.eos_token_id")
            .and_then(Value::as_u64)
            .map(|v| vec![v as u32])
            .unwrap_or_default(),
    };
    config.validate(&path.display().to_string())?;
    Ok(config)
}
