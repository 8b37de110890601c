//! Host facts for the benchmark report: CPU model and cores from
//! `/proc/cpuinfo`, memory from `/proc/meminfo`, free disk from `statvfs`.
//! The parsers take the files' text, so they are tested on fixtures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::meminfo;

/// Where Docker keeps images and volumes (models included) by default; the
/// disk figure is for it when it exists, else for `/`.
const DOCKER_ROOT: &str = "/var/lib/docker";

/// The machine the benchmark ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `model name` of the first processor (`unknown` when absent).
    pub cpu_model: String,
    /// Logical CPUs (hardware threads) in `/proc/cpuinfo`.
    pub cpu_threads: usize,
    /// Distinct physical cores, when `/proc/cpuinfo` says (`physical id` +
    /// `core id`); virtual machines often do not.
    pub cpu_cores: Option<usize>,
    /// CPUs this process may use (cgroup and affinity limits applied).
    pub cpu_available: usize,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub disk: Option<DiskFacts>,
    /// `std::env::consts::ARCH`, e.g. `x86_64`.
    pub arch: String,
    /// Kernel release from `/proc/sys/kernel/osrelease`.
    pub kernel: Option<String>,
}

/// Space on the file system that holds the node's images and models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskFacts {
    pub path: PathBuf,
    pub total_bytes: u64,
    /// Space an unprivileged user can still write.
    pub free_bytes: u64,
}

/// What `/proc/cpuinfo` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    pub model: Option<String>,
    pub threads: usize,
    pub cores: Option<usize>,
}

/// Parses `/proc/cpuinfo`: one block per logical CPU, `key\t: value` lines.
/// The model is `model name` (x86) or `Model`/`Hardware` (Arm boards).
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut threads = 0;
    let mut model = None;
    let mut board = None;
    let mut cores = BTreeSet::new();
    let mut physical = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => threads += 1,
            "model name" if model.is_none() && !value.is_empty() => model = Some(value.to_owned()),
            "Model" | "Hardware" if board.is_none() && !value.is_empty() => {
                board = Some(value.to_owned());
            }
            "physical id" => physical = Some(value.to_owned()),
            "core id" => {
                cores.insert((physical.clone().unwrap_or_default(), value.to_owned()));
            }
            _ => {}
        }
    }
    CpuInfo {
        model: model.or(board),
        threads,
        cores: (!cores.is_empty()).then_some(cores.len()),
    }
}

/// Total and free space of the file system holding `path`.
pub fn disk(path: &Path) -> Option<DiskFacts> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(DiskFacts {
        path: path.to_owned(),
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
        free_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
    })
}

/// Reads this host's facts; a file that cannot be read leaves its fields
/// at their "unknown" values rather than failing the benchmark.
pub fn detect() -> HostFacts {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = parse_cpuinfo(&read("/proc/cpuinfo"));
    let memory = meminfo::read();
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let disk_path = Path::new(DOCKER_ROOT);
    let disk_path = if disk_path.is_dir() {
        disk_path
    } else {
        Path::new("/")
    };
    HostFacts {
        cpu_model: cpu.model.unwrap_or_else(|| "unknown".to_owned()),
        cpu_threads: if cpu.threads == 0 {
            available
        } else {
            cpu.threads
        },
        cpu_cores: cpu.cores,
        cpu_available: available,
        memory_total_bytes: memory.map_or(0, |m| m.total_bytes),
        memory_available_bytes: memory.map_or(0, |m| m.available_bytes),
        disk: disk(disk_path),
        arch: std::env::consts::ARCH.to_owned(),
        kernel: Some(read("/proc/sys/kernel/osrelease").trim().to_owned())
            .filter(|k| !k.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_CPUINFO: &str = "\
processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu vme de pse

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
physical id\t: 0
core id\t\t: 0

processor\t: 2
model name\t: AMD EPYC 7B13
physical id\t: 0
core id\t\t: 1

processor\t: 3
model name\t: AMD EPYC 7B13
physical id\t: 1
core id\t\t: 1
";

    const ARM_CPUINFO: &str = "\
processor\t: 0
BogoMIPS\t: 108.00
CPU implementer\t: 0x41
CPU part\t: 0xd08

processor\t: 1
BogoMIPS\t: 108.00

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
";

    #[test]
    fn cpuinfo_counts_threads_and_distinct_cores() {
        let info = parse_cpuinfo(X86_CPUINFO);
        assert_eq!(info.model.as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(info.threads, 4);
        // (0,0) twice (hyper-threads), (0,1), (1,1): three cores.
        assert_eq!(info.cores, Some(3));
    }

    #[test]
    fn cpuinfo_of_an_arm_board_names_the_board_and_no_cores() {
        let info = parse_cpuinfo(ARM_CPUINFO);
        assert_eq!(
            info.model.as_deref(),
            Some("BCM2835"),
            "the first of Model/Hardware"
        );
        assert_eq!(info.threads, 2);
        assert_eq!(info.cores, None);
        assert_eq!(
            parse_cpuinfo(""),
            CpuInfo {
                model: None,
                threads: 0,
                cores: None
            }
        );
    }

    #[test]
    fn this_host_has_cores_memory_and_disk() {
        let host = detect();
        assert!(host.cpu_threads >= 1 && host.cpu_available >= 1, "{host:?}");
        assert!(host.memory_total_bytes > 0, "{host:?}");
        let disk = host.disk.expect("statvfs of / works");
        assert!(disk.total_bytes >= disk.free_bytes && disk.total_bytes > 0);
    }
}
