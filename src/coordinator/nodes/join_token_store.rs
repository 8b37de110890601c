//! The store's side of admission: join tokens (only the SHA-256 of their
//! secret is kept) and the tombstones of deleted node ids.

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::join_tokens::StoredToken;
use crate::coordinator::store::{query_err, Store, StoreError};

macro_rules! token_columns {
    () => {
        "token_id, secret_sha256, node_id, uses_total, uses_left, created_at, expires_at"
    };
}

impl Store {
    /// Records a new join token.
    pub async fn insert_join_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO join_tokens (token_id, secret_sha256, node_id, uses_total, uses_left, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id.clone())
        .bind(hex::encode(token.secret_sha256))
        .bind(token.node_id.map(|id| id.to_string()))
        .bind(i64::from(token.uses_total))
        .bind(i64::from(token.uses_left))
        .bind(token.created_at_ms)
        .bind(token.expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("insert a join token"))?;
        Ok(())
    }

    /// The join token with this id.
    pub async fn join_token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM join_tokens WHERE token_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a join token"))?;
        row.as_ref().map(stored_token).transpose()
    }

    /// Takes one use of a token that is still valid at `now_ms`; false when
    /// none is left (or it expired meanwhile).
    pub async fn use_join_token(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "UPDATE join_tokens SET uses_left = uses_left - 1 \
             WHERE token_id = $1 AND uses_left > 0 AND expires_at > $2",
        )
        .bind(id.to_string())
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("use a join token"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Up to `limit + 1` join tokens with ids after `after`, by id.
    pub async fn join_tokens_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM join_tokens WHERE token_id > $1 ORDER BY token_id LIMIT $2"
        ))
        .bind(after.unwrap_or_default().to_string())
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list join tokens"))?;
        rows.iter().map(stored_token).collect()
    }

    /// Removes a join token; false when there was none.
    pub async fn delete_join_token(&self, id: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query("DELETE FROM join_tokens WHERE token_id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(query_err("delete a join token"))?;
        Ok(result.rows_affected() == 1)
    }

    /// True when an admin deleted `node_id` and it has not registered again.
    pub async fn is_tombstoned(&self, node_id: Uuid) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT node_id FROM node_tombstones WHERE node_id = $1")
            .bind(node_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read a tombstone"))?;
        Ok(row.is_some())
    }
}

fn stored_token(row: &AnyRow) -> Result<StoredToken, StoreError> {
    let read = |source| StoreError::Query {
        what: "read a join token row",
        source,
    };
    let id: String = row.try_get("token_id").map_err(read)?;
    let corrupt = |problem: String| StoreError::CorruptToken {
        token_id: id.clone(),
        problem,
    };
    let digest: String = row.try_get("secret_sha256").map_err(read)?;
    let secret_sha256 = hex::decode(&digest)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| corrupt("secret_sha256 is not 32 bytes of hex".into()))?;
    let node_id: Option<String> = row.try_get("node_id").map_err(read)?;
    let node_id = node_id
        .map(|text| Uuid::parse_str(&text))
        .transpose()
        .map_err(|err| corrupt(format!("node_id: {err}")))?;
    let count = |column: &str| -> Result<u32, StoreError> {
        let value: i64 = row.try_get(column).map_err(read)?;
        u32::try_from(value).map_err(|_| corrupt(format!("{column} = {value}")))
    };
    Ok(StoredToken {
        secret_sha256,
        node_id,
        uses_total: count("uses_total")?,
        uses_left: count("uses_left")?,
        created_at_ms: row.try_get("created_at").map_err(read)?,
        expires_at_ms: row.try_get("expires_at").map_err(read)?,
        id,
    })
}
