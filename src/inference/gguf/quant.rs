//! GGML tensor element types and their dequantisation to f32 (F32, F16,
//! BF16, Q4_0, Q4_1, Q8_0 blocks of 32 values, as llama.cpp lays them out);
//! the block types also map to the quantised kernels' formats.

use garage_kernels::BlockFormat;
use half::{bf16, f16};

/// Element types the loader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Bf16,
    Q4_0,
    Q4_1,
    Q8_0,
}

const BLOCK: usize = 32;

impl GgmlType {
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            30 => GgmlType::Bf16,
            _ => return None,
        })
    }

    /// The block format the quantised kernels multiply directly, if any.
    pub fn block_format(self) -> Option<BlockFormat> {
        match self {
            GgmlType::Q4_0 => Some(BlockFormat::Q4_0),
            GgmlType::Q4_1 => Some(BlockFormat::Q4_1),
            GgmlType::Q8_0 => Some(BlockFormat::Q8_0),
            GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 => None,
        }
    }

    /// Bytes holding `count` elements; `None` when `count` does not fill whole blocks.
    pub fn byte_len(self, count: usize) -> Option<usize> {
        let blocks = |size: usize| count.is_multiple_of(BLOCK).then(|| count / BLOCK * size);
        match self {
            GgmlType::F32 => count.checked_mul(4),
            GgmlType::F16 | GgmlType::Bf16 => count.checked_mul(2),
            GgmlType::Q4_0 => blocks(18),
            GgmlType::Q4_1 => blocks(20),
            GgmlType::Q8_0 => blocks(34),
        }
    }

    /// Dequantises `bytes` (exactly [`Self::byte_len`] long) to f32.
    pub fn dequantize(self, bytes: &[u8]) -> Vec<f32> {
        let half_at = |b: &[u8], i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
        match self {
            GgmlType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            GgmlType::F16 => bytes.chunks_exact(2).map(|b| half_at(b, 0)).collect(),
            GgmlType::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                let (size, has_min) = if self == GgmlType::Q4_0 {
                    (18, false)
                } else {
                    (20, true)
                };
                let mut out = Vec::with_capacity(bytes.len() / size * BLOCK);
                for block in bytes.chunks_exact(size) {
                    let d = half_at(block, 0);
                    let (m, qs) = if has_min {
                        (half_at(block, 2), &block[4..])
                    } else {
                        (-8.0 * d, &block[2..])
                    };
                    // Low nibbles are elements 0..16, high nibbles 16..32.
                    out.extend(qs.iter().map(|q| f32::from(q & 0x0F) * d + m));
                    out.extend(qs.iter().map(|q| f32::from(q >> 4) * d + m));
                }
                out
            }
            GgmlType::Q8_0 => {
                let mut out = Vec::with_capacity(bytes.len() / 34 * BLOCK);
                for block in bytes.chunks_exact(34) {
                    let d = half_at(block, 0);
                    out.extend(block[2..].iter().map(|&q| f32::from(q as i8) * d));
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(v: f32) -> [u8; 2] {
        f16::from_f32(v).to_le_bytes()
    }

    #[test]
    fn q4_0_q4_1_q8_0_blocks() {
        let mut q4_0 = f16_bytes(0.5).to_vec();
        q4_0.extend((0..16u8).map(|i| i | ((15 - i) << 4)));
        let x = GgmlType::Q4_0.dequantize(&q4_0);
        assert_eq!(x.len(), 32);
        assert_eq!((x[0], x[15], x[16], x[31]), (-4.0, 3.5, 3.5, -4.0));

        let mut q4_1 = f16_bytes(2.0).to_vec();
        q4_1.extend(f16_bytes(1.0));
        q4_1.extend((0..16u8).map(|i| i | (i << 4)));
        let x = GgmlType::Q4_1.dequantize(&q4_1);
        assert_eq!((x[0], x[3], x[19]), (1.0, 7.0, 7.0));

        let mut q8 = f16_bytes(0.25).to_vec();
        q8.extend((0..32i8).map(|i| (i - 16) as u8));
        let x = GgmlType::Q8_0.dequantize(&q8);
        assert_eq!((x[0], x[16], x[31]), (-4.0, 0.0, 3.75));
        assert_eq!(GgmlType::Q8_0.byte_len(33), None);
    }
}
