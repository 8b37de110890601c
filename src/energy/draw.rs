//! The node's power draw over each sampling interval: the GPUs through
//! NVML (the energy counter's delta where the GPU has one, Volta and
//! newer; else the power reading × the interval), the CPU through RAPL
//! (`super::rapl`) where readable, else an estimate: [`IDLE_WATTS`] plus
//! [`CORE_WATTS`] per logical core at full load, scaled by how busy
//! `/proc/stat` says the CPUs were. Memory, disks and fans are not counted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use nvml_wrapper::Nvml;
use serde::Serialize;

use super::rapl::{Rapl, RaplReading};

/// The estimate's idle draw of a host (board, memory, disks), W.
pub const IDLE_WATTS: f64 = 15.0;
/// The estimate's draw of one busy logical core, W (a desktop or server
/// CPU's TDP over its threads is about 3-10 W).
pub const CORE_WATTS: f64 = 6.0;

/// How the GPUs' draw was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpuMethod {
    /// NVML's energy counter (mJ since the driver loaded).
    NvmlEnergy,
    /// NVML's power reading × the interval.
    NvmlPower,
}

/// How the CPU's draw was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuMethod {
    Rapl,
    Estimate,
}

/// How a draw was measured: `nvml-energy+rapl`, `nvml-power+estimate`,
/// `estimate` (no GPU, no RAPL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasuredBy {
    pub gpu: Option<GpuMethod>,
    pub cpu: CpuMethod,
}

impl MeasuredBy {
    pub fn as_str(self) -> &'static str {
        match (self.gpu, self.cpu) {
            (None, CpuMethod::Rapl) => "rapl",
            (None, CpuMethod::Estimate) => "estimate",
            (Some(GpuMethod::NvmlEnergy), CpuMethod::Rapl) => "nvml-energy+rapl",
            (Some(GpuMethod::NvmlEnergy), CpuMethod::Estimate) => "nvml-energy+estimate",
            (Some(GpuMethod::NvmlPower), CpuMethod::Rapl) => "nvml-power+rapl",
            (Some(GpuMethod::NvmlPower), CpuMethod::Estimate) => "nvml-power+estimate",
        }
    }
}

impl Serialize for MeasuredBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The draw over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrawSample {
    /// The interval, s (0 for the first sample).
    pub seconds: f64,
    /// Energy over the interval, J.
    pub joules: f64,
    /// Average draw over the interval (the first sample: now), W.
    pub watts: f64,
    /// The GPUs' part; `None` on a host without NVML.
    pub gpu_watts: Option<f64>,
    pub cpu_watts: f64,
    pub measured_by: MeasuredBy,
}

/// CPU time counters of `/proc/stat`'s first line: (busy, total) ticks.
type CpuTimes = (u64, u64);

/// What the previous sample read, to take deltas from.
#[derive(Debug)]
struct Previous {
    at: Instant,
    gpu_energy_mj: Vec<Option<u64>>,
    rapl: RaplReading,
    cpu: Option<CpuTimes>,
}

/// Samples the draw; keeps the counters of the last sample.
#[derive(Debug)]
pub struct DrawSampler {
    nvml: Option<Nvml>,
    rapl: Rapl,
    proc_stat: PathBuf,
    cores: usize,
    previous: Option<Previous>,
}

impl DrawSampler {
    /// The host's own sources (NVML when it loads, RAPL when readable).
    pub fn for_host() -> Self {
        DrawSampler::new(
            Nvml::init().ok(),
            Rapl::discover(Path::new(super::rapl::POWERCAP_ROOT)),
            Path::new("/proc/stat"),
        )
    }

    pub fn new(nvml: Option<Nvml>, rapl: Rapl, proc_stat: &Path) -> Self {
        DrawSampler {
            nvml,
            rapl,
            proc_stat: proc_stat.to_owned(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            previous: None,
        }
    }

    /// The draw since the previous sample (at `now`).
    pub fn sample(&mut self, now: Instant) -> DrawSample {
        let gpu_energy_mj = self.gpu_energy_mj();
        let rapl = self.rapl.read();
        let cpu = read_cpu_times(&self.proc_stat);
        let previous = self.previous.take();
        let seconds = previous
            .as_ref()
            .map_or(0.0, |p| now.saturating_duration_since(p.at).as_secs_f64());
        let (gpu_joules, gpu_watts, gpu_method) =
            self.gpus(previous.as_ref(), &gpu_energy_mj, seconds);
        let rapl_joules = previous
            .as_ref()
            .filter(|_| !self.rapl.is_empty() && seconds > 0.0)
            .and_then(|p| self.rapl.joules_between(&p.rapl, &rapl));
        let (cpu_joules, cpu_watts, cpu_method) = match rapl_joules {
            Some(joules) => (joules, joules / seconds, CpuMethod::Rapl),
            None => {
                let busy = busy_share(previous.as_ref().and_then(|p| p.cpu), cpu);
                let watts = IDLE_WATTS + CORE_WATTS * self.cores as f64 * busy;
                (watts * seconds, watts, CpuMethod::Estimate)
            }
        };
        self.previous = Some(Previous {
            at: now,
            gpu_energy_mj,
            rapl,
            cpu,
        });
        DrawSample {
            seconds,
            joules: gpu_joules + cpu_joules,
            watts: gpu_watts.unwrap_or(0.0) + cpu_watts,
            gpu_watts,
            cpu_watts,
            measured_by: MeasuredBy {
                gpu: gpu_method,
                cpu: cpu_method,
            },
        }
    }

    fn gpu_energy_mj(&self) -> Vec<Option<u64>> {
        let Some(nvml) = &self.nvml else {
            return Vec::new();
        };
        let count = nvml.device_count().unwrap_or(0);
        (0..count)
            .map(|i| {
                nvml.device_by_index(i)
                    .ok()?
                    .total_energy_consumption()
                    .ok()
            })
            .collect()
    }

    /// The GPUs' joules and average watts over the interval.
    fn gpus(
        &self,
        previous: Option<&Previous>,
        energy_mj: &[Option<u64>],
        seconds: f64,
    ) -> (f64, Option<f64>, Option<GpuMethod>) {
        let Some(nvml) = &self.nvml else {
            return (0.0, None, None);
        };
        let (mut joules, mut watts) = (0.0, 0.0);
        let mut method = GpuMethod::NvmlEnergy;
        for (index, now_mj) in energy_mj.iter().enumerate() {
            let before = previous.and_then(|p| p.gpu_energy_mj.get(index).copied().flatten());
            match (before, now_mj) {
                (Some(before), Some(now)) if seconds > 0.0 && *now >= before => {
                    let j = (now - before) as f64 / 1000.0;
                    joules += j;
                    watts += j / seconds;
                }
                _ => {
                    // No counter (or the driver reloaded): the power reading.
                    let power_w = u32::try_from(index)
                        .ok()
                        .and_then(|i| nvml.device_by_index(i).ok()?.power_usage().ok())
                        .map_or(0.0, |mw| f64::from(mw) / 1000.0);
                    if now_mj.is_none() {
                        method = GpuMethod::NvmlPower;
                    }
                    joules += power_w * seconds;
                    watts += power_w;
                }
            }
        }
        (joules, Some(watts), Some(method))
    }
}

/// `/proc/stat`'s aggregate line as (busy, total) ticks.
fn read_cpu_times(path: &Path) -> Option<CpuTimes> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_cpu_times(text.lines().next()?)
}

/// `cpu  user nice system idle iowait irq softirq steal …`: idle and
/// iowait are idle, the rest busy (guest time is inside user already).
fn parse_cpu_times(line: &str) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = values.iter().sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Share of CPU time busy between two readings (since boot for the first).
fn busy_share(before: Option<CpuTimes>, now: Option<CpuTimes>) -> f64 {
    let Some((busy, total)) = now else {
        return 0.5;
    };
    let (b0, t0) = before.unwrap_or((0, 0));
    let (busy, total) = (busy.saturating_sub(b0), total.saturating_sub(t0));
    if total == 0 {
        0.0
    } else {
        (busy as f64 / total as f64).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn proc_stat_busy_share() {
        let a = parse_cpu_times("cpu  100 0 50 800 50 0 0 0 0 0").expect("parses");
        assert_eq!(a, (150, 1000));
        let b = parse_cpu_times("cpu  400 0 50 1100 50 0 0 0 0 0").expect("parses");
        assert_eq!(busy_share(Some(a), Some(b)), 0.5);
        assert_eq!(parse_cpu_times("cpu0 1 2 3 4"), None);
        assert_eq!(busy_share(None, None), 0.5);
    }

    #[test]
    fn the_estimate_follows_the_cpu_and_integrates_over_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  0 0 0 1000 0 0 0 0 0 0\n").expect("write");
        let mut sampler = DrawSampler::new(None, Rapl::default(), &stat);
        sampler.cores = 4;
        let start = Instant::now();
        let first = sampler.sample(start);
        assert_eq!((first.seconds, first.joules), (0.0, 0.0));
        assert_eq!(first.watts, IDLE_WATTS);
        assert_eq!(first.measured_by.as_str(), "estimate");
        // Half busy for 10 s: idle + 4 cores × 6 W × 0.5 = 27 W.
        std::fs::write(&stat, "cpu  500 0 0 1500 0 0 0 0 0 0\n").expect("write");
        let second = sampler.sample(start + Duration::from_secs(10));
        assert_eq!(second.seconds, 10.0);
        assert_eq!(second.watts, 27.0);
        assert_eq!(second.joules, 270.0);
        assert_eq!(second.gpu_watts, None);
    }

    #[test]
    fn rapl_replaces_the_estimate_where_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zone = dir.path().join("intel-rapl:0");
        std::fs::create_dir_all(&zone).expect("mkdir");
        std::fs::write(zone.join("max_energy_range_uj"), "262143328850\n").expect("write");
        std::fs::write(zone.join("energy_uj"), "1000000\n").expect("write");
        let rapl = Rapl::discover(dir.path());
        let mut sampler = DrawSampler::new(None, rapl, &dir.path().join("no-stat"));
        let start = Instant::now();
        sampler.sample(start);
        std::fs::write(zone.join("energy_uj"), "51000000\n").expect("write");
        let second = sampler.sample(start + Duration::from_secs(2));
        assert_eq!(second.joules, 50.0);
        assert_eq!(second.cpu_watts, 25.0);
        assert_eq!(second.measured_by.as_str(), "rapl");
    }
}
