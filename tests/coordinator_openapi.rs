//! The OpenAPI document a running coordinator serves is the committed
//! `manifests/coordinator.openapi.json` (which `.ci/run` checks with an
//! independent validator, `tests/validate_openapi.py`), and it describes
//! every API route.
//!
//! Regenerate with `GARAGE_BLESS=1 cargo test --test coordinator_openapi`.

mod coordinator_support;

use std::path::PathBuf;

use coordinator_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_committed_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = Coordinator::start(&tmp.path().join("coordinator"), &Db::Sqlite).await;
    let (status, served) = coordinator.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    coordinator.stop().await;

    for (path, methods) in [
        ("/api/nodes/register", &["post"][..]),
        ("/api/nodes/{id}/heartbeat", &["post"]),
        ("/api/nodes", &["get"]),
        ("/api/nodes/{id}", &["get", "delete"]),
        ("/api/nodes/{id}/heartbeats", &["get"]),
        ("/api/markets", &["get"]),
        ("/api/join-tokens", &["get", "post"]),
        ("/api/join-tokens/{id}", &["delete"]),
        ("/api/parameters", &["get"]),
        ("/api/parameters/{name}", &["get", "put"]),
        ("/api/ledger/accounts/{account}", &["get"]),
        ("/api/ledger/accounts/{account}/transfers", &["get"]),
        ("/api/ledger/mint", &["post"]),
        ("/api/ledger/audit", &["get"]),
        ("/api/proposals", &["get", "post"]),
        ("/api/proposals/{id}", &["get"]),
        ("/api/proposals/{id}/votes", &["get", "post"]),
        ("/api/nodes/{id}/proposals", &["post"]),
        ("/api/nodes/{id}/votes", &["post"]),
    ] {
        for method in methods {
            assert!(
                served["paths"][path][method].is_object(),
                "{method} {path} missing from the OpenAPI document"
            );
        }
    }
    let generated = serde_json::to_string_pretty(&served).expect("JSON") + "\n";
    let committed_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests/coordinator.openapi.json");
    if std::env::var_os("GARAGE_BLESS").is_some() {
        std::fs::write(&committed_path, &generated).expect("write the OpenAPI document");
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "manifests/coordinator.openapi.json is out of date with src/coordinator; regenerate it \
         with `GARAGE_BLESS=1 cargo test --test coordinator_openapi`"
    );
}
