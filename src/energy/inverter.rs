//! The `http` production source: GETs a local inverter's JSON endpoint and
//! reads the number at a JSON pointer, in W or kW, as watts. The answer is
//! bounded ([`MAX_BODY_BYTES`]) and the whole request is bounded by the
//! spec's timeout; every failure is a typed [`InverterError`] that the
//! monitor turns into production 0 and a condition, never a crash.

use std::time::Duration;

use crate::spec::types::PowerUnit;
use crate::spec::HttpSource;

/// Largest answer read from an inverter: its JSON is a few KB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why the inverter gave no production.
#[derive(Debug, thiserror::Error)]
pub enum InverterError {
    #[error("the inverter at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("cannot reach the inverter at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the inverter at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the inverter at {url} answered more than {MAX_BODY_BYTES} bytes")]
    TooLarge { url: String },
    #[error("the inverter at {url} did not answer JSON")]
    NotJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the inverter's answer has nothing at `{pointer}` (check spec.power.solar.production.http.pointer)")]
    Missing { pointer: String },
    #[error("the inverter's value at `{pointer}` is not a finite number: {found}")]
    NotANumber { pointer: String, found: String },
}

impl InverterError {
    /// A CamelCase reason for the production condition.
    pub fn reason(&self) -> &'static str {
        match self {
            InverterError::Timeout { .. } => "InverterTimeout",
            InverterError::Unreachable { .. } => "InverterUnreachable",
            InverterError::Status { .. } => "InverterHttpError",
            InverterError::TooLarge { .. } => "InverterAnswerTooLarge",
            InverterError::NotJson { .. } => "InverterNotJson",
            InverterError::Missing { .. } => "InverterValueMissing",
            InverterError::NotANumber { .. } => "InverterValueNotANumber",
        }
    }
}

/// A configured inverter endpoint.
#[derive(Debug, Clone)]
pub struct Inverter {
    client: reqwest::Client,
    source: HttpSource,
}

impl Inverter {
    pub fn new(source: HttpSource) -> Self {
        // Building a client without TLS roots or proxies to load cannot
        // fail in practice; the default client is the same but for limits.
        let client = reqwest::Client::builder()
            .timeout(source.timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Inverter { client, source }
    }

    /// The inverter's production now, in watts (a negative reading, an
    /// inverter's standby draw at night, is 0).
    pub async fn read_watts(&self) -> Result<f64, InverterError> {
        let url = &self.source.url;
        let body = tokio::time::timeout(self.source.timeout, self.fetch())
            .await
            .map_err(|_| InverterError::Timeout {
                url: url.clone(),
                timeout: self.source.timeout,
            })??;
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|source| InverterError::NotJson {
                url: url.clone(),
                source,
            })?;
        let pointer = &self.source.pointer;
        let found = value
            .pointer(pointer)
            .ok_or_else(|| InverterError::Missing {
                pointer: pointer.clone(),
            })?;
        let number = match found {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite())
        .ok_or_else(|| InverterError::NotANumber {
            pointer: pointer.clone(),
            found: found.to_string().chars().take(80).collect(),
        })?;
        let watts = match self.source.unit {
            PowerUnit::W => number,
            PowerUnit::KW => number * 1000.0,
        };
        Ok(watts.max(0.0))
    }

    async fn fetch(&self) -> Result<Vec<u8>, InverterError> {
        let url = &self.source.url;
        let unreachable = |source: reqwest::Error| {
            if source.is_timeout() {
                InverterError::Timeout {
                    url: url.clone(),
                    timeout: self.source.timeout,
                }
            } else {
                InverterError::Unreachable {
                    url: url.clone(),
                    source,
                }
            }
        };
        let mut response = self.client.get(url).send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(InverterError::Status {
                url: url.clone(),
                status: response.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(InverterError::TooLarge { url: url.clone() });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
#[path = "inverter_tests.rs"]
mod tests;
