//! Recording heartbeats: the node's latest status and a history bounded by
//! count and by bytes ([`Retention`]), inside the transaction of the
//! heartbeat writer's batch (`heartbeat_writer`) or one of its own (with the
//! power report, when sent, in the node's region row).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::api::{HeartbeatRequest, NodeState};
use crate::coordinator::regions::store::record_power_in;
use crate::coordinator::store::{query_err, StoreError};

/// How much heartbeat history a node keeps: the newest `count`, and no more
/// than `bytes` of status JSON (the newest one is always kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub count: u64,
    pub bytes: u64,
}

/// Longest node name kept (a DNS name's length; `metadata.name` is shorter).
pub const MAX_NODE_NAME_CHARS: usize = 253;

/// The node's name from its status document (`node`), cut to
/// [`MAX_NODE_NAME_CHARS`]; any text is kept as text (pages escape it).
fn reported_name(heartbeat: &HeartbeatRequest) -> Option<String> {
    heartbeat
        .status
        .get("node")
        .and_then(serde_json::Value::as_str)
        .map(|name| name.chars().take(MAX_NODE_NAME_CHARS).collect())
}

/// The longest spec revision kept (a SHA-256 commit id has 64 digits).
pub const MAX_SPEC_REVISION_CHARS: usize = 64;

/// The spec revision the heartbeat reports, cut to [`MAX_SPEC_REVISION_CHARS`].
fn reported_revision(heartbeat: &HeartbeatRequest) -> Option<String> {
    heartbeat
        .spec_revision
        .as_deref()
        .map(|revision| revision.chars().take(MAX_SPEC_REVISION_CHARS).collect())
}

/// The status document as stored: the agent's status, with the typed
/// `power` report (when sent) as its `power` member.
fn stored_status(heartbeat: &HeartbeatRequest) -> serde_json::Value {
    let mut status = heartbeat.status.clone();
    if let (Some(power), Some(fields)) = (&heartbeat.power, status.as_object_mut()) {
        fields.insert(
            "power".into(),
            serde_json::to_value(power).unwrap_or_default(),
        );
    }
    status
}

#[cfg(test)]
impl crate::coordinator::store::Store {
    /// Records a heartbeat in a transaction of its own, for the store's
    /// tests (the heartbeat route batches them through `heartbeat_writer`);
    /// see [`record_heartbeat_in`].
    pub async fn record_heartbeat(
        &self,
        node_id: Uuid,
        heartbeat: &HeartbeatRequest,
        now_ms: i64,
        retain: Retention,
    ) -> Result<Option<NodeState>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let before = record_heartbeat_in(&mut tx, node_id, heartbeat, now_ms, retain).await?;
        tx.commit().await.map_err(query_err("commit a heartbeat"))?;
        Ok(before)
    }
}

/// Records a heartbeat inside the caller's transaction (on SQLite the
/// caller holds the writer turn, so reading before writing cannot meet
/// another writer): marks the node online and prunes its history to
/// `retain`. Returns the state the node was in before, or `None` for an
/// unknown node.
pub(super) async fn record_heartbeat_in(
    tx: &mut AnyConnection,
    node_id: Uuid,
    heartbeat: &HeartbeatRequest,
    now_ms: i64,
    retain: Retention,
) -> Result<Option<NodeState>, StoreError> {
    let id = node_id.to_string();
    let before = sqlx::query("SELECT state FROM nodes WHERE node_id = $1")
        .bind(id.clone())
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("read a node's state"))?;
    let Some(before) = before else {
        return Ok(None);
    };
    let before: String = before
        .try_get(0)
        .map_err(query_err("read a node's state"))?;
    let status = stored_status(heartbeat).to_string();
    let status_bytes = i64::try_from(status.len()).unwrap_or(i64::MAX);
    let ready = heartbeat.ready.map(i64::from);
    let row = sqlx::query(
        "UPDATE nodes SET state = 'online', last_seen_at = $2, \
         heartbeat_seq = heartbeat_seq + 1, observed_generation = $3, ready = $4, \
         last_status = $5, history_bytes = history_bytes + $6, \
         name = COALESCE($7, name), spec_revision = $8 WHERE node_id = $1 \
         RETURNING heartbeat_seq, history_bytes",
    )
    .bind(id.clone())
    .bind(now_ms)
    .bind(heartbeat.observed_generation.clone())
    .bind(ready)
    .bind(status.clone())
    .bind(status_bytes)
    .bind(reported_name(heartbeat))
    .bind(reported_revision(heartbeat))
    .fetch_optional(&mut *tx)
    .await
    .map_err(query_err("update a node's heartbeat"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let seq: i64 = row
        .try_get(0)
        .map_err(query_err("read a heartbeat count"))?;
    let history_bytes: i64 = row.try_get(1).map_err(query_err("read a history size"))?;
    if let Some(power) = &heartbeat.power {
        record_power_in(tx, node_id, power, now_ms).await?;
    }
    sqlx::query(
        "INSERT INTO heartbeats (node_id, seq, received_at, observed_generation, ready, \
         status, status_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.clone())
    .bind(seq)
    .bind(now_ms)
    .bind(heartbeat.observed_generation.clone())
    .bind(ready)
    .bind(status)
    .bind(status_bytes)
    .execute(&mut *tx)
    .await
    .map_err(query_err("insert a heartbeat"))?;
    // Sequence numbers start at 1: until a node has sent more heartbeats
    // than are kept there is nothing to prune by count (a statement saved
    // on most heartbeats of a young node).
    let oldest_kept = seq - i64::try_from(retain.count).unwrap_or(i64::MAX) + 1;
    let mut freed = 0;
    if oldest_kept > 1 {
        let removed = sqlx::query(
            "DELETE FROM heartbeats WHERE node_id = $1 AND seq < $2 RETURNING status_bytes",
        )
        .bind(id.clone())
        .bind(oldest_kept)
        .fetch_all(&mut *tx)
        .await
        .map_err(query_err("prune heartbeats"))?;
        freed = sum_bytes(&removed)?;
    }
    let budget = i64::try_from(retain.bytes).unwrap_or(i64::MAX);
    if history_bytes - freed > budget {
        // The newest heartbeats whose sizes add up to the budget stay.
        let removed = sqlx::query(
            "DELETE FROM heartbeats WHERE node_id = $1 AND seq IN (SELECT seq FROM \
             (SELECT seq, SUM(status_bytes) OVER (ORDER BY seq DESC) AS newer_bytes \
             FROM heartbeats WHERE node_id = $1) AS sized \
             WHERE newer_bytes > $2 AND seq < $3) RETURNING status_bytes",
        )
        .bind(id.clone())
        .bind(budget)
        .bind(seq)
        .fetch_all(&mut *tx)
        .await
        .map_err(query_err("prune heartbeats by size"))?;
        freed += sum_bytes(&removed)?;
    }
    if freed > 0 {
        sqlx::query("UPDATE nodes SET history_bytes = history_bytes - $2 WHERE node_id = $1")
            .bind(id)
            .bind(freed)
            .execute(&mut *tx)
            .await
            .map_err(query_err("update a history size"))?;
    }
    Ok(NodeState::parse(&before))
}

/// The sum of the `status_bytes` a DELETE … RETURNING gave back.
fn sum_bytes(rows: &[AnyRow]) -> Result<i64, StoreError> {
    rows.iter().try_fold(0i64, |sum, row| {
        let bytes: i64 = row.try_get(0).map_err(query_err("read a heartbeat size"))?;
        Ok(sum.saturating_add(bytes))
    })
}
