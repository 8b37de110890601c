//! The per-request deadline: a request (its body read included) that has
//! no response within the limit gets 408 with a JSON error, and its handler
//! is dropped. Routes that stream or run long (the worker's completions)
//! are left out by the server that owns them.

use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

/// Adds the deadline `limit` to every route of `router`.
pub fn with_request_timeout<S>(router: Router<S>, limit: Duration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(limit, next.run(request)).await {
                Ok(response) => response,
                Err(_) => timed_out(limit),
            }
        },
    ))
}

fn timed_out(limit: Duration) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "request_timeout",
            "message": format!(
                "the request was not completed within {} s (send the body promptly, or retry later)",
                limit.as_secs()
            ),
        }
    });
    (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use hyper_util::service::TowerToHyperService;

    use super::*;

    async fn call(router: Router, path: &str) -> (StatusCode, String) {
        let service = TowerToHyperService::new(router);
        let request = axum::http::Request::get(path)
            .body(Body::empty())
            .expect("request");
        let response = hyper::service::Service::call(&service, request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_handler_gets_408_and_a_quick_one_its_answer() {
        let router = with_request_timeout(
            Router::new()
                .route("/quick", get(|| async { "done" }))
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(31)).await;
                        "too late"
                    }),
                ),
            Duration::from_secs(30),
        );
        assert_eq!(
            call(router.clone(), "/quick").await,
            (StatusCode::OK, "done".into())
        );
        let (status, body) = call(router, "/slow").await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert!(
            body.contains("\"request_timeout\"") && body.contains("30 s"),
            "{body}"
        );
    }
}
