//! Host-side weights: every loader (safetensors, GGUF) produces a
//! [`WeightMap`] of f32 tensors or, for GGUF's quantised tensors, the blocks
//! themselves; it remembers which file each came from, so a shape mismatch
//! or a missing tensor names both the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use garage_kernels::QuantMatrix;

/// Why a model's weights could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("tensor {tensor} is missing from {origin}")]
    Missing { tensor: String, origin: String },
    #[error("{file}: tensor {tensor} has shape {found:?}, the config expects {expected:?}")]
    Shape {
        file: PathBuf,
        tensor: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// A dense row-major f32 tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Row-major transpose of a 2-D tensor (`[r, c]` → `[c, r]`).
    pub fn transposed(&self) -> HostTensor {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut data = vec![0.0; self.data.len()];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        HostTensor {
            shape: vec![cols, rows],
            data,
        }
    }
}

/// A weight as loaded: dense f32, or a `[rows, cols]` matrix in GGML blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum HostWeight {
    Dense(HostTensor),
    Quant(QuantMatrix),
}

impl HostWeight {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            HostWeight::Dense(t) => t.shape.clone(),
            HostWeight::Quant(m) => vec![m.rows(), m.cols()],
        }
    }

    /// The weight as f32 (quantised blocks dequantised).
    pub fn into_dense(self) -> HostTensor {
        match self {
            HostWeight::Dense(t) => t,
            HostWeight::Quant(m) => HostTensor {
                shape: vec![m.rows(), m.cols()],
                data: m.dequantize(),
            },
        }
    }
}

#[derive(Debug)]
struct Entry {
    weight: HostWeight,
    file: PathBuf,
}

/// Named tensors from one or more files.
#[derive(Debug, Default)]
pub struct WeightMap {
    entries: HashMap<String, Entry>,
    origin: String,
}

impl WeightMap {
    /// An empty map; `origin` (a directory or file) is named in "missing" errors.
    pub fn new(origin: &Path) -> Self {
        WeightMap {
            entries: HashMap::new(),
            origin: origin.display().to_string(),
        }
    }

    pub fn insert(&mut self, name: String, tensor: HostTensor, file: &Path) {
        self.insert_weight(name, HostWeight::Dense(tensor), file);
    }

    pub fn insert_weight(&mut self, name: String, weight: HostWeight, file: &Path) {
        self.entries.insert(
            name,
            Entry {
                weight,
                file: file.to_path_buf(),
            },
        );
    }

    fn checked(&self, name: &str, entry: &Entry, expected: &[usize]) -> Result<(), WeightError> {
        let found = entry.weight.shape();
        if found != expected {
            return Err(WeightError::Shape {
                file: entry.file.clone(),
                tensor: name.to_string(),
                found,
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }

    fn missing(&self, name: &str) -> WeightError {
        WeightError::Missing {
            tensor: name.to_string(),
            origin: self.origin.clone(),
        }
    }

    /// Removes and returns `name` as loaded, checking its shape against `expected`.
    pub fn take_weight(
        &mut self,
        name: &str,
        expected: &[usize],
    ) -> Result<HostWeight, WeightError> {
        let entry = self
            .entries
            .remove(name)
            .ok_or_else(|| self.missing(name))?;
        self.checked(name, &entry, expected)?;
        Ok(entry.weight)
    }

    /// Returns `name` as loaded without removing it (for tied embeddings).
    pub fn get_weight(&self, name: &str, expected: &[usize]) -> Result<HostWeight, WeightError> {
        let entry = self.entries.get(name).ok_or_else(|| self.missing(name))?;
        self.checked(name, entry, expected)?;
        Ok(entry.weight.clone())
    }

    /// Removes and returns `name` as f32, checking its shape against `expected`.
    pub fn take(&mut self, name: &str, expected: &[usize]) -> Result<HostTensor, WeightError> {
        self.take_weight(name, expected).map(HostWeight::into_dense)
    }

    /// Returns `name` as f32 without removing it.
    pub fn get(&self, name: &str, expected: &[usize]) -> Result<HostTensor, WeightError> {
        self.get_weight(name, expected).map(HostWeight::into_dense)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_shape_errors() {
        let t = HostTensor {
            shape: vec![2, 3],
            data: vec![1., 2., 3., 4., 5., 6.],
        };
        assert_eq!(t.transposed().data, vec![1., 4., 2., 5., 3., 6.]);
        let mut map = WeightMap::new(Path::new("dir"));
        map.insert("w".into(), t, Path::new("dir/a.safetensors"));
        let err = map.get("w", &[3, 2]).expect_err("shape").to_string();
        assert!(
            err.contains("dir/a.safetensors") && err.contains("tensor w"),
            "{err}"
        );
        let err = map.take("x", &[1]).expect_err("missing").to_string();
        assert!(err.contains("tensor x is missing from dir"), "{err}");
    }
}
