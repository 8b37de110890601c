//! The nodes table: registrations, the node view, liveness marks, counts
//! and deletion with its tombstone. Heartbeats are in `heartbeats`, list
//! pages in `pages`, join tokens in `join_token_store`.

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::api::{GpuInfo, HeartbeatRecord, Location, MarketView, NodeState, NodeView};
use crate::clock::rfc3339_millis;
use crate::coordinator::regions::store::delete_node_region_in;
use crate::coordinator::store::{
    query_err, AnyQuery, Backend, Store, StoreError, DELETED_NODES_CHANNEL,
};

/// A registration as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNode {
    pub node_id: Uuid,
    pub public_key: String,
    pub market: String,
    pub gpu_info: Vec<GpuInfo>,
    pub location: Location,
    pub benchmark: Option<serde_json::Value>,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    Updated,
    /// The id is bound to another key; nothing changed.
    KeyConflict,
}

/// Binds `$1`–`$10` shared by the register statements, in their order: id,
/// key, market, GPUs, benchmark, country, region, latitude, longitude, time.
fn bind_node<'q>(
    query: AnyQuery<'q>,
    node: &NewNode,
    gpu_info: &str,
    benchmark: Option<&str>,
    now_ms: i64,
) -> AnyQuery<'q> {
    query
        .bind(node.node_id.to_string())
        .bind(node.public_key.clone())
        .bind(node.market.clone())
        .bind(gpu_info.to_owned())
        .bind(benchmark.map(str::to_owned))
        .bind(node.location.country.clone())
        .bind(node.location.region.clone())
        .bind(node.location.latitude)
        .bind(node.location.longitude)
        .bind(now_ms)
}

impl Store {
    /// The registered public key of `node_id` (hex).
    pub async fn public_key(&self, node_id: Uuid) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT public_key FROM nodes WHERE node_id = $1")
            .bind(node_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read a node's key"))?
            .map(|row| row.try_get::<String, _>(0))
            .transpose()
            .map_err(query_err("read a node's key"))
    }

    /// Records a registration: creates the node, or updates its facts when
    /// the key matches the one bound to the id.
    pub async fn register(&self, node: &NewNode, now_ms: i64) -> Result<Registered, StoreError> {
        let gpu_info = serde_json::to_string(&node.gpu_info).unwrap_or_else(|_| "[]".into());
        let benchmark = node.benchmark.as_ref().map(|b| b.to_string());
        let _turn = self.write_turn().await;
        let insert = sqlx::query(
            "INSERT INTO nodes (node_id, public_key, market, gpu_info, benchmark, country, region, \
             latitude, longitude, state, registered_at, updated_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'online', $10, $10, $10) \
             ON CONFLICT (node_id) DO NOTHING",
        );
        let inserted = bind_node(insert, node, &gpu_info, benchmark.as_deref(), now_ms)
            .execute(&self.pool)
            .await
            .map_err(query_err("insert a node"))?;
        if inserted.rows_affected() == 1 {
            self.record_node_region(
                node.node_id,
                &node.location,
                &node.gpu_info,
                node.benchmark.as_ref(),
            )
            .await?;
            // A deleted id that was admitted again is no longer deleted.
            sqlx::query("DELETE FROM node_tombstones WHERE node_id = $1")
                .bind(node.node_id.to_string())
                .execute(&self.pool)
                .await
                .map_err(query_err("remove a tombstone"))?;
            return Ok(Registered::Created);
        }
        let update = sqlx::query(
            "UPDATE nodes SET market = $3, gpu_info = $4, benchmark = $5, country = $6, \
             region = $7, latitude = $8, longitude = $9, state = 'online', updated_at = $10, \
             last_seen_at = $10 WHERE node_id = $1 AND public_key = $2",
        );
        let updated = bind_node(update, node, &gpu_info, benchmark.as_deref(), now_ms)
            .execute(&self.pool)
            .await
            .map_err(query_err("update a node"))?;
        if updated.rows_affected() == 1 {
            self.record_node_region(
                node.node_id,
                &node.location,
                &node.gpu_info,
                node.benchmark.as_ref(),
            )
            .await?;
        }
        Ok(if updated.rows_affected() == 1 {
            Registered::Updated
        } else {
            Registered::KeyConflict
        })
    }

    /// Marks online nodes not seen since `seen_before_ms` offline and returns them.
    pub async fn mark_offline(&self, seen_before_ms: i64) -> Result<Vec<Uuid>, StoreError> {
        let _turn = self.write_turn().await;
        let rows = sqlx::query(
            "UPDATE nodes SET state = 'offline' WHERE state = 'online' AND last_seen_at < $1 \
             RETURNING node_id",
        )
        .bind(seen_before_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("mark nodes offline"))?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get(0).map_err(query_err("read a node id"))?;
                parse_id(&text)
            })
            .collect()
    }

    pub async fn node(&self, node_id: Uuid) -> Result<Option<NodeView>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            node_columns!(),
            " FROM nodes WHERE node_id = $1"
        ))
        .bind(node_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a node"))?;
        row.as_ref().map(node_view).transpose()
    }

    /// One market's node counts; `None` when no node was ever in it.
    pub async fn market(&self, market: &str) -> Result<Option<MarketView>, StoreError> {
        let row = sqlx::query(
            "SELECT SUM(CASE WHEN state = 'online' THEN 1 ELSE 0 END), COUNT(*) \
             FROM nodes WHERE market = $1",
        )
        .bind(market.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("count a market's nodes"))?;
        let online: Option<i64> = row.try_get(0).map_err(query_err("read a market row"))?;
        let total: i64 = row.try_get(1).map_err(query_err("read a market row"))?;
        Ok((total > 0).then(|| MarketView {
            market: market.to_string(),
            online: u64::try_from(online.unwrap_or(0)).unwrap_or_default(),
            total: u64::try_from(total).unwrap_or_default(),
            qualified: None,
        }))
    }

    /// How many nodes are in each state.
    pub async fn count_by_state(&self) -> Result<Vec<(NodeState, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM nodes GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("count nodes"))?;
        let mut counts = Vec::new();
        for row in &rows {
            let state: String = row.try_get(0).map_err(query_err("count nodes"))?;
            let count: i64 = row.try_get(1).map_err(query_err("count nodes"))?;
            if let Some(state) = NodeState::parse(&state) {
                counts.push((state, count));
            }
        }
        Ok(counts)
    }

    /// Removes a node and its heartbeats and leaves a tombstone (the id
    /// registers again only with a join token issued for it); false when it
    /// did not exist. Its nonces stay until they expire, so requests captured
    /// before the deletion cannot be replayed to register the old key again.
    pub async fn delete_node(&self, node_id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let id = node_id.to_string();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let deleted = sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(id.clone())
            .execute(&mut *tx)
            .await
            .map_err(query_err("delete a node"))?;
        sqlx::query("DELETE FROM heartbeats WHERE node_id = $1")
            .bind(id.clone())
            .execute(&mut *tx)
            .await
            .map_err(query_err("delete a node's heartbeats"))?;
        delete_node_region_in(&mut tx, node_id).await?;
        if deleted.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO node_tombstones (node_id, deleted_at) VALUES ($1, $2) \
                 ON CONFLICT (node_id) DO UPDATE SET deleted_at = $2",
            )
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_err("leave a tombstone"))?;
        }
        if self.backend() == Backend::Postgres {
            // Every replica forgets the node's cached key at the commit.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(DELETED_NODES_CHANNEL)
                .bind(node_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(query_err("announce a deletion"))?;
        }
        tx.commit().await.map_err(query_err("commit a deletion"))?;
        Ok(deleted.rows_affected() == 1)
    }
}

pub(super) fn node_view(row: &AnyRow) -> Result<NodeView, StoreError> {
    let read = |source| StoreError::Query {
        what: "read a node row",
        source,
    };
    let id: String = row.try_get("node_id").map_err(read)?;
    let corrupt = |problem: String| StoreError::Corrupt {
        node_id: id.clone(),
        problem,
    };
    let state: String = row.try_get("state").map_err(read)?;
    let gpu_info: String = row.try_get("gpu_info").map_err(read)?;
    let benchmark: Option<String> = row.try_get("benchmark").map_err(read)?;
    let registered_at: i64 = row.try_get("registered_at").map_err(read)?;
    let last_seen_at: i64 = row.try_get("last_seen_at").map_err(read)?;
    let heartbeats: i64 = row.try_get("heartbeat_seq").map_err(read)?;
    let ready: Option<i64> = row.try_get("ready").map_err(read)?;
    Ok(NodeView {
        node_id: parse_id(&id)?,
        name: row.try_get("name").map_err(read)?,
        spec_revision: row.try_get("spec_revision").map_err(read)?,
        state: NodeState::parse(&state).ok_or_else(|| corrupt(format!("state {state:?}")))?,
        market: row.try_get("market").map_err(read)?,
        public_key: row.try_get("public_key").map_err(read)?,
        location: Location {
            country: row.try_get("country").map_err(read)?,
            region: row.try_get("region").map_err(read)?,
            latitude: row.try_get("latitude").map_err(read)?,
            longitude: row.try_get("longitude").map_err(read)?,
        },
        gpu_info: serde_json::from_str(&gpu_info)
            .map_err(|err| corrupt(format!("gpu_info: {err}")))?,
        benchmark: benchmark
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|err| corrupt(format!("benchmark: {err}")))?,
        registered_at: rfc3339_millis(registered_at),
        last_seen_at: rfc3339_millis(last_seen_at),
        heartbeats: u64::try_from(heartbeats).unwrap_or_default(),
        observed_generation: row.try_get("observed_generation").map_err(read)?,
        ready: ready.map(|r| r != 0),
        qualification: None,
    })
}

pub(super) fn heartbeat_record(node_id: Uuid, row: &AnyRow) -> Result<HeartbeatRecord, StoreError> {
    let read = |source| StoreError::Query {
        what: "read a heartbeat row",
        source,
    };
    let seq: i64 = row.try_get("seq").map_err(read)?;
    let received_at: i64 = row.try_get("received_at").map_err(read)?;
    let ready: Option<i64> = row.try_get("ready").map_err(read)?;
    let status: String = row.try_get("status").map_err(read)?;
    Ok(HeartbeatRecord {
        seq: u64::try_from(seq).unwrap_or_default(),
        received_at: rfc3339_millis(received_at),
        observed_generation: row.try_get("observed_generation").map_err(read)?,
        ready: ready.map(|r| r != 0),
        status: serde_json::from_str(&status).map_err(|err| StoreError::Corrupt {
            node_id: node_id.to_string(),
            problem: format!("heartbeat {seq} status: {err}"),
        })?,
    })
}

pub(super) fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|err| StoreError::Corrupt {
        node_id: text.to_string(),
        problem: format!("node id: {err}"),
    })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
