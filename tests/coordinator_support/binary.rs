//! The real coordinator binary as a child process on a loopback port: a
//! replica of a shared database, or one that a test kills (SIGKILL) and
//! starts again on the same port and database. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, Api, Db, ADMIN_TOKEN};

/// The `--database` value for `db`: a SQLite file in `dir`, or the test's
/// PostgreSQL schema.
pub fn database_url(dir: &Path, db: &Db) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("coordinator.db").display()),
        Db::Postgres(url) => url.clone(),
    }
}

/// A `garage coordinator` process.
pub struct Replica {
    child: Child,
    pub api: Api,
    port: u16,
    state_dir: PathBuf,
    database: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(state_dir: &Path, database: &str, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.with_extension("log"))
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--database", database, "--registration", "open"])
        .args(["--lease-duration", "5s"])
        .env("GARAGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("GARAGE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start garage coordinator")
}

impl Replica {
    /// Starts a coordinator with `state_dir` on `database` and waits for
    /// its /healthz (30 s at most).
    pub async fn start(state_dir: &Path, database: &str) -> Replica {
        let port = free_port();
        let replica = Replica {
            child: spawn(state_dir, database, port),
            api: Api::external(&format!("http://127.0.0.1:{port}")),
            port,
            state_dir: state_dir.to_path_buf(),
            database: database.to_string(),
        };
        replica.healthy().await;
        replica
    }

    async fn healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/healthz", self.api.base))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "coordinator on {} not healthy in 30 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILL: no graceful shutdown, whatever it was doing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the process again on the same port and database.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.state_dir, &self.database, self.port);
        self.healthy().await;
    }
}
