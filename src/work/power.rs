//! What the work task asks of the node's power: how many of its free slots
//! the power policy lets it claim now (`solar-only` claims only on a solar
//! surplus), and the energy of each job it runs, which goes with the
//! job's completion as the result's `energy` member, and its power now,
//! which goes with every claim. The node's
//! [`EnergyMonitor`] answers; [`Unmetered`] claims every slot and meters
//! nothing.

use uuid::Uuid;

use crate::coordinator::api::PowerReport;
use crate::energy::{EnergyMonitor, JobEnergy};

/// The work task's view of the node's power.
pub trait PowerGate: Send + Sync + 'static {
    /// How many of `free` slots may be claimed now.
    fn claimable(&self, free: u32) -> u32;
    /// The job under `lease_id` starts: meter it from now.
    fn job_started(&self, lease_id: Uuid);
    /// The job ended on this node: what it used, if metered.
    fn job_finished(&self, lease_id: Uuid) -> Option<JobEnergy>;
    /// The node's power now, sent with each claim (placement prefers solar
    /// surplus for green jobs); `None` when unmetered.
    fn report(&self) -> Option<PowerReport>;
}

impl PowerGate for EnergyMonitor {
    fn claimable(&self, free: u32) -> u32 {
        EnergyMonitor::claimable(self, free)
    }

    fn job_started(&self, lease_id: Uuid) {
        EnergyMonitor::job_started(self, lease_id);
    }

    fn job_finished(&self, lease_id: Uuid) -> Option<JobEnergy> {
        EnergyMonitor::job_finished(self, lease_id)
    }

    fn report(&self) -> Option<PowerReport> {
        self.latest().map(|status| status.report())
    }
}

/// Every slot, no metering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unmetered;

impl PowerGate for Unmetered {
    fn claimable(&self, free: u32) -> u32 {
        free
    }

    fn job_started(&self, _: Uuid) {}

    fn job_finished(&self, _: Uuid) -> Option<JobEnergy> {
        None
    }

    fn report(&self) -> Option<PowerReport> {
        None
    }
}

/// `result` with the job's energy as its `energy` member (a result that
/// is not an object, or none, becomes `{"energy": …}` around it).
pub fn with_energy(result: serde_json::Value, energy: Option<JobEnergy>) -> serde_json::Value {
    let Some(energy) = energy.and_then(|e| serde_json::to_value(e).ok()) else {
        return result;
    };
    match result {
        serde_json::Value::Object(mut fields) => {
            fields.insert("energy".into(), energy);
            serde_json::Value::Object(fields)
        }
        serde_json::Value::Null => serde_json::json!({ "energy": energy }),
        other => serde_json::json!({ "value": other, "energy": energy }),
    }
}
