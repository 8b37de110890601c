//! Dot products of one weight row with one 8-bit activation row, block by
//! block: an exact integer sum per block, scaled in f32. This is the
//! portable version; `x86` has the AVX2 one the CPU normally runs.

use crate::activation::Q8Act;
use crate::blocks::{Q4Block, Q8Block};

/// A dot product of one weight row (blocks) with one activation row.
pub(crate) trait RowDot: Copy {
    type Weight;
    fn dot(self, w: &[Self::Weight], a: &[Q8Act]) -> f32;
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
    w.qs.iter()
        .zip(&a.qs)
        .map(|(&q, &v)| i32::from(q) * i32::from(v))
        .sum()
}

impl RowDot for Q4Scalar {
    type Weight = Q4Block;

    #[inline(always)]
    fn dot(self, w: &[Q4Block], a: &[Q8Act]) -> f32 {
        w.iter()
            .zip(a)
            .map(|(b, ab)| b.d() * ab.d * q4_block_sum(b, ab) as f32 + b.m() * ab.s)
            .sum()
    }
}

impl RowDot for Q8Scalar {
    type Weight = Q8Block;

    #[inline(always)]
    fn dot(self, w: &[Q8Block], a: &[Q8Act]) -> f32 {
        w.iter()
            .zip(a)
            .map(|(b, ab)| b.d() * ab.d * q8_block_sum(b, ab) as f32)
            .sum()
    }
}
