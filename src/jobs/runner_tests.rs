//! The runner against an in-memory engine, with paused time: deadlines,
//! exit codes, a vanishing engine, image admission, limits, cleanup and the
//! sweep.
//! The same paths run against real podman in tests/e2e_jobs.rs.
//! Over 450 lines on purpose: one scenario per test over one shared fake
//! engine set-up; split by file, the set-up would be repeated.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::gpu::GpuInventory;
use crate::runtime::labels;

use super::{RunError, RunOptions, Runner};
use crate::jobs::engine::{
    EngineError, ImageSource, JobContainer, JobEngine, Labelled, LogChunk, LogStream, ResourceKind,
};
use crate::jobs::images::HostImages;
use crate::jobs::limits::Enforcement;
use crate::jobs::outcome::JobStatus;
use crate::jobs::slots::JobLocks;

/// What a fake container does once started, chosen by the op id in its name.
#[derive(Debug, Clone)]
enum Behaviour {
    Exit(i64, &'static str),
    Hang(&'static str),
    EngineDies,
}

#[derive(Debug, Default)]
struct State {
    images: Vec<String>,
    host_images: Vec<String>,
    /// Images copied from the host engine, in order.
    loaded: Vec<String>,
    items: Vec<Labelled>,
    behaviour: HashMap<String, Behaviour>,
    killed: Vec<String>,
    created: Vec<(String, JobContainer)>,
    /// Removals of networks to refuse (as podman does while a container
    /// that uses one is still being torn down).
    refuse_network_removals: usize,
}

#[derive(Debug, Default)]
struct Fake(Mutex<State>);

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().expect("fake engine lock")
    }

    fn behaviour(&self, id: &str) -> Behaviour {
        let state = self.state();
        state
            .behaviour
            .iter()
            .find(|(op, _)| id.ends_with(&format!("-{op}")))
            .map(|(_, b)| b.clone())
            .unwrap_or(Behaviour::Exit(0, ""))
    }

    fn add(&self, kind: ResourceKind, id: &str, labels: &BTreeMap<String, String>) {
        let run = labels.get(labels::JOB_RUN).cloned().unwrap_or_default();
        self.state().items.push(Labelled {
            kind,
            id: id.to_owned(),
            run,
        });
    }
}

fn gone() -> EngineError {
    EngineError::Unreachable {
        endpoint: "fake".into(),
        message: "connection reset".into(),
    }
}

impl JobEngine for Fake {
    async fn ping(&self) -> Result<(), EngineError> {
        Ok(())
    }
    async fn has_image(&self, image: &str) -> Result<bool, EngineError> {
        Ok(self.state().images.iter().any(|i| i == image))
    }
    async fn pull_image(&self, image: &str) -> Result<(), EngineError> {
        Err(EngineError::Step {
            step: "pulling",
            message: format!("no registry for {image}"),
        })
    }
    async fn load_image_from_host(&self, image: &str) -> Result<(), EngineError> {
        let mut state = self.state();
        if state.host_images.iter().any(|i| i == image) {
            state.images.push(image.to_owned());
            state.loaded.push(image.to_owned());
            Ok(())
        } else {
            Err(EngineError::Step {
                step: "loading",
                message: format!("the host has no {image}"),
            })
        }
    }
    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.add(ResourceKind::Network, name, labels);
        Ok(())
    }
    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.add(ResourceKind::Volume, name, labels);
        Ok(())
    }
    async fn create_container(
        &self,
        name: &str,
        spec: &JobContainer,
    ) -> Result<String, EngineError> {
        self.add(ResourceKind::Container, name, &spec.labels);
        self.state().created.push((name.to_owned(), spec.clone()));
        Ok(name.to_owned())
    }
    async fn start(&self, _: &str) -> Result<(), EngineError> {
        Ok(())
    }
    fn logs(&self, id: &str) -> BoxStream<'static, Result<LogChunk, EngineError>> {
        let text = match self.behaviour(id) {
            Behaviour::Exit(_, text) | Behaviour::Hang(text) => text,
            Behaviour::EngineDies => "",
        };
        let chunk = LogChunk {
            stream: LogStream::Stdout,
            bytes: text.as_bytes().to_vec(),
        };
        futures::stream::iter([Ok(chunk)]).boxed()
    }
    async fn wait(&self, id: &str) -> Result<i64, EngineError> {
        if self.state().killed.iter().any(|k| k == id) {
            return Ok(137);
        }
        match self.behaviour(id) {
            Behaviour::Exit(code, _) => Ok(code),
            Behaviour::Hang(_) => std::future::pending().await,
            Behaviour::EngineDies => Err(gone()),
        }
    }
    async fn kill(&self, id: &str) -> Result<(), EngineError> {
        self.state().killed.push(id.to_owned());
        Ok(())
    }
    async fn copy_out(&self, _: &str, _: &str, _: usize) -> Result<Vec<u8>, EngineError> {
        Ok(Vec::new())
    }
    async fn list_labelled(&self, _: &str) -> Result<Vec<Labelled>, EngineError> {
        Ok(self.state().items.clone())
    }
    async fn remove(&self, item: &Labelled) -> Result<(), EngineError> {
        let mut state = self.state();
        if item.kind == ResourceKind::Network && state.refuse_network_removals > 0 {
            state.refuse_network_removals -= 1;
            return Err(EngineError::Step {
                step: "remove network",
                message: "network is being used by a container".into(),
            });
        }
        state.items.retain(|i| i != item);
        Ok(())
    }
    async fn diagnose(&self) -> Option<String> {
        Some("the podman container stopped: exited, exit code 137".into())
    }
    async fn limits(&self) -> Enforcement {
        Enforcement::NotEnforced("cgroup v1 read-only on this host".into())
    }
}

/// A node's state directory (its job locks), removed when the test ends.
fn state() -> TempDir {
    tempfile::tempdir().expect("state dir")
}

fn job(text: &str) -> crate::jobs::Job {
    crate::jobs::parse(text, Path::new("job.yaml")).expect("valid job")
}

/// A runner of `node` that may copy `box:*` images from the host engine.
fn runner(fake: &Arc<Fake>, state: &TempDir, node: &str) -> Runner<Fake> {
    let locks = JobLocks::open(state.path(), node).expect("job locks");
    let mut options = RunOptions::new(node, 4, GpuInventory::none("test host"), locks);
    options.host_images = HostImages::parse(&["box:*".into()]).expect("patterns");
    Runner::new(Arc::clone(fake), options)
}

const TWO_OPS: &str = "version: \"0.1\"\ntype: container\ntimeout: 5s\nops:\n  - type: container/run\n    id: first\n    args:\n      image: box:1\n      volumes: [{name: data, dest: /data}]\n    results: {n: 'n=([0-9]+)'}\n  - type: container/run\n    id: second\n    args: {image: box:1}\n";

#[tokio::test(start_paused = true)]
async fn ops_run_in_order_and_everything_is_removed() {
    let fake = Arc::new(Fake::default());
    let state = state();
    fake.state().host_images.push("box:1".into());
    fake.state()
        .behaviour
        .insert("first".into(), Behaviour::Exit(0, "n=7\n"));
    let report = runner(&fake, &state, "t1")
        .run(&job(TWO_OPS), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Succeeded);
    assert_eq!(report.ops.len(), 2);
    assert_eq!(report.ops[0].results["n"].as_deref(), Some("7"));
    assert_eq!(
        report.ops[0].image_source,
        Some(crate::jobs::engine::ImageSource::LoadedFromHost)
    );
    let state = fake.state();
    let (name, spec) = &state.created[0];
    assert_eq!(name, &format!("garage-job-{}-first", report.run_id));
    assert_eq!(spec.network, format!("garage-job-{}-net", report.run_id));
    assert_eq!(
        spec.volumes,
        vec![(
            format!("garage-job-{}-vol-data", report.run_id),
            "/data".to_string(),
            false
        )]
    );
    assert!(state.items.is_empty(), "left behind: {:?}", state.items);
}

#[tokio::test(start_paused = true)]
async fn deadline_kills_and_reports_timed_out() {
    let fake = Arc::new(Fake::default());
    let state = state();
    fake.state().images.push("box:1".into());
    fake.state()
        .behaviour
        .insert("first".into(), Behaviour::Hang("working\n"));
    let report = runner(&fake, &state, "t2")
        .run(&job(TWO_OPS), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::TimedOut);
    assert_eq!(
        report.reason.as_deref(),
        Some("op `first`: timed out after the job's timeout of 5s while the container ran")
    );
    assert_eq!(report.ops.len(), 1, "the second op never starts");
    assert_eq!(report.ops[0].exit_code, Some(137));
    assert_eq!(report.ops[0].logs.text, "working\n");
    assert!(fake.state().items.is_empty());
}

#[tokio::test(start_paused = true)]
async fn exit_code_and_engine_loss_fail_the_job() {
    let fake = Arc::new(Fake::default());
    let state = state();
    fake.state().images.push("box:1".into());
    fake.state()
        .behaviour
        .insert("first".into(), Behaviour::Exit(3, "bad\n"));
    let report = runner(&fake, &state, "t3")
        .run(&job(TWO_OPS), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Failed);
    assert_eq!(report.ops[0].exit_code, Some(3));
    assert_eq!(
        report.reason.as_deref(),
        Some("op `first`: exited with code 3")
    );

    fake.state()
        .behaviour
        .insert("first".into(), Behaviour::EngineDies);
    let report = runner(&fake, &state, "t3")
        .run(&job(TWO_OPS), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Failed);
    let reason = report.reason.unwrap_or_default();
    assert!(
        reason.starts_with("op `first`: lost the podman host while the container ran: the podman container stopped: exited, exit code 137"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn missing_image_everywhere_says_both_reasons() {
    let fake = Arc::new(Fake::default());
    let state = state();
    let report = runner(&fake, &state, "t4")
        .run(&job(TWO_OPS), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Failed);
    let reason = report.reason.unwrap_or_default();
    assert!(
        reason.contains("the host has no box:1") && reason.contains("no registry for box:1"),
        "{reason}"
    );
    assert!(report.ops.is_empty());
}

#[tokio::test(start_paused = true)]
async fn gpu_work_is_refused_before_the_engine_is_touched() {
    let fake = Arc::new(Fake::default());
    let state = state();
    let gpu_job = job("version: \"0.1\"\ntype: container\nops:\n  - type: container/run\n    id: cuda\n    args: {image: box:1, gpu: true}\n");
    let err = runner(&fake, &state, "t5")
        .run(&gpu_job, &|_| {}, &CancellationToken::new())
        .await
        .expect_err("refused");
    assert!(matches!(err, RunError::Refused { .. }));
    assert_eq!(
        err.to_string(),
        "job refused before anything started: op `cuda` asks for a GPU (`gpu: true`) but node t5 has none (test host)"
    );
    assert!(fake.state().created.is_empty());
}

#[tokio::test(start_paused = true)]
async fn sweep_removes_dead_runs_but_not_live_ones() {
    let fake = Arc::new(Fake::default());
    let state = state();
    let locks = JobLocks::open(state.path(), "t6").expect("locks");
    let live = locks.hold_run("liverun").expect("hold");
    // A run whose process died leaves its lock file unlocked.
    std::fs::write(locks.dir().join("t6.run-deadrun.lock"), "").expect("stale lock file");
    for run in ["deadrun", "liverun"] {
        let labels = labels::job_labels("t6", "j", run, None);
        fake.add(ResourceKind::Container, &format!("c-{run}"), &labels);
        fake.add(ResourceKind::Network, &format!("n-{run}"), &labels);
    }
    let errors = runner(&fake, &state, "t6").sweep(None).await;
    assert!(errors.is_empty());
    let left: Vec<String> = fake.state().items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(left, vec!["c-liverun".to_string(), "n-liverun".to_string()]);
    assert!(!locks.dir().join("t6.run-deadrun.lock").exists());
    drop(live);
    runner(&fake, &state, "t6").sweep(None).await;
    assert!(fake.state().items.is_empty());
}

#[tokio::test(start_paused = true)]
async fn slots_limit_concurrent_runs() {
    let state = state();
    let locks = JobLocks::open(state.path(), "t7").expect("locks");
    let first = locks.try_slot(2).expect("lock").expect("slot 0");
    let second = locks.try_slot(2).expect("lock").expect("slot 1");
    assert!(locks.try_slot(2).expect("lock").is_none());
    assert_ne!(first.name, second.name);
    // Another node's slots in the same state directory are its own.
    let other = JobLocks::open(state.path(), "t7b").expect("locks");
    assert!(other.try_slot(2).expect("lock").is_some());
    drop(first);
    assert!(locks.try_slot(2).expect("lock").is_some());
}

#[tokio::test(start_paused = true)]
async fn host_image_outside_host_images_is_not_copied_and_says_the_fix() {
    let fake = Arc::new(Fake::default());
    let state = state();
    fake.state()
        .host_images
        .push("garage-test/busybox:1".into());
    let text = "version: \"0.1\"\ntype: container\nops:\n  - type: container/run\n    id: one\n    args: {image: garage-test/busybox:1}\n";
    let report = runner(&fake, &state, "t8")
        .run(&job(text), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Failed);
    let reason = report.reason.unwrap_or_default();
    assert!(
        reason.contains(
            "garage-test/busybox:1: not copied from the host engine: it matches no pattern of \
             spec.podman.jobs.hostImages (fix: add a pattern such as `garage-test/*` there to run \
             images the host engine holds, or use an image podman can pull); pull: pulling \
             failed: no registry for garage-test/busybox:1"
        ),
        "{reason}"
    );
    assert!(fake.state().loaded.is_empty(), "copied from the host");
    assert!(fake.state().created.is_empty());
}

#[tokio::test(start_paused = true)]
async fn host_images_pattern_admits_the_copy() {
    let fake = Arc::new(Fake::default());
    let state = state();
    fake.state().host_images.push("box:1".into());
    let report = runner(&fake, &state, "t9")
        .run(&job(TWO_OPS), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Succeeded);
    assert_eq!(fake.state().loaded, vec!["box:1".to_string()]);
    assert_eq!(
        report.ops[1].image_source,
        Some(ImageSource::LoadedFromHost)
    );
}

#[tokio::test(start_paused = true)]
async fn every_container_gets_a_pids_limit_and_the_report_says_limits_are_not_enforced() {
    let fake = Arc::new(Fake::default());
    let state = state();
    fake.state().images.push("box:1".into());
    let text = "version: \"0.1\"\ntype: container\nops:\n  - type: container/run\n    id: capped\n    args: {image: box:1, resources: {memory: 64Mi, cpus: 500m}}\n  - type: container/run\n    id: own\n    args: {image: box:1, resources: {pids: 32}}\n";
    let report = runner(&fake, &state, "t10")
        .run(&job(text), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Succeeded);
    assert_eq!(
        report.limits,
        "not enforced: cgroup v1 read-only on this host"
    );
    let json = serde_json::to_value(&report).expect("JSON");
    assert_eq!(
        json["limits"],
        "not enforced: cgroup v1 read-only on this host"
    );
    let state = fake.state();
    let limits: Vec<_> = state.created.iter().map(|(_, spec)| spec.limits).collect();
    assert_eq!(
        limits[0].pids,
        Some(crate::jobs::limits::DEFAULT_PIDS_LIMIT)
    );
    assert_eq!(limits[0].memory_bytes, Some(64 << 20));
    assert_eq!(limits[0].nano_cpus, Some(500_000_000));
    assert_eq!(limits[1].pids, Some(32));
}

#[tokio::test(start_paused = true)]
async fn cleanup_retries_what_the_engine_refused_to_remove() {
    let fake = Arc::new(Fake::default());
    let state = state();
    fake.state().host_images.push("box:1".into());
    fake.state().refuse_network_removals = 2;
    let report = runner(&fake, &state, "t-retry")
        .run(&job(TWO_OPS), &|_| {}, &CancellationToken::new())
        .await
        .expect("ran");
    assert_eq!(report.status, JobStatus::Succeeded);
    assert!(
        report.cleanup_errors.is_empty(),
        "{:?}",
        report.cleanup_errors
    );
    assert!(fake.state().items.is_empty(), "{:?}", fake.state().items);
    assert_eq!(fake.state().refuse_network_removals, 0);
}
