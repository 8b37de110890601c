//! A Docker socket proxy that can cut the agent's connections.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------- socket proxy

/// A Unix-socket proxy in front of the Docker engine. Point the agent at it
/// with `DOCKER_HOST=unix://<path>`; [`DockerProxy::cut`] drops every live
/// connection (the agent's event stream included) while still accepting new
/// ones, which is what an engine restart looks like from the client side.
#[derive(Debug)]
pub struct DockerProxy {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accepted: Arc<AtomicUsize>,
}

impl DockerProxy {
    pub fn start() -> DockerProxy {
        let upstream = upstream_socket();
        let dir = tempfile::Builder::new()
            .prefix("garage-proxy-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("docker.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let listener = {
            let _guard = rt.enter();
            tokio::net::UnixListener::bind(&path).expect("bind proxy socket")
        };
        let (live2, accepted2) = (live.clone(), accepted.clone());
        rt.spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    continue;
                };
                accepted2.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::UnixStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                let mut live = live2.lock().unwrap();
                live.retain(|h| !h.is_finished());
                live.push(task.abort_handle());
            }
        });
        DockerProxy {
            path,
            _dir: dir,
            rt: Some(rt),
            live,
            accepted,
        }
    }

    /// `unix://<path>`, for DOCKER_HOST.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Drops every live connection; returns how many were cut.
    pub fn cut(&self) -> usize {
        let mut live = self.live.lock().unwrap();
        let n = live.iter().filter(|h| !h.is_finished()).count();
        for h in live.drain(..) {
            h.abort();
        }
        n
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.cut();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The engine's socket: DOCKER_HOST when it is `unix://`, else the default.
fn upstream_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => PathBuf::from(h.trim_start_matches("unix://")),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}
