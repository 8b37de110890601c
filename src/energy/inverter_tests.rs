//! The inverter source against a loopback axum server: good answers in W
//! and kW, and every failure typed (never a panic).

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::*;

/// Serves `app` on a loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn inverter(base: &str, path: &str, pointer: &str, unit: PowerUnit) -> Inverter {
    Inverter::new(HttpSource {
        url: format!("{base}{path}"),
        pointer: pointer.into(),
        unit,
        timeout: Duration::from_millis(300),
    })
}

fn inverter_app() -> Router {
    Router::new()
        .route(
            "/w",
            get(|| async { r#"{"inverters":[{"acPower":1234.5}],"ok":true}"# }),
        )
        .route("/kw", get(|| async { r#"{"pv":{"power":"2.5"}}"# }))
        .route("/bare", get(|| async { "-3" }))
        .route("/garbage", get(|| async { "<html>busy</html>" }))
        .route("/text", get(|| async { r#"{"pv":{"power":"lots"}}"# }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "1"
            }),
        )
        .route(
            "/huge",
            get(|| async { format!("[{}1]", "0,".repeat(MAX_BODY_BYTES)) }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "no") }),
        )
}

#[tokio::test]
async fn reads_watts_at_the_pointer_in_either_unit() {
    let base = serve(inverter_app()).await;
    let w = inverter(&base, "/w", "/inverters/0/acPower", PowerUnit::W);
    assert_eq!(w.read_watts().await.expect("a reading"), 1234.5);
    let kw = inverter(&base, "/kw", "/pv/power", PowerUnit::KW);
    assert_eq!(kw.read_watts().await.expect("a reading"), 2500.0);
    // An inverter's standby draw at night reads as no production.
    let bare = inverter(&base, "/bare", "", PowerUnit::W);
    assert_eq!(bare.read_watts().await.expect("a reading"), 0.0);
}

#[tokio::test]
async fn every_failure_is_typed_with_a_reason() {
    let base = serve(inverter_app()).await;
    let cases = [
        ("/missing", "/a", "InverterHttpError"),
        ("/down", "/a", "InverterHttpError"),
        ("/garbage", "/a", "InverterNotJson"),
        ("/w", "/inverters/1/acPower", "InverterValueMissing"),
        ("/w", "/ok", "InverterValueNotANumber"),
        ("/text", "/pv/power", "InverterValueNotANumber"),
        ("/slow", "", "InverterTimeout"),
        ("/huge", "/0", "InverterAnswerTooLarge"),
    ];
    for (path, pointer, reason) in cases {
        let err = inverter(&base, path, pointer, PowerUnit::W)
            .read_watts()
            .await
            .expect_err(path);
        assert_eq!(err.reason(), reason, "{path}: {err}");
    }
    // Nothing listens on a port that was just freed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let err = inverter(&format!("http://{closed}"), "/", "", PowerUnit::W)
        .read_watts()
        .await
        .expect_err("refused");
    assert_eq!(err.reason(), "InverterUnreachable", "{err}");
}
