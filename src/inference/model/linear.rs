//! The model's linear layers: burn's dense matmul, or on a host (CPU)
//! backend the quantised kernels of `garage-kernels`, which multiply GGUF's
//! Q4_0/Q4_1/Q8_0 blocks directly (llama.cpp's arithmetic: activations
//! rounded to 8 bits per block). f32/f16/bf16 checkpoints stay dense, so
//! their results are exact f32 (the NumPy reference test holds them to 1e-4).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use garage_kernels::QuantMatrix;

use crate::inference::weights::{HostTensor, HostWeight};

/// `y = x · Wᵀ` for `W` `[out, in]`.
#[derive(Debug)]
pub(super) enum Linear<B: Backend> {
    /// `Wᵀ`, `[in, out]`, on the device.
    Dense(Tensor<B, 2>),
    /// `W` in blocks, on the host.
    Quant(QuantMatrix),
}

/// Concatenates `[out_i, in]` weights along `out` and transposes to `[in, sum out]`.
fn fuse_transposed(parts: Vec<HostTensor>) -> HostTensor {
    let cols = parts[0].shape[1];
    let rows: usize = parts.iter().map(|p| p.shape[0]).sum();
    let mut data = Vec::with_capacity(rows * cols);
    for p in parts {
        data.extend(p.data);
    }
    HostTensor {
        shape: vec![rows, cols],
        data,
    }
    .transposed()
}

impl<B: Backend> Linear<B> {
    /// The parts (`[out_i, in]`, same `in`) fused into one layer: quantised
    /// when `quantised` is allowed and every part is in blocks of one kind,
    /// dense otherwise.
    pub fn fused(parts: Vec<HostWeight>, quantised: bool, device: &B::Device) -> Self {
        if quantised && parts.iter().all(|p| matches!(p, HostWeight::Quant(_))) {
            let blocks = parts
                .iter()
                .filter_map(|p| match p {
                    HostWeight::Quant(m) => Some(m.clone()),
                    HostWeight::Dense(_) => None,
                })
                .collect();
            if let Ok(Some(m)) = QuantMatrix::stack(blocks) {
                return Linear::Quant(m);
            }
        }
        let dense = fuse_transposed(parts.into_iter().map(HostWeight::into_dense).collect());
        let shape = [dense.shape[0], dense.shape[1]];
        Linear::Dense(Tensor::from_data(
            TensorData::new(dense.data, shape),
            device,
        ))
    }

    /// `x` `[n, in]` → `[n, out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Linear::Dense(w) => x.matmul(w.clone()),
            Linear::Quant(m) => {
                let device = x.device();
                let n = x.dims()[0];
                let host: Vec<f32> = x
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("f32 activations");
                let y = m.matmul(&host);
                Tensor::from_data(TensorData::new(y, [n, m.rows()]), &device)
            }
        }
    }
}
