//! Live GPU facts through NVML (name, UUID, memory, utilization,
//! temperature, power, energy, clocks, compute capability, driver and CUDA
//! versions) and a Prometheus collector that samples them at scrape time.
//!
//! Metric names follow Prometheus conventions with base units (bytes,
//! ratios 0–1, degrees Celsius, watts, joules, hertz), not DCGM exporter's
//! (`DCGM_FI_DEV_FB_USED` in MiB, energy in mJ, clocks in MHz): every other
//! agent metric uses base units, and PromQL arithmetic across them then needs
//! no conversions. Labels are the GPU index only, except on the info metric.

use std::sync::Mutex;

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::Nvml;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntGauge, Opts};
use serde::Serialize;

/// The host's GPUs at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct GpuHost {
    pub driver_version: Option<String>,
    /// `major.minor` of the CUDA driver API.
    pub cuda_version: Option<String>,
    pub gpus: Vec<GpuSample>,
}

/// One GPU at one moment; a field NVML cannot read is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct GpuSample {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    /// Share of time a kernel ran, 0–1.
    pub utilization_ratio: Option<f64>,
    /// Share of time device memory was read or written, 0–1.
    pub memory_utilization_ratio: Option<f64>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    pub power_limit_watts: Option<f64>,
    /// Energy since the driver loaded.
    pub energy_joules: Option<f64>,
    pub sm_clock_hertz: Option<f64>,
    pub memory_clock_hertz: Option<f64>,
    /// `major.minor`, e.g. `9.0` for an H100.
    pub compute_capability: Option<String>,
}

/// Reads every GPU once. `Err` carries why there is no GPU (no driver, no
/// library): a normal answer on CPU-only hosts.
pub fn sample(nvml: &Nvml) -> Result<GpuHost, String> {
    let count = nvml
        .device_count()
        .map_err(|e| format!("NVML device count failed: {e}"))?;
    let cuda_version = nvml.sys_cuda_driver_version().ok().map(|v| {
        format!(
            "{}.{}",
            nvml_wrapper::cuda_driver_version_major(v),
            nvml_wrapper::cuda_driver_version_minor(v)
        )
    });
    let gpus = (0..count)
        .filter_map(|index| {
            let d = nvml.device_by_index(index).ok()?;
            let memory = d.memory_info().ok();
            let utilization = d.utilization_rates().ok();
            let mhz = |clock| d.clock_info(clock).ok().map(|m| f64::from(m) * 1e6);
            Some(GpuSample {
                index,
                name: d.name().unwrap_or_default(),
                uuid: d.uuid().unwrap_or_default(),
                memory_total_bytes: memory.as_ref().map(|m| m.total),
                memory_used_bytes: memory.as_ref().map(|m| m.used),
                utilization_ratio: utilization.as_ref().map(|u| f64::from(u.gpu) / 100.0),
                memory_utilization_ratio: utilization.as_ref().map(|u| f64::from(u.memory) / 100.0),
                temperature_celsius: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
                power_watts: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                power_limit_watts: d
                    .power_management_limit()
                    .ok()
                    .map(|mw| f64::from(mw) / 1000.0),
                energy_joules: d
                    .total_energy_consumption()
                    .ok()
                    .map(|mj| mj as f64 / 1000.0),
                sm_clock_hertz: mhz(Clock::SM),
                memory_clock_hertz: mhz(Clock::Memory),
                compute_capability: d
                    .cuda_compute_capability()
                    .ok()
                    .map(|c| format!("{}.{}", c.major, c.minor)),
            })
        })
        .collect();
    Ok(GpuHost {
        driver_version: nvml.sys_driver_version().ok(),
        cuda_version,
        gpus,
    })
}

/// Reads the host's GPUs once, initialising NVML for the call.
pub fn sample_host() -> Result<GpuHost, String> {
    let nvml = Nvml::init().map_err(|e| format!("NVML not available: {e}"))?;
    sample(&nvml)
}

/// Reads one metric's value from a sample.
type Reading = fn(&GpuSample) -> Option<f64>;

/// Samples NVML at every scrape. On a host without NVML it reports
/// `garage_gpus 0` and nothing else.
#[derive(Debug)]
pub struct GpuCollector {
    nvml: Mutex<Option<Nvml>>,
    gpus: IntGauge,
    info: GaugeVec,
    gauges: Vec<(GaugeVec, Reading)>,
}

impl GpuCollector {
    pub fn new() -> Self {
        let gauge = |name: &str, help: &str| {
            GaugeVec::new(Opts::new(name, help), &["gpu"]).expect("valid metric definition")
        };
        let gauges: Vec<(GaugeVec, Reading)> = vec![
            (
                gauge("garage_gpu_memory_total_bytes", "GPU memory installed."),
                |s| s.memory_total_bytes.map(|b| b as f64),
            ),
            (
                gauge("garage_gpu_memory_used_bytes", "GPU memory in use."),
                |s| s.memory_used_bytes.map(|b| b as f64),
            ),
            (
                gauge(
                    "garage_gpu_utilization_ratio",
                    "Share of the last sample period a kernel ran (0-1).",
                ),
                |s| s.utilization_ratio,
            ),
            (
                gauge(
                    "garage_gpu_memory_utilization_ratio",
                    "Share of the last sample period device memory was busy (0-1).",
                ),
                |s| s.memory_utilization_ratio,
            ),
            (
                gauge("garage_gpu_temperature_celsius", "GPU die temperature."),
                |s| s.temperature_celsius,
            ),
            (gauge("garage_gpu_power_watts", "Power draw."), |s| {
                s.power_watts
            }),
            (
                gauge("garage_gpu_power_limit_watts", "Power management limit."),
                |s| s.power_limit_watts,
            ),
            (
                gauge(
                    "garage_gpu_energy_joules",
                    "Energy used since the driver loaded (a gauge: it resets with the driver).",
                ),
                |s| s.energy_joules,
            ),
            (
                gauge(
                    "garage_gpu_sm_clock_hertz",
                    "Streaming multiprocessor clock.",
                ),
                |s| s.sm_clock_hertz,
            ),
            (
                gauge("garage_gpu_memory_clock_hertz", "Memory clock."),
                |s| s.memory_clock_hertz,
            ),
        ];
        GpuCollector {
            nvml: Mutex::new(Nvml::init().ok()),
            gpus: IntGauge::new("garage_gpus", "GPUs NVML sees on this host.")
                .expect("valid metric definition"),
            info: GaugeVec::new(
                Opts::new(
                    "garage_gpu_info",
                    "Always 1; the labels describe the GPU and its driver.",
                ),
                &[
                    "gpu",
                    "name",
                    "uuid",
                    "compute_capability",
                    "driver_version",
                    "cuda_version",
                ],
            )
            .expect("valid metric definition"),
            gauges,
        }
    }
}

impl Default for GpuCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for GpuCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.gpus.desc();
        descs.extend(self.info.desc());
        for (gauge, _) in &self.gauges {
            descs.extend(gauge.desc());
        }
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let host = {
            let nvml = self.nvml.lock().unwrap_or_else(|p| p.into_inner());
            nvml.as_ref()
                .and_then(|n| sample(n).ok())
                .unwrap_or_default()
        };
        self.gpus.set(i64::try_from(host.gpus.len()).unwrap_or(0));
        let mut families = self.gpus.collect();
        if host.gpus.is_empty() {
            return families;
        }
        self.info.reset();
        for (gauge, _) in &self.gauges {
            gauge.reset();
        }
        for gpu in &host.gpus {
            let index = gpu.index.to_string();
            self.info
                .with_label_values(&[
                    index.as_str(),
                    &gpu.name,
                    &gpu.uuid,
                    gpu.compute_capability.as_deref().unwrap_or(""),
                    host.driver_version.as_deref().unwrap_or(""),
                    host.cuda_version.as_deref().unwrap_or(""),
                ])
                .set(1.0);
            for (gauge, read) in &self.gauges {
                if let Some(value) = read(gpu) {
                    gauge.with_label_values(&[index.as_str()]).set(value);
                }
            }
        }
        families.extend(self.info.collect());
        for (gauge, _) in &self.gauges {
            families.extend(gauge.collect());
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_registers_and_renders_on_any_host() {
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(GpuCollector::new()))
            .expect("register");
        let mut out = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut out,
        )
        .expect("encode");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("garage_gpus "), "{text}");
        match sample_host() {
            Ok(host) => {
                eprintln!(
                    "{}",
                    serde_json::to_string_pretty(&host).unwrap_or_default()
                );
                if !host.gpus.is_empty() {
                    assert!(
                        text.contains("garage_gpu_memory_total_bytes{gpu=\"0\"}"),
                        "{text}"
                    );
                }
            }
            Err(why) => eprintln!("no GPU: {why}"),
        }
    }
}
