//! Parameter values in the store: each set value is scheduled at an
//! `effective_at`, and the live value at `now` is the newest that has
//! taken effect, else the default. [`Parameters`] is the handle every
//! reader holds; it carries the defaults the coordinator was started with.

use sqlx::{AnyConnection, Row};

use super::api::{ParameterChange, ParameterView};
use super::names::Parameter;
use crate::clock::rfc3339_millis;
use crate::coordinator::store::{query_err, Store, StoreError};

/// The default network fee: 5 %.
pub const DEFAULT_FEE_BASIS_POINTS: i64 = 500;
/// The default price: 100 µGAI per second (0.36 GAI an hour).
pub const DEFAULT_PRICE_PER_SECOND: i64 = 100;
/// The default gateway prices: 20 µGAI per 1,000 prompt tokens and 60 µGAI
/// per 1,000 completion tokens.
pub const DEFAULT_PRICE_PER_1K_INPUT_TOKENS: i64 = 20;
pub const DEFAULT_PRICE_PER_1K_OUTPUT_TOKENS: i64 = 60;
/// The default green bonus: 20 % of the price for solar seconds.
pub const DEFAULT_GREEN_BONUS_BASIS_POINTS: i64 = 2_000;
/// The default quorum: a fifth of the frozen voting power.
pub const DEFAULT_QUORUM_BASIS_POINTS: i64 = 2_000;
/// The default threshold: more than half of the yes and no votes.
pub const DEFAULT_THRESHOLD_BASIS_POINTS: i64 = 5_000;
/// The default voting period: a week.
pub const DEFAULT_VOTING_PERIOD_SECONDS: i64 = 7 * 86_400;

/// Scheduled changes a listing shows per parameter.
const CHANGES_SHOWN: i64 = 20;

/// The defaults that come from the coordinator's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartDefaults {
    pub heartbeat_interval_seconds: i64,
    pub offline_after_intervals: i64,
}

/// Reads and schedules parameters; cheap to clone.
#[derive(Debug, Clone)]
pub struct Parameters {
    store: Store,
    defaults: StartDefaults,
}

impl Parameters {
    pub fn new(store: Store, defaults: StartDefaults) -> Self {
        Parameters { store, defaults }
    }

    /// The value `parameter` has when nobody set one (`None`: a
    /// qualification minimum, which the market's qualification gives).
    pub fn default_value(&self, parameter: &Parameter) -> Option<i64> {
        Some(match parameter {
            Parameter::NetworkFeeBasisPoints => DEFAULT_FEE_BASIS_POINTS,
            Parameter::PricePerSecond(_) => DEFAULT_PRICE_PER_SECOND,
            Parameter::PricePer1kInputTokens(_) => DEFAULT_PRICE_PER_1K_INPUT_TOKENS,
            Parameter::PricePer1kOutputTokens(_) => DEFAULT_PRICE_PER_1K_OUTPUT_TOKENS,
            Parameter::HeartbeatIntervalSeconds => self.defaults.heartbeat_interval_seconds,
            Parameter::OfflineAfterIntervals => self.defaults.offline_after_intervals,
            Parameter::QualificationMinTokensPerSecond(_) => return None,
            Parameter::GreenBonusBasisPoints => DEFAULT_GREEN_BONUS_BASIS_POINTS,
            Parameter::QuorumBasisPoints => DEFAULT_QUORUM_BASIS_POINTS,
            Parameter::ThresholdBasisPoints => DEFAULT_THRESHOLD_BASIS_POINTS,
            Parameter::VotingPeriodSeconds => DEFAULT_VOTING_PERIOD_SECONDS,
        })
    }

    /// The value set and in effect at `now_ms`, if any.
    pub async fn set_value(
        &self,
        parameter: &Parameter,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self
            .store
            .pool
            .acquire()
            .await
            .map_err(query_err("read a parameter"))?;
        value_in(&mut conn, parameter, now_ms).await
    }

    /// The live value at `now_ms` (`None` only for an unset qualification
    /// minimum). A market without its own price pays the default price.
    pub async fn get(&self, parameter: &Parameter, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let mut conn = self
            .store
            .pool
            .acquire()
            .await
            .map_err(query_err("read a parameter"))?;
        self.get_in(&mut conn, parameter, now_ms).await
    }

    /// The live `heartbeatIntervalSeconds` at `now_ms` as nodes are told
    /// it: whole seconds, at least 1.
    pub async fn heartbeat_interval_secs(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self
            .store
            .pool
            .acquire()
            .await
            .map_err(query_err("read a parameter"))?;
        self.heartbeat_interval_secs_in(&mut conn, now_ms).await
    }

    /// [`Parameters::heartbeat_interval_secs`] inside a caller's transaction.
    pub async fn heartbeat_interval_secs_in(
        &self,
        conn: &mut AnyConnection,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let seconds = self
            .get_in(conn, &Parameter::HeartbeatIntervalSeconds, now_ms)
            .await?
            .unwrap_or(1);
        Ok(u64::try_from(seconds).unwrap_or(1).max(1))
    }

    /// [`Parameters::get`] inside a caller's transaction.
    pub async fn get_in(
        &self,
        conn: &mut AnyConnection,
        parameter: &Parameter,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(value) = value_in(conn, parameter, now_ms).await? {
            return Ok(Some(value));
        }
        let market_wide = match parameter {
            Parameter::PricePerSecond(Some(_)) => Some(Parameter::PricePerSecond(None)),
            Parameter::PricePer1kInputTokens(Some(_)) => {
                Some(Parameter::PricePer1kInputTokens(None))
            }
            Parameter::PricePer1kOutputTokens(Some(_)) => {
                Some(Parameter::PricePer1kOutputTokens(None))
            }
            _ => None,
        };
        if let Some(default_price) = market_wide {
            if let Some(value) = value_in(conn, &default_price, now_ms).await? {
                return Ok(Some(value));
            }
        }
        Ok(self.default_value(parameter))
    }

    /// Schedules `value` (checked against the parameter's range by the
    /// caller) from `effective_at_ms`; `source` says who set it.
    pub async fn schedule(
        &self,
        parameter: &Parameter,
        value: i64,
        effective_at_ms: i64,
        source: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.store.write_turn().await;
        let mut conn = self
            .store
            .pool
            .acquire()
            .await
            .map_err(query_err("set a parameter"))?;
        schedule_in(&mut conn, parameter, value, effective_at_ms, source, now_ms).await
    }

    /// Every global parameter and every market parameter ever set, with
    /// its live value at `now_ms` and its recent and coming changes.
    pub async fn list(&self, now_ms: i64) -> Result<Vec<ParameterView>, StoreError> {
        let names: Vec<String> = sqlx::query("SELECT DISTINCT name FROM parameter_values")
            .fetch_all(&self.store.pool)
            .await
            .map_err(query_err("list parameters"))?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(query_err("list parameters"))?;
        let mut parameters: Vec<Parameter> = Parameter::globals().into();
        parameters.extend(names.iter().filter_map(|name| Parameter::parse(name).ok()));
        parameters.sort();
        parameters.dedup();
        let mut views = Vec::with_capacity(parameters.len());
        for parameter in parameters {
            views.push(self.view(&parameter, now_ms).await?);
        }
        Ok(views)
    }

    /// One parameter as listed.
    pub async fn view(
        &self,
        parameter: &Parameter,
        now_ms: i64,
    ) -> Result<ParameterView, StoreError> {
        let rows = sqlx::query(
            "SELECT effective_at, value, source, set_at FROM parameter_values WHERE name = $1 \
             ORDER BY effective_at DESC LIMIT $2",
        )
        .bind(parameter.name())
        .bind(CHANGES_SHOWN)
        .fetch_all(&self.store.pool)
        .await
        .map_err(query_err("read a parameter's changes"))?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = || query_err("read a parameter change");
            let effective_at: i64 = row.try_get(0).map_err(read())?;
            changes.push(ParameterChange {
                value: row.try_get(1).map_err(read())?,
                effective_at: rfc3339_millis(effective_at),
                in_effect: effective_at <= now_ms,
                source: row.try_get(2).map_err(read())?,
                set_at: rfc3339_millis(row.try_get(3).map_err(read())?),
            });
        }
        let range = parameter.range();
        Ok(ParameterView {
            name: parameter.name(),
            value: self.get(parameter, now_ms).await?,
            default: self.default_value(parameter),
            min: *range.start(),
            max: *range.end(),
            meaning: parameter.meaning().to_string(),
            changes,
        })
    }
}

/// The value set for `parameter` in effect at `now_ms`, if any.
pub async fn value_in(
    conn: &mut AnyConnection,
    parameter: &Parameter,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "SELECT value FROM parameter_values WHERE name = $1 AND effective_at <= $2 \
         ORDER BY effective_at DESC LIMIT 1",
    )
    .bind(parameter.name())
    .bind(now_ms)
    .fetch_optional(conn)
    .await
    .map_err(query_err("read a parameter"))?;
    row.map(|row| row.try_get(0))
        .transpose()
        .map_err(query_err("read a parameter"))
}

/// Schedules a value inside a caller's transaction (a proposal's tally).
/// A second value for the same time replaces the first.
pub async fn schedule_in(
    conn: &mut AnyConnection,
    parameter: &Parameter,
    value: i64,
    effective_at_ms: i64,
    source: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO parameter_values (name, effective_at, value, source, set_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, effective_at) \
         DO UPDATE SET value = $3, source = $4, set_at = $5",
    )
    .bind(parameter.name())
    .bind(effective_at_ms)
    .bind(value)
    .bind(source.to_string())
    .bind(now_ms)
    .execute(conn)
    .await
    .map_err(query_err("set a parameter"))?;
    Ok(())
}
