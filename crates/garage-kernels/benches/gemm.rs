//! The tiled kernel (`matmul`) against the one-by-one kernel it replaced
//! (`matmul_one_by_one`: every weight block unpacked once per activation
//! row), on SmolLM2-135M's shapes, for decode (n = 1) and prefill batches.
//! Run with `cargo bench -p garage-kernels --bench gemm [-- NAME...]`
//! (only the matrices whose names contain a NAME); `GEMM_SAMPLES` sets the
//! samples per case (default 7). The two kernels alternate sample by
//! sample, so that a busy machine slows both alike; each sample repeats
//! the call for at least 20 ms; the table gives medians.

use std::time::{Duration, Instant};

use garage_kernels::{BlockFormat, QuantMatrix};

/// Deterministic bytes (xorshift), so runs compare.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
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
fn matrix(format: BlockFormat, rows: usize, cols: usize) -> QuantMatrix {
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

/// Seconds per call of `f`, over enough calls to last `at_least`.
fn sample(calls: usize, f: &dyn Fn() -> Vec<f32>) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(f());
    }
    start.elapsed().as_secs_f64() / calls as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let samples: usize = std::env::var("GEMM_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let at_least = Duration::from_millis(20);
    let shapes = [
        ("attn o", BlockFormat::Q4_1, 576, 576),
        ("mlp gate", BlockFormat::Q4_1, 1536, 576),
        ("mlp down", BlockFormat::Q4_1, 576, 1536),
        ("head", BlockFormat::Q8_0, 49152, 576),
    ];
    println!(
        "{} rayon threads, {samples} samples per case, medians; GFLOP/s = 2·n·out·in / time",
        rayon::current_num_threads()
    );
    println!(
        "{:<9} {:<5} {:>13} {:>4} {:>11} {:>11} {:>9} {:>9} {:>8}",
        "matrix", "fmt", "out x in", "n", "old ms", "new ms", "old GF/s", "new GF/s", "new/old"
    );
    for (name, format, rows, cols) in shapes {
        if !names.is_empty() && !names.iter().any(|n| name.contains(n.as_str())) {
            continue;
        }
        let w = matrix(format, rows, cols);
        for n in [1usize, 8, 64, 256] {
            let x: Vec<f32> = bytes(n * cols, 3)
                .iter()
                .map(|&b| f32::from(b) / 128.0 - 1.0)
                .collect();
            let old = || w.matmul_one_by_one(&x);
            let new = || w.matmul(&x);
            // Same bits, so the comparison is between equals.
            assert!(old()
                .iter()
                .zip(&new())
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let once = sample(1, &old);
            let calls = (at_least.as_secs_f64() / once).ceil().max(1.0) as usize;
            let (mut t_old, mut t_new) = (Vec::new(), Vec::new());
            for _ in 0..samples {
                t_old.push(sample(calls, &old));
                t_new.push(sample(calls, &new));
            }
            let (t_old, t_new) = (median(t_old), median(t_new));
            let flop = 2.0 * (n * rows * cols) as f64;
            println!(
                "{name:<9} {:<5} {:>13} {n:>4} {:>11.3} {:>11.3} {:>9.1} {:>9.1} {:>8.2}",
                format!("{format:?}"),
                format!("{rows} x {cols}"),
                t_old * 1e3,
                t_new * 1e3,
                flop / t_old * 1e-9,
                flop / t_new * 1e-9,
                t_old / t_new,
            );
        }
    }
}
