//! Eight f32 lanes, the vector the attention kernel is written in: the
//! operations it needs as a trait, implemented here in portable Rust and
//! in `avx2` with AVX2 and FMA. The portable lanes round `a · b + c`
//! twice and take libm's `exp`, so the two differ in the last bits only.

/// Values in one vector.
pub(super) const LANES: usize = 8;

/// The vector operations of the attention kernel.
pub(super) trait Lanes: Copy {
    type V: Copy;
    fn zero(self) -> Self::V;
    fn splat(self, x: f32) -> Self::V;
    fn load(self, x: &[f32; LANES]) -> Self::V;
    fn store(self, v: Self::V, to: &mut [f32; LANES]);
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + acc`.
    fn mul_add(self, a: Self::V, b: Self::V, acc: Self::V) -> Self::V;
    /// `e^x` lane by lane for `x ≤ 0` (the kernel's only use); −∞ gives 0.
    fn exp(self, x: Self::V) -> Self::V;
    /// The largest lane.
    fn max_lane(self, v: Self::V) -> f32;
    /// The sum of the lanes.
    fn sum(self, v: Self::V) -> f32;
    /// The sum of each vector's lanes.
    fn sums4(self, v: [Self::V; 4]) -> [f32; 4];
}

/// The lanes in portable Rust, for CPUs without AVX2 (the compiler
/// vectorises most of it with what the target has).
#[derive(Debug, Clone, Copy)]
pub(super) struct Portable;

/// `f(a[i], b[i])` for each lane.
#[inline(always)]
fn zip(a: [f32; LANES], b: [f32; LANES], f: impl Fn(f32, f32) -> f32) -> [f32; LANES] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

impl Lanes for Portable {
    type V = [f32; LANES];

    #[inline(always)]
    fn zero(self) -> Self::V {
        [0.0; LANES]
    }

    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        [x; LANES]
    }

    #[inline(always)]
    fn load(self, x: &[f32; LANES]) -> Self::V {
        *x
    }

    #[inline(always)]
    fn store(self, v: Self::V, to: &mut [f32; LANES]) {
        *to = v;
    }

    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x * y)
    }

    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x + y)
    }

    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x - y)
    }

    #[inline(always)]
    fn max(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, f32::max)
    }

    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, acc: Self::V) -> Self::V {
        self.add(self.mul(a, b), acc)
    }

    #[inline(always)]
    fn exp(self, x: Self::V) -> Self::V {
        x.map(f32::exp)
    }

    #[inline(always)]
    fn max_lane(self, v: Self::V) -> f32 {
        v.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }

    #[inline(always)]
    fn sum(self, v: Self::V) -> f32 {
        v.into_iter().sum()
    }

    #[inline(always)]
    fn sums4(self, v: [Self::V; 4]) -> [f32; 4] {
        v.map(|v| self.sum(v))
    }
}
