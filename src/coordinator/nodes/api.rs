//! The nodes domain's wire types: request and response bodies of
//! registration, heartbeats, node, market and join-token views, shared by
//! the server, the node's client and the OpenAPI document.
//! Unknown fields are ignored so that newer agents can talk to older
//! coordinators.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::coordinator::qualification::api::NodeQualification;
use crate::gpu::GpuDevice;

/// `POST /api/nodes/register`: binds `node_id` to `public_key` and records
/// what the node offers. Signed with the key being registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub node_id: Uuid,
    /// The node's ed25519 public key, hex of 32 bytes.
    pub public_key: String,
    #[serde(default)]
    pub gpu_info: Vec<GpuInfo>,
    #[serde(default)]
    pub location: Location,
    /// The node's benchmark report (`garage benchmark --json`), stored as
    /// sent. Its string field `class`, when present, chooses the market;
    /// otherwise the first GPU's name does; a node without either is in the
    /// `cpu` market.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub benchmark: Option<serde_json::Value>,
    /// A join token (`gjt_<id>.<secret>`), needed only when the id is not
    /// registered yet (or was deleted) and the coordinator runs in `token`
    /// mode. Re-registrations with the bound key need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_token: Option<String>,
}

/// One GPU of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GpuInfo {
    /// The name NVML reports, e.g. "NVIDIA GeForce RTX 4090".
    pub name: String,
    #[serde(default)]
    pub memory_total_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl From<&GpuDevice> for GpuInfo {
    fn from(device: &GpuDevice) -> Self {
        GpuInfo {
            name: device.name.clone(),
            memory_total_bytes: device.memory_total_bytes,
            uuid: Some(device.uuid.clone()),
        }
    }
}

/// Where a node is. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code, e.g. "SE".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// A region within the country, e.g. a Swedish price area "SE3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

/// Answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    pub node_id: Uuid,
    /// True for a new node, false when a known node re-registered.
    pub created: bool,
    pub market: String,
    /// Seconds until the node should send its first heartbeat.
    pub heartbeat_interval_seconds: u64,
}

/// `POST /api/nodes/{id}/heartbeat`: the node's current status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    /// The spec generation the agent converges to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    /// The agent's Ready condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// The node's GPUs now (a summary; the registration has the details).
    #[serde(default)]
    pub gpus: Vec<GpuInfo>,
    /// The agent's full status document (conditions, components), stored as sent.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub status: serde_json::Value,
    /// The node's power now: draw, solar production and surplus (stored
    /// with the status document, as its `power` member). Older agents send
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerReport>,
    /// The git commit of the last spec the node fully converged to, for a
    /// node whose spec comes from git (`garage run --git`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_revision: Option<String>,
}

/// A node's power at one moment, as its heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PowerReport {
    /// `spec.power.source`: `grid`, `solar` or `mixed`.
    pub source: String,
    /// `spec.power.policy`: `any`, `prefer-solar` or `solar-only`.
    pub policy: String,
    /// What the node draws, W (GPUs and CPU; averaged over the last sample period).
    pub draw_watts: f64,
    /// How the draw was measured: `nvml-energy+rapl`, `nvml-power+estimate`, `rapl`, `estimate`, …
    pub draw_measured_by: String,
    /// Solar production, W; absent on grid nodes. 0 while it cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_watts: Option<f64>,
    /// `model` (clear-sky model) or `http` (the node's inverter); absent on grid nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_source: Option<String>,
    /// False while the production cannot be read (then it counts as 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_ok: Option<bool>,
    /// Production minus draw, W; absent on grid nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surplus_watts: Option<f64>,
}

/// Answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatResponse {
    pub state: NodeState,
    /// Seconds until the next heartbeat is due.
    pub heartbeat_interval_seconds: u64,
}

/// Whether the coordinator hears from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Online,
    Offline,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Online => "online",
            NodeState::Offline => "offline",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "online" => Some(NodeState::Online),
            "offline" => Some(NodeState::Offline),
            _ => None,
        }
    }
}

/// A node as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub node_id: Uuid,
    /// The name the node's agent reports (its `metadata.name`), from its
    /// latest heartbeat; absent before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub state: NodeState,
    pub market: String,
    pub public_key: String,
    pub location: Location,
    pub gpu_info: Vec<GpuInfo>,
    #[schema(value_type = Option<Object>)]
    pub benchmark: Option<serde_json::Value>,
    /// RFC 3339.
    pub registered_at: String,
    /// RFC 3339: the last registration or heartbeat.
    pub last_seen_at: String,
    /// Heartbeats received so far.
    pub heartbeats: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// The git commit of the spec the node last converged to, from its
    /// latest heartbeat (nodes whose spec comes from git).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_revision: Option<String>,
    /// Claimed vs qualified (`GET /api/nodes/{id}` only): present when the
    /// market the node claims has a qualification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualification: Option<NodeQualification>,
}

/// `GET /api/nodes`: one page, by node id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    pub nodes: Vec<NodeView>,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// One stored heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatRecord {
    /// 1 for the node's first heartbeat, counting up.
    pub seq: u64,
    /// RFC 3339.
    pub received_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    #[schema(value_type = Object)]
    pub status: serde_json::Value,
}

/// `GET /api/nodes/{id}/heartbeats`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatList {
    pub heartbeats: Vec<HeartbeatRecord>,
    /// Pass as `?continue=` for older heartbeats; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// Nodes of one GPU class; its nodes are `GET /api/nodes?market=NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarketView {
    /// Normalised GPU class, e.g. "rtx-4090", "h100", "cpu".
    pub market: String,
    pub online: u64,
    pub total: u64,
    /// Nodes that passed the market's qualification; absent when the
    /// market has none (then every node of it takes its jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualified: Option<u64>,
}

/// `GET /api/markets`: one page, by market name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarketList {
    pub markets: Vec<MarketView>,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// `POST /api/join-tokens` (admin): a token for new nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJoinTokenRequest {
    /// Lifetime in seconds: 1 to 31536000 (365 days), default 86400 (24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Registrations it admits: 1 to 100000, default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// The only node id it admits; the way back for a deleted id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<Uuid>,
}

/// A join token as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JoinTokenView {
    /// The public part of the token (`gjt_<id>.…`).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<Uuid>,
    pub uses_total: u32,
    pub uses_left: u32,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// "active", "expired" or "used_up".
    pub state: String,
}

/// Answer to `POST /api/join-tokens`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JoinTokenCreated {
    /// The whole token, `gjt_<id>.<secret>`; the coordinator keeps only a hash.
    pub token: String,
    #[serde(flatten)]
    pub view: JoinTokenView,
}

/// `GET /api/join-tokens` (admin): one page, by token id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JoinTokenList {
    pub tokens: Vec<JoinTokenView>,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// `GET /api/coordinator`: who this coordinator is, for signing requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CoordinatorInfo {
    /// The audience line of every signed request (the second line of the
    /// canonical message); replicas on one database share it.
    pub coordinator_id: Uuid,
    /// The scheme signed requests must use, e.g. `garage-sig-v2`.
    pub signature_scheme: String,
}
