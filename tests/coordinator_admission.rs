//! Admission and resource bounds of the coordinator (issue 9: B3, B7, B8),
//! in-process on SQLite and (when `GARAGE_TEST_POSTGRES_URL` is set)
//! PostgreSQL: join tokens (missing, malformed, used up, expired, bound to
//! another id, revoked), tombstones of deleted ids, the per-address limit
//! of open registration, field size caps, pagination of every list, and
//! the throttle on failed admin attempts.

#[macro_use]
mod coordinator_support;

use std::collections::BTreeSet;
use std::time::Duration;

use coordinator_support::*;
use garage::coordinator::api::RegisterRequest;
use garage::coordinator::nodes::admission_rules::{
    RegistrationMode, OPEN_REGISTRATIONS_PER_WINDOW,
};
use garage::identity::{signing, NodeIdentity};
use reqwest::Method;
use serde_json::{json, Value};

on_both_databases!(
    tokens_sqlite,
    tokens_postgres,
    join_tokens_admit_new_nodes_only
);
on_both_databases!(
    tombstone_sqlite,
    tombstone_postgres,
    a_deleted_id_comes_back_only_with_a_token_for_it
);
on_both_databases!(
    open_sqlite,
    open_postgres,
    open_registration_is_limited_per_address
);
on_both_databases!(
    sizes_sqlite,
    sizes_postgres,
    oversize_fields_are_refused_by_name
);
on_both_databases!(pages_sqlite, pages_postgres, every_list_walks_in_pages);
on_both_databases!(
    history_sqlite,
    history_postgres,
    heartbeat_history_is_bounded_by_bytes
);
on_both_databases!(
    throttle_sqlite,
    throttle_postgres,
    failed_admin_attempts_are_throttled
);

async fn start(tmp: &std::path::Path, db: &Db, mode: RegistrationMode) -> Coordinator {
    let mut config = Coordinator::config(&tmp.join("coordinator"), db);
    config.registration = mode;
    Coordinator::start_with(config).await
}

fn refusal_code<T: std::fmt::Debug>(
    result: Result<T, garage::coordinator::ClientError>,
) -> (String, String) {
    match result {
        Ok(answer) => panic!("admitted: {answer:?}"),
        Err(garage::coordinator::ClientError::Refused {
            status,
            code,
            message,
            ..
        }) => (format!("{status} {code}"), message),
        Err(other) => panic!("not a refusal: {other}"),
    }
}

async fn join_tokens_admit_new_nodes_only(tmp: &std::path::Path, db: Db) {
    let coordinator = start(tmp, &db, RegistrationMode::Token).await;
    let a = TestNode::new(&tmp.join("a"), &coordinator);
    let b = TestNode::new(&tmp.join("b"), &coordinator);

    let (code, message) = refusal_code(a.register_with(None).await);
    assert_eq!(code, "401 join_token_required");
    assert!(
        message.contains("garage coordinator token create")
            && message.contains("--join-token-file"),
        "{message}"
    );
    let (code, _) = refusal_code(a.register_with(Some("gjt_nope")).await);
    assert_eq!(code, "401 invalid_join_token");

    let once = coordinator.join_token(json!({})).await;
    assert!(once.starts_with("gjt_"), "{once}");
    assert!(
        a.register_with(Some(&once))
            .await
            .expect("admitted")
            .created
    );
    // Re-registering the bound key (what the agent does at every start) needs no token.
    assert!(!a.register_with(None).await.expect("re-registers").created);
    a.heartbeat("g1").await;

    let (code, message) = refusal_code(b.register_with(Some(&once)).await);
    assert_eq!(code, "401 join_token_used_up");
    assert!(message.contains("1 registration"), "{message}");

    let for_a = coordinator
        .join_token(json!({"node_id": a.id(), "uses": 5}))
        .await;
    let (code, message) = refusal_code(b.register_with(Some(&for_a)).await);
    assert_eq!(code, "403 join_token_wrong_node");
    assert!(message.contains(&a.id().to_string()), "{message}");

    let brief = coordinator.join_token(json!({"ttl_seconds": 1})).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (code, _) = refusal_code(b.register_with(Some(&brief)).await);
    assert_eq!(code, "401 join_token_expired");

    let revoked = coordinator.join_token(json!({})).await;
    let revoked_id = revoked
        .strip_prefix("gjt_")
        .and_then(|rest| rest.split('.').next())
        .expect("id");
    let (status, _) = coordinator
        .admin_send(
            Method::DELETE,
            &format!("/api/join-tokens/{revoked_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (code, _) = refusal_code(b.register_with(Some(&revoked)).await);
    assert_eq!(code, "401 invalid_join_token");

    // A secret that does not match its id is as good as none.
    let forged = format!("{}{}", &for_a[..for_a.len() - 4], "0000");
    let (code, _) = refusal_code(b.register_with(Some(&forged)).await);
    assert_eq!(code, "401 invalid_join_token");

    // The list shows states and never secrets.
    let (status, list) = coordinator
        .admin_send(Method::GET, "/api/join-tokens", None)
        .await;
    assert_eq!(status, 200, "{list}");
    let states: BTreeSet<&str> = list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["state"].as_str().expect("state"))
        .collect();
    assert_eq!(
        states,
        BTreeSet::from(["active", "expired", "used_up"]),
        "{list}"
    );
    let text = list.to_string();
    for secret in [&once, &for_a, &brief] {
        let secret = secret.split('.').nth(1).expect("secret");
        assert!(!text.contains(secret), "a secret is listed: {list}");
    }
    let (status, _) = reqwest::Client::new()
        .get(format!("{}/api/join-tokens", coordinator.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("GET");
    assert_eq!(status, 401, "the list is for admins");
    let metrics = coordinator.metrics().await;
    assert!(
        metrics.contains("garage_coordinator_registrations_total{result=\"not_admitted\"} 7"),
        "{metrics}"
    );
    coordinator.stop().await;
}

async fn a_deleted_id_comes_back_only_with_a_token_for_it(tmp: &std::path::Path, db: Db) {
    // Open mode: even there, a deleted id needs its own token.
    let coordinator = start(tmp, &db, RegistrationMode::Open).await;
    let node = TestNode::new(&tmp.join("node"), &coordinator);
    assert!(node.register_with(None).await.expect("open").created);
    let (status, _) = coordinator
        .admin_send(Method::DELETE, &format!("/api/nodes/{}", node.id()), None)
        .await;
    assert_eq!(status, 204);

    // Another key claiming the deleted id (the lock-out of issue 9 B7): an
    // identity with the same id and its own key, signing correctly.
    let twin = twin_of(&tmp.join("twin"), node.id(), &coordinator);
    let open_token = coordinator.join_token(json!({"uses": 10})).await;
    for token in [None, Some(open_token.as_str())] {
        let (code, _) = refusal_code(twin.register_with(token).await);
        assert_eq!(code, "403 node_deleted");
    }
    for token in [None, Some(open_token.as_str())] {
        let (code, message) = refusal_code(node.register_with(token).await);
        assert_eq!(code, "403 node_deleted");
        assert!(
            message.contains(&format!("--node-id {}", node.id())),
            "{message}"
        );
    }
    let own = coordinator.join_token(json!({"node_id": node.id()})).await;
    assert!(node.register_with(Some(&own)).await.expect("back").created);
    node.heartbeat("back").await;
    assert!(
        !node
            .register_with(None)
            .await
            .expect("no longer deleted")
            .created
    );
    coordinator.stop().await;
}

/// An identity in `dir` with the id `node_id` and a key of its own.
fn twin_of(dir: &std::path::Path, node_id: uuid::Uuid, coordinator: &Api) -> TestNode {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::write(dir.join(garage::identity::ID_FILE), format!("{node_id}\n")).expect("id");
    let key = dir.join(garage::identity::KEY_FILE);
    std::fs::write(&key, hex::encode(rand::random::<[u8; 32]>())).expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    TestNode::new(dir, coordinator)
}

async fn open_registration_is_limited_per_address(tmp: &std::path::Path, db: Db) {
    let coordinator = start(tmp, &db, RegistrationMode::Open).await;
    let nodes: Vec<TestNode> = (0..=OPEN_REGISTRATIONS_PER_WINDOW)
        .map(|i| TestNode::new(&tmp.join(format!("n{i}")), &coordinator))
        .collect();
    for node in &nodes[..OPEN_REGISTRATIONS_PER_WINDOW] {
        assert!(
            node.register_with(None)
                .await
                .expect("within the limit")
                .created
        );
    }
    let last = &nodes[OPEN_REGISTRATIONS_PER_WINDOW];
    let body = serde_json::to_vec(&last.registration(None)).expect("json");
    let path = "/api/nodes/register";
    let identity = NodeIdentity::load_or_create(&last.dir).expect("identity");
    let audience = coordinator.coordinator_id().await;
    let signed = identity.sign_request(
        audience,
        "POST",
        path,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", coordinator.base))
        .header("content-type", "application/json");
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.expect("POST");
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let answer: Value = response.json().await.expect("json");
    assert_error(429, &answer, 429, "registration_rate_limited");
    // Known nodes re-register freely; a join token skips the limit.
    assert!(!nodes[0].register_with(None).await.expect("known").created);
    let token = coordinator.join_token(json!({})).await;
    assert!(
        last.register_with(Some(&token))
            .await
            .expect("by token")
            .created
    );
    coordinator.stop().await;
}

/// Makes one field of a registration too large.
type Grow<'a> = Box<dyn Fn(&mut RegisterRequest) + 'a>;

async fn oversize_fields_are_refused_by_name(tmp: &std::path::Path, db: Db) {
    let coordinator = start(tmp, &db, RegistrationMode::Open).await;
    let node = TestNode::new(&tmp.join("node"), &coordinator);
    let pad = "x".repeat(64 * 1024);
    let cases: [(&str, Grow<'_>); 3] = [
        (
            "benchmark",
            Box::new(|r| r.benchmark = Some(json!({"pad": pad.clone()}))),
        ),
        (
            "gpu_info",
            Box::new(|r| {
                r.gpu_info = vec![garage::coordinator::api::GpuInfo {
                    name: pad.clone(),
                    memory_total_bytes: 0,
                    uuid: None,
                }]
            }),
        ),
        (
            "location",
            Box::new(|r| r.location.region = Some(pad.clone())),
        ),
    ];
    for (field, grow) in &cases {
        let mut request = node.registration(None);
        grow(&mut request);
        let err = node.client.register(&request).await.expect_err(field);
        let (code, message) = refusal_code::<()>(Err(err));
        assert_eq!(code, "413 field_too_large", "{field}");
        assert!(
            message.contains(&format!("`{field}`")),
            "{field}: {message}"
        );
    }
    node.register(None).await;
    let huge = garage::coordinator::api::HeartbeatRequest {
        status: json!({"pad": pad}),
        ..Default::default()
    };
    let (code, message) = refusal_code(node.client.heartbeat(&huge).await);
    assert_eq!(code, "413 field_too_large");
    assert!(message.contains("`status`"), "{message}");
    coordinator.stop().await;
}

/// Walks `path` with `limit`, returning every item of `field` in order.
async fn walk(api: &Api, path: &str, field: &str, limit: u32, admin: bool) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    let separator = if path.contains('?') { '&' } else { '?' };
    for _ in 0..100 {
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(token) = &next {
            url.push_str(&format!("&continue={token}"));
        }
        let (status, page) = if admin {
            api.admin_get(&url).await
        } else {
            api.get(&url).await
        };
        assert_eq!(status, 200, "{url}: {page}");
        let got = page[field].as_array().expect("items").clone();
        assert!(got.len() <= limit as usize, "{page}");
        items.extend(got);
        match page["continue"].as_str() {
            Some(token) => next = Some(token.to_string()),
            None => return items,
        }
    }
    panic!("{path}: more than 100 pages");
}

async fn every_list_walks_in_pages(tmp: &std::path::Path, db: Db) {
    let coordinator = start(tmp, &db, RegistrationMode::Open).await;
    let gpus = [
        None,
        Some("NVIDIA H100 80GB HBM3"),
        Some("NVIDIA GeForce RTX 4090"),
    ];
    let mut ids = Vec::new();
    for i in 0..7 {
        let node = TestNode::new(&tmp.join(format!("n{i}")), &coordinator);
        node.register(gpus[i % 3]).await;
        ids.push(node.id().to_string());
        if i == 0 {
            for g in 0..5 {
                node.heartbeat(&format!("g{g}")).await;
            }
        }
    }
    ids.sort();
    let listed: Vec<String> = walk(&coordinator, "/api/nodes", "nodes", 3, false)
        .await
        .iter()
        .map(|n| n["node_id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(listed, ids, "every node once, by id");
    let h100 = walk(&coordinator, "/api/nodes?market=h100", "nodes", 1, false).await;
    assert_eq!(h100.len(), 2);
    assert!(h100.iter().all(|n| n["market"] == "h100"));
    let markets: Vec<(String, u64)> = walk(&coordinator, "/api/markets", "markets", 1, false)
        .await
        .iter()
        .map(|m| {
            (
                m["market"].as_str().expect("name").to_string(),
                m["total"].as_u64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        markets,
        [
            ("cpu".to_string(), 3),
            ("h100".to_string(), 2),
            ("rtx-4090".to_string(), 2)
        ]
    );
    let first = &tmp.join("n0");
    let node = TestNode::new(first, &coordinator);
    let seqs: Vec<u64> = walk(
        &coordinator,
        &format!("/api/nodes/{}/heartbeats", node.id()),
        "heartbeats",
        2,
        true,
    )
    .await
    .iter()
    .map(|h| h["seq"].as_u64().expect("seq"))
    .collect();
    assert_eq!(seqs, [5, 4, 3, 2, 1]);
    for _ in 0..3 {
        coordinator.join_token(json!({})).await;
    }
    let tokens = walk(&coordinator, "/api/join-tokens", "tokens", 2, true).await;
    let token_ids: BTreeSet<&str> = tokens
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!((tokens.len(), token_ids.len()), (3, 3), "no duplicates");

    for bad in ["/api/nodes?limit=0", "/api/nodes?limit=501"] {
        let (status, answer) = coordinator.get(bad).await;
        assert_error(status, &answer, 400, "invalid_limit");
    }
    let (_, page) = coordinator.get("/api/markets?limit=1").await;
    let foreign = page["continue"].as_str().expect("more markets");
    let (status, answer) = coordinator
        .get(&format!("/api/nodes?continue={foreign}"))
        .await;
    assert_error(status, &answer, 400, "invalid_continue");
    coordinator.stop().await;
}

async fn heartbeat_history_is_bounded_by_bytes(tmp: &std::path::Path, db: Db) {
    let mut config = Coordinator::config(&tmp.join("coordinator"), &db);
    config.heartbeat_history_bytes = 64 * 1024;
    let coordinator = Coordinator::start_with(config).await;
    let node = TestNode::new(&tmp.join("node"), &coordinator);
    node.register(None).await;
    for i in 0..4 {
        let beat = garage::coordinator::api::HeartbeatRequest {
            status: json!({"pad": "x".repeat(30_000), "i": i}),
            ..Default::default()
        };
        node.client.heartbeat(&beat).await.expect("accepted");
    }
    let (status, history) = coordinator
        .admin_get(&format!("/api/nodes/{}/heartbeats", node.id()))
        .await;
    assert_eq!(status, 200);
    let seqs: Vec<u64> = history["heartbeats"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [4, 3], "two 30 kB statuses fit in 64 KiB");
    coordinator.stop().await;
}

async fn failed_admin_attempts_are_throttled(tmp: &std::path::Path, db: Db) {
    let coordinator = start(tmp, &db, RegistrationMode::Token).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/join-tokens", coordinator.base);
    for _ in 0..garage::coordinator::http::admin::FAILURES_ALLOWED {
        let response = http
            .get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 401);
    }
    let response = http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.status().as_u16(),
        429,
        "locked out, even with the token"
    );
    assert!(response.headers().get("retry-after").is_some());
    let answer: Value = response.json().await.expect("json");
    assert_error(429, &answer, 429, "admin_throttled");
    assert_eq!(coordinator.rejections("admin_token").await, 10);
    let metrics = coordinator.metrics().await;
    assert!(
        metrics.contains("garage_coordinator_admin_throttled_total 1"),
        "{metrics}"
    );
    coordinator.stop().await;
}
