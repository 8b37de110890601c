//! Governance fixtures: ledger account keys of clients and nodes, proposals, votes
//! (by API key and signed by a node) and a bounded wait for a tally.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Api, TestNode};

/// The ledger account key of the client with API key `key` (`gk_<id>_…`).
pub fn client_account(key: &str) -> String {
    let id = key
        .strip_prefix("gk_")
        .and_then(|rest| rest.split('_').next())
        .expect("gk_<id>_<secret>");
    format!("client:{id}")
}

/// The ledger account key of `node`.
pub fn node_account(node: &TestNode) -> String {
    format!("node:{}", node.id())
}

impl Api {
    /// `POST /api/proposals` as `key` (an API key or the admin token).
    pub async fn propose(&self, key: &str, proposal: Value) -> (u16, Value) {
        self.client_send(
            key,
            reqwest::Method::POST,
            "/api/proposals",
            Some(proposal),
            &[],
        )
        .await
    }

    /// Opens `proposal` as `key` and returns its id (asserts 201).
    pub async fn opened(&self, key: &str, proposal: Value) -> String {
        let (status, view) = self.propose(key, proposal).await;
        assert_eq!(status, 201, "{view}");
        view["proposal_id"]
            .as_str()
            .expect("proposal_id")
            .to_string()
    }

    /// `POST /api/proposals/{id}/votes` as `key`.
    pub async fn vote(&self, key: &str, id: &str, choice: &str) -> (u16, Value) {
        self.client_send(
            key,
            reqwest::Method::POST,
            &format!("/api/proposals/{id}/votes"),
            Some(json!({"choice": choice})),
            &[],
        )
        .await
    }

    /// `GET /api/proposals/{id}` (asserts 200).
    pub async fn proposal(&self, id: &str) -> Value {
        let (status, view) = self.get(&format!("/api/proposals/{id}")).await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Waits until proposal `id` is no longer open, up to `limit`.
    pub async fn wait_tallied(&self, id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let view = self.proposal(id).await;
            if view["state"] != "open" {
                return view;
            }
            assert!(
                start.elapsed() < limit,
                "proposal {id} not tallied within {limit:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The live value of parameter `name`.
    pub async fn parameter(&self, name: &str) -> Value {
        let (status, view) = self.get(&format!("/api/parameters/{name}")).await;
        assert_eq!(status, 200, "{view}");
        view
    }
}

impl TestNode {
    /// A signed `POST /api/nodes/{id}/votes`; the status and body.
    pub async fn vote(&self, id: &str, choice: &str) -> (u16, Value) {
        let path = format!("/api/nodes/{}/votes", self.id());
        let body = json!({"proposal_id": id, "choice": choice}).to_string();
        let answer = self
            .client
            .send_signed(reqwest::Method::POST, &path, body.into_bytes())
            .await
            .expect("reaches the coordinator");
        (
            answer.status,
            serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
        )
    }
}

/// A parameter proposal of `name` = `value`, voting for `seconds`.
pub fn parameter_proposal(name: &str, value: i64, seconds: i64) -> Value {
    json!({
        "kind": "parameter",
        "title": format!("Set {name} to {value}"),
        "parameter": {"name": name, "value": value},
        "voting_period_seconds": seconds,
    })
}
