//! Whether a queued job may go to a claiming node, pure: its market, GPU
//! memory, job type, labels, residency (the node's country and price area)
//! and expiry. A job's residency is a hard constraint: a node outside it
//! never gets the job, whatever else it offers.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::super::api::{JobType, Residency};
use super::super::store::JobRow;
use crate::coordinator::nodes::api::{Location, PowerReport};
use crate::geo;

/// What a node offers in a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimant {
    pub node_id: Uuid,
    pub market: String,
    /// Its largest GPU's memory (0 without a GPU).
    pub vram_mib: u64,
    pub job_types: Vec<JobType>,
    pub labels: BTreeMap<String, String>,
    /// Where the node is, as it registered (residency).
    pub location: Location,
    /// Its power now, as the claim reports it (green placement).
    pub power: Option<PowerReport>,
}

/// Whether a node at `location` satisfies `residency`: every given field
/// must hold; a node that did not say where it is satisfies none.
pub fn residency_allows(residency: &Residency, location: &Location) -> bool {
    let Some(country) = location.country.as_deref() else {
        return false;
    };
    if !residency.countries.is_empty() && !residency.countries.iter().any(|c| c == country) {
        return false;
    }
    if residency.eu && !geo::is_eu(country) {
        return false;
    }
    if !residency.price_areas.is_empty() {
        let area = location.region.as_deref();
        let inside = country == "SE"
            && residency
                .price_areas
                .iter()
                .any(|a| Some(a.as_str()) == area);
        if !inside {
            return false;
        }
    }
    true
}

/// Whether `job` may go to `claimant` at `now_ms`.
pub fn fits(job: &JobRow, claimant: &Claimant, now_ms: i64) -> bool {
    let placement = &job.placement;
    placement
        .market
        .as_ref()
        .is_none_or(|market| *market == claimant.market)
        && placement
            .min_vram_mib
            .is_none_or(|mib| mib <= claimant.vram_mib)
        && claimant.job_types.contains(&job.kind)
        && job.expires_at_ms.is_none_or(|at| at > now_ms)
        && placement
            .labels
            .iter()
            .all(|(key, value)| claimant.labels.get(key) == Some(value))
        && placement
            .constraints
            .residency
            .as_ref()
            .is_none_or(|residency| residency_allows(residency, &claimant.location))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(country: Option<&str>, region: Option<&str>) -> Location {
        Location {
            country: country.map(str::to_string),
            region: region.map(str::to_string),
            ..Location::default()
        }
    }

    fn residency(countries: &[&str], eu: bool, areas: &[&str]) -> Residency {
        Residency {
            countries: countries.iter().map(|c| c.to_string()).collect(),
            eu,
            price_areas: areas.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn residency_keeps_a_job_where_it_says() {
        let se3 = at(Some("SE"), Some("SE3"));
        let de = at(Some("DE"), None);
        let no = at(Some("NO"), None);
        let nowhere = at(None, None);
        let sweden = residency(&["SE"], false, &[]);
        assert!(residency_allows(&sweden, &se3));
        assert!(!residency_allows(&sweden, &de));
        assert!(!residency_allows(&sweden, &nowhere));
        let eu = residency(&[], true, &[]);
        assert!(residency_allows(&eu, &se3) && residency_allows(&eu, &de));
        assert!(!residency_allows(&eu, &no), "Norway is not in the EU");
        let south = residency(&[], false, &["SE3", "SE4"]);
        assert!(residency_allows(&south, &se3));
        assert!(!residency_allows(&south, &at(Some("SE"), Some("SE1"))));
        assert!(!residency_allows(&south, &at(Some("SE"), None)));
        assert!(!residency_allows(&south, &de));
    }
}
