//! Nonces of signed requests, shared by every replica on one database: a
//! nonce is accepted once until its request would be stale anyway (issue 9).

use sqlx::AnyConnection;
use uuid::Uuid;

use super::{query_err, Store, StoreError};

/// [`Store::remember_nonce`] inside a caller's transaction (the heartbeat
/// writer stores a heartbeat's nonce with the heartbeat).
pub(in crate::coordinator) async fn remember_nonce_in(
    conn: &mut AnyConnection,
    node_id: Uuid,
    nonce: &str,
    expires_ms: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO request_nonces (node_id, nonce, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (node_id, nonce) DO NOTHING",
    )
    .bind(node_id.to_string())
    .bind(nonce.to_string())
    .bind(expires_ms)
    .execute(conn)
    .await
    .map_err(query_err("remember a nonce"))?;
    Ok(result.rows_affected() == 1)
}

impl Store {
    /// Remembers a request nonce until `expires_ms`; false when it was
    /// already seen (a replay).
    pub async fn remember_nonce(
        &self,
        node_id: Uuid,
        nonce: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_err("remember a nonce"))?;
        remember_nonce_in(&mut conn, node_id, nonce, expires_ms).await
    }

    /// Forgets nonces whose requests would be stale anyway.
    pub async fn prune_nonces(&self, now_ms: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query("DELETE FROM request_nonces WHERE expires_at < $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(query_err("prune nonces"))?;
        Ok(result.rows_affected())
    }
}
