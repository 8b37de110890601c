//! The Llama decoder on a burn backend: RMSNorm, rotary embeddings, grouped-
//! query attention with a per-sequence KV cache, SwiGLU MLP, tied or separate
//! output head. One forward call runs a *batch* of sequences, each with its
//! own cache and any number of new tokens (prefill or decode): projections
//! and MLPs run on all tokens at once, attention per sequence.

mod cache;
mod linear;
mod rope;

use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use garage_kernels::{causal_attention, AttentionShape};

pub use self::cache::KvCache;
use self::linear::Linear;
use self::rope::Rope;
use crate::inference::backend::runs_on_host;
use crate::inference::config::LlamaConfig;
use crate::inference::weights::{HostTensor, WeightError, WeightMap};

#[derive(Debug)]
struct Layer<B: Backend> {
    attn_norm: Tensor<B, 2>,
    /// `hidden → q + k + v`: the three projections fused.
    wqkv: Linear<B>,
    wo: Linear<B>,
    mlp_norm: Tensor<B, 2>,
    /// `hidden → 2 * intermediate`: gate and up fused.
    w_gate_up: Linear<B>,
    w_down: Linear<B>,
}

/// A Llama-architecture model on backend `B`.
#[derive(Debug)]
pub struct Llama<B: Backend> {
    config: LlamaConfig,
    embed: Tensor<B, 2>,
    layers: Vec<Layer<B>>,
    norm: Tensor<B, 2>,
    /// `hidden → vocab`.
    lm_head: Linear<B>,
    rope: Rope<B>,
    device: B::Device,
    /// Whether the backend runs on the host (rayon's pool runs the step).
    on_host: bool,
}

/// New tokens for one sequence and the cache they extend.
#[derive(Debug)]
pub struct SeqStep<'a, B: Backend> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache<B>,
}

fn upload<B: Backend>(t: HostTensor, device: &B::Device) -> Tensor<B, 2> {
    let shape = [t.shape[0], t.shape.get(1).copied().unwrap_or(1)];
    Tensor::from_data(TensorData::new(t.data, shape), device)
}

fn norm_weight<B: Backend>(t: HostTensor, device: &B::Device) -> Tensor<B, 2> {
    let n = t.data.len();
    Tensor::from_data(TensorData::new(t.data, [1, n]), device)
}

impl<B: Backend> Llama<B> {
    /// Builds the model from Hugging Face–named weights, checking every shape
    /// against `config`. On a CPU backend, GGUF's quantised matrices stay in
    /// their blocks and multiply through the quantised kernels.
    pub fn from_weights(
        config: &LlamaConfig,
        weights: &mut WeightMap,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Self::build(config, weights, device, runs_on_host::<B>())
    }

    /// Like [`Self::from_weights`], with every linear layer on burn's dense
    /// f32 matmul (quantised weights dequantised): exact f32 arithmetic.
    pub fn from_weights_dense(
        config: &LlamaConfig,
        weights: &mut WeightMap,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Self::build(config, weights, device, false)
    }

    fn build(
        config: &LlamaConfig,
        weights: &mut WeightMap,
        device: &B::Device,
        quantised: bool,
    ) -> Result<Self, WeightError> {
        let c = config;
        let (h, q, kv, i) = (
            c.hidden_size,
            c.num_heads * c.head_dim,
            c.num_kv_heads * c.head_dim,
            c.intermediate_size,
        );
        let embed = weights.take_weight("model.embed_tokens.weight", &[c.vocab_size, h])?;
        let lm_head_host = if c.tie_word_embeddings {
            embed.clone()
        } else {
            weights.take_weight("lm_head.weight", &[c.vocab_size, h])?
        };
        let embed_host = embed.into_dense();
        let linear = |parts| Linear::fused(parts, quantised, device);
        let mut layers = Vec::with_capacity(c.num_layers);
        for l in 0..c.num_layers {
            let p = format!("model.layers.{l}.");
            let mut take =
                |name: &str, shape: &[usize]| weights.take_weight(&format!("{p}{name}"), shape);
            let wqkv = linear(vec![
                take("self_attn.q_proj.weight", &[q, h])?,
                take("self_attn.k_proj.weight", &[kv, h])?,
                take("self_attn.v_proj.weight", &[kv, h])?,
            ]);
            let w_gate_up = linear(vec![
                take("mlp.gate_proj.weight", &[i, h])?,
                take("mlp.up_proj.weight", &[i, h])?,
            ]);
            let attn_norm = take("input_layernorm.weight", &[h])?.into_dense();
            let mlp_norm = take("post_attention_layernorm.weight", &[h])?.into_dense();
            layers.push(Layer {
                attn_norm: norm_weight(attn_norm, device),
                wqkv,
                wo: linear(vec![take("self_attn.o_proj.weight", &[h, q])?]),
                mlp_norm: norm_weight(mlp_norm, device),
                w_gate_up,
                w_down: linear(vec![take("mlp.down_proj.weight", &[h, i])?]),
            });
        }
        let norm = norm_weight(weights.take("model.norm.weight", &[h])?, device);
        Ok(Llama {
            config: config.clone(),
            embed: upload(embed_host, device),
            layers,
            norm,
            lm_head: linear(vec![lm_head_host]),
            rope: Rope::new(config, device),
            device: device.clone(),
            on_host: runs_on_host::<B>(),
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.config.num_layers)
    }

    fn rms_norm(&self, x: Tensor<B, 2>, weight: &Tensor<B, 2>) -> Tensor<B, 2> {
        let inv = x
            .clone()
            .powi_scalar(2)
            .mean_dim(1)
            .add_scalar(self.config.rms_norm_eps)
            .sqrt()
            .recip();
        x * inv * weight.clone()
    }

    /// Runs the new tokens of every sequence through the model, extends each
    /// cache, and returns the logits of each sequence's last token,
    /// `[sequences, vocab]`. Callers keep every cache within
    /// `max_position_embeddings` and every step non-empty.
    pub fn forward(&self, steps: &mut [SeqStep<'_, B>]) -> Tensor<B, 2> {
        if self.on_host {
            // On a rayon worker, each of the ~120 parallel matmuls of a step
            // is split and joined in the pool; from outside it, each would
            // hand the work over and put this thread to sleep and back.
            rayon::scope(|_| self.forward_layers(steps))
        } else {
            self.forward_layers(steps)
        }
    }

    /// The unit-length mean of the final (normalised) hidden states of
    /// `tokens`, run on a fresh cache: the embedding llama.cpp's server
    /// answers with mean pooling. `tokens` is non-empty and within the
    /// context.
    pub fn embedding(&self, tokens: &[u32]) -> Vec<f32> {
        let pooled = |model: &Self| {
            let mut cache = model.new_cache();
            let mut steps = [SeqStep {
                tokens,
                cache: &mut cache,
            }];
            let (x, _) = model.hidden(&mut steps);
            model.rms_norm(x, &model.norm).mean_dim(0)
        };
        let pooled = if self.on_host {
            rayon::scope(|_| pooled(self))
        } else {
            pooled(self)
        };
        let mut vector: Vec<f32> = pooled.into_data().to_vec().unwrap_or_default();
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|v| *v /= norm);
        }
        vector
    }

    fn forward_layers(&self, steps: &mut [SeqStep<'_, B>]) -> Tensor<B, 2> {
        let (x, last_rows) = self.hidden(steps);
        let rows = last_rows.len();
        let last = Tensor::<B, 1, Int>::from_data(TensorData::new(last_rows, [rows]), &self.device);
        let x = self.rms_norm(x.select(0, last), &self.norm);
        self.lm_head.forward(x)
    }

    /// Every new token's hidden state after the last layer (before the
    /// final norm), `[tokens, hidden]`, and each sequence's last row in it;
    /// extends each cache.
    fn hidden(&self, steps: &mut [SeqStep<'_, B>]) -> (Tensor<B, 2>, Vec<i32>) {
        let c = &self.config;
        let (nh, nkv, hd) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut last_rows = Vec::with_capacity(steps.len());
        for step in steps.iter() {
            let start = step.cache.len();
            ids.extend(step.tokens.iter().map(|&t| t as i32));
            positions.extend((start..start + step.tokens.len()).map(|p| p as i32));
            last_rows.push(ids.len() as i32 - 1);
        }
        let n = ids.len();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [n]), &self.device);
        let positions =
            Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [n]), &self.device);
        let mut x = self.embed.clone().select(0, ids);
        let rope = self.rope.at(positions);
        // Each step's causal mask, built once for all layers (the host's
        // fused attention masks as it goes).
        let masks: Vec<Option<Tensor<B, 3>>> = steps
            .iter()
            .map(|step| {
                if self.fused_attention(step.tokens.len()) {
                    None
                } else {
                    self.causal_mask(step.tokens.len(), step.cache.len())
                }
            })
            .collect();

        for (l, layer) in self.layers.iter().enumerate() {
            let h = self.rms_norm(x.clone(), &layer.attn_norm);
            let qkv = layer.wqkv.forward(h);
            // Q and K heads are rotated together in one pass.
            let qk = qkv
                .clone()
                .narrow(1, 0, (nh + nkv) * hd)
                .reshape([n, nh + nkv, hd]);
            let qk = rope.apply(qk);
            let q = qk.clone().narrow(1, 0, nh);
            let k = qk.narrow(1, nh, nkv);
            let v = qkv
                .narrow(1, (nh + nkv) * hd, nkv * hd)
                .reshape([n, nkv, hd]);

            let mut outs = Vec::with_capacity(steps.len());
            let mut offset = 0;
            for (step, mask) in steps.iter_mut().zip(&masks) {
                let t = step.tokens.len();
                let past = step.cache.len();
                let qs = q.clone().narrow(0, offset, t);
                let ks = k.clone().narrow(0, offset, t).swap_dims(0, 1);
                let vs = v.clone().narrow(0, offset, t).swap_dims(0, 1);
                let (keys, values) = step.cache.append(l, ks, vs);
                outs.push(if self.fused_attention(t) {
                    self.attend_on_host(qs, keys, values, past)
                } else {
                    self.attend(qs.swap_dims(0, 1), keys, values, mask.clone())
                });
                offset += t;
            }
            let attn = if outs.len() == 1 {
                outs.swap_remove(0)
            } else {
                Tensor::cat(outs, 0)
            };
            x = x + layer.wo.forward(attn);

            let h = self.rms_norm(x.clone(), &layer.mlp_norm);
            let gu = layer.w_gate_up.forward(h);
            let inter = c.intermediate_size;
            let gate = gu.clone().narrow(1, 0, inter);
            let up = gu.narrow(1, inter, inter);
            x = x + layer.w_down.forward(silu(gate) * up);
        }
        for step in steps.iter_mut() {
            step.cache.advance(step.tokens.len());
        }
        (x, last_rows)
    }

    /// The causal mask of a step of `t` new tokens after `past` cached
    /// ones, for the query heads of a KV group folded into rows (see
    /// [`Self::attend`]): `[1, group * t, past + t]`, −∞ where a token would
    /// see a later one. `None` for a single token, which sees everything.
    fn causal_mask(&self, t: usize, past: usize) -> Option<Tensor<B, 3>> {
        if t <= 1 {
            return None;
        }
        let group = self.config.num_heads / self.config.num_kv_heads;
        let total = past + t;
        let mut rows = Vec::with_capacity(t * total);
        for row in 0..t {
            let visible = past + row + 1;
            rows.extend(std::iter::repeat_n(0.0f32, visible));
            rows.extend(std::iter::repeat_n(f32::NEG_INFINITY, total - visible));
        }
        let mut mask = Vec::with_capacity(group * t * total);
        for _ in 0..group {
            mask.extend_from_slice(&rows);
        }
        Some(Tensor::from_data(
            TensorData::new(mask, [1, group * t, total]),
            &self.device,
        ))
    }

    /// Whether a step of `t` new tokens attends through the host's fused
    /// kernel: several tokens on the host (prefill). A single token keeps
    /// burn's two small matmuls, which need no copy of the cache out of
    /// the backend (decode measured 127 tokens/s that way, 90 through the
    /// kernel).
    fn fused_attention(&self, t: usize) -> bool {
        self.on_host && t > 1
    }

    /// Causal attention of `q` `[t, heads, hd]` over `keys`/`values`
    /// `[kv_heads, past + t, hd]` on the host: one fused pass
    /// (`garage_kernels::causal_attention`: online softmax, no score matrix
    /// or mask); returns `[t, heads * hd]`.
    fn attend_on_host(
        &self,
        q: Tensor<B, 3>,
        keys: Tensor<B, 3>,
        values: Tensor<B, 3>,
        past: usize,
    ) -> Tensor<B, 2> {
        let c = &self.config;
        let t = q.dims()[0];
        let shape = AttentionShape {
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
            past,
            new: t,
        };
        let host = |x: Tensor<B, 3>| -> Vec<f32> {
            x.into_data()
                .convert::<f32>()
                .into_vec()
                .expect("f32 activations")
        };
        let out = causal_attention(&shape, &host(q), &host(keys), &host(values))
            .expect("the model's shapes are checked when it is built");
        Tensor::from_data(
            TensorData::new(out, [t, c.num_heads * c.head_dim]),
            &self.device,
        )
    }

    /// Causal attention of `q` `[heads, t, hd]` over `keys`/`values`
    /// `[kv_heads, past + t, hd]` (`mask` from [`Self::causal_mask`]);
    /// returns `[t, heads * hd]`.
    fn attend(
        &self,
        q: Tensor<B, 3>,
        keys: Tensor<B, 3>,
        values: Tensor<B, 3>,
        mask: Option<Tensor<B, 3>>,
    ) -> Tensor<B, 2> {
        let c = &self.config;
        let (nh, nkv, hd) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let group = nh / nkv;
        let t = q.dims()[1];
        // Heads sharing a KV head are adjacent: fold them into the row axis so
        // one matmul per KV head serves the whole group (no K/V repeat).
        let q = q.reshape([nkv, group * t, hd]);
        let mut scores = q
            .matmul(keys.swap_dims(1, 2))
            .mul_scalar(1.0 / (hd as f64).sqrt());
        if let Some(mask) = mask {
            scores = scores + mask;
        }
        let probs = softmax(scores, 2);
        probs
            .matmul(values)
            .reshape([nh, t, hd])
            .swap_dims(0, 1)
            .reshape([t, nh * hd])
    }
}
