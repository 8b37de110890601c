//! The store's contract on SQLite (the PostgreSQL side runs through the
//! API tests): key binding, heartbeat retention, offline marking, nonces,
//! SQLite durability settings.

use super::*;

const T0: i64 = 1_800_000_000_000;

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
            .record_heartbeat(id, &beat("g0"), T0, 3)
            .await
            .expect("ok"),
        None
    );
    store.register(&node("k1"), T0).await.expect("ok");
    for i in 1..=5 {
        let before = store
            .record_heartbeat(id, &beat(&format!("g{i}")), T0 + i, 3)
            .await
            .expect("ok");
        assert_eq!(before, Some(NodeState::Online));
    }
    let kept = store.heartbeats(id, 100).await.expect("ok");
    let seqs: Vec<u64> = kept.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [5, 4, 3]);
    assert_eq!(kept[0].status, serde_json::json!({"g": "g5"}));
    assert_eq!(store.heartbeats(id, 1).await.expect("ok").len(), 1);
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
        .record_heartbeat(id, &beat("g"), T0 + 3, 10)
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
        .record_heartbeat(id, &beat("g"), T0, 10)
        .await
        .expect("ok");
    assert!(store
        .remember_nonce(id, "before-deletion", T0 + 60_000)
        .await
        .expect("ok"));
    assert!(store.delete_node(id).await.expect("ok"));
    assert!(!store.delete_node(id).await.expect("ok"));
    assert!(
        !store
            .remember_nonce(id, "before-deletion", T0 + 60_000)
            .await
            .expect("ok"),
        "a request from before the deletion stays a replay"
    );
    assert!(store.heartbeats(id, 10).await.expect("ok").is_empty());
    assert_eq!(
        store.register(&node("k2"), T0).await.expect("ok"),
        Registered::Created
    );
}

#[tokio::test]
async fn an_in_memory_database_works_for_experiments() {
    let store = Store::connect("sqlite::memory:").await.expect("connects");
    store.register(&node("k1"), T0).await.expect("ok");
    assert_eq!(store.nodes().await.expect("ok").len(), 1);
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

#[tokio::test]
async fn sqlite_commits_in_wal_with_normal_sync_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
    let store = Store::connect(&url).await.expect("connects");
    // Every pooled connection, not only the first, runs the pragma.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = store.pool.acquire().await.expect("a connection");
        let row = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .expect("pragma");
        assert_eq!(row.try_get::<i64, _>(0).expect("a number"), 1, "NORMAL");
        let row = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .expect("pragma");
        assert_eq!(row.try_get::<String, _>(0).expect("text"), "wal");
        held.push(conn);
    }
    drop(held);
    let id = Uuid::from_u128(7);
    store.register(&node("k1"), T0).await.expect("ok");
    store
        .record_heartbeat(id, &beat("g1"), T0, 10)
        .await
        .expect("ok");
    assert!(store
        .remember_nonce(id, "n-1", T0 + 60_000)
        .await
        .expect("ok"));
    store.close().await;

    let store = Store::connect(&url).await.expect("reopens");
    assert_eq!(store.heartbeats(id, 10).await.expect("ok").len(), 1);
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
                .record_heartbeat(id, &beat(&format!("g{i}")), T0 + i, 1000)
                .await
                .expect("heartbeat")
        });
    }
    let all = tokio::time::timeout(std::time::Duration::from_secs(30), tasks.join_all())
        .await
        .expect("64 writers finish within 30 s");
    assert!(all.iter().all(|before| before.is_some()));
    let seqs: Vec<u64> = store
        .heartbeats(id, 1000)
        .await
        .expect("ok")
        .iter()
        .map(|h| h.seq)
        .collect();
    assert_eq!(seqs, (1..=64).rev().collect::<Vec<u64>>());
}
