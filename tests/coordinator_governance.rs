//! Governance against the real coordinator binary, on SQLite and PostgreSQL:
//! a parameter proposal that passes changes the parameter (and the next
//! job's fee) at its stated time; one without quorum changes nothing;
//! late, powerless and forged votes are refused; voting power stays frozen
//! while balances move; a second vote replaces the first; a passed mint
//! mints once; two replicas tallying at once make one result (PostgreSQL);
//! the heartbeat interval and offline-after are read live.

#[macro_use]
mod coordinator_support;

use std::path::Path;
use std::time::{Duration, Instant};

use coordinator_support::binary::{database_url, Replica};
use coordinator_support::governance::{client_account, node_account, parameter_proposal};
use coordinator_support::jobs::hello_job;
use coordinator_support::*;
use garage::coordinator::api::Outcome;
use garage::identity::{signing, NodeIdentity};
use serde_json::{json, Value};

const FEE: &str = "networkFeeBasisPoints";
const TALLY_WITHIN: Duration = Duration::from_secs(15);

/// The scheduled changes of a parameter view whose source is `source`.
fn changes_from(view: &Value, source: &str) -> Vec<Value> {
    view["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["source"] == source)
        .cloned()
        .collect()
}

/// Submits a 10 s job as `key`, has `node` run and complete it, and
/// returns the job's settled cost.
async fn run_job(c: &Api, key: &str, node: &TestNode) -> Value {
    let job = json!({"job": hello_job(), "placement": {"market": "cpu"}, "timeout": "10s"});
    let id = c.submit(key, job).await;
    let lease = node.claim(10).await.expect("the job");
    node.complete(&lease, Outcome::Succeeded, json!({"exit_code": 0}))
        .await
        .expect("completed");
    let done = c.job(key, &id).await;
    assert_eq!(done["cost"]["state"], "settled", "{done:#}");
    done["cost"].clone()
}

async fn parameter_passes_and_takes_effect_at_its_time(dir: &Path, db: Db) {
    let replica = Replica::start(&dir.join("c"), &database_url(dir, &db)).await;
    let c = &replica.api;
    let (alice, bob) = (
        c.unfunded_account("alice").await,
        c.unfunded_account("bob").await,
    );
    let node = TestNode::new(&dir.join("node"), c);
    node.register(None).await;
    c.mint(&client_account(&alice), 7_000).await;
    c.mint(&client_account(&bob), 3_000).await;
    c.mint(&node_account(&node), 1_000).await;
    assert_eq!(c.parameter(FEE).await["value"], 500);

    let effective_ms = (now_secs() + 5) * 1000;
    let effective_at = garage::clock::rfc3339_millis(effective_ms);
    let mut proposal = parameter_proposal(FEE, 300, 2);
    proposal["effective_at"] = json!(effective_at);
    let id = c.opened(&alice, proposal).await;
    let open = c.proposal(&id).await;
    assert_eq!(open["state"], "open", "{open}");
    assert_eq!(open["total_power"], 11_000, "{open}");
    assert_eq!(open["voters"], 3, "{open}");
    assert_eq!(open["quorum_basis_points"], 2_000, "{open}");
    assert_eq!(open["proposer"], client_account(&alice), "{open}");

    let (status, vote) = c.vote(&alice, &id, "yes").await;
    assert_eq!((status, &vote["power"]), (200, &json!(7_000)), "{vote}");
    let (status, vote) = c.vote(&bob, &id, "no").await;
    assert_eq!((status, &vote["replaced"]), (200, &json!(0)), "{vote}");
    // Bob changes his mind: the second vote replaces the first.
    let (status, vote) = c.vote(&bob, &id, "yes").await;
    assert_eq!((status, &vote["replaced"]), (200, &json!(1)), "{vote}");
    let (status, vote) = node.vote(&id, "abstain").await;
    assert_eq!(
        (status, &vote["via"]),
        (200, &json!("node_signature")),
        "{vote}"
    );
    let so_far = c.proposal(&id).await;
    assert_eq!(
        so_far["tally"],
        json!({"yes": 10_000, "no": 0, "abstain": 1_000, "votes": 3}),
        "{so_far}"
    );
    assert_eq!(so_far["quorum_reached"], true, "{so_far}");
    assert_eq!(so_far["ballots"], 4, "{so_far}");

    let done = c.wait_tallied(&id, TALLY_WITHIN).await;
    assert_eq!(done["state"], "passed", "{done}");
    assert!(
        done["result"]
            .as_str()
            .unwrap_or_default()
            .starts_with("passed: 11000 of 11000"),
        "{done}"
    );
    // Scheduled, not yet in effect: the fee is still the old one.
    let before = c.parameter(FEE).await;
    assert!(
        garage::clock::unix_millis() < effective_ms,
        "the tally came too late to see the fee before its time"
    );
    assert_eq!(before["value"], 500, "{before}");
    let scheduled = changes_from(&before, &format!("proposal {id}"));
    assert_eq!(scheduled.len(), 1, "{before}");
    assert_eq!(
        scheduled[0]["effective_at"],
        json!(effective_at),
        "{before}"
    );
    assert_eq!(scheduled[0]["in_effect"], false, "{before}");
    // A vote after the deadline is refused.
    let (status, late) = c.vote(&alice, &id, "no").await;
    assert_error(status, &late, 409, "voting_closed");
    // A job settled before the stated time pays the old fee.
    assert_eq!(run_job(c, &bob, &node).await["fee_basis_points"], 500);
    assert!(
        garage::clock::unix_millis() < effective_ms,
        "the job ended too late to see the old fee"
    );

    let start = Instant::now();
    while c.parameter(FEE).await["value"] != 300 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "fee not 300 in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(garage::clock::unix_millis() >= effective_ms);
    // The next job pays the new one.
    assert_eq!(run_job(c, &bob, &node).await["fee_basis_points"], 300);

    let (status, votes) = c.get(&format!("/api/proposals/{id}/votes?limit=2")).await;
    assert_eq!(status, 200, "{votes}");
    assert_eq!(votes["votes"].as_array().map(Vec::len), Some(2), "{votes}");
    let next = votes["continue"].as_str().expect("a second page");
    let (_, rest) = c
        .get(&format!(
            "/api/proposals/{id}/votes?limit=2&continue={next}"
        ))
        .await;
    assert_eq!(rest["votes"].as_array().map(Vec::len), Some(1), "{rest}");
    let (status, listed) = c.get("/api/proposals?state=passed").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["proposals"][0]["proposal_id"], json!(id), "{listed}");
}

on_both_databases!(
    a_parameter_proposal_passes_and_takes_effect_at_its_time_sqlite,
    a_parameter_proposal_passes_and_takes_effect_at_its_time_postgres,
    parameter_passes_and_takes_effect_at_its_time
);

async fn without_quorum_nothing_changes(dir: &Path, db: Db) {
    let replica = Replica::start(&dir.join("c"), &database_url(dir, &db)).await;
    let c = &replica.api;
    let (alice, bob) = (
        c.unfunded_account("alice").await,
        c.unfunded_account("bob").await,
    );
    c.mint(&client_account(&alice), 1_000).await;
    c.mint(&client_account(&bob), 9_000).await;
    let (status, set) = c
        .admin_send(
            reqwest::Method::PUT,
            "/api/parameters/governance.quorumBasisPoints",
            Some(json!({"value": 5_000})),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    let id = c.opened(&alice, parameter_proposal(FEE, 100, 1)).await;
    assert_eq!(c.proposal(&id).await["quorum_basis_points"], 5_000);
    let (status, _) = c.vote(&alice, &id, "yes").await;
    assert_eq!(status, 200);
    let done = c.wait_tallied(&id, TALLY_WITHIN).await;
    assert_eq!(done["state"], "no_quorum", "{done}");
    assert_eq!(done["tally"]["yes"], 1_000, "{done}");
    let fee = c.parameter(FEE).await;
    assert_eq!(fee["value"], 500, "{fee}");
    assert!(
        changes_from(&fee, &format!("proposal {id}")).is_empty(),
        "{fee}"
    );
}

on_both_databases!(
    a_proposal_without_quorum_changes_nothing_sqlite,
    a_proposal_without_quorum_changes_nothing_postgres,
    without_quorum_nothing_changes
);

async fn refusals_and_frozen_power(dir: &Path, db: Db) {
    let replica = Replica::start(&dir.join("c"), &database_url(dir, &db)).await;
    let c = &replica.api;
    let (alice, carol) = (
        c.unfunded_account("alice").await,
        c.unfunded_account("carol").await,
    );
    let node = TestNode::new(&dir.join("node"), c);
    node.register(None).await;
    let other = TestNode::new(&dir.join("other"), c);
    other.register(None).await;
    c.mint(&client_account(&alice), 5_000).await;
    c.mint(&node_account(&node), 2_000).await;

    // Only the admin and holders of GAI may propose; proposals are checked.
    let (status, body) = c.propose(&carol, parameter_proposal(FEE, 1, 60)).await;
    assert_error(status, &body, 403, "no_voting_power");
    let (status, body) = c.propose(&alice, parameter_proposal(FEE, 9_999, 60)).await;
    assert_error(status, &body, 400, "invalid_proposal");
    let id = c
        .opened(
            ADMIN_TOKEN,
            json!({"kind": "signal", "title": "Prefer solar", "voting_period_seconds": 2}),
        )
        .await;
    let frozen = c.proposal(&id).await;
    assert_eq!(frozen["proposer"], "admin", "{frozen}");
    assert_eq!(frozen["total_power"], 7_000, "{frozen}");

    // Balances move during the vote: the frozen power does not.
    c.mint(&client_account(&alice), 50_000).await;
    c.mint(&client_account(&carol), 50_000).await;
    let (status, vote) = c.vote(&alice, &id, "yes").await;
    assert_eq!((status, &vote["power"]), (200, &json!(5_000)), "{vote}");
    let (status, body) = c.vote(&carol, &id, "yes").await;
    assert_error(status, &body, 403, "no_voting_power");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no voting power at open"),
        "{body}"
    );
    let (status, body) = other.vote(&id, "yes").await;
    assert_error(status, &body, 403, "no_voting_power");
    let (status, body) = c.vote(ADMIN_TOKEN, &id, "yes").await;
    assert_error(status, &body, 403, "no_voting_power");
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, body) = c.vote(&alice, &unknown, "yes").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = c.vote(&alice, &id, "maybe").await;
    assert_error(status, &body, 400, "invalid_json");

    // A forged node vote: signed with another key in the node's name.
    let audience = c.coordinator_id().await;
    let path = format!("/api/nodes/{}/votes", node.id());
    let body = json!({"proposal_id": id, "choice": "no"})
        .to_string()
        .into_bytes();
    let impostor = NodeIdentity::load_or_create(&dir.join("impostor")).expect("impostor");
    let mut forged = impostor.sign_request(
        audience,
        "POST",
        &path,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    forged.node_id = node.id();
    let (status, answer) = send_raw(&c.base, &path, Some(&forged), body.clone()).await;
    assert_error(status, &answer, 401, "invalid_signature");
    // Signed by a real node, but for another node's path.
    let theirs = other.client.identity().sign_request(
        audience,
        "POST",
        &path,
        &body,
        now_secs(),
        &signing::new_nonce(),
    );
    let (status, answer) = send_raw(&c.base, &path, Some(&theirs), body).await;
    assert_error(status, &answer, 403, "node_mismatch");
    let (status, vote) = node.vote(&id, "no").await;
    assert_eq!((status, &vote["power"]), (200, &json!(2_000)), "{vote}");

    let done = c.wait_tallied(&id, TALLY_WITHIN).await;
    assert_eq!(done["state"], "passed", "{done}");
    assert_eq!(done["total_power"], 7_000, "{done}");
    assert_eq!(
        done["tally"],
        json!({"yes": 5_000, "no": 2_000, "abstain": 0, "votes": 2}),
        "{done}"
    );

    // At most five open proposals per proposer.
    for n in 0..5 {
        let signal = json!({"kind": "signal", "title": format!("signal {n}")});
        c.opened(&alice, signal).await;
    }
    let (status, body) = c
        .propose(&alice, json!({"kind": "signal", "title": "one too many"}))
        .await;
    assert_error(status, &body, 409, "too_many_open_proposals");
}

on_both_databases!(
    late_powerless_and_forged_votes_are_refused_and_power_stays_frozen_sqlite,
    late_powerless_and_forged_votes_are_refused_and_power_stays_frozen_postgres,
    refusals_and_frozen_power
);

async fn a_passed_mint_mints_once(dir: &Path, db: Db) {
    let replica = Replica::start(&dir.join("c"), &database_url(dir, &db)).await;
    let c = &replica.api;
    let alice = c.unfunded_account("alice").await;
    let node = TestNode::new(&dir.join("node"), c);
    node.register(None).await;
    c.mint(&client_account(&alice), 1_000).await;
    let (status, body) = c
        .propose(
            &alice,
            json!({"kind": "mint", "title": "Pay the node", "voting_period_seconds": 1,
                   "mint": {"account": node_account(&node), "amount_ugai": 4_242}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["proposal_id"].as_str().expect("id").to_string();
    let (status, _) = c.vote(&alice, &id, "yes").await;
    assert_eq!(status, 200);
    assert_eq!(c.wait_tallied(&id, TALLY_WITHIN).await["state"], "passed");
    let (status, balance) = c
        .admin_get(&format!("/api/ledger/accounts/{}", node_account(&node)))
        .await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["balance_ugai"], 4_242, "{balance}");
    let (status, audit) = c.get("/api/ledger/audit").await;
    assert_eq!((status, &audit["ok"]), (200, &json!(true)), "{audit}");
}

on_both_databases!(
    a_passed_mint_proposal_mints_once_sqlite,
    a_passed_mint_proposal_mints_once_postgres,
    a_passed_mint_mints_once
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_tallying_at_once_make_one_result_postgres() {
    let Some(url) = postgres_url() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = postgres_db(&url, "governance_replicas").await;
    let c = Coordinator::start(&tmp.path().join("c"), &db).await;
    let alice = c.unfunded_account("alice").await;
    c.mint(&client_account(&alice), 1_000).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mint = json!({"kind": "mint", "title": format!("mint {n}"), "voting_period_seconds": 2,
                          "mint": {"account": "treasury", "amount_ugai": 10}});
        ids.push(c.opened(&alice, mint).await);
    }
    for n in 0..5 {
        ids.push(
            c.opened(ADMIN_TOKEN, parameter_proposal(FEE, 400 + n, 2))
                .await,
        );
    }
    for id in &ids {
        assert_eq!(c.vote(&alice, id, "yes").await.0, 200);
    }
    c.stop().await;
    // Two replicas' sweeps race over the same due proposals.
    let Db::Postgres(db_url) = &db else {
        unreachable!("a PostgreSQL test")
    };
    let a = garage::coordinator::store::Store::connect(db_url)
        .await
        .expect("a");
    let b = garage::coordinator::store::Store::connect(db_url)
        .await
        .expect("b");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let now = garage::clock::unix_millis();
    use garage::coordinator::governance::sweep::sweep_once;
    let (from_a, from_b) = tokio::join!(sweep_once(&a, now), sweep_once(&b, now));
    let (from_a, from_b) = (from_a.expect("sweep a"), from_b.expect("sweep b"));
    let mut tallied: Vec<String> = from_a
        .iter()
        .chain(&from_b)
        .map(|t| t.proposal_id.to_string())
        .collect();
    tallied.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(tallied, want, "each proposal tallied exactly once");
    a.close().await;
    b.close().await;
    let c = Coordinator::start(&tmp.path().join("c"), &db).await;
    let (_, treasury) = c.admin_get("/api/ledger/accounts/treasury").await;
    assert_eq!(treasury["balance_ugai"], 50, "{treasury}");
    let fee = c.parameter(FEE).await;
    for id in &ids[5..] {
        assert_eq!(
            changes_from(&fee, &format!("proposal {id}")).len(),
            1,
            "{fee}"
        );
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_interval_and_offline_after_are_read_live() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coordinator::start(&tmp.path().join("c"), &Db::Sqlite).await;
    let node = TestNode::new(&tmp.path().join("node"), &c);
    assert_eq!(node.register(None).await.heartbeat_interval_seconds, 1);
    let set = |name: &'static str, value: i64| {
        let c = &c;
        async move {
            let path = format!("/api/parameters/{name}");
            let (status, body) = c
                .admin_send(reqwest::Method::PUT, &path, Some(json!({"value": value})))
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    set("heartbeatIntervalSeconds", 7).await;
    assert_eq!(node.heartbeat("g1").await.heartbeat_interval_seconds, 7);
    // 7 s × 100 intervals: the node stays online past the start-up 3 s.
    set("offlineAfterIntervals", 100).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(c.node_state(&node).await, "online");
    set("heartbeatIntervalSeconds", 1).await;
    set("offlineAfterIntervals", 1).await;
    c.wait_state(&node, "offline", Duration::from_secs(5)).await;
    c.stop().await;
}
