//! Hub model sources (`hf:owner/name[/file][@revision]`) end to end through
//! hf-hub: the real Hugging Face hub is out of reach here, so a loopback
//! server speaks its download protocol (repository info, `resolve` with
//! ranges, etag and commit headers) over a tiny checkpoint the reference
//! script makes. Download, cache reuse with the hub gone, a sharded model,
//! GGUF choice, an unreachable hub and a missing repository; and the
//! `garage worker` binary serving a hub model.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use garage::error_text::one_line;
use garage::inference::hub::{self, HubOptions, ModelRef};
use garage::inference::loader;
use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// One repository's files, served like the hub serves them.
#[derive(Debug, Default)]
struct Hub {
    repos: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    requests: AtomicUsize,
}

async fn info(
    State(hub): State<Arc<Hub>>,
    UrlPath((owner, name, _rev)): UrlPath<(String, String, String)>,
) -> Response {
    hub.requests.fetch_add(1, Ordering::SeqCst);
    match hub.repos.get(&format!("{owner}/{name}")) {
        Some(files) => Json(serde_json::json!({
            "sha": COMMIT,
            "siblings": files.keys().map(|f| serde_json::json!({"rfilename": f})).collect::<Vec<_>>(),
        }))
        .into_response(),
        None => (StatusCode::UNAUTHORIZED, "Repository not found").into_response(),
    }
}

async fn resolve(
    State(hub): State<Arc<Hub>>,
    UrlPath((owner, name, _rev, file)): UrlPath<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    hub.requests.fetch_add(1, Ordering::SeqCst);
    let Some(bytes) = hub
        .repos
        .get(&format!("{owner}/{name}"))
        .and_then(|r| r.get(&file))
    else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(bytes)));
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    let (start, end) = match range {
        Some((a, b)) => (a, b.min(bytes.len() - 1)),
        None => (0, bytes.len() - 1),
    };
    (
        if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        },
        [
            (header::ETAG.as_str(), etag),
            ("x-repo-commit", COMMIT.to_string()),
            (
                header::CONTENT_RANGE.as_str(),
                format!("bytes {start}-{end}/{}", bytes.len()),
            ),
        ],
        bytes[start..=end].to_vec(),
    )
        .into_response()
}

/// Serves `hub` on a loopback port until the test's runtime ends.
async fn serve(hub: Arc<Hub>) -> String {
    let app = Router::new()
        .route("/api/models/{owner}/{name}/revision/{rev}", get(info))
        .route("/{owner}/{name}/resolve/{rev}/{*file}", get(resolve))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect()
}

fn options(cache: &Path, endpoint: &str) -> HubOptions {
    HubOptions {
        cache_dir: cache.to_path_buf(),
        endpoint: endpoint.to_string(),
        offline: false,
        token: None,
    }
}

/// An endpoint nothing listens on.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_model_downloads_loads_and_is_reused_offline() {
    let Some(python) = common::python() else {
        return;
    };
    let made = tempfile::tempdir().expect("tempdir");
    common::make_tiny(&python, made.path(), &["--shards", "2"]);
    let mut hub = Hub::default();
    let mut files = files_of(made.path());
    files.insert("README.md".into(), b"tiny".to_vec());
    hub.repos.insert("garage-test/tiny".into(), files.clone());
    let hub = Arc::new(hub);
    let endpoint = serve(hub.clone()).await;

    let cache = tempfile::tempdir().expect("cache");
    let model: ModelRef = "hf:garage-test/tiny".parse().expect("ref");
    let dir = hub::resolve(&model, &options(cache.path(), &endpoint))
        .await
        .expect("download");
    assert!(dir.starts_with(cache.path()), "{}", dir.display());
    for (name, bytes) in &files {
        if name == "README.md" {
            assert!(!dir.join(name).exists(), "README.md is not needed");
            continue;
        }
        assert_eq!(&std::fs::read(dir.join(name)).expect(name), bytes, "{name}");
    }
    let cp = loader::load(&dir).expect("the downloaded model loads");
    assert!(cp.config.vocab_size > 0);

    // The hub is gone: the cached snapshot serves, without a request.
    let before = hub.requests.load(Ordering::SeqCst);
    let again = hub::resolve(&model, &options(cache.path(), &dead_endpoint()))
        .await
        .expect("from the cache");
    assert_eq!(again, dir);
    let mut offline = options(cache.path(), &dead_endpoint());
    offline.offline = true;
    assert_eq!(hub::resolve(&model, &offline).await.expect("offline"), dir);
    assert_eq!(hub.requests.load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gguf_repositories_need_one_file_named_when_they_hold_several() {
    let Some(python) = common::python() else {
        return;
    };
    let made = tempfile::tempdir().expect("tempdir");
    common::make_tiny(&python, made.path(), &["--gguf", "Q8_0"]);
    let gguf = std::fs::read(made.path().join("model.gguf")).expect("gguf");
    let mut hub = Hub::default();
    hub.repos.insert(
        "garage-test/tiny-gguf".into(),
        BTreeMap::from([
            ("tiny.Q8_0.gguf".to_string(), gguf.clone()),
            ("other.Q4_0.gguf".to_string(), b"not used".to_vec()),
        ]),
    );
    let endpoint = serve(Arc::new(hub)).await;
    let cache = tempfile::tempdir().expect("cache");
    let opts = options(cache.path(), &endpoint);

    let two: ModelRef = "hf:garage-test/tiny-gguf@main".parse().expect("ref");
    let e = one_line(&hub::resolve(&two, &opts).await.expect_err("ambiguous"));
    assert!(
        e.contains("other.Q4_0.gguf, tiny.Q8_0.gguf") && e.contains("name one"),
        "{e}"
    );

    let named: ModelRef = "hf:garage-test/tiny-gguf/tiny.Q8_0.gguf@main"
        .parse()
        .expect("ref");
    let file = hub::resolve(&named, &opts).await.expect("download");
    assert_eq!(std::fs::read(&file).expect("read"), gguf);
    loader::load(&file).expect("the downloaded GGUF loads");
}

#[tokio::test]
async fn an_unreachable_hub_and_a_missing_repository_are_clear_errors() {
    let cache = tempfile::tempdir().expect("cache");
    let model: ModelRef = "hf:garage-test/tiny".parse().expect("ref");
    let e = one_line(
        &hub::resolve(&model, &options(cache.path(), &dead_endpoint()))
            .await
            .expect_err("unreachable"),
    );
    assert!(
        e.contains("cannot reach http://127.0.0.1:")
            && e.contains("no internet access")
            && e.contains("spec.worker.model.path"),
        "{e}"
    );

    let endpoint = serve(Arc::new(Hub::default())).await;
    let e = one_line(
        &hub::resolve(&model, &options(cache.path(), &endpoint))
            .await
            .expect_err("missing"),
    );
    assert!(
        e.contains("has no repository hf:garage-test/tiny@main"),
        "{e}"
    );
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_worker_serves_a_hub_model() {
    let Some(python) = common::python() else {
        return;
    };
    let made = tempfile::tempdir().expect("tempdir");
    common::make_tiny(&python, made.path(), &[]);
    let mut hub = Hub::default();
    hub.repos
        .insert("garage-test/tiny".into(), files_of(made.path()));
    let endpoint = serve(Arc::new(hub)).await;
    let cache = tempfile::tempdir().expect("cache");
    let port = free_port();
    let log = cache.path().join("worker.log");
    let child = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(["worker", "--device", "cpu", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--model", "hf:garage-test/tiny@main", "--model-cache"])
        .arg(cache.path().join("hub"))
        .env("HF_ENDPOINT", &endpoint)
        .env_remove("HF_HUB_OFFLINE")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start garage worker");
    let _worker = Worker(child);

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let models = loop {
        assert!(
            Instant::now() < deadline,
            "worker not ready within 60 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            let body = client
                .get(format!("{base}/v1/models"))
                .send()
                .await
                .expect("models")
                .text()
                .await
                .expect("body");
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(models.contains("\"garage-test/tiny\""), "{models}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("download finished"), "{text}");
    let snapshot: PathBuf = cache
        .path()
        .join("hub/models--garage-test--tiny/snapshots")
        .join(COMMIT);
    assert!(
        snapshot.join("config.json").exists(),
        "{}",
        snapshot.display()
    );
}

/// Every path under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_naming_shards_outside_the_repository_is_refused_before_any_download() {
    for bad in ["../../escape.safetensors", "/etc/passwd"] {
        let index =
            serde_json::json!({"weight_map": {"w": "model-00001-of-00001.safetensors", "x": bad}});
        let mut files = BTreeMap::new();
        files.insert("config.json".to_string(), b"{}".to_vec());
        files.insert("tokenizer.json".to_string(), b"{}".to_vec());
        files.insert(
            "model.safetensors.index.json".to_string(),
            index.to_string().into_bytes(),
        );
        files.insert(
            "model-00001-of-00001.safetensors".to_string(),
            b"shard".to_vec(),
        );
        let mut hub = Hub::default();
        hub.repos.insert("garage-test/hostile".into(), files);
        let endpoint = serve(Arc::new(hub)).await;

        let root = tempfile::tempdir().expect("root");
        let cache = root.path().join("a/b/cache");
        let model: ModelRef = "hf:garage-test/hostile".parse().expect("ref");
        let e = hub::resolve(&model, &options(&cache, &endpoint))
            .await
            .expect_err("a hostile index");
        let text = one_line(&e);
        assert!(
            text.contains("model.safetensors.index.json")
                && text.contains(&format!("{bad:?}"))
                && text.contains("plain file name"),
            "{text}"
        );
        let outside: Vec<PathBuf> = tree(root.path())
            .into_iter()
            .filter(|p| !p.starts_with("a/b/cache") && !Path::new("a/b/cache").starts_with(p))
            .collect();
        assert!(outside.is_empty(), "written outside the cache: {outside:?}");
        let shards: Vec<PathBuf> = tree(&cache)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("model-00001"))
            .collect();
        assert!(shards.is_empty(), "no shard is fetched: {shards:?}");
    }
}
