//! Job fixtures: accounts with API keys, submissions, and a simulated node
//! that claims and works leases through the signed client.

use std::time::{Duration, Instant};

use garage::coordinator::api::{
    AppendLogsRequest, ClaimRequest, CompleteRequest, JobType, Lease, LogStream, NewLogChunk,
    Outcome,
};
use serde_json::{json, Value};

use super::{Api, TestNode};

/// What a test account is given: 1,000 GAI, far more than its jobs hold.
pub const FUNDS_UGAI: i64 = 1_000_000_000;

/// The smallest valid container job document.
pub fn hello_job() -> Value {
    json!({
        "version": "0.1",
        "type": "container",
        "timeout": "1m",
        "ops": [{"type": "container/run", "id": "hello", "args": {"image": "busybox:1", "cmd": "echo hi"}}]
    })
}

/// A container job submission for `market`.
pub fn submission(market: &str) -> Value {
    json!({"job": hello_job(), "placement": {"market": market}})
}

impl Api {
    /// Makes an account through the admin API, funds it with
    /// [`FUNDS_UGAI`] and returns its API key.
    pub async fn account(&self, name: &str) -> String {
        let key = self.unfunded_account(name).await;
        let id = key.split('_').nth(1).expect("gk_<id>_<secret>");
        self.mint(&format!("client:{id}"), FUNDS_UGAI).await;
        key
    }

    /// Makes an account with no GAI and returns its API key.
    pub async fn unfunded_account(&self, name: &str) -> String {
        let (status, made) = self
            .admin_send(
                reqwest::Method::POST,
                "/api/accounts",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        made["api_key"].as_str().expect("api_key").to_string()
    }

    /// Sets parameter `name` to `value`, effective now (asserts 200).
    pub async fn set_parameter(&self, name: &str, value: i64) {
        let (status, body) = self
            .admin_send(
                reqwest::Method::PUT,
                &format!("/api/parameters/{name}"),
                Some(json!({"value": value})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The balance of ledger account `account` in µGAI.
    pub async fn balance(&self, account: &str) -> i64 {
        let (status, body) = self
            .admin_get(&format!("/api/ledger/accounts/{account}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["balance_ugai"].as_i64().expect("balance_ugai")
    }

    /// Mints `amount_ugai` into `account` (asserts 201).
    pub async fn mint(&self, account: &str, amount_ugai: i64) {
        let key = uuid::Uuid::new_v4().to_string();
        let response = reqwest::Client::new()
            .post(format!("{}/api/ledger/mint", self.base))
            .bearer_auth(super::ADMIN_TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"account": account, "amount_ugai": amount_ugai}))
            .send()
            .await
            .expect("reaches the coordinator");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "{text}");
    }

    /// A client request with `key` as the bearer token.
    pub async fn client_send(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("reaches the coordinator");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A client request that may fail to reach the coordinator (it may be
    /// down): the status and body, or `None`.
    pub async fn try_client_send(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let text = response.text().await.ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Submits and returns the job id (asserts 201).
    pub async fn submit(&self, key: &str, body: Value) -> String {
        let (status, job) = self
            .client_send(key, reqwest::Method::POST, "/api/jobs", Some(body), &[])
            .await;
        assert_eq!(status, 201, "{job}");
        job["job_id"].as_str().expect("job_id").to_string()
    }

    /// `GET /api/jobs/{id}` as `key` (asserts 200).
    pub async fn job(&self, key: &str, id: &str) -> Value {
        let (status, job) = self
            .client_send(
                key,
                reqwest::Method::GET,
                &format!("/api/jobs/{id}"),
                None,
                &[],
            )
            .await;
        assert_eq!(status, 200, "{job}");
        job
    }

    /// Waits until job `id` is in `state`, up to `limit`.
    pub async fn wait_job(&self, key: &str, id: &str, state: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(key, id).await;
            if job["state"] == state {
                return job;
            }
            assert!(
                start.elapsed() < limit,
                "job {id} not {state} within {limit:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl TestNode {
    /// One claim for container jobs, waiting up to `wait_seconds`.
    pub async fn claim(&self, wait_seconds: u32) -> Option<Lease> {
        let request = ClaimRequest {
            slots: 1,
            job_types: vec![JobType::Container, JobType::Inference],
            labels: Default::default(),
            wait_seconds: Some(wait_seconds),
            power: None,
        };
        self.client.claim(&request).await.expect("claim answered")
    }

    /// Sends one stdout chunk.
    pub async fn log(&self, lease: &Lease, seq: u64, data: &str) -> u32 {
        let request = AppendLogsRequest {
            chunks: vec![NewLogChunk {
                seq,
                stream: LogStream::Stdout,
                data: data.into(),
            }],
        };
        self.client
            .append_logs(lease.lease_id, &request)
            .await
            .expect("logs accepted")
            .accepted
    }

    /// Completes with `outcome` and `result`; the refusal when refused.
    pub async fn complete(
        &self,
        lease: &Lease,
        outcome: Outcome,
        result: Value,
    ) -> Result<String, garage::coordinator::ClientError> {
        let request = CompleteRequest {
            outcome,
            reason: None,
            result,
        };
        self.client
            .complete(lease.lease_id, &request)
            .await
            .map(|done| done.state.as_str().to_string())
    }
}

/// The status and code of a refusal.
pub fn refusal<T: std::fmt::Debug>(
    result: Result<T, garage::coordinator::ClientError>,
) -> (u16, String) {
    match result {
        Err(garage::coordinator::ClientError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
