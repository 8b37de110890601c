//! Hostile node specs and job files against the real binary: each must end
//! in a located error and exit 1 quickly, never abort on a stack overflow or
//! run away with memory. The files are generated here.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HEAD: &str = "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: n1\nspec:\n";

/// Runs `garage ARGS`, killed past `limit`.
fn garage(args: &[&str], dir: &Path, limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start garage");
    let started = Instant::now();
    while child.try_wait().expect("poll garage").is_none() {
        if started.elapsed() > limit {
            child.kill().expect("kill garage");
            child.wait().expect("reap garage");
            panic!("garage {args:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}

/// `garage SUBCOMMAND… FILE` on `text`: exits 1 (not a signal) within 5 s;
/// returns stderr.
fn refused(subcommand: &[&str], name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(name), text).expect("write the file");
    let mut args = subcommand.to_vec();
    args.push(name);
    let out = garage(&args, dir.path(), Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{:?}: {stderr}", out.status);
    stderr
}

#[test]
fn validate_refuses_deep_nesting_instead_of_aborting() {
    // 20,000 levels aborted `garage validate` with a stack overflow.
    let text = format!("{HEAD}  containers:\n    {}x\n", "- ".repeat(20_000));
    let stderr = refused(&["validate"], "node.yaml", &text);
    assert!(
        stderr.contains("node.yaml:7:129: sequences and mappings nest deeper than 64 levels"),
        "{stderr}"
    );
}

#[test]
fn validate_refuses_an_alias_bomb_in_mapping_keys_at_once() {
    // A 1 KB file of this shape took 62 s and 5 GB.
    let mut text = format!("{HEAD}  containers: []\nx0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..=9 {
        let keys = vec![format!("*a{}", level - 1); 10].join(", ");
        let _ = writeln!(text, "x{level}: &a{level} {{? [{keys}] : v}}");
    }
    let stderr = refused(&["validate"], "node.yaml", &text);
    assert!(
        stderr.contains("node.yaml:8:12: invalid YAML: a mapping key must be a plain string"),
        "{stderr}"
    );
}

#[test]
fn validate_refuses_a_resync_period_that_overflows_the_clock() {
    // Validated before; `garage run` then panicked adding it to an Instant.
    let text = format!("{HEAD}  reconcile:\n    resyncPeriod: 18446744073709551615s\n");
    let stderr = refused(&["validate"], "node.yaml", &text);
    assert!(
        stderr.contains("node.yaml:7:19: spec.reconcile.resyncPeriod: `18446744073709551615s` (584942417355y) is longer than the maximum 24h"),
        "{stderr}"
    );
}

const JOB_HEAD: &str = "version: \"0.1\"\ntype: container\n";
const JOB_OPS: &str =
    "ops:\n  - type: container/run\n    id: a\n    args:\n      image: garage-test/busybox:1\n";

#[test]
fn job_validate_refuses_deep_nesting_and_alias_bombs() {
    let deep = format!(
        "{JOB_HEAD}meta:\n  name: {}x{}\n{JOB_OPS}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let stderr = refused(&["job", "validate"], "job.yaml", &deep);
    assert!(
        stderr.contains("job.yaml:4:") && stderr.contains("nest deeper than 64 levels"),
        "{stderr}"
    );

    let mut bomb = format!("{JOB_HEAD}{JOB_OPS}x0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..=9 {
        let below = vec![format!("*a{}", level - 1); 10].join(", ");
        let _ = writeln!(bomb, "x{level}: &a{level} [{below}]");
    }
    let stderr = refused(&["job", "validate"], "job.yaml", &bomb);
    assert!(
        stderr.contains("aliases expand to more than 100000 nodes"),
        "{stderr}"
    );
}

#[test]
fn job_validate_refuses_a_timeout_past_the_maximum() {
    let text = format!("{JOB_HEAD}timeout: 100000h\n{JOB_OPS}");
    let stderr = refused(&["job", "validate"], "job.yaml", &text);
    assert!(
        stderr.contains("job.yaml:3:10: timeout: `100000h` (11y) is longer than the maximum 168h"),
        "{stderr}"
    );
}

#[test]
fn job_validate_refuses_an_env_value_the_kernel_would_refuse() {
    let text = format!(
        "{JOB_HEAD}{JOB_OPS}      env:\n        BIG: {}\n",
        "x".repeat(200 << 10)
    );
    let stderr = refused(&["job", "validate"], "job.yaml", &text);
    assert!(
        stderr.contains(
            "job.yaml:9:14: ops[0].args.env.BIG: `BIG=…` is 204804 bytes, over the kernel's limit"
        ),
        "{stderr}"
    );
}
