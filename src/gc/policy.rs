//! Which unused images go, and why (pure): kubelet's rules. An image stays
//! `minAge` after its last use; past `maxAge` unused it goes whatever the
//! disk; while the disk is above `highPercent`, the least recently used go
//! until it would be at or below `lowPercent`.

use std::collections::HashSet;
use std::time::Duration;

use crate::spec::gc::GcSettings;

/// An image reference the node owns and nothing uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub reference: String,
    pub id: String,
    pub size_bytes: u64,
    /// Unix seconds of its last use by one of the node's containers.
    pub last_used: u64,
}

/// Why an image is removed (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Unused past `maxAge`.
    MaxAge,
    /// The disk is above `highPercent`.
    DiskPressure,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MaxAge => "max-age",
            Reason::DiskPressure => "disk-pressure",
        }
    }
}

/// The filesystem the engine keeps images on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    pub used_bytes: u64,
    pub total_bytes: u64,
}

impl Disk {
    /// Whether `used - freed` is above `percent` of the disk.
    fn above(self, freed: u64, percent: u8) -> bool {
        let used = u128::from(self.used_bytes.saturating_sub(freed));
        used * 100 > u128::from(self.total_bytes) * u128::from(percent)
    }
}

/// The candidates to remove, least recently used first, with the reason.
pub fn choose(
    mut candidates: Vec<Candidate>,
    now: u64,
    settings: &GcSettings,
    disk: Option<Disk>,
) -> Vec<(Candidate, Reason)> {
    candidates.retain(|c| age(now, c) >= settings.min_age);
    candidates.sort_by(|a, b| {
        a.last_used
            .cmp(&b.last_used)
            .then(a.reference.cmp(&b.reference))
    });
    let mut freed = Freed::default();
    let mut chosen = Vec::new();
    let mut rest = Vec::new();
    for candidate in candidates {
        if settings
            .max_age
            .is_some_and(|max| age(now, &candidate) >= max)
        {
            freed.add(&candidate);
            chosen.push((candidate, Reason::MaxAge));
        } else {
            rest.push(candidate);
        }
    }
    if let Some(disk) = disk.filter(|d| d.total_bytes > 0) {
        if disk.above(freed.bytes, settings.high_percent) {
            for candidate in rest {
                if !disk.above(freed.bytes, settings.low_percent) {
                    break;
                }
                freed.add(&candidate);
                chosen.push((candidate, Reason::DiskPressure));
            }
        }
    }
    chosen
}

/// Bytes the chosen images free; tags of one image free its bytes once.
#[derive(Debug, Default)]
struct Freed {
    bytes: u64,
    ids: HashSet<String>,
}

impl Freed {
    fn add(&mut self, candidate: &Candidate) {
        if self.ids.insert(candidate.id.clone()) {
            self.bytes = self.bytes.saturating_add(candidate.size_bytes);
        }
    }
}

fn age(now: u64, candidate: &Candidate) -> Duration {
    Duration::from_secs(now.saturating_sub(candidate.last_used))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    fn settings(max_age: Option<u64>) -> GcSettings {
        GcSettings {
            interval: Duration::from_secs(60),
            min_age: Duration::from_secs(120),
            max_age: max_age.map(Duration::from_secs),
            high_percent: 85,
            low_percent: 80,
        }
    }

    fn image(name: &str, id: &str, gb: u64, last_used: u64) -> Candidate {
        Candidate {
            reference: name.into(),
            id: id.into(),
            size_bytes: gb * GB,
            last_used,
        }
    }

    fn names(chosen: &[(Candidate, Reason)]) -> Vec<(&str, Reason)> {
        chosen
            .iter()
            .map(|(c, r)| (c.reference.as_str(), *r))
            .collect()
    }

    #[test]
    fn below_the_high_watermark_nothing_goes_without_a_max_age() {
        let disk = Disk {
            used_bytes: 84 * GB,
            total_bytes: 100 * GB,
        };
        let chosen = choose(
            vec![image("a", "1", 5, 0)],
            10_000,
            &settings(None),
            Some(disk),
        );
        assert!(chosen.is_empty(), "{chosen:?}");
    }

    #[test]
    fn above_the_high_watermark_the_least_recently_used_go_down_to_the_low() {
        let disk = Disk {
            used_bytes: 90 * GB,
            total_bytes: 100 * GB,
        };
        let candidates = vec![
            image("newer", "2", 4, 5_000),
            image("oldest", "1", 4, 1_000),
            image("newest", "3", 4, 9_000),
        ];
        let chosen = choose(candidates, 10_000, &settings(None), Some(disk));
        // 90 → 86 → 82 → 78: three would pass 80, but two leave 82 > 80.
        assert_eq!(
            names(&chosen),
            [
                ("oldest", Reason::DiskPressure),
                ("newer", Reason::DiskPressure),
                ("newest", Reason::DiskPressure)
            ]
        );
        let small = Disk {
            used_bytes: 86 * GB,
            total_bytes: 100 * GB,
        };
        let chosen = choose(
            vec![
                image("oldest", "1", 7, 1_000),
                image("newer", "2", 4, 5_000),
            ],
            10_000,
            &settings(None),
            Some(small),
        );
        assert_eq!(
            names(&chosen),
            [("oldest", Reason::DiskPressure)],
            "86 - 7 = 79: at the low, done"
        );
    }

    #[test]
    fn an_image_used_within_min_age_stays_even_under_pressure() {
        let disk = Disk {
            used_bytes: 99 * GB,
            total_bytes: 100 * GB,
        };
        let chosen = choose(
            vec![image("fresh", "1", 50, 9_950)],
            10_000,
            &settings(Some(1)),
            Some(disk),
        );
        assert!(chosen.is_empty(), "{chosen:?}");
    }

    #[test]
    fn past_max_age_an_image_goes_whatever_the_disk_and_tags_free_once() {
        let chosen = choose(
            vec![
                image("old:1", "1", 3, 0),
                image("old:latest", "1", 3, 0),
                image("recent", "2", 1, 9_000),
            ],
            10_000,
            &settings(Some(3_600)),
            None,
        );
        assert_eq!(
            names(&chosen),
            [("old:1", Reason::MaxAge), ("old:latest", Reason::MaxAge)]
        );
        let disk = Disk {
            used_bytes: 88 * GB,
            total_bytes: 100 * GB,
        };
        let chosen = choose(
            vec![
                image("old:1", "1", 3, 0),
                image("old:latest", "1", 3, 0),
                image("mid", "2", 10, 9_000),
            ],
            10_000,
            &settings(Some(3_600)),
            Some(disk),
        );
        // The two tags free 3 GB once: 88 - 3 = 85, not above 85: no pressure.
        assert_eq!(
            names(&chosen),
            [("old:1", Reason::MaxAge), ("old:latest", Reason::MaxAge)]
        );
    }
}
