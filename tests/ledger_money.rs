//! Money through the real coordinator binary (issue 12), on SQLite and
//! PostgreSQL: a job's life moves exactly price × billed seconds to the
//! node and the fee to the treasury; 100 parallel submissions against a
//! balance that pays for 10 accept exactly 10 (two replicas on
//! PostgreSQL); and SIGKILLs in the middle of settlements under load
//! never break the audit.

#[macro_use]
mod coordinator_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator_support::binary::{database_url, Replica};
use coordinator_support::jobs::hello_job;
use coordinator_support::*;
use garage::coordinator::api::{ClaimRequest, CompleteRequest, JobType, Outcome};
use reqwest::Method;
use serde_json::{json, Value};

/// µGAI per second in the tests' market.
const PRICE: i64 = 1_000;
/// The tests' network fee: 5 %.
const FEE_BASIS_POINTS: i64 = 500;

/// Sets the price of market `cpu` and the fee, effective now.
async fn set_prices(api: &Api) {
    api.set_parameter("pricePerSecond.cpu", PRICE).await;
    api.set_parameter("networkFeeBasisPoints", FEE_BASIS_POINTS)
        .await;
}

async fn audit(api: &Api) -> Value {
    let (status, body) = api.get("/api/ledger/audit").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true, "an invariant broke: {body:#}");
    body
}

fn job(timeout: &str) -> Value {
    json!({"job": hello_job(), "placement": {"market": "cpu"}, "timeout": timeout})
}

fn client_id(key: &str) -> String {
    format!("client:{}", key.split('_').nth(1).expect("gk_<id>_…"))
}

async fn a_jobs_life_pays_price_times_billed_seconds(dir: &Path, db: Db) {
    let coordinator = Replica::start(&dir.join("c"), &database_url(dir, &db)).await;
    let api = &coordinator.api;
    let node = TestNode::new(&dir.join("node"), api);
    node.register(None).await;
    set_prices(api).await;
    let key = api.unfunded_account("payer").await;
    let client = client_id(&key);
    api.mint(&client, 1_000_000).await;

    let (status, view) = api
        .client_send(&key, Method::POST, "/api/jobs", Some(job("60s")), &[])
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["cost"]["held_ugai"], 60 * PRICE, "{view}");
    assert_eq!(view["cost"]["state"], "held");
    assert_eq!(api.balance(&client).await, 1_000_000 - 60 * PRICE);
    assert_eq!(audit(api).await["open_holds"], 1);

    let lease = node.claim(10).await.expect("the job");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    node.complete(&lease, Outcome::Succeeded, json!({"exit_code": 0}))
        .await
        .expect("completed");
    let done = api.job(&key, &lease.job_id.to_string()).await;
    let cost = &done["cost"];
    assert_eq!(cost["state"], "settled", "{done:#}");
    let billed = cost["billed_seconds"].as_i64().expect("billed_seconds");
    assert!((2..=4).contains(&billed), "ran ~1.3 s: {cost}");
    let charged = PRICE * billed;
    let fee = charged * FEE_BASIS_POINTS / 10_000;
    assert_eq!(cost["fee_ugai"], fee, "{cost}");
    assert_eq!(cost["paid_to_node_ugai"], charged - fee, "{cost}");
    assert_eq!(cost["refunded_ugai"], 60 * PRICE - charged, "{cost}");
    assert_eq!(api.balance(&client).await, 1_000_000 - charged);
    assert_eq!(
        api.balance(&format!("node:{}", node.id())).await,
        charged - fee
    );
    assert_eq!(api.balance("treasury").await, fee);
    let totals = audit(api).await;
    assert_eq!(totals["supply_ugai"], 1_000_000);
    assert_eq!(totals["balances_ugai"], 1_000_000);
    assert_eq!(totals["open_holds"], 0);

    // The node sees its own earnings with its signature; not the client's.
    let answer = node
        .client
        .send_signed(
            Method::GET,
            &format!("/api/ledger/accounts/node:{}", node.id()),
            Vec::new(),
        )
        .await
        .expect("signed GET");
    let own: Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(answer.status, 200, "{own}");
    assert_eq!(own["balance_ugai"], charged - fee);
    let (status, _) = api
        .client_send(
            &key,
            Method::GET,
            &format!("/api/ledger/accounts/node:{}", node.id()),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 404, "a client cannot read a node's account");

    // A job that never started gives its whole hold back.
    let (status, second) = api
        .client_send(&key, Method::POST, "/api/jobs", Some(job("10s")), &[])
        .await;
    assert_eq!(status, 201, "{second}");
    let lease = node.claim(10).await.expect("the second job");
    node.complete(&lease, Outcome::NotStarted, json!({}))
        .await
        .expect("completed");
    let voided = api.job(&key, &lease.job_id.to_string()).await;
    assert_eq!(voided["state"], "FAILED");
    assert_eq!(voided["cost"]["state"], "voided", "{voided:#}");
    assert_eq!(api.balance(&client).await, 1_000_000 - charged);
    audit(api).await;
}

on_both_databases!(
    a_jobs_life_pays_price_times_billed_seconds_on_sqlite,
    a_jobs_life_pays_price_times_billed_seconds_on_postgres,
    a_jobs_life_pays_price_times_billed_seconds
);

/// 100 submissions at once (alternating between `replicas`) against a
/// balance that pays for exactly 10.
async fn hundred_against_ten(dir: &Path, replicas: &[&Replica]) {
    let api = &replicas[0].api;
    TestNode::new(&dir.join("node"), api).register(None).await;
    set_prices(api).await;
    let key = api.unfunded_account("ten").await;
    let client = client_id(&key);
    let hold = 30 * PRICE;
    api.mint(&client, 10 * hold + hold - 1).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let api = replicas[i % replicas.len()].api.clone();
        let key = key.clone();
        tasks.spawn(async move {
            let (status, body) = api
                .client_send(&key, Method::POST, "/api/jobs", Some(job("30s")), &[])
                .await;
            assert!(status == 201 || status == 402, "{status} {body}");
            if status == 402 {
                assert_eq!(body["error"]["code"], "insufficient_funds", "{body}");
            }
            status
        });
    }
    let mut accepted = 0;
    let mut refused = 0;
    while let Some(status) = tasks.join_next().await {
        match status.expect("a submission") {
            201 => accepted += 1,
            _ => refused += 1,
        }
    }
    assert_eq!((accepted, refused), (10, 90));
    assert_eq!(api.balance(&client).await, hold - 1);
    let totals = audit(api).await;
    assert_eq!(totals["open_holds"], 10);
    assert_eq!(totals["held_ugai"], 10 * hold);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_submissions_against_a_balance_for_ten_on_sqlite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = Replica::start(
        &tmp.path().join("c"),
        &database_url(tmp.path(), &Db::Sqlite),
    )
    .await;
    hundred_against_ten(tmp.path(), &[&coordinator]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_submissions_against_a_balance_for_ten_on_two_postgres_replicas() {
    let Some(url) = postgres_url() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = postgres_db(&url, "hundred_against_ten").await;
    let url = database_url(tmp.path(), &db);
    let a = Replica::start(&tmp.path().join("a"), &url).await;
    let b = Replica::start(&tmp.path().join("b"), &url).await;
    hundred_against_ten(tmp.path(), &[&a, &b]).await;
}

/// Load while the coordinator is killed: one client submits, one node
/// claims and completes at once; errors while it is down are expected.
async fn load(api: Api, key: String, node: Arc<TestNode>, until: Instant) {
    let submitter = {
        let api = api.clone();
        tokio::spawn(async move {
            while Instant::now() < until {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    api.try_client_send(&key, Method::POST, "/api/jobs", Some(job("20s"))),
                )
                .await;
            }
        })
    };
    let worker = tokio::spawn(async move {
        let request = ClaimRequest {
            slots: 1,
            job_types: vec![JobType::Container],
            labels: Default::default(),
            wait_seconds: Some(1),
            power: None,
        };
        while Instant::now() < until {
            let claimed =
                tokio::time::timeout(Duration::from_secs(3), node.client.claim(&request)).await;
            let Ok(Ok(Some(lease))) = claimed else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let done = CompleteRequest {
                outcome: Outcome::Succeeded,
                reason: None,
                result: json!({"exit_code": 0}),
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                node.client.complete(lease.lease_id, &done),
            )
            .await;
        }
    });
    let _ = submitter.await;
    let _ = worker.await;
}

async fn sigkill_in_the_middle_of_settlements(dir: &Path, db: Db) {
    let mut coordinator = Replica::start(&dir.join("c"), &database_url(dir, &db)).await;
    let api = coordinator.api.clone();
    set_prices(&api).await;
    let node = Arc::new(TestNode::new(&dir.join("node"), &api));
    node.register(None).await;
    let key = api.unfunded_account("crash").await;
    api.mint(&client_id(&key), 1_000_000_000).await;
    let mut settled_before = 0;
    for round in 0..5 {
        let until = Instant::now() + Duration::from_millis(1_500 + 300 * round);
        let running = tokio::spawn(load(
            api.clone(),
            key.clone(),
            node.clone(),
            until + Duration::from_secs(1),
        ));
        tokio::time::sleep_until(until.into()).await;
        coordinator.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        coordinator.restart().await;
        let totals = audit(&api).await;
        assert_eq!(
            totals["supply_ugai"], 1_000_000_000,
            "round {round}: {totals:#}"
        );
        running.await.expect("the load ends");
        let settled = totals["transfers"].as_i64().unwrap_or_default();
        assert!(
            settled >= settled_before,
            "round {round}: transfers are never lost"
        );
        settled_before = settled;
    }
    assert!(
        settled_before > 20,
        "the load settled jobs: {settled_before} transfers"
    );
}

on_both_databases!(
    sigkill_in_the_middle_of_settlements_on_sqlite,
    sigkill_in_the_middle_of_settlements_on_postgres,
    sigkill_in_the_middle_of_settlements
);

/// A fee scheduled for a stated time applies to settlements from then on,
/// not before.
async fn a_scheduled_fee_applies_from_its_time(dir: &Path, db: Db) {
    let coordinator = Replica::start(&dir.join("c"), &database_url(dir, &db)).await;
    let api = &coordinator.api;
    let node = TestNode::new(&dir.join("node"), api);
    node.register(None).await;
    set_prices(api).await;
    let from = garage::clock::unix_millis() + 3_000;
    let (status, body) = api
        .admin_send(
            Method::PUT,
            "/api/parameters/networkFeeBasisPoints",
            Some(json!({"value": 2_000, "effective_at": garage::clock::rfc3339_millis(from)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], FEE_BASIS_POINTS, "not in effect yet: {body}");
    let key = api.account("fees").await;
    let mut fees = Vec::new();
    for round in 0..2 {
        if round == 1 {
            let wait = from - garage::clock::unix_millis() + 100;
            tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
        }
        api.submit(&key, job("10s")).await;
        let lease = node.claim(10).await.expect("a job");
        node.complete(&lease, Outcome::Succeeded, json!({}))
            .await
            .expect("completed");
        let done = api.job(&key, &lease.job_id.to_string()).await;
        fees.push(done["cost"]["fee_basis_points"].clone());
    }
    assert_eq!(fees, [json!(FEE_BASIS_POINTS), json!(2_000)]);
    audit(api).await;
}

on_both_databases!(
    a_scheduled_fee_applies_from_its_time_on_sqlite,
    a_scheduled_fee_applies_from_its_time_on_postgres,
    a_scheduled_fee_applies_from_its_time
);
