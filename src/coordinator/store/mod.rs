//! The coordinator's storage: one `sqlx` Any pool over SQLite (a file,
//! created when missing) or PostgreSQL, the embedded migrations run at
//! start, and what every domain's queries share (the SQLite writer turn,
//! errors, times). Each domain adds the methods for its own tables in its
//! own folder (`nodes::store`, `jobs::store`, `accounts::store`). SQL is
//! portable: `$n` parameters, `ON CONFLICT`, `RETURNING`, BIGINT
//! millisecond times.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Once};

use futures::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, SqlSafeStr};

pub(in crate::coordinator) mod checkpoint;
mod coordinator_id;
pub(in crate::coordinator) mod nonces;
mod sqlite_options;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {url:?} (fix: use sqlite:///path/to/file.db or postgres://user@host/db)")]
    UnsupportedUrl { url: String },
    #[error("synchronous={value:?} in the SQLite URL is not an option (fix: synchronous=full, the default, or synchronous=normal)")]
    BadSynchronous { value: String },
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
    #[error("stored {table} row {key} is corrupt: {problem}")]
    CorruptRow {
        table: &'static str,
        key: String,
        problem: String,
    },
    #[error("a ledger invariant would break: {0}")]
    Ledger(String),
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
    (5, "jobs", include_str!("migrations/0005_jobs.sql")),
    (
        6,
        "qualification",
        include_str!("migrations/0006_qualification.sql"),
    ),
    (7, "ledger", include_str!("migrations/0007_ledger.sql")),
    (
        8,
        "governance",
        include_str!("migrations/0008_governance.sql"),
    ),
    (9, "energy", include_str!("migrations/0009_energy.sql")),
    (
        10,
        "placement",
        include_str!("migrations/0010_placement.sql"),
    ),
    (11, "gateway", include_str!("migrations/0011_gateway.sql")),
    (
        12,
        "dashboard",
        include_str!("migrations/0012_dashboard.sql"),
    ),
    (
        13,
        "placement scale",
        include_str!("migrations/0013_placement_scale.sql"),
    ),
    (
        14,
        "spec revision",
        include_str!("migrations/0014_spec_revision.sql"),
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

/// The PostgreSQL notification channel on which a node's deletion is
/// announced (payload: the node id), so replicas drop what they cache of it.
pub const DELETED_NODES_CHANNEL: &str = "garage_deleted_nodes";

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(in crate::coordinator) pool: AnyPool,
    backend: Backend,
    /// SQLite takes one writer at a time; a second one waits in SQLite's
    /// busy handler, which sleeps 1 to 100 ms between tries. Writers queue
    /// here instead, in order (issue 5: the sleeps put p99 over a second at
    /// 400-500 heartbeats/s). Not taken on PostgreSQL, which locks rows.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A query on the Any driver, for helpers that bind shared parameters.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Maps a driver error to [`StoreError::Query`] naming what was asked.
pub fn query_err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let mut max_connections = 8;
        let mut in_memory = false;
        let mut synchronous = "FULL";
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
            let options = sqlite_options::parse(url)?;
            synchronous = options.synchronous;
            // Create the file when missing unless the URL chose a mode.
            let url = options.url;
            let connect_url = if url.contains("mode=") {
                url
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
            // Per connection. FULL (the default) syncs the WAL at every
            // commit: nothing acknowledged is lost, a power loss included;
            // heartbeats are group-committed, so one sync serves a batch.
            // NORMAL (`?synchronous=normal`) syncs at checkpoints only: a
            // commit survives the process crashing, not the machine.
            // Checkpoints are `checkpoint::run`'s, not a commit's.
            let pragma = format!("PRAGMA synchronous = {synchronous}");
            options = options.after_connect(move |conn, _| {
                let pragma = pragma.clone();
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(pragma))
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA wal_autocheckpoint = 0")
                        .execute(&mut *conn)
                        .await?;
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
    pub(in crate::coordinator) async fn write_turn(
        &self,
    ) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Closes every connection (waits for checked-out ones).
    pub async fn close(&self) {
        self.pool.close().await;
    }
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
