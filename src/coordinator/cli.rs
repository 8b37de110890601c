//! `garage coordinator`: its flags and what it runs — the server itself
//! ([`super::serve`]) or, with `token`, the join-token commands against a
//! running one. The
//! admin token is never a flag value (`/proc/*/cmdline` shows those): it
//! comes from `GARAGE_ADMIN_TOKEN` or `--admin-token-file`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::bearer_client::BearerClientError;
use super::config::CoordinatorConfig;
use super::energy::sources::CARBON_TOKEN_ENV;
use super::energy::GridSourceConfig;
use super::gateway::limits::{LimitSettings, DEFAULT_CONCURRENCY, DEFAULT_REQUESTS_PER_MINUTE};
use super::http::admin::ADMIN_TOKEN_ENV;
use super::http::limits::{
    DEFAULT_HEARTBEAT_HISTORY, DEFAULT_HEARTBEAT_HISTORY_BYTES, MAX_LEASE_DURATION,
    MIN_HEARTBEAT_HISTORY_BYTES,
};
use super::jobs::placement::PlacementMode;
use super::nodes::admission_rules::RegistrationMode;
use super::nodes::token_cli::{self, CoordinatorCommand};
use super::server::{serve, CoordinatorError};

/// The range `--heartbeat-interval` takes (README "Limits").
pub const HEARTBEAT_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);

/// Parses `--heartbeat-interval`: whole seconds within
/// [`HEARTBEAT_INTERVAL_RANGE`] (an agent waits this long between reports).
pub fn parse_heartbeat_interval(text: &str) -> Result<Duration, String> {
    let interval = crate::spec::quantity::parse_duration(text)?;
    if !HEARTBEAT_INTERVAL_RANGE.contains(&interval) || interval.subsec_nanos() != 0 {
        return Err(format!(
            "{text} is outside the heartbeat interval's range: whole seconds from 1s to 1h"
        ));
    }
    Ok(interval)
}

/// `garage coordinator [token …]`.
#[derive(Debug, clap::Args)]
pub struct CoordinatorCli {
    #[command(flatten)]
    pub args: CoordinatorArgs,
    #[command(subcommand)]
    pub command: Option<CoordinatorCommand>,
}

/// Why `garage coordinator` failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorCliError {
    #[error(transparent)]
    Serve(#[from] CoordinatorError),
    #[error(transparent)]
    Admin(#[from] BearerClientError),
}

impl CoordinatorCli {
    /// Serves until `stop` resolves, or runs the token command.
    pub async fn run(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ExitCode, CoordinatorCliError> {
        match self.command {
            Some(command) => Ok(token_cli::run(command).await?.print()),
            None => {
                serve(self.args.into(), stop).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// Flags of `garage coordinator`. `Debug` shows them as the config they
/// become, with any database password hidden.
#[derive(Clone, clap::Args)]
pub struct CoordinatorArgs {
    /// Address the API listens on.
    #[arg(
        long,
        env = "GARAGE_COORDINATOR_LISTEN",
        default_value = "127.0.0.1:7070"
    )]
    pub listen: SocketAddr,
    /// Database URL: sqlite:///path/file.db (created when missing; every
    /// commit synced to disk, or with ?synchronous=normal only at
    /// checkpoints) or postgres://user:password@host/db. Default:
    /// coordinator.db in --state-dir.
    #[arg(long, env = "GARAGE_DATABASE_URL")]
    pub database: Option<String>,
    /// Directory for the coordinator's own files (SQLite database, admin
    /// token); made with mode 0700 when missing, refused when group or others
    /// can reach it or another user owns it.
    #[arg(
        long,
        env = "GARAGE_COORDINATOR_STATE_DIR",
        default_value = "coordinator-state"
    )]
    pub state_dir: PathBuf,
    /// File holding the admin bearer token (32 bytes or more, mode 0600).
    /// Without it and without GARAGE_ADMIN_TOKEN: the admin-token file in
    /// --state-dir, made at first start.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// How new node ids are admitted: `token` (a join token from `garage
    /// coordinator token create`) or `open` (anyone; 10 new nodes per source
    /// address in 10 minutes).
    #[arg(long, value_enum, default_value_t = RegistrationMode::Token)]
    pub registration: RegistrationMode,
    /// Interval nodes are told to send heartbeats at: whole seconds, 1s to 1h.
    #[arg(long, default_value = "30s", value_parser = parse_heartbeat_interval)]
    pub heartbeat_interval: Duration,
    /// Missed intervals after which a node is marked offline.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub offline_after: u32,
    /// Heartbeats kept per node (older ones are deleted).
    #[arg(long, default_value_t = DEFAULT_HEARTBEAT_HISTORY, value_parser = clap::value_parser!(u32).range(1..))]
    pub heartbeat_history: u32,
    /// Bytes of heartbeat status kept per node, at least 65536 (older
    /// heartbeats are deleted).
    #[arg(long, default_value_t = DEFAULT_HEARTBEAT_HISTORY_BYTES, value_parser = clap::value_parser!(u64).range(MIN_HEARTBEAT_HISTORY_BYTES..))]
    pub heartbeat_history_bytes: u64,
    /// How long a job lease lives without a renew (whole seconds, 1s to
    /// 10m); a node renews well before, and a lease past it is requeued.
    #[arg(long, default_value = "30s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,
    /// Base URL of a carbon-intensity API in Electricity Maps' shape (`GET
    /// URL/v3/carbon-intensity/latest?zone=SE-SE3`, header `auth-token`);
    /// its token comes from GARAGE_CARBON_INTENSITY_TOKEN or
    /// --carbon-intensity-token-file. Without it (or when it fails): the
    /// built-in yearly averages.
    #[arg(long, value_parser = parse_source_url)]
    pub carbon_intensity_url: Option<String>,
    /// File holding the carbon-intensity API's token (mode 0600).
    #[arg(long)]
    pub carbon_intensity_token_file: Option<PathBuf>,
    /// Base URL of a day-ahead price API in the shape of the Swedish hourly
    /// price API (`GET URL/api/v1/prices/YYYY/MM-DD_SE3.json`). Without it
    /// (or when it fails): the built-in yearly averages.
    #[arg(long, value_parser = parse_source_url)]
    pub spot_price_url: Option<String>,
    /// How long one request to either API may take (100ms to 30s).
    #[arg(long, default_value = "3s", value_parser = parse_grid_timeout)]
    pub grid_source_timeout: Duration,
    /// How jobs are placed: `scored` (claims park briefly and placement
    /// rounds prefer green, low-carbon, local, free nodes) or `first-come`
    /// (each claim takes the oldest job it fits).
    #[arg(long, value_enum, default_value_t = PlacementMode::Scored)]
    pub placement: PlacementMode,
    /// Gateway requests (`/v1/...`) one account may have in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub gateway_concurrency: u32,
    /// Gateway requests one account may start per minute.
    #[arg(long, default_value_t = DEFAULT_REQUESTS_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub gateway_requests_per_minute: u32,
}

/// Parses a grid source's base URL: http or https.
fn parse_source_url(text: &str) -> Result<String, String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.trim_end_matches('/').to_string())
    } else {
        Err(format!("{text:?} is not an http:// or https:// URL"))
    }
}

fn parse_grid_timeout(text: &str) -> Result<Duration, String> {
    let timeout = crate::spec::quantity::parse_duration(text)?;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(30) {
        return Err(format!(
            "{text} is outside the grid source timeout's range: 100ms to 30s"
        ));
    }
    Ok(timeout)
}

fn parse_lease_duration(text: &str) -> Result<Duration, String> {
    let lease = crate::spec::quantity::parse_duration(text)?;
    if lease < Duration::from_secs(1) || lease > MAX_LEASE_DURATION || lease.subsec_nanos() != 0 {
        return Err(format!(
            "{text} is outside the lease duration's range: whole seconds from 1s to 10m"
        ));
    }
    Ok(lease)
}

impl std::fmt::Debug for CoordinatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.clone().into_config(None).fmt(f)
    }
}

impl CoordinatorArgs {
    /// The config, with `admin_token` the value of `GARAGE_ADMIN_TOKEN`.
    pub fn into_config(self, admin_token: Option<String>) -> CoordinatorConfig {
        let database_url = self.database.unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.state_dir.join("coordinator.db").display()
            )
        });
        CoordinatorConfig {
            listen: self.listen,
            database_url,
            state_dir: self.state_dir,
            admin_token,
            admin_token_file: self.admin_token_file,
            registration: self.registration,
            heartbeat_interval: self.heartbeat_interval,
            offline_after: self.offline_after,
            heartbeat_history: self.heartbeat_history,
            heartbeat_history_bytes: self.heartbeat_history_bytes,
            lease_duration: self.lease_duration,
            grid: GridSourceConfig {
                carbon_url: self.carbon_intensity_url,
                carbon_token: None,
                carbon_token_file: self.carbon_intensity_token_file,
                price_url: self.spot_price_url,
                timeout: self.grid_source_timeout,
            },
            placement: self.placement,
            gateway: LimitSettings {
                concurrency: self.gateway_concurrency,
                requests_per_minute: self.gateway_requests_per_minute,
            },
        }
    }
}

impl From<CoordinatorArgs> for CoordinatorConfig {
    /// Reads `GARAGE_ADMIN_TOKEN` and `GARAGE_CARBON_INTENSITY_TOKEN`
    /// from the environment.
    fn from(args: CoordinatorArgs) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|t| !t.trim().is_empty());
        let mut config = args.into_config(env(ADMIN_TOKEN_ENV));
        config.grid.carbon_token = env(CARBON_TOKEN_ENV);
        config
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
        let config = cli.coordinator.into_config(None);
        assert_eq!(config.database_url, "sqlite:///tmp/c/coordinator.db");
        assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(config.offline_after, 3);
        assert_eq!(config.registration, RegistrationMode::Token, "the default");
        assert!(Cli::try_parse_from(["coordinator", "--offline-after", "0"]).is_err());
        let open = Cli::try_parse_from(["coordinator", "--registration", "open"]).expect("parses");
        assert_eq!(open.coordinator.registration, RegistrationMode::Open);
        let secret = Cli::try_parse_from(["coordinator", "--database", "postgres://u:pa55@h/db"])
            .expect("parses");
        let shown = format!("{:?}", secret.coordinator.into_config(Some("tok3n".into())));
        assert!(
            !shown.contains("tok3n") && !shown.contains("pa55"),
            "{shown}"
        );
    }

    #[test]
    fn the_admin_token_is_no_command_line_value() {
        let err = Cli::try_parse_from(["coordinator", "--admin-token", "a"]).expect_err("refused");
        assert!(err.to_string().contains("--admin-token"), "{err}");
        let cli = Cli::try_parse_from(["coordinator", "--admin-token-file", "/run/t"])
            .expect("a file is fine");
        assert_eq!(
            cli.coordinator.admin_token_file,
            Some(PathBuf::from("/run/t"))
        );
    }

    #[test]
    fn grid_sources_are_urls_and_the_token_no_flag() {
        let cli = Cli::try_parse_from([
            "coordinator",
            "--carbon-intensity-url",
            "http://127.0.0.1:9/",
            "--spot-price-url",
            "https://prices.example",
        ])
        .expect("parses");
        let grid = cli.coordinator.into_config(None).grid;
        assert_eq!(grid.carbon_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(grid.price_url.as_deref(), Some("https://prices.example"));
        assert_eq!(grid.timeout, Duration::from_secs(3));
        assert!(Cli::try_parse_from(["coordinator", "--spot-price-url", "prices"]).is_err());
        assert!(Cli::try_parse_from(["coordinator", "--carbon-intensity-token", "t"]).is_err());
        assert!(Cli::try_parse_from(["coordinator", "--grid-source-timeout", "1h"]).is_err());
    }

    #[test]
    fn absurd_heartbeat_intervals_are_refused() {
        for bad in ["0s", "500ms", "1500ms", "2h", "500000000000y", "soon"] {
            let err =
                Cli::try_parse_from(["coordinator", "--heartbeat-interval", bad]).expect_err(bad);
            assert!(err.to_string().contains("heartbeat"), "{bad}: {err}");
        }
        for good in ["1s", "30s", "1h"] {
            assert!(
                Cli::try_parse_from(["coordinator", "--heartbeat-interval", good]).is_ok(),
                "{good}"
            );
        }
        assert!(Cli::try_parse_from(["coordinator", "--heartbeat-history-bytes", "1000"]).is_err());
    }
}
