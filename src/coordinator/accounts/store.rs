//! The accounts table: insert, lookup by key id, pages, revocation.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::coordinator::store::{query_err, Store, StoreError};

/// An account as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    pub id: String,
    pub name: String,
    pub secret_sha256: [u8; 32],
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// What inserting an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// Another account has the name (or, vanishingly unlikely, the id).
    Taken,
}

impl Store {
    /// Records a new account.
    pub async fn insert_account(&self, account: &StoredAccount) -> Result<Inserted, StoreError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "INSERT INTO accounts (account_id, name, secret_sha256, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(account.id.clone())
        .bind(account.name.clone())
        .bind(hex::encode(account.secret_sha256))
        .bind(account.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("insert an account"))?;
        Ok(if result.rows_affected() == 1 {
            Inserted::Created
        } else {
            Inserted::Taken
        })
    }

    /// The account whose API key has this public id.
    pub async fn account(&self, id: &str) -> Result<Option<StoredAccount>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, name, secret_sha256, created_at, revoked_at \
             FROM accounts WHERE account_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read an account"))?;
        row.as_ref().map(stored_account).transpose()
    }

    /// Up to `limit + 1` accounts with ids after `after`, by id.
    pub async fn accounts_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredAccount>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, name, secret_sha256, created_at, revoked_at \
             FROM accounts WHERE account_id > $1 ORDER BY account_id LIMIT $2",
        )
        .bind(after.unwrap_or_default().to_string())
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list accounts"))?;
        rows.iter().map(stored_account).collect()
    }

    /// Revokes an account's key (kept, listed as revoked); false when there
    /// is no such account. Revoking twice keeps the first time.
    pub async fn revoke_account(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "UPDATE accounts SET revoked_at = COALESCE(revoked_at, $2) WHERE account_id = $1",
        )
        .bind(id.to_string())
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("revoke an account"))?;
        Ok(result.rows_affected() == 1)
    }
}

fn stored_account(row: &AnyRow) -> Result<StoredAccount, StoreError> {
    let read = query_err("read an account row");
    let id: String = row.try_get("account_id").map_err(read)?;
    let digest: String = row
        .try_get("secret_sha256")
        .map_err(query_err("read an account row"))?;
    let secret_sha256 = hex::decode(&digest)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| StoreError::CorruptRow {
            table: "accounts",
            key: id.clone(),
            problem: "secret_sha256 is not 32 bytes of hex".into(),
        })?;
    Ok(StoredAccount {
        name: row
            .try_get("name")
            .map_err(query_err("read an account row"))?,
        created_at_ms: row
            .try_get("created_at")
            .map_err(query_err("read an account row"))?,
        revoked_at_ms: row
            .try_get("revoked_at")
            .map_err(query_err("read an account row"))?,
        secret_sha256,
        id,
    })
}

impl Store {
    /// The residency an account's gateway requests keep to by default
    /// (`X-Garage-Residency` syntax), if it has one.
    pub async fn account_residency(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT residency FROM accounts WHERE account_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read an account's residency"))?;
        match row {
            Some(row) => row
                .try_get(0)
                .map_err(query_err("read an account's residency")),
            None => Ok(None),
        }
    }

    /// Sets (or with `None` clears) an account's default residency;
    /// `false` when there is no such account.
    pub async fn set_account_residency(
        &self,
        id: &str,
        residency: Option<&str>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query("UPDATE accounts SET residency = $2 WHERE account_id = $1")
            .bind(id.to_string())
            .bind(residency.map(str::to_string))
            .execute(&self.pool)
            .await
            .map_err(query_err("set an account's residency"))?;
        Ok(result.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_unique_and_revocation_keeps_the_row() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("store");
        let account = StoredAccount {
            id: "00000000000000aa".into(),
            name: "alice".into(),
            secret_sha256: [7; 32],
            created_at_ms: 1,
            revoked_at_ms: None,
        };
        assert_eq!(
            store.insert_account(&account).await.expect("ok"),
            Inserted::Created
        );
        let twin = StoredAccount {
            id: "00000000000000bb".into(),
            ..account.clone()
        };
        assert_eq!(
            store.insert_account(&twin).await.expect("ok"),
            Inserted::Taken
        );
        assert_eq!(
            store.account(&account.id).await.expect("ok"),
            Some(account.clone())
        );
        assert!(store.revoke_account(&account.id, 5).await.expect("ok"));
        assert!(store.revoke_account(&account.id, 9).await.expect("ok"));
        assert!(!store.revoke_account("nope", 9).await.expect("ok"));
        let page = store.accounts_page(None, 10).await.expect("ok");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].revoked_at_ms, Some(5));
    }
}
