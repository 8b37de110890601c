//! Activation rows rounded to 8 bits per 32-value block, as llama.cpp's
//! `quantize_row_q8_1` does before its quantised dot products, and
//! gathered into tiles of rows that meet each weight block together.

use crate::blocks::BLOCK;

/// One activation block: `x ≈ d * q`, `|q| ≤ 127`, and `s = d * Σq` (what a
/// Q4 block's minimum multiplies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Q8Act {
    pub d: f32,
    pub s: f32,
    pub qs: [i8; BLOCK],
}

/// Activation rows per [`Tile`]. On AVX2 four beat two and eight by 10 to
/// 30%: sixteen registers hold four rows' two accumulators each with the
/// rest, not eight rows' (six came within noise of four, with longer
/// tails of rows left over). Panels ([`PANEL`]) take eight rows by
/// running the two accumulators one after the other.
pub(crate) const TILE: usize = 4;

/// [`TILE`] activation rows, with their blocks' scales also laid out block
/// by block (`d[k][r]` is row `r`'s block `k`'s `d`): one load gives a
/// block's scales for every row.
#[derive(Debug)]
pub(crate) struct Tile<'a> {
    pub rows: [&'a [Q8Act]; TILE],
    pub d: Vec<[f32; TILE]>,
    pub s: Vec<[f32; TILE]>,
}

impl<'a> Tile<'a> {
    /// `rows` hold the same number of blocks.
    pub fn new(rows: [&'a [Q8Act]; TILE]) -> Self {
        let blocks = 0..rows[0].len();
        Tile {
            d: blocks.clone().map(|k| rows.map(|r| r[k].d)).collect(),
            s: blocks.map(|k| rows.map(|r| r[k].s)).collect(),
            rows,
        }
    }
}

/// Activation rows per panel of the blocked kernel (the one `matmul`
/// runs): one accumulator per row in each of two passes leaves sixteen
/// registers room for eight rows.
pub(crate) const PANEL: usize = 8;

/// Block `k` of [`PANEL`] activation rows, side by side and aligned, so
/// that the blocked kernel reads one stream without split loads: row `r`'s
/// values are `qs[r]`, its `d` and `s` lane `r` of `d` and `s`.
#[repr(C, align(32))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PanelBlock {
    pub qs: [[i8; BLOCK]; PANEL],
    pub d: [f32; PANEL],
    pub s: [f32; PANEL],
}

const EMPTY: PanelBlock = PanelBlock {
    qs: [[0; BLOCK]; PANEL],
    d: [0.0; PANEL],
    s: [0.0; PANEL],
};

/// `rows` (each `blocks` long) in panels of [`PANEL`], panel after panel,
/// each `blocks` [`PanelBlock`]s long; the last panel's missing rows are
/// zeros (their products are computed and dropped).
pub(crate) fn panels(rows: &[Vec<Q8Act>], blocks: usize) -> Vec<PanelBlock> {
    let mut out = vec![EMPTY; rows.len().div_ceil(PANEL) * blocks];
    for (panel, group) in out.chunks_exact_mut(blocks).zip(rows.chunks(PANEL)) {
        for (r, row) in group.iter().enumerate() {
            for (dst, a) in panel.iter_mut().zip(row) {
                dst.qs[r] = a.qs;
                dst.d[r] = a.d;
                dst.s[r] = a.s;
            }
        }
    }
    out
}

/// Quantises `x`, which holds whole blocks: the portable version, and
/// what `x86::quantize` (which the CPU normally runs) equals bit for bit.
pub(crate) fn quantize(x: &[f32]) -> Vec<Q8Act> {
    x.chunks_exact(BLOCK)
        .map(|c| {
            let amax = c.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let qs: [i8; BLOCK] = std::array::from_fn(|i| (c[i] * id).round() as i8);
            let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
            Q8Act {
                d,
                s: d * sum as f32,
                qs,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_within_half_a_step() {
        let x: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 31.5) * 0.013)
            .collect();
        let q = quantize(&x);
        assert_eq!(q.len(), 2);
        for (block, xs) in q.iter().zip(x.chunks_exact(BLOCK)) {
            assert!(block.qs.iter().all(|&v| v > -128));
            assert_eq!(
                block.s,
                block.d * block.qs.iter().map(|&v| i32::from(v)).sum::<i32>() as f32
            );
            for (&v, &xv) in block.qs.iter().zip(xs) {
                assert!((f32::from(v) * block.d - xv).abs() <= block.d * 0.5 + 1e-7);
            }
        }
        let zeros = quantize(&[0.0; BLOCK]);
        assert_eq!((zeros[0].d, zeros[0].qs), (0.0, [0; BLOCK]));
    }
}
