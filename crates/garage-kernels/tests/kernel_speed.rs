//! Speed of the kernels on SmolLM2-135M's matrix shapes. Ignored by
//! default; run with
//! `cargo test -p garage-kernels --test kernel_speed -- --ignored --nocapture`.

mod support;

use std::time::Instant;

use garage_kernels::{BlockFormat, QuantMatrix};
use support::{bytes, matrix};

/// A whole decode step's matmuls on 30 distinct layers' matrices (111 MB,
/// as in the model: nothing stays in cache between tokens).
#[test]
#[ignore = "benchmark; run explicitly"]
fn smollm2_decode_step() {
    let layer = [
        (BlockFormat::Q4_1, 960, 576),
        (BlockFormat::Q4_1, 576, 576),
        (BlockFormat::Q4_1, 3072, 576),
        (BlockFormat::Q4_1, 576, 1536),
    ];
    let mut mats: Vec<QuantMatrix> = (0..30)
        .flat_map(|_| layer.iter().map(|&(f, r, c)| matrix(f, r, c)))
        .collect();
    mats.push(matrix(BlockFormat::Q8_0, 49152, 576));
    let bytes: usize = mats.iter().map(QuantMatrix::byte_len).sum();
    let xs: Vec<Vec<f32>> = mats
        .iter()
        .map(|m| (0..m.cols()).map(|i| (i % 17) as f32 / 8.0 - 1.0).collect())
        .collect();
    let steps = 30;
    let start = Instant::now();
    for _ in 0..steps {
        for (m, x) in mats.iter().zip(&xs) {
            std::hint::black_box(m.matmul(x));
        }
    }
    let per = start.elapsed().as_secs_f64() / steps as f64;
    println!(
        "decode step, {:.0} MB of weights: {:.2} ms, {:.1} GB/s",
        bytes as f64 * 1e-6,
        per * 1e3,
        bytes as f64 / per * 1e-9
    );
}

#[test]
#[ignore = "benchmark; run explicitly"]
fn smollm2_shapes() {
    let shapes = [
        ("qkv", BlockFormat::Q4_1, 960, 576),
        ("o", BlockFormat::Q4_1, 576, 576),
        ("gate_up", BlockFormat::Q4_1, 3072, 576),
        ("down", BlockFormat::Q4_1, 576, 1536),
        ("head", BlockFormat::Q8_0, 49152, 576),
    ];
    for n in [1usize, 8] {
        {
            let mut total = 0.0;
            for (name, format, rows, cols) in shapes {
                let w = matrix(format, rows, cols);
                let x: Vec<f32> = bytes(n * cols, 3)
                    .iter()
                    .map(|&b| f32::from(b) / 128.0 - 1.0)
                    .collect();
                let reps = if name == "head" { 20 } else { 30 * 20 };
                let start = Instant::now();
                for _ in 0..reps {
                    std::hint::black_box(w.matmul(&x));
                }
                let per = start.elapsed().as_secs_f64() / reps as f64;
                let calls = if name == "head" { 1.0 } else { 30.0 };
                total += per * calls;
                println!(
                    "n={n} {name} {rows}x{cols} {format:?}: {:.1} µs, {:.1} GB/s",
                    per * 1e6,
                    w.byte_len() as f64 / per * 1e-9
                );
            }
            println!("n={n}: one decode step's matmuls: {:.2} ms", total * 1e3);
        }
    }
}
