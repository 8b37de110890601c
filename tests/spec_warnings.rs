//! `garage validate` with a spec it accepts but doubts: the warning (file,
//! line, column, field, the derived value and a fix) goes to stderr and the
//! exit code stays 0.

use std::process::Command;

#[test]
fn validate_prints_a_price_area_warning_and_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.yaml");
    std::fs::write(
        &path,
        "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  location:\n    country: SE\n    priceArea: SE1\n    coordinates: {latitude: 55.60, longitude: 13.00}\n",
    )
    .expect("write the spec");
    let out = Command::new(env!("CARGO_BIN_EXE_garage"))
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run garage");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("node.yaml:8:16: spec.location.priceArea: warning: the coordinates (55.6, 13) lie in SE4, not in SE1 (fix: write `priceArea: SE4`"),
        "{stderr}"
    );
    assert!(stdout.contains(": valid (node n1, generation "), "{stdout}");
}
