//! The grid figures in use for a zone: the carbon intensity and the spot
//! price from the configured APIs (`carbon`, `price`), cached per zone per
//! hour, or the built-in `defaults` when none is configured or the API
//! fails — then with a warning in the log and a count in
//! `garage_coordinator_grid_source_fallbacks_total`, never an error: a
//! job's completion does not wait on a third party's health. A failure is
//! remembered for [`RETRY_AFTER_MS`] so a dead API costs one timeout a
//! minute, not one per completion.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::api::{FigureSource, GridFigure};
use super::fetch::{self, FetchError};
use super::zone::GridZone;
use super::{carbon, defaults, price};
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::identity::{self, IdentityError};

/// The environment variable that may hold the carbon API's token.
pub const CARBON_TOKEN_ENV: &str = "GARAGE_CARBON_INTENSITY_TOKEN";
/// How long one API request may take, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a failed lookup answers the default before the API is asked again.
pub const RETRY_AFTER_MS: i64 = 60_000;
/// Cached lookups kept at most (zones × the current hour is far fewer).
const MAX_CACHED: usize = 1024;
const HOUR_MS: i64 = 3_600_000;

/// Where the grid figures come from (`garage coordinator` flags).
#[derive(Clone, Default)]
pub struct GridSourceConfig {
    /// Base URL of a carbon-intensity API in Electricity Maps' shape.
    pub carbon_url: Option<String>,
    /// Its token, from [`CARBON_TOKEN_ENV`].
    pub carbon_token: Option<String>,
    /// A file holding its token (mode 0600).
    pub carbon_token_file: Option<PathBuf>,
    /// Base URL of a day-ahead price API in the Swedish hourly price API's shape.
    pub price_url: Option<String>,
    /// How long one request may take; [`DEFAULT_TIMEOUT`] when zero.
    pub timeout: Duration,
}

impl std::fmt::Debug for GridSourceConfig {
    // By hand: the token must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GridSourceConfig")
            .field("carbon_url", &self.carbon_url)
            .field("carbon_token", &self.carbon_token.as_ref().map(|_| "***"))
            .field("carbon_token_file", &self.carbon_token_file)
            .field("price_url", &self.price_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the grid sources could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GridSourceError {
    #[error("the carbon-intensity token is given twice ({CARBON_TOKEN_ENV} and --carbon-intensity-token-file); keep one")]
    AmbiguousToken,
    #[error("cannot read the carbon-intensity token file (--carbon-intensity-token-file)")]
    TokenFile(#[source] IdentityError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Carbon,
    Price,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Carbon => "carbon",
            Kind::Price => "price",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    /// `None`: the API failed; the default answers until `until_ms`.
    value: Option<f64>,
    until_ms: i64,
}

#[derive(Debug)]
struct Inner {
    carbon_url: Option<String>,
    carbon_token: Option<String>,
    price_url: Option<String>,
    timeout: Duration,
    client: reqwest::Client,
    cache: Mutex<HashMap<(Kind, GridZone, i64), Cached>>,
    metrics: CoordinatorMetrics,
}

/// The figures in use; cheap to clone.
#[derive(Debug, Clone)]
pub struct GridSources {
    inner: Arc<Inner>,
}

impl GridSources {
    /// Reads the token (from the environment value or the file) and makes
    /// the HTTP client.
    pub fn new(
        config: &GridSourceConfig,
        metrics: CoordinatorMetrics,
    ) -> Result<GridSources, GridSourceError> {
        let carbon_token = match (&config.carbon_token, &config.carbon_token_file) {
            (Some(_), Some(_)) => return Err(GridSourceError::AmbiguousToken),
            (Some(token), None) => Some(token.trim().to_string()),
            (None, Some(path)) => Some(
                identity::read_private_file(path)
                    .map_err(GridSourceError::TokenFile)?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let timeout = if config.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            config.timeout
        };
        Ok(GridSources {
            inner: Arc::new(Inner {
                carbon_url: config.carbon_url.clone(),
                carbon_token,
                price_url: config.price_url.clone(),
                timeout,
                client: fetch::client(timeout),
                cache: Mutex::default(),
                metrics,
            }),
        })
    }

    /// The carbon intensity (gCO₂eq/kWh) of `zone` at `now_ms`.
    pub async fn intensity(&self, zone: &GridZone, now_ms: i64) -> GridFigure {
        let default = GridFigure {
            value: defaults::intensity_g_per_kwh(zone),
            source: FigureSource::Default,
        };
        let (Some(base), Some(carbon_zone)) = (&self.inner.carbon_url, zone.carbon_zone()) else {
            return default;
        };
        let url = carbon::url(base, &carbon_zone);
        let token = self.inner.carbon_token.clone();
        let looked_up = self
            .cached_or(Kind::Carbon, zone, now_ms, async {
                let headers: Vec<(&str, &str)> = token
                    .as_deref()
                    .map(|t| vec![("auth-token", t)])
                    .unwrap_or_default();
                let body = self.get(&url, &headers, carbon::MAX_BODY_BYTES).await?;
                carbon::parse(&body, &carbon_zone)
            })
            .await;
        looked_up.map_or(default, |value| GridFigure {
            value,
            source: FigureSource::Api,
        })
    }

    /// The spot price (SEK/kWh) of `zone` at `now_ms`; `None` outside
    /// Sweden's price areas.
    pub async fn price(&self, zone: &GridZone, now_ms: i64) -> Option<GridFigure> {
        let default = GridFigure {
            value: defaults::price_sek_per_kwh(zone)?,
            source: FigureSource::Default,
        };
        let (Some(base), GridZone::Area(area)) = (&self.inner.price_url, zone) else {
            return Some(default);
        };
        let url = price::url(base, *area, now_ms);
        let looked_up = self
            .cached_or(Kind::Price, zone, now_ms, async {
                let body = self.get(&url, &[], price::MAX_BODY_BYTES).await?;
                price::parse(&body, now_ms)
            })
            .await;
        Some(looked_up.map_or(default, |value| GridFigure {
            value,
            source: FigureSource::Api,
        }))
    }

    async fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        fetch::get(&self.inner.client, self.inner.timeout, url, headers, limit).await
    }

    /// The cached value of this hour, or `lookup`'s (cached); `None` when
    /// the API failed now or within [`RETRY_AFTER_MS`].
    async fn cached_or(
        &self,
        kind: Kind,
        zone: &GridZone,
        now_ms: i64,
        lookup: impl std::future::Future<Output = Result<f64, FetchError>>,
    ) -> Option<f64> {
        let hour = now_ms.div_euclid(HOUR_MS);
        let key = (kind, zone.clone(), hour);
        if let Some(cached) = self.cache().get(&key).filter(|c| c.until_ms > now_ms) {
            return cached.value;
        }
        let (value, until_ms) = match lookup.await {
            Ok(value) => (Some(value), (hour + 1) * HOUR_MS),
            Err(err) => {
                let reason = err.reason();
                tracing::warn!(
                    source = kind.as_str(),
                    zone = zone.label(),
                    reason,
                    error = %err,
                    "grid {} source failed; using the built-in figure",
                    kind.as_str()
                );
                self.inner
                    .metrics
                    .grid_source_fallbacks
                    .with_label_values(&[kind.as_str(), reason])
                    .inc();
                (None, now_ms.saturating_add(RETRY_AFTER_MS))
            }
        };
        let mut cache = self.cache();
        cache.retain(|_, cached| cached.until_ms > now_ms);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, Cached { value, until_ms });
        value
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(Kind, GridZone, i64), Cached>> {
        // A panic while holding it left a map that is still valid.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
