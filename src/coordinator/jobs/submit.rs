//! A submission checked into a [`NewJob`] (pure, no I/O): a container job
//! through the same parsing and validation a node applies to a job file
//! (so a malformed one gets its field path in the 400), an inference
//! request's fields, the placement and the durations.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::api::{
    EnergyPreference, InferenceRequest, JobSubmission, JobType, Placement, Residency,
};
use crate::coordinator::http::error::ApiError;
use crate::coordinator::http::limits::{MAX_ATTEMPTS, MAX_JOB_DURATION};
use crate::geo::{self, PriceArea};
use crate::spec::quantity::parse_duration;

/// Attempts when `maxAttempts` is not given.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;
/// The timeout of an inference job that gives none.
pub const DEFAULT_INFERENCE_TIMEOUT: Duration = Duration::from_secs(600);
/// Labels a placement may ask for.
pub const MAX_LABELS: usize = 32;

/// A checked job, as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: JobType,
    /// The job document or inference request, as JSON.
    pub spec: serde_json::Value,
    pub placement: Placement,
    pub timeout: Duration,
    pub expires_after: Option<Duration>,
    pub max_attempts: u32,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_job", format!("`{field}`: {message}"))
}

/// Checks a submission.
pub fn check(submission: JobSubmission) -> Result<NewJob, ApiError> {
    let mut placement = submission.placement;
    check_placement(&placement)?;
    let (spec, own_timeout) = match submission.kind {
        JobType::Container => {
            if submission.inference.is_some() {
                return Err(invalid(
                    "inference",
                    "only an inference job has it; a container job gives `job`",
                ));
            }
            let document = submission
                .job
                .ok_or_else(|| invalid("job", "a container job needs its job document in `job`"))?;
            let job = check_container(&document)?;
            if placement.min_vram_mib.is_none() {
                placement.min_vram_mib = job.required_vram_bytes.map(|b| b.div_ceil(1024 * 1024));
            }
            (document, job.timeout)
        }
        JobType::Inference => {
            if submission.job.is_some() {
                return Err(invalid(
                    "job",
                    "only a container job has it; an inference job gives `inference`",
                ));
            }
            let request = submission.inference.ok_or_else(|| {
                invalid(
                    "inference",
                    "an inference job needs its request in `inference`",
                )
            })?;
            check_inference(&request)?;
            let spec = serde_json::to_value(&request).map_err(|err| invalid("inference", err))?;
            (spec, DEFAULT_INFERENCE_TIMEOUT)
        }
    };
    let timeout = match &submission.timeout {
        Some(text) => duration("timeout", text)?,
        None => own_timeout,
    };
    let expires_after = submission
        .expires_after
        .as_deref()
        .map(|text| duration("expiresAfter", text))
        .transpose()?;
    let max_attempts = submission.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
        return Err(invalid(
            "maxAttempts",
            format!("{max_attempts} is out of range; use 1 to {MAX_ATTEMPTS} (default {DEFAULT_MAX_ATTEMPTS})"),
        ));
    }
    Ok(NewJob {
        kind: submission.kind,
        spec,
        placement,
        timeout,
        expires_after,
        max_attempts,
    })
}

/// The node's own parsing and validation of a job file, on the document.
fn check_container(document: &serde_json::Value) -> Result<crate::jobs::Job, ApiError> {
    // Pretty text, so the line of an error points at one field.
    let text = serde_json::to_string_pretty(document).map_err(|err| invalid("job", err))?;
    crate::jobs::parse(&text, Path::new("job")).map_err(|err| {
        let field = match err.site().map(|site| site.path.as_str()) {
            Some(path) if !path.is_empty() => format!("job.{path}"),
            _ => "job".to_string(),
        };
        invalid(&field, err)
    })
}

fn check_inference(request: &InferenceRequest) -> Result<(), ApiError> {
    if request.model.trim().is_empty() || request.model.len() > 256 {
        return Err(invalid(
            "inference.model",
            "name the model (1-256 characters)",
        ));
    }
    match (&request.messages, &request.prompt) {
        (Some(messages), None) => {
            if messages.is_empty() {
                return Err(invalid("inference.messages", "give at least one message"));
            }
            for (i, message) in messages.iter().enumerate() {
                if !["system", "user", "assistant"].contains(&message.role.as_str()) {
                    return Err(invalid(
                        &format!("inference.messages[{i}].role"),
                        format!("{:?} is not system, user or assistant", message.role),
                    ));
                }
            }
        }
        (None, Some(_)) => {}
        _ => {
            return Err(invalid(
                "inference",
                "give exactly one of `messages` (chat) and `prompt` (text)",
            ))
        }
    }
    if request
        .max_tokens
        .is_some_and(|n| !(1..=32_768).contains(&n))
    {
        return Err(invalid("inference.max_tokens", "use 1 to 32768"));
    }
    if request
        .temperature
        .is_some_and(|t| !t.is_finite() || !(0.0..=2.0).contains(&t))
    {
        return Err(invalid("inference.temperature", "use 0 to 2"));
    }
    if request
        .top_p
        .is_some_and(|p| !p.is_finite() || p <= 0.0 || p > 1.0)
    {
        return Err(invalid(
            "inference.top_p",
            "use a number above 0, at most 1",
        ));
    }
    if request.stop.len() > 4 {
        return Err(invalid("inference.stop", "give at most 4 stop sequences"));
    }
    Ok(())
}

fn check_placement(placement: &Placement) -> Result<(), ApiError> {
    if let Some(market) = &placement.market {
        if market.trim().is_empty() {
            return Err(invalid(
                "placement.market",
                "name a market, or leave it out",
            ));
        }
    }
    if let Some(residency) = &placement.constraints.residency {
        check_residency(residency)?;
    }
    if let Some(wait) = &placement.green_wait {
        if placement.energy != EnergyPreference::PreferGreen {
            return Err(invalid(
                "placement.greenWait",
                "only a job with `energy: prefer-green` waits for green capacity",
            ));
        }
        duration("placement.greenWait", wait)?;
    }
    if placement.labels.len() > MAX_LABELS {
        return Err(invalid(
            "placement.labels",
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    let labels: &BTreeMap<String, String> = &placement.labels;
    for (key, value) in labels {
        if key.is_empty() || key.len() > 63 || value.len() > 253 {
            return Err(invalid(
                &format!("placement.labels.{key}"),
                "keys are 1-63 characters, values at most 253",
            ));
        }
    }
    Ok(())
}

fn check_residency(residency: &Residency) -> Result<(), ApiError> {
    if residency.countries.is_empty() && !residency.eu && residency.price_areas.is_empty() {
        return Err(invalid(
            "placement.constraints.residency",
            "name `countries`, `eu: true` or `priceAreas`, or leave residency out",
        ));
    }
    for (i, country) in residency.countries.iter().enumerate() {
        if !geo::is_country(country) {
            return Err(invalid(
                &format!("placement.constraints.residency.countries[{i}]"),
                format!("{country:?} is not an ISO 3166-1 alpha-2 code (e.g. SE, DE)"),
            ));
        }
    }
    for (i, area) in residency.price_areas.iter().enumerate() {
        if let Err(err) = area.parse::<PriceArea>() {
            return Err(invalid(
                &format!("placement.constraints.residency.priceAreas[{i}]"),
                err,
            ));
        }
    }
    let sweden_allowed =
        residency.countries.is_empty() || residency.countries.iter().any(|c| c == "SE");
    if !residency.price_areas.is_empty() && !sweden_allowed {
        return Err(invalid(
            "placement.constraints.residency",
            "priceAreas are in Sweden, but `countries` leaves SE out: no node could run it",
        ));
    }
    Ok(())
}

/// How long a `prefer-green` job waits for green capacity by default.
pub const DEFAULT_GREEN_WAIT: Duration = Duration::from_secs(600);

/// The green wait of a checked placement (`None` for a job that does not
/// prefer green).
pub fn green_wait(placement: &Placement) -> Option<Duration> {
    if placement.energy != EnergyPreference::PreferGreen {
        return None;
    }
    Some(
        placement
            .green_wait
            .as_deref()
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(DEFAULT_GREEN_WAIT),
    )
}

fn duration(field: &str, text: &str) -> Result<Duration, ApiError> {
    let value = parse_duration(text).map_err(|why| invalid(field, format!("{text:?}: {why}")))?;
    if value < Duration::from_secs(1) || value > MAX_JOB_DURATION {
        return Err(invalid(
            field,
            format!(
                "{text:?} is outside 1s to {}h",
                MAX_JOB_DURATION.as_secs() / 3600
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
#[path = "submit_tests.rs"]
mod tests;
