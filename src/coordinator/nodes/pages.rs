//! The store's list queries, one page at a time in key order (the API's
//! `limit` + `continue`): each fetches `limit + 1` rows so the caller knows
//! whether another page follows.

use sqlx::Row;
use uuid::Uuid;

use super::api::{HeartbeatRecord, MarketView, NodeState, NodeView};
use super::store::{heartbeat_record, node_view};
use crate::coordinator::store::{query_err, Store, StoreError};

fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

impl Store {
    /// Up to `limit + 1` nodes with ids after `after`, by id; only those of
    /// `market` and in `state` when given.
    pub async fn nodes_page(
        &self,
        market: Option<&str>,
        state: Option<NodeState>,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<NodeView>, StoreError> {
        let after = after.map_or_else(String::new, |id| id.to_string());
        let rows = sqlx::query(concat!(
            "SELECT ",
            node_columns!(),
            " FROM nodes WHERE node_id > $1 AND ($2 = '' OR market = $2) \
             AND ($3 = '' OR state = $3) ORDER BY node_id LIMIT $4"
        ))
        .bind(after)
        .bind(market.unwrap_or_default().to_string())
        .bind(state.map_or("", NodeState::as_str).to_string())
        .bind(fetch_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list nodes"))?;
        rows.iter().map(node_view).collect()
    }

    /// Up to `limit + 1` markets named after `after`, by name, with their
    /// node counts.
    pub async fn markets_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MarketView>, StoreError> {
        let rows = sqlx::query(
            "SELECT market, SUM(CASE WHEN state = 'online' THEN 1 ELSE 0 END), COUNT(*) \
             FROM nodes WHERE market > $1 GROUP BY market ORDER BY market LIMIT $2",
        )
        .bind(after.unwrap_or_default().to_string())
        .bind(fetch_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list markets"))?;
        rows.iter()
            .map(|row| {
                let read = query_err("read a market row");
                let online: i64 = row.try_get(1).map_err(read)?;
                let total: i64 = row.try_get(2).map_err(query_err("read a market row"))?;
                Ok(MarketView {
                    market: row.try_get(0).map_err(query_err("read a market row"))?,
                    online: u64::try_from(online).unwrap_or_default(),
                    total: u64::try_from(total).unwrap_or_default(),
                    qualified: None,
                })
            })
            .collect()
    }

    /// Up to `limit + 1` heartbeats of a node older than `before_seq`,
    /// newest first.
    pub async fn heartbeats_page(
        &self,
        node_id: Uuid,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<HeartbeatRecord>, StoreError> {
        let before = before_seq.map_or(i64::MAX, |seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let rows = sqlx::query(
            "SELECT seq, received_at, observed_generation, ready, status FROM heartbeats \
             WHERE node_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(node_id.to_string())
        .bind(before)
        .bind(fetch_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list heartbeats"))?;
        rows.iter()
            .map(|row| heartbeat_record(node_id, row))
            .collect()
    }
}
