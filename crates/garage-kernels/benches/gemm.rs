//! The blocked kernel (`matmul`: panels of activation rows against bands
//! of unpacked weight rows) against the two it replaced: the 4-row tile
//! (`matmul_tile4`: each weight block unpacked once per four activation
//! rows, weight row after weight row) and the one-by-one kernel
//! (`matmul_one_by_one`: once per activation row), on SmolLM2-135M's
//! shapes, for decode (n = 1) and prefill batches. All three share the
//! activations' quantisation and the output's layout, so the columns
//! differ only in how weight rows meet activation rows. Run with
//! `cargo bench -p garage-kernels --bench gemm [-- NAME...]` (only the
//! matrices whose names contain a NAME); `GEMM_SAMPLES` sets the samples
//! per case (default 7). The three kernels take turns sample by sample,
//! so that a busy machine slows all alike; each sample repeats the call
//! for at least 20 ms; the table gives medians.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use garage_kernels::BlockFormat;
use support::{bytes, matrix};

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
        "{:<9} {:<5} {:>12} {:>4} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "matrix",
        "fmt",
        "out x in",
        "n",
        "old ms",
        "tile4 ms",
        "new ms",
        "old GF/s",
        "t4 GF/s",
        "new GF/s",
        "new/old",
        "new/tile4"
    );
    for (name, format, rows, cols) in shapes {
        if !names.is_empty() && !names.iter().any(|n| name.contains(n.as_str())) {
            continue;
        }
        let w = matrix(format, rows, cols);
        for n in [1usize, 8, 64, 256, 512] {
            let x: Vec<f32> = bytes(n * cols, 3)
                .iter()
                .map(|&b| f32::from(b) / 128.0 - 1.0)
                .collect();
            let old = || w.matmul_one_by_one(&x);
            let tile4 = || w.matmul_tile4(&x);
            let new = || w.matmul(&x);
            // Same bits, so the comparison is between equals.
            let bits = |f: &dyn Fn() -> Vec<f32>| -> Vec<u32> {
                f().into_iter().map(f32::to_bits).collect()
            };
            let want = bits(&new);
            assert!(bits(&old) == want && bits(&tile4) == want);
            let kernels: [&dyn Fn() -> Vec<f32>; 3] = [&old, &tile4, &new];
            // Calls per sample from the slowest kernel's time.
            let once = sample(1, &old);
            let calls = (at_least.as_secs_f64() / once).ceil().max(1.0) as usize;
            let mut times = [(); 3].map(|_| Vec::new());
            for _ in 0..samples {
                for (t, f) in times.iter_mut().zip(kernels) {
                    t.push(sample(calls, f));
                }
            }
            let [t_old, t_tile4, t_new] = times.map(median);
            let flop = 2.0 * (n * rows * cols) as f64;
            println!(
                "{name:<9} {:<5} {:>12} {n:>4} {:>9.3} {:>9.3} {:>9.3} {:>8.1} {:>8.1} {:>8.1} {:>8.2} {:>10.2}",
                format!("{format:?}"),
                format!("{rows} x {cols}"),
                t_old * 1e3,
                t_tile4 * 1e3,
                t_new * 1e3,
                flop / t_old * 1e-9,
                flop / t_tile4 * 1e-9,
                flop / t_new * 1e-9,
                t_old / t_new,
                t_tile4 / t_new,
            );
        }
    }
}
