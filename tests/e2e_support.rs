//! Checks of the test fixtures themselves, against the real engine and
//! without the agent, so that an e2e failure points at the agent and not at
//! the harness.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

#[test]
fn proxy_forwards_and_cut_ends_an_event_stream() {
    ensure_engine_and_image();
    let proxy = DockerProxy::start();
    let host = proxy.docker_host();
    let v = output_with_timeout(
        Command::new("docker").args(["-H", &host, "version", "--format", "{{.Server.APIVersion}}"]),
        Duration::from_secs(20),
    );
    assert!(v.status.success(), "docker through the proxy: {}", show(&v));

    let mut events = Command::new("docker")
        .args(["-H", &host, "events", "--format", "{{.Action}}"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker events");
    wait_until(
        "the event stream to connect",
        Duration::from_secs(10),
        POLL,
        || (proxy.accepted() >= 2).then_some(()),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(proxy.cut() >= 1, "nothing to cut");
    let ended = try_wait_until(Duration::from_secs(10), POLL, || events.try_wait().unwrap());
    if ended.is_none() {
        let _ = events.kill();
        let _ = events.wait();
        panic!("docker events kept running after the cut");
    }
    // New connections still work after a cut.
    let v = output_with_timeout(
        Command::new("docker").args(["-H", &host, "ps", "-q"]),
        Duration::from_secs(20),
    );
    assert!(
        v.status.success(),
        "docker through the proxy after cut: {}",
        show(&v)
    );
}

#[test]
fn node_fixture_writes_and_cleans_up_by_label() {
    let node = Node::new("fixture");
    let comps = [Component::sleeper("a").env("K", "two words")];
    node.write(&comps);
    let text = std::fs::read_to_string(&node.path).unwrap();
    assert!(text.contains(&format!("name: {}", node.name)), "{text}");
    node.write_in_place("x: 1\n");
    assert_eq!(std::fs::read_to_string(&node.path).unwrap(), "x: 1\n");
    node.write_symlink_swap("y: 2\n");
    assert!(std::fs::symlink_metadata(&node.path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&node.path).unwrap(), "y: 2\n");
    node.write_atomic(&text);
    assert!(!std::fs::symlink_metadata(&node.path)
        .unwrap()
        .file_type()
        .is_symlink());

    // A container that looks like the node's, made by hand: cleanup finds it.
    let id = docker_ok(&[
        "run",
        "-d",
        "--label",
        &format!("{RUN_LABEL}={}", run_id()),
        "--label",
        &format!("{NODE_LABEL}={}", node.name),
        "--label",
        &format!("{MANAGED_BY}=garage"),
        "--label",
        &format!("{COMPONENT_LABEL}=a"),
        IMAGE,
        "sleep",
        "3600",
    ]);
    let owned = node.wait_running(&["a"], Duration::from_secs(10));
    assert_eq!(owned["a"].id, id);
    assert_eq!(running_id(&node.name, "a"), Some(id.clone()));
    let foreign = ForeignContainer::start("fixture");
    node.cleanup();
    assert!(node.owned().is_empty());
    assert!(
        foreign.inspect().is_some_and(|c| c.running()),
        "cleanup touched a foreign container"
    );
}

#[test]
fn metric_parser_reads_prometheus_text() {
    let text = "# HELP x_total help\n# TYPE x_total counter\nx_total{result=\"success\"} 3\n\
                x_total{result=\"error\",kind=\"a\\\"b\"} 1\nx_total_other 9\ny 2.5\n";
    assert_eq!(metric(text, "x_total", &[("result", "success")]), Some(3.0));
    assert_eq!(metric(text, "x_total", &[("kind", "a\"b")]), Some(1.0));
    assert_eq!(metric_sum(text, "x_total"), Some(4.0));
    assert_eq!(metric(text, "y", &[]), Some(2.5));
    assert_eq!(metric(text, "z", &[]), None);
    assert!(has_location(
        "error at /tmp/a/node.yaml:12:7: bad",
        "node.yaml",
        12
    ));
    assert!(!has_location("node.yaml:12: bad", "node.yaml", 12));
    assert_eq!(yaml_str("sleep"), "sleep");
    assert_eq!(yaml_str("3600"), "\"3600\"");
    assert_eq!(yaml_str("exit 3"), "\"exit 3\"");
}

#[test]
fn http_get_reads_a_chunked_body() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            .unwrap();
    });
    let (code, body) = http_get(&format!("http://{addr}"), "/x").unwrap();
    server.join().unwrap();
    assert_eq!((code, body.as_str()), (200, "hello world"));
}
