//! The committed JSON Schema matches the types, and every example validates.
//!
//! Regenerate the schema with `garage schema > manifests/node.schema.json`,
//! or `GARAGE_BLESS=1 cargo test --test spec_schema`.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_current() {
    let path = repo().join("manifests/node.schema.json");
    let generated =
        serde_json::to_string_pretty(&garage::spec::schema()).expect("schema is JSON") + "\n";
    if std::env::var_os("GARAGE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write manifests/node.schema.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "manifests/node.schema.json is out of date with src/spec; regenerate it with \
         `garage schema > manifests/node.schema.json` or `GARAGE_BLESS=1 cargo test --test spec_schema`"
    );
}

#[test]
fn every_example_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("examples")).expect("examples/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let name = Path::new("examples").join(path.file_name().expect("a file name"));
        let spec =
            garage::spec::load(&path).unwrap_or_else(|err| panic!("{}: {err}", name.display()));
        garage::reconcile::lower::desired_state(
            &spec,
            &garage::gpu::GpuInventory::none("test host without GPU"),
        )
        .unwrap_or_else(|err| panic!("{}: {err}", name.display()));
        seen += 1;
    }
    assert!(seen >= 3, "expected at least three examples, found {seen}");
}
