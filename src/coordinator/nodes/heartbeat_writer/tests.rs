//! The group commit on SQLite (PostgreSQL runs it through the API tests):
//! concurrent heartbeats share transactions and every one is stored once;
//! a nonce is accepted once, also within one batch; an unknown node does
//! not fail its batch.

use serde_json::json;

use super::*;
use crate::coordinator::nodes::api::Location;
use crate::coordinator::nodes::store::NewNode;
use crate::coordinator::parameters::store::StartDefaults;

const T0: i64 = 1_800_000_000_000;

async fn writer(
    nodes: u128,
) -> (
    tempfile::TempDir,
    Store,
    HeartbeatWriter,
    CoordinatorMetrics,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
    let store = Store::connect(&url).await.expect("store");
    for n in 0..nodes {
        let node = NewNode {
            node_id: Uuid::from_u128(n),
            public_key: format!("key-{n}"),
            market: "cpu".into(),
            gpu_info: Vec::new(),
            location: Location::default(),
            benchmark: None,
        };
        store.register(&node, T0).await.expect("registered");
    }
    let parameters = Parameters::new(
        store.clone(),
        StartDefaults {
            heartbeat_interval_seconds: 7,
            offline_after_intervals: 3,
        },
    );
    let metrics = CoordinatorMetrics::new();
    let retain = Retention {
        count: 100,
        bytes: u64::MAX,
    };
    let (writer, task) = HeartbeatWriter::new(store.clone(), parameters, retain, metrics.clone());
    tokio::spawn(task);
    (tmp, store, writer, metrics)
}

fn beat(node: u128, nonce: &str) -> Beat {
    Beat {
        node_id: Uuid::from_u128(node),
        nonce: nonce.into(),
        nonce_expires_ms: T0 + 600_000,
        heartbeat: HeartbeatRequest {
            observed_generation: Some("g".into()),
            ready: Some(true),
            gpus: Vec::new(),
            status: json!({"node": format!("n{node}")}),
            power: None,
            spec_revision: None,
        },
        now_ms: T0 + 1,
    }
}

#[tokio::test]
async fn concurrent_heartbeats_share_commits_and_each_is_stored_once() {
    let (_tmp, store, writer, metrics) = writer(50).await;
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..4 {
        for node in 0..50 {
            let writer = writer.clone();
            tasks.spawn(async move { writer.record(beat(node, &format!("r{round}"))).await });
        }
    }
    let mut online = 0;
    while let Some(done) = tasks.join_next().await {
        match done.expect("joined").expect("recorded") {
            Recorded::Online { interval_secs, .. } => {
                assert_eq!(interval_secs, 7, "the live heartbeat interval");
                online += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(online, 200);
    for node in 0..50 {
        let view = store
            .node(Uuid::from_u128(node))
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(view.heartbeats, 4, "node {node}");
    }
    let batches = metrics.heartbeat_batch.get_sample_count();
    assert_eq!(metrics.heartbeat_batch.get_sample_sum() as u64, 200);
    assert!(batches < 200, "{batches} transactions for 200 heartbeats");
}

#[tokio::test]
async fn a_nonce_is_accepted_once_even_within_one_batch() {
    let (_tmp, store, writer, _) = writer(2).await;
    let (a, b, c) = tokio::join!(
        writer.record(beat(0, "same")),
        writer.record(beat(0, "same")),
        writer.record(beat(1, "same")),
    );
    let outcomes = [a, b, c].map(|o| o.expect("recorded"));
    let replayed = outcomes
        .iter()
        .filter(|o| **o == Recorded::Replayed)
        .count();
    assert_eq!(replayed, 1, "{outcomes:?}");
    assert!(
        matches!(outcomes[2], Recorded::Online { .. }),
        "another node's equal nonce is its own: {outcomes:?}"
    );
    assert_eq!(
        writer.record(beat(0, "same")).await.expect("recorded"),
        Recorded::Replayed,
        "after the commit too"
    );
    assert!(!store
        .remember_nonce(Uuid::from_u128(0), "same", T0 + 600_000)
        .await
        .expect("nonce"));
}

#[tokio::test]
async fn an_unknown_node_does_not_fail_its_batch() {
    let (_tmp, _store, writer, _) = writer(3).await;
    let beats = [beat(0, "x"), beat(99, "x"), beat(2, "x")];
    let outcomes: Vec<Recorded> = futures::future::join_all(beats.map(|b| writer.record(b)))
        .await
        .into_iter()
        .map(|o| o.expect("recorded"))
        .collect();
    assert_eq!(outcomes[1], Recorded::UnknownNode);
    assert!(
        matches!(outcomes[0], Recorded::Online { .. })
            && matches!(outcomes[2], Recorded::Online { .. }),
        "{outcomes:?}"
    );
}
