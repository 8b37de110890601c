//! The dashboard in a real headless Chromium, driven over WebDriver
//! (`chromedriver`, `fantoccini`), against the real coordinator binary with
//! a real node (`garage run` with podman, taking network jobs) and a
//! hostile one that calls itself `<script>…` (issue 15). The admin signs in
//! through the form; every page loads without a console error and shows
//! its rows; a heartbeat appears on the open node page within 2 s without
//! a reload; a running job's log streams into its page; the hostile name
//! stays text. Screenshots (1280×800) of the overview, a node page and the
//! regions map are written to `$CARGO_TARGET_TMPDIR/dashboard-screenshots`.
//! Skipped without Chromium, chromedriver, Docker or the podman image,
//! unless `GARAGE_REQUIRE_BROWSER=1` / `GARAGE_REQUIRE_E2E=1`.

mod network_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use garage::coordinator::api::{HeartbeatRequest, Location};
use garage::coordinator::CoordinatorClient;
use garage::identity::NodeIdentity;
use network_support::{job, Coordinator, Node, Process, ADMIN_TOKEN, JOB_LIMIT};
use serde_json::{json, Value};
use support::{free_port, podman_prerequisites};

const HOSTILE_NAME: &str = "<script>alert('owned')</script>";
/// The size of every screenshot.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;

/// Chromium and chromedriver, or `None` (after saying why) when the test
/// should skip; panics when `GARAGE_REQUIRE_BROWSER=1` and one is missing.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    };
    match (find("chromium"), find("chromedriver")) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            assert!(
                std::env::var_os("GARAGE_REQUIRE_BROWSER").is_none(),
                "GARAGE_REQUIRE_BROWSER is set but chromium or chromedriver is missing \
                 (apt-get install chromium chromium-driver; .ci/run installs them)"
            );
            eprintln!("skipping: chromium or chromedriver is not installed");
            None
        }
    }
}

/// `chromedriver` on a loopback port, killed on drop.
struct Driver {
    _process: Process,
    url: String,
}

impl Driver {
    async fn start(binary: &Path, log: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = reqwest::get(format!("{url}/status"))
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver not ready in 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver {
            _process: Process(child),
            url,
        }
    }

    async fn session(&self, chromium: &Path) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", &format!("--window-size={WIDTH},{HEIGHT}")],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        // The window holds more than the page: size it so the viewport,
        // which screenshots show, is WIDTH × HEIGHT.
        let frame = browser
            .execute(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
                Vec::new(),
            )
            .await
            .expect("the window's frame");
        let extra =
            |i: usize| u32::try_from(frame[i].as_u64().unwrap_or_default()).unwrap_or_default();
        browser
            .set_window_size(WIDTH + extra(0), HEIGHT + extra(1))
            .await
            .expect("size the window");
        browser
    }
}

/// chromedriver's browser log (its `se/log` extension): the console
/// messages since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(r#"{"type":"browser"}"#.to_string()))
    }
}

/// Fails on any console error since the last check.
async fn no_console_errors(browser: &Client, page: &str) {
    let log = browser
        .issue_cmd(BrowserLog)
        .await
        .expect("the browser log");
    let errors: Vec<&Value> = log
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors on {page}: {errors:#?}");
}

/// The rendered text of the element `css` selects, read in one script so a
/// live update replacing the element between finding and reading it cannot
/// make the read fail (a stale element reference).
async fn text(browser: &Client, css: &str) -> String {
    let found = browser
        .execute(
            "const element = document.querySelector(arguments[0]); \
             return element === null ? null : element.innerText;",
            vec![json!(css)],
        )
        .await
        .expect("text");
    match found {
        Value::String(text) => text.trim().to_string(),
        other => panic!("no {css} on the page ({other})"),
    }
}

async fn rows(browser: &Client, table: &str) -> usize {
    browser
        .find_all(Locator::Css(&format!("#{table} tbody tr")))
        .await
        .expect("rows")
        .len()
}

/// Loads `path`, checks the console and returns the page's title.
async fn visit(browser: &Client, base: &str, path: &str) -> String {
    browser.goto(&format!("{base}{path}")).await.expect("goto");
    let title = browser.title().await.expect("title");
    // A moment for the live stream to open (its errors would show now).
    tokio::time::sleep(Duration::from_millis(300)).await;
    no_console_errors(browser, path).await;
    title
}

/// A PNG of the viewport in `dir`; checks its size.
async fn screenshot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert_eq!(&png[1..4], b"PNG", "{name} is a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert_eq!((width, height), (WIDTH, HEIGHT), "{name}");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// A node that registers in Stockholm and reports a hostile name.
async fn hostile_node(dir: &Path, base: &str) -> CoordinatorClient {
    let identity = NodeIdentity::load_or_create(dir).expect("identity");
    let client = CoordinatorClient::new(base, Arc::new(identity)).expect("client");
    let location = Location {
        country: Some("SE".into()),
        region: Some("SE3".into()),
        latitude: Some(59.33),
        longitude: Some(18.07),
    };
    let registration = client.registration(
        Vec::new(),
        location,
        Some(json!({"tokens_per_second": 12.0})),
    );
    client.register(&registration).await.expect("registered");
    let heartbeat = HeartbeatRequest {
        observed_generation: Some("g1".into()),
        ready: Some(true),
        gpus: Vec::new(),
        status: json!({"node": HOSTILE_NAME}),
        power: None,
        spec_revision: None,
    };
    client.heartbeat(&heartbeat).await.expect("heartbeat");
    client
}

async fn heartbeats(base: &str, node_id: &str) -> u64 {
    let node: Value = reqwest::get(format!("{base}/api/nodes/{node_id}"))
        .await
        .expect("GET node")
        .json()
        .await
        .expect("node JSON");
    node["heartbeats"].as_u64().expect("heartbeats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    if !podman_prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let coordinator = Coordinator::start(&tmp.path().join("coordinator")).await;
    let base = coordinator.base.clone();
    let key = coordinator.api_key("dashboard");
    let mut node = Node::new("dash", &base);
    node.start();
    coordinator.wait_online(1).await;
    let node_id = node.client(&base).identity().node_id().to_string();
    let hostile = hostile_node(&tmp.path().join("hostile"), &base).await;
    let hostile_id = hostile.identity().node_id().to_string();
    let proposal: Value = reqwest::Client::new()
        .post(format!("{base}/api/proposals"))
        .bearer_auth(&key)
        .json(&json!({"kind": "signal", "title": "Paint the garage green",
                      "description": "A signal", "voting_period_seconds": 600}))
        .send()
        .await
        .expect("propose")
        .json()
        .await
        .expect("proposal JSON");
    let proposal_id = proposal["proposal_id"]
        .as_str()
        .expect("proposal_id")
        .to_string();

    let driver = Driver::start(&chromedriver, &tmp.path().join("chromedriver.log")).await;
    let browser = driver.session(&chromium).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");

    // Anyone: the overview, then the admin signs in through the form.
    assert!(visit(&browser, &base, "/").await.contains("Overview"));
    visit(&browser, &base, "/login?next=/").await;
    browser
        .find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys(ADMIN_TOKEN)
        .await
        .expect("type the token");
    browser
        .find(Locator::Css("form.login button"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");
    // The form posts and the browser follows the redirect: wait for the
    // page it lands on to show the admin.
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form.session .badge"))
        .await
        .expect("signed in: the admin badge shows");
    assert_eq!(browser.current_url().await.expect("url").path(), "/");
    assert!(
        rows(&browser, "markets-table").await >= 1,
        "the overview lists the cpu market"
    );
    screenshot(&browser, &shots, "overview").await;

    // A job prints a line every half second; its log streams into its page.
    let lines = (1..=16)
        .map(|i| format!("echo line-{i}; sleep 0.5"))
        .collect::<Vec<_>>()
        .join("; ");
    let job_id = coordinator.submit(&key, &job("dash-log", &lines)).await;
    coordinator
        .wait_state(&key, &job_id, "RUNNING", JOB_LIMIT)
        .await;
    visit(&browser, &base, &format!("/jobs/{job_id}")).await;
    browser
        .execute("window.stillHere = true;", Vec::new())
        .await
        .expect("mark the page");
    let first = text(&browser, "#job-logs").await;
    assert!(
        !first.contains("line-16"),
        "the page opened before the job ended: {first}"
    );
    let deadline = Instant::now() + JOB_LIMIT;
    let mut growths = 0;
    let mut shown = first;
    loop {
        let now = text(&browser, "#job-logs").await;
        if now.len() > shown.len() {
            growths += 1;
            shown = now;
        }
        if shown.contains("line-16") && text(&browser, "#job-state-name").await == "SUCCEEDED" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log did not stream in: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(growths >= 2, "the log grew in {growths} steps");
    let still: Value = browser
        .execute("return window.stillHere === true;", Vec::new())
        .await
        .expect("js");
    assert_eq!(still, Value::Bool(true), "the page was not reloaded");
    no_console_errors(&browser, "the job page, live").await;

    // A heartbeat shows on the open node page within 2 s, without reload.
    visit(&browser, &base, &format!("/nodes/{node_id}")).await;
    browser
        .execute("window.stillHere = true;", Vec::new())
        .await
        .expect("mark the page");
    let shown: u64 = text(&browser, "#heartbeat-count")
        .await
        .parse()
        .expect("a count");
    let deadline = Instant::now() + Duration::from_secs(15);
    let stored = loop {
        let stored = heartbeats(&base, &node_id).await;
        if stored > shown {
            break stored;
        }
        assert!(Instant::now() < deadline, "no heartbeat in 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let acknowledged = Instant::now();
    loop {
        let now: u64 = text(&browser, "#heartbeat-count")
            .await
            .parse()
            .unwrap_or_default();
        if now >= stored {
            break;
        }
        assert!(
            acknowledged.elapsed() < Duration::from_secs(2),
            "heartbeat {stored} not on the page within 2 s (shows {now})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "a heartbeat reached the open page {:?} after it was stored",
        acknowledged.elapsed()
    );
    let still: Value = browser
        .execute("return window.stillHere === true;", Vec::new())
        .await
        .expect("js");
    assert_eq!(still, Value::Bool(true), "the page was not reloaded");
    assert!(
        rows(&browser, "node-jobs").await >= 1,
        "the node page lists its job"
    );
    screenshot(&browser, &shots, "node").await;

    // The hostile name is text, on its page and in the list.
    visit(&browser, &base, &format!("/nodes/{hostile_id}")).await;
    assert_eq!(text(&browser, "#node-name").await, HOSTILE_NAME);
    assert!(browser.get_alert_text().await.is_err(), "no script ran");
    visit(&browser, &base, "/nodes").await;
    assert!(text(&browser, "#nodes-table").await.contains(HOSTILE_NAME));
    assert_eq!(rows(&browser, "nodes-table").await, 2);

    // Every other page, with its rows.
    visit(&browser, &base, "/markets").await;
    assert!(rows(&browser, "markets-table").await >= 1);
    visit(&browser, &base, "/jobs").await;
    assert!(text(&browser, "#jobs-table").await.contains(&job_id));
    visit(&browser, &base, "/regions").await;
    assert!(text(&browser, "#regions-table").await.contains("SE3"));
    let clusters = browser
        .find_all(Locator::Css("#sweden-map circle.cluster"))
        .await
        .expect("clusters");
    assert!(!clusters.is_empty(), "the Stockholm node is on the map");
    screenshot(&browser, &shots, "regions").await;
    visit(&browser, &base, "/ledger").await;
    assert_eq!(
        text(&browser, "#audit-result").await,
        "every invariant holds"
    );
    assert!(rows(&browser, "transfers-table").await >= 1);
    visit(&browser, &base, "/governance").await;
    assert!(text(&browser, "#proposals-table")
        .await
        .contains("Paint the garage green"));
    visit(&browser, &base, &format!("/governance/{proposal_id}")).await;
    assert!(text(&browser, "#proposal-state").await.contains("open"));

    browser.close().await.expect("close the session");
    drop(node);
}
