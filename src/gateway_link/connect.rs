//! Opening the link: the WebSocket URL of the coordinator's link path
//! (`ws://` for an `http://` coordinator, `wss://` for `https://`), the
//! upgrade request signed like any node request (GET, empty body, the path
//! as sent), frame limits from the wire format, and a bounded time to
//! connect. A refusal of the upgrade keeps its HTTP status.

use std::time::Duration;

use reqwest::Method;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::coordinator::gateway::frames::{link_path, MAX_FRAME_BYTES};
use crate::coordinator::{ClientError, CoordinatorClient};

/// The most the TCP, TLS and WebSocket handshakes may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The open link.
pub type LinkStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why the link could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("coordinator URL {url:?} is not http:// or https://")]
    BadUrl { url: String },
    #[error("cannot sign the link's upgrade request")]
    Sign(#[source] ClientError),
    #[error("the link's upgrade request to {url} cannot be built")]
    Request {
        url: String,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("the coordinator refused the link at {url} with HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("cannot open the link at {url}")]
    Handshake {
        url: String,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("opening the link at {url} took more than {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout { url: String },
}

impl ConnectError {
    /// The HTTP status of a refused upgrade (401: not signed right or the
    /// coordinator's id changed; 403, 404: the node is not registered yet).
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The WebSocket URL of `path` on the coordinator at `base` (no trailing `/`).
pub fn ws_url(base: &str, path: &str) -> Result<String, ConnectError> {
    let base = base.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("http://") {
        Ok(format!("ws://{rest}{path}"))
    } else if let Some(rest) = base.strip_prefix("https://") {
        Ok(format!("wss://{rest}{path}"))
    } else {
        Err(ConnectError::BadUrl { url: base.into() })
    }
}

/// The limits both ends keep: no frame or message above the wire format's.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Opens this node's link to the coordinator `client` talks to.
pub async fn connect(client: &CoordinatorClient) -> Result<LinkStream, ConnectError> {
    let path = link_path(client.identity().node_id());
    let url = ws_url(client.base_url(), &path)?;
    let attempt = async {
        let headers = client
            .signed_headers(&Method::GET, &path)
            .await
            .map_err(ConnectError::Sign)?;
        let mut request =
            url.as_str()
                .into_client_request()
                .map_err(|source| ConnectError::Request {
                    url: url.clone(),
                    source,
                })?;
        for (name, value) in headers {
            let name = HeaderName::from_static(name);
            // The signature headers are hex, digits and UUIDs.
            let value = HeaderValue::from_str(&value).map_err(|err| ConnectError::Request {
                url: url.clone(),
                source: tokio_tungstenite::tungstenite::Error::HttpFormat(err.into()),
            })?;
            request.headers_mut().insert(name, value);
        }
        let (stream, _response) =
            tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)
                .await
                .map_err(|source| refused_or_failed(&url, source))?;
        Ok(stream)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| ConnectError::Timeout { url: url.clone() })?
}

fn refused_or_failed(url: &str, source: tokio_tungstenite::tungstenite::Error) -> ConnectError {
    match source {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).chars().take(200).collect())
                .unwrap_or_default();
            ConnectError::Refused {
                url: url.into(),
                status: response.status().as_u16(),
                body,
            }
        }
        source => ConnectError::Handshake {
            url: url.into(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_for_http_wss_for_https_others_refused() {
        let path = "/api/nodes/00000000-0000-0000-0000-000000000000/link";
        assert_eq!(
            ws_url("http://127.0.0.1:7070", path).expect("http"),
            format!("ws://127.0.0.1:7070{path}")
        );
        assert_eq!(
            ws_url("https://coordinator.garage.example/", path).expect("https"),
            format!("wss://coordinator.garage.example{path}")
        );
        assert_eq!(
            ws_url("https://garage.example/prefix", path).expect("a prefix"),
            format!("wss://garage.example/prefix{path}")
        );
        let err = ws_url("ftp://x", path).expect_err("ftp");
        assert!(err.to_string().contains("not http:// or https://"), "{err}");
    }
}
