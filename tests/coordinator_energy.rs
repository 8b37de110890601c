//! Regions, the energy and CO₂ of every job, and the green bonus, through
//! the real coordinator in-process (issue 13): `GET /api/regions` groups
//! an SE3, an SE1 and a DE node with their capacity and power; a job's
//! reported energy becomes gCO₂ at its price area's intensity (solar Wh
//! count zero) in the job view, the metrics and its region; the green
//! bonus comes from the treasury, never more than it holds, with the audit
//! ok (SQLite and PostgreSQL); loopback carbon-intensity and day-ahead
//! price APIs are used when configured, and garbage, 404 and timeouts fall
//! back to the built-in figures with a warning metric.

#[macro_use]
mod coordinator_support;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use coordinator_support::jobs::submission;
use coordinator_support::*;
use garage::coordinator::api::{GpuInfo, HeartbeatRequest, Location, Outcome, PowerReport};
use garage::energy::JobEnergy;
use garage::work::power::with_energy;
use reqwest::Method;
use serde_json::{json, Value};

/// µGAI per second in the tests' market.
const PRICE: i64 = 1_000;
/// The tests' network fee: 5 %.
const FEE_BASIS_POINTS: i64 = 500;
/// The tests' green bonus: 50 % of the price for the solar share.
const GREEN_BASIS_POINTS: i64 = 5_000;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

fn location(country: &str, region: Option<&str>, lat: f64, lon: f64) -> Location {
    Location {
        country: Some(country.into()),
        region: region.map(Into::into),
        latitude: Some(lat),
        longitude: Some(lon),
    }
}

/// Registers `node` at `location` with `gpus` GPUs of 24 GiB and a
/// benchmark of `tokens_per_second`.
async fn register_at(node: &TestNode, location: Location, gpus: usize, tokens_per_second: f64) {
    let gpu = GpuInfo {
        name: "NVIDIA GeForce RTX 4090".into(),
        memory_total_bytes: 24 << 30,
        uuid: None,
    };
    let benchmark =
        json!({"inference": {"status": "measured", "decode_tokens_per_s": tokens_per_second}});
    let request = node
        .client
        .registration(vec![gpu; gpus], location, Some(benchmark));
    node.client.register(&request).await.expect("registers");
}

async fn heartbeat_with_power(node: &TestNode, power: PowerReport) {
    let request = HeartbeatRequest {
        observed_generation: Some("1".into()),
        ready: Some(true),
        gpus: Vec::new(),
        status: json!({"conditions": []}),
        power: Some(power),
        spec_revision: None,
    };
    node.client.heartbeat(&request).await.expect("heartbeat");
}

fn find<'a>(list: &'a Value, field: &str, value: Option<&str>) -> &'a Value {
    list.as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|item| item.get(field).and_then(Value::as_str) == value)
        })
        .unwrap_or_else(|| panic!("no {field} = {value:?} in {list:#}"))
}

async fn regions(api: &Api) -> Value {
    let (status, body) = api.get("/api/regions").await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn regions_group_nodes_by_country_area_and_cell(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("c"), &db).await;
    let api = &coordinator.api;
    let stockholm = TestNode::new(&dir.join("se3"), api);
    register_at(
        &stockholm,
        location("SE", Some("SE3"), 59.33, 18.07),
        2,
        150.0,
    )
    .await;
    // No price area given: Kiruna's coordinates place it in SE1.
    let kiruna = TestNode::new(&dir.join("se1"), api);
    register_at(&kiruna, location("SE", None, 67.86, 20.23), 1, 80.0).await;
    let berlin = TestNode::new(&dir.join("de"), api);
    register_at(&berlin, location("DE", None, 52.52, 13.40), 1, 60.0).await;
    heartbeat_with_power(
        &stockholm,
        PowerReport {
            source: "mixed".into(),
            policy: "prefer-solar".into(),
            draw_watts: 300.0,
            draw_measured_by: "estimate".into(),
            production_watts: Some(500.0),
            production_source: Some("model".into()),
            production_ok: Some(true),
            surplus_watts: Some(200.0),
        },
    )
    .await;

    let body = regions(api).await;
    assert_eq!(body["cell_degrees"], 0.5);
    assert_eq!(body["clusters_truncated"], false);
    let countries = &body["countries"];
    assert_eq!(countries.as_array().map(Vec::len), Some(2), "{body:#}");
    let sweden = find(countries, "country", Some("SE"));
    assert_eq!(sweden["eu"], true);
    assert_eq!(sweden["capacity"]["nodes_total"], 2);
    assert_eq!(sweden["capacity"]["nodes_online"], 2);
    assert_eq!(sweden["capacity"]["gpus"], 3);
    assert_eq!(sweden["capacity"]["vram_mib"], 3 * 24 * 1024);
    assert_eq!(sweden["capacity"]["tokens_per_second"], 230.0);
    let se3 = find(&sweden["areas"], "price_area", Some("SE3"));
    assert_eq!(se3["capacity"]["gpus"], 2);
    assert_eq!(se3["power"]["draw_watts"], 300.0);
    assert_eq!(se3["power"]["production_watts"], 500.0);
    assert_eq!(se3["power"]["surplus_watts"], 200.0);
    assert_eq!(
        se3["carbon_intensity"],
        json!({"value": 14.5, "source": "default"})
    );
    assert_eq!(
        se3["spot_price"],
        json!({"value": 0.592, "source": "default"})
    );
    let cluster = find(&se3["clusters"], "cell", Some("59.0,18.0"));
    assert_eq!(cluster["capacity"]["nodes_online"], 1);
    assert!(close(cluster["latitude"].as_f64().expect("lat"), 59.33));
    let se1 = find(&sweden["areas"], "price_area", Some("SE1"));
    assert_eq!(se1["capacity"]["gpus"], 1);
    assert_eq!(se1["carbon_intensity"]["value"], 20.6);
    assert!(se1["power"].get("draw_watts").is_none(), "{se1:#}");
    find(&se1["clusters"], "cell", Some("67.5,20.0"));
    let germany = find(countries, "country", Some("DE"));
    assert_eq!(germany["eu"], true);
    let de = &germany["areas"][0];
    assert!(de.get("price_area").is_none(), "{de:#}");
    assert!(de.get("spot_price").is_none(), "{de:#}");
    assert_eq!(de["carbon_intensity"]["value"], 200.0);
    assert_eq!(de["capacity"]["tokens_per_second"], 60.0);
    find(&de["clusters"], "cell", Some("52.5,13.0"));

    // A deleted node leaves its region.
    let (status, body) = api
        .admin_send(Method::DELETE, &format!("/api/nodes/{}", berlin.id()), None)
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let body = regions(api).await;
    assert_eq!(
        body["countries"].as_array().map(Vec::len),
        Some(1),
        "{body:#}"
    );
    coordinator.stop().await;
}

on_both_databases!(
    regions_group_nodes_by_country_area_and_cell_on_sqlite,
    regions_group_nodes_by_country_area_and_cell_on_postgres,
    regions_group_nodes_by_country_area_and_cell
);

fn energy(energy_wh: f64, solar_wh: Option<f64>) -> JobEnergy {
    JobEnergy {
        energy_wh,
        seconds: 1.2,
        measured_by: "rapl".into(),
        solar_wh,
    }
}

/// Submits a job as `key`, lets `node` run it for over a second and
/// complete it with `report`; the job as its client sees it.
async fn run_job(api: &Api, key: &str, node: &TestNode, report: Option<JobEnergy>) -> Value {
    let id = api.submit(key, submission("cpu")).await;
    let lease = node.claim(5).await.expect("a job");
    assert_eq!(lease.job_id.to_string(), id);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let result = with_energy(json!({"exit_code": 0}), report);
    let state = node
        .complete(&lease, Outcome::Succeeded, result)
        .await
        .expect("completes");
    assert_eq!(state, "SUCCEEDED");
    api.job(key, &id).await
}

fn charged(job: &Value) -> i64 {
    let cost = &job["cost"];
    cost["paid_to_node_ugai"].as_i64().expect("paid") + cost["fee_ugai"].as_i64().expect("fee")
}

async fn energy_co2_and_the_green_bonus(dir: &Path, db: Db) {
    let coordinator = Coordinator::start(&dir.join("c"), &db).await;
    let api = &coordinator.api;
    let node = TestNode::new(&dir.join("node"), api);
    register_at(&node, location("SE", Some("SE3"), 59.33, 18.07), 0, 0.0).await;
    api.set_parameter("pricePerSecond.cpu", PRICE).await;
    api.set_parameter("networkFeeBasisPoints", FEE_BASIS_POINTS)
        .await;
    api.set_parameter("greenBonusBasisPoints", GREEN_BASIS_POINTS)
        .await;
    let key = api.account("client").await;
    let node_account = format!("node:{}", node.id());

    // Half solar, and the treasury holds only this job's fee: the bonus
    // (25 % of the charge) is cut to what it holds.
    let job = run_job(api, &key, &node, Some(energy(500.0, Some(250.0)))).await;
    let used = &job["energy"];
    assert_eq!(used["energy_wh"], 500.0, "{job:#}");
    assert_eq!(used["solar_wh"], 250.0);
    assert_eq!(used["grid_wh"], 250.0);
    assert_eq!(used["price_area"], "SE3");
    assert_eq!(used["country"], "SE");
    assert_eq!(used["measured_by"], "rapl");
    assert_eq!(
        used["carbon_intensity"],
        json!({"value": 14.5, "source": "default"})
    );
    assert!(close(used["co2_grams"].as_f64().expect("co2"), 0.25 * 14.5));
    assert!(close(
        used["cost_sek"].as_f64().expect("cost"),
        0.25 * 0.592
    ));
    let fee = job["cost"]["fee_ugai"].as_i64().expect("fee");
    let full_bonus = charged(&job) / 4;
    assert!(full_bonus > fee, "the test needs a short treasury");
    assert_eq!(used["green_bonus_ugai"], fee, "{job:#}");
    assert_eq!(api.balance("treasury").await, 0);
    let paid = job["cost"]["paid_to_node_ugai"].as_i64().expect("paid");
    assert_eq!(api.balance(&node_account).await, paid + fee);

    // All solar with a funded treasury: the whole bonus, half the charge.
    api.mint("treasury", 1_000_000_000).await;
    let job = run_job(api, &key, &node, Some(energy(100.0, Some(100.0)))).await;
    assert_eq!(job["energy"]["co2_grams"], 0.0, "{job:#}");
    assert_eq!(job["energy"]["green_bonus_ugai"], charged(&job) / 2);
    let (status, transfers) = api
        .admin_get(&format!("/api/ledger/accounts/{node_account}/transfers"))
        .await;
    assert_eq!(status, 200, "{transfers}");
    let green = format!("green:{}", job["job_id"].as_str().expect("id"));
    let transfer = find(&transfers["transfers"], "transfer_id", Some(green.as_str()));
    assert_eq!(transfer["kind"], "green");
    assert_eq!(transfer["debit"], "treasury");

    // All grid: CO₂ of the whole energy, no bonus.
    let job = run_job(api, &key, &node, Some(energy(400.0, None))).await;
    assert_eq!(job["energy"]["solar_wh"], 0.0);
    assert!(close(
        job["energy"]["co2_grams"].as_f64().expect("co2"),
        0.4 * 14.5
    ));
    assert_eq!(job["energy"]["green_bonus_ugai"], 0);

    // A node that reports no energy: no energy object, nothing counted.
    let job = run_job(api, &key, &node, None).await;
    assert!(job.get("energy").is_none(), "{job:#}");

    let (status, audit) = api.get("/api/ledger/audit").await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["ok"], true, "{audit:#}");
    let metrics = api.metrics().await;
    assert!(
        metrics.contains("garage_coordinator_job_energy_wh_total{price_area=\"SE3\"} 1000"),
        "{metrics}"
    );
    let co2_line = metrics
        .lines()
        .find(|l| l.starts_with("garage_coordinator_job_co2_grams_total{price_area=\"SE3\"}"))
        .expect("co2 metric");
    let co2: f64 = co2_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(close(co2, (0.25 + 0.4) * 14.5), "{co2_line}");
    let body = regions(api).await;
    let se3 = find(&body["countries"][0]["areas"], "price_area", Some("SE3"));
    assert_eq!(se3["energy"]["jobs"], 3, "{se3:#}");
    assert_eq!(se3["energy"]["energy_wh"], 1000.0);
    assert_eq!(se3["energy"]["solar_wh"], 350.0);
    assert_eq!(se3["clusters"][0]["energy"]["jobs"], 3);
    coordinator.stop().await;
}

on_both_databases!(
    energy_co2_and_the_green_bonus_on_sqlite,
    energy_co2_and_the_green_bonus_on_postgres,
    energy_co2_and_the_green_bonus
);

/// How the loopback grid APIs answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Good,
    Garbage,
    NotFound,
    Slow,
}

#[derive(Debug)]
struct Loopback {
    mode: Mode,
    carbon_calls: AtomicU64,
    price_calls: AtomicU64,
    bad_tokens: AtomicU64,
}

const TOKEN: &str = "loopback-carbon-token";

async fn grid_api(State(state): State<Arc<Loopback>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let carbon = path == "/v3/carbon-intensity/latest";
    if carbon {
        state.carbon_calls.fetch_add(1, Ordering::SeqCst);
        if headers.get("auth-token").and_then(|v| v.to_str().ok()) != Some(TOKEN)
            || uri.query() != Some("zone=SE-SE3")
        {
            state.bad_tokens.fetch_add(1, Ordering::SeqCst);
            return StatusCode::UNAUTHORIZED.into_response();
        }
    } else if path.starts_with("/api/v1/prices/") && path.ends_with("_SE3.json") {
        state.price_calls.fetch_add(1, Ordering::SeqCst);
    } else {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.mode {
        Mode::Good if carbon => axum::Json(json!({
            "zone": "SE-SE3",
            "carbonIntensity": 40,
            "datetime": "2026-01-01T00:00:00.000Z",
            "isEstimated": false
        }))
        .into_response(),
        Mode::Good => {
            let now = std::time::SystemTime::now();
            let hour = Duration::from_secs(3600);
            let period = |start: std::time::SystemTime, price: f64| {
                json!({
                    "SEK_per_kWh": price,
                    "EUR_per_kWh": price / 11.0,
                    "EXR": 11.0,
                    "time_start": humantime::format_rfc3339_seconds(start).to_string(),
                    "time_end": humantime::format_rfc3339_seconds(start + hour).to_string(),
                })
            };
            // The period that holds now starts half an hour before it, so
            // the job's time (a moment earlier) is inside it whatever the
            // second's fraction.
            let half = hour / 2;
            axum::Json(json!([period(now - half, 1.25), period(now + half, 9.0)])).into_response()
        }
        Mode::Garbage => "<html>maintenance</html>".into_response(),
        Mode::NotFound => StatusCode::NOT_FOUND.into_response(),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Serves the loopback grid APIs in `mode`; its base URL and state.
async fn start_grid_api(mode: Mode) -> (String, Arc<Loopback>) {
    let state = Arc::new(Loopback {
        mode,
        carbon_calls: AtomicU64::new(0),
        price_calls: AtomicU64::new(0),
        bad_tokens: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .fallback(grid_api)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, state)
}

/// A coordinator using the loopback grid APIs in `mode`, a node in SE3
/// and a client: the first job's energy and the SE3 area as
/// `{"job", "area"}`, the loopback's counts, and the metrics.
async fn job_energy_with(dir: &Path, mode: Mode) -> (Value, Arc<Loopback>, String) {
    let (base, loopback) = start_grid_api(mode).await;
    let mut config = Coordinator::config(&dir.join("c"), &Db::Sqlite);
    config.grid.carbon_url = Some(base.clone());
    config.grid.carbon_token = Some(TOKEN.into());
    config.grid.price_url = Some(base);
    config.grid.timeout = Duration::from_millis(300);
    let coordinator = Coordinator::start_with(config).await;
    let api = &coordinator.api;
    let node = TestNode::new(&dir.join("node"), api);
    register_at(&node, location("SE", Some("SE3"), 59.33, 18.07), 0, 0.0).await;
    let key = api.account("client").await;
    let job = run_job(api, &key, &node, Some(energy(2_000.0, None))).await;
    let regions = regions(api).await;
    let metrics = api.metrics().await;
    coordinator.stop().await;
    let se3 = find(&regions["countries"][0]["areas"], "price_area", Some("SE3")).clone();
    (
        json!({"job": job["energy"], "area": se3}),
        loopback,
        metrics,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_carbon_and_price_apis_are_used_when_configured() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (seen, loopback, metrics) = job_energy_with(tmp.path(), Mode::Good).await;
    let used = &seen["job"];
    assert_eq!(
        used["carbon_intensity"],
        json!({"value": 40.0, "source": "api"}),
        "{seen:#}"
    );
    assert!(close(used["co2_grams"].as_f64().expect("co2"), 2.0 * 40.0));
    assert_eq!(used["spot_price"], json!({"value": 1.25, "source": "api"}));
    assert!(close(used["cost_sek"].as_f64().expect("cost"), 2.0 * 1.25));
    // The region shows the same figures, from the cache.
    assert_eq!(seen["area"]["carbon_intensity"]["source"], "api");
    assert_eq!(seen["area"]["spot_price"]["value"], 1.25);
    assert_eq!(loopback.carbon_calls.load(Ordering::SeqCst), 1, "cached");
    assert_eq!(loopback.price_calls.load(Ordering::SeqCst), 1, "cached");
    assert_eq!(loopback.bad_tokens.load(Ordering::SeqCst), 0);
    let fallbacks: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("garage_coordinator_grid_source_fallbacks_total{"))
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    assert!(fallbacks.is_empty(), "{fallbacks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_apis_fall_back_to_the_defaults_with_a_warning() {
    for (mode, reason) in [
        (Mode::Garbage, "garbage"),
        (Mode::NotFound, "status"),
        (Mode::Slow, "timeout"),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (seen, loopback, metrics) = job_energy_with(tmp.path(), mode).await;
        let used = &seen["job"];
        assert_eq!(
            used["carbon_intensity"],
            json!({"value": 14.5, "source": "default"}),
            "{mode:?}: {seen:#}"
        );
        assert!(close(used["co2_grams"].as_f64().expect("co2"), 2.0 * 14.5));
        assert_eq!(
            used["spot_price"],
            json!({"value": 0.592, "source": "default"})
        );
        assert_eq!(seen["area"]["carbon_intensity"]["source"], "default");
        // One try each: the failure is remembered, not retried per request.
        assert_eq!(loopback.carbon_calls.load(Ordering::SeqCst), 1, "{mode:?}");
        assert_eq!(loopback.price_calls.load(Ordering::SeqCst), 1, "{mode:?}");
        for source in ["carbon", "price"] {
            let line = format!(
                "garage_coordinator_grid_source_fallbacks_total{{reason=\"{reason}\",source=\"{source}\"}} 1"
            );
            assert!(metrics.contains(&line), "{mode:?}: no {line} in\n{metrics}");
        }
    }
}
