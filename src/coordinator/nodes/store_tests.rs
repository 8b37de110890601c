//! The store's contract on SQLite (the PostgreSQL side runs through the
//! API tests): key binding, heartbeat retention by count and bytes, offline
//! marking, nonces, join tokens and tombstones, pages, SQLite durability
//! settings.

use super::*;

use crate::coordinator::nodes::api::HeartbeatRequest;
use crate::coordinator::nodes::heartbeats::Retention;
use crate::coordinator::nodes::join_tokens::{JoinToken, StoredToken};
use crate::coordinator::store::redact;

const T0: i64 = 1_800_000_000_000;

/// Keep `count` heartbeats, bytes unbounded.
fn keep(count: u64) -> Retention {
    Retention {
        count,
        bytes: u64::MAX,
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}",
        tmp.path().join("nested/dir/db.sqlite").display()
    );
    let store = Store::connect(&url).await.expect("connects and migrates");
    (tmp, store)
}

fn node(key: &str) -> NewNode {
    NewNode {
        node_id: Uuid::from_u128(7),
        public_key: key.into(),
        market: "cpu".into(),
        gpu_info: Vec::new(),
        location: Location::default(),
        benchmark: None,
    }
}

fn beat(generation: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        observed_generation: Some(generation.into()),
        ready: Some(true),
        gpus: Vec::new(),
        status: serde_json::json!({"g": generation}),
        power: None,
        spec_revision: None,
    }
}

#[tokio::test]
async fn an_id_stays_bound_to_its_first_key() {
    let (_tmp, store) = store().await;
    assert_eq!(
        store.register(&node("k1"), T0).await.expect("ok"),
        Registered::Created
    );
    let mut moved = node("k1");
    moved.market = "h100".into();
    assert_eq!(
        store.register(&moved, T0 + 1).await.expect("ok"),
        Registered::Updated
    );
    assert_eq!(
        store.register(&node("k2"), T0 + 2).await.expect("ok"),
        Registered::KeyConflict
    );
    let view = store
        .node(Uuid::from_u128(7))
        .await
        .expect("ok")
        .expect("exists");
    assert_eq!(
        (view.public_key.as_str(), view.market.as_str()),
        ("k1", "h100")
    );
}

#[tokio::test]
async fn heartbeats_are_kept_up_to_the_retention_newest_first() {
    let (_tmp, store) = store().await;
    let id = Uuid::from_u128(7);
    assert_eq!(
        store
            .record_heartbeat(id, &beat("g0"), T0, keep(3))
            .await
            .expect("ok"),
        None
    );
    store.register(&node("k1"), T0).await.expect("ok");
    for i in 1..=5 {
        let before = store
            .record_heartbeat(id, &beat(&format!("g{i}")), T0 + i, keep(3))
            .await
            .expect("ok");
        assert_eq!(before, Some(NodeState::Online));
    }
    let kept = store.heartbeats_page(id, None, 100).await.expect("ok");
    let seqs: Vec<u64> = kept.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [5, 4, 3]);
    assert_eq!(kept[0].status, serde_json::json!({"g": "g5"}));
    assert_eq!(
        store.heartbeats_page(id, Some(5), 1).await.expect("ok")[0].seq,
        4
    );
    assert_eq!(
        store
            .node(id)
            .await
            .expect("ok")
            .expect("exists")
            .heartbeats,
        5
    );
}

#[tokio::test]
async fn silent_nodes_are_marked_offline_once() {
    let (_tmp, store) = store().await;
    let id = Uuid::from_u128(7);
    store.register(&node("k1"), T0).await.expect("ok");
    assert!(
        store.mark_offline(T0).await.expect("ok").is_empty(),
        "seen at T0, not before"
    );
    assert_eq!(store.mark_offline(T0 + 1).await.expect("ok"), [id]);
    assert!(
        store.mark_offline(T0 + 2).await.expect("ok").is_empty(),
        "already offline"
    );
    assert_eq!(
        store.count_by_state().await.expect("ok"),
        [(NodeState::Offline, 1)]
    );
    let before = store
        .record_heartbeat(id, &beat("g"), T0 + 3, keep(10))
        .await
        .expect("ok");
    assert_eq!(before, Some(NodeState::Offline));
    assert_eq!(
        store.node(id).await.expect("ok").expect("exists").state,
        NodeState::Online
    );
}

#[tokio::test]
async fn a_nonce_is_accepted_once_until_it_expires() {
    let (_tmp, store) = store().await;
    let id = Uuid::from_u128(7);
    assert!(store.remember_nonce(id, "n-1", T0).await.expect("ok"));
    assert!(!store.remember_nonce(id, "n-1", T0).await.expect("ok"));
    assert!(store
        .remember_nonce(Uuid::from_u128(8), "n-1", T0)
        .await
        .expect("ok"));
    assert_eq!(store.prune_nonces(T0 + 1).await.expect("ok"), 2);
    assert!(store
        .remember_nonce(id, "n-1", T0 + 60_000)
        .await
        .expect("ok"));
}

#[tokio::test]
async fn deleting_a_node_removes_its_history() {
    let (_tmp, store) = store().await;
    let id = Uuid::from_u128(7);
    store.register(&node("k1"), T0).await.expect("ok");
    store
        .record_heartbeat(id, &beat("g"), T0, keep(10))
        .await
        .expect("ok");
    assert!(store
        .remember_nonce(id, "before-deletion", T0 + 60_000)
        .await
        .expect("ok"));
    assert!(store.delete_node(id, T0).await.expect("ok"));
    assert!(!store.delete_node(id, T0).await.expect("ok"));
    assert!(
        !store
            .remember_nonce(id, "before-deletion", T0 + 60_000)
            .await
            .expect("ok"),
        "a request from before the deletion stays a replay"
    );
    assert!(store
        .heartbeats_page(id, None, 10)
        .await
        .expect("ok")
        .is_empty());
    assert!(
        store.is_tombstoned(id).await.expect("ok"),
        "a tombstone stays"
    );
    assert_eq!(
        store.register(&node("k2"), T0).await.expect("ok"),
        Registered::Created
    );
    assert!(
        !store.is_tombstoned(id).await.expect("ok"),
        "registered again (admitted by a token): no longer deleted"
    );
}

#[tokio::test]
async fn history_is_bounded_by_bytes_too_keeping_the_newest() {
    let (_tmp, store) = store().await;
    let id = Uuid::from_u128(7);
    store.register(&node("k1"), T0).await.expect("ok");
    let sized = |i: i64| HeartbeatRequest {
        status: serde_json::json!({"pad": "x".repeat(990), "i": i}),
        ..HeartbeatRequest::default()
    };
    let size = u64::try_from(sized(1).status.to_string().len()).expect("fits");
    let retain = Retention {
        count: 1000,
        bytes: 3 * size + 10,
    };
    for i in 1..=10 {
        store
            .record_heartbeat(id, &sized(i), T0 + i, retain)
            .await
            .expect("ok");
    }
    let seqs: Vec<u64> = store
        .heartbeats_page(id, None, 100)
        .await
        .expect("ok")
        .iter()
        .map(|h| h.seq)
        .collect();
    assert_eq!(seqs, [10, 9, 8], "three statuses fit in the budget");
    let tiny = Retention {
        count: 1000,
        bytes: 1,
    };
    store
        .record_heartbeat(id, &sized(11), T0 + 11, tiny)
        .await
        .expect("ok");
    let kept = store.heartbeats_page(id, None, 100).await.expect("ok");
    assert_eq!(kept.len(), 1, "the newest is always kept");
    assert_eq!(kept[0].seq, 11);
}

#[tokio::test]
async fn a_join_token_is_used_up_once_and_not_after_expiry() {
    let (_tmp, store) = store().await;
    let token = JoinToken::generate();
    let stored = StoredToken {
        id: token.id.clone(),
        secret_sha256: token.secret_sha256(),
        node_id: Some(Uuid::from_u128(9)),
        uses_total: 2,
        uses_left: 2,
        created_at_ms: T0,
        expires_at_ms: T0 + 1000,
    };
    store.insert_join_token(&stored).await.expect("ok");
    assert_eq!(
        store.join_token(&token.id).await.expect("ok"),
        Some(stored.clone())
    );
    assert!(
        !store
            .use_join_token(&token.id, T0 + 1000)
            .await
            .expect("ok"),
        "expired"
    );
    assert!(store.use_join_token(&token.id, T0).await.expect("ok"));
    assert!(store.use_join_token(&token.id, T0).await.expect("ok"));
    assert!(
        !store.use_join_token(&token.id, T0).await.expect("ok"),
        "used up"
    );
    let left = store
        .join_token(&token.id)
        .await
        .expect("ok")
        .expect("kept");
    assert_eq!(left.uses_left, 0);
    assert!(store.delete_join_token(&token.id).await.expect("ok"));
    assert!(!store.delete_join_token(&token.id).await.expect("ok"));
    assert_eq!(store.join_token(&token.id).await.expect("ok"), None);
}

#[tokio::test]
async fn pages_walk_every_node_once_and_filter_by_market() {
    let (_tmp, store) = store().await;
    for i in 0..7u128 {
        let mut new = node(&format!("k{i}"));
        new.node_id = Uuid::from_u128(100 + i);
        new.market = if i % 2 == 0 { "cpu" } else { "h100" }.into();
        store.register(&new, T0).await.expect("ok");
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut page = store.nodes_page(None, None, after, 3).await.expect("ok");
        let more = page.len() > 3;
        page.truncate(3);
        after = page.last().map(|n| n.node_id);
        seen.extend(page.into_iter().map(|n| n.node_id));
        if !more {
            break;
        }
    }
    let all: Vec<Uuid> = (0..7u128).map(|i| Uuid::from_u128(100 + i)).collect();
    assert_eq!(seen, all);
    let h100 = store
        .nodes_page(Some("h100"), None, None, 10)
        .await
        .expect("ok");
    assert_eq!(h100.len(), 3);
    let offline = store
        .nodes_page(None, Some(NodeState::Offline), None, 10)
        .await
        .expect("ok");
    assert!(offline.is_empty(), "every node just registered is online");
    let online = store
        .nodes_page(Some("cpu"), Some(NodeState::Online), None, 10)
        .await
        .expect("ok");
    assert_eq!(online.len(), 4);
    let markets = store.markets_page(None, 10).await.expect("ok");
    let counts: Vec<(&str, u64, u64)> = markets
        .iter()
        .map(|m| (m.market.as_str(), m.online, m.total))
        .collect();
    assert_eq!(counts, [("cpu", 4, 4), ("h100", 3, 3)]);
    let rest = store.markets_page(Some("cpu"), 10).await.expect("ok");
    assert_eq!(rest.len(), 1);
}

#[tokio::test]
async fn an_in_memory_database_works_for_experiments() {
    let store = Store::connect("sqlite::memory:").await.expect("connects");
    store.register(&node("k1"), T0).await.expect("ok");
    assert_eq!(
        store
            .nodes_page(None, None, None, 10)
            .await
            .expect("ok")
            .len(),
        1
    );
}

#[test]
fn urls_are_redacted_and_checked() {
    assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    for url in ["mysql://h/db", "sqlite://", "file.db"] {
        let err = rt.block_on(Store::connect(url)).expect_err(url);
        assert!(
            matches!(err, StoreError::UnsupportedUrl { .. }),
            "{url}: {err}"
        );
    }
}

/// The number `pragma` answers on each of the pool's four connections at
/// once (every pooled connection, not only the first, runs the pragmas).
async fn pragma_on_every_connection(store: &Store, pragma: &'static str) -> Vec<i64> {
    let mut held = Vec::new();
    let mut values = Vec::new();
    for _ in 0..4 {
        let mut conn = store.pool.acquire().await.expect("a connection");
        let row = sqlx::query(pragma)
            .fetch_one(&mut *conn)
            .await
            .expect("pragma");
        values.push(row.try_get::<i64, _>(0).expect("a number"));
        held.push(conn);
    }
    values
}

#[tokio::test]
async fn sqlite_syncs_every_commit_unless_the_url_says_normal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("db.sqlite");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connects");
    assert_eq!(
        pragma_on_every_connection(&store, "PRAGMA synchronous").await,
        [2; 4],
        "FULL"
    );
    store.close().await;
    let url = format!("sqlite://{}?synchronous=normal", path.display());
    let store = Store::connect(&url).await.expect("connects");
    assert_eq!(
        pragma_on_every_connection(&store, "PRAGMA synchronous").await,
        [1; 4],
        "NORMAL"
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_commits_in_wal_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
    let store = Store::connect(&url).await.expect("connects");
    assert_eq!(
        pragma_on_every_connection(&store, "PRAGMA wal_autocheckpoint").await,
        [0; 4],
        "checkpoints are the checkpoint task's"
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    let id = Uuid::from_u128(7);
    store.register(&node("k1"), T0).await.expect("ok");
    store
        .record_heartbeat(id, &beat("g1"), T0, keep(10))
        .await
        .expect("ok");
    assert!(store
        .remember_nonce(id, "n-1", T0 + 60_000)
        .await
        .expect("ok"));
    store.close().await;

    let store = Store::connect(&url).await.expect("reopens");
    assert_eq!(
        store.heartbeats_page(id, None, 10).await.expect("ok").len(),
        1
    );
    assert!(
        !store
            .remember_nonce(id, "n-1", T0 + 60_000)
            .await
            .expect("ok"),
        "a nonce outlives a restart"
    );
}

#[tokio::test]
async fn concurrent_heartbeats_on_sqlite_all_commit_in_turn() {
    let (_tmp, store) = store().await;
    let id = Uuid::from_u128(7);
    store.register(&node("k1"), T0).await.expect("ok");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.spawn(async move {
            assert!(store
                .remember_nonce(id, &format!("n-{i}"), T0 + 60_000)
                .await
                .expect("nonce"));
            store
                .record_heartbeat(id, &beat(&format!("g{i}")), T0 + i, keep(1000))
                .await
                .expect("heartbeat")
        });
    }
    let all = tokio::time::timeout(std::time::Duration::from_secs(30), tasks.join_all())
        .await
        .expect("64 writers finish within 30 s");
    assert!(all.iter().all(|before| before.is_some()));
    let seqs: Vec<u64> = store
        .heartbeats_page(id, None, 1000)
        .await
        .expect("ok")
        .iter()
        .map(|h| h.seq)
        .collect();
    assert_eq!(seqs, (1..=64).rev().collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_heartbeats_power_is_stored_in_its_status_document() {
    let (_tmp, store) = store().await;
    let id = Uuid::from_u128(7);
    store.register(&node("k1"), T0).await.expect("ok");
    let power = crate::coordinator::nodes::api::PowerReport {
        source: "solar".into(),
        policy: "solar-only".into(),
        draw_watts: 120.0,
        draw_measured_by: "estimate".into(),
        production_watts: Some(900.0),
        production_source: Some("model".into()),
        production_ok: Some(true),
        surplus_watts: Some(780.0),
    };
    let with_power = HeartbeatRequest {
        power: Some(power),
        ..beat("g1")
    };
    store
        .record_heartbeat(id, &with_power, T0, keep(10))
        .await
        .expect("ok");
    // An older agent's heartbeat without power is stored as sent.
    store
        .record_heartbeat(id, &beat("g2"), T0 + 1, keep(10))
        .await
        .expect("ok");
    let page = store.heartbeats_page(id, None, 10).await.expect("ok");
    let statuses: Vec<&serde_json::Value> = page.iter().map(|h| &h.status).collect();
    assert_eq!(statuses[0], &serde_json::json!({"g": "g2"}));
    assert_eq!(statuses[1]["g"], "g1");
    assert_eq!(statuses[1]["power"]["surplus_watts"], 780.0);
    assert_eq!(statuses[1]["power"]["production_source"], "model");
}
