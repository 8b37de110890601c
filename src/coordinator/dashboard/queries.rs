//! The store's reads that only the dashboard makes: the overview's
//! figures and a node's recent leases. Each is an index lookup or a bounded scan (the
//! indexes of migration 0012), so pages stay fast at 10,000 nodes and
//! 100,000 jobs.

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::coordinator::store::{query_err, Store, StoreError};

/// Markets the overview lists at most.
pub const MAX_MARKETS: i64 = 100;

/// Nodes online and in all in one market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketCount {
    pub market: String,
    pub online: i64,
    pub total: i64,
}

/// The network at a glance.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub markets: Vec<MarketCount>,
    pub jobs_queued: i64,
    pub jobs_running: i64,
    /// What the online nodes' benchmarks say they generate together.
    pub capacity_tokens_per_second: f64,
    /// Completion tokens of gateway requests settled in the last minute.
    pub served_tokens_last_minute: i64,
    pub jobs_today: i64,
    pub energy_wh_today: f64,
    pub solar_wh_today: f64,
    pub co2_grams_today: f64,
    pub supply_ugai: i64,
}

/// One lease a node held, with its job's state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLease {
    pub job_id: String,
    pub attempt: i64,
    pub granted_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub outcome: Option<String>,
    pub job_state: String,
}

impl Store {
    /// The overview's figures; "today" starts at `day_start_ms`.
    pub async fn overview(&self, now_ms: i64, day_start_ms: i64) -> Result<Overview, StoreError> {
        let pool = &self.pool;
        let markets = sqlx::query(
            "SELECT market, CAST(SUM(CASE WHEN state = 'online' THEN 1 ELSE 0 END) AS BIGINT), \
             COUNT(*) FROM nodes GROUP BY market ORDER BY market LIMIT $1",
        )
        .bind(MAX_MARKETS)
        .fetch_all(pool)
        .await
        .map_err(query_err("count nodes by market"))?;
        let markets = markets
            .iter()
            .map(|row| {
                Ok(MarketCount {
                    market: row.try_get(0).map_err(query_err("read a market count"))?,
                    online: row.try_get(1).map_err(query_err("read a market count"))?,
                    total: row.try_get(2).map_err(query_err("read a market count"))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let jobs = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 'QUEUED'), \
             (SELECT COUNT(*) FROM jobs WHERE state = 'RUNNING'), \
             (SELECT CAST(COALESCE(SUM(r.tokens_per_second), 0.0) AS DOUBLE PRECISION) \
              FROM node_regions r JOIN nodes n ON n.node_id = r.node_id WHERE n.state = 'online'), \
             (SELECT CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) FROM gateway_bills \
              WHERE settled_at >= $1 AND state = 'settled'), \
             (SELECT CAST(-balance AS BIGINT) FROM ledger_accounts WHERE account = 'issuer')",
        )
        .bind(now_ms - 60_000)
        .fetch_one(pool)
        .await
        .map_err(query_err("count jobs and tokens"))?;
        let energy = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(energy_wh), 0.0) AS DOUBLE PRECISION), \
             CAST(COALESCE(SUM(solar_wh), 0.0) AS DOUBLE PRECISION), \
             CAST(COALESCE(SUM(co2_grams), 0.0) AS DOUBLE PRECISION) \
             FROM job_energy WHERE recorded_at >= $1",
        )
        .bind(day_start_ms)
        .fetch_one(pool)
        .await
        .map_err(query_err("sum today's energy"))?;
        let get_i = |row: &AnyRow, i| {
            row.try_get::<i64, _>(i)
                .map_err(query_err("read the overview"))
        };
        let get_f = |row: &AnyRow, i| {
            row.try_get::<f64, _>(i)
                .map_err(query_err("read the overview"))
        };
        Ok(Overview {
            markets,
            jobs_queued: get_i(&jobs, 0)?,
            jobs_running: get_i(&jobs, 1)?,
            capacity_tokens_per_second: get_f(&jobs, 2)?,
            served_tokens_last_minute: get_i(&jobs, 3)?,
            supply_ugai: get_i(&jobs, 4)?,
            jobs_today: get_i(&energy, 0)?,
            energy_wh_today: get_f(&energy, 1)?,
            solar_wh_today: get_f(&energy, 2)?,
            co2_grams_today: get_f(&energy, 3)?,
        })
    }

    /// The node's `limit` newest leases, newest first.
    pub async fn node_leases(
        &self,
        node_id: Uuid,
        limit: i64,
    ) -> Result<Vec<NodeLease>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.job_id, l.attempt, l.granted_at, l.ended_at, l.outcome, j.state \
             FROM leases l JOIN jobs j ON j.job_id = l.job_id WHERE l.node_id = $1 \
             ORDER BY l.granted_at DESC LIMIT $2",
        )
        .bind(node_id.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list a node's leases"))?;
        let read = || query_err("read a lease row");
        rows.iter()
            .map(|row| {
                Ok(NodeLease {
                    job_id: row.try_get(0).map_err(read())?,
                    attempt: row.try_get(1).map_err(read())?,
                    granted_at_ms: row.try_get(2).map_err(read())?,
                    ended_at_ms: row.try_get(3).map_err(read())?,
                    outcome: row.try_get(4).map_err(read())?,
                    job_state: row.try_get(5).map_err(read())?,
                })
            })
            .collect()
    }
}

/// A node's power as its latest heartbeat with a power report said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodePower {
    pub draw_watts: Option<f64>,
    pub production_watts: Option<f64>,
    pub surplus_watts: Option<f64>,
    pub at_ms: Option<i64>,
}

impl Store {
    /// The node's power now (its region row), if it has one.
    pub async fn node_power(&self, node_id: Uuid) -> Result<Option<NodePower>, StoreError> {
        let row = sqlx::query(
            "SELECT draw_watts, production_watts, surplus_watts, power_at FROM node_regions \
             WHERE node_id = $1",
        )
        .bind(node_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a node's power"))?;
        let read = || query_err("read a node's power");
        row.map(|row| {
            Ok(NodePower {
                draw_watts: row.try_get(0).map_err(read())?,
                production_watts: row.try_get(1).map_err(read())?,
                surplus_watts: row.try_get(2).map_err(read())?,
                at_ms: row.try_get(3).map_err(read())?,
            })
        })
        .transpose()
    }
}
