//! The controller against the in-memory engine: convergence, idempotence,
//! crash backoff and failure isolation, on paused time.

use std::sync::Arc;
use std::time::Duration;

use crate::commands::apply_with;
use crate::metrics::AgentMetrics;
use crate::runtime::fake::FakeRuntime;
use crate::runtime::{
    ComponentKind, ContainerSpec, ContainerState, DesiredComponent, DesiredState, RestartPolicy,
};

use super::settings::{BackoffSettings, ReconcileSettings};
use super::{Controller, Target};

const IMAGE: &str = "garage-test/busybox:1";

fn component(name: &str, image: &str) -> DesiredComponent {
    DesiredComponent {
        name: name.into(),
        kind: ComponentKind::Extra,
        restart: RestartPolicy::Always,
        container: ContainerSpec {
            image: image.into(),
            ..ContainerSpec::default()
        },
    }
}

fn target(components: Vec<DesiredComponent>) -> Target {
    Target {
        generation: "0123456789ab".into(),
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
        },
    }
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
