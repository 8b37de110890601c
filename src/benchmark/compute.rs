//! Compute probes on a burn backend: device memory bandwidth (a STREAM-style
//! `a += b` over large f32 tensors) and square f32 matmul rate. Every loop
//! is bounded by a repetition count and a time budget; the best run counts.

use std::time::{Duration, Instant};

use burn::tensor::backend::{Backend, ExecutionError};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Why a probe could not finish.
#[derive(Debug, thiserror::Error)]
#[error("waiting for the {probe} probe's kernels")]
pub struct ProbeError {
    pub probe: &'static str,
    #[source]
    pub source: ExecutionError,
}

/// How much work the probes may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputeLimits {
    /// Bytes of each of the two tensors the bandwidth probe adds.
    pub bandwidth_bytes: usize,
    /// Repetitions of each measurement at most (the best counts).
    pub repeats: usize,
    /// Time each probe may spend at most, warm-up included.
    pub budget: Duration,
    /// Largest matmul side tried.
    pub max_matmul_n: usize,
    /// A matmul size is big enough once one product takes this long.
    pub matmul_target: Duration,
}

impl ComputeLimits {
    /// A full run: 256 MiB tensors, five repetitions, 5 s per probe.
    pub fn full() -> Self {
        ComputeLimits {
            bandwidth_bytes: 256 << 20,
            repeats: 5,
            budget: Duration::from_secs(5),
            max_matmul_n: 8192,
            matmul_target: Duration::from_millis(200),
        }
    }

    /// A quick run for tests and `--quick`: small tensors, two repetitions.
    pub fn quick() -> Self {
        ComputeLimits {
            bandwidth_bytes: 16 << 20,
            repeats: 2,
            budget: Duration::from_secs(1),
            max_matmul_n: 512,
            matmul_target: Duration::from_millis(20),
        }
    }
}

/// Memory bandwidth: `a += b` moves three tensors' bytes (two reads, one write).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    pub gb_per_s: f64,
    /// Bytes of each tensor.
    pub tensor_bytes: u64,
    pub runs: usize,
}

/// Square f32 matmul rate, `2·n³` floating-point operations per product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matmul {
    pub gflop_per_s: f64,
    pub n: usize,
    pub runs: usize,
}

fn sync<B: Backend>(device: &B::Device, probe: &'static str) -> Result<(), ProbeError> {
    B::sync(device).map_err(|source| ProbeError { probe, source })
}

/// Runs `step` (which must end synchronised) up to `repeats` times within
/// `budget`, after one untimed warm-up; returns the shortest run and the count.
fn best_of(
    limits: &ComputeLimits,
    mut step: impl FnMut() -> Result<(), ProbeError>,
) -> Result<(Duration, usize), ProbeError> {
    let started = Instant::now();
    step()?;
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < limits.repeats.max(1) && (runs == 0 || started.elapsed() < limits.budget) {
        let t = Instant::now();
        step()?;
        best = best.min(t.elapsed());
        runs += 1;
    }
    Ok((best, runs))
}

/// Measures memory bandwidth on `device`.
pub fn bandwidth<B: Backend>(
    device: &B::Device,
    limits: &ComputeLimits,
) -> Result<Bandwidth, ProbeError> {
    let len = (limits.bandwidth_bytes / 4).max(1);
    let b = Tensor::<B, 1>::full([len], 1.0, device);
    // `a` stays uniquely owned, so backends add in place: no allocation
    // (and no page faults) inside the timed loop.
    let mut a = Some(Tensor::<B, 1>::zeros([len], device));
    sync::<B>(device, "bandwidth")?;
    let (best, runs) = best_of(limits, || {
        let sum = a.take().map(|a| a + b.clone());
        a = sum;
        sync::<B>(device, "bandwidth")
    })?;
    let moved = 3.0 * (len * 4) as f64;
    Ok(Bandwidth {
        gb_per_s: moved / best.as_secs_f64() / 1e9,
        tensor_bytes: (len * 4) as u64,
        runs,
    })
}

/// Measures the f32 matmul rate on `device`: doubles `n` from 256 until one
/// product takes `matmul_target` (or `max_matmul_n` or the time budget is
/// reached), then times that size.
pub fn matmul<B: Backend>(
    device: &B::Device,
    limits: &ComputeLimits,
) -> Result<Matmul, ProbeError> {
    let started = Instant::now();
    let product = |n: usize| -> Result<Duration, ProbeError> {
        let x = Tensor::<B, 2>::full([n, n], 0.5, device);
        let y = Tensor::<B, 2>::full([n, n], 0.25, device);
        sync::<B>(device, "matmul")?;
        let t = Instant::now();
        let z = x.matmul(y);
        sync::<B>(device, "matmul")?;
        let elapsed = t.elapsed();
        drop(z);
        Ok(elapsed)
    };
    let mut n = 256.min(limits.max_matmul_n.max(16));
    while n * 2 <= limits.max_matmul_n
        && started.elapsed() < limits.budget / 2
        && product(n)? < limits.matmul_target
    {
        n *= 2;
    }
    let x = Tensor::<B, 2>::full([n, n], 0.5, device);
    let y = Tensor::<B, 2>::full([n, n], 0.25, device);
    let (best, runs) = best_of(limits, || {
        let z = x.clone().matmul(y.clone());
        sync::<B>(device, "matmul")?;
        drop(z);
        Ok(())
    })?;
    let flop = 2.0 * (n as f64).powi(3);
    Ok(Matmul {
        gflop_per_s: flop / best.as_secs_f64() / 1e9,
        n,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::backend::Cpu;

    #[test]
    fn quick_probes_give_positive_rates_on_the_cpu() {
        let device = Default::default();
        let limits = ComputeLimits::quick();
        let bw = bandwidth::<Cpu>(&device, &limits).expect("bandwidth");
        assert!(bw.gb_per_s > 0.0 && bw.runs >= 1, "{bw:?}");
        assert_eq!(bw.tensor_bytes, 16 << 20);
        let mm = matmul::<Cpu>(&device, &limits).expect("matmul");
        assert!(mm.gflop_per_s > 0.0 && mm.n <= 512, "{mm:?}");
    }
}
