//! The activations' 8-bit quantisation on AVX2, bit for bit the portable
//! [`crate::activation::quantize`] (which called libm's `roundf` per value).

use core::arch::x86_64::__m256;

use pulp::x86::V3;

use crate::activation::Q8Act;
use crate::blocks::BLOCK;

/// [`quantize`](crate::activation::quantize) bit for bit, eight values at
/// a time: the same `amax`, `d` and `id`, and each value's `(v * id)
/// .round() as i8` as LLVM lowers `round` (`trunc(y + copysign(0.5⁻, y))`,
/// 0.5⁻ the float below 0.5), after what `as i8` does first: NaN to 0, the
/// rest clamped to i8's range (rounding commutes with clamping to
/// integers).
#[inline(always)]
pub(crate) fn quantize(simd: V3, x: &[f32]) -> Vec<Q8Act> {
    let mut out = Vec::with_capacity(x.len() / BLOCK);
    let sign = simd.avx._mm256_set1_ps(-0.0);
    for c in x.chunks_exact(BLOCK) {
        let c: [f32; BLOCK] = c.try_into().expect("a block");
        let v: [__m256; 4] = pulp::cast(c);
        // `max_ps(a, m)` is `m` where `a` is NaN, as `f32::max` skips NaN.
        let mut m = simd.avx._mm256_setzero_ps();
        for v in v {
            m = simd
                .avx
                ._mm256_max_ps(simd.avx._mm256_andnot_ps(sign, v), m);
        }
        let m4 = simd.sse._mm_max_ps(
            simd.avx._mm256_castps256_ps128(m),
            simd.avx._mm256_extractf128_ps::<1>(m),
        );
        let m2 = simd.sse._mm_max_ps(m4, simd.sse._mm_movehl_ps(m4, m4));
        let m1 = simd.sse._mm_max_ss(m2, simd.sse3._mm_movehdup_ps(m2));
        let amax = simd.sse._mm_cvtss_f32(m1);
        let d = amax / 127.0;
        let id = simd.avx._mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        let half = simd
            .avx
            ._mm256_set1_ps(f32::from_bits(0.5f32.to_bits() - 1));
        let mut q = [simd.avx._mm256_setzero_si256(); 4];
        for (q, v) in q.iter_mut().zip(v) {
            let y = simd.avx._mm256_mul_ps(v, id);
            let y = simd.avx._mm256_and_ps(y, simd.avx._mm256_cmp_ps::<7>(y, y));
            let y = simd.avx._mm256_min_ps(
                simd.avx._mm256_max_ps(y, simd.avx._mm256_set1_ps(-128.0)),
                simd.avx._mm256_set1_ps(127.0),
            );
            let bias = simd.avx._mm256_or_ps(simd.avx._mm256_and_ps(y, sign), half);
            *q = simd
                .avx
                ._mm256_cvttps_epi32(simd.avx._mm256_add_ps(y, bias));
        }
        // Bytes in 128-bit lanes' order, put back in element order.
        let words = [
            simd.avx2._mm256_packs_epi32(q[0], q[1]),
            simd.avx2._mm256_packs_epi32(q[2], q[3]),
        ];
        let bytes = simd.avx2._mm256_packs_epi16(words[0], words[1]);
        let order = simd.avx._mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let qs: [i8; BLOCK] = pulp::cast(simd.avx2._mm256_permutevar8x32_epi32(bytes, order));
        let sums = simd.avx2._mm256_add_epi32(
            simd.avx2._mm256_add_epi32(q[0], q[1]),
            simd.avx2._mm256_add_epi32(q[2], q[3]),
        );
        let sums: [i32; 8] = pulp::cast(sums);
        let mut sum = 0i32;
        for s in sums {
            sum += s;
        }
        out.push(Q8Act {
            d,
            s: d * sum as f32,
            qs,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random values at several scales, and the edges: zeros, halves
    /// (rounded away from zero), NaN, infinities, blocks so small that `d`
    /// is subnormal (`1 / d` infinite) or zero.
    #[test]
    fn quantizes_as_the_portable_code() {
        let Some(simd) = V3::try_new() else {
            return;
        };
        let mut s = 7u64;
        let mut x: Vec<f32> = (0..BLOCK * 64)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let scale = [1e-3, 1.0, 37.0, 1e30][i / BLOCK % 4];
                ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale
            })
            .collect();
        let edges: [&[f32]; 8] = [
            &[0.0],
            &[-0.0, 0.0],
            &[127.0, 0.5, -0.5, 1.5, -2.5, 63.5],
            &[1.0, f32::NAN, -1.0],
            &[f32::INFINITY, 1.0],
            &[f32::NEG_INFINITY, f32::NAN, 3.0],
            &[1e-37, -3e-38, 5e-39],
            &[1e-45, -1e-45],
        ];
        for edge in edges {
            x.extend((0..BLOCK).map(|i| edge[i % edge.len()]));
        }
        let bits = |q: Vec<Q8Act>| -> Vec<(u32, u32, [i8; BLOCK])> {
            q.iter()
                .map(|b| (b.d.to_bits(), b.s.to_bits(), b.qs))
                .collect()
        };
        let want = bits(crate::activation::quantize(&x));
        let got = bits(pulp::Simd::vectorize(simd, Quantize { simd, x: &x }));
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "block {k}: {:?}", &x[k * BLOCK..(k + 1) * BLOCK]);
        }
    }

    struct Quantize<'a> {
        simd: V3,
        x: &'a [f32],
    }

    impl pulp::WithSimd for Quantize<'_> {
        type Output = Vec<Q8Act>;

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<Q8Act> {
            quantize(self.simd, self.x)
        }
    }
}
