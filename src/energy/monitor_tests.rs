//! The monitor on a CPU-only draw (the estimate from this host's
//! `/proc/stat`), with the clear-sky model at an injected time and with a
//! loopback inverter that fails in every way and recovers.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::*;
use crate::energy::draw::IDLE_WATTS;
use crate::energy::rapl::Rapl;
use crate::spec::types::PowerUnit;
use crate::spec::{HttpSource, SolarSettings};

/// 2026-06-21T10:00:00Z (noon in Stockholm) and 2026-12-21T23:00:00Z.
const NOON: f64 = 1_782_036_000.0;
const NIGHT: f64 = 1_797_894_000.0;

fn settings(policy: PowerPolicy, production: ProductionSource) -> PowerSettings {
    PowerSettings {
        source: PowerSource::Solar,
        policy,
        solar: Some(SolarSettings {
            capacity_kw: 6.5,
            tilt_deg: 35.0,
            azimuth_deg: 180.0,
            production,
        }),
    }
}

const STOCKHOLM: ProductionSource = ProductionSource::Model {
    latitude: 59.33,
    longitude: 18.07,
};

/// A clock the test sets, in unix seconds.
fn clock(at: f64) -> (Arc<AtomicU64>, Clock) {
    let now = Arc::new(AtomicU64::new(at.to_bits()));
    let read = Arc::clone(&now);
    (
        now,
        Arc::new(move || f64::from_bits(read.load(Ordering::SeqCst))),
    )
}

fn monitor(settings: &PowerSettings, clock: Clock, metrics: AgentMetrics) -> EnergyMonitor {
    let sampler = DrawSampler::new(None, Rapl::default(), Path::new("/proc/stat"));
    EnergyMonitor::new(settings, sampler, clock, metrics)
}

#[tokio::test]
async fn a_grid_node_reports_its_draw_and_no_production() {
    let metrics = AgentMetrics::new();
    let grid = PowerSettings::default();
    let monitor = monitor(&grid, clock(NOON).1, metrics.clone());
    assert_eq!(monitor.latest(), None);
    let status = monitor.sample().await;
    assert!(status.draw.watts >= IDLE_WATTS, "{status:?}");
    assert_eq!(status.draw.measured_by.as_str(), "estimate");
    assert_eq!(
        (status.production_watts, status.surplus_watts),
        (None, None)
    );
    assert!(status.conditions.is_empty());
    assert_eq!(monitor.claimable(3), 3, "policy any claims every slot");
    let report = status.report();
    assert_eq!(
        (report.source.as_str(), report.policy.as_str()),
        ("grid", "any")
    );
    assert_eq!(report.production_ok, None);
    let text = metrics.render();
    assert!(
        text.contains(&format!(
            "garage_node_power_draw_watts {}",
            status.draw.watts
        )),
        "{text}"
    );
    assert!(
        text.contains("garage_node_solar_production_watts 0"),
        "{text}"
    );
}

#[tokio::test]
async fn solar_only_claims_on_a_noon_surplus_and_not_at_night() {
    let metrics = AgentMetrics::new();
    let (now, clock) = clock(NIGHT);
    let monitor = monitor(
        &settings(PowerPolicy::SolarOnly, STOCKHOLM),
        clock,
        metrics.clone(),
    );
    assert_eq!(monitor.claimable(2), 0, "nothing sampled yet");
    let night = monitor.sample().await;
    assert_eq!(night.production_watts, Some(0.0));
    assert!(night.surplus_watts.is_some_and(|s| s < 0.0), "{night:?}");
    assert_eq!(night.conditions[0].status, ConditionStatus::True);
    assert_eq!(night.conditions[0].reason, "ProductionRead");
    assert_eq!(monitor.claimable(2), 0);
    now.store(NOON.to_bits(), Ordering::SeqCst);
    let noon = monitor.sample().await;
    assert!(
        noon.production_watts.is_some_and(|p| p > 4_000.0),
        "{noon:?}"
    );
    assert_eq!(monitor.claimable(2), 2);
    let text = metrics.render();
    assert!(
        text.contains(&format!(
            "garage_node_solar_production_watts {}",
            noon.production_watts.unwrap_or_default()
        )),
        "{text}"
    );
    // Before any job finished, a job is expected to draw what the node does.
    assert_eq!(noon.expected_job_watts, Some(noon.draw.watts));
}

#[tokio::test]
async fn a_failing_inverter_is_production_zero_and_a_condition_never_a_crash() {
    let answer = Arc::new(AtomicU64::new(0));
    let mode = Arc::clone(&answer);
    let app = Router::new().route(
        "/pv",
        get(move || {
            let mode = mode.load(Ordering::SeqCst);
            async move {
                match mode {
                    0 => (StatusCode::NOT_FOUND, "gone".to_owned()),
                    1 => (StatusCode::OK, "garbage{".to_owned()),
                    2 => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        (StatusCode::OK, "1".to_owned())
                    }
                    _ => (StatusCode::OK, r#"{"ac":{"w":1500}}"#.to_owned()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let inverter = ProductionSource::Http(HttpSource {
        url: format!("http://{addr}/pv"),
        pointer: "/ac/w".into(),
        unit: PowerUnit::W,
        timeout: Duration::from_millis(300),
    });
    let monitor = monitor(
        &settings(PowerPolicy::SolarOnly, inverter),
        clock(NOON).1,
        AgentMetrics::new(),
    );
    for (mode, reason) in [
        (0, "InverterHttpError"),
        (1, "InverterNotJson"),
        (2, "InverterTimeout"),
    ] {
        answer.store(mode, Ordering::SeqCst);
        let status = monitor.sample().await;
        assert_eq!(status.production_watts, Some(0.0), "{status:?}");
        let condition = &status.conditions[0];
        assert_eq!(
            (condition.type_, condition.status, condition.reason.as_str()),
            (
                ConditionType::SolarProduction,
                ConditionStatus::False,
                reason
            )
        );
        assert_eq!(status.report().production_ok, Some(false));
        assert_eq!(monitor.claimable(1), 0);
    }
    answer.store(3, Ordering::SeqCst);
    let status = monitor.sample().await;
    assert_eq!(status.production_watts, Some(1500.0));
    assert_eq!(status.conditions[0].status, ConditionStatus::True);
    assert_eq!(status.production_source, Some("http"));
    assert_eq!(monitor.claimable(1), 1);
}

#[tokio::test]
async fn a_jobs_energy_is_within_the_measured_draw_times_its_duration() {
    let monitor = monitor(
        &settings(PowerPolicy::PreferSolar, STOCKHOLM),
        clock(NOON).1,
        AgentMetrics::new(),
    );
    monitor.sample().await;
    let job = Uuid::new_v4();
    let started = Instant::now();
    monitor.job_started(job);
    let mut highest: f64 = 0.0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        highest = highest.max(monitor.sample().await.draw.watts);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let energy = monitor.job_finished(job).expect("metered");
    let elapsed = started.elapsed().as_secs_f64();
    highest = highest.max(monitor.latest().map_or(0.0, |s| s.draw.watts));
    assert!(energy.energy_wh > 0.0, "{energy:?}");
    assert!(
        energy.seconds > 0.0 && energy.seconds <= elapsed,
        "{energy:?}"
    );
    let bound_wh = highest * elapsed / 3600.0;
    let floor_wh = IDLE_WATTS * energy.seconds / 3600.0;
    assert!(
        energy.energy_wh <= bound_wh * 1.001 && energy.energy_wh >= floor_wh * 0.999,
        "{energy:?}, at most {bound_wh} Wh, at least {floor_wh} Wh"
    );
    assert_eq!(energy.measured_by, "estimate");
    // At noon the panels cover the whole draw.
    assert_eq!(energy.solar_wh, Some(energy.energy_wh));
    assert_eq!(monitor.job_finished(job), None);
}
