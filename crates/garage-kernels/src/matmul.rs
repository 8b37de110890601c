//! `x · Wᵀ` for a quantised `W`: activation rows quantised once, weight
//! rows split into chunks that rayon's threads take, each chunk run with
//! AVX2 when the CPU has it (checked at run time), else portable code.
//! Several activation rows (prefill) go through the weight rows in tiles of
//! [`TILE`]: each weight block is unpacked once per tile rather than once
//! per activation row, with every result bitwise equal to the one-row
//! kernel's, which takes the rows left over (and decode's single row).

use rayon::prelude::*;

use crate::activation::{quantize, Q8Act, Tile, TILE};
use crate::blocks::{Blocks, QuantMatrix, BLOCK};
use crate::dot::{Q4Scalar, Q8Scalar, RowDot};

/// Rows per rayon task: a few tasks per thread, none tiny.
fn chunk_rows(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads() * 4).max(16)
}

/// How a weight row meets the activation rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pairing {
    /// [`TILE`] activation rows per unpacked weight block, the rest one by
    /// one.
    Tiled,
    /// Every activation row on its own (the kernel before tiling, kept to
    /// measure against).
    OneByOne,
}

/// Fills `out` (`[rows, n]`) with the dots of the weight rows in `w` and
/// each of the `n` activation rows: the tiles' rows, then `rest`.
#[inline(always)]
fn rows_into<K: RowDot>(
    k: K,
    out: &mut [f32],
    w: &[K::Weight],
    per_row: usize,
    tiles: &[Tile<'_>],
    rest: &[Vec<Q8Act>],
) {
    let tiled = tiles.len() * TILE;
    let n = tiled + rest.len();
    for (row, dst) in w.chunks_exact(per_row).zip(out.chunks_exact_mut(n)) {
        let (dst_tiles, dst_rest) = dst.split_at_mut(tiled);
        for (d, tile) in dst_tiles.chunks_exact_mut(TILE).zip(tiles) {
            d.copy_from_slice(&k.dot_tile(row, tile));
        }
        for (d, a) in dst_rest.iter_mut().zip(rest) {
            *d = k.dot(row, a);
        }
    }
}

/// One rayon task's rows.
#[derive(Debug)]
struct Task<'a> {
    blocks: &'a Blocks,
    first_row: usize,
    per_row: usize,
    tiles: &'a [Tile<'a>],
    rest: &'a [Vec<Q8Act>],
    out: &'a mut [f32],
}

impl<'a> Task<'a> {
    fn run(self) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(simd, self.with(simd));
        }
        self.portable()
    }

    fn portable(self) {
        let first = self.first_row * self.per_row;
        match self.blocks {
            Blocks::Q4(w) => rows_into(
                Q4Scalar,
                self.out,
                &w[first..],
                self.per_row,
                self.tiles,
                self.rest,
            ),
            Blocks::Q8(w) => rows_into(
                Q8Scalar,
                self.out,
                &w[first..],
                self.per_row,
                self.tiles,
                self.rest,
            ),
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn with(self, simd: pulp::x86::V3) -> Avx2Task<'a> {
        Avx2Task { task: self, simd }
    }
}

/// A task for `V3::vectorize`: a `WithSimd` type rather than a closure,
/// so that the kernels are inlined into the code compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[derive(Debug)]
struct Avx2Task<'a> {
    task: Task<'a>,
    simd: pulp::x86::V3,
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for Avx2Task<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        use crate::x86::{Q4Avx2, Q8Avx2};
        let Task {
            blocks,
            first_row,
            per_row,
            tiles,
            rest,
            out,
        } = self.task;
        let first = first_row * per_row;
        match blocks {
            Blocks::Q4(w) => rows_into(Q4Avx2(self.simd), out, &w[first..], per_row, tiles, rest),
            Blocks::Q8(w) => rows_into(Q8Avx2(self.simd), out, &w[first..], per_row, tiles, rest),
        }
    }
}

/// Each `cols`-long row of `x` in 8-bit blocks.
fn quantize_rows(x: &[f32], cols: usize) -> Vec<Vec<Q8Act>> {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return pulp::Simd::vectorize(simd, QuantizeRows { x, cols });
    }
    x.chunks_exact(cols).map(quantize).collect()
}

/// [`quantize_rows`] for `V3::vectorize` (see [`Avx2Task`]).
#[cfg(target_arch = "x86_64")]
#[derive(Debug)]
struct QuantizeRows<'a> {
    x: &'a [f32],
    cols: usize,
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for QuantizeRows<'_> {
    type Output = Vec<Vec<Q8Act>>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Self::Output {
        let mut rows = Vec::with_capacity(self.x.len() / self.cols);
        for row in self.x.chunks_exact(self.cols) {
            rows.push(quantize(row));
        }
        rows
    }
}

impl QuantMatrix {
    /// `x` is `[n, cols]` row-major; returns `x · Wᵀ`, `[n, rows]`, with
    /// `x` rounded to 8 bits per block (llama.cpp's arithmetic).
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        self.matmul_with(x, Pairing::Tiled, |task| task.run())
    }

    /// [`matmul`](Self::matmul), bit for bit, with each weight block
    /// unpacked once per activation row (the kernel before tiling): what
    /// the `gemm` benchmark compares with.
    #[doc(hidden)]
    pub fn matmul_one_by_one(&self, x: &[f32]) -> Vec<f32> {
        self.matmul_with(x, Pairing::OneByOne, |task| task.run())
    }

    fn matmul_with(&self, x: &[f32], pairing: Pairing, run: impl Fn(Task<'_>) + Sync) -> Vec<f32> {
        assert_eq!(x.len() % self.cols, 0, "x is not [n, {}]", self.cols);
        let n = x.len() / self.cols;
        let acts = quantize_rows(x, self.cols);
        let tiled = match pairing {
            Pairing::Tiled => n - n % TILE,
            Pairing::OneByOne => 0,
        };
        let (tiled, rest) = acts.split_at(tiled);
        let tiles: Vec<Tile<'_>> = tiled
            .chunks_exact(TILE)
            .map(|rows| Tile::new(std::array::from_fn(|r| rows[r].as_slice())))
            .collect();
        let per_row = self.cols / BLOCK;
        let chunk = chunk_rows(self.rows);
        // `[rows, n]`, so that each task owns one slice.
        let mut out_t = vec![0.0f32; self.rows * n];
        out_t
            .par_chunks_mut(chunk * n)
            .enumerate()
            .for_each(|(c, out)| {
                run(Task {
                    blocks: &self.blocks,
                    first_row: c * chunk,
                    per_row,
                    tiles: &tiles,
                    rest,
                    out,
                })
            });
        if n == 1 {
            return out_t;
        }
        let mut out = vec![0.0f32; n * self.rows];
        for (r, row) in out_t.chunks_exact(n).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                out[t * self.rows + r] = v;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockFormat;
    use half::f16;

    /// Deterministic bytes (xorshift).
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    /// GGUF blocks with every f16 scale (and Q4_1 minimum) set to `scale`.
    fn ggml(format: BlockFormat, rows: usize, cols: usize, scale: f32, min: f32) -> Vec<u8> {
        let size = format.block_bytes();
        let mut raw = bytes(rows * cols / BLOCK * size, 11);
        for block in raw.chunks_exact_mut(size) {
            block[..2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
            if format == BlockFormat::Q4_1 {
                block[2..4].copy_from_slice(&f16::from_f32(min).to_le_bytes());
            }
        }
        raw
    }

    /// f64 `x · Wᵀ`, `[n, rows]`, on the dequantised matrix and the
    /// dequantised 8-bit activations.
    fn reference(m: &QuantMatrix, x: &[f32]) -> Vec<f64> {
        let w = m.dequantize();
        let mut out = Vec::new();
        for row in x.chunks_exact(m.cols) {
            let xq: Vec<f64> = quantize(row)
                .iter()
                .flat_map(|b| b.qs.map(|q| f64::from(q) * f64::from(b.d)))
                .collect();
            for wr in w.chunks_exact(m.cols) {
                out.push(wr.iter().zip(&xq).map(|(&a, &b)| f64::from(a) * b).sum());
            }
        }
        out
    }

    fn activations(n: usize, cols: usize) -> Vec<f32> {
        bytes(n * cols, 5)
            .iter()
            .map(|&b| (f32::from(b) - 127.5) / 64.0)
            .collect()
    }

    const FORMATS: [BlockFormat; 3] = [BlockFormat::Q4_0, BlockFormat::Q4_1, BlockFormat::Q8_0];

    #[test]
    fn matches_the_f64_reference_on_both_paths() {
        for format in FORMATS {
            // 77 rows: chunks and the two-accumulator loop both have remainders.
            let (rows, cols) = (77, 160);
            let m =
                QuantMatrix::from_ggml(format, rows, cols, &ggml(format, rows, cols, 0.01, -0.05))
                    .expect("matrix");
            for n in [1, 3, 6] {
                let x = activations(n, cols);
                let want = reference(&m, &x);
                let fast = m.matmul(&x);
                let portable = m.matmul_with(&x, Pairing::Tiled, |task| task.portable());
                for ((&f, &p), &w) in fast.iter().zip(&portable).zip(&want) {
                    let tol = 1e-5 * (1.0 + w.abs());
                    assert!(
                        (f64::from(f) - w).abs() < tol,
                        "{format:?} n={n}: {f} vs {w}"
                    );
                    assert!(
                        (f64::from(p) - w).abs() < tol,
                        "{format:?} n={n}: {p} vs {w}"
                    );
                }
            }
        }
    }

    /// With unit scales and integer activations whose blocks peak at 127,
    /// every product is an integer: both paths must give it exactly, for a
    /// tile of rows and a leftover one.
    #[test]
    fn integer_products_are_exact() {
        for format in FORMATS {
            let (rows, cols, n) = (40, 96, 5);
            let m = QuantMatrix::from_ggml(format, rows, cols, &ggml(format, rows, cols, 1.0, 0.0))
                .expect("matrix");
            let mut x: Vec<f32> = bytes(n * cols, 9)
                .iter()
                .map(|&b| f32::from(b as i8).clamp(-127.0, 127.0))
                .collect();
            for block in x.chunks_exact_mut(BLOCK) {
                block[7] = 127.0;
            }
            let w = m.dequantize();
            let want: Vec<f32> = x
                .chunks_exact(cols)
                .flat_map(|xr| {
                    w.chunks_exact(cols).map(move |r| {
                        r.iter().zip(xr).map(|(&a, &b)| (a * b) as i32).sum::<i32>() as f32
                    })
                })
                .collect();
            assert_eq!(m.matmul(&x), want, "{format:?}");
            assert_eq!(
                m.matmul_with(&x, Pairing::Tiled, |task| task.portable()),
                want,
                "{format:?}"
            );
        }
    }

    /// Tiles and leftover rows, on both paths (`run` is the AVX2 one where
    /// the CPU has AVX2) and in every format: each result has the bits of
    /// its row multiplied alone, and of the one-by-one kernel. 160 columns
    /// are five blocks, so the tile's two-accumulator loop has a remainder
    /// too.
    #[test]
    fn a_batch_equals_its_rows_one_by_one() {
        fn bits(v: Vec<f32>) -> Vec<u32> {
            v.into_iter().map(f32::to_bits).collect()
        }
        for format in FORMATS {
            let (rows, cols) = (50, 160);
            let m =
                QuantMatrix::from_ggml(format, rows, cols, &ggml(format, rows, cols, 0.02, 0.1))
                    .expect("matrix");
            let x = activations(17, cols);
            for portable in [false, true] {
                let product = |x: &[f32], pairing| {
                    bits(m.matmul_with(x, pairing, |task| {
                        if portable {
                            task.portable()
                        } else {
                            task.run()
                        }
                    }))
                };
                let alone: Vec<Vec<u32>> = x
                    .chunks_exact(cols)
                    .map(|row| product(row, Pairing::Tiled))
                    .collect();
                for n in [1, 2, 3, 4, 5, 7, 8, 9, 17] {
                    let x = &x[..n * cols];
                    let tiled = product(x, Pairing::Tiled);
                    assert_eq!(
                        tiled,
                        product(x, Pairing::OneByOne),
                        "{format:?} n={n} portable={portable}"
                    );
                    for (t, want) in alone[..n].iter().enumerate() {
                        assert_eq!(
                            tiled[t * rows..(t + 1) * rows],
                            want[..],
                            "{format:?} n={n} row {t} portable={portable}"
                        );
                    }
                }
            }
        }
    }
}
