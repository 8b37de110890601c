//! Command-line flags of `garage coordinator`, for `main.rs` to flatten into
//! its subcommand; parsing only, the server itself is [`super::serve`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::CoordinatorConfig;

/// Flags of `garage coordinator`. `Debug` shows them as the config they
/// become, with the admin token and any database password hidden.
#[derive(Clone, clap::Args)]
pub struct CoordinatorArgs {
    /// Address the API listens on.
    #[arg(
        long,
        env = "GARAGE_COORDINATOR_LISTEN",
        default_value = "127.0.0.1:7070"
    )]
    pub listen: SocketAddr,
    /// Database URL: sqlite:///path/file.db (created when missing) or
    /// postgres://user:password@host/db. Default: coordinator.db in --state-dir.
    #[arg(long, env = "GARAGE_DATABASE_URL")]
    pub database: Option<String>,
    /// Directory for the coordinator's own files (SQLite database, admin token).
    #[arg(
        long,
        env = "GARAGE_COORDINATOR_STATE_DIR",
        default_value = "coordinator-state"
    )]
    pub state_dir: PathBuf,
    /// Bearer token for admin endpoints; default: the admin-token file in
    /// --state-dir, made at first start.
    #[arg(long, env = "GARAGE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Interval nodes are told to send heartbeats at (e.g. 30s, 1s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,
    /// Missed intervals after which a node is marked offline.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub offline_after: u32,
    /// Heartbeats kept per node (older ones are deleted).
    #[arg(long, default_value_t = super::routes::DEFAULT_HEARTBEAT_HISTORY, value_parser = clap::value_parser!(u32).range(1..))]
    pub heartbeat_history: u32,
}

impl std::fmt::Debug for CoordinatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        CoordinatorConfig::from(self.clone()).fmt(f)
    }
}

impl From<CoordinatorArgs> for CoordinatorConfig {
    fn from(a: CoordinatorArgs) -> Self {
        let database_url = a.database.unwrap_or_else(|| {
            format!("sqlite://{}", a.state_dir.join("coordinator.db").display())
        });
        CoordinatorConfig {
            listen: a.listen,
            database_url,
            state_dir: a.state_dir,
            admin_token: a.admin_token,
            heartbeat_interval: a.heartbeat_interval.max(Duration::from_secs(1)),
            offline_after: a.offline_after,
            heartbeat_history: a.heartbeat_history,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        coordinator: CoordinatorArgs,
    }

    #[test]
    fn flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            "/tmp/c",
            "--heartbeat-interval",
            "1s",
        ])
        .expect("parses");
        let config = CoordinatorConfig::from(cli.coordinator);
        assert_eq!(config.database_url, "sqlite:///tmp/c/coordinator.db");
        assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(config.offline_after, 3);
        assert!(Cli::try_parse_from(["coordinator", "--offline-after", "0"]).is_err());
        let secret = Cli::try_parse_from([
            "coordinator",
            "--admin-token",
            "tok3n",
            "--database",
            "postgres://u:pa55@h/db",
        ])
        .expect("parses");
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("tok3n") && !shown.contains("pa55"),
            "{shown}"
        );
    }
}
