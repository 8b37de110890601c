//! Deterministic quantised matrices for the kernels' speed test and
//! benchmark (each compiles this module and uses what it needs).

use garage_kernels::{BlockFormat, QuantMatrix};

/// Deterministic bytes (xorshift), so runs compare.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
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
