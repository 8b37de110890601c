//! Reads `.safetensors` files (f32, f16, bf16) into the host [`WeightMap`],
//! converting to f32. The file is read whole (no mmap: the crate forbids
//! `unsafe`); parsing and bounds checks are the `safetensors` crate's.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::inference::weights::{HostTensor, WeightMap};

/// Why a safetensors file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    TooLarge(#[from] crate::meminfo::TooLarge),
    #[error("{path}: corrupt or truncated safetensors file")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: safetensors::SafeTensorError,
    },
    #[error("{path}: tensor {tensor}: {reason}")]
    Tensor {
        path: PathBuf,
        tensor: String,
        reason: String,
    },
}

/// Loads every tensor of `path` into `map`.
pub fn read_into(path: &Path, map: &mut WeightMap) -> Result<(), SafetensorsError> {
    // Read whole: a file larger than memory is refused first.
    crate::meminfo::check_fits(path, crate::meminfo::read())?;
    let bytes = std::fs::read(path).map_err(|source| SafetensorsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|source| SafetensorsError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    for (name, view) in file.tensors() {
        let tensor_err = |reason: String| SafetensorsError::Tensor {
            path: path.to_path_buf(),
            tensor: name.clone(),
            reason,
        };
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => return Err(tensor_err(format!("dtype {other:?} is not supported"))),
        };
        let count: usize = view.shape().iter().product();
        if values.len() != count {
            return Err(tensor_err(format!(
                "{} values for shape {:?}",
                values.len(),
                view.shape()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(tensor_err("holds NaN or infinite values".into()));
        }
        map.insert(
            name.clone(),
            HostTensor {
                shape: view.shape().to_vec(),
                data: values,
            },
            path,
        );
    }
    Ok(())
}
