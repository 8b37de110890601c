//! `spec.location`, validated: an assigned ISO 3166-1 country code, a price
//! area only in Sweden, coordinates in range; coordinates in Sweden imply a
//! price area (from `crate::geo`'s coarse polygons), and one that
//! contradicts the written area is a warning with the derived value, never
//! an error.

use crate::document::{Checker, DocumentWarning};
use crate::geo;

use super::types::Location;
use super::SpecError;

/// The location with its price area filled in where the coordinates imply
/// one, and the warnings about it.
pub(super) fn location(
    c: &Checker<'_>,
    location: &Location,
) -> Result<(Location, Vec<DocumentWarning>), SpecError> {
    let country = &location.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(c.invalid(
            "spec.location.country",
            format!("`{country}` is not an ISO 3166-1 alpha-2 country code"),
            "write two upper-case letters, e.g. SE",
        ));
    }
    if !geo::is_country(country) {
        return Err(c.invalid(
            "spec.location.country",
            format!("`{country}` is not an assigned ISO 3166-1 alpha-2 country code"),
            "write the country's code, e.g. SE, NO, FI, DK or DE",
        ));
    }
    let sweden = country == "SE";
    if let (Some(area), false) = (location.price_area, sweden) {
        return Err(c.invalid(
            "spec.location.priceArea",
            format!("price area {area} is Swedish but the country is {country}"),
            "remove `priceArea` or set `country: SE`",
        ));
    }
    let mut checked = location.clone();
    let mut warnings = Vec::new();
    let Some(at) = location.coordinates else {
        return Ok((checked, warnings));
    };
    if !(-90.0..=90.0).contains(&at.latitude) {
        return Err(c.invalid(
            "spec.location.coordinates.latitude",
            format!("latitude must be -90 to 90, got {}", at.latitude),
            "write degrees north, e.g. 59.33",
        ));
    }
    if !(-180.0..=180.0).contains(&at.longitude) {
        return Err(c.invalid(
            "spec.location.coordinates.longitude",
            format!("longitude must be -180 to 180, got {}", at.longitude),
            "write degrees east, e.g. 18.07",
        ));
    }
    let derived = geo::price_area_at(at.latitude, at.longitude);
    match (sweden, location.price_area, derived) {
        (true, Some(written), Some(derived)) if written != derived => {
            warnings.push(c.warning(
                "spec.location.priceArea",
                format!(
                    "the coordinates ({}, {}) lie in {derived}, not in {written}",
                    at.latitude, at.longitude
                ),
                &format!("write `priceArea: {derived}`, or keep {written} if your electricity contract names it (the area borders used here are coarse)"),
            ));
        }
        (true, None, Some(derived)) => checked.price_area = Some(derived),
        (true, _, None) => warnings.push(c.warning(
            "spec.location.coordinates",
            format!(
                "the coordinates ({}, {}) are not in Sweden, but the country is SE",
                at.latitude, at.longitude
            ),
            "check the coordinates (latitude first, then longitude) or the country",
        )),
        (false, _, Some(derived)) => warnings.push(c.warning(
            "spec.location.coordinates",
            format!(
                "the coordinates ({}, {}) lie in Sweden ({derived}), but the country is {country}",
                at.latitude, at.longitude
            ),
            "check the coordinates (latitude first, then longitude) or set `country: SE`",
        )),
        _ => {}
    }
    Ok((checked, warnings))
}

#[cfg(test)]
#[path = "location_tests.rs"]
mod tests;
