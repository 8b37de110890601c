//! The coordinator's published id (the audience of signed requests): made
//! once per database, so every replica on one PostgreSQL signs-checks for
//! the same id, and kept across restarts.

use sqlx::Row;
use uuid::Uuid;

use super::{query_err, Store, StoreError};

impl Store {
    /// This database's coordinator id, made at the first call. Concurrent
    /// first calls (replicas starting together) agree on one id.
    pub async fn coordinator_id(&self, now_ms: i64) -> Result<Uuid, StoreError> {
        {
            let _turn = self.write_turn().await;
            sqlx::query(
                "INSERT INTO coordinator_identity (singleton, coordinator_id, created_at) \
                 VALUES (1, $1, $2) ON CONFLICT (singleton) DO NOTHING",
            )
            .bind(Uuid::new_v4().to_string())
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(query_err("make the coordinator id"))?;
        }
        let text: String =
            sqlx::query("SELECT coordinator_id FROM coordinator_identity WHERE singleton = 1")
                .fetch_one(&self.pool)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(query_err("read the coordinator id"))?;
        Uuid::parse_str(&text).map_err(|_| StoreError::CorruptCoordinatorId { value: text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_made_once_and_kept_across_connections() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("store");
        let first = store.coordinator_id(1).await.expect("made");
        assert_eq!(store.coordinator_id(2).await.expect("read"), first);
        store.close().await;
        let reopened = Store::connect(&url).await.expect("reopened");
        assert_eq!(reopened.coordinator_id(3).await.expect("kept"), first);
        let tmp2 = tempfile::tempdir().expect("tempdir");
        let url2 = format!("sqlite://{}", tmp2.path().join("db.sqlite").display());
        let other = Store::connect(&url2).await.expect("other");
        assert_ne!(other.coordinator_id(1).await.expect("made"), first);
    }
}
