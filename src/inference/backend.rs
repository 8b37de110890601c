//! Which burn backend runs the model. CPU (`Flex`, faster than `NdArray`
//! here: see BENCHMARKS-inference.md) by default; CUDA with the `cuda` cargo
//! feature, used only when the driver library is present, since burn panics
//! when it creates a CUDA device without one. [`run_on`] is the one place
//! that turns a [`DeviceChoice`] into a backend: the worker and
//! `garage benchmark` both go through it.

use std::path::Path;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// The CPU backend.
pub type Cpu = burn::backend::Flex;

/// Whether `B` keeps its tensors in host memory (the CPU backends), where
/// the model's linear layers run the quantised host kernels.
pub fn runs_on_host<B: burn::tensor::backend::Backend>() -> bool {
    use std::any::TypeId;
    let id = TypeId::of::<B>();
    id == TypeId::of::<burn::backend::Flex>() || id == TypeId::of::<burn::backend::NdArray>()
}

/// The CUDA backend (cargo feature `cuda`).
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;

/// The compute device the worker was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA when built with it and a driver is present, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// The backend a [`DeviceChoice`] resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// burn's `Flex` CPU backend.
    Cpu,
    /// burn's CUDA backend, device 0.
    Cuda,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

/// Work generic over the backend, run by [`run_on`] on the one it picks.
pub trait OnBackend {
    type Output;
    fn run<B: Backend>(self, device: B::Device, kind: BackendKind) -> Self::Output;
}

/// Runs `work` on CUDA device 0 when `choice` allows it, this build has the
/// `cuda` feature, the driver is present and the device works; on the CPU
/// otherwise. `kernel_cache` is CUDA's compiled-kernel cache directory
/// (see [`configure_cuda_caches`]).
pub fn run_on<W: OnBackend>(
    choice: DeviceChoice,
    kernel_cache: Option<&Path>,
    work: W,
) -> W::Output {
    if use_cuda(choice) {
        #[cfg(feature = "cuda")]
        {
            configure_cuda_caches(kernel_cache);
            if cuda_device_works() {
                tracing::info!("running on CUDA device 0");
                return work.run::<Cuda>(Default::default(), BackendKind::Cuda);
            }
            tracing::warn!("CUDA device 0 could not be created: running on the CPU");
        }
    }
    // Only CUDA has a kernel cache.
    #[cfg(not(feature = "cuda"))]
    let _ = kernel_cache;
    tracing::info!("running on the CPU");
    work.run::<Cpu>(Default::default(), BackendKind::Cpu)
}

/// Directories the dynamic loader searches for `libcuda.so.1`, besides the
/// ld.so cache.
const DRIVER_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/nvidia/lib64",
    "/usr/local/cuda/compat",
];

/// Whether the NVIDIA driver library `libcuda.so.1` can be found. The crate
/// forbids `unsafe`, so this looks for the file where `dlopen` would rather
/// than opening it.
pub fn cuda_driver_present() -> bool {
    let from_env = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    let dirs = from_env
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(DRIVER_DIRS.iter().copied());
    for dir in dirs {
        if std::path::Path::new(dir).join("libcuda.so.1").exists() {
            return true;
        }
    }
    std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("libcuda.so.1"))
        .unwrap_or(false)
}

/// Whether `choice` resolves to CUDA on this build and host; logs why not.
pub fn use_cuda(choice: DeviceChoice) -> bool {
    if choice == DeviceChoice::Cpu {
        return false;
    }
    if !cfg!(feature = "cuda") {
        if choice == DeviceChoice::Cuda {
            tracing::warn!("built without the `cuda` feature: running on the CPU");
        }
        return false;
    }
    if !cuda_driver_present() {
        tracing::warn!("libcuda.so.1 not found (no NVIDIA driver): running on the CPU");
        return false;
    }
    true
}

/// Enables CubeCL's compiled-kernel cache (and puts its autotune cache) in
/// `dir`, or in the system cache directory when `None`, so a restarted
/// worker does not recompile every kernel. Must run before the first CUDA
/// device is created.
#[cfg(feature = "cuda")]
pub fn configure_cuda_caches(dir: Option<&Path>) {
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    let mut config = CubeClRuntimeConfig::default();
    match dir {
        Some(dir) => {
            config.compilation.cache = Some(CacheConfig::File(dir.join("kernels")));
            config.autotune.cache = CacheConfig::File(dir.join("autotune"));
        }
        None => {
            config.compilation.cache = Some(CacheConfig::Global);
            config.autotune.cache = CacheConfig::Global;
        }
    }
    // `set` panics once the configuration was read or set (a second worker
    // in one process): the first one stays.
    if std::panic::catch_unwind(|| CubeClRuntimeConfig::set(config)).is_err() {
        tracing::warn!("CubeCL configuration already in use; kernel cache settings unchanged");
    }
}

/// Whether CUDA device 0 can be created and used; burn panics when it
/// cannot (driver present but no usable GPU), so the probe catches that.
#[cfg(feature = "cuda")]
pub fn cuda_device_works() -> bool {
    use burn::tensor::Tensor;
    std::panic::catch_unwind(|| {
        let device = Default::default();
        Tensor::<Cuda, 1>::zeros([1], &device).into_data()
    })
    .is_ok()
}
