//! Fused causal attention of a step's new tokens against the KV cache
//! (prompt prefill and decode), in f32: online softmax in one pass over
//! the keys each query may see, with no score matrix or mask in memory.
//! It owns the shapes' validation and the split of the work across
//! rayon's threads; the arithmetic is in `kernel`, written once over the
//! eight-lane vectors of `lanes` (portable) and `avx2` (checked at run
//! time). It knows nothing of RoPE or of how the cache grows.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod kernel;
mod lanes;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

use self::kernel::Block;

/// Shapes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    /// Query heads.
    pub heads: usize,
    /// Key and value heads; query head `h` reads KV head `h / (heads / kv_heads)`.
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
    /// Tokens already in the cache.
    pub past: usize,
    /// Tokens of this step, whose queries are given.
    pub new: usize,
}

/// Why the inputs do not fit an [`AttentionShape`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttentionError {
    /// Query heads must be a positive multiple of the KV heads.
    #[error("{heads} query heads are not a positive multiple of {kv_heads} KV heads")]
    Heads { heads: usize, kv_heads: usize },
    /// Heads must have values.
    #[error("head_dim is 0")]
    HeadDim,
    /// An input's length does not fit in `usize`.
    #[error("the shape's sizes overflow usize")]
    Overflow,
    /// `input` (`"q"`, `"k"` or `"v"`) holds `found` values, not `expected`.
    #[error("{input} holds {found} values, the shape needs {expected}")]
    Length {
        input: &'static str,
        expected: usize,
        found: usize,
    },
}

/// Query rows (query heads of one KV head × tokens) per block, the rows
/// that share each key and value tile (24 to 96 measured within noise of
/// each other on SmolLM2's prefill).
const BLOCK_ROWS: usize = 48;

/// Blocks per rayon thread at least, so that the threads stay busy although
/// the later tokens' blocks see more keys.
const BLOCKS_PER_THREAD: usize = 4;

/// A validated shape.
#[derive(Debug, Clone, Copy)]
struct Dims {
    heads: usize,
    kv_heads: usize,
    /// Query heads per KV head.
    group: usize,
    head_dim: usize,
    past: usize,
    new: usize,
}

impl Dims {
    /// The shape, checked, and the lengths of `q`, `k` and `v` against it.
    fn new(shape: &AttentionShape, [q, k, v]: [&[f32]; 3]) -> Result<Self, AttentionError> {
        let AttentionShape {
            heads,
            kv_heads,
            head_dim,
            past,
            new,
        } = *shape;
        if kv_heads == 0 || heads == 0 || heads % kv_heads != 0 {
            return Err(AttentionError::Heads { heads, kv_heads });
        }
        if head_dim == 0 {
            return Err(AttentionError::HeadDim);
        }
        let kv_rows = past.checked_add(new).and_then(|n| n.checked_mul(kv_heads));
        let inputs = [
            ("q", q, new.checked_mul(heads)),
            ("k", k, kv_rows),
            ("v", v, kv_rows),
        ];
        for (input, x, rows) in inputs {
            let expected = rows
                .and_then(|r| r.checked_mul(head_dim))
                .ok_or(AttentionError::Overflow)?;
            if x.len() != expected {
                return Err(AttentionError::Length {
                    input,
                    expected,
                    found: x.len(),
                });
            }
        }
        let group = heads / kv_heads;
        Ok(Dims {
            heads,
            kv_heads,
            group,
            head_dim,
            past,
            new,
        })
    }

    /// Keys in the cache after this step.
    fn keys(&self) -> usize {
        self.past + self.new
    }

    /// Tokens per block: [`BLOCK_ROWS`] rows, fewer where that would leave
    /// fewer than [`BLOCKS_PER_THREAD`] blocks per thread.
    fn block_tokens(&self) -> usize {
        let for_rows = BLOCK_ROWS / self.group;
        let blocks = rayon::current_num_threads() * BLOCKS_PER_THREAD;
        let for_threads = (self.new * self.kv_heads) / blocks;
        for_rows.min(for_threads).max(1)
    }
}

/// Causal attention of `new` query tokens after `past` cached ones.
///
/// - `q`: `[new, heads * head_dim]`, token-major, as the QKV projection
///   produces it (after RoPE).
/// - `k`, `v`: `[kv_heads, past + new, head_dim]`, the KV cache's layout,
///   kept because token-major `[past + new, kv_heads * head_dim]` would be
///   no faster: here a head's keys are one contiguous run, so each tile of
///   keys or values that a block of query rows shares is one sequential
///   read (a prefix of the run, for a block's last token); the other
///   layout interleaves the heads, so a tile's rows would be strided and
///   spread over `kv_heads` times the memory, for the same arithmetic.
///
/// Query row `r` (0-based among the new tokens) sees keys `0..=past + r`;
/// scores are scaled by `1 / sqrt(head_dim)`. Returns `[new, heads *
/// head_dim]`, token-major: row `i` holds head 0's values, then head 1's,
/// and so on.
///
/// # Errors
///
/// [`AttentionError`] when the shape is not one (heads not a multiple of
/// KV heads, `head_dim` 0) or a slice's length does not fit it.
pub fn causal_attention(
    shape: &AttentionShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Result<Vec<f32>, AttentionError> {
    attention_with(shape, [q, k, v], |b| b.run())
}

/// [`causal_attention`] with each block run by `run` (the tests run the
/// portable kernel this way).
fn attention_with(
    shape: &AttentionShape,
    [q, k, v]: [&[f32]; 3],
    run: impl Fn(Block<'_>) + Send + Sync,
) -> Result<Vec<f32>, AttentionError> {
    let dims = Dims::new(shape, [q, k, v])?;
    let mut out = vec![0.0; q.len()];
    blocks(&dims, [q, k, v], &mut out)
        .into_par_iter()
        .for_each(run);
    Ok(out)
}

/// The work: for each run of [`Dims::block_tokens`] tokens, one block per
/// KV head, each with its slices of the inputs and its pieces of `out`.
fn blocks<'a>(dims: &'a Dims, [q, k, v]: [&'a [f32]; 3], out: &'a mut [f32]) -> Vec<Block<'a>> {
    let tokens = dims.block_tokens();
    let row = dims.heads * dims.head_dim;
    let per_kv = dims.keys() * dims.head_dim;
    let mut blocks: Vec<Block<'a>> = (0..dims.new)
        .step_by(tokens)
        .flat_map(|first| {
            let end = (first + tokens).min(dims.new);
            let keys = (dims.past + end) * dims.head_dim;
            (0..dims.kv_heads).map(move |g| Block {
                dims,
                kv_head: g,
                first,
                q: &q[first * row..end * row],
                k: &k[g * per_kv..][..keys],
                v: &v[g * per_kv..][..keys],
                out: Vec::with_capacity(end - first),
            })
        })
        .collect();
    for (t, row) in out.chunks_exact_mut(row).enumerate() {
        let heads = row.chunks_exact_mut(dims.group * dims.head_dim);
        for (g, piece) in heads.enumerate() {
            blocks[t / tokens * dims.kv_heads + g].out.push(piece);
        }
    }
    blocks
}
