//! The inference probe: loads the worker's model with the worker's own
//! loaders and decoder (`inference::loader`, `inference::model`) and
//! times a fixed prompt's prefill (time to first token) and greedy decode.
//! Decoding ignores end-of-sequence tokens: it measures speed, not text.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::inference::loader::{self, LoadError};
use crate::inference::model::{Llama, SeqStep};
use crate::inference::sampler::argmax;
use crate::inference::tokenizer::TokenizerError;
use crate::inference::weights::WeightError;

/// The text the prompt is made of, repeated to the wanted length.
const PROMPT_TEXT: &str = "Garage AI is a community GPU network. People with a GPU in \
the garage run one command, and their machine becomes a node that serves inference \
and runs container jobs for the network. ";

/// Why the model could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum InferenceProbeError {
    #[error("loading the model")]
    Load(#[from] LoadError),
    #[error("building the model from its weights")]
    Weights(#[from] WeightError),
    #[error("tokenizing the benchmark prompt")]
    Tokenize(#[from] TokenizerError),
    #[error("the tokenizer turned the benchmark prompt into no tokens")]
    EmptyPrompt,
    #[error("reading the logits: {0}")]
    Logits(String),
}

/// Prompt and completion lengths, and how long decoding may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferenceLimits {
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    /// Decoding stops early past this (a large model on a small CPU); the
    /// report counts the tokens actually decoded.
    pub decode_budget: Duration,
}

impl InferenceLimits {
    pub fn full() -> Self {
        InferenceLimits {
            prompt_tokens: 128,
            decode_tokens: 32,
            decode_budget: Duration::from_secs(30),
        }
    }

    pub fn quick() -> Self {
        InferenceLimits {
            prompt_tokens: 16,
            decode_tokens: 8,
            decode_budget: Duration::from_secs(10),
        }
    }
}

/// What one generation took.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first_token: Duration,
    decoded: usize,
    decoding: Duration,
}

/// One model's speed on the benchmark's backend, after a warm-up pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceRun {
    /// The model id the worker would report (file stem or directory name).
    pub model: String,
    pub path: PathBuf,
    /// Reading the file and putting the weights on the device.
    pub load_seconds: f64,
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    /// Prefill of the prompt until the first token is sampled.
    pub time_to_first_token_ms: f64,
    pub prefill_tokens_per_s: f64,
    /// Greedy decode, one sequence, after the first token.
    pub decode_tokens_per_s: f64,
}

/// `limits.prompt_tokens` ids of [`PROMPT_TEXT`], repeated as needed.
fn prompt(ids: &[u32], len: usize) -> Vec<u32> {
    ids.iter().copied().cycle().take(len).collect()
}

/// Runs `prompt` then up to `decode` greedy steps (fewer once `budget` is
/// spent) on a fresh cache.
fn generate<B: Backend>(
    model: &Llama<B>,
    prompt: &[u32],
    decode: usize,
    budget: Duration,
) -> Result<Timing, InferenceProbeError> {
    let mut cache = model.new_cache();
    let mut input = prompt.to_vec();
    let started = Instant::now();
    let mut first = None;
    let mut decoded = 0;
    loop {
        let logits = model.forward(&mut [SeqStep {
            tokens: &input,
            cache: &mut cache,
        }]);
        let row: Vec<f32> = logits
            .into_data()
            .to_vec()
            .map_err(|e| InferenceProbeError::Logits(format!("{e:?}")))?;
        input = vec![argmax(&row)];
        let first_at = *first.get_or_insert_with(Instant::now);
        if decoded == decode || (decoded > 0 && first_at.elapsed() >= budget) {
            return Ok(Timing {
                first_token: first_at - started,
                decoded,
                decoding: first_at.elapsed(),
            });
        }
        decoded += 1;
    }
}

/// Loads the model at `path` onto `device` and measures it.
pub fn measure<B: Backend>(
    path: &Path,
    device: &B::Device,
    limits: &InferenceLimits,
) -> Result<InferenceRun, InferenceProbeError> {
    let loading = Instant::now();
    let mut cp = loader::load(path)?;
    let model = Llama::<B>::from_weights(&cp.config, &mut cp.weights, device)?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let text_ids = cp.tokenizer.encode(PROMPT_TEXT)?;
    if text_ids.is_empty() {
        return Err(InferenceProbeError::EmptyPrompt);
    }
    let room = cp.config.max_position_embeddings.max(2);
    let decode = limits.decode_tokens.clamp(1, room / 2);
    let ids = prompt(&text_ids, limits.prompt_tokens.clamp(1, room - decode));
    // Warm-up: first calls allocate, and on CUDA compile kernels.
    generate(&model, &ids, 2.min(decode), limits.decode_budget)?;
    let timing = generate(&model, &ids, decode, limits.decode_budget)?;
    let ttft_s = timing.first_token.as_secs_f64().max(f64::EPSILON);
    Ok(InferenceRun {
        model: cp.name,
        path: path.to_owned(),
        load_seconds,
        prompt_tokens: ids.len(),
        decode_tokens: timing.decoded,
        time_to_first_token_ms: ttft_s * 1e3,
        prefill_tokens_per_s: ids.len() as f64 / ttft_s,
        decode_tokens_per_s: timing.decoded as f64
            / timing.decoding.as_secs_f64().max(f64::EPSILON),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_repeats_the_text_to_the_wanted_length() {
        assert_eq!(prompt(&[1, 2, 3], 7), vec![1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(prompt(&[1, 2, 3], 2), vec![1, 2]);
    }
}
