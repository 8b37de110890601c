//! The node's gateway link against a real local worker (an axum server
//! streaming SSE chunks slowly) and a real local WebSocket server playing
//! the coordinator: the signed upgrade, hello, one request relayed to its
//! end (a character cut between the worker's chunks arrives whole), the
//! slots (one request too many is refused), a cancel mid-stream that
//! closes the worker's connection, a reconnect after the coordinator drops
//! the link, and a prompt stop.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use garage::coordinator::gateway::frames::{link_path, Endpoint, FromNode, ToNode};
use garage::coordinator::CoordinatorClient;
use garage::gateway_link::{self, LinkSettings, LinkState, LinkStatus};
use garage::identity::signing::{SignedHeaders, SCHEME};
use garage::identity::NodeIdentity;
use garage::metrics::AgentMetrics;

const WAIT: Duration = Duration::from_secs(10);

/// A worker stream that ended: its tag, and whether every chunk went out.
type Ended = (String, bool);

/// Reports when a response body is dropped, finished or not.
struct DropGuard {
    tag: String,
    finished: bool,
    ended: mpsc::UnboundedSender<Ended>,
}

impl DropGuard {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let _ = self.ended.send((self.tag.clone(), self.finished));
    }
}

/// The SSE text the worker streams for `chunks` chunks: each a JSON
/// event; the first chunk cut inside "é".
fn sse_pieces(chunks: usize) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    for i in 0..chunks {
        pieces.push(format!("data: {{\"i\":{i},\"c\":\"h").into_bytes());
        let e = "é".as_bytes();
        pieces.last_mut().expect("a piece").push(e[0]);
        pieces.push([&e[1..], b"\"}\n\n"].concat());
    }
    pieces.push(b"data: [DONE]\n\n".to_vec());
    pieces
}

fn sse_text(chunks: usize) -> String {
    String::from_utf8(sse_pieces(chunks).concat()).expect("UTF-8")
}

/// The worker: `/v1/models`, and chat completions streaming
/// `{"chunks": n, "delayMs": d, "tag": t}` pieces `d` ms apart.
async fn start_worker(ended: mpsc::UnboundedSender<Ended>) -> String {
    let app = Router::new()
        .route(
            "/v1/models",
            get(|| async { Json(serde_json::json!({"object": "list", "data": [{"id": "test-model", "object": "model"}]})) }),
        )
        .route(
            "/v1/chat/completions",
            post(move |Json(body): Json<serde_json::Value>| {
                let ended = ended.clone();
                async move {
                    let chunks = body["chunks"].as_u64().unwrap_or(1) as usize;
                    let delay = Duration::from_millis(body["delayMs"].as_u64().unwrap_or(10));
                    let guard = DropGuard {
                        tag: body["tag"].as_str().unwrap_or("").to_owned(),
                        finished: false,
                        ended,
                    };
                    let pieces = sse_pieces(chunks);
                    let stream = futures::stream::unfold(
                        (guard, pieces.into_iter()),
                        move |(mut guard, mut rest)| async move {
                            tokio::time::sleep(delay).await;
                            match rest.next() {
                                Some(piece) => {
                                    Some((Ok::<_, Infallible>(Bytes::from(piece)), (guard, rest)))
                                }
                                None => {
                                    guard.finish();
                                    None
                                }
                            }
                        },
                    );
                    (
                        [("content-type", "text/event-stream")],
                        Body::from_stream(stream),
                    )
                }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind worker");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A link the coordinator accepted, with its upgrade request's path and headers.
struct Accepted {
    ws: WebSocketStream<TcpStream>,
    path: String,
    headers: axum::http::HeaderMap,
}

/// The coordinator: `GET /api/coordinator` answered by hand, every other
/// connection upgraded to a WebSocket and handed to the test.
async fn start_coordinator(coordinator_id: Uuid) -> (String, mpsc::UnboundedReceiver<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind coordinator");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 64];
                let n = stream.peek(&mut head).await.unwrap_or(0);
                if head[..n].starts_with(b"GET /api/coordinator ") {
                    let mut request = vec![0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let body = serde_json::json!({"coordinator_id": coordinator_id, "signature_scheme": SCHEME}).to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                    return;
                }
                let seen = Arc::new(std::sync::Mutex::new(None));
                let record = Arc::clone(&seen);
                // The callback's type is tungstenite's, large error and all.
                #[allow(clippy::result_large_err)]
                let callback = move |request: &Request, response: Response| {
                    *record.lock().expect("lock") =
                        Some((request.uri().path().to_owned(), request.headers().clone()));
                    Ok(response)
                };
                if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                    let (path, headers) = seen.lock().expect("lock").take().expect("request seen");
                    let _ = tx.send(Accepted { ws, path, headers });
                }
            });
        }
    });
    (base, rx)
}

async fn next_link(links: &mut mpsc::UnboundedReceiver<Accepted>) -> Accepted {
    tokio::time::timeout(WAIT, links.recv())
        .await
        .expect("the node opens its link in time")
        .expect("the coordinator runs")
}

async fn read_frame(ws: &mut WebSocketStream<TcpStream>) -> FromNode {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the link is open")
            .expect("a readable frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("a node frame");
        }
    }
}

async fn send(ws: &mut WebSocketStream<TcpStream>, frame: &ToNode) {
    let text = serde_json::to_string(frame).expect("JSON");
    ws.send(Message::text(text)).await.expect("send");
}

fn request(id: u64, chunks: usize, delay_ms: u64) -> ToNode {
    ToNode::Request {
        id,
        endpoint: Endpoint::ChatCompletions,
        body: serde_json::json!({"model": "test-model", "stream": true, "chunks": chunks, "delayMs": delay_ms, "tag": format!("r{id}")}).to_string(),
    }
}

async fn wait_for_status(
    status: &mut watch::Receiver<Option<LinkStatus>>,
    what: &str,
    done: impl Fn(&LinkStatus) -> bool,
) -> LinkStatus {
    let waited = tokio::time::timeout(WAIT, async {
        let seen = status.wait_for(|s| s.as_ref().is_some_and(&done)).await;
        seen.map(|s| s.clone()).ok().flatten()
    })
    .await;
    match waited {
        Ok(Some(shown)) => shown,
        _ => panic!("status never showed {what}: {:?}", status.borrow()),
    }
}

#[tokio::test]
async fn the_link_relays_refuses_cancels_reconnects_and_stops() {
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let worker_url = start_worker(ended_tx).await;
    let coordinator_id = Uuid::new_v4();
    let (base, mut links) = start_coordinator(coordinator_id).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let identity =
        Arc::new(NodeIdentity::load_or_create(&dir.path().join("identity")).expect("identity"));
    let client = CoordinatorClient::new(&base, Arc::clone(&identity)).expect("client");
    let (status_tx, mut status) = watch::channel(None);
    let metrics = AgentMetrics::new();
    let cancel = CancellationToken::new();
    let settings = LinkSettings {
        worker_url,
        slots: 2,
    };
    let link = tokio::spawn(gateway_link::run(
        client,
        settings,
        status_tx,
        metrics.clone(),
        cancel.clone(),
    ));

    // The upgrade is signed like any node request: GET, the path, no body.
    let Accepted {
        mut ws,
        path,
        headers,
    } = next_link(&mut links).await;
    assert_eq!(path, link_path(identity.node_id()));
    let signed = SignedHeaders::from_headers(&headers).expect("signature headers");
    assert_eq!(signed.node_id, identity.node_id());
    let now = i64::try_from(garage::clock::unix_secs()).expect("now");
    signed
        .verify(
            coordinator_id,
            "GET",
            &path,
            b"",
            &identity.verifying_key(),
            now,
        )
        .expect("the upgrade's signature verifies");

    assert_eq!(
        read_frame(&mut ws).await,
        FromNode::Hello {
            models: vec!["test-model".into()],
            slots: 2
        }
    );

    // One request, relayed to its end.
    send(&mut ws, &request(1, 3, 30)).await;
    assert_eq!(
        read_frame(&mut ws).await,
        FromNode::Head { id: 1, status: 200 }
    );
    let mut body = String::new();
    let mut datas = 0;
    loop {
        match read_frame(&mut ws).await {
            FromNode::Data {
                id: 1,
                data,
                worker_first_byte_us,
            } => {
                assert_eq!(
                    worker_first_byte_us.is_some(),
                    datas == 0,
                    "only the first piece carries the first-byte time"
                );
                if let Some(us) = worker_first_byte_us {
                    assert!(us >= 30_000, "the worker waited 30 ms first, got {us} µs");
                }
                datas += 1;
                body.push_str(&data);
            }
            FromNode::End { id: 1 } => break,
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(body, sse_text(3), "the body arrives whole, é included");
    assert!(datas >= 2, "the body streamed in pieces, got {datas}");
    assert_eq!(
        tokio::time::timeout(WAIT, ended.recv())
            .await
            .expect("in time"),
        Some(("r1".into(), true))
    );
    let shown = wait_for_status(&mut status, "one served", |s| s.served == 1).await;
    assert_eq!(shown.state, LinkState::Connected);
    assert_eq!(shown.models, vec!["test-model".to_string()]);

    // Two slow requests take both slots; a third is refused at once.
    send(&mut ws, &request(2, 200, 50)).await;
    send(&mut ws, &request(3, 200, 50)).await;
    wait_for_status(&mut status, "two in flight", |s| s.in_flight == 2).await;
    send(&mut ws, &request(4, 1, 10)).await;
    let mut refused = false;
    let mut data_of_2 = false;
    while !(refused && data_of_2) {
        match read_frame(&mut ws).await {
            FromNode::Failed { id: 4, message } => {
                assert_eq!(message, "node at capacity");
                refused = true;
            }
            FromNode::Data { id: 2, .. } => data_of_2 = true,
            FromNode::Head { id: 2 | 3, status } => assert_eq!(status, 200),
            FromNode::Data { id: 3, .. } => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }

    // A cancel mid-stream drops the worker's connection.
    send(&mut ws, &ToNode::Cancel { id: 2 }).await;
    let dropped = tokio::time::timeout(WAIT, ended.recv())
        .await
        .expect("the worker sees request 2 go away in time");
    assert_eq!(dropped, Some(("r2".into(), false)), "cut off, not finished");
    let shown = wait_for_status(&mut status, "one cancelled", |s| {
        s.cancelled == 1 && s.in_flight == 1
    })
    .await;
    assert_eq!((shown.refused, shown.served), (1, 1));

    // The coordinator drops the link: request 3 ends with it, and the node
    // connects again and says hello again.
    drop(ws);
    let dropped = tokio::time::timeout(WAIT, ended.recv())
        .await
        .expect("request 3 ends with the link");
    assert_eq!(dropped, Some(("r3".into(), false)));
    let Accepted { mut ws, .. } = next_link(&mut links).await;
    assert!(matches!(
        read_frame(&mut ws).await,
        FromNode::Hello { slots: 2, .. }
    ));
    let shown = wait_for_status(&mut status, "connected again", |s| {
        s.state == LinkState::Connected && s.reconnects == 1
    })
    .await;
    assert_eq!((shown.cancelled, shown.in_flight), (2, 0));
    assert!(shown.last_error.is_some());

    // Garbage is ignored; the link keeps serving.
    ws.send(Message::text("{\"type\":\"nonsense\"}"))
        .await
        .expect("send");
    ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    send(&mut ws, &request(5, 1, 10)).await;
    assert_eq!(
        read_frame(&mut ws).await,
        FromNode::Head { id: 5, status: 200 }
    );

    let text = metrics.render();
    for line in [
        "garage_agent_gateway_link_up 1",
        "garage_agent_gateway_link_connects_total{result=\"success\"} 2",
        "garage_agent_gateway_requests_total{outcome=\"ok\"} 1",
        "garage_agent_gateway_requests_total{outcome=\"cancelled\"} 2",
        "garage_agent_gateway_requests_total{outcome=\"refused\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }

    // The agent's stop ends the link promptly, with a close.
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(3), link)
        .await
        .expect("the link stops promptly")
        .expect("no panic");
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(message) = ws.next().await {
            if matches!(message, Ok(Message::Close(_)) | Err(_)) {
                return true;
            }
        }
        true
    })
    .await;
    assert_eq!(closed, Ok(true));
    assert_eq!(
        status.borrow().as_ref().map(|s| s.state),
        Some(LinkState::Disconnected)
    );
}

#[tokio::test]
async fn a_refused_upgrade_is_retried_not_fatal() {
    // A coordinator that answers 404 to the upgrade (the node is not
    // registered yet): the link keeps trying, and reports the status.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let coordinator_id = Uuid::new_v4();
    let (attempts_tx, mut attempts) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = vec![0u8; 8192];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let answer = if request[..n].starts_with(b"GET /api/coordinator ") {
                let body = serde_json::json!({"coordinator_id": coordinator_id, "signature_scheme": SCHEME}).to_string();
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
            } else {
                let _ = attempts_tx.send(());
                let body = r#"{"error":{"code":"unknown_node","message":"register first"}}"#;
                format!("HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
            };
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let (ended_tx, _ended) = mpsc::unbounded_channel();
    let worker_url = start_worker(ended_tx).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let identity =
        Arc::new(NodeIdentity::load_or_create(&dir.path().join("identity")).expect("identity"));
    let client = CoordinatorClient::new(&base, identity).expect("client");
    let (status_tx, mut status) = watch::channel(None);
    let metrics = AgentMetrics::new();
    let cancel = CancellationToken::new();
    let link = tokio::spawn(gateway_link::run(
        client,
        LinkSettings {
            worker_url,
            slots: 1,
        },
        status_tx,
        metrics.clone(),
        cancel.clone(),
    ));
    for _ in 0..2 {
        tokio::time::timeout(WAIT, attempts.recv())
            .await
            .expect("the node tries (again) in time");
    }
    let shown = wait_for_status(&mut status, "the refusal", |s| {
        s.last_error.as_deref().is_some_and(|e| e.contains("404"))
    })
    .await;
    assert_ne!(shown.state, LinkState::Connected);
    assert!(metrics
        .render()
        .contains("garage_agent_gateway_link_connects_total{result=\"error\"}"),);
    assert!(!link.is_finished(), "a refusal must not end the link");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(3), link)
        .await
        .expect("stops promptly")
        .expect("no panic");
}
