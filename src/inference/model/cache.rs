//! Per-sequence key/value cache: one `[kv_heads, len, head_dim]` pair per
//! layer, grown as tokens are decoded. Dropping it frees the sequence's slot.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Keys and values of every layer for one sequence.
#[derive(Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 3>, Tensor<B, 3>)>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: (0..num_layers).map(|_| None).collect(),
            len: 0,
        }
    }

    /// Tokens already cached (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `k`, `v` (`[kv_heads, new, head_dim]`) to `layer` and returns
    /// the full keys and values.
    pub(super) fn append(
        &mut self,
        layer: usize,
        k: Tensor<B, 3>,
        v: Tensor<B, 3>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let merged = match self.layers[layer].take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 1), Tensor::cat(vec![pv, v], 1)),
        };
        self.layers[layer] = Some(merged.clone());
        merged
    }

    /// Records that `n` tokens were appended to every layer.
    pub(super) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
