//! The coordinator over HTTP, in-process on 127.0.0.1:0, on SQLite and (when
//! `GARAGE_TEST_POSTGRES_URL` is set) PostgreSQL: nodes register with their
//! own identities, heartbeat, go offline and come back; refused requests
//! get the right status and are counted; nodes and history survive a
//! restart; bodies are limited and checked.

#[macro_use]
mod coordinator_support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use coordinator_support::*;
use garage::identity::{signing, NodeIdentity, KEY_FILE};

on_both_databases!(
    three_nodes_sqlite,
    three_nodes_postgres,
    three_nodes_go_offline_come_back_and_survive_a_restart
);
on_both_databases!(
    refusals_sqlite,
    refusals_postgres,
    refused_requests_are_answered_and_counted
);
on_both_databases!(
    registration_sqlite,
    registration_postgres,
    registration_is_idempotent_and_binds_the_key
);

async fn three_nodes_go_offline_come_back_and_survive_a_restart(tmp: &std::path::Path, db: Db) {
    let coordinator = Coordinator::start(&tmp.join("coordinator"), &db).await;
    let nodes: Vec<TestNode> = (0..3)
        .map(|i| TestNode::new(&tmp.join(format!("node-{i}")), &coordinator))
        .collect();
    for node in &nodes {
        let mode = std::fs::metadata(node.dir.join(KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode");
        assert_eq!(
            std::fs::metadata(&node.dir)
                .expect("dir")
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    let gpus = [
        Some("NVIDIA GeForce RTX 4090"),
        Some("NVIDIA H100 80GB HBM3"),
        None,
    ];
    // When the last node (the one that will stop) was last heard from.
    let mut last_heard = std::time::Instant::now();
    for (node, gpu) in nodes.iter().zip(gpus) {
        let registered = node.register(gpu).await;
        assert!(registered.created);
        assert_eq!(registered.heartbeat_interval_seconds, 1);
        let answer = node.heartbeat("gen-1").await;
        last_heard = std::time::Instant::now();
        assert_eq!(answer.heartbeat_interval_seconds, 1);
    }
    let (status, list) = coordinator.get("/api/nodes").await;
    assert_eq!(status, 200);
    let listed = list["nodes"].as_array().expect("nodes");
    assert_eq!(listed.len(), 3, "{list}");
    assert!(listed.iter().all(|n| n["state"] == "online"), "{list}");
    let (_, markets) = coordinator.get("/api/markets").await;
    let names: Vec<&str> = markets["markets"]
        .as_array()
        .expect("markets")
        .iter()
        .map(|m| m["market"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["cpu", "h100", "rtx-4090"], "{markets}");
    let (_, one) = coordinator
        .get(&format!("/api/nodes/{}", nodes[0].id()))
        .await;
    assert_eq!(one["location"]["region"], "SE3", "{one}");
    assert_eq!(
        one["gpu_info"][0]["name"], "NVIDIA GeForce RTX 4090",
        "{one}"
    );
    assert_eq!(one["benchmark"]["tokens_per_second"], 42.5, "{one}");
    assert_eq!(one["observed_generation"], "gen-1", "{one}");

    // Nodes 0 and 1 keep their heartbeats; node 2 stops.
    let silent = &nodes[2];
    let mut offline_after = None;
    while last_heard.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for node in &nodes[..2] {
            node.heartbeat("gen-2").await;
        }
        if coordinator.node_state(silent).await == "offline" {
            offline_after = Some(last_heard.elapsed());
            break;
        }
    }
    let offline_after = offline_after.expect("the silent node went offline within 8 s");
    // Marked after 3 missed intervals of 1 s (counted from when the
    // coordinator got the heartbeat, a little before `last_heard`), found by
    // the next sweep (every 250 ms), seen by the test's next poll.
    assert!(
        offline_after >= Duration::from_millis(2900) && offline_after < Duration::from_secs(5),
        "offline after {offline_after:?}"
    );
    for node in &nodes[..2] {
        assert_eq!(coordinator.node_state(node).await, "online");
    }
    let metrics = coordinator.metrics().await;
    assert!(
        metrics.contains("garage_coordinator_nodes{state=\"offline\"} 1"),
        "{metrics}"
    );

    // It comes back with the same identity.
    let back = TestNode::new(&silent.dir, &coordinator);
    assert_eq!(back.id(), silent.id());
    back.heartbeat("gen-3").await;
    coordinator
        .wait_state(&back, "online", Duration::from_secs(2))
        .await;
    let (_, history) = coordinator
        .admin_get(&format!("/api/nodes/{}/heartbeats", back.id()))
        .await;
    let before_restart = history["heartbeats"].as_array().expect("history").clone();
    assert_eq!(before_restart.len(), 2, "{history}");
    assert_eq!(before_restart[0]["observed_generation"], "gen-3");
    assert_eq!(before_restart[0]["seq"], 2);

    // Restart on the same database: nodes and history are still there.
    let mut config = coordinator.config.clone();
    config.heartbeat_history = 2;
    coordinator.stop().await;
    let coordinator = Coordinator::start_with(config).await;
    let (_, list) = coordinator.get("/api/nodes").await;
    assert_eq!(list["nodes"].as_array().expect("nodes").len(), 3, "{list}");
    let (_, history) = coordinator
        .admin_get(&format!("/api/nodes/{}/heartbeats", back.id()))
        .await;
    assert_eq!(
        history["heartbeats"].as_array().expect("history"),
        &before_restart
    );
    let again = TestNode::new(&silent.dir, &coordinator);
    again.heartbeat("gen-4").await;
    let (_, one) = coordinator.get(&format!("/api/nodes/{}", again.id())).await;
    assert_eq!(one["heartbeats"], 3, "{one}");
    // Now kept: the newest two (--heartbeat-history 2).
    let (_, history) = coordinator
        .admin_get(&format!("/api/nodes/{}/heartbeats", again.id()))
        .await;
    let seqs: Vec<&serde_json::Value> = history["heartbeats"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| &h["seq"])
        .collect();
    assert_eq!(seqs, [3, 2], "{history}");
    coordinator.stop().await;
}

async fn refused_requests_are_answered_and_counted(tmp: &std::path::Path, db: Db) {
    let coordinator = Coordinator::start(&tmp.join("coordinator"), &db).await;
    let a = TestNode::new(&tmp.join("a"), &coordinator);
    let b = TestNode::new(&tmp.join("b"), &coordinator);
    a.register(None).await;
    b.register(None).await;
    let a_key = NodeIdentity::load_or_create(&a.dir).expect("a");
    let b_key = NodeIdentity::load_or_create(&b.dir).expect("b");
    let path_a = format!("/api/nodes/{}/heartbeat", a.id());
    let path_b = format!("/api/nodes/{}/heartbeat", b.id());
    let body = br#"{"ready":true}"#.to_vec();
    let base = &coordinator.base;
    let audience = coordinator.coordinator_id().await;

    // Unsigned.
    let (status, answer) = send_raw(base, &path_a, None, body.clone()).await;
    assert_error(status, &answer, 401, "unsigned_request");
    assert_eq!(coordinator.rejections("unsigned").await, 1);

    // Forged: node B's key signing in node A's name.
    let mut forged = b_key.sign_request(
        audience,
        "POST",
        &path_a,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    forged.node_id = a.id();
    let (status, answer) = send_raw(base, &path_a, Some(&forged), body.clone()).await;
    assert_error(status, &answer, 401, "invalid_signature");
    // Tampered: a valid signature, another body.
    let signed = a_key.sign_request(
        audience,
        "POST",
        &path_a,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    let (status, answer) = send_raw(base, &path_a, Some(&signed), b"{}".to_vec()).await;
    assert_error(status, &answer, 401, "invalid_signature");
    assert_eq!(coordinator.rejections("bad_signature").await, 2);

    // Stale, both directions.
    for skew in [-120, 120] {
        let stale = a_key.sign_request(
            audience,
            "POST",
            &path_a,
            &body,
            now_secs() + skew,
            &signing::new_nonce(),
        );
        let (status, answer) = send_raw(base, &path_a, Some(&stale), body.clone()).await;
        assert_error(status, &answer, 401, "stale_request");
    }
    assert_eq!(coordinator.rejections("stale").await, 2);

    // Replayed: the first copy is accepted, the second refused.
    let signed = a_key.sign_request(
        audience,
        "POST",
        &path_a,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    let (status, answer) = send_raw(base, &path_a, Some(&signed), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = send_raw(base, &path_a, Some(&signed), body.clone()).await;
    assert_error(status, &answer, 401, "replayed_request");
    assert_eq!(coordinator.rejections("replayed").await, 1);

    // Cross-node: A signs, correctly, a heartbeat for B.
    let cross = a_key.sign_request(
        audience,
        "POST",
        &path_b,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    let (status, answer) = send_raw(base, &path_b, Some(&cross), body.clone()).await;
    assert_error(status, &answer, 403, "node_mismatch");
    assert_eq!(coordinator.rejections("cross_node").await, 1);

    // Unknown node.
    let stranger = NodeIdentity::load_or_create(&tmp.join("stranger")).expect("stranger");
    let path_s = format!("/api/nodes/{}/heartbeat", stranger.node_id());
    let signed = stranger.sign_request(
        audience,
        "POST",
        &path_s,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    let (status, answer) = send_raw(base, &path_s, Some(&signed), body.clone()).await;
    assert_error(status, &answer, 401, "unknown_node");
    assert_eq!(coordinator.rejections("unknown_node").await, 1);

    // Malformed signature header.
    let mut bad = a_key.sign_request(
        audience,
        "POST",
        &path_a,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    bad.signature = "zz".into();
    let (status, answer) = send_raw(base, &path_a, Some(&bad), body.clone()).await;
    assert_error(status, &answer, 401, "malformed_signature");
    assert_eq!(coordinator.rejections("malformed").await, 1);

    // Admin endpoints without the token.
    let (status, answer) = coordinator
        .get(&format!("/api/nodes/{}/heartbeats", a.id()))
        .await;
    assert_error(status, &answer, 401, "invalid_admin_token");
    assert_eq!(coordinator.rejections("admin_token").await, 1);

    // Oversize body: 413 with a JSON error.
    let huge = vec![b' '; 1024 * 1024 + 1];
    let signed = a_key.sign_request(
        audience,
        "POST",
        &path_a,
        &huge,
        now_secs(),
        &signing::new_nonce(),
    );
    let (status, answer) = send_raw(base, &path_a, Some(&signed), huge).await;
    assert_error(status, &answer, 413, "payload_too_large");

    // Malformed JSON: 400 naming the problem (signed correctly, so it gets that far).
    for (text, needle) in [
        (&b"{not json"[..], "key must be a string"),
        (&br#"{"ready":"yes"}"#[..], "ready"),
    ] {
        let signed = a_key.sign_request(
            audience,
            "POST",
            &path_a,
            text,
            now_secs(),
            &signing::new_nonce(),
        );
        let (status, answer) = send_raw(base, &path_a, Some(&signed), text.to_vec()).await;
        assert_error(status, &answer, 400, "invalid_json");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{message}");
    }
    let (status, answer) = send_raw(base, "/api/nodes/register", None, b"[]".to_vec()).await;
    assert_error(status, &answer, 401, "unsigned_request");
    let (status, answer) = coordinator.get("/api/nodes/not-a-uuid").await;
    assert_error(status, &answer, 400, "invalid_path");
    let (status, answer) = coordinator.get("/api/nope").await;
    assert_error(status, &answer, 404, "not_found");
    coordinator.stop().await;
}

async fn registration_is_idempotent_and_binds_the_key(tmp: &std::path::Path, db: Db) {
    let coordinator = Coordinator::start(&tmp.join("coordinator"), &db).await;
    let audience = coordinator.coordinator_id().await;
    let node = TestNode::new(&tmp.join("node"), &coordinator);
    assert!(node.register(None).await.created);
    let again = node.register(Some("NVIDIA GeForce RTX 4090")).await;
    assert!(!again.created);
    assert_eq!(again.market, "rtx-4090");
    let (_, list) = coordinator.get("/api/nodes").await;
    assert_eq!(list["nodes"].as_array().expect("nodes").len(), 1);

    // Another identity claiming this id. Changing the node header of its own
    // signature does not verify (the id is signed)...
    let impostor = NodeIdentity::load_or_create(&tmp.join("impostor")).expect("impostor");
    let request = serde_json::json!({
        "node_id": node.id(),
        "public_key": impostor.public_key_hex(),
    });
    let body = serde_json::to_vec(&request).expect("json");
    let path = "/api/nodes/register";
    let own = impostor.sign_request(
        audience,
        "POST",
        path,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    let mut relabelled = own.clone();
    relabelled.node_id = node.id();
    let (status, answer) = send_raw(&coordinator.base, path, Some(&relabelled), body.clone()).await;
    assert_error(status, &answer, 401, "invalid_signature");
    // ...and signing as itself a registration for another id is cross-node.
    let (status, answer) = send_raw(&coordinator.base, path, Some(&own), body).await;
    assert_error(status, &answer, 403, "node_mismatch");

    // A real key conflict: a second identity with the same id and its own key → 409.
    let twin = node.twin(&tmp.join("twin"), &coordinator);
    let request = twin
        .client
        .registration(Vec::new(), Default::default(), None);
    let err = twin.client.register(&request).await.expect_err("conflict");
    assert_eq!(err.code(), Some("key_conflict"), "{err}");
    let (_, one) = coordinator.get(&format!("/api/nodes/{}", node.id())).await;
    assert_eq!(one["public_key"], node.client.identity().public_key_hex());

    // An admin deletes the node; then the new key may register, with a
    // join token issued for this id (the id is tombstoned, issue 9 B7).
    let client = reqwest::Client::new();
    let url = format!("{}/api/nodes/{}", coordinator.base, node.id());
    let denied = client.delete(&url).send().await.expect("delete");
    assert_eq!(denied.status().as_u16(), 401);
    let deleted = client
        .delete(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status().as_u16(), 204);
    let token = coordinator
        .join_token(serde_json::json!({"node_id": node.id()}))
        .await;
    let mut request = request;
    request.join_token = Some(token);
    assert!(
        twin.client
            .register(&request)
            .await
            .expect("registers")
            .created
    );
    coordinator.stop().await;
}
