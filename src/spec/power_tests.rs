//! `spec.power`: golden errors and the validated settings.

use std::time::Duration;

use crate::spec::test_support::{error_of, parse_text, HEAD};
use crate::spec::types::{PowerPolicy, PowerSource, PowerUnit};
use crate::spec::{HttpSource, ProductionSource};

const AT: &str =
    "  location:\n    country: SE\n    coordinates: {latitude: 59.33, longitude: 18.07}\n";

fn powered(power: &str) -> String {
    format!("{HEAD}{AT}  power:\n{power}")
}

#[test]
fn grid_is_the_default() {
    let spec = parse_text(&format!("{HEAD}  gpu: {{mode: auto}}\n")).expect("valid");
    assert_eq!(spec.power().source, PowerSource::Grid);
    assert_eq!(spec.power().policy, PowerPolicy::Any);
    assert!(spec.power().solar.is_none());
}

#[test]
fn a_model_takes_the_coordinates_and_defaults() {
    let spec = parse_text(&powered(
        "    source: solar\n    policy: solar-only\n    solar: {capacityKw: 6.5}\n",
    ))
    .expect("valid");
    let solar = spec.power().solar.as_ref().expect("solar");
    assert_eq!(spec.power().policy, PowerPolicy::SolarOnly);
    assert_eq!(
        (solar.capacity_kw, solar.tilt_deg, solar.azimuth_deg),
        (6.5, 35.0, 180.0)
    );
    assert_eq!(
        solar.production,
        ProductionSource::Model {
            latitude: 59.33,
            longitude: 18.07
        }
    );
}

#[test]
fn an_inverter_endpoint() {
    let spec = parse_text(&powered(
        "    source: mixed\n    solar:\n      capacityKw: 10\n      production:\n        http: {url: 'http://192.168.1.20/api', pointer: /pv/0/power, unit: kW, timeout: 500ms}\n",
    ))
    .expect("valid");
    let solar = spec.power().solar.as_ref().expect("solar");
    assert_eq!(
        solar.production,
        ProductionSource::Http(HttpSource {
            url: "http://192.168.1.20/api".into(),
            pointer: "/pv/0/power".into(),
            unit: PowerUnit::KW,
            timeout: Duration::from_millis(500),
        })
    );
}

#[test]
fn bad_power_settings_are_placed_errors() {
    let cases = [
        (
            "    source: solar\n",
            "node.yaml:10:13: spec.power.source: `source: solar` needs `spec.power.solar` (capacityKw, tiltDeg, azimuthDeg) (fix: add `solar: {capacityKw: 6.5, tiltDeg: 35, azimuthDeg: 180}`)",
        ),
        (
            "    solar: {capacityKw: 1}\n",
            "node.yaml:10:5: spec.power.solar: `solar` is only used with `source: solar` or `source: mixed` (fix: set `source: solar` or `mixed`, or remove `solar`)",
        ),
        (
            "    policy: solar-only\n",
            "node.yaml:10:13: spec.power.policy: a solar policy needs solar panels (`source: solar` or `mixed`) (fix: set `policy: any`, or describe the panels in `spec.power.solar`)",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 0}\n",
            "node.yaml:11:25: spec.power.solar.capacityKw: 0 is out of range (fix: write the panels' peak power in kW, above 0 and at most 10000, e.g. 6.5)",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 5, tiltDeg: 95}\n",
            "node.yaml:11:37: spec.power.solar.tiltDeg: 95 is out of range (fix: write the tilt from horizontal in degrees, 0 to 90)",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 5, azimuthDeg: 360}\n",
            "node.yaml:11:40: spec.power.solar.azimuthDeg: 360 is out of range (fix: write degrees clockwise from north, 0 to below 360 (180 faces south))",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 5, production: {http: {url: 'ftp://x/y', pointer: /a}}}\n",
            "node.yaml:11:53: spec.power.solar.production.http.url: `ftp://x/y` is not an http(s) URL (fix: write the inverter's URL, e.g. http://192.168.1.20/api/power)",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 5, production: {http: {url: 'http://x/y', pointer: a/b}}}\n",
            "node.yaml:11:76: spec.power.solar.production.http.pointer: `a/b` is not a JSON pointer (fix: start it with `/` and write `~` as `~0`, `/` in a key as `~1`, e.g. /inverters/0/acPower; leave it empty for a bare number)",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 5, production: {http: {url: 'http://x/y', pointer: /a~2}}}\n",
            "node.yaml:11:76: spec.power.solar.production.http.pointer: `/a~2` is not a JSON pointer (fix: start it with `/` and write `~` as `~0`, `/` in a key as `~1`, e.g. /inverters/0/acPower; leave it empty for a bare number)",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 5, production: {http: {url: 'http://x/y', pointer: '', timeout: 1m}}}\n",
            "node.yaml:11:89: spec.power.solar.production.http.timeout: `1m` (1m) is longer than the maximum 30s (fix: write a duration from 100ms to 30s)",
        ),
        (
            "    source: solar\n    solar: {capacityKw: 5, production: {http: {url: 'http://x/y', pointer: '', unit: MW}}}\n",
            "node.yaml:11:86: spec.power.solar.production.http.unit: unknown variant `MW`, expected `W` or `kW` (fix: use one of the listed values; they are case-sensitive)",
        ),
    ];
    let (actual, expected): (Vec<String>, Vec<&str>) = cases
        .iter()
        .map(|(power, expected)| (error_of(&powered(power)), *expected))
        .unzip();
    assert_eq!(actual, expected);
}

#[test]
fn the_model_needs_coordinates() {
    let text = format!(
        "{HEAD}  location: {{country: SE}}\n  power:\n    source: solar\n    solar: {{capacityKw: 5}}\n"
    );
    assert_eq!(
        error_of(&text),
        "node.yaml:9:5: spec.power.solar: the production model needs the node's coordinates (fix: add `spec.location.coordinates` (latitude, longitude), or read an inverter with `production: {http: ...}`)"
    );
}
