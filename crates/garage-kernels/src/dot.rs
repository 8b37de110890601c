//! Dot products of one weight row with 8-bit activation rows, block by
//! block: an exact integer sum per block, scaled in f32. `dot` takes one
//! activation row; `dot_tile` takes a tile of them, unpacking each weight
//! block once for all of them, and `dot_panel` a panel of them from
//! weights unpacked beforehand (prefill), each row's arithmetic in the
//! same order as `dot`'s so that all give the same bits. This is the
//! portable version; `x86` has the AVX2 one the CPU normally runs.

use crate::activation::{PanelBlock, Q8Act, Tile, PANEL, TILE};
use crate::blocks::{Q4Block, Q8Block};

/// Where f32's `Sum` starts (`-0.0`, the identity of `+`): a sum written as
/// a loop from here equals the `.sum()` of the same terms bit for bit.
pub(crate) const SUM_START: f32 = -0.0;

/// Dot products of one weight row (blocks) with activation rows.
pub(crate) trait RowDot: Copy {
    type Weight;
    /// A weight block as `dot_panel` reads it, prepared once by `prepare`
    /// for the many panels that meet it.
    type Prepared: Copy;
    fn dot(self, w: &[Self::Weight], a: &[Q8Act]) -> f32;
    /// `dot` with each of the tile's rows, bit for bit.
    fn dot_tile(self, w: &[Self::Weight], a: &Tile<'_>) -> [f32; TILE];
    /// `w` as `dot_panel` reads it.
    fn prepare(self, w: &Self::Weight) -> Self::Prepared;
    /// `dot` of the row whose blocks `w` prepares with each of the panel's
    /// rows (`a`: the panel's blocks), bit for bit.
    fn dot_panel(self, w: &[Self::Prepared], a: &[PanelBlock]) -> [f32; PANEL];
    /// `dot_panel` on blocks not prepared (for a single panel, which would
    /// not repay the preparation), bit for bit.
    fn dot_panel_unprepared(self, w: &[Self::Weight], a: &[PanelBlock]) -> [f32; PANEL];
}

/// The portable Q4 × Q8 product.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q4Scalar;

/// The portable Q8 × Q8 product.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q8Scalar;

/// Σ q·a over one Q4 block; low nibbles meet elements 0..16.
#[inline(always)]
pub(crate) fn q4_block_sum(w: &Q4Block, a: &Q8Act) -> i32 {
    let (lo, hi) = a.qs.split_at(16);
    w.qs.iter()
        .zip(lo.iter().zip(hi))
        .map(|(&q, (&l, &h))| i32::from(q & 0x0F) * i32::from(l) + i32::from(q >> 4) * i32::from(h))
        .sum()
}

/// Σ q·a over one Q8 block.
#[inline(always)]
pub(crate) fn q8_block_sum(w: &Q8Block, a: &Q8Act) -> i32 {
    i8_dot(&w.qs, &a.qs)
}

/// Σ x·y over 32 bytes.
#[inline(always)]
fn i8_dot(x: &[i8; 32], y: &[i8; 32]) -> i32 {
    x.iter()
        .zip(y)
        .map(|(&p, &q)| i32::from(p) * i32::from(q))
        .sum()
}

/// A Q4 block's 32 values (0..16) in element order.
#[inline(always)]
fn q4_values(w: &Q4Block) -> [i8; 32] {
    std::array::from_fn(|i| {
        let q = w.qs[i % 16];
        (if i < 16 { q & 0x0F } else { q >> 4 }) as i8
    })
}

impl RowDot for Q4Scalar {
    type Weight = Q4Block;
    type Prepared = Q4Block;

    #[inline(always)]
    fn dot(self, w: &[Q4Block], a: &[Q8Act]) -> f32 {
        w.iter()
            .zip(a)
            .map(|(b, ab)| b.d() * ab.d * q4_block_sum(b, ab) as f32 + b.m() * ab.s)
            .sum()
    }

    #[inline(always)]
    fn dot_tile(self, w: &[Q4Block], a: &Tile<'_>) -> [f32; TILE] {
        let rows = a.rows.map(|a| &a[..w.len()]);
        let mut sums = [SUM_START; TILE];
        for (k, b) in w.iter().enumerate() {
            let (d, m, q) = (b.d(), b.m(), q4_values(b));
            for (r, s) in sums.iter_mut().enumerate() {
                let i = i8_dot(&q, &rows[r][k].qs);
                *s += d * a.d[k][r] * i as f32 + m * a.s[k][r];
            }
        }
        sums
    }

    #[inline(always)]
    fn prepare(self, w: &Q4Block) -> Q4Block {
        *w
    }

    #[inline(always)]
    fn dot_panel_unprepared(self, w: &[Q4Block], a: &[PanelBlock]) -> [f32; PANEL] {
        self.dot_panel(w, a)
    }

    #[inline(always)]
    fn dot_panel(self, w: &[Q4Block], a: &[PanelBlock]) -> [f32; PANEL] {
        let mut sums = [SUM_START; PANEL];
        for (b, ab) in w.iter().zip(a) {
            let (d, m, q) = (b.d(), b.m(), q4_values(b));
            for (r, s) in sums.iter_mut().enumerate() {
                let i = i8_dot(&q, &ab.qs[r]);
                *s += d * ab.d[r] * i as f32 + m * ab.s[r];
            }
        }
        sums
    }
}

impl RowDot for Q8Scalar {
    type Weight = Q8Block;
    type Prepared = Q8Block;

    #[inline(always)]
    fn dot(self, w: &[Q8Block], a: &[Q8Act]) -> f32 {
        w.iter()
            .zip(a)
            .map(|(b, ab)| b.d() * ab.d * q8_block_sum(b, ab) as f32)
            .sum()
    }

    #[inline(always)]
    fn dot_tile(self, w: &[Q8Block], a: &Tile<'_>) -> [f32; TILE] {
        let rows = a.rows.map(|a| &a[..w.len()]);
        let mut sums = [SUM_START; TILE];
        for (k, b) in w.iter().enumerate() {
            let d = b.d();
            for (r, s) in sums.iter_mut().enumerate() {
                *s += d * a.d[k][r] * i8_dot(&b.qs, &rows[r][k].qs) as f32;
            }
        }
        sums
    }

    #[inline(always)]
    fn prepare(self, w: &Q8Block) -> Q8Block {
        *w
    }

    #[inline(always)]
    fn dot_panel_unprepared(self, w: &[Q8Block], a: &[PanelBlock]) -> [f32; PANEL] {
        self.dot_panel(w, a)
    }

    #[inline(always)]
    fn dot_panel(self, w: &[Q8Block], a: &[PanelBlock]) -> [f32; PANEL] {
        let mut sums = [SUM_START; PANEL];
        for (b, ab) in w.iter().zip(a) {
            let d = b.d();
            for (r, s) in sums.iter_mut().enumerate() {
                *s += d * ab.d[r] * i8_dot(&b.qs, &ab.qs[r]) as f32;
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::SUM_START;

    #[test]
    fn sums_start_where_f32_sums_start() {
        let empty: f32 = std::iter::empty::<f32>().sum();
        assert_eq!(empty.to_bits(), SUM_START.to_bits());
    }
}
