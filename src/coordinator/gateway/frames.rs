//! The gateway link's wire format, shared by the coordinator and the
//! agent: JSON text frames over the WebSocket a node opens at
//! [`LINK_PATH`]. The coordinator sends requests (an OpenAI path and its
//! JSON body, numbered per link) and cancellations; the node answers each
//! request with a head (the worker's status), body chunks as the worker
//! wrote them (SSE lines or one JSON body) and an end, or a failure. Many
//! requests share the link; frames of different requests interleave.

use serde::{Deserialize, Serialize};

/// The link's route; `{node_id}` is the connecting node's id, and the
/// upgrade request is signed by that node like every node request.
pub const LINK_PATH: &str = "/api/nodes/{node_id}/link";
/// The most a single frame may carry, either way (a request body is at
/// most the coordinator's body limit; a chunk is what the worker wrote).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// The most requests a node may announce it serves at once.
pub const MAX_SLOTS: u32 = 256;
/// The most models a node may announce.
pub const MAX_MODELS: usize = 16;

/// The link path for `node_id`.
pub fn link_path(node_id: uuid::Uuid) -> String {
    LINK_PATH.replace("{node_id}", &node_id.to_string())
}

/// The OpenAI endpoints the gateway forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    #[serde(rename = "/v1/chat/completions")]
    ChatCompletions,
    #[serde(rename = "/v1/completions")]
    Completions,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
        }
    }
}

/// Coordinator → node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum ToNode {
    /// Ask the node's worker: POST `endpoint` with `body` (JSON text).
    Request {
        id: u64,
        endpoint: Endpoint,
        body: String,
    },
    /// The client went away: stop request `id` and free its slot.
    Cancel { id: u64 },
}

/// Node → coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum FromNode {
    /// What the node serves; first on every link, again when it changes.
    Hello {
        /// Model ids as the worker's `/v1/models` lists them.
        models: Vec<String>,
        /// Requests the node takes at once.
        slots: u32,
    },
    /// The worker answered request `id` with `status`.
    Head { id: u64, status: u16 },
    /// A piece of request `id`'s body, as the worker wrote it.
    /// `worker_first_byte_us` rides on the first piece: microseconds from
    /// the node sending the request to the worker's first body byte.
    Data {
        id: u64,
        data: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_first_byte_us: Option<u64>,
    },
    /// Request `id`'s body is complete.
    End { id: u64 },
    /// Request `id` failed on the node (worker unreachable, its stream
    /// broke); nothing more comes for it.
    Failed { id: u64, message: String },
}

impl FromNode {
    /// The request a frame belongs to (`None` for a hello).
    pub fn request_id(&self) -> Option<u64> {
        match self {
            FromNode::Hello { .. } => None,
            FromNode::Head { id, .. }
            | FromNode::Data { id, .. }
            | FromNode::End { id }
            | FromNode::Failed { id, .. } => Some(*id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_a_stable_shape() {
        let request = ToNode::Request {
            id: 7,
            endpoint: Endpoint::ChatCompletions,
            body: "{}".into(),
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"type":"request","id":7,"endpoint":"/v1/chat/completions","body":"{}"}"#
        );
        let data: FromNode =
            serde_json::from_str(r#"{"type":"data","id":7,"data":"x","workerFirstByteUs":12}"#)
                .unwrap();
        assert_eq!(data.request_id(), Some(7));
        assert!(serde_json::from_str::<FromNode>(r#"{"type":"end","id":1,"extra":1}"#).is_err());
        assert_eq!(
            link_path(uuid::Uuid::nil()),
            "/api/nodes/00000000-0000-0000-0000-000000000000/link"
        );
    }
}
