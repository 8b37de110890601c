//! One block's attention: the query rows of one KV head's query heads for
//! a run of tokens, against that head's keys and values in tiles of
//! [`KEY_TILE`]. Each tile's scores are computed for all the rows that see
//! any of its keys (2 rows × 4 keys at a time), masked where a row may not
//! see a key, folded into each row's running maximum and sum (online
//! softmax: the accumulator is rescaled when the maximum grows), and their
//! exponentials times the tile's values added to the rows' accumulators
//! (4 rows × 16 values at a time). Each tile is thus read once for all
//! the block's rows. The steps' sizes keep their accumulators and operands
//! within AVX2's 16 registers (3 × 4 spilled and ran a third slower).

use super::lanes::{Lanes, Portable, LANES};
use super::Dims;

/// Keys per tile: a tile's keys and values (16 KB each at 64 values a
/// key) and the block's scores for it (12 KB) stay in L1 and L2 while
/// every row meets them.
const KEY_TILE: usize = 64;

/// Rows and keys per step of the dot products.
const SCORE_ROWS: usize = 2;
const KEYS: usize = 4;
/// Rows and vectors of values per step of the updates.
const UPDATE_ROWS: usize = 4;
const VECS: usize = 2;
/// Vectors per step of the updates of a row left over from the steps.
const ROW_VECS: usize = 8;

// Score rows are read in whole vectors and written in steps of KEYS.
const _: () = assert!(KEY_TILE % LANES == 0 && KEY_TILE % KEYS == 0);

/// Query rows of one KV head for a run of tokens, and where their results
/// go. Row `t * group + h` is token `first + t`, query head `h` of the
/// KV head's group.
#[derive(Debug)]
pub(super) struct Block<'a> {
    pub(super) dims: &'a Dims,
    pub(super) kv_head: usize,
    /// The first token, counted from the first new one.
    pub(super) first: usize,
    /// The tokens' query rows, all heads: `[tokens, heads * head_dim]`.
    pub(super) q: &'a [f32],
    /// The KV head's keys and values that the last token sees:
    /// `[past + first + tokens, head_dim]`.
    pub(super) k: &'a [f32],
    pub(super) v: &'a [f32],
    /// Per token, the group's `group * head_dim` output values.
    pub(super) out: Vec<&'a mut [f32]>,
}

impl Block<'_> {
    /// The block with AVX2 where the CPU has it, else portably.
    pub(super) fn run(self) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(simd, Avx2Block { block: self, simd });
        }
        self.compute(Portable)
    }

    /// The block with the lanes of `l`.
    #[inline(always)]
    pub(super) fn compute<L: Lanes>(self, l: L) {
        let dims = self.dims;
        let hd = dims.head_dim;
        let mut rows = Rows::new(&self);
        let visible = self.k.len() / hd;
        // Token `t` sees keys below `seen_by_first + t`.
        let seen_by_first = dims.past + self.first + 1;
        for start in (0..visible).step_by(KEY_TILE) {
            let end = (start + KEY_TILE).min(visible);
            // The rows from here on see at least key `start`.
            let first_row = (start + 1).saturating_sub(seen_by_first) * dims.group;
            rows.scores(l, first_row, &self.k[start * hd..end * hd]);
            for r in first_row..rows.max.len() {
                let seen = (seen_by_first + r / dims.group - start).min(end - start);
                rows.softmax(l, r, seen, end - start);
            }
            rows.accumulate(l, first_row, &self.v[start * hd..end * hd]);
        }
        rows.write(self.out);
    }
}

/// A block's rows as the kernel works on them.
struct Rows {
    head_dim: usize,
    /// `head_dim` rounded up to whole vectors: the stride of `q` and `acc`.
    width: usize,
    /// Queries times `1 / sqrt(head_dim)`, zero-padded to `width`.
    q: Vec<f32>,
    /// Σ e^(s - max) · v over the keys so far, per row.
    acc: Vec<f32>,
    /// Each row's largest score so far.
    max: Vec<f32>,
    /// Σ e^(s - max) over the keys so far, per row.
    sum: Vec<f32>,
    /// The current tile's scores, then their exponentials: `[rows, KEY_TILE]`.
    scores: Vec<f32>,
}

impl Rows {
    /// The block's query rows gathered, scaled and padded.
    #[inline(always)]
    fn new(block: &Block<'_>) -> Self {
        let d = block.dims;
        let hd = d.head_dim;
        let width = hd.div_ceil(LANES) * LANES;
        let rows = block.out.len() * d.group;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut q = vec![0.0; rows * width];
        let group_q = block.q.chunks_exact(d.heads * hd).flat_map(|token| {
            token[block.kv_head * d.group * hd..][..d.group * hd].chunks_exact(hd)
        });
        for (dst, src) in q.chunks_exact_mut(width).zip(group_q) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = s * scale;
            }
        }
        Rows {
            head_dim: hd,
            width,
            q,
            acc: vec![0.0; rows * width],
            max: vec![f32::NEG_INFINITY; rows],
            sum: vec![0.0; rows],
            scores: vec![0.0; rows * KEY_TILE],
        }
    }

    /// The scores of rows `first_row..` with the tile's `keys`.
    #[inline(always)]
    fn scores<L: Lanes>(&mut self, l: L, first_row: usize, keys: &[f32]) {
        let (w, hd) = (self.width, self.head_dim);
        let q = self.q[first_row * w..].chunks(SCORE_ROWS * w);
        let s = self.scores[first_row * KEY_TILE..].chunks_mut(SCORE_ROWS * KEY_TILE);
        for (q, s) in q.zip(s) {
            if q.len() == SCORE_ROWS * w {
                scores_of::<L, SCORE_ROWS>(l, q, keys, hd, s);
            } else {
                for (q, s) in q.chunks_exact(w).zip(s.chunks_exact_mut(KEY_TILE)) {
                    scores_of::<L, 1>(l, q, keys, hd, s);
                }
            }
        }
    }

    /// Row `r`'s scores of a tile of `keys` keys, of which it sees the
    /// first `seen` (at least one), into its running maximum and sum and
    /// their exponentials in their place.
    #[inline(always)]
    fn softmax<L: Lanes>(&mut self, l: L, r: usize, seen: usize, keys: usize) {
        let s = &mut self.scores[r * KEY_TILE..][..keys.div_ceil(LANES) * LANES];
        s[seen..].fill(f32::NEG_INFINITY);
        let s = pulp::as_arrays_mut::<LANES, f32>(s).0;
        let mut tile_max = l.splat(f32::NEG_INFINITY);
        for x in s.iter() {
            tile_max = l.max(tile_max, l.load(x));
        }
        let max = self.max[r].max(l.max_lane(tile_max));
        // 0 on the first tile, where the maximum was −∞ and `acc` is 0.
        let rescale = (self.max[r] - max).exp();
        if rescale != 1.0 {
            let by = l.splat(rescale);
            let acc = &mut self.acc[r * self.width..][..self.width];
            for a in pulp::as_arrays_mut::<LANES, f32>(acc).0 {
                l.store(l.mul(l.load(a), by), a);
            }
        }
        let (max_v, mut sum) = (l.splat(max), l.zero());
        for x in s {
            let p = l.exp(l.sub(l.load(x), max_v));
            l.store(p, x);
            sum = l.add(sum, p);
        }
        self.sum[r] = self.sum[r] * rescale + l.sum(sum);
        self.max[r] = max;
    }

    /// Rows `first_row..` take the tile's exponentials times its `values`.
    #[inline(always)]
    fn accumulate<L: Lanes>(&mut self, l: L, first_row: usize, values: &[f32]) {
        let (w, hd) = (self.width, self.head_dim);
        let p = self.scores[first_row * KEY_TILE..].chunks(UPDATE_ROWS * KEY_TILE);
        let acc = self.acc[first_row * w..].chunks_mut(UPDATE_ROWS * w);
        for (p, acc) in p.zip(acc) {
            if acc.len() == UPDATE_ROWS * w {
                add_products::<L, UPDATE_ROWS, VECS>(l, p, values, hd, acc);
            } else {
                for (p, acc) in p.chunks_exact(KEY_TILE).zip(acc.chunks_exact_mut(w)) {
                    add_products::<L, 1, ROW_VECS>(l, p, values, hd, acc);
                }
            }
        }
    }

    /// Each row's accumulator over its sum, into its place in `out`.
    fn write(&self, out: Vec<&mut [f32]>) {
        let heads = out
            .into_iter()
            .flat_map(|o| o.chunks_exact_mut(self.head_dim));
        let rows = self.acc.chunks_exact(self.width).zip(&self.sum);
        for (o, (acc, sum)) in heads.zip(rows) {
            let inv = 1.0 / sum;
            for (o, a) in o.iter_mut().zip(acc) {
                *o = a * inv;
            }
        }
    }
}

/// The scores of `R` rows (`q`, `R` rows of the padded width) with each of
/// `keys` (rows of `hd`), into `s` (`R` rows of [`KEY_TILE`]).
#[inline(always)]
fn scores_of<L: Lanes, const R: usize>(l: L, q: &[f32], keys: &[f32], hd: usize, s: &mut [f32]) {
    let w = q.len() / R;
    let q: [&[f32]; R] = std::array::from_fn(|r| &q[r * w..][..w]);
    let n = keys.len() / hd;
    for j0 in (0..n).step_by(KEYS) {
        // Past the tile's end, its last key again: those scores are masked.
        let k: [&[f32]; KEYS] = std::array::from_fn(|j| &keys[(j0 + j).min(n - 1) * hd..][..hd]);
        let dots = dots::<L, R>(l, q, k);
        for (r, d) in dots.iter().enumerate() {
            s[r * KEY_TILE + j0..][..KEYS].copy_from_slice(d);
        }
    }
}

/// The dot products of `R` query rows (zero-padded) with [`KEYS`] keys.
#[inline(always)]
fn dots<L: Lanes, const R: usize>(l: L, q: [&[f32]; R], k: [&[f32]; KEYS]) -> [[f32; KEYS]; R] {
    let q = q.map(|q| pulp::as_arrays::<LANES, f32>(q).0);
    let k = k.map(pulp::as_arrays::<LANES, f32>);
    let mut acc = [[l.zero(); KEYS]; R];
    for c in 0..k[0].0.len() {
        let mut kv = [l.zero(); KEYS];
        for (v, (k, _)) in kv.iter_mut().zip(&k) {
            *v = l.load(&k[c]);
        }
        for (acc, q) in acc.iter_mut().zip(&q) {
            let qv = l.load(&q[c]);
            for (a, v) in acc.iter_mut().zip(kv) {
                *a = l.mul_add(qv, v, *a);
            }
        }
    }
    let mut out = [[0.0; KEYS]; R];
    for ((o, acc), q) in out.iter_mut().zip(acc).zip(q) {
        *o = l.sums4(acc);
        let q_tail = q.get(k[0].0.len()).map_or(&[][..], |t| &t[..]);
        for (o, (_, k_tail)) in o.iter_mut().zip(&k) {
            *o += q_tail.iter().zip(*k_tail).map(|(a, b)| a * b).sum::<f32>();
        }
    }
    out
}

/// `acc[r] += Σ_j p[r][j] · values[j]` for `R` rows (`p`: `R` rows of
/// [`KEY_TILE`]; `acc`: `R` rows of the padded width; `values`: rows of
/// `hd`).
#[inline(always)]
fn add_products<L: Lanes, const R: usize, const D: usize>(
    l: L,
    p: &[f32],
    values: &[f32],
    hd: usize,
    acc: &mut [f32],
) {
    let whole = hd / LANES;
    let mut c = 0;
    while c + D <= whole {
        add_products_at::<L, R, D>(l, p, values, hd, c, acc);
        c += D;
    }
    for c in c..whole {
        add_products_at::<L, R, 1>(l, p, values, hd, c, acc);
    }
    let w = acc.len() / R;
    for (p, acc) in p.chunks_exact(KEY_TILE).zip(acc.chunks_exact_mut(w)) {
        for (p, v) in p.iter().zip(values.chunks_exact(hd)) {
            for (a, v) in acc[whole * LANES..hd].iter_mut().zip(&v[whole * LANES..]) {
                *a += p * v;
            }
        }
    }
}

/// [`add_products`] for vectors `c..c + D` of each row.
#[inline(always)]
fn add_products_at<L: Lanes, const R: usize, const D: usize>(
    l: L,
    p: &[f32],
    values: &[f32],
    hd: usize,
    c: usize,
    acc: &mut [f32],
) {
    let w = acc.len() / R;
    let mut sums = [[l.zero(); D]; R];
    for (s, acc) in sums.iter_mut().zip(acc.chunks_exact(w)) {
        let acc = pulp::as_arrays::<LANES, f32>(&acc[c * LANES..][..D * LANES]).0;
        for (s, a) in s.iter_mut().zip(acc) {
            *s = l.load(a);
        }
    }
    for (j, v) in values.chunks_exact(hd).enumerate() {
        let v = pulp::as_arrays::<LANES, f32>(&v[c * LANES..][..D * LANES]).0;
        let mut vv = [l.zero(); D];
        for (x, v) in vv.iter_mut().zip(v) {
            *x = l.load(v);
        }
        for (r, s) in sums.iter_mut().enumerate() {
            let pr = l.splat(p[r * KEY_TILE + j]);
            for (s, x) in s.iter_mut().zip(vv) {
                *s = l.mul_add(pr, x, *s);
            }
        }
    }
    for (s, acc) in sums.iter().zip(acc.chunks_exact_mut(w)) {
        let acc = pulp::as_arrays_mut::<LANES, f32>(&mut acc[c * LANES..][..D * LANES]).0;
        for (s, a) in s.iter().zip(acc) {
            l.store(*s, a);
        }
    }
}

/// A block for `V3::vectorize`: a `WithSimd` type rather than a closure,
/// so that the kernel is inlined into the code compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[derive(Debug)]
struct Avx2Block<'a> {
    block: Block<'a>,
    simd: pulp::x86::V3,
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for Avx2Block<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.block.compute(super::avx2::Avx2(self.simd));
    }
}
