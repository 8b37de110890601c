//! Model hyper-parameters: [`LlamaConfig`], validated once from a Hugging Face
//! `config.json` (or built by the GGUF loader); later code never re-checks.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The most positions a model may declare (16 Mi, above every released
/// Llama-architecture context): the rotary tables are sized from it, so a
/// `max_position_embeddings` of 10^12 would ask for terabytes (issue 9, C14).
pub const MAX_POSITIONS: usize = 1 << 24;

/// The context the worker allocates for when `--max-context` is not given:
/// rotary tables and requests are sized to at most this many positions.
pub const DEFAULT_MAX_CONTEXT: usize = 8192;

/// Why a model configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid model config")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{origin}: field `{field}`: {reason}")]
    Invalid {
        origin: String,
        field: &'static str,
        reason: String,
    },
}

/// Llama-3 style RoPE frequency scaling (`rope_scaling.rope_type = "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// Validated hyper-parameters of a Llama-architecture decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    /// Per-frequency divisors, `head_dim / 2` of them: llama.cpp's form of
    /// Llama-3 scaling (GGUF tensor `rope_freqs.weight`). When present they
    /// replace `rope_scaling`.
    pub rope_freq_factors: Option<Vec<f64>>,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

/// The subset of a Hugging Face `config.json` a Llama model needs.
#[derive(Debug, Deserialize)]
struct HfConfig {
    #[serde(default)]
    architectures: Vec<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: usize,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    tie_word_embeddings: bool,
    bos_token_id: Option<u32>,
    eos_token_id: Option<OneOrMany>,
    hidden_act: Option<String>,
}

fn default_max_positions() -> usize {
    2048
}
fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10000.0
}

impl LlamaConfig {
    /// Reads and validates a Hugging Face `config.json`.
    pub fn from_hf_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: HfConfig = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = path.display().to_string();
        let invalid = |field, reason: String| ConfigError::Invalid {
            origin: origin.clone(),
            field,
            reason,
        };
        if let Some(arch) = raw.architectures.first() {
            if !matches!(arch.as_str(), "LlamaForCausalLM" | "MistralForCausalLM") {
                return Err(invalid(
                    "architectures",
                    format!("{arch} is not a Llama-architecture model"),
                ));
            }
        }
        if let Some(act) = raw.hidden_act.as_deref() {
            if act != "silu" {
                return Err(invalid("hidden_act", format!("{act} (only silu)")));
            }
        }
        let rope_scaling = match raw.rope_scaling {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(parse_rope_scaling(value).map_err(|r| invalid("rope_scaling", r))?),
        };
        let eos_token_ids = match raw.eos_token_id {
            None => Vec::new(),
            Some(OneOrMany::One(id)) => vec![id],
            Some(OneOrMany::Many(ids)) => ids,
        };
        let config = LlamaConfig {
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            head_dim: raw
                .head_dim
                .unwrap_or(raw.hidden_size / raw.num_attention_heads.max(1)),
            vocab_size: raw.vocab_size,
            max_position_embeddings: raw.max_position_embeddings,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta: raw.rope_theta,
            rope_scaling,
            rope_freq_factors: None,
            tie_word_embeddings: raw.tie_word_embeddings,
            bos_token_id: raw.bos_token_id,
            eos_token_ids,
        };
        config.validate(&origin)?;
        Ok(config)
    }

    /// Checks the invariants the model relies on; `origin` names the source in errors.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            field,
            reason: reason.to_string(),
        };
        let positive = [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(invalid(field, "must be positive"));
            }
        }
        if self.max_position_embeddings > MAX_POSITIONS {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                field: "max_position_embeddings",
                reason: format!(
                    "{} positions is more than the {MAX_POSITIONS} this worker supports; \
                     the file is corrupt or not a model config",
                    self.max_position_embeddings
                ),
            });
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(invalid(
                "num_key_value_heads",
                "must divide num_attention_heads",
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(invalid("head_dim", "must be even for rotary embeddings"));
        }
        if !positive_finite(self.rms_norm_eps) || !positive_finite(self.rope_theta) {
            return Err(invalid(
                "rms_norm_eps",
                "eps and rope_theta must be positive",
            ));
        }
        Ok(())
    }
}

impl LlamaConfig {
    /// Lowers `max_position_embeddings` to `cap` (at least 1) when the model
    /// declares more, with a log line, so the rotary tables and every request
    /// fit the cap; returns the context in use.
    pub fn cap_context(&mut self, cap: usize) -> usize {
        let cap = cap.max(1);
        if self.max_position_embeddings > cap {
            tracing::info!(
                model_context = self.max_position_embeddings,
                max_context = cap,
                "capping the model's context (raise it with --max-context)"
            );
            self.max_position_embeddings = cap;
        }
        self.max_position_embeddings
    }
}

fn positive_finite(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn parse_rope_scaling(value: serde_json::Value) -> Result<Llama3RopeScaling, String> {
    let kind = value
        .get("rope_type")
        .or_else(|| value.get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if kind != "llama3" {
        return Err(format!("rope type {kind:?} is not supported (only llama3)"));
    }
    let scaling: Llama3RopeScaling =
        serde_json::from_value(value).map_err(|e| format!("llama3 scaling: {e}"))?;
    if !positive_finite(scaling.factor) || scaling.high_freq_factor <= scaling.low_freq_factor {
        return Err("need factor > 0 and high_freq_factor > low_freq_factor".into());
    }
    Ok(scaling)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    const BASE: &str = r#""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 100"#;

    #[test]
    fn defaults_and_eos_list() {
        let (_d, p) = write(&format!(r#"{{ {BASE}, "eos_token_id": [1, 2] }}"#));
        let c = LlamaConfig::from_hf_file(&p).expect("valid");
        assert_eq!(c.num_kv_heads, 4);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.eos_token_ids, vec![1, 2]);
    }

    #[test]
    fn an_absurd_context_is_refused_with_the_numbers() {
        let (_d, p) = write(&format!(
            r#"{{ {BASE}, "max_position_embeddings": 1000000000000 }}"#
        ));
        let e = LlamaConfig::from_hf_file(&p)
            .expect_err("invalid")
            .to_string();
        assert!(
            e.contains("config.json: field `max_position_embeddings`")
                && e.contains("1000000000000 positions")
                && e.contains("16777216"),
            "{e}"
        );
    }

    #[test]
    fn the_context_is_capped_never_raised() {
        let (_d, p) = write(&format!(
            r#"{{ {BASE}, "max_position_embeddings": 131072 }}"#
        ));
        let mut c = LlamaConfig::from_hf_file(&p).expect("valid");
        assert_eq!(c.cap_context(DEFAULT_MAX_CONTEXT), 8192);
        assert_eq!(c.max_position_embeddings, 8192);
        assert_eq!(c.cap_context(100_000), 8192);
        assert_eq!(c.cap_context(0), 1);
    }

    #[test]
    fn rejects_bad_gqa_and_rope() {
        let (_d, p) = write(&format!(r#"{{ {BASE}, "num_key_value_heads": 3 }}"#));
        let e = LlamaConfig::from_hf_file(&p)
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("num_key_value_heads"), "{e}");
        let (_d, p) = write(&format!(
            r#"{{ {BASE}, "rope_scaling": {{"type": "yarn"}} }}"#
        ));
        let e = LlamaConfig::from_hf_file(&p)
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("rope_scaling"), "{e}");
    }
}
