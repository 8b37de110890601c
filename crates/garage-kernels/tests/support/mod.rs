//! Deterministic inputs for the kernels' speed test and benchmarks:
//! quantised matrices and f32 values (each compiles this module and uses
//! what it needs).
#![allow(dead_code)]

use garage_kernels::{BlockFormat, QuantMatrix};

/// A deterministic xorshift sequence from `seed`, so runs compare.
fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
    let mut s = seed | 1;
    std::iter::repeat_with(move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    })
}

/// Deterministic bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    xorshift(seed).take(n).map(|s| s as u8).collect()
}

/// Deterministic values in [-1, 1).
pub fn floats(n: usize, seed: u64) -> Vec<f32> {
    xorshift(seed)
        .take(n)
        .map(|s| (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect()
}

/// Random blocks with small positive f16 scales (0x2000 ≈ 0.0078).
pub fn matrix(format: BlockFormat, rows: usize, cols: usize) -> QuantMatrix {
    let mut raw = bytes(rows * cols / 32 * format.block_bytes(), 7);
    let scales = if format == BlockFormat::Q4_1 { 2 } else { 1 };
    for block in raw.chunks_exact_mut(format.block_bytes()) {
        for s in 0..scales {
            block[2 * s] = 0;
            block[2 * s + 1] = 0x20;
        }
    }
    QuantMatrix::from_ggml(format, rows, cols, &raw).expect("matrix")
}
