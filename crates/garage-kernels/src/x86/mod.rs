//! The AVX2 (+FMA) dot products, llama.cpp's `ggml_vec_dot_q4_1_q8_1` and
//! `ggml_vec_dot_q8_0_q8_0` in safe Rust: `pulp::x86::V3` is the proof that
//! the CPU has the features, checked once at run time. The tiled form
//! unpacks a weight block once (nibbles to bytes, or Q8's signs) and keeps
//! two accumulators for each of its activation rows: eight registers for
//! four rows. The panel form reads blocks unpacked beforehand and takes
//! eight rows in two passes, the even blocks then the odd ones, with one
//! accumulator per row in each pass: the two accumulators of `dot`, one
//! after the other.
//!
//! The activations' quantisation on AVX2 is in [`quantize`].
//!
//! `maddubs` saturates at i16, which these inputs never reach: a pair of
//! products is at most 2·15·127 (Q4) or 2·128·127 (Q8, `|a| ≤ 127`).

use core::arch::x86_64::{__m128, __m128i, __m256, __m256i};

use pulp::x86::V3;

use crate::activation::{PanelBlock, Q8Act, Tile, PANEL, TILE};
use crate::blocks::{Q4Block, Q8Block};
use crate::dot::{RowDot, SUM_START};

mod quantize;
pub(crate) use quantize::quantize;

// The tile kernel holds a row's scale or minimum in each of a `__m128`'s
// four lanes.
const _: () = assert!(TILE == 4);
// The panel kernel holds a row's scale or minimum in each of a `__m256`'s
// eight lanes.
const _: () = assert!(PANEL == 8);

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
    /// Σ w·a in eight f32 lanes (`a`: an activation block's values).
    fn products(simd: V3, w: Self::Lanes, a: &[i8; 32]) -> __m256;
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
    fn products(simd: V3, w: __m256i, a: &[i8; 32]) -> __m256 {
        dot_u8_i8(simd, w, pulp::cast(*a))
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
    fn products(simd: V3, (ax, x): (__m256i, __m256i), a: &[i8; 32]) -> __m256 {
        // |x| · (y · sign x): the unsigned × signed form maddubs takes.
        let sy = simd.avx2._mm256_sign_epi8(pulp::cast(*a), x);
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

/// A Q4 block unpacked for the panel kernel: its nibbles as bytes and its
/// scale and minimum as f32 (what `lanes`, `scale` and `min` give for a
/// [`Q4Block`]), aligned so that loading the bytes never splits a line.
#[repr(C, align(32))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q4Unpacked {
    q: [u8; 32],
    d: f32,
    m: f32,
}

/// A Q8 block for the panel kernel: its values, aligned, and its scale as
/// f32.
#[repr(C, align(32))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q8Unpacked {
    q: [i8; 32],
    d: f32,
}

impl Avx2Block for Q4Unpacked {
    type Lanes = __m256i;

    #[inline(always)]
    fn lanes(&self, _: V3) -> __m256i {
        pulp::cast(self.q)
    }

    #[inline(always)]
    fn products(simd: V3, w: __m256i, a: &[i8; 32]) -> __m256 {
        Q4Block::products(simd, w, a)
    }

    #[inline(always)]
    fn scale(&self) -> f32 {
        self.d
    }

    #[inline(always)]
    fn min(&self) -> Option<f32> {
        Some(self.m)
    }
}

impl Avx2Block for Q8Unpacked {
    type Lanes = (__m256i, __m256i);

    #[inline(always)]
    fn lanes(&self, simd: V3) -> (__m256i, __m256i) {
        let x: __m256i = pulp::cast(self.q);
        (simd.avx2._mm256_sign_epi8(x, x), x)
    }

    #[inline(always)]
    fn products(simd: V3, w: (__m256i, __m256i), a: &[i8; 32]) -> __m256 {
        Q8Block::products(simd, w, a)
    }

    #[inline(always)]
    fn scale(&self) -> f32 {
        self.d
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
            let v = W::products(simd, pw[k].lanes(simd), &pa[k].qs);
            acc[k] = add_scaled(simd, acc[k], pw[k].scale() * pa[k].d, v);
        }
    }
    for (bw, ba) in pairs_w.remainder().iter().zip(pairs_a.remainder()) {
        let v = W::products(simd, bw.lanes(simd), &ba.qs);
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
        let v = W::products(simd, lanes, &row[k].qs);
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

/// Block `b` of a weight row against block `a` of the panel's rows: row
/// `r`'s products, scaled by `b`'s scale times its own, into `acc[r]`.
#[inline(always)]
fn panel_step<W: Avx2Block>(simd: V3, b: &W, a: &PanelBlock, acc: &mut [__m256; PANEL]) {
    let lanes = b.lanes(simd);
    // The eight rows' scales `d_w * d_a` in one multiplication, then each
    // in all lanes of its own vector: each 128-bit half in both halves,
    // then in-lane shuffles.
    let d: __m256 = pulp::cast(a.d);
    let scales = simd
        .avx
        ._mm256_mul_ps(simd.avx._mm256_set1_ps(b.scale()), d);
    let lo = simd.avx._mm256_permute2f128_ps::<0x00>(scales, scales);
    let hi = simd.avx._mm256_permute2f128_ps::<0x11>(scales, scales);
    let scales = [
        simd.avx._mm256_permute_ps::<0x00>(lo),
        simd.avx._mm256_permute_ps::<0x55>(lo),
        simd.avx._mm256_permute_ps::<0xAA>(lo),
        simd.avx._mm256_permute_ps::<0xFF>(lo),
        simd.avx._mm256_permute_ps::<0x00>(hi),
        simd.avx._mm256_permute_ps::<0x55>(hi),
        simd.avx._mm256_permute_ps::<0xAA>(hi),
        simd.avx._mm256_permute_ps::<0xFF>(hi),
    ];
    for ((acc, qs), scale) in acc.iter_mut().zip(&a.qs).zip(scales) {
        let v = W::products(simd, lanes, qs);
        *acc = simd.fma._mm256_fmadd_ps(scale, v, *acc);
    }
}

/// `mins + m · s` for the eight rows, for the formats with a minimum.
#[inline(always)]
fn panel_mins<W: Avx2Block>(simd: V3, b: &W, a: &PanelBlock, mins: &mut __m256) {
    if let Some(m) = b.min() {
        let s: __m256 = pulp::cast(a.s);
        let terms = simd.avx._mm256_mul_ps(simd.avx._mm256_set1_ps(m), s);
        *mins = simd.avx._mm256_add_ps(*mins, terms);
    }
}

/// The dots of a weight row (blocks unpacked) with the panel's eight rows,
/// each with the arithmetic of `dot`: [`accumulate`]'s first accumulator
/// takes the even blocks in order, in a first pass (with the minimums'
/// terms, in block order: both blocks of each pair), its second the odd
/// blocks in a second pass; then the two are added and summed as there.
#[inline(always)]
fn accumulate_panel<W: Avx2Block>(simd: V3, w: &[W], a: &[PanelBlock]) -> [f32; PANEL] {
    let a = &a[..w.len()];
    let mut mins = simd.avx._mm256_set1_ps(SUM_START);
    let mut even = [simd.avx._mm256_setzero_ps(); PANEL];
    for (pw, pa) in w.chunks(2).zip(a.chunks(2)) {
        if let (Some(b), Some(ab)) = (pw.first(), pa.first()) {
            panel_step(simd, b, ab, &mut even);
        }
        for (b, ab) in pw.iter().zip(pa) {
            panel_mins(simd, b, ab, &mut mins);
        }
    }
    let mut odd = [simd.avx._mm256_setzero_ps(); PANEL];
    for (pw, pa) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        panel_step(simd, &pw[1], &pa[1], &mut odd);
    }
    let mut sums = even;
    for (s, od) in sums.iter_mut().zip(odd) {
        *s = simd.avx._mm256_add_ps(*s, od);
    }
    // Q8's `mins` stay -0.0, which adds nothing.
    pulp::cast(simd.avx._mm256_add_ps(hsums(simd, sums), mins))
}

/// [`hsum`] of each of eight vectors, in lane `r` for vector `r`, with
/// the same additions: each vector's halves added (`t`), then
/// `(t[0] + t[2]) + (t[1] + t[3])`, here with `t` of rows `r` and `r + 4`
/// side by side, transposed so that one addition serves eight rows.
#[inline(always)]
fn hsums(simd: V3, v: [__m256; PANEL]) -> __m256 {
    let avx = simd.avx;
    let mut t = [avx._mm256_setzero_ps(); 4];
    for (r, t) in t.iter_mut().enumerate() {
        let (a, b) = (v[r], v[r + 4]);
        *t = avx._mm256_add_ps(
            avx._mm256_permute2f128_ps::<0x20>(a, b),
            avx._mm256_permute2f128_ps::<0x31>(a, b),
        );
    }
    // A 4 x 4 transpose in each half: `u01` is [t0[0], t1[0], t0[1],
    // t1[1]], `w01` [t0[2], t1[2], t0[3], t1[3]], and `c[i]` element `i`
    // of rows 0..4's `t` (rows 4..8's in the high half).
    let u01 = avx._mm256_unpacklo_ps(t[0], t[1]);
    let u23 = avx._mm256_unpacklo_ps(t[2], t[3]);
    let w01 = avx._mm256_unpackhi_ps(t[0], t[1]);
    let w23 = avx._mm256_unpackhi_ps(t[2], t[3]);
    let c0 = avx._mm256_shuffle_ps::<0x44>(u01, u23);
    let c1 = avx._mm256_shuffle_ps::<0xEE>(u01, u23);
    let c2 = avx._mm256_shuffle_ps::<0x44>(w01, w23);
    let c3 = avx._mm256_shuffle_ps::<0xEE>(w01, w23);
    avx._mm256_add_ps(avx._mm256_add_ps(c0, c2), avx._mm256_add_ps(c1, c3))
}

impl RowDot for Q4Avx2 {
    type Weight = Q4Block;
    type Prepared = Q4Unpacked;

    #[inline(always)]
    fn dot(self, w: &[Q4Block], a: &[Q8Act]) -> f32 {
        let mins: f32 = w.iter().zip(a).map(|(b, ab)| b.m() * ab.s).sum();
        accumulate(self.0, w, a) + mins
    }

    #[inline(always)]
    fn dot_tile(self, w: &[Q4Block], a: &Tile<'_>) -> [f32; TILE] {
        accumulate_tile(self.0, w, a)
    }

    #[inline(always)]
    fn prepare(self, w: &Q4Block) -> Q4Unpacked {
        Q4Unpacked {
            q: pulp::cast(nibbles(self.0, w.qs)),
            d: w.d(),
            m: w.m(),
        }
    }

    #[inline(always)]
    fn dot_panel(self, w: &[Q4Unpacked], a: &[PanelBlock]) -> [f32; PANEL] {
        accumulate_panel(self.0, w, a)
    }

    #[inline(always)]
    fn dot_panel_unprepared(self, w: &[Q4Block], a: &[PanelBlock]) -> [f32; PANEL] {
        accumulate_panel(self.0, w, a)
    }
}

impl RowDot for Q8Avx2 {
    type Weight = Q8Block;
    type Prepared = Q8Unpacked;

    #[inline(always)]
    fn dot(self, w: &[Q8Block], a: &[Q8Act]) -> f32 {
        accumulate(self.0, w, a)
    }

    #[inline(always)]
    fn dot_tile(self, w: &[Q8Block], a: &Tile<'_>) -> [f32; TILE] {
        accumulate_tile(self.0, w, a)
    }

    #[inline(always)]
    fn prepare(self, w: &Q8Block) -> Q8Unpacked {
        Q8Unpacked { q: w.qs, d: w.d() }
    }

    #[inline(always)]
    fn dot_panel(self, w: &[Q8Unpacked], a: &[PanelBlock]) -> [f32; PANEL] {
        accumulate_panel(self.0, w, a)
    }

    #[inline(always)]
    fn dot_panel_unprepared(self, w: &[Q8Block], a: &[PanelBlock]) -> [f32; PANEL] {
        accumulate_panel(self.0, w, a)
    }
}
