//! The fused causal attention (`causal_attention`) against the path it
//! replaces, written plainly in Rust on one thread: the score matrix
//! materialised per KV head (`[group * new, past + new]`), a causal mask
//! of −∞ added to it, a softmax over each row, then the product with the
//! values, as the model's burn tensor ops compute it; and a per-key loop,
//! also on one thread: online softmax one query row and one key at a time
//! (what decode would do without the fused kernel). The fused kernel runs
//! on one thread too, for a per-core comparison, and on all. SmolLM2-135M
//! heads (9 query, 3 KV, 64 values); prefill of 128, 512 and 1,024 tokens
//! on an empty cache, and decode of one token after 1,024. Run with
//! `cargo bench -p garage-kernels --bench attention`; `ATTN_SAMPLES` sets
//! the samples per case (default 7). The kernels take turns sample by
//! sample, so that a busy machine slows all alike; each sample repeats the
//! call for at least 50 ms; the table gives medians.

use std::time::{Duration, Instant};

use garage_kernels::{causal_attention, AttentionShape};

#[path = "../tests/support/mod.rs"]
mod support;
use support::floats;

/// The materialised path: per KV head, `q` folded to `[group * new, hd]`,
/// scores `[group * new, keys]`, mask, softmax, times `v`, unfolded into
/// the token-major output.
fn naive(s: &AttentionShape, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f32> {
    let (hd, keys, group) = (s.head_dim, s.past + s.new, s.heads / s.kv_heads);
    let rows = group * s.new;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0.0; s.new * s.heads * hd];
    for g in 0..s.kv_heads {
        let k = &k[g * keys * hd..][..keys * hd];
        let v = &v[g * keys * hd..][..keys * hd];
        // Row h * new + t: query head g * group + h, token t.
        let folded: Vec<f32> = (0..rows)
            .flat_map(|r| {
                let (h, t) = (r / s.new, r % s.new);
                q[(t * s.heads + g * group + h) * hd..][..hd]
                    .iter()
                    .copied()
            })
            .collect();
        let mut scores = vec![0.0f32; rows * keys];
        for (qr, sr) in folded.chunks_exact(hd).zip(scores.chunks_exact_mut(keys)) {
            for (kr, x) in k.chunks_exact(hd).zip(sr.iter_mut()) {
                *x = qr.iter().zip(kr).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
        }
        let mask: Vec<f32> = (0..rows * keys)
            .map(|i| {
                if i % keys > s.past + (i / keys) % s.new {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        for (x, m) in scores.iter_mut().zip(&mask) {
            *x += m;
        }
        for row in scores.chunks_exact_mut(keys) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for x in row.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            for x in row.iter_mut() {
                *x /= sum;
            }
        }
        let mut product = vec![0.0f32; rows * hd];
        for (pr, o) in scores.chunks_exact(keys).zip(product.chunks_exact_mut(hd)) {
            for (p, vr) in pr.iter().zip(v.chunks_exact(hd)) {
                for (o, x) in o.iter_mut().zip(vr) {
                    *o += p * x;
                }
            }
        }
        for (r, o) in product.chunks_exact(hd).enumerate() {
            let (h, t) = (r / s.new, r % s.new);
            out[(t * s.heads + g * group + h) * hd..][..hd].copy_from_slice(o);
        }
    }
    out
}

/// Online softmax per query row, key after key, without tiles.
fn per_key(s: &AttentionShape, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f32> {
    let (hd, keys, group) = (s.head_dim, s.past + s.new, s.heads / s.kv_heads);
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0.0; s.new * s.heads * hd];
    for (t, (qt, ot)) in q
        .chunks_exact(s.heads * hd)
        .zip(out.chunks_exact_mut(s.heads * hd))
        .enumerate()
    {
        for (h, (qr, o)) in qt.chunks_exact(hd).zip(ot.chunks_exact_mut(hd)).enumerate() {
            let at = (h / group) * keys * hd;
            let (k, v) = (&k[at..][..keys * hd], &v[at..][..keys * hd]);
            let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0);
            for (kr, vr) in k
                .chunks_exact(hd)
                .zip(v.chunks_exact(hd))
                .take(s.past + t + 1)
            {
                let score = qr.iter().zip(kr).map(|(a, b)| a * b).sum::<f32>() * scale;
                if score > max {
                    let rescale = (max - score).exp();
                    o.iter_mut().for_each(|x| *x *= rescale);
                    sum *= rescale;
                    max = score;
                }
                let p = (score - max).exp();
                sum += p;
                for (x, y) in o.iter_mut().zip(vr) {
                    *x += p * y;
                }
            }
            o.iter_mut().for_each(|x| *x /= sum);
        }
    }
    out
}

/// Seconds per call of `f`, over `calls` calls.
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

/// Median seconds per call of each of `kernels`.
fn time<const N: usize>(kernels: [&dyn Fn() -> Vec<f32>; N], samples: usize) -> [f64; N] {
    let at_least = Duration::from_millis(50).as_secs_f64();
    let calls = kernels.map(|f| (at_least / sample(1, f)).ceil() as usize);
    let mut times = [(); N].map(|_| Vec::new());
    for _ in 0..samples {
        for ((t, f), calls) in times.iter_mut().zip(kernels).zip(calls) {
            t.push(sample(calls, f));
        }
    }
    times.map(median)
}

/// The largest difference between `a` and `b`.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// One row of the table: `new` tokens after `past`.
fn case(past: usize, new: usize, samples: usize, one_thread: &rayon::ThreadPool) {
    let s = AttentionShape {
        heads: 9,
        kv_heads: 3,
        head_dim: 64,
        past,
        new,
    };
    let kv = s.kv_heads * (past + new) * s.head_dim;
    let (q, k, v) = (
        floats(new * s.heads * s.head_dim, 1),
        floats(kv, 2),
        floats(kv, 3),
    );
    let naive = || naive(&s, &q, &k, &v);
    let per_key = || per_key(&s, &q, &k, &v);
    let fused = || causal_attention(&s, &q, &k, &v).expect("shape fits");
    let fused_1 = || one_thread.install(fused);
    let want = naive();
    for (name, got) in [("per-key", per_key()), ("fused", fused())] {
        let err = max_diff(&want, &got);
        assert!(err < 1e-4, "{name} differs from naive by {err}");
    }
    let [t_naive, t_per_key, t_fused_1, t_fused] =
        time([&naive, &per_key, &fused_1, &fused], samples);
    println!(
        "| {past} | {new} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {:.1} |",
        t_naive * 1e3,
        t_per_key * 1e3,
        t_fused_1 * 1e3,
        t_fused * 1e3,
        t_naive / t_fused_1,
        t_naive / t_fused,
        t_per_key / t_fused_1,
    );
}

fn main() {
    let samples: usize = std::env::var("ATTN_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let threads = rayon::current_num_threads();
    println!("SmolLM2-135M heads (9 q, 3 kv, hd 64); {samples} samples per case, medians");
    println!();
    println!(
        "| past | new | naive ms (1 thread) | per-key ms (1 thread) | fused ms (1 thread) \
         | fused ms ({threads} threads) | naive ÷ fused (1 thread) | naive ÷ fused ({threads} threads) \
         | per-key ÷ fused (1 thread) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (past, new) in [(0, 128), (0, 512), (0, 1024), (1024, 1)] {
        case(past, new, samples, &one_thread);
    }
}
