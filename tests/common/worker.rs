//! A worker served in-process on a loopback port, and the Python client
//! checks (tests/reference/) driven against it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use garage::inference::{serve_with_listener, WorkerConfig, WorkerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running worker; [`Served::stop`] drains and joins it.
pub struct Served {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), WorkerError>>,
}

/// Serves the worker `configure` describes (given its address) and waits,
/// up to `ready_within`, for `/readyz` (the model loaded).
pub async fn serve(
    configure: impl FnOnce(SocketAddr) -> WorkerConfig,
    ready_within: Duration,
) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_listener(listener, configure(addr), async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + ready_within;
    while !http_get(addr, "/readyz").await.starts_with("HTTP/1.1 200") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never became ready in {ready_within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Served { addr, stop, server }
}

impl Served {
    /// The OpenAI base URL.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stops the worker; it must drain and end cleanly within a minute.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(60), self.server)
            .await
            .expect("server stops")
            .expect("join");
        assert!(result.is_ok(), "{result:?}");
    }
}

/// A raw HTTP/1.1 GET: the whole response text (empty when unreachable).
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    buf
}

/// Runs tests/reference/`script` with `base` as its argument; fails the
/// test with its output when it fails.
pub async fn run_check(python: &Path, script: &str, base: &str) {
    let out = tokio::process::Command::new(python)
        .arg(super::script(script))
        .arg(base)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
}
