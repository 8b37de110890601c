//! The attention kernel's lanes on AVX2 and FMA: `pulp::x86::V3` is the
//! proof that the CPU has them, checked once per call. `exp` is Cephes'
//! `expf` (a degree-5 polynomial on `x - n ln 2`, scaled by `2^n` built in
//! the exponent bits), within 2 ulp of libm's.

use core::arch::x86_64::{
    __m128, __m256, _CMP_GE_OQ, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT,
};

use pulp::x86::V3;

use super::lanes::{Lanes, LANES};

/// The lanes as a `__m256`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx2(pub V3);

/// Below this `exp` is 0: `e^-87` is about 2^-125.5, near the smallest
/// normal f32, which `2^n` in the exponent bits cannot go under.
const EXP_FLOOR: f32 = -87.0;

/// `ln 2` in two parts, so that `x - n ln 2` loses no bits for `|n| ≤ 126`.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// Cephes' `p` in `e^r ≈ 1 + r + r² p(r)` on `|r| ≤ ln 2 / 2`, highest
/// power first.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

impl Avx2 {
    /// The low and high halves of `v`.
    #[inline(always)]
    fn halves(self, v: __m256) -> (__m128, __m128) {
        let avx = self.0.avx;
        (
            avx._mm256_castps256_ps128(v),
            avx._mm256_extractf128_ps::<1>(v),
        )
    }
}

impl Lanes for Avx2 {
    type V = __m256;

    #[inline(always)]
    fn zero(self) -> __m256 {
        self.0.avx._mm256_setzero_ps()
    }

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        self.0.avx._mm256_set1_ps(x)
    }

    #[inline(always)]
    fn load(self, x: &[f32; LANES]) -> __m256 {
        pulp::cast(*x)
    }

    #[inline(always)]
    fn store(self, v: __m256, to: &mut [f32; LANES]) {
        *to = pulp::cast(v);
    }

    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        self.0.avx._mm256_mul_ps(a, b)
    }

    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        self.0.avx._mm256_add_ps(a, b)
    }

    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        self.0.avx._mm256_sub_ps(a, b)
    }

    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        self.0.avx._mm256_max_ps(a, b)
    }

    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, acc: __m256) -> __m256 {
        self.0.fma._mm256_fmadd_ps(a, b, acc)
    }

    #[inline(always)]
    fn exp(self, x: __m256) -> __m256 {
        let (avx, avx2, fma) = (self.0.avx, self.0.avx2, self.0.fma);
        let floor = self.splat(EXP_FLOOR);
        let xc = avx._mm256_max_ps(x, floor);
        let n = avx._mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            self.mul(xc, self.splat(std::f32::consts::LOG2_E)),
        );
        let r = fma._mm256_fnmadd_ps(n, self.splat(LN2_HI), xc);
        let r = fma._mm256_fnmadd_ps(n, self.splat(LN2_LO), r);
        let mut p = self.splat(EXP_POLY[0]);
        for c in &EXP_POLY[1..] {
            p = self.mul_add(p, r, self.splat(*c));
        }
        let y = self.mul_add(p, self.mul(r, r), self.add(r, self.splat(1.0)));
        let biased = avx2._mm256_add_epi32(avx._mm256_cvtps_epi32(n), avx._mm256_set1_epi32(127));
        let scale = avx._mm256_castsi256_ps(avx2._mm256_slli_epi32::<23>(biased));
        let keep = avx._mm256_cmp_ps::<_CMP_GE_OQ>(x, floor);
        avx._mm256_and_ps(self.mul(y, scale), keep)
    }

    #[inline(always)]
    fn max_lane(self, v: __m256) -> f32 {
        let sse = self.0.sse;
        let (lo, hi) = self.halves(v);
        let m = sse._mm_max_ps(lo, hi);
        let m = sse._mm_max_ps(m, sse._mm_movehl_ps(m, m));
        let m = sse._mm_max_ss(m, sse._mm_shuffle_ps::<0b01>(m, m));
        sse._mm_cvtss_f32(m)
    }

    #[inline(always)]
    fn sum(self, v: __m256) -> f32 {
        let sse = self.0.sse;
        let (lo, hi) = self.halves(v);
        let s = sse._mm_add_ps(lo, hi);
        let s = sse._mm_add_ps(s, sse._mm_movehl_ps(s, s));
        let s = sse._mm_add_ss(s, self.0.sse3._mm_movehdup_ps(s));
        sse._mm_cvtss_f32(s)
    }

    #[inline(always)]
    fn sums4(self, v: [__m256; 4]) -> [f32; 4] {
        // `hadd` twice leaves vector `i`'s sums over each half in lane `i`
        // of that half; the halves' sum is then the answer.
        let avx = self.0.avx;
        let ab = avx._mm256_hadd_ps(v[0], v[1]);
        let cd = avx._mm256_hadd_ps(v[2], v[3]);
        let abcd = avx._mm256_hadd_ps(ab, cd);
        let (lo, hi) = self.halves(abcd);
        pulp::cast(self.0.sse._mm_add_ps(lo, hi))
    }
}
