//! The dashboard over HTTP, on SQLite and PostgreSQL (issue 15): every page
//! answers HTML with its security headers; values are escaped (a node that
//! calls itself `<script>` is shown as text); admin-only data (jobs, logs,
//! heartbeats, balances, transfers) is shown only after signing in with
//! the admin token (or with it as a bearer token); a forged or tampered
//! session is nobody; sign-in returns only to paths on this site; lists
//! page; a node page's live stream sends a new heartbeat within 2 s.
//! The browser test (`dashboard_browser.rs`) drives the same pages in
//! Chromium.

#[macro_use]
mod coordinator_support;

use std::path::Path;
use std::time::{Duration, Instant};

use coordinator_support::jobs::hello_job;
use coordinator_support::*;
use futures::StreamExt;
use garage::coordinator::api::{HeartbeatRequest, Outcome};
use serde_json::json;

const HOSTILE_NAME: &str = "<script>alert('owned')</script>";

/// An HTTP client that neither follows redirects nor keeps cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(base: &str, path: &str, cookie: Option<&str>) -> Page {
    let mut request = browser().get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("GET reaches the coordinator");
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// Signs in with `token`; the answer's status, Location and cookie.
async fn sign_in(base: &str, token: &str, next: &str) -> (u16, String, Option<String>) {
    let response = browser()
        .post(format!("{base}/login"))
        .form(&[("token", token), ("next", next)])
        .send()
        .await
        .expect("POST /login");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let cookie = header("set-cookie").map(|c| c.split(';').next().unwrap_or_default().to_string());
    (
        response.status().as_u16(),
        header("location").unwrap_or_default(),
        cookie,
    )
}

async fn heartbeat_named(node: &TestNode, name: &str) {
    let request = HeartbeatRequest {
        observed_generation: Some("g1".into()),
        ready: Some(true),
        gpus: Vec::new(),
        status: json!({"node": name, "conditions": [{"type": "Ready", "status": "True"}]}),
        power: None,
        spec_revision: None,
    };
    node.client
        .heartbeat(&request)
        .await
        .expect("heartbeat accepted");
}

async fn dashboard(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("coordinator"), &db).await;
    let base = coordinator.base.clone();
    let hostile = TestNode::new(&dir.join("hostile"), &coordinator);
    hostile.register(None).await;
    heartbeat_named(&hostile, HOSTILE_NAME).await;
    // More than a page of nodes: past open registration's per-address
    // limit, so with a join token.
    let token = coordinator.join_token(json!({"uses": 60})).await;
    for i in 0..55 {
        let node = TestNode::new(&dir.join(format!("n{i}")), &coordinator);
        let mut request = node.registration(Some("NVIDIA GeForce RTX 4090"));
        request.join_token = Some(token.clone());
        node.client.register(&request).await.expect("registers");
    }
    let key = coordinator.account("dash").await;
    let job_id = coordinator
        .submit(
            &key,
            json!({"job": hello_job(), "placement": {"market": "cpu"}}),
        )
        .await;
    let lease = hostile.claim(5).await.expect("the cpu node gets the job");
    hostile
        .log(&lease, 1, "hello from the dashboard test\n")
        .await;
    hostile
        .complete(&lease, Outcome::Succeeded, json!({"exit": 0}))
        .await
        .expect("completed");
    let proposal = coordinator
        .opened(
            &key,
            json!({"kind": "signal", "title": "Paint the garage <b>green</b>",
                   "description": "A signal & nothing more", "voting_period_seconds": 600}),
        )
        .await;
    coordinator.vote(&key, &proposal, "yes").await;

    // Every page, to anyone.
    let node_path = format!("/nodes/{}", hostile.id());
    let pages = [
        "/".to_string(),
        "/nodes".into(),
        node_path.clone(),
        "/markets".into(),
        "/jobs".into(),
        format!("/jobs/{job_id}"),
        "/regions".into(),
        "/ledger".into(),
        "/governance".into(),
        format!("/governance/{proposal}"),
        "/login".into(),
    ];
    for path in &pages {
        let page = get(&base, path, None).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let header = |name| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with("text/html"), "{path}");
        assert!(
            header("content-security-policy").contains("script-src 'self'"),
            "{path}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert!(page.body.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path} shows the hostile name as markup"
        );
    }
    let node = get(&base, &node_path, None).await.body;
    assert!(
        node.contains("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;")
            || node.contains("&lt;script&gt;alert('owned')&lt;/script&gt;"),
        "{node}"
    );
    assert!(
        !node.contains("node-heartbeats"),
        "heartbeats are the admin's"
    );
    let list = get(&base, "/nodes", None).await.body;
    let cpu = get(&base, "/nodes?market=cpu&state=online", None)
        .await
        .body;
    assert!(
        cpu.contains("&lt;script&gt;"),
        "the list escapes too: {cpu}"
    );
    assert!(!cpu.contains("Next page"), "one cpu node");
    assert!(
        list.contains("Next page"),
        "56 nodes are more than one page"
    );
    let overview = get(&base, "/", None).await.body;
    assert!(overview.contains("rtx-4090"), "{overview}");
    let governance = get(&base, &format!("/governance/{proposal}"), None)
        .await
        .body;
    assert!(
        governance.contains("Paint the garage &lt;b&gt;green&lt;/b&gt;"),
        "{governance}"
    );
    let jobs = get(&base, "/jobs", None).await.body;
    assert!(!jobs.contains(&job_id), "the job list is the admin's");
    let job = get(&base, &format!("/jobs/{job_id}"), None).await.body;
    assert!(
        !job.contains("hello from the dashboard test"),
        "a job's log is the admin's"
    );
    let ledger = get(&base, "/ledger", None).await.body;
    assert!(ledger.contains("every invariant holds"), "{ledger}");
    assert!(
        !ledger.contains("transfers-table"),
        "transfers are the admin's"
    );
    for asset in [
        "/assets/dashboard.css",
        "/assets/dashboard.js",
        "/assets/favicon.svg",
        "/favicon.ico",
    ] {
        assert_eq!(get(&base, asset, None).await.status, 200, "{asset}");
    }
    let missing = get(&base, &format!("/nodes/{}", uuid::Uuid::new_v4()), None).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("there is no node"),
        "{}",
        missing.body
    );

    // The next page of nodes continues after the first.
    let next = list
        .split("href=\"")
        .find_map(|part| part.strip_prefix("/nodes?market=&amp;state=&amp;continue="))
        .and_then(|rest| rest.split('"').next())
        .expect("a next-page link");
    let second = get(&base, &format!("/nodes?continue={next}"), None)
        .await
        .body;
    assert!(
        second.contains("nodes-table") && !second.contains("Next page"),
        "{second}"
    );

    // Signing in.
    let (status, _, cookie) = sign_in(&base, "not-the-admin-token", "/jobs").await;
    assert_eq!((status, cookie), (401, None));
    let (status, location, cookie) = sign_in(&base, ADMIN_TOKEN, "//evil.example/x").await;
    assert_eq!((status, location.as_str()), (303, "/"), "no open redirect");
    let cookie = cookie.expect("a session cookie");
    let (_, location, _) = sign_in(&base, ADMIN_TOKEN, "/jobs?state=SUCCEEDED").await;
    assert_eq!(location, "/jobs?state=SUCCEEDED");
    let jobs = get(&base, "/jobs", Some(&cookie)).await.body;
    assert!(jobs.contains(&job_id), "{jobs}");
    let job = get(&base, &format!("/jobs/{job_id}"), Some(&cookie))
        .await
        .body;
    assert!(job.contains("hello from the dashboard test"), "{job}");
    assert!(job.contains("SUCCEEDED"));
    let node = get(&base, &node_path, Some(&cookie)).await.body;
    assert!(
        node.contains("node-heartbeats") && node.contains(&job_id),
        "{node}"
    );
    let ledger = get(&base, "/ledger", Some(&cookie)).await.body;
    assert!(ledger.contains("transfers-table") && ledger.contains("balances-table"));
    let bearer = browser()
        .get(format!("{base}/jobs"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        bearer.contains(&job_id),
        "the admin token as a bearer token works too"
    );
    let wrong = browser()
        .get(format!("{base}/jobs"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status().as_u16(), 401);
    let (name, value) = cookie.split_once('=').expect("name=value");
    // The tag's last hex digit changed (to another digit: a cookie whose
    // tag happens to end in 0 must not stay as it was).
    let (kept, last) = value.split_at(value.len() - 1);
    let other = if last == "0" { "1" } else { "0" };
    let tampered = format!("{name}={kept}{other}");
    let forged = get(&base, "/jobs", Some(&tampered)).await.body;
    assert!(!forged.contains(&job_id), "a tampered session is nobody");

    // A heartbeat reaches an open node page's live stream within 2 s.
    let response = browser()
        .get(format!("{base}/live{node_path}"))
        .send()
        .await
        .expect("live stream");
    assert_eq!(response.status().as_u16(), 200);
    let mut events = response.bytes_stream();
    let mut seen = String::new();
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.contains("node-summary") {
            let chunk = events.next().await.expect("more").expect("bytes");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(first.is_ok(), "no first event: {seen}");
    assert!(seen.contains("event: replace"), "{seen}");
    seen.clear();
    heartbeat_named(&hostile, HOSTILE_NAME).await;
    let sent = Instant::now();
    let update = tokio::time::timeout(Duration::from_secs(2), async {
        while !seen.contains("heartbeat-count\\\">2<") {
            let chunk = events.next().await.expect("more").expect("bytes");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(
        update.is_ok(),
        "the second heartbeat was not streamed within 2 s: {seen}"
    );
    eprintln!(
        "heartbeat streamed {:?} after it was acknowledged",
        sent.elapsed()
    );
    coordinator.stop().await;
}

on_both_databases!(
    dashboard_pages_on_sqlite,
    dashboard_pages_on_postgres,
    dashboard
);
