//! The real `garage worker` binary under a lowered file limit (issue 9,
//! B4): idle connections beyond the limit leave `/healthz` answering, and
//! the worker still serves a completion afterwards.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_file_limit_leave_the_worker_answering() {
    let Some(python) = common::python() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("tiny");
    common::make_tiny(&python, &model, &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = tmp.path().join("worker.log");
    let file = std::fs::File::create(&log).expect("log");
    let mut worker = Worker(
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_garage"))
            .args(["worker", "--listen", &addr, "--device", "cpu", "--model"])
            .arg(&model)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start garage worker"),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(format!("http://{addr}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if let Some(status) = worker.0.try_wait().expect("child") {
            panic!(
                "worker exited with {status}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "worker not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    for _ in 0..3 {
        let response = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .expect("/healthz answers within 2 s");
        assert!(response.status().is_success());
    }
    let completion = client
        .post(format!("http://{addr}/v1/completions"))
        .timeout(Duration::from_secs(30))
        .json(&serde_json::json!({"prompt": "hello", "max_tokens": 2}))
        .send()
        .await
        .expect("a completion is served");
    assert_eq!(completion.status(), 200);
    drop(idle);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("Too many open files"), "{text}");
}
