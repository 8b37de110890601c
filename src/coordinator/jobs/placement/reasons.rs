//! Why a queued job is still queued, as its owner reads it: no online node
//! satisfies its residency, or it waits for a node on solar surplus.

use sqlx::Row;

use super::super::api::{EnergyPreference, Residency};
use super::super::store::JobRow;
use crate::clock::rfc3339_millis;
use crate::coordinator::store::{query_err, Store, StoreError};
use crate::geo;

/// `residency` for people: `countries SE, EU, priceAreas SE3/SE4`.
fn describe(residency: &Residency) -> String {
    let mut parts = Vec::new();
    if !residency.countries.is_empty() {
        parts.push(format!("countries {}", residency.countries.join("/")));
    }
    if residency.eu {
        parts.push("the EU".to_string());
    }
    if !residency.price_areas.is_empty() {
        parts.push(format!("priceAreas {}", residency.price_areas.join("/")));
    }
    parts.join(", ")
}

impl Store {
    /// Online nodes whose location satisfies `residency`.
    pub async fn online_residents(&self, residency: &Residency) -> Result<i64, StoreError> {
        let mut countries: Vec<String> = residency.countries.clone();
        if residency.eu {
            let eu: Vec<String> = geo::country::EU_MEMBERS
                .iter()
                .map(|c| c.to_string())
                .collect();
            countries = if countries.is_empty() {
                eu
            } else {
                countries.into_iter().filter(|c| eu.contains(c)).collect()
            };
        }
        let mut sql = String::from("SELECT COUNT(*) FROM nodes WHERE state = 'online'");
        let mut binds: Vec<String> = Vec::new();
        let list = |values: &[String], binds: &mut Vec<String>| {
            let start = binds.len();
            binds.extend(values.iter().cloned());
            (start + 1..=binds.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !countries.is_empty() || residency.eu || !residency.countries.is_empty() {
            if countries.is_empty() {
                return Ok(0);
            }
            let placeholders = list(&countries, &mut binds);
            sql.push_str(&format!(" AND country IN ({placeholders})"));
        }
        if !residency.price_areas.is_empty() {
            let placeholders = list(&residency.price_areas, &mut binds);
            sql.push_str(&format!(
                " AND country = 'SE' AND region IN ({placeholders})"
            ));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            query = query.bind(value);
        }
        query
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(query_err("count the nodes a residency allows"))
    }

    /// Why `job` (QUEUED) waits, when its placement says so; `None` when it
    /// only waits for a node to ask.
    pub async fn placement_reason(
        &self,
        job: &JobRow,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        if let Some(residency) = &job.placement.constraints.residency {
            if self.online_residents(residency).await? == 0 {
                return Ok(Some(format!(
                    "no online node satisfies its residency ({}); it stays queued until one does",
                    describe(residency)
                )));
            }
        }
        if job.placement.energy == EnergyPreference::PreferGreen {
            if let Some(until) = job.green_until_ms.filter(|until| *until > now_ms) {
                return Ok(Some(format!(
                    "prefer-green: waiting for a node on solar surplus until {}, then any node",
                    rfc3339_millis(until)
                )));
            }
        }
        Ok(None)
    }
}
