//! `spec.location`: golden errors and warnings, and the implied price area.

use crate::geo::PriceArea;
use crate::spec::test_support::{error_of, parse_text, HEAD};

fn located(location: &str) -> String {
    format!("{HEAD}  location:\n{location}")
}

fn warnings_of(text: &str) -> Vec<String> {
    let spec = parse_text(text).expect("valid");
    spec.warnings().iter().map(ToString::to_string).collect()
}

#[test]
fn unassigned_country_and_bad_coordinates_are_errors() {
    assert_eq!(
        error_of(&located("    country: XX\n")),
        "node.yaml:7:14: spec.location.country: `XX` is not an assigned ISO 3166-1 alpha-2 country code (fix: write the country's code, e.g. SE, NO, FI, DK or DE)"
    );
    assert_eq!(
        error_of(&located("    country: se\n")),
        "node.yaml:7:14: spec.location.country: `se` is not an ISO 3166-1 alpha-2 country code (fix: write two upper-case letters, e.g. SE)"
    );
    assert_eq!(
        error_of(&located("    country: NO\n    priceArea: SE1\n")),
        "node.yaml:8:16: spec.location.priceArea: price area SE1 is Swedish but the country is NO (fix: remove `priceArea` or set `country: SE`)"
    );
    assert_eq!(
        error_of(&located(
            "    country: SE\n    coordinates: {latitude: 91, longitude: 18}\n"
        )),
        "node.yaml:8:29: spec.location.coordinates.latitude: latitude must be -90 to 90, got 91 (fix: write degrees north, e.g. 59.33)"
    );
    assert_eq!(
        error_of(&located(
            "    country: SE\n    coordinates: {latitude: 59, longitude: -181}\n"
        )),
        "node.yaml:8:44: spec.location.coordinates.longitude: longitude must be -180 to 180, got -181 (fix: write degrees east, e.g. 18.07)"
    );
    assert_eq!(
        error_of(&located("    country: SE\n    priceArea: SE5\n")),
        "node.yaml:8:16: spec.location.priceArea: unknown variant `SE5`, expected one of `SE1`, `SE2`, `SE3`, `SE4` (fix: use one of the listed values; they are case-sensitive)"
    );
}

#[test]
fn coordinates_in_sweden_imply_the_price_area() {
    let spec = parse_text(&located(
        "    country: SE\n    coordinates: {latitude: 63.83, longitude: 20.26}\n",
    ))
    .expect("valid");
    assert_eq!(
        spec.location().and_then(|l| l.price_area),
        Some(PriceArea::SE2)
    );
    assert!(spec.warnings().is_empty());
}

#[test]
fn a_price_area_the_coordinates_contradict_is_a_warning_with_the_derived_one() {
    let text = located(
        "    country: SE\n    priceArea: SE4\n    coordinates: {latitude: 59.33, longitude: 18.07}\n",
    );
    assert_eq!(
        warnings_of(&text),
        ["node.yaml:8:16: spec.location.priceArea: warning: the coordinates (59.33, 18.07) lie in SE3, not in SE4 (fix: write `priceArea: SE3`, or keep SE4 if your electricity contract names it (the area borders used here are coarse))"]
    );
    // The written area stays: the warning never overrides the operator.
    let spec = parse_text(&text).expect("valid");
    assert_eq!(
        spec.location().and_then(|l| l.price_area),
        Some(PriceArea::SE4)
    );
}

#[test]
fn coordinates_and_country_that_disagree_are_warnings() {
    assert_eq!(
        warnings_of(&located(
            "    country: SE\n    coordinates: {latitude: 52.52, longitude: 13.40}\n"
        )),
        ["node.yaml:8:5: spec.location.coordinates: warning: the coordinates (52.52, 13.4) are not in Sweden, but the country is SE (fix: check the coordinates (latitude first, then longitude) or the country)"]
    );
    assert_eq!(
        warnings_of(&located(
            "    country: NO\n    coordinates: {latitude: 59.33, longitude: 18.07}\n"
        )),
        ["node.yaml:8:5: spec.location.coordinates: warning: the coordinates (59.33, 18.07) lie in Sweden (SE3), but the country is NO (fix: check the coordinates (latitude first, then longitude) or set `country: SE`)"]
    );
    assert!(warnings_of(&located(
        "    country: NO\n    coordinates: {latitude: 59.91, longitude: 10.75}\n"
    ))
    .is_empty());
}
