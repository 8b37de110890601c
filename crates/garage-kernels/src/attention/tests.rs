//! The fused kernel, AVX2 and portable, against attention written out:
//! scores materialised, the causal mask explicit, softmax in f64.

use super::kernel::Block;
use super::lanes::Portable;
use super::*;

/// Deterministic values in [-1, 1) (xorshift).
fn floats(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Attention the plain way, in f64.
fn reference(shape: &AttentionShape, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f32> {
    let AttentionShape {
        heads,
        kv_heads,
        head_dim: hd,
        past,
        new,
    } = *shape;
    let keys = past + new;
    let group = heads / kv_heads;
    let mut out = vec![0.0; new * heads * hd];
    for h in 0..heads {
        let kv = h / group;
        let key = |j: usize| &k[(kv * keys + j) * hd..][..hd];
        let value = |j: usize| &v[(kv * keys + j) * hd..][..hd];
        for t in 0..new {
            let query = &q[(t * heads + h) * hd..][..hd];
            let scores: Vec<f64> = (0..keys)
                .map(|j| {
                    let dot: f64 = query
                        .iter()
                        .zip(key(j))
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    if j > past + t {
                        f64::NEG_INFINITY
                    } else {
                        dot / (hd as f64).sqrt()
                    }
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = exps.iter().sum();
            for d in 0..hd {
                let x: f64 = exps
                    .iter()
                    .enumerate()
                    .map(|(j, e)| e * f64::from(value(j)[d]))
                    .sum();
                out[(t * heads + h) * hd + d] = (x / total) as f32;
            }
        }
    }
    out
}

/// The largest difference over the largest output magnitude.
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

fn shape(
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    past: usize,
    new: usize,
) -> AttentionShape {
    AttentionShape {
        heads,
        kv_heads,
        head_dim,
        past,
        new,
    }
}

/// The inputs of a shape; `spread` scales the queries, to test large scores.
fn inputs(s: &AttentionShape, spread: f32) -> [Vec<f32>; 3] {
    let kv = s.kv_heads * (s.past + s.new) * s.head_dim;
    let q = floats(s.new * s.heads * s.head_dim, 1)
        .iter()
        .map(|x| x * spread)
        .collect();
    [q, floats(kv, 2), floats(kv, 3)]
}

fn check(s: AttentionShape, spread: f32) {
    let [q, k, v] = inputs(&s, spread);
    let want = reference(&s, &q, &k, &v);
    let fast = causal_attention(&s, &q, &k, &v).expect("shape fits");
    let portable =
        attention_with(&s, [&q, &k, &v], |b: Block<'_>| b.compute(Portable)).expect("shape fits");
    let apart = relative_error(&fast, &portable);
    assert!(
        apart <= 1e-5,
        "kernels differ on {s:?}: relative error {apart}"
    );
    for (name, got) in [("dispatched", fast), ("portable", portable)] {
        let err = relative_error(&got, &want);
        assert!(err <= 1e-4, "{name} kernel on {s:?}: relative error {err}");
    }
}

#[test]
fn decode_on_an_empty_cache() {
    check(shape(9, 3, 64, 0, 1), 1.0);
}

#[test]
fn decode_after_a_hundred_tokens() {
    check(shape(9, 3, 64, 100, 1), 1.0);
}

#[test]
fn short_prompt() {
    check(shape(9, 3, 64, 0, 7), 1.0);
}

#[test]
fn prompt_after_a_cache() {
    check(shape(9, 3, 64, 33, 64), 1.0);
}

#[test]
fn smollm2_prefill_across_many_tiles() {
    check(shape(9, 3, 64, 0, 300), 1.0);
}

#[test]
fn llama_8b_heads() {
    check(shape(32, 8, 128, 33, 64), 1.0);
}

#[test]
fn no_grouped_queries() {
    check(shape(4, 4, 64, 10, 70), 1.0);
}

#[test]
fn head_dim_not_a_multiple_of_the_lanes() {
    check(shape(6, 2, 20, 5, 13), 1.0);
}

#[test]
fn large_scores_rescale_the_running_sums() {
    check(shape(2, 1, 64, 70, 90), 30.0);
}

#[test]
fn no_new_tokens_gives_nothing() {
    let s = shape(9, 3, 64, 5, 0);
    let [q, k, v] = inputs(&s, 1.0);
    assert_eq!(causal_attention(&s, &q, &k, &v), Ok(vec![]));
}

#[test]
fn wrong_lengths_are_errors() {
    let s = shape(9, 3, 64, 4, 3);
    let [q, k, v] = inputs(&s, 1.0);
    let short = &v[1..];
    assert_eq!(
        causal_attention(&s, &q, &k, short),
        Err(AttentionError::Length {
            input: "v",
            expected: 3 * 7 * 64,
            found: 3 * 7 * 64 - 1
        })
    );
    assert_eq!(
        causal_attention(&s, &q[..64], &k, &v),
        Err(AttentionError::Length {
            input: "q",
            expected: 3 * 9 * 64,
            found: 64
        })
    );
}

#[test]
fn bad_shapes_are_errors() {
    let cases = [
        (
            shape(9, 2, 64, 0, 1),
            AttentionError::Heads {
                heads: 9,
                kv_heads: 2,
            },
        ),
        (
            shape(9, 0, 64, 0, 1),
            AttentionError::Heads {
                heads: 9,
                kv_heads: 0,
            },
        ),
        (shape(9, 3, 0, 0, 1), AttentionError::HeadDim),
        (shape(9, 3, usize::MAX, 0, 1), AttentionError::Overflow),
    ];
    for (s, err) in cases {
        assert_eq!(causal_attention(&s, &[], &[], &[]), Err(err), "{s:?}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_exp_is_within_two_ulp_of_libm() {
    use super::lanes::Lanes;

    let Some(simd) = pulp::x86::V3::try_new() else {
        return;
    };
    let l = super::avx2::Avx2(simd);
    let xs: Vec<f32> = (0..80_000).map(|i| -(i as f32) / 1000.0).collect();
    for x in xs.chunks_exact(8) {
        let got: [f32; 8] = pulp::cast(l.exp(l.load(x.try_into().expect("eight"))));
        for (g, x) in got.iter().zip(x) {
            let want = x.exp();
            let ulps = (g.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(ulps <= 2, "exp({x}) = {g}, libm {want}");
        }
    }
    let zero: [f32; 8] = pulp::cast(l.exp(l.splat(f32::NEG_INFINITY)));
    assert_eq!(zero, [0.0; 8]);
}
