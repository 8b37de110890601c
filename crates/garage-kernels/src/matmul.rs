//! `x · Wᵀ` for a quantised `W`: activation rows quantised once, weight
//! rows split into chunks that rayon's threads take, each chunk run with
//! AVX2 when the CPU has it (checked at run time), else portable code.
//! Several activation rows (prefill) go through the weight rows in panels
//! of [`PANEL`], blocked for the caches: a chunk's weight rows are unpacked
//! a band at a time, and each panel meets the whole band while its blocks
//! are in L1, so that each weight block is unpacked once rather than once
//! per activation row or tile, and the activations stream from L2 once per
//! band rather than once per weight row. Every result is bitwise equal to
//! the one-row kernel's, which takes decode's single row; the rows that a
//! prefill leaves over from the panels go to the tile kernel (four rows
//! per unpacked weight block, weight row after weight row: what `matmul`
//! ran before panels) and the one-row kernel.

use rayon::prelude::*;

use crate::activation::{panels, quantize, PanelBlock, Q8Act, Tile, PANEL, TILE};
use crate::blocks::{Blocks, QuantMatrix, BLOCK};
use crate::dot::{Q4Scalar, Q8Scalar, RowDot};

/// Rows per rayon task: a few tasks per thread, none tiny.
fn chunk_rows(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads() * 4).max(16)
}

/// Weight rows unpacked at a time for the panels: 16 rows of 576 columns
/// are 18 KB unpacked, a panel's blocks 6 KB; 8 to 64 rows measured within
/// noise of each other (the kernel is bound by its arithmetic, not by the
/// caches, once a panel is reused).
const BAND: usize = 16;

/// Rows left over from the panels that go to a tile and the one-row
/// kernel (one or two of them cost less than a panel, three about the
/// same, a tile about 60% of a panel): fewer than this many; more fill a
/// panel with rows of zeros.
const LEFT_OVER: usize = 6;

/// How a weight row meets the activation rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pairing {
    /// Panels of [`PANEL`] activation rows against bands of unpacked
    /// weight rows, the rows left over in a tile and one by one.
    Blocked,
    /// [`TILE`] activation rows per unpacked weight block, the rest one by
    /// one (the kernel before blocking, kept to measure against).
    Tiled,
    /// Every activation row on its own (the kernel before tiling, kept to
    /// measure against).
    OneByOne,
}

/// The activation rows as a pairing takes them: the panels' rows first,
/// then the tiles', then `rest` (each kind may be empty).
#[derive(Debug)]
struct Acts<'a> {
    panels: Vec<PanelBlock>,
    panel_rows: usize,
    tiles: Vec<Tile<'a>>,
    rest: &'a [Vec<Q8Act>],
}

impl<'a> Acts<'a> {
    fn new(acts: &'a [Vec<Q8Act>], blocks: usize, pairing: Pairing) -> Self {
        let n = acts.len();
        let (panel_rows, tiled) = match pairing {
            Pairing::Blocked if n % PANEL < LEFT_OVER => {
                (n - n % PANEL, n % PANEL - n % PANEL % TILE)
            }
            Pairing::Blocked => (n, 0),
            Pairing::Tiled => (0, n - n % TILE),
            Pairing::OneByOne => (0, 0),
        };
        let (paneled, acts) = acts.split_at(panel_rows);
        let (tiled, rest) = acts.split_at(tiled);
        Acts {
            panels: panels(paneled, blocks),
            panel_rows,
            tiles: tiled
                .chunks_exact(TILE)
                .map(|rows| Tile::new(std::array::from_fn(|r| rows[r].as_slice())))
                .collect(),
            rest,
        }
    }
}

/// Fills `out[t][i]` with the dot of weight row `i` of `w` and activation
/// row `t`.
#[inline(always)]
fn rows_into<K: RowDot>(
    k: K,
    out: &mut [&mut [f32]],
    w: &[K::Weight],
    per_row: usize,
    acts: &Acts<'_>,
) {
    let (out_panels, out) = out.split_at_mut(acts.panel_rows);
    let (out_tiles, out_rest) = out.split_at_mut(acts.tiles.len() * TILE);
    if acts.panels.len() == per_row {
        // A single panel meets each weight block once: reading the blocks
        // as they are costs less than unpacking them into `band` first.
        for (i, row) in w.chunks_exact(per_row).enumerate() {
            let sums = k.dot_panel_unprepared(row, &acts.panels);
            for (d, s) in out_panels.iter_mut().zip(sums) {
                d[i] = s;
            }
        }
    } else if !out_panels.is_empty() {
        let mut band = Vec::with_capacity(w.len().min(BAND * per_row));
        for (b, w) in w.chunks(BAND * per_row).enumerate() {
            band.clear();
            // A loop, not `map`: a closure would not be compiled for AVX2.
            for block in w {
                band.push(k.prepare(block));
            }
            for (panel, dst) in acts
                .panels
                .chunks_exact(per_row)
                .zip(out_panels.chunks_mut(PANEL))
            {
                for (i, row) in band.chunks_exact(per_row).enumerate() {
                    let sums = k.dot_panel(row, panel);
                    for (d, s) in dst.iter_mut().zip(sums) {
                        d[b * BAND + i] = s;
                    }
                }
            }
        }
    }
    for (i, row) in w.chunks_exact(per_row).enumerate() {
        for (dst, tile) in out_tiles.chunks_exact_mut(TILE).zip(&acts.tiles) {
            for (d, s) in dst.iter_mut().zip(k.dot_tile(row, tile)) {
                d[i] = s;
            }
        }
        for (d, a) in out_rest.iter_mut().zip(acts.rest) {
            d[i] = k.dot(row, a);
        }
    }
}

/// One rayon task's rows: `out[t]` takes their dots with activation row
/// `t`.
#[derive(Debug)]
struct Task<'a> {
    blocks: &'a Blocks,
    first_row: usize,
    rows: usize,
    per_row: usize,
    acts: &'a Acts<'a>,
    out: Vec<&'a mut [f32]>,
}

impl<'a> Task<'a> {
    fn run(self) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(simd, self.with(simd));
        }
        self.portable()
    }

    /// The task's weight blocks.
    fn weights<T>(&self, w: &'a [T]) -> &'a [T] {
        &w[self.first_row * self.per_row..(self.first_row + self.rows) * self.per_row]
    }

    fn portable(mut self) {
        match self.blocks {
            Blocks::Q4(w) => {
                let w = self.weights(w);
                rows_into(Q4Scalar, &mut self.out, w, self.per_row, self.acts)
            }
            Blocks::Q8(w) => {
                let w = self.weights(w);
                rows_into(Q8Scalar, &mut self.out, w, self.per_row, self.acts)
            }
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
        let simd = self.simd;
        let mut task = self.task;
        match task.blocks {
            Blocks::Q4(w) => {
                let w = task.weights(w);
                rows_into(Q4Avx2(simd), &mut task.out, w, task.per_row, task.acts)
            }
            Blocks::Q8(w) => {
                let w = task.weights(w);
                rows_into(Q8Avx2(simd), &mut task.out, w, task.per_row, task.acts)
            }
        }
    }
}

/// Each `cols`-long row of `x` in 8-bit blocks.
fn quantize_rows(x: &[f32], cols: usize) -> Vec<Vec<Q8Act>> {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return pulp::Simd::vectorize(simd, QuantizeRows { x, cols, simd });
    }
    x.chunks_exact(cols).map(quantize).collect()
}

/// [`quantize_rows`] for `V3::vectorize` (see [`Avx2Task`]).
#[cfg(target_arch = "x86_64")]
#[derive(Debug)]
struct QuantizeRows<'a> {
    x: &'a [f32],
    cols: usize,
    simd: pulp::x86::V3,
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for QuantizeRows<'_> {
    type Output = Vec<Vec<Q8Act>>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Self::Output {
        let mut rows = Vec::with_capacity(self.x.len() / self.cols);
        for row in self.x.chunks_exact(self.cols) {
            rows.push(crate::x86::quantize(self.simd, row));
        }
        rows
    }
}

impl QuantMatrix {
    /// `x` is `[n, cols]` row-major; returns `x · Wᵀ`, `[n, rows]`, with
    /// `x` rounded to 8 bits per block (llama.cpp's arithmetic).
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        self.matmul_with(x, Pairing::Blocked, |task| task.run())
    }

    /// [`matmul`](Self::matmul), bit for bit, with each weight block
    /// unpacked once per tile of four activation rows, weight row after
    /// weight row (the kernel before blocking): what the `gemm` benchmark
    /// compares with.
    #[doc(hidden)]
    pub fn matmul_tile4(&self, x: &[f32]) -> Vec<f32> {
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
        let per_row = self.cols / BLOCK;
        let mut out = vec![0.0f32; n * self.rows];
        if out.is_empty() {
            return out;
        }
        let acts = quantize_rows(x, self.cols);
        let acts = Acts::new(&acts, per_row, pairing);
        let chunk = chunk_rows(self.rows);
        // Each task's part of each output row.
        let mut parts: Vec<Vec<&mut [f32]>> = (0..self.rows.div_ceil(chunk))
            .map(|_| Vec::with_capacity(n))
            .collect();
        for row in out.chunks_exact_mut(self.rows) {
            for (part, piece) in parts.iter_mut().zip(row.chunks_mut(chunk)) {
                part.push(piece);
            }
        }
        parts.into_par_iter().enumerate().for_each(|(c, out)| {
            let first_row = c * chunk;
            run(Task {
                blocks: &self.blocks,
                first_row,
                rows: chunk.min(self.rows - first_row),
                per_row,
                acts: &acts,
                out,
            })
        });
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
            assert_eq!(m.matmul(&[]), []);
            for n in [1, 3, 6, 19] {
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
    /// panel of rows, a tile and a leftover one.
    #[test]
    fn integer_products_are_exact() {
        for format in FORMATS {
            let (rows, cols, n) = (40, 96, 13);
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

    /// Panels, tiles and leftover rows, on both paths (`run` is the AVX2
    /// one where the CPU has AVX2) and in every format: each result has the
    /// bits of its row multiplied alone, and of the tiled and one-by-one
    /// kernels. 77 weight rows: chunks of 16 leave 13, which one band takes
    /// (16 rows) with rows to spare; 160 and 96 columns are five and three
    /// blocks, so each pass takes a block more or less than the other, and
    /// the tile's two-accumulator loop has a remainder too.
    #[test]
    fn a_batch_equals_its_rows_one_by_one() {
        fn bits(v: Vec<f32>) -> Vec<u32> {
            v.into_iter().map(f32::to_bits).collect()
        }
        for format in FORMATS {
            for (rows, cols) in [(77, 160), (37, 96), (3, 64)] {
                let m = QuantMatrix::from_ggml(
                    format,
                    rows,
                    cols,
                    &ggml(format, rows, cols, 0.02, 0.1),
                )
                .expect("matrix");
                let x = activations(65, cols);
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
                        .map(|row| product(row, Pairing::OneByOne))
                        .collect();
                    for n in [1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 33, 65] {
                        let x = &x[..n * cols];
                        let blocked = product(x, Pairing::Blocked);
                        let what = format!("{format:?} {rows}x{cols} n={n} portable={portable}");
                        assert_eq!(blocked, product(x, Pairing::Tiled), "{what}");
                        assert_eq!(blocked, product(x, Pairing::OneByOne), "{what}");
                        for (t, want) in alone[..n].iter().enumerate() {
                            assert_eq!(
                                blocked[t * rows..(t + 1) * rows],
                                want[..],
                                "{what} row {t}"
                            );
                        }
                    }
                }
            }
        }
    }
}
