//! `spec.jobs`: defaults, the one concurrency, and golden errors.

use super::{JobKind, JobSettings};
use crate::spec::test_support::{error_of, parse_text};

const HEAD: &str = "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: n1\nspec:\n";
const COORDINATOR: &str = "  coordinator:\n    url: http://127.0.0.1:7070\n";
const PODMAN: &str = "  podman: {}\n";
const WORKER: &str = "  worker:\n    model:\n      path: /models/m.gguf\n    port: 8123\n";

fn settings(body: &str) -> JobSettings {
    let text = format!("{HEAD}{body}");
    parse_text(&text)
        .unwrap_or_else(|err| panic!("{err}"))
        .jobs()
        .clone()
}

#[test]
fn by_default_no_network_jobs_one_at_a_time_and_every_runnable_type() {
    let jobs = settings(&format!("{COORDINATOR}{PODMAN}{WORKER}"));
    assert_eq!(
        jobs,
        JobSettings {
            accept: false,
            types: vec![JobKind::Container, JobKind::Inference],
            max_concurrent: 1,
            worker_port: Some(8123),
        }
    );
    assert_eq!(settings(PODMAN).types, vec![JobKind::Container]);
}

#[test]
fn the_concurrency_is_one_setting_read_from_the_old_place_too() {
    let new = settings(&format!("{PODMAN}  jobs:\n    maxConcurrent: 3\n"));
    assert_eq!(new.max_concurrent, 3);
    let spec =
        parse_text(&format!("{HEAD}{PODMAN}  jobs:\n    maxConcurrent: 3\n")).expect("valid");
    assert_eq!(spec.podman().map(|p| p.max_concurrent_jobs), Some(3));
    let old = settings("  podman:\n    jobs:\n      maxConcurrent: 2\n");
    assert_eq!(old.max_concurrent, 2);
    let both = format!(
        "{HEAD}  podman:\n    jobs:\n      maxConcurrent: 2\n  jobs:\n    maxConcurrent: 3\n"
    );
    assert_eq!(
        error_of(&both),
        "node.yaml:8:22: spec.podman.jobs.maxConcurrent: the job concurrency is written twice, here and in spec.jobs.maxConcurrent (fix: remove spec.podman.jobs.maxConcurrent; spec.jobs.maxConcurrent is the one setting)"
    );
    assert_eq!(
        error_of(&format!("{HEAD}{PODMAN}  jobs:\n    maxConcurrent: 0\n")),
        "node.yaml:8:20: spec.jobs.maxConcurrent: jobs at once must be 1 to 64, got 0 (fix: write 1 or more)"
    );
}

#[test]
fn accepting_needs_a_coordinator_and_a_runnable_type() {
    assert_eq!(
        error_of(&format!("{HEAD}{PODMAN}  jobs:\n    accept: true\n")),
        "node.yaml:8:13: spec.jobs.accept: network jobs come from a coordinator, and spec.coordinator is missing (fix: add spec.coordinator.url, or set `accept: false`)"
    );
    assert_eq!(
        error_of(&format!("{HEAD}{COORDINATOR}  jobs:\n    accept: true\n")),
        "node.yaml:9:13: spec.jobs.accept: this node runs neither podman nor a worker, so it can take no job (fix: add spec.podman (container jobs) or spec.worker (inference jobs), or set `accept: false`)"
    );
    let jobs = settings(&format!("{COORDINATOR}{PODMAN}  jobs:\n    accept: true\n"));
    assert!(jobs.accept);
}

#[test]
fn a_type_needs_what_runs_it_and_is_listed_once() {
    assert_eq!(
        error_of(&format!("{HEAD}{PODMAN}  jobs:\n    types: [container, inference]\n")),
        "node.yaml:8:24: spec.jobs.types[1]: inference jobs run on the worker, and spec.worker is missing or disabled (fix: add spec.worker, or remove this type)"
    );
    assert_eq!(
        error_of(&format!(
            "{HEAD}{PODMAN}  jobs:\n    types: [container, container]\n"
        )),
        "node.yaml:8:24: spec.jobs.types[1]: listed twice (fix: list each type once)"
    );
    assert_eq!(
        error_of(&format!("{HEAD}{PODMAN}  jobs:\n    types: [gpu]\n")),
        "node.yaml:8:13: spec.jobs.types[0]: unknown variant `gpu`, expected `container` or `inference` (fix: use one of the listed values; they are case-sensitive)"
    );
}
