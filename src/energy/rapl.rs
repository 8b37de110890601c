//! The CPU's energy counters from Linux's powercap RAPL interface
//! (`/sys/class/powercap/intel-rapl:N/energy_uj`, one per CPU package; AMD
//! CPUs appear there too). Counters wrap at `max_energy_range_uj`; a
//! counter that cannot be read (no RAPL, or readable by root only since
//! Linux 5.10) is skipped, never an error.

use std::path::{Path, PathBuf};

/// The powercap directory on a real host.
pub const POWERCAP_ROOT: &str = "/sys/class/powercap";

/// Package zones at most (a host has one per CPU socket).
const MAX_ZONES: usize = 64;

/// One package's counter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    energy: PathBuf,
    /// The counter wraps to 0 after this many µJ.
    max_range_uj: u64,
}

/// The readable package counters of a host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rapl {
    zones: Vec<Zone>,
}

/// Every package counter at one moment, in zone order; `None` for one
/// that could not be read this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaplReading(Vec<Option<u64>>);

impl Rapl {
    /// The package zones under `root` (`intel-rapl:0`, `intel-rapl:1`; their
    /// sub-zones `intel-rapl:0:0` are parts of a package and not added
    /// again) whose counter can be read now.
    pub fn discover(root: &Path) -> Rapl {
        let Ok(entries) = std::fs::read_dir(root) else {
            return Rapl::default();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| {
                name.strip_prefix("intel-rapl:")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .take(MAX_ZONES)
            .collect();
        names.sort();
        let zones = names
            .into_iter()
            .filter_map(|name| {
                let dir = root.join(name);
                let energy = dir.join("energy_uj");
                read_counter(&energy)?;
                let max_range_uj = read_counter(&dir.join("max_energy_range_uj"))?;
                Some(Zone {
                    energy,
                    max_range_uj,
                })
            })
            .collect();
        Rapl { zones }
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Every counter now.
    pub fn read(&self) -> RaplReading {
        RaplReading(self.zones.iter().map(|z| read_counter(&z.energy)).collect())
    }

    /// Joules used between two readings, across a wrap of the counter;
    /// `None` when any counter was unreadable in either.
    pub fn joules_between(&self, before: &RaplReading, after: &RaplReading) -> Option<f64> {
        let mut micro = 0u64;
        for ((zone, b), a) in self.zones.iter().zip(&before.0).zip(&after.0) {
            let (b, a) = ((*b)?, (*a)?);
            let delta = if a >= b {
                a - b
            } else {
                // Wrapped once (a sampling period is far shorter than a wrap,
                // which takes hours even at hundreds of watts).
                zone.max_range_uj.saturating_sub(b).saturating_add(a)
            };
            micro = micro.saturating_add(delta);
        }
        Some(micro as f64 / 1e6)
    }
}

fn read_counter(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(root: &Path, name: &str, energy: u64, max: u64) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("energy_uj"), format!("{energy}\n")).expect("write");
        std::fs::write(dir.join("max_energy_range_uj"), format!("{max}\n")).expect("write");
    }

    #[test]
    fn packages_are_summed_and_a_wrap_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        zone(root, "intel-rapl:0", 1_000_000, 10_000_000);
        zone(root, "intel-rapl:1", 9_500_000, 10_000_000);
        // A sub-zone (the cores of package 0) is not counted twice.
        zone(root, "intel-rapl:0:0", 5, 10_000_000);
        let rapl = Rapl::discover(root);
        assert_eq!(rapl.zones.len(), 2);
        let before = rapl.read();
        zone(root, "intel-rapl:0", 3_000_000, 10_000_000);
        zone(root, "intel-rapl:1", 500_000, 10_000_000);
        let after = rapl.read();
        // 2 J on package 0; 0.5 J to the wrap and 0.5 J after it on 1.
        assert_eq!(rapl.joules_between(&before, &after), Some(3.0));
    }

    #[test]
    fn unreadable_counters_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        zone(root, "intel-rapl:0", 1, 10);
        std::fs::create_dir_all(root.join("intel-rapl:1")).expect("mkdir");
        let rapl = Rapl::discover(root);
        assert_eq!(rapl.zones.len(), 1, "the zone without a counter is skipped");
        let before = rapl.read();
        std::fs::remove_file(root.join("intel-rapl:0/energy_uj")).expect("rm");
        assert_eq!(rapl.joules_between(&before, &rapl.read()), None);
        assert!(Rapl::discover(&root.join("nothing")).is_empty());
    }
}
