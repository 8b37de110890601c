//! Weight matrices in GGML block formats, repacked once at load into what
//! the kernels read: GGUF's bytes per block (f16 scales, since decode reads
//! every weight once per token and is bound by memory bandwidth), with Q4_0
//! folded into Q4_1's `d * q + m` form (`m = -8 d`). Rows are output features.

use half::f16;

/// Values per block in every format.
pub const BLOCK: usize = 32;

/// A GGML block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    Q4_0,
    Q4_1,
    Q8_0,
}

impl BlockFormat {
    /// Bytes of one block in a GGUF file.
    pub fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_0 => 18,
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
        }
    }
}

/// Why blocks could not be turned into a matrix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("{cols} columns are not a multiple of the {BLOCK}-value block")]
    Columns { cols: usize },
    #[error("{rows}x{cols} {format:?} needs {expected} bytes, got {found}")]
    Length {
        format: BlockFormat,
        rows: usize,
        cols: usize,
        expected: usize,
        found: usize,
    },
    #[error("cannot stack matrices of {first} and {other} columns or of different formats")]
    Mismatch { first: usize, other: usize },
}

/// f16 bits to f32, without F16C: the exponent and mantissa moved into
/// place and rebased by a multiplication by 2^112 (which also handles zero
/// and subnormals; scales are never infinite or NaN).
#[inline(always)]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let bits = u32::from(bits);
    let magnitude = f32::from_bits((bits & 0x7FFF) << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(magnitude.to_bits() | ((bits & 0x8000) << 16))
}

/// 32 four-bit values `d * q + m` (`d`, `m` as f16 bits); low nibbles are
/// elements 0..16, high nibbles 16..32 (GGML's order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Q4Block {
    pub d: u16,
    pub m: u16,
    pub qs: [u8; 16],
}

impl Q4Block {
    #[inline(always)]
    pub fn d(&self) -> f32 {
        f16_to_f32(self.d)
    }

    #[inline(always)]
    pub fn m(&self) -> f32 {
        f16_to_f32(self.m)
    }
}

/// 32 eight-bit values `d * q` (`d` as f16 bits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Q8Block {
    pub d: u16,
    pub qs: [i8; 32],
}

impl Q8Block {
    #[inline(always)]
    pub fn d(&self) -> f32 {
        f16_to_f32(self.d)
    }
}

/// The blocks of a matrix, row after row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Blocks {
    Q4(Vec<Q4Block>),
    Q8(Vec<Q8Block>),
}

/// A `[rows, cols]` weight matrix in blocks of 32 along `cols`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantMatrix {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) blocks: Blocks,
}

fn half_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

impl QuantMatrix {
    /// Reads `rows * cols` values in `format` from GGUF bytes (row-major,
    /// `cols` contiguous).
    pub fn from_ggml(
        format: BlockFormat,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self, BlockError> {
        if cols % BLOCK != 0 {
            return Err(BlockError::Columns { cols });
        }
        let expected = rows * cols / BLOCK * format.block_bytes();
        if bytes.len() != expected {
            return Err(BlockError::Length {
                format,
                rows,
                cols,
                expected,
                found: bytes.len(),
            });
        }
        let chunks = bytes.chunks_exact(format.block_bytes());
        let blocks = match format {
            BlockFormat::Q4_0 => Blocks::Q4(
                chunks
                    .map(|b| {
                        let d = half_at(b, 0);
                        // -8 d is exact in f16 for any weight scale (< 8188).
                        Q4Block {
                            d,
                            m: f16::from_f32(-8.0 * f16::from_bits(d).to_f32()).to_bits(),
                            qs: b[2..18].try_into().expect("16 bytes"),
                        }
                    })
                    .collect(),
            ),
            BlockFormat::Q4_1 => Blocks::Q4(
                chunks
                    .map(|b| Q4Block {
                        d: half_at(b, 0),
                        m: half_at(b, 2),
                        qs: b[4..20].try_into().expect("16 bytes"),
                    })
                    .collect(),
            ),
            BlockFormat::Q8_0 => Blocks::Q8(
                chunks
                    .map(|b| Q8Block {
                        d: half_at(b, 0),
                        qs: std::array::from_fn(|i| b[2 + i] as i8),
                    })
                    .collect(),
            ),
        };
        Ok(QuantMatrix { rows, cols, blocks })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the kernels read per multiplication.
    pub fn byte_len(&self) -> usize {
        match &self.blocks {
            Blocks::Q4(b) => std::mem::size_of_val(b.as_slice()),
            Blocks::Q8(b) => std::mem::size_of_val(b.as_slice()),
        }
    }

    /// The matrix as row-major f32 (what the kernels multiply by).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        match &self.blocks {
            Blocks::Q4(blocks) => {
                for b in blocks {
                    let (d, m) = (b.d(), b.m());
                    out.extend(b.qs.iter().map(|q| f32::from(q & 0x0F) * d + m));
                    out.extend(b.qs.iter().map(|q| f32::from(q >> 4) * d + m));
                }
            }
            Blocks::Q8(blocks) => {
                for b in blocks {
                    let d = b.d();
                    out.extend(b.qs.iter().map(|&q| f32::from(q) * d));
                }
            }
        }
        out
    }

    /// The matrix whose row `i` is this one's row `order[i]`.
    pub fn select_rows(&self, order: &[usize]) -> QuantMatrix {
        let per_row = self.cols / BLOCK;
        fn pick<T: Copy>(src: &[T], order: &[usize], per_row: usize) -> Vec<T> {
            order
                .iter()
                .flat_map(|&r| &src[r * per_row..(r + 1) * per_row])
                .copied()
                .collect()
        }
        let blocks = match &self.blocks {
            Blocks::Q4(b) => Blocks::Q4(pick(b, order, per_row)),
            Blocks::Q8(b) => Blocks::Q8(pick(b, order, per_row)),
        };
        QuantMatrix {
            rows: order.len(),
            cols: self.cols,
            blocks,
        }
    }

    /// Stacks matrices of the same width and block kind along the rows
    /// (fused projections); `None` for an empty list.
    pub fn stack(parts: Vec<QuantMatrix>) -> Result<Option<QuantMatrix>, BlockError> {
        let mut parts = parts.into_iter();
        let Some(mut out) = parts.next() else {
            return Ok(None);
        };
        for part in parts {
            let mismatch = BlockError::Mismatch {
                first: out.cols,
                other: part.cols,
            };
            if part.cols != out.cols {
                return Err(mismatch);
            }
            match (&mut out.blocks, part.blocks) {
                (Blocks::Q4(a), Blocks::Q4(b)) => a.extend(b),
                (Blocks::Q8(a), Blocks::Q8(b)) => a.extend(b),
                _ => return Err(mismatch),
            }
            out.rows += part.rows;
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(v: f32) -> [u8; 2] {
        f16::from_f32(v).to_le_bytes()
    }

    #[test]
    fn f16_conversion_matches_half() {
        for bits in 0..=u16::MAX {
            let want = f16::from_bits(bits);
            if want.is_finite() {
                assert_eq!(
                    f16_to_f32(bits).to_bits(),
                    want.to_f32().to_bits(),
                    "{bits:#x}"
                );
            }
        }
    }

    #[test]
    fn reads_ggml_blocks() {
        let mut q4_0 = f16_bytes(0.5).to_vec();
        q4_0.extend((0..16u8).map(|i| i | ((15 - i) << 4)));
        let x = QuantMatrix::from_ggml(BlockFormat::Q4_0, 1, 32, &q4_0)
            .expect("q4_0")
            .dequantize();
        assert_eq!((x[0], x[15], x[16], x[31]), (-4.0, 3.5, 3.5, -4.0));

        let mut q4_1 = f16_bytes(2.0).to_vec();
        q4_1.extend(f16_bytes(1.0));
        q4_1.extend((0..16u8).map(|i| i | (i << 4)));
        let x = QuantMatrix::from_ggml(BlockFormat::Q4_1, 1, 32, &q4_1)
            .expect("q4_1")
            .dequantize();
        assert_eq!((x[0], x[3], x[19]), (1.0, 7.0, 7.0));

        let mut q8 = f16_bytes(0.25).to_vec();
        q8.extend((0..32i8).map(|i| (i - 16) as u8));
        let x = QuantMatrix::from_ggml(BlockFormat::Q8_0, 1, 32, &q8)
            .expect("q8_0")
            .dequantize();
        assert_eq!((x[0], x[16], x[31]), (-4.0, 0.0, 3.75));

        assert_eq!(
            QuantMatrix::from_ggml(BlockFormat::Q8_0, 1, 16, &q8[..17]),
            Err(BlockError::Columns { cols: 16 })
        );
        assert!(matches!(
            QuantMatrix::from_ggml(BlockFormat::Q8_0, 2, 32, &q8),
            Err(BlockError::Length {
                expected: 68,
                found: 34,
                ..
            })
        ));
    }

    #[test]
    fn selects_and_stacks_rows() {
        let rows: Vec<Vec<u8>> = (0..3u8)
            .map(|r| {
                let mut b = f16_bytes(1.0).to_vec();
                b.extend([r; 32]);
                b
            })
            .collect();
        let m = QuantMatrix::from_ggml(BlockFormat::Q8_0, 3, 32, &rows.concat()).expect("m");
        let picked = m.select_rows(&[2, 0]);
        assert_eq!(picked.rows(), 2);
        assert_eq!(
            picked.dequantize()[..33],
            [[2.0; 32].as_slice(), &[0.0]].concat()
        );
        let stacked = QuantMatrix::stack(vec![picked, m.clone()])
            .expect("same width")
            .expect("non-empty");
        assert_eq!(stacked.rows(), 5);
        assert_eq!(stacked.dequantize()[64..], m.dequantize()[..]);
        let q4 = QuantMatrix::from_ggml(BlockFormat::Q4_0, 1, 32, &[0; 18]).expect("q4");
        assert!(QuantMatrix::stack(vec![m, q4]).is_err());
        assert_eq!(QuantMatrix::stack(Vec::new()), Ok(None));
    }
}
