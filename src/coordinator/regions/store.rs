//! The regions' tables: each node's region key and capacity
//! (`node_regions`, written at registration and by heartbeats that carry a
//! power report) and the aggregates `GET /api/regions` reads — one GROUP
//! BY per level over these narrow columns (joined to `nodes` for the
//! state), so no request reads every node into memory; cells are listed
//! up to a limit, areas always in full.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::key::{capacity, region_key, RegionKey};
use crate::coordinator::nodes::api::{GpuInfo, Location, PowerReport};
use crate::coordinator::store::{query_err, Store, StoreError};

/// One group's sums as read.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub key: RegionKey,
    pub total: i64,
    pub online: i64,
    /// Of the online nodes.
    pub gpus: i64,
    pub vram_mib: i64,
    pub tokens_per_second: f64,
    /// Sums over the online nodes whose heartbeats report power; `None` when none does.
    pub draw_watts: Option<f64>,
    pub production_watts: Option<f64>,
    pub surplus_watts: Option<f64>,
    /// The mean of its nodes' coordinates.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// The energy of the jobs completed in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyRow {
    pub key: RegionKey,
    pub jobs: i64,
    pub energy_wh: f64,
    pub solar_wh: f64,
    pub grid_wh: f64,
    pub co2_grams: f64,
    pub cost_sek: f64,
}

/// The level a query groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Country and price area (every one).
    Area,
    /// Country, price area and cell (up to a limit).
    Cell,
}

impl Level {
    /// The key columns of `table` to select and to group by.
    fn columns(self, table: &str) -> (String, String) {
        match self {
            Level::Area => (
                format!("{table}.country, {table}.price_area, ''"),
                format!("{table}.country, {table}.price_area"),
            ),
            Level::Cell => {
                let all = format!("{table}.country, {table}.price_area, {table}.cell");
                (all.clone(), all)
            }
        }
    }
}

fn read_key(row: &AnyRow) -> Result<RegionKey, StoreError> {
    let read = || query_err("read a region row");
    Ok(RegionKey {
        country: row.try_get(0).map_err(read())?,
        price_area: row.try_get(1).map_err(read())?,
        cell: row.try_get(2).map_err(read())?,
    })
}

impl Store {
    /// Records the region key and capacity of a node that registered; the
    /// caller (registration) holds the write turn.
    pub async fn record_node_region(
        &self,
        node_id: Uuid,
        location: &Location,
        gpu_info: &[GpuInfo],
        benchmark: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let key = region_key(location);
        let capacity = capacity(gpu_info, benchmark);
        sqlx::query(
            "INSERT INTO node_regions (node_id, country, price_area, cell, latitude, longitude, \
             gpus, vram_mib, tokens_per_second) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (node_id) DO UPDATE SET country = $2, price_area = $3, cell = $4, \
             latitude = $5, longitude = $6, gpus = $7, vram_mib = $8, tokens_per_second = $9",
        )
        .bind(node_id.to_string())
        .bind(key.country)
        .bind(key.price_area)
        .bind(key.cell.clone())
        .bind(location.latitude.filter(|_| !key.cell.is_empty()))
        .bind(location.longitude.filter(|_| !key.cell.is_empty()))
        .bind(capacity.gpus)
        .bind(capacity.vram_mib)
        .bind(capacity.tokens_per_second)
        .execute(&self.pool)
        .await
        .map_err(query_err("record a node's region"))?;
        Ok(())
    }

    /// The region key of a node; `None` for one never registered here.
    pub async fn node_region(&self, node_id: Uuid) -> Result<Option<RegionKey>, StoreError> {
        let row =
            sqlx::query("SELECT country, price_area, cell FROM node_regions WHERE node_id = $1")
                .bind(node_id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read a node's region"))?;
        row.as_ref().map(read_key).transpose()
    }

    /// Per group at `level`, ordered by key; at most `limit` groups.
    pub async fn region_groups(
        &self,
        level: Level,
        limit: i64,
    ) -> Result<Vec<GroupRow>, StoreError> {
        let (select, group) = level.columns("r");
        let sql = format!(
            "SELECT {select}, COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN n.state = 'online' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN n.state = 'online' THEN r.gpus ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN n.state = 'online' THEN r.vram_mib ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN n.state = 'online' THEN r.tokens_per_second ELSE 0.0 END), 0.0) AS DOUBLE PRECISION), \
             SUM(CASE WHEN n.state = 'online' THEN r.draw_watts END), \
             SUM(CASE WHEN n.state = 'online' THEN r.production_watts END), \
             SUM(CASE WHEN n.state = 'online' THEN r.surplus_watts END), \
             AVG(r.latitude), AVG(r.longitude) \
             FROM node_regions r JOIN nodes n ON n.node_id = r.node_id \
             GROUP BY {group} ORDER BY {group} LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("sum the regions"))?;
        let read = || query_err("read a region row");
        rows.iter()
            .map(|row| {
                Ok(GroupRow {
                    key: read_key(row)?,
                    total: row.try_get(3).map_err(read())?,
                    online: row.try_get(4).map_err(read())?,
                    gpus: row.try_get(5).map_err(read())?,
                    vram_mib: row.try_get(6).map_err(read())?,
                    tokens_per_second: row.try_get(7).map_err(read())?,
                    draw_watts: row.try_get(8).map_err(read())?,
                    production_watts: row.try_get(9).map_err(read())?,
                    surplus_watts: row.try_get(10).map_err(read())?,
                    latitude: row.try_get(11).map_err(read())?,
                    longitude: row.try_get(12).map_err(read())?,
                })
            })
            .collect()
    }

    /// The energy of completed jobs per group at `level`; at most `limit` groups.
    pub async fn region_energy(
        &self,
        level: Level,
        limit: i64,
    ) -> Result<Vec<EnergyRow>, StoreError> {
        let (select, group) = level.columns("e");
        // Cells of nodes still registered only: then the first `limit`
        // rows cover every cell among the first `limit` node cells.
        let only_listed = match level {
            Level::Area => "",
            Level::Cell => {
                "WHERE EXISTS (SELECT 1 FROM node_regions r WHERE r.country = e.country \
                 AND r.price_area = e.price_area AND r.cell = e.cell)"
            }
        };
        let sql = format!(
            "SELECT {select}, \
             CAST(SUM(e.jobs) AS BIGINT), SUM(e.energy_wh), SUM(e.solar_wh), SUM(e.grid_wh), \
             SUM(e.co2_grams), SUM(e.cost_sek) FROM region_energy e {only_listed} \
             GROUP BY {group} ORDER BY {group} LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("sum the regions' energy"))?;
        let read = || query_err("read a region energy row");
        rows.iter()
            .map(|row| {
                Ok(EnergyRow {
                    key: read_key(row)?,
                    jobs: row.try_get(3).map_err(read())?,
                    energy_wh: row.try_get(4).map_err(read())?,
                    solar_wh: row.try_get(5).map_err(read())?,
                    grid_wh: row.try_get(6).map_err(read())?,
                    co2_grams: row.try_get(7).map_err(read())?,
                    cost_sek: row.try_get(8).map_err(read())?,
                })
            })
            .collect()
    }
}

/// Records a heartbeat's power report for its node, inside the
/// heartbeat's transaction.
pub async fn record_power_in(
    conn: &mut AnyConnection,
    node_id: Uuid,
    power: &PowerReport,
    now_ms: i64,
) -> Result<(), StoreError> {
    let finite = |watts: f64| watts.is_finite().then_some(watts);
    sqlx::query(
        "UPDATE node_regions SET draw_watts = $2, production_watts = $3, surplus_watts = $4, \
         power_at = $5 WHERE node_id = $1",
    )
    .bind(node_id.to_string())
    .bind(finite(power.draw_watts))
    .bind(power.production_watts.and_then(finite))
    .bind(power.surplus_watts.and_then(finite))
    .bind(now_ms)
    .execute(conn)
    .await
    .map_err(query_err("record a node's power"))?;
    Ok(())
}

/// Forgets a deleted node's region, inside the deletion's transaction.
pub async fn delete_node_region_in(
    conn: &mut AnyConnection,
    node_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM node_regions WHERE node_id = $1")
        .bind(node_id.to_string())
        .execute(conn)
        .await
        .map_err(query_err("delete a node's region"))?;
    Ok(())
}
