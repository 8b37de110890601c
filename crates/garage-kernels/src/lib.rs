//! CPU matrix multiplication against GGML-quantised weights (Q4_0, Q4_1,
//! Q8_0 blocks of 32) without dequantising them, llama.cpp's way:
//! activations rounded to 8 bits per block, integer dot products per block,
//! scaled in f32. One routine serves a single token (GEMV) and several
//! (small GEMM, prefill), split across rayon's threads; several rows go
//! in panels of eight against bands of weight rows unpacked beforehand,
//! blocked for the caches, with results bitwise equal to one row at a time.
//! Beside them, fused causal attention in f32 for prefill and decode
//! (`causal_attention`: online softmax over tiles of the KV cache).
//! Safe Rust: the AVX2 kernels go through `pulp`, which checks the CPU's
//! features at run time.

mod activation;
mod attention;
mod blocks;
mod dot;
mod matmul;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use self::attention::{causal_attention, AttentionError, AttentionShape};
pub use self::blocks::{BlockError, BlockFormat, QuantMatrix, BLOCK};
