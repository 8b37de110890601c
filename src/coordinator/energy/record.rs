//! The completion hook: when a job ends under its lease, the energy its
//! node reported with the result (the result's `energy` member) becomes
//! the job's footprint at the figures in use for the node's zone, is
//! stored with its region's totals and the green bonus, and is counted in
//! the energy metrics. Never fails the completion: a report that is
//! missing is nothing to do, and any failure is a warning in the log.

use uuid::Uuid;

use super::footprint::footprint;
use super::sources::GridSources;
use super::store::{NewJobEnergy, Recorded};
use super::zone::GridZone;
use crate::coordinator::ledger::LedgerError;
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::parameters::names::Parameter;
use crate::coordinator::parameters::Parameters;
use crate::coordinator::regions::key::RegionKey;
use crate::coordinator::store::{Store, StoreError};
use crate::energy::JobEnergy;

/// Tries at most this often when a concurrent bonus drained the treasury
/// between the read of its balance and the debit.
const ATTEMPTS: u32 = 3;

/// Why a job's energy was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum EnergyError {
    #[error("the node's energy report (the result's `energy` member) is malformed: {0}")]
    Report(#[source] serde_json::Error),
    #[error("cannot read the node's region or the green bonus parameter")]
    Store(#[from] StoreError),
    #[error("cannot store the job's energy")]
    Ledger(#[from] LedgerError),
}

/// Records the energy of completed jobs; cheap to clone.
#[derive(Debug, Clone)]
pub struct EnergyRecorder {
    pub store: Store,
    pub sources: GridSources,
    pub parameters: Parameters,
    pub metrics: CoordinatorMetrics,
}

impl EnergyRecorder {
    /// Records the energy in `result` of job `job_id`, run by `node_id`,
    /// at `now_ms`; a warning when it cannot.
    pub async fn record(
        &self,
        job_id: Uuid,
        node_id: Uuid,
        result: &serde_json::Value,
        now_ms: i64,
    ) {
        if let Err(err) = self.try_record(job_id, node_id, result, now_ms).await {
            tracing::warn!(%job_id, %node_id, error = %crate::error_text::one_line(&err), "job energy not recorded");
        }
    }

    async fn try_record(
        &self,
        job_id: Uuid,
        node_id: Uuid,
        result: &serde_json::Value,
        now_ms: i64,
    ) -> Result<(), EnergyError> {
        let Some(report) = result.get("energy") else {
            return Ok(());
        };
        let report: JobEnergy =
            serde_json::from_value(report.clone()).map_err(EnergyError::Report)?;
        let region = self.store.node_region(node_id).await?.unwrap_or(RegionKey {
            country: String::new(),
            price_area: String::new(),
            cell: String::new(),
        });
        let zone = GridZone::from_key(&region.country, &region.price_area);
        let (intensity, price) = tokio::join!(
            self.sources.intensity(&zone, now_ms),
            self.sources.price(&zone, now_ms)
        );
        let footprint = footprint(&report, intensity.value, price.map(|p| p.value));
        let bonus = self
            .parameters
            .get(&Parameter::GreenBonusBasisPoints, now_ms)
            .await?
            .unwrap_or(0);
        let record = NewJobEnergy {
            job_id,
            node_id,
            region: &region,
            footprint: &footprint,
            intensity,
            price,
            green_bonus_basis_points: bonus,
        };
        let mut attempt = 1;
        let recorded = loop {
            match self.store.record_job_energy(&record, now_ms).await {
                Err(LedgerError::Insufficient { .. }) if attempt < ATTEMPTS => attempt += 1,
                other => break other?,
            }
        };
        if let Recorded::Now { green_bonus } = recorded {
            let label = [zone.label()];
            self.metrics
                .job_energy_wh
                .with_label_values(&label)
                .inc_by(footprint.energy_wh);
            self.metrics
                .job_co2_grams
                .with_label_values(&label)
                .inc_by(footprint.co2_grams);
            tracing::info!(
                %job_id,
                %node_id,
                zone = zone.label(),
                energy_wh = footprint.energy_wh,
                solar_wh = footprint.solar_wh,
                co2_grams = footprint.co2_grams,
                green_bonus,
                "job energy recorded"
            );
        }
        Ok(())
    }
}
