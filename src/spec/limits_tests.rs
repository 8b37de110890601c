//! Hostile files, generated here: each must fail with a located error, fast,
//! on a small stack, and valid specs near the limits must stay fast.

use std::fmt::Write as _;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::spec::test_support::{containers, error_of, parse_text, EXAMPLE, HEAD};

/// The error for `text`, parsed on a 256 KiB stack (a tenth of a tokio
/// worker's), within `limit`.
fn error_within(text: String, limit: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let started = Instant::now();
            let error = error_of(&text);
            // The receiver may have given up already.
            tx.send((error, started.elapsed())).ok();
        })
        .expect("spawn the parsing thread");
    let (error, took) = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("parsing took longer than {limit:?}"));
    assert!(took < limit, "parsing took {took:?}");
    error
}

/// Nine levels, each a mapping whose key is a sequence of ten aliases of
/// the level below: 10^9 nodes once expanded, in about 1 KB.
fn alias_bomb_in_keys() -> String {
    let mut text = format!("{HEAD}  containers: []\nx0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..=9 {
        let below = format!("*a{}", level - 1);
        let keys = vec![below; 10].join(", ");
        let _ = writeln!(text, "x{level}: &a{level} {{? [{keys}] : v}}");
    }
    text
}

#[test]
fn aliases_in_mapping_keys_are_refused_at_once() {
    let error = error_within(alias_bomb_in_keys(), Duration::from_secs(2));
    assert_eq!(
        error,
        "node.yaml:8:12: invalid YAML: a mapping key must be a plain string (fix: write the key as text)"
    );
}

#[test]
fn alias_expansion_counts_keys_and_values_against_one_budget() {
    // Scalar keys may be aliases; every expanded node counts, keys included.
    let mut text = format!(
        "{HEAD}  containers: []\nk: &k key\nv0: &v0 {{*k : [x, x, x, x, x, x, x, x, x, x]}}\n"
    );
    for level in 1..=9 {
        let below = vec![format!("*v{}", level - 1); 10].join(", ");
        let _ = writeln!(text, "v{level}: &v{level} [{below}]");
    }
    let error = error_within(text, Duration::from_secs(2));
    assert_eq!(
        error,
        "node.yaml:12:40: aliases expand to more than 100000 nodes or 4194304 bytes (keys and values counted) (fix: write the repeated parts out, or use fewer aliases)"
    );
}

#[test]
fn a_few_aliases_still_work() {
    let text = format!(
        "{HEAD}  containers:\n    - name: a\n      image: busybox\n      env: &env\n        A: \"1\"\n    - name: b\n      image: busybox\n      env: *env\n"
    );
    let spec = parse_text(&text).expect("aliases within the budget");
    assert_eq!(spec.name(), "n1");
}

#[test]
fn deep_block_nesting_is_a_located_error_not_a_stack_overflow() {
    // 6,000 levels of `- ` (12 KB) aborted a running agent.
    let text = format!("{HEAD}  containers:\n    {}x\n", "- ".repeat(6_000));
    let error = error_within(text, Duration::from_secs(2));
    // `spec.containers` is the third level, at column 5; each `- ` one more.
    assert_eq!(
        error,
        format!(
            "node.yaml:7:{}: sequences and mappings nest deeper than {MAX_DEPTH} levels (fix: flatten the document; a spec needs fewer than 10 levels)",
            5 + 2 * (MAX_DEPTH + 1 - 3)
        )
    );
}

#[test]
fn deep_flow_nesting_is_a_located_error_not_a_stack_overflow() {
    // The scanner refuses flow nesting past its own bound before our check.
    let text = format!(
        "{HEAD}  containers: {}{}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let error = error_within(text, Duration::from_secs(2));
    assert!(error.starts_with("node.yaml:6:"), "{error}");
}

#[test]
fn aliases_cannot_nest_deeper_than_the_text() {
    // Each anchor wraps the one before: 200 levels once expanded.
    let mut text = format!("{HEAD}  containers: []\nd0: &d0 [x]\n");
    for level in 1..200 {
        let _ = writeln!(text, "d{level}: &d{level} [*d{}]", level - 1);
    }
    let error = error_within(text, Duration::from_secs(2));
    assert!(
        error.contains(&format!("nest deeper than {MAX_DEPTH} levels")),
        "{error}"
    );
}

#[test]
fn files_over_the_size_limit_are_refused_before_parsing() {
    let text = format!("{EXAMPLE}#{}\n", "x".repeat(MAX_FILE_BYTES));
    assert_eq!(
        error_within(text, Duration::from_secs(2)),
        "node.yaml:1:1: the file is larger than the limit of 1048576 bytes (1 MiB) (fix: a spec is a few KB: remove what is not needed, or split jobs into several files)"
    );
}

#[test]
fn reading_a_file_stops_one_byte_past_the_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.yaml");
    std::fs::write(&path, vec![b'#'; 3 * MAX_FILE_BYTES]).expect("write");
    let error = crate::spec::read_text(&path).expect_err("over the limit");
    assert!(
        error
            .to_string()
            .contains("larger than the limit of 1048576 bytes"),
        "{error}"
    );
}

#[test]
fn too_many_containers_is_a_located_error_and_fast() {
    let text = containers(20_000, 0);
    assert!(text.len() < MAX_FILE_BYTES, "{} bytes", text.len());
    let error = error_within(text, Duration::from_secs(5));
    assert_eq!(
        error,
        format!(
            "node.yaml:{}:7: spec.containers[{MAX_CONTAINERS}]: 20000 containers, more than the limit of {MAX_CONTAINERS} (fix: run fewer containers on one node, or split them over several nodes)",
            7 + MAX_CONTAINERS
        )
    );
}

#[test]
fn long_lists_validate_in_linear_time() {
    // 100,000 distinct GPU indices: every duplicate check must be linear.
    let indices: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let text = format!(
        "{HEAD}  containers:\n    - name: a\n      image: b\n      gpu: [{}]\n",
        indices.join(", ")
    );
    assert!(text.len() < MAX_FILE_BYTES, "{} bytes", text.len());
    let started = Instant::now();
    parse_text(&text).expect("valid spec");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "validation took {took:?}");
}

#[test]
fn short_names_the_largest_unit() {
    assert_eq!(short(Duration::from_secs(u64::MAX)), "584942417355y");
    assert_eq!(short(DAY), "24h");
    assert_eq!(short(HOUR), "1h");
    assert_eq!(short(Duration::from_secs(90)), "90s");
    assert_eq!(short(Duration::from_millis(100)), "100ms");
    assert_eq!(short(Duration::from_millis(1500)), "1500ms");
    assert_eq!(short(Duration::ZERO), "0");
}

#[test]
fn ranges_include_both_ends() {
    assert_eq!(RESYNC_PERIOD.check("24h", DAY), Ok(DAY));
    assert_eq!(
        RESYNC_PERIOD.check("18446744073709551615s", Duration::from_secs(u64::MAX)),
        Err("`18446744073709551615s` (584942417355y) is longer than the maximum 24h".into())
    );
    assert_eq!(
        RESYNC_PERIOD.check("10ms", Duration::from_millis(10)),
        Err("`10ms` is shorter than the minimum 100ms".into())
    );
}
