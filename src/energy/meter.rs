//! The energy each network job used: every sampled interval's energy is
//! shared equally among the jobs running in it, and so is the part of it
//! the panels covered (the smaller of production and draw). Pure
//! bookkeeping over samples the monitor feeds in; no clock, no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a job's completion reports about its energy (the `energy` member
/// of the result the node sends with `complete`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobEnergy {
    /// Energy the node used for the job, Wh (its share while several jobs ran).
    pub energy_wh: f64,
    /// Seconds metered, from the job's start to its end on this node.
    pub seconds: f64,
    /// How the draw was measured: `nvml-energy+rapl`, `nvml-power+estimate`,
    /// `rapl`, `estimate`, …
    pub measured_by: String,
    /// The part of `energy_wh` the node's own solar production covered, Wh;
    /// absent on a node without solar production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solar_wh: Option<f64>,
}

/// One sampled interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub joules: f64,
    pub seconds: f64,
    /// Joules the panels covered in it; `None` without solar production.
    pub solar_joules: Option<f64>,
    pub measured_by: &'static str,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Account {
    joules: f64,
    seconds: f64,
    solar_joules: Option<f64>,
    measured_by: Option<&'static str>,
}

/// Jobs metered right now.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    jobs: BTreeMap<Uuid, Account>,
}

impl Meter {
    /// Starts metering `job` from the next interval on.
    pub fn start(&mut self, job: Uuid) {
        self.jobs.entry(job).or_default();
    }

    /// Shares `interval` among the running jobs.
    pub fn record(&mut self, interval: Interval) {
        let Some(count) = u32::try_from(self.jobs.len()).ok().filter(|n| *n > 0) else {
            return;
        };
        let share = f64::from(count);
        for account in self.jobs.values_mut() {
            account.joules += interval.joules / share;
            account.seconds += interval.seconds;
            if let Some(solar) = interval.solar_joules {
                *account.solar_joules.get_or_insert(0.0) += solar / share;
            }
            account.measured_by = Some(interval.measured_by);
        }
    }

    /// Stops metering `job`; what it used, `None` for a job never started.
    pub fn finish(&mut self, job: Uuid) -> Option<JobEnergy> {
        let account = self.jobs.remove(&job)?;
        Some(JobEnergy {
            energy_wh: account.joules / 3600.0,
            seconds: account.seconds,
            measured_by: account.measured_by.unwrap_or("none").to_owned(),
            solar_wh: account.solar_joules.map(|j| j / 3600.0),
        })
    }

    pub fn running(&self) -> usize {
        self.jobs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(joules: f64, solar: Option<f64>) -> Interval {
        Interval {
            joules,
            seconds: 10.0,
            solar_joules: solar,
            measured_by: "estimate",
        }
    }

    #[test]
    fn intervals_are_shared_among_the_running_jobs() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut meter = Meter::default();
        meter.record(interval(1000.0, None));
        meter.start(a);
        meter.record(interval(3600.0, Some(1800.0)));
        meter.start(b);
        meter.record(interval(7200.0, Some(0.0)));
        let a_used = meter.finish(a).expect("metered");
        assert_eq!(a_used.energy_wh, 1.0 + 1.0);
        assert_eq!(a_used.solar_wh, Some(0.5));
        assert_eq!(a_used.seconds, 20.0);
        assert_eq!(a_used.measured_by, "estimate");
        meter.record(interval(3600.0, None));
        let b_used = meter.finish(b).expect("metered");
        assert_eq!(b_used.energy_wh, 1.0 + 1.0);
        assert_eq!(b_used.solar_wh, Some(0.0));
        assert_eq!(meter.finish(b), None);
        assert_eq!(meter.running(), 0);
    }

    #[test]
    fn the_wire_names_are_snake_case_like_the_rest_of_the_api() {
        let energy = JobEnergy {
            energy_wh: 0.5,
            seconds: 3.0,
            measured_by: "rapl".into(),
            solar_wh: None,
        };
        assert_eq!(
            serde_json::to_value(&energy).expect("serialises"),
            serde_json::json!({"energy_wh": 0.5, "seconds": 3.0, "measured_by": "rapl"})
        );
    }
}
