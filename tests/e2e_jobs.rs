//! End to end: the podman component on the real Docker engine, and container
//! jobs run by `garage job run` inside that real nested podman.
//!
//! Needs a Docker engine, `garage/podman:0.1` (docker/build.sh) and
//! `garage-test/busybox:1` (docker/test-image.sh). Without them each test
//! prints why and passes, unless `GARAGE_REQUIRE_E2E=1` (set by CI), which
//! makes a missing prerequisite a failure.
//!
//! Every test makes its own node (`j<run id>-<test>`, labelled
//! `garage.test/run=<run id>` like the other e2e tests), and removes its
//! containers and volumes when it ends, also when it fails.

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::{
    docker, ping, podman_prerequisites, text, try_wait_until, wait_for, PodmanNode, IMAGE, JOB_HEAD,
};

#[test]
fn podman_component_converges_and_answers_ping() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("ping");
    let took = node.apply();
    eprintln!("podman component Ready (healthy) after {took:?}");
    assert_eq!(ping(&node.socket()).as_deref(), Some("OK"));
    let health = text(&docker(&[
        "inspect",
        "-f",
        "{{.State.Health.Status}}",
        &node.podman_container(),
    ]));
    assert_eq!(health, "healthy");
}

#[test]
fn job_runs_inside_podman_returns_results_and_is_cleaned_up() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("hello");
    node.apply();
    let job = node.write_job(
        "hello.yaml",
        &format!(
            "{JOB_HEAD}meta:\n  name: e2e-hello\ntimeout: 60s\nops:\n  - type: container/run\n    id: hello\n    args:\n      image: {IMAGE}\n      cmd: \"echo started; sleep 2; echo score=97; echo warned >&2; mkdir -p /out; echo result > /out/r.txt\"\n      output: /out\n      resources: {{shm_size: 32Mi}}\n    results:\n      score: 'score=([0-9]+)'\n      warning: {{regex: '(warned)', logType: [stderr]}}\n"
        ),
    );
    let started = Instant::now();
    let child = node
        .job_command(&job)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start garage job run");
    // While it runs, the job container is in podman and not on the host engine.
    let mut seen_in_podman = String::new();
    wait_for(
        "the job container appears in podman",
        Duration::from_secs(30),
        || {
            seen_in_podman = node.podman(&[
                "ps",
                "--filter",
                "label=ai.garage.job=e2e-hello",
                "--format",
                "{{.Names}}",
            ]);
            !seen_in_podman.is_empty()
        },
    );
    assert!(
        seen_in_podman.starts_with("garage-job-"),
        "{seen_in_podman}"
    );
    let on_host = text(&docker(&[
        "ps",
        "-a",
        "--filter",
        "label=ai.garage.job-run",
        "--format",
        "{{.Names}}",
    ]));
    assert!(
        !on_host.contains(&seen_in_podman),
        "job container on the host engine: {on_host}"
    );
    let out = child.wait_with_output().expect("job finishes");
    eprintln!("job run took {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "job failed: {stderr}");
    // Logs stream to the terminal (stderr) as well as into the report.
    assert!(
        stderr.contains("started") && stderr.contains("score=97"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["status"], "succeeded");
    let op = &report["ops"][0];
    assert_eq!(op["exitCode"], 0);
    assert_eq!(op["container"], seen_in_podman.as_str());
    assert_eq!(op["results"]["score"], "97");
    assert_eq!(op["results"]["warning"], "warned");
    assert!(op["logs"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("started\n") && t.contains("warned\n")));
    assert_eq!(op["files"][0]["path"], "r.txt");
    assert_eq!(op["files"][0]["content"], "result\n");
    assert!(["loadedFromHost", "present"].contains(&op["imageSource"].as_str().unwrap_or("")));
    assert_eq!(report["limits"], expected_limits(), "{stderr}");
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
}

/// What every job report says about limits on this host: podman-wrapper.sh
/// enables podman's cgroups only on a writable cgroup v2 tree.
fn expected_limits() -> &'static str {
    if host_has_cgroup_v2() {
        "enforced: cgroup v2; podman applies each job's memory, CPU and pids limits"
    } else {
        "not enforced: cgroup v1 read-only on this host (podman runs jobs without cgroups of its own; only the podman container's limits apply)"
    }
}

fn host_has_cgroup_v2() -> bool {
    text(
        &std::process::Command::new("stat")
            .args(["-fc", "%T", "/sys/fs/cgroup"])
            .output()
            .expect("stat runs"),
    ) == "cgroup2fs"
}

#[test]
fn pids_limit_is_set_on_the_job_container_and_enforced_where_the_host_can() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("pids");
    node.apply();
    // 40 background sleeps: more than the 16 processes the op may have. It
    // stays 3 s more so its container can be inspected before cleanup.
    let job = node.write_job(
        "pids.yaml",
        &format!(
            "{JOB_HEAD}timeout: 60s\nops:\n  - type: container/run\n    id: forks\n    args:\n      image: {IMAGE}\n      cmd: \"i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo forked=$i; sleep 3\"\n      resources: {{pids: 16, memory: 64Mi}}\n"
        ),
    );
    let child = node
        .job_command(&job)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start garage job run");
    let mut container = String::new();
    wait_for("the job container exists", Duration::from_secs(30), || {
        container = node.podman(&[
            "ps",
            "-a",
            "--filter",
            "label=ai.garage.job-op=forks",
            "--format",
            "{{.Names}}",
        ]);
        !container.is_empty()
    });
    let limits = node.podman(&[
        "inspect",
        &container,
        "--format",
        "{{.HostConfig.PidsLimit}} {{.HostConfig.Memory}}",
    ]);
    let out = child.wait_with_output().expect("job finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        limits, "16 67108864",
        "limits on the create request: {stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["limits"], expected_limits());
    let logs = report["ops"][0]["logs"]["text"]
        .as_str()
        .unwrap_or_default();
    if host_has_cgroup_v2() {
        assert!(
            logs.contains("can't fork") || !logs.contains("forked=40"),
            "the pids limit stopped the forks: {logs}"
        );
    } else {
        assert!(
            logs.contains("forked=40"),
            "nothing enforces it here: {logs}"
        );
    }
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
}

/// Removes a host-engine image tag this test made.
struct HostTag(String);

impl Drop for HostTag {
    fn drop(&mut self) {
        let _ = docker(&["rmi", &self.0]);
    }
}

#[test]
fn host_image_outside_host_images_is_refused_and_not_copied() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("admit");
    // On the host engine, but not in the node's hostImages (it lists IMAGE).
    let unlisted = format!("garage-test/unlisted-{}:1", support::run_id());
    assert!(docker(&["tag", IMAGE, &unlisted]).status.success());
    let _tag = HostTag(unlisted.clone());
    node.apply();
    let job = node.write_job(
        "unlisted.yaml",
        &format!(
            "{JOB_HEAD}timeout: 60s\nops:\n  - type: container/run\n    id: one\n    args: {{image: {unlisted}}}\n"
        ),
    );
    let (ok, report, stderr) = node.run_job(&job);
    assert!(!ok);
    assert_eq!(report["status"], "failed", "{stderr}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "{unlisted}: not copied from the host engine: it matches no pattern of spec.podman.jobs.hostImages (fix: add a pattern such as `garage-test/*` there"
        )),
        "{reason}"
    );
    assert_eq!(node.podman(&["images", "-q"]), "", "nothing was copied");
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
}

#[test]
fn deadline_kills_the_job_and_reports_timed_out() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("deadline");
    node.apply();
    let job = node.write_job(
        "slow.yaml",
        &format!(
            "{JOB_HEAD}timeout: 3s\nops:\n  - type: container/run\n    id: slow\n    args:\n      image: {IMAGE}\n      cmd: \"echo begin; sleep 60; echo never\"\n"
        ),
    );
    let started = Instant::now();
    let (ok, report, stderr) = node.run_job(&job);
    let took = started.elapsed();
    assert!(!ok, "a timed-out job exits non-zero");
    assert_eq!(report["status"], "timedOut", "{stderr}");
    assert!(report["reason"]
        .as_str()
        .is_some_and(|r| r.contains("timeout of 3s")));
    assert_eq!(report["ops"][0]["logs"]["text"], "begin\n");
    assert!(
        took < Duration::from_secs(20),
        "killed promptly, took {took:?}"
    );
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
}

#[test]
fn failing_job_reports_its_exit_code() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("fail");
    node.apply();
    let job = node.write_job(
        "fail.json",
        &format!(
            r#"{{"version": "0.1", "type": "container", "ops": [
              {{"type": "container/run", "id": "first", "args": {{"image": "{IMAGE}", "cmd": ["sh", "-c", "echo broken >&2; exit 3"]}}}},
              {{"type": "container/run", "id": "never", "args": {{"image": "{IMAGE}", "cmd": "echo should not run"}}}}
            ]}}"#
        ),
    );
    let (ok, report, stderr) = node.run_job(&job);
    assert!(!ok);
    assert_eq!(report["status"], "failed", "{stderr}");
    assert_eq!(report["ops"][0]["exitCode"], 3);
    assert_eq!(report["ops"][0]["logs"]["text"], "broken\n");
    assert_eq!(
        report["ops"].as_array().map(Vec::len),
        Some(1),
        "the second op never ran"
    );
    assert!(report["reason"]
        .as_str()
        .is_some_and(|r| r.contains("exited with code 3")));
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
}

#[test]
fn gpu_job_is_refused_on_a_node_without_gpus() {
    if !podman_prerequisites() {
        return;
    }
    if garage::gpu::GpuInventory::detect().count() > 0 {
        eprintln!("skipping: this host has GPUs");
        return;
    }
    let node = PodmanNode::new("gpu");
    node.apply();
    let job = node.write_job(
        "gpu.yaml",
        &format!(
            "{JOB_HEAD}ops:\n  - type: container/run\n    id: cuda\n    args:\n      image: {IMAGE}\n      gpu: true\n"
        ),
    );
    let (ok, report, stderr) = node.run_job(&job);
    assert!(!ok);
    assert_eq!(report, Value::Null, "nothing ran, so no report");
    assert!(
        stderr.contains("job refused before anything started: op `cuda` asks for a GPU"),
        "{stderr}"
    );
    assert!(!stderr.contains("==> image"), "nothing started: {stderr}");
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
    assert_eq!(
        node.podman(&["images", "-q"]),
        "",
        "no image was even loaded"
    );
}

#[test]
fn invalid_job_file_names_the_field_and_leaves_nothing() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("invalid");
    node.apply();
    let job = node.write_job(
        "bad.yaml",
        &format!(
            "{JOB_HEAD}ops:\n  - type: container/run\n    id: ok\n    args: {{image: {IMAGE}}}\n  - type: container/run\n    id: bad\n    args:\n      image: {IMAGE}\n      resources:\n        memroy: 1Gi\n"
        ),
    );
    let (ok, report, stderr) = node.run_job(&job);
    assert!(!ok);
    assert_eq!(report, Value::Null);
    assert!(
        stderr.contains("bad.yaml:12:9: ops[1].args.resources.memroy: unknown field `memroy`"),
        "{stderr}"
    );
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
    assert_eq!(node.podman(&["images", "-q"]), "", "nothing was loaded");
}

#[test]
fn podman_killed_mid_job_fails_the_job_and_the_agent_brings_podman_back() {
    if !podman_prerequisites() {
        return;
    }
    let mut node = PodmanNode::new("kill");
    node.apply();
    node.start_agent();
    let job = node.write_job(
        "long.yaml",
        &format!(
            "{JOB_HEAD}meta:\n  name: e2e-long\ntimeout: 2m\nops:\n  - type: container/run\n    id: long\n    args:\n      image: {IMAGE}\n      cmd: \"echo running; sleep 120\"\n"
        ),
    );
    let child = node
        .job_command(&job)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start garage job run");
    wait_for(
        "the job container runs in podman",
        Duration::from_secs(30),
        || {
            !node
                .podman(&["ps", "--filter", "label=ai.garage.job=e2e-long", "-q"])
                .is_empty()
        },
    );
    let killed = Instant::now();
    assert!(docker(&["kill", &node.podman_container()]).status.success());
    let out = child.wait_with_output().expect("job finishes");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(report["status"], "failed", "{stderr}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("lost the podman host")
            && reason.contains(&node.podman_container())
            && (reason.contains("exit code 137") || reason.contains("restarted")),
        "{reason}"
    );
    // The agent restarts podman; its API answers again.
    let socket = node.socket();
    wait_for(
        "the agent brings podman back",
        Duration::from_secs(30),
        || ping(&socket).as_deref() == Some("OK"),
    );
    eprintln!("podman answers again {:?} after the kill", killed.elapsed());
    // The failed run waited for podman and removed what it had made.
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
}

#[test]
fn concurrent_jobs_are_limited_by_max_concurrent() {
    if !podman_prerequisites() {
        return;
    }
    // The node allows 2 jobs at once (spec.podman.jobs.maxConcurrent).
    let node = PodmanNode::new("slots");
    node.apply();
    // Bring the image in first so the three runs start alike.
    let warm = node.write_job(
        "warm.yaml",
        &format!("{JOB_HEAD}ops:\n  - type: container/run\n    id: warm\n    args: {{image: {IMAGE}, cmd: [\"true\"]}}\n"),
    );
    let (ok, _, stderr) = node.run_job(&warm);
    assert!(ok, "{stderr}");
    let job = node.write_job(
        "nap.yaml",
        &format!(
            "{JOB_HEAD}meta:\n  name: e2e-nap\ntimeout: 90s\nops:\n  - type: container/run\n    id: nap\n    args:\n      image: {IMAGE}\n      cmd: \"sleep 3\"\n"
        ),
    );
    let children: Vec<Child> = (0..3)
        .map(|_| {
            node.job_command(&job)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start garage job run")
        })
        .collect();
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let running = node
            .podman(&["ps", "--filter", "label=ai.garage.job=e2e-nap", "-q"])
            .lines()
            .count();
        most = most.max(running);
        if most >= 2 && running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("job finishes"))
        .collect();
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(most, 2, "at most two jobs run at once, and two did");
    assert!(
        outputs.iter().any(|o| String::from_utf8_lossy(&o.stderr)
            .contains("waiting for a free job slot (2 job(s) may run at once)")),
        "the third run waited for a slot"
    );
    // Three runs cleaned up at once: the nested podman may still be
    // finishing a removal when the last run exits (seen once in CI).
    let clean = try_wait_until(Duration::from_secs(15), Duration::from_millis(200), || {
        node.job_leftovers().is_empty().then_some(())
    });
    assert!(clean.is_some(), "job leftovers: {:?}", node.job_leftovers());
}

#[test]
fn ops_share_job_volumes_in_order() {
    if !podman_prerequisites() {
        return;
    }
    let node = PodmanNode::new("volumes");
    node.apply();
    let job = node.write_job(
        "pipeline.yaml",
        &format!(
            "{JOB_HEAD}meta:\n  name: e2e-pipeline\ntimeout: 60s\nops:\n  - type: container/run\n    id: produce\n    args:\n      image: {IMAGE}\n      cmd: \"echo 41 > /data/n\"\n      volumes: [{{name: data, dest: /data}}]\n  - type: container/run\n    id: consume\n    args:\n      image: {IMAGE}\n      cmd: \"echo n=$(( $(cat /in/n) + 1 ))\"\n      volumes: [{{name: data, dest: /in, read_only: true}}]\n    results:\n      n: 'n=([0-9]+)'\n"
        ),
    );
    let (ok, report, stderr) = node.run_job(&job);
    assert!(ok, "{stderr}");
    assert_eq!(report["ops"][1]["results"]["n"], "42", "{report}");
    assert_eq!(node.job_leftovers(), Vec::<String>::new());
}
