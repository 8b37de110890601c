//! The coordinator's storage: one `sqlx` Any pool over SQLite (a file,
//! created when missing) or PostgreSQL, the embedded migrations run at
//! start, and one method per question the API asks (list pages in `pages`,
//! join tokens and tombstones in `admission`). SQL here is portable: `$n`
//! parameters, `ON CONFLICT`, `RETURNING`, BIGINT millisecond times.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Once};

use futures::future::BoxFuture;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};
use uuid::Uuid;

use super::api::{GpuInfo, HeartbeatRecord, Location, NodeState, NodeView};

pub use heartbeats::Retention;

mod coordinator_id;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {url:?} (fix: use sqlite:///path/to/file.db or postgres://user@host/db)")]
    UnsupportedUrl { url: String },
    #[error("cannot create the database directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the database {url}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the database schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database query failed: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored row for node {node_id} is corrupt: {problem}")]
    Corrupt { node_id: String, problem: String },
    #[error("stored join token {token_id} is corrupt: {problem}")]
    CorruptToken { token_id: String, problem: String },
    #[error("the stored coordinator id {value:?} is not a UUID (fix: delete the row of table coordinator_identity; the coordinator makes a new id at start and nodes fetch it)")]
    CorruptCoordinatorId { value: String },
}

/// Which server the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The migrations, embedded in the binary; never edit one that shipped.
#[derive(Debug)]
struct Embedded;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "nodes", include_str!("migrations/0001_nodes.sql")),
    (
        2,
        "admission",
        include_str!("migrations/0002_admission.sql"),
    ),
    (
        3,
        "history bytes",
        include_str!("migrations/0003_history_bytes.sql"),
    ),
    (
        4,
        "coordinator identity",
        include_str!("migrations/0004_coordinator_identity.sql"),
    ),
];

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        sqlx::AssertSqlSafe(sql).into_sql_str(),
                        false,
                    )
                })
                .collect())
        })
    }
}

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

macro_rules! node_columns {
    () => {
        "node_id, state, market, public_key, country, region, latitude, longitude, gpu_info, \
         benchmark, registered_at, last_seen_at, heartbeat_seq, observed_generation, ready"
    };
}
// After `node_columns!`, which they use.
mod admission;
mod heartbeats;
mod pages;

/// Set on every SQLite connection (see [`Store::connect`]).
const SQLITE_SYNCHRONOUS: &str = "PRAGMA synchronous = NORMAL";

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite takes one writer at a time; a second one waits in SQLite's
    /// busy handler, which sleeps 1 to 100 ms between tries. Writers queue
    /// here instead, in order (issue 5: the sleeps put p99 over a second at
    /// 400-500 heartbeats/s). Not taken on PostgreSQL, which locks rows.
    writer: Arc<tokio::sync::Mutex<()>>,
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

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

fn query_err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let mut max_connections = 8;
        let mut in_memory = false;
        let (backend, connect_url) = if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl { url: url.into() });
            }
            if path == ":memory:" {
                // Every connection would open a database of its own, and
                // closing the last one drops it.
                in_memory = true;
                max_connections = 1;
            } else {
                // SQLite has one writer at a time; more connections only wait.
                max_connections = 4;
                if let Some(parent) = std::path::Path::new(path).parent() {
                    std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                        path: parent.to_path_buf(),
                        source,
                    })?;
                }
            }
            // Create the file when missing unless the URL chose a mode.
            let connect_url = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, connect_url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl { url: url.into() });
        };
        let mut options = AnyPoolOptions::new().max_connections(max_connections);
        if in_memory {
            options = options.idle_timeout(None).max_lifetime(None);
        }
        if backend == Backend::Sqlite {
            // Per connection: in WAL mode NORMAL syncs at checkpoints instead
            // of at every commit. A commit survives a crash of the process
            // (history and nonces stay across restarts); only a power loss can
            // lose the last few. FULL's fsync per heartbeat (two commits each)
            // put p99 over 50 ms at 250 heartbeats/s (issue 5, BENCHMARKS.md).
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query(SQLITE_SYNCHRONOUS).execute(conn).await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(&connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
        if backend == Backend::Sqlite {
            // Readers no longer wait for the writer; persistent in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_optional(&pool)
                .await
                .map_err(query_err("switch SQLite to WAL"))?;
        }
        let migrator = Migrator::new(Embedded).await.map_err(StoreError::Migrate)?;
        migrator.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Store {
            pool,
            backend,
            writer: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This process's turn to write (SQLite only; see [`Store::writer`]).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Closes every connection (waits for checked-out ones).
    pub async fn close(&self) {
        self.pool.close().await;
    }

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
        Ok(if updated.rows_affected() == 1 {
            Registered::Updated
        } else {
            Registered::KeyConflict
        })
    }

    /// Remembers a request nonce until `expires_ms`; false when it was
    /// already seen (a replay).
    pub async fn remember_nonce(
        &self,
        node_id: Uuid,
        nonce: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "INSERT INTO request_nonces (node_id, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id, nonce) DO NOTHING",
        )
        .bind(node_id.to_string())
        .bind(nonce.to_string())
        .bind(expires_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("remember a nonce"))?;
        Ok(result.rows_affected() == 1)
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
        tx.commit().await.map_err(query_err("commit a deletion"))?;
        Ok(deleted.rows_affected() == 1)
    }
}

fn node_view(row: &AnyRow) -> Result<NodeView, StoreError> {
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
        registered_at: rfc3339_ms(registered_at),
        last_seen_at: rfc3339_ms(last_seen_at),
        heartbeats: u64::try_from(heartbeats).unwrap_or_default(),
        observed_generation: row.try_get("observed_generation").map_err(read)?,
        ready: ready.map(|r| r != 0),
    })
}

fn heartbeat_record(node_id: Uuid, row: &AnyRow) -> Result<HeartbeatRecord, StoreError> {
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
        received_at: rfc3339_ms(received_at),
        observed_generation: row.try_get("observed_generation").map_err(read)?,
        ready: ready.map(|r| r != 0),
        status: serde_json::from_str(&status).map_err(|err| StoreError::Corrupt {
            node_id: node_id.to_string(),
            problem: format!("heartbeat {seq} status: {err}"),
        })?,
    })
}

fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|err| StoreError::Corrupt {
        node_id: text.to_string(),
        problem: format!("node id: {err}"),
    })
}

/// RFC 3339 with milliseconds for a Unix time in milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// `url` without its password, for error messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
