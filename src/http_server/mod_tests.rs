//! The shared server over real sockets: idle and half-open connections
//! beyond the cap do not keep a client out, headers must come in time,
//! streams are not cut, and shutdown waits for open requests.

use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: ServerLimits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/who",
            get(|ConnectInfo(remote): ConnectInfo<SocketAddr>| async move { remote.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "slow\n"
            }),
        );
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(
        listener,
        router,
        limits,
        stop.clone().cancelled_owned(),
    ));
    Running { addr, stop, task }
}

/// One `GET path` on a new connection; the status line and body.
async fn get_raw(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_cap_do_not_keep_a_client_out() {
    let server = start(ServerLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 8,
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(2), get_raw(server.addr, "/healthz"))
        .await
        .expect("/healthz answers within 2 s")
        .expect("reads");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The oldest idle connections were closed to make room.
    let mut closed = 0;
    for stream in &mut idle[..8] {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no idle connection was closed");
    server.stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("stops")
        .expect("joins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_must_arrive_within_the_timeout() {
    let server = start(ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 64,
    })
    .await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut slowloris = TcpStream::connect(server.addr).await.expect("connect");
    slowloris
        .write_all(b"GET /healthz HTTP/1.1\r\nhost:")
        .await
        .expect("part");
    for stream in [&mut silent, &mut slowloris] {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut rest))
            .await
            .expect("the server closes a connection that sends no complete headers");
        // Closed (EOF), maybe after a 408, or reset: either way it is gone.
        if let Ok(n) = read {
            let text = String::from_utf8_lossy(&rest[..n]);
            assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
        }
    }
    // A request that takes longer than the header timeout to answer is fine.
    let answer = get_raw(server.addr, "/slow").await.expect("slow answer");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow\n"),
        "{answer}"
    );
    let who = get_raw(server.addr, "/who").await.expect("who");
    assert!(who.contains("127.0.0.1:"), "{who}");
    server.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_open_request_finish() {
    let server = start(ServerLimits::for_this_process()).await;
    let slow = tokio::spawn(get_raw(server.addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop.cancel();
    let answer = slow.await.expect("joins").expect("answered");
    assert!(answer.ends_with("slow\n"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("stops")
        .expect("joins");
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "still listening"
    );
}
