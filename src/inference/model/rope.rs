//! Rotary position embeddings, Hugging Face "rotate half" layout, with
//! `rope_theta` and Llama-3 frequency scaling. Tables are computed on the
//! host in f64 once and uploaded.

use std::f64::consts::PI;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::inference::config::LlamaConfig;

/// Inverse frequencies `theta^(-2i/d)`, rescaled per Llama 3 when configured
/// (as divisors from a GGUF file, or from Hugging Face's `rope_scaling`).
fn inverse_frequencies(config: &LlamaConfig) -> Vec<f64> {
    let d = config.head_dim as f64;
    let base: Vec<f64> = (0..config.head_dim / 2)
        .map(|i| 1.0 / config.rope_theta.powf(2.0 * i as f64 / d))
        .collect();
    if let Some(factors) = &config.rope_freq_factors {
        return base.iter().zip(factors).map(|(f, by)| f / by).collect();
    }
    let Some(s) = config.rope_scaling else {
        return base;
    };
    let old = s.original_max_position_embeddings as f64;
    let low_wavelen = old / s.low_freq_factor;
    let high_wavelen = old / s.high_freq_factor;
    base.into_iter()
        .map(|f| {
            let wavelen = 2.0 * PI / f;
            if wavelen < high_wavelen {
                f
            } else if wavelen > low_wavelen {
                f / s.factor
            } else {
                let smooth =
                    (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                (1.0 - smooth) * f / s.factor + smooth * f
            }
        })
        .collect()
}

/// Cos and sin tables `[max_positions, head_dim]` on the device.
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
    half: usize,
}

impl<B: Backend> Rope<B> {
    pub fn new(config: &LlamaConfig, device: &B::Device) -> Self {
        let inv = inverse_frequencies(config);
        let (n, d) = (config.max_position_embeddings, config.head_dim);
        let mut cos = Vec::with_capacity(n * d);
        let mut sin = Vec::with_capacity(n * d);
        for pos in 0..n {
            // HF layout: the same frequencies for both halves of the head.
            for _half in 0..2 {
                for f in &inv {
                    let angle = pos as f64 * f;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        Rope {
            cos: Tensor::from_data(TensorData::new(cos, [n, d]), device),
            sin: Tensor::from_data(TensorData::new(sin, [n, d]), device),
            half: d / 2,
        }
    }

    /// The tables at `positions`, ready to rotate `[tokens, heads, head_dim]`
    /// tensors of those tokens (computed once per forward, used by every layer).
    pub fn at(&self, positions: Tensor<B, 1, Int>) -> RopeAt<B> {
        RopeAt {
            cos: self
                .cos
                .clone()
                .select(0, positions.clone())
                .unsqueeze_dim(1),
            sin: self.sin.clone().select(0, positions).unsqueeze_dim(1),
            half: self.half,
        }
    }
}

/// Cos and sin rows `[tokens, 1, head_dim]` for one batch of tokens.
#[derive(Debug, Clone)]
pub struct RopeAt<B: Backend> {
    cos: Tensor<B, 3>,
    sin: Tensor<B, 3>,
    half: usize,
}

impl<B: Backend> RopeAt<B> {
    /// Rotates `x` `[tokens, heads, head_dim]` by each token's position.
    pub fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let first = x.clone().narrow(2, 0, self.half);
        let second = x.clone().narrow(2, self.half, self.half);
        let rotated = Tensor::cat(vec![second.neg(), first], 2);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}
