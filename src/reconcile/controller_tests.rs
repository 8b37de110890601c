//! The controller against the in-memory engine: convergence, idempotence,
//! crash backoff and failure isolation, on paused time.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::AgentMetrics;
use crate::node::apply_with;
use crate::runtime::fake::FakeRuntime;
use crate::runtime::{
    ComponentKind, ContainerSpec, ContainerState, DesiredComponent, DesiredState, RestartPolicy,
    Termination,
};
use crate::spec::{BackoffSettings, ReconcileSettings};

use super::{Controller, Target};

const IMAGE: &str = "garage-test/busybox:1";

fn component(name: &str, image: &str) -> DesiredComponent {
    DesiredComponent::new(
        name,
        ComponentKind::Extra,
        RestartPolicy::Always,
        ContainerSpec {
            image: image.into(),
            ..ContainerSpec::default()
        },
    )
}

fn target(components: Vec<DesiredComponent>) -> Target {
    Target {
        generation: "0123456789ab".into(),
        revision: None,
        desired: DesiredState {
            node: "n1".into(),
            components,
        },
        settings: ReconcileSettings {
            resync: Duration::from_secs(30),
            backoff: BackoffSettings {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(300),
                reset_after: Duration::from_secs(600),
            },
            rollout: Default::default(),
        },
    }
}

/// The id of the container of `component` (named `garage-n1-<component>`).
fn id_of(fake: &FakeRuntime, component: &str) -> String {
    let name = format!("garage-n1-{component}");
    fake.snapshot()
        .into_iter()
        .find(|(_, (n, _))| *n == name)
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("no container for {component}"))
}

/// Crashes `component` and lets the controller restart it (waiting out
/// any backoff); returns the wait the restart had.
async fn crash_and_restart(
    controller: &mut Controller<FakeRuntime>,
    fake: &FakeRuntime,
    component: &str,
) -> Duration {
    fake.exit(&id_of(fake, component), 3);
    let outcome = controller.pass().await.unwrap();
    let mut waited = Duration::ZERO;
    if outcome.dispatched == 0 {
        let at = outcome.next_wakeup.unwrap();
        waited = at - tokio::time::Instant::now();
        tokio::time::sleep_until(at).await;
        controller.pass().await.unwrap();
    }
    while controller.finish_one().await {}
    waited
}

async fn converge(controller: &mut Controller<FakeRuntime>) {
    for _ in 0..10 {
        let outcome = controller.pass().await.unwrap();
        while controller.finish_one().await {}
        if outcome.converged {
            return;
        }
    }
    panic!("did not converge in 10 passes");
}

#[tokio::test(start_paused = true)]
async fn apply_creates_everything_and_a_second_apply_changes_nothing() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let spec = target(vec![component("a", IMAGE), component("b", IMAGE)]);
    let report = apply_with(
        Arc::clone(&fake),
        "n1",
        spec.clone(),
        true,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(report.plan.steps.len(), 2);
    let before = fake.snapshot();
    assert_eq!(before.len(), 2);
    assert!(before
        .values()
        .all(|(_, state)| *state == ContainerState::Running));
    let calls = fake.calls().len();
    let again = apply_with(Arc::clone(&fake), "n1", spec, true, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(again.plan.is_empty());
    assert_eq!(fake.snapshot(), before);
    assert_eq!(
        fake.calls().len(),
        calls,
        "a converged node makes no engine calls"
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_image_fails_only_its_component_and_retries_with_backoff() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    controller.set_target(target(vec![
        component("good", IMAGE),
        component("bad", "missing:1"),
    ]));
    let status = controller.status();
    controller.pass().await.unwrap();
    while controller.finish_one().await {}
    controller.pass().await.unwrap();
    let snapshot = status.borrow().clone();
    let good = snapshot
        .components
        .iter()
        .find(|c| c.name == "good")
        .unwrap();
    let bad = snapshot
        .components
        .iter()
        .find(|c| c.name == "bad")
        .unwrap();
    assert_eq!(good.state, "running");
    assert_eq!(bad.state, "missing");
    assert!(
        bad.last_error.as_deref().unwrap().contains("missing:1"),
        "{bad:?}"
    );
    let degraded = snapshot
        .condition(super::status::ConditionType::Degraded)
        .unwrap();
    assert_eq!(degraded.status, super::status::ConditionStatus::True);
    // First failure retries at once; the second waits the initial 10 s.
    while controller.finish_one().await {}
    let outcome = controller.pass().await.unwrap();
    assert_eq!(outcome.dispatched, 0);
    let wait = outcome.next_wakeup.unwrap() - tokio::time::Instant::now();
    assert_eq!(wait, Duration::from_secs(10));
    let pulls = fake
        .calls()
        .iter()
        .filter(|c| *c == "pull missing:1")
        .count();
    assert_eq!(pulls, 2);
}

#[tokio::test(start_paused = true)]
async fn a_crashing_container_restarts_with_growing_backoff() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    controller.set_target(target(vec![component("crash", IMAGE)]));
    let status = controller.status();
    converge(&mut controller).await;
    let mut waits = Vec::new();
    for _ in 0..4 {
        let id = fake.snapshot().into_keys().next().unwrap();
        fake.exit(&id, 3);
        let outcome = controller.pass().await.unwrap();
        if outcome.dispatched == 0 {
            let at = outcome.next_wakeup.unwrap();
            waits.push((at - tokio::time::Instant::now()).as_secs());
            tokio::time::sleep_until(at).await;
            controller.pass().await.unwrap();
        } else {
            waits.push(0);
        }
        while controller.finish_one().await {}
    }
    assert_eq!(waits, vec![0, 10, 20, 40]);
    controller.pass().await.unwrap();
    let crash = status.borrow().components[0].clone();
    assert_eq!(crash.restarts, 4);
    assert_eq!(crash.last_exit_code, Some(3));
}

#[tokio::test(start_paused = true)]
async fn containers_without_our_labels_are_never_touched() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let foreign = fake.insert_foreign("garage-n1-other", Default::default());
    apply_with(
        Arc::clone(&fake),
        "n1",
        target(vec![component("a", IMAGE)]),
        true,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(fake.snapshot().contains_key(&foreign));
    assert!(!fake.calls().iter().any(|c| c.contains(&foreign)));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_step_frees_only_its_own_component() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE, "slow:1"]));
    fake.slow_pull("slow:1", Duration::from_secs(60));
    fake.panic_on_pull("boom:1");
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    controller.set_target(target(vec![
        component("slow", "slow:1"),
        component("boom", "boom:1"),
    ]));
    let status = controller.status();
    assert_eq!(controller.pass().await.unwrap().dispatched, 2);
    // The panic ends first; the slow pull is still in flight.
    assert!(controller.finish_one().await);
    controller.pass().await.unwrap();
    let slow_pulls = fake.calls().iter().filter(|c| *c == "pull slow:1").count();
    assert_eq!(slow_pulls, 1, "the slow step was started twice");
    let boom = status
        .borrow()
        .components
        .iter()
        .find(|c| c.name == "boom")
        .cloned()
        .unwrap();
    assert!(
        boom.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("panic"),
        "{boom:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_status_is_published_only_when_it_changes() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    controller.set_target(target(vec![component("a", IMAGE)]));
    let mut status = controller.status();
    converge(&mut controller).await;
    status.mark_unchanged();
    controller.pass().await.unwrap();
    assert!(
        !status.has_changed().unwrap(),
        "a pass that changed nothing woke the status watchers"
    );
    fake.exit(&id_of(&fake, "a"), 1);
    controller.pass().await.unwrap();
    assert!(status.has_changed().unwrap(), "a crash is a change");
}

#[tokio::test(start_paused = true)]
async fn a_component_removed_from_the_spec_loses_its_restart_record() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    let both = target(vec![component("a", IMAGE), component("b", IMAGE)]);
    controller.set_target(both.clone());
    let status = controller.status();
    converge(&mut controller).await;
    crash_and_restart(&mut controller, &fake, "b").await;
    controller.set_target(target(vec![component("a", IMAGE)]));
    converge(&mut controller).await;
    controller.set_target(both);
    converge(&mut controller).await;
    let b = status.borrow().components[1].clone();
    assert_eq!(b.name, "b");
    assert_eq!(b.restarts, 0, "b came back with the old record: {b:?}");
}

#[tokio::test(start_paused = true)]
async fn drift_counts_neither_first_creates_nor_failed_steps() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let metrics = AgentMetrics::new();
    let mut controller = Controller::new(Arc::clone(&fake), "n1", metrics.clone());
    controller.set_target(target(vec![component("a", IMAGE)]));
    converge(&mut controller).await;
    let drift = |cause: &str| metrics.drift_corrections.with_label_values(&[cause]).get();
    assert_eq!(drift("missing"), 0, "the first create is not drift");
    fake.delete(&id_of(&fake, "a"));
    converge(&mut controller).await;
    assert_eq!(drift("missing"), 1, "a removed container is drift");

    controller.set_target(target(vec![
        component("a", IMAGE),
        component("bad", "missing:1"),
    ]));
    controller.pass().await.unwrap();
    while controller.finish_one().await {}
    assert_eq!(drift("missing"), 1, "a failed step corrected nothing");
}

#[tokio::test(start_paused = true)]
async fn a_new_generation_of_a_component_resets_its_crash_backoff() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    controller.set_target(target(vec![component("crash", IMAGE)]));
    converge(&mut controller).await;
    for _ in 0..4 {
        crash_and_restart(&mut controller, &fake, "crash").await;
    }
    // The next crash waits 80 s; a fixed spec must not.
    fake.exit(&id_of(&fake, "crash"), 3);
    let waiting = controller.pass().await.unwrap();
    assert_eq!(waiting.dispatched, 0, "{waiting:?}");
    let fixed = DesiredComponent::new(
        "crash",
        ComponentKind::Extra,
        RestartPolicy::Always,
        ContainerSpec {
            image: IMAGE.into(),
            command: vec!["sleep".into(), "3600".into()],
            ..ContainerSpec::default()
        },
    );
    let mut fixed_target = target(vec![fixed]);
    fixed_target.generation = "fedcba987654".into();
    controller.set_target(fixed_target);
    let outcome = controller.pass().await.unwrap();
    assert_eq!(outcome.dispatched, 1, "{outcome:?}");
    assert_eq!(outcome.next_wakeup, None);
}

#[tokio::test(start_paused = true)]
async fn a_stopped_container_shows_why_and_its_last_output() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    controller.set_target(target(vec![component("crash", IMAGE)]));
    let status = controller.status();
    converge(&mut controller).await;
    let words = Termination {
        reason: Some("exec: argument list too long".into()),
        log_tail: vec!["starting".into(), "fatal: no model".into()],
    };
    fake.exit_with(&id_of(&fake, "crash"), 2, words.clone());
    controller.pass().await.unwrap();
    let shown = status.borrow().components[0].clone();
    assert_eq!(shown.last_termination.as_ref(), Some(&words), "{shown:?}");
    let text = status.borrow().render();
    assert!(text.contains("argument list too long"), "{text}");
    assert!(text.contains("  | fatal: no model"), "{text}");
}

/// `component("a")` with `env REV=rev`: a new configuration per `rev`.
fn revision(rev: &str) -> DesiredComponent {
    DesiredComponent::new(
        "a",
        ComponentKind::Extra,
        RestartPolicy::Always,
        ContainerSpec {
            image: IMAGE.into(),
            env: [("REV".to_string(), rev.to_string())].into(),
            ..ContainerSpec::default()
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_rollout_that_never_gets_ready_is_rolled_back_and_held_until_the_spec_changes() {
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    controller.set_target(target(vec![revision("1")]));
    converge(&mut controller).await;
    let old = id_of(&fake, "a");

    // Revision 2's container dies as soon as it starts.
    let mut broken = target(vec![revision("2")]);
    broken.revision = Some("c0ffee".into());
    controller.set_target(broken);
    let outcome = controller.pass().await.unwrap();
    assert_eq!(outcome.dispatched, 1, "{outcome:?}");
    let killer = {
        let fake = Arc::clone(&fake);
        let old = old.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                let new = fake
                    .snapshot()
                    .into_iter()
                    .find(|(id, (_, state))| *id != old && *state == ContainerState::Running);
                if let Some((id, _)) = new {
                    fake.exit(&id, 1);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    assert!(controller.finish_one().await);
    killer.await.unwrap();
    assert_eq!(
        fake.snapshot().keys().collect::<Vec<_>>(),
        [&old],
        "only the old container is left"
    );
    assert_eq!(fake.snapshot()[&old].1, ContainerState::Running);

    // Held: no retry, the node ready, Degraded names the revision.
    let held = controller.pass().await.unwrap();
    assert_eq!(held.dispatched, 0, "{held:?}");
    let status = controller.status().borrow().clone();
    assert!(status.is_ready(), "{status:?}");
    let degraded = status
        .condition(super::status::ConditionType::Degraded)
        .unwrap();
    assert_eq!(degraded.reason, "RolloutFailed");
    assert!(degraded.message.contains("c0ffee"), "{}", degraded.message);
    assert_eq!(
        status.components[0].rollout_failed.as_deref(),
        Some("c0ffee")
    );

    // A new revision rolls forward.
    controller.set_target(target(vec![revision("3")]));
    converge(&mut controller).await;
    let left = fake.snapshot();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        !left.contains_key(&old),
        "the old container went after the new was ready"
    );
    let status = controller.status().borrow().clone();
    assert!(status.components[0].rollout_failed.is_none(), "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn a_worker_rollout_waits_for_the_network_jobs_running_on_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fake = Arc::new(FakeRuntime::with_images([IMAGE]));
    let mut controller = Controller::new(Arc::clone(&fake), "n1", AgentMetrics::new());
    let inference_jobs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&inference_jobs);
    controller.protect_jobs(super::JobsOn(Arc::new(move |kind| match kind {
        ComponentKind::Worker => counted.load(Ordering::SeqCst),
        _ => 0,
    })));
    let worker = |rev: &str| {
        DesiredComponent::new(
            "worker",
            ComponentKind::Worker,
            RestartPolicy::Always,
            ContainerSpec {
                image: IMAGE.into(),
                env: [("REV".to_string(), rev.to_string())].into(),
                ..ContainerSpec::default()
            },
        )
    };
    controller.set_target(target(vec![worker("1")]));
    converge(&mut controller).await;

    inference_jobs.store(1, Ordering::SeqCst);
    controller.set_target(target(vec![worker("2")]));
    let waiting = controller.pass().await.unwrap();
    assert_eq!(
        waiting.dispatched, 0,
        "a job runs on the worker: {waiting:?}"
    );
    assert!(waiting.next_wakeup.is_some(), "it looks again");

    inference_jobs.store(0, Ordering::SeqCst);
    let rolling = controller.pass().await.unwrap();
    assert_eq!(rolling.dispatched, 1, "the job ended: {rolling:?}");
}
