//! The clear-sky production model (`garage::energy::solar`) against pvlib,
//! an independent implementation of the same model chain
//! (tests/reference/solar_pvlib.py), for towns from Malmö to Kiruna at
//! winter and summer mornings, noons, evenings and nights, with several
//! panel orientations.
//!
//! Tolerance: the sun's apparent zenith within 0.05°, and production
//! within 1 % of pvlib's value plus 0.2 % of the panel's capacity (2 W
//! per kW installed). Night (the sun at or below the horizon) is exactly 0
//! on both sides.
//!
//! Needs pvlib in the test venv (`$GARAGE_TEST_PYTHON`, else
//! `.venv/bin/python`; `.ci/run` installs it); skipped without it unless
//! `GARAGE_REQUIRE_PVLIB=1`, which CI sets.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use garage::energy::solar::{estimate, Panel};
use serde_json::{json, Value};

/// The venv's Python when pvlib imports there.
fn pvlib_python() -> Option<PathBuf> {
    let python = std::env::var_os("GARAGE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let imports = Command::new(&python)
        .args(["-c", "import pvlib, pandas"])
        .status()
        .is_ok_and(|s| s.success());
    if imports {
        return Some(python);
    }
    assert!(
        std::env::var_os("GARAGE_REQUIRE_PVLIB").is_none(),
        "GARAGE_REQUIRE_PVLIB is set but {} cannot import pvlib (fix: {} -m pip install pvlib)",
        python.display(),
        python.display()
    );
    eprintln!("skipping: no pvlib in {}", python.display());
    None
}

/// Unix seconds of a UTC date and time (`2026-06-21T10:00:00Z`).
fn unix(text: &str) -> f64 {
    let days_from_civil = |y: i64, m: i64, d: i64| {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    };
    let n = |range: std::ops::Range<usize>| text[range].parse::<i64>().expect("a number");
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60) as f64
}

#[test]
fn production_matches_pvlib_across_sweden_and_the_year() {
    let Some(python) = pvlib_python() else {
        return;
    };
    let towns = [
        ("Malmö", 55.60, 13.00),
        ("Göteborg", 57.71, 11.97),
        ("Stockholm", 59.33, 18.07),
        ("Östersund", 63.18, 14.64),
        ("Kiruna", 67.86, 20.23),
    ];
    let times = [
        "2026-06-21T03:30:00Z", // summer morning
        "2026-06-21T10:30:00Z", // summer noon
        "2026-06-21T17:00:00Z", // summer evening
        "2026-06-21T22:30:00Z", // summer night (midnight sun in Kiruna)
        "2026-12-21T08:00:00Z", // winter morning
        "2026-12-21T11:00:00Z", // winter noon (polar night in Kiruna)
        "2026-12-21T23:00:00Z", // winter night
        "2026-03-20T11:00:00Z", // equinox noon
        "2026-09-23T07:00:00Z", // autumn morning
    ];
    let panels = [
        (35.0, 180.0),
        (20.0, 135.0),
        (45.0, 250.0),
        (0.0, 0.0),
        (90.0, 180.0),
    ];
    let mut cases = Vec::new();
    for (i, (town, lat, lon)) in towns.iter().enumerate() {
        for (j, time) in times.iter().enumerate() {
            let (tilt, azimuth) = panels[(i + j) % panels.len()];
            cases.push((
                *town,
                *time,
                Panel {
                    latitude: *lat,
                    longitude: *lon,
                    capacity_kw: 6.5,
                    tilt_deg: tilt,
                    azimuth_deg: azimuth,
                },
            ));
        }
    }
    let input: Vec<Value> = cases
        .iter()
        .map(|(_, time, p)| {
            json!({"unix": unix(time), "lat": p.latitude, "lon": p.longitude,
                   "tilt": p.tilt_deg, "azimuth": p.azimuth_deg, "capacity_kw": p.capacity_kw})
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/solar_pvlib.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&input).expect("json").as_bytes())
        .expect("write the cases");
    let output = child.wait_with_output().expect("python ends");
    assert!(output.status.success(), "solar_pvlib.py failed");
    let reference: Vec<Value> = serde_json::from_slice(&output.stdout).expect("pvlib's JSON");
    assert_eq!(reference.len(), cases.len());
    let (mut nights, mut days, mut worst) = (0, 0, 0.0f64);
    let mut problems = Vec::new();
    for ((town, time, panel), pv) in cases.iter().zip(&reference) {
        let ours = estimate(panel, unix(time)).expect("in the SPA's years");
        let field = |name: &str| pv[name].as_f64().expect("a number");
        let zenith_gap = (ours.apparent_zenith_deg - field("apparent_zenith")).abs();
        let expected = field("watts");
        let gap = (ours.watts - expected).abs();
        let allowed = 0.01 * expected + 0.002 * panel.capacity_kw * 1000.0;
        worst = worst.max(gap / (panel.capacity_kw * 1000.0));
        if ours.apparent_zenith_deg >= 90.0 {
            nights += 1;
            if ours.watts != 0.0 || (field("apparent_zenith") >= 90.0 && expected != 0.0) {
                problems.push(format!(
                    "{town} {time}: night must be exactly 0, got {} (pvlib {expected})",
                    ours.watts
                ));
            }
        } else if expected > 100.0 {
            days += 1;
        }
        if zenith_gap > 0.05 || gap > allowed {
            problems.push(format!(
                "{town} {time} tilt {} az {}: ours {:.2} W at zenith {:.4}°, pvlib {:.2} W at zenith {:.4}° (allowed {:.2} W)",
                panel.tilt_deg, panel.azimuth_deg, ours.watts, ours.apparent_zenith_deg,
                expected, field("apparent_zenith"), allowed
            ));
        }
    }
    eprintln!(
        "{} cases: {days} in daylight, {nights} at night; largest gap {:.5} of capacity",
        cases.len(),
        worst
    );
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    assert!(nights >= 8 && days >= 20, "{nights} nights, {days} days");
}
