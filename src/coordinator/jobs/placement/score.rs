//! How much a placement round likes giving a job to a parked claim, pure.
//! Hard constraints come first (`fit`); among the claims that fit, the
//! score orders by the share of the node's draw its solar production
//! covers (weighted ten times for `prefer-green` jobs), then the grid's
//! carbon intensity where the node is, locality (the job's first-named
//! country or price area), the node's free slots (load), and finally the
//! claim that waited longest.

use super::super::api::EnergyPreference;
use super::super::store::JobRow;
use crate::coordinator::nodes::api::{Location, PowerReport};

/// Below this share of its draw covered by solar, a node is not green
/// enough for a `prefer-green` job that may still wait.
pub const GREEN_ENOUGH: f64 = 0.5;

/// What a round knows of one parked claim.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimFacts<'a> {
    /// Share of the node's draw its solar production covers, 0 to 1.
    pub green: f64,
    /// gCO₂/kWh of the grid where the node is, when known.
    pub intensity: Option<f64>,
    pub location: &'a Location,
    /// Jobs the node said it can start now.
    pub free_slots: u32,
    /// How long the claim has been parked, in ms.
    pub waited_ms: u64,
}

/// The share of its draw a node's solar production covers now, 0 to 1
/// (0 for a grid node, an unreadable production or no report).
pub fn green_fraction(power: Option<&PowerReport>) -> f64 {
    let Some(power) = power else {
        return 0.0;
    };
    if power.production_ok == Some(false) {
        return 0.0;
    }
    match power.production_watts {
        Some(production) if production.is_finite() && power.draw_watts.is_finite() => {
            (production / power.draw_watts.max(1.0)).clamp(0.0, 1.0)
        }
        _ => 0.0,
    }
}

/// Whether the job's first-named place is where the node is.
fn local(job: &JobRow, location: &Location) -> bool {
    let Some(residency) = &job.placement.constraints.residency else {
        return false;
    };
    if let Some(area) = residency.price_areas.first() {
        return location.region.as_deref() == Some(area.as_str());
    }
    residency
        .countries
        .first()
        .is_some_and(|country| location.country.as_deref() == Some(country.as_str()))
}

/// The score of giving `job` to a claim with `facts`; higher is better.
pub fn score(job: &JobRow, facts: &ClaimFacts) -> f64 {
    let green_weight = match job.placement.energy {
        EnergyPreference::PreferGreen => 1_000.0,
        EnergyPreference::Any => 100.0,
    };
    let mut score = green_weight * facts.green;
    if let Some(intensity) = facts.intensity {
        score -= intensity / 10.0;
    }
    if local(job, facts.location) {
        score += 5.0;
    }
    score += f64::from(facts.free_slots.min(16));
    score + (facts.waited_ms.min(60_000) as f64) / 60_000.0
}

/// Whether a `prefer-green` job should wait rather than take the best
/// claim it has now: its green wait has not passed and that claim's node
/// is not green enough.
pub fn waits_for_green(job: &JobRow, best: &ClaimFacts, now_ms: i64) -> bool {
    job.placement.energy == EnergyPreference::PreferGreen
        && job.green_until_ms.is_some_and(|until| now_ms < until)
        && best.green < GREEN_ENOUGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power(production: Option<f64>, draw: f64) -> PowerReport {
        PowerReport {
            source: "solar".into(),
            policy: "prefer-solar".into(),
            draw_watts: draw,
            draw_measured_by: "estimate".into(),
            production_watts: production,
            production_source: production.map(|_| "model".into()),
            production_ok: Some(true),
            surplus_watts: production.map(|p| p - draw),
        }
    }

    #[test]
    fn the_green_share_is_production_over_draw_capped_at_one() {
        assert_eq!(green_fraction(None), 0.0);
        assert_eq!(green_fraction(Some(&power(None, 200.0))), 0.0);
        assert_eq!(green_fraction(Some(&power(Some(100.0), 200.0))), 0.5);
        assert_eq!(green_fraction(Some(&power(Some(900.0), 200.0))), 1.0);
        let mut broken = power(Some(900.0), 200.0);
        broken.production_ok = Some(false);
        assert_eq!(green_fraction(Some(&broken)), 0.0);
    }
}
