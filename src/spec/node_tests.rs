//! The validated spec's accessors and its generation.

use crate::spec::test_support::{parse_text, EXAMPLE};
use crate::spec::types::{PowerSource, PriceArea};
use crate::spec::ReconcileSettings;

#[test]
fn example_accessors() {
    let spec = parse_text(EXAMPLE).expect("examples/node.yaml is valid");
    assert_eq!(spec.name(), "garage-node-1");
    assert_eq!(spec.generation().len(), 12);
    assert_eq!(spec.coordinator_url(), Some("http://127.0.0.1:8080"));
    let location = spec.location().expect("location is set");
    assert_eq!(
        (location.country.as_str(), location.price_area),
        ("SE", Some(PriceArea::SE3))
    );
    assert_eq!(spec.power().source, PowerSource::Mixed);
    assert!(spec.warnings().is_empty(), "{:?}", spec.warnings());
    assert_eq!(spec.metrics_listen().to_string(), "127.0.0.1:9464");
    assert_eq!(spec.reconcile(), ReconcileSettings::default());
}

#[test]
fn generation_follows_content_not_formatting() {
    let a = parse_text(EXAMPLE).expect("valid");
    let reformatted = EXAMPLE
        .replace("memory: 4Gi", "memory: \"4Gi\"")
        .replace("# A complete", "# A");
    let b = parse_text(&reformatted).expect("valid");
    assert_eq!(a.generation(), b.generation());
    let changed = parse_text(&EXAMPLE.replace("memory: 4Gi", "memory: 8Gi")).expect("valid");
    assert_ne!(a.generation(), changed.generation());
}
