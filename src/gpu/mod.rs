//! GPU inventory through NVML. "No GPU" is a normal answer, never an error:
//! a host without the NVIDIA driver simply has an empty inventory.

pub mod class;
pub mod telemetry;

use serde::Serialize;

/// One GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_total_bytes: u64,
}

/// The NVIDIA persistence daemon's directory; its socket lets CUDA inside a
/// container keep the driver initialised between processes, as the NVIDIA
/// Container Toolkit provides it.
pub const PERSISTENCED_DIR: &str = "/run/nvidia-persistenced";

/// The GPUs of this host, and why there are none when there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct GpuInventory {
    pub devices: Vec<GpuDevice>,
    /// Set when NVML could not be used (no driver, no library).
    pub unavailable_reason: Option<String>,
    /// [`PERSISTENCED_DIR`] when it exists on this host.
    pub persistenced_dir: Option<String>,
}

impl GpuInventory {
    /// An inventory with no GPUs, for hosts and tests that have none.
    pub fn none(reason: impl Into<String>) -> Self {
        GpuInventory {
            devices: Vec::new(),
            unavailable_reason: Some(reason.into()),
            persistenced_dir: None,
        }
    }

    pub fn count(&self) -> usize {
        self.devices.len()
    }

    /// Reads the inventory from NVML; never fails, never panics.
    pub fn detect() -> Self {
        let nvml = match nvml_wrapper::Nvml::init() {
            Ok(nvml) => nvml,
            Err(err) => return GpuInventory::none(format!("NVML not available: {err}")),
        };
        let count = match nvml.device_count() {
            Ok(count) => count,
            Err(err) => return GpuInventory::none(format!("NVML device count failed: {err}")),
        };
        let devices = (0..count)
            .filter_map(|index| {
                let device = nvml.device_by_index(index).ok()?;
                Some(GpuDevice {
                    index,
                    name: device.name().unwrap_or_default(),
                    uuid: device.uuid().unwrap_or_default(),
                    memory_total_bytes: device.memory_info().map(|m| m.total).unwrap_or(0),
                })
            })
            .collect();
        GpuInventory {
            devices,
            unavailable_reason: None,
            persistenced_dir: std::path::Path::new(PERSISTENCED_DIR)
                .is_dir()
                .then(|| PERSISTENCED_DIR.to_owned()),
        }
    }
}
