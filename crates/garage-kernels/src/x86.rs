//! The AVX2 (+FMA) dot products, llama.cpp's `ggml_vec_dot_q4_1_q8_1` and
//! `ggml_vec_dot_q8_0_q8_0` in safe Rust: `pulp::x86::V3` is the proof that
//! the CPU has the features, checked once at run time. The tiled form
//! unpacks a weight block once (nibbles to bytes, or Q8's signs) and keeps
//! two accumulators for each of its activation rows: eight registers for
//! four rows.
//!
//! `maddubs` saturates at i16, which these inputs never reach: a pair of
//! products is at most 2·15·127 (Q4) or 2·128·127 (Q8, `|a| ≤ 127`).

use core::arch::x86_64::{__m128, __m128i, __m256, __m256i};

use pulp::x86::V3;

use crate::activation::{Q8Act, Tile, TILE};
use crate::blocks::{Q4Block, Q8Block};
use crate::dot::{RowDot, SUM_START};

// The tile kernel holds a row's scale or minimum in each of a `__m128`'s
// four lanes.
const _: () = assert!(TILE == 4);

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

/// A block as the kernels read it: its weights prepared once (`lanes`),
/// then multiplied by one or several activation blocks (`products`).
trait Avx2Block {
    type Lanes: Copy;
    fn lanes(&self, simd: V3) -> Self::Lanes;
    /// Σ w·a in eight f32 lanes.
    fn products(simd: V3, w: Self::Lanes, a: &Q8Act) -> __m256;
    fn scale(&self) -> f32;
    /// `m` in `d * q + m`, for the formats that have one.
    fn min(&self) -> Option<f32>;
}

impl Avx2Block for Q4Block {
    /// The nibbles as bytes.
    type Lanes = __m256i;

    #[inline(always)]
    fn lanes(&self, simd: V3) -> __m256i {
        nibbles(simd, self.qs)
    }

    #[inline(always)]
    fn products(simd: V3, w: __m256i, a: &Q8Act) -> __m256 {
        dot_u8_i8(simd, w, pulp::cast(a.qs))
    }

    #[inline(always)]
    fn scale(&self) -> f32 {
        self.d()
    }

    #[inline(always)]
    fn min(&self) -> Option<f32> {
        Some(self.m())
    }
}

impl Avx2Block for Q8Block {
    /// `|x|` and `x`, whose sign goes to the activations.
    type Lanes = (__m256i, __m256i);

    #[inline(always)]
    fn lanes(&self, simd: V3) -> (__m256i, __m256i) {
        let x: __m256i = pulp::cast(self.qs);
        (simd.avx2._mm256_sign_epi8(x, x), x)
    }

    #[inline(always)]
    fn products(simd: V3, (ax, x): (__m256i, __m256i), a: &Q8Act) -> __m256 {
        // |x| · (y · sign x): the unsigned × signed form maddubs takes.
        let sy = simd.avx2._mm256_sign_epi8(pulp::cast(a.qs), x);
        dot_u8_i8(simd, ax, sy)
    }

    #[inline(always)]
    fn scale(&self) -> f32 {
        self.d()
    }

    #[inline(always)]
    fn min(&self) -> Option<f32> {
        None
    }
}

/// `acc + scale · v`.
#[inline(always)]
fn add_scaled(simd: V3, acc: __m256, scale: f32, v: __m256) -> __m256 {
    simd.fma
        ._mm256_fmadd_ps(simd.avx._mm256_set1_ps(scale), v, acc)
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
            let v = W::products(simd, pw[k].lanes(simd), &pa[k]);
            acc[k] = add_scaled(simd, acc[k], pw[k].scale() * pa[k].d, v);
        }
    }
    for (bw, ba) in pairs_w.remainder().iter().zip(pairs_a.remainder()) {
        let v = W::products(simd, bw.lanes(simd), ba);
        acc[0] = add_scaled(simd, acc[0], bw.scale() * ba.d, v);
    }
    hsum(simd, simd.avx._mm256_add_ps(acc[0], acc[1]))
}

/// The tile kernel's running sums: two accumulators per row, as in
/// [`accumulate`], and the minimums' terms of the four rows in one vector.
struct TileSums {
    acc: [[__m256; 2]; TILE],
    mins: __m128,
}

/// A [`Tile`] cut to a weight row's blocks, so that indexing it by block
/// needs no bounds check.
#[derive(Clone, Copy)]
struct TileView<'t> {
    rows: [&'t [Q8Act]; TILE],
    d: &'t [[f32; TILE]],
    s: &'t [[f32; TILE]],
}

/// Block `k` of a weight row, `b`, against block `k` of each of the
/// tile's rows; accumulator `j` of each row takes the products.
#[inline(always)]
fn tile_step<W: Avx2Block>(
    simd: V3,
    b: &W,
    (k, j): (usize, usize),
    a: TileView<'_>,
    sums: &mut TileSums,
) {
    let lanes = b.lanes(simd);
    // Each row's scale `d_w * d_a` in all eight lanes of its own vector:
    // one multiplication for the four rows, then four in-lane shuffles.
    let d: __m128 = pulp::cast(a.d[k]);
    let scales = simd.avx._mm256_mul_ps(
        simd.avx._mm256_set1_ps(b.scale()),
        simd.avx._mm256_broadcast_ps(&d),
    );
    let scales = [
        simd.avx._mm256_permute_ps::<0x00>(scales),
        simd.avx._mm256_permute_ps::<0x55>(scales),
        simd.avx._mm256_permute_ps::<0xAA>(scales),
        simd.avx._mm256_permute_ps::<0xFF>(scales),
    ];
    for ((acc, row), scale) in sums.acc.iter_mut().zip(a.rows).zip(scales) {
        let v = W::products(simd, lanes, &row[k]);
        acc[j] = simd.fma._mm256_fmadd_ps(scale, v, acc[j]);
    }
    if let Some(m) = b.min() {
        let s: __m128 = pulp::cast(a.s[k]);
        let terms = simd.sse._mm_mul_ps(simd.sse._mm_set1_ps(m), s);
        sums.mins = simd.sse._mm_add_ps(sums.mins, terms);
    }
}

/// The dots of `w` with the tile's rows, each block prepared once and met
/// by every row, each row with the arithmetic of `dot`: two accumulators
/// taking the same blocks in the same order as [`accumulate`]'s, the
/// minimums' terms summed in block order as `Q4Avx2::dot` sums them (here
/// four rows in one vector, interleaved with the products so that the
/// additions' latency hides behind them).
#[inline(always)]
fn accumulate_tile<W: Avx2Block>(simd: V3, w: &[W], a: &Tile<'_>) -> [f32; TILE] {
    let blocks = w.len();
    let a = TileView {
        rows: a.rows.map(|r| &r[..blocks]),
        d: &a.d[..blocks],
        s: &a.s[..blocks],
    };
    let mut sums = TileSums {
        acc: [[simd.avx._mm256_setzero_ps(); 2]; TILE],
        mins: simd.sse._mm_set1_ps(SUM_START),
    };
    let mut pairs = w.chunks_exact(2);
    for (p, pw) in (&mut pairs).enumerate() {
        tile_step(simd, &pw[0], (2 * p, 0), a, &mut sums);
        tile_step(simd, &pw[1], (2 * p + 1, 1), a, &mut sums);
    }
    if let [b] = pairs.remainder() {
        tile_step(simd, b, (blocks - 1, 0), a, &mut sums);
    }
    // A loop, not `array::map`: a closure called from outside this
    // function would not be compiled for AVX2. Q8's `mins` stay -0.0,
    // which adds nothing.
    let mins: [f32; TILE] = pulp::cast(sums.mins);
    let mut out = [0.0; TILE];
    for ((o, [a0, a1]), m) in out.iter_mut().zip(sums.acc).zip(mins) {
        *o = hsum(simd, simd.avx._mm256_add_ps(a0, a1)) + m;
    }
    out
}

impl RowDot for Q4Avx2 {
    type Weight = Q4Block;

    #[inline(always)]
    fn dot(self, w: &[Q4Block], a: &[Q8Act]) -> f32 {
        let mins: f32 = w.iter().zip(a).map(|(b, ab)| b.m() * ab.s).sum();
        accumulate(self.0, w, a) + mins
    }

    #[inline(always)]
    fn dot_tile(self, w: &[Q4Block], a: &Tile<'_>) -> [f32; TILE] {
        accumulate_tile(self.0, w, a)
    }
}

impl RowDot for Q8Avx2 {
    type Weight = Q8Block;

    #[inline(always)]
    fn dot(self, w: &[Q8Block], a: &[Q8Act]) -> f32 {
        accumulate(self.0, w, a)
    }

    #[inline(always)]
    fn dot_tile(self, w: &[Q8Block], a: &Tile<'_>) -> [f32; TILE] {
        accumulate_tile(self.0, w, a)
    }
}
