//! A job's energy in the store: one `job_energy` row per job (the first
//! record wins, so a repeated completion counts once), the running totals
//! of its region in `region_energy`, and the green bonus, all in one
//! transaction.

use sqlx::Row;
use uuid::Uuid;

use super::api::{FigureSource, GridFigure, JobEnergyView};
use super::footprint::Footprint;
use crate::clock::rfc3339_millis;
use crate::coordinator::ledger::green::pay_green_bonus_in;
use crate::coordinator::ledger::LedgerError;
use crate::coordinator::regions::key::RegionKey;
use crate::coordinator::store::{query_err, Store, StoreError};

/// A job's energy record to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJobEnergy<'a> {
    pub job_id: Uuid,
    pub node_id: Uuid,
    pub region: &'a RegionKey,
    pub footprint: &'a Footprint,
    pub intensity: GridFigure,
    pub price: Option<GridFigure>,
    /// `greenBonusBasisPoints` in effect.
    pub green_bonus_basis_points: i64,
}

/// What recording did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now, with the green bonus paid (µGAI).
    Now { green_bonus: i64 },
    /// The job's energy was recorded before.
    Before,
}

impl Store {
    /// Stores `record`, adds it to its region's totals and pays the green
    /// bonus, in one transaction.
    pub async fn record_job_energy(
        &self,
        record: &NewJobEnergy<'_>,
        now_ms: i64,
    ) -> Result<Recorded, LedgerError> {
        let f = record.footprint;
        let key = record.region;
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let inserted = sqlx::query(
            "INSERT INTO job_energy (job_id, node_id, country, price_area, cell, energy_wh, \
             solar_wh, grid_wh, seconds, measured_by, intensity_g_per_kwh, intensity_source, \
             co2_grams, price_sek_per_kwh, price_source, cost_sek, recorded_at) VALUES ($1, $2, \
             $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(record.job_id.to_string())
        .bind(record.node_id.to_string())
        .bind(key.country.clone())
        .bind(key.price_area.clone())
        .bind(key.cell.clone())
        .bind(f.energy_wh)
        .bind(f.solar_wh)
        .bind(f.grid_wh)
        .bind(f.seconds)
        .bind(f.measured_by.clone())
        .bind(record.intensity.value)
        .bind(record.intensity.source.as_str())
        .bind(f.co2_grams)
        .bind(record.price.map(|p| p.value))
        .bind(record.price.map(|p| p.source.as_str()))
        .bind(f.cost_sek)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record a job's energy"))?;
        if inserted.rows_affected() != 1 {
            return Ok(Recorded::Before);
        }
        sqlx::query(
            "INSERT INTO region_energy (country, price_area, cell, jobs, energy_wh, solar_wh, \
             grid_wh, co2_grams, cost_sek) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8) \
             ON CONFLICT (country, price_area, cell) DO UPDATE SET \
             jobs = region_energy.jobs + 1, energy_wh = region_energy.energy_wh + $4, \
             solar_wh = region_energy.solar_wh + $5, grid_wh = region_energy.grid_wh + $6, \
             co2_grams = region_energy.co2_grams + $7, cost_sek = region_energy.cost_sek + $8",
        )
        .bind(key.country.clone())
        .bind(key.price_area.clone())
        .bind(key.cell.clone())
        .bind(f.energy_wh)
        .bind(f.solar_wh)
        .bind(f.grid_wh)
        .bind(f.co2_grams)
        .bind(f.cost_sek.unwrap_or(0.0))
        .execute(&mut *tx)
        .await
        .map_err(query_err("add to a region's energy"))?;
        let green_bonus = pay_green_bonus_in(
            &mut tx,
            record.job_id,
            record.node_id,
            f.solar_fraction(),
            record.green_bonus_basis_points,
            now_ms,
        )
        .await?;
        if green_bonus > 0 {
            sqlx::query("UPDATE job_energy SET green_bonus = $2 WHERE job_id = $1")
                .bind(record.job_id.to_string())
                .bind(green_bonus)
                .execute(&mut *tx)
                .await
                .map_err(query_err("record a green bonus"))?;
        }
        tx.commit()
            .await
            .map_err(query_err("commit a job's energy"))?;
        Ok(Recorded::Now { green_bonus })
    }

    /// A job's energy as the job view shows it; `None` before it completed
    /// with an energy report.
    pub async fn job_energy(&self, job_id: Uuid) -> Result<Option<JobEnergyView>, StoreError> {
        let row = sqlx::query(
            "SELECT energy_wh, solar_wh, grid_wh, seconds, measured_by, country, price_area, \
             intensity_g_per_kwh, intensity_source, co2_grams, price_sek_per_kwh, price_source, \
             cost_sek, green_bonus, recorded_at FROM job_energy WHERE job_id = $1",
        )
        .bind(job_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a job's energy"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let read = || query_err("read a job's energy");
        let source = |text: String| {
            FigureSource::parse(&text).ok_or_else(|| StoreError::CorruptRow {
                table: "job_energy",
                key: job_id.to_string(),
                problem: format!("figure source {text:?}"),
            })
        };
        let known = |text: String| (!text.is_empty()).then_some(text);
        let price_value: Option<f64> = row.try_get(10).map_err(read())?;
        let price_source: Option<String> = row.try_get(11).map_err(read())?;
        let spot_price = match (price_value, price_source) {
            (Some(value), Some(text)) => Some(GridFigure {
                value,
                source: source(text)?,
            }),
            _ => None,
        };
        let recorded_at: i64 = row.try_get(14).map_err(read())?;
        Ok(Some(JobEnergyView {
            energy_wh: row.try_get(0).map_err(read())?,
            solar_wh: row.try_get(1).map_err(read())?,
            grid_wh: row.try_get(2).map_err(read())?,
            seconds: row.try_get(3).map_err(read())?,
            measured_by: row.try_get(4).map_err(read())?,
            country: known(row.try_get(5).map_err(read())?),
            price_area: known(row.try_get(6).map_err(read())?),
            carbon_intensity: GridFigure {
                value: row.try_get(7).map_err(read())?,
                source: source(row.try_get(8).map_err(read())?)?,
            },
            co2_grams: row.try_get(9).map_err(read())?,
            spot_price,
            cost_sek: row.try_get(12).map_err(read())?,
            green_bonus_ugai: row.try_get(13).map_err(read())?,
            recorded_at: rfc3339_millis(recorded_at),
        }))
    }
}
