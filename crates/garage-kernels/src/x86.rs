//! The AVX2 (+FMA) dot products, llama.cpp's `ggml_vec_dot_q4_1_q8_1` and
//! `ggml_vec_dot_q8_0_q8_0` in safe Rust: `pulp::x86::V3` is the proof that
//! the CPU has the features, checked once at run time.
//!
//! `maddubs` saturates at i16, which these inputs never reach: a pair of
//! products is at most 2·15·127 (Q4) or 2·128·127 (Q8, `|a| ≤ 127`).

use core::arch::x86_64::{__m128i, __m256, __m256i};

use pulp::x86::V3;

use crate::activation::Q8Act;
use crate::blocks::{Q4Block, Q8Block};
use crate::dot::RowDot;

/// Q4 × Q8 on AVX2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q4Avx2(pub V3);

/// Q8 × Q8 on AVX2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q8Avx2(pub V3);

/// The 32 nibbles of a Q4 block as bytes, in element order.
#[inline(always)]
fn nibbles(simd: V3, qs: [u8; 16]) -> __m256i {
    let lo: __m128i = pulp::cast(qs);
    let hi = simd.sse2._mm_srli_epi16::<4>(lo);
    let both = simd.avx._mm256_set_m128i(hi, lo);
    simd.avx2
        ._mm256_and_si256(both, simd.avx._mm256_set1_epi8(0x0F))
}

/// Σ x·y in eight f32 lanes for unsigned `x`, signed `y`.
#[inline(always)]
fn dot_u8_i8(simd: V3, x: __m256i, y: __m256i) -> __m256 {
    let pairs = simd.avx2._mm256_maddubs_epi16(x, y);
    let quads = simd
        .avx2
        ._mm256_madd_epi16(pairs, simd.avx._mm256_set1_epi16(1));
    simd.avx._mm256_cvtepi32_ps(quads)
}

#[inline(always)]
fn hsum(simd: V3, v: __m256) -> f32 {
    let s = simd.sse._mm_add_ps(
        simd.avx._mm256_castps256_ps128(v),
        simd.avx._mm256_extractf128_ps::<1>(v),
    );
    let s = simd.sse._mm_add_ps(s, simd.sse._mm_movehl_ps(s, s));
    let s = simd.sse._mm_add_ss(s, simd.sse3._mm_movehdup_ps(s));
    simd.sse._mm_cvtss_f32(s)
}

/// One block's products in eight f32 lanes and the scale they take.
trait Avx2Block {
    fn products(&self, simd: V3, a: &Q8Act) -> (__m256, f32);
}

impl Avx2Block for Q4Block {
    #[inline(always)]
    fn products(&self, simd: V3, a: &Q8Act) -> (__m256, f32) {
        let y: __m256i = pulp::cast(a.qs);
        (dot_u8_i8(simd, nibbles(simd, self.qs), y), self.d() * a.d)
    }
}

impl Avx2Block for Q8Block {
    #[inline(always)]
    fn products(&self, simd: V3, a: &Q8Act) -> (__m256, f32) {
        let x: __m256i = pulp::cast(self.qs);
        let y: __m256i = pulp::cast(a.qs);
        // |x| · (y · sign x): the unsigned × signed form maddubs takes.
        let ax = simd.avx2._mm256_sign_epi8(x, x);
        let sy = simd.avx2._mm256_sign_epi8(y, x);
        (dot_u8_i8(simd, ax, sy), self.d() * a.d)
    }
}

/// Σ over blocks of scale · products, with two accumulators taking
/// alternate blocks so consecutive FMAs do not wait on each other.
#[inline(always)]
fn accumulate<W: Avx2Block>(simd: V3, w: &[W], a: &[Q8Act]) -> f32 {
    let mut acc = [simd.avx._mm256_setzero_ps(); 2];
    let mut pairs_w = w.chunks_exact(2);
    let mut pairs_a = a.chunks_exact(2);
    for (pw, pa) in (&mut pairs_w).zip(&mut pairs_a) {
        for k in 0..2 {
            let (v, scale) = pw[k].products(simd, &pa[k]);
            acc[k] = simd
                .fma
                ._mm256_fmadd_ps(simd.avx._mm256_set1_ps(scale), v, acc[k]);
        }
    }
    for (bw, ba) in pairs_w.remainder().iter().zip(pairs_a.remainder()) {
        let (v, scale) = bw.products(simd, ba);
        acc[0] = simd
            .fma
            ._mm256_fmadd_ps(simd.avx._mm256_set1_ps(scale), v, acc[0]);
    }
    hsum(simd, simd.avx._mm256_add_ps(acc[0], acc[1]))
}

impl RowDot for Q4Avx2 {
    type Weight = Q4Block;

    #[inline(always)]
    fn dot(self, w: &[Q4Block], a: &[Q8Act]) -> f32 {
        let mins: f32 = w.iter().zip(a).map(|(b, ab)| b.m() * ab.s).sum();
        accumulate(self.0, w, a) + mins
    }
}

impl RowDot for Q8Avx2 {
    type Weight = Q8Block;

    #[inline(always)]
    fn dot(self, w: &[Q8Block], a: &[Q8Act]) -> f32 {
        accumulate(self.0, w, a)
    }
}
