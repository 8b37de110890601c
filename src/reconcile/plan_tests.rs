//! Golden-text tests of the pure planner.

use std::collections::BTreeMap;

use crate::runtime::labels::{self, labels_for};
use crate::runtime::{
    ComponentKind, ContainerSpec, ContainerState, DesiredComponent, DesiredState, Health,
    ObservedContainer, RestartPolicy,
};

use super::plan::plan;

const NODE: &str = "n1";

fn component(name: &str, image: &str, restart: RestartPolicy) -> DesiredComponent {
    DesiredComponent::new(
        name,
        ComponentKind::Extra,
        restart,
        ContainerSpec {
            image: image.into(),
            command: vec!["sleep".into(), "3600".into()],
            ..ContainerSpec::default()
        },
    )
}

fn desired(components: Vec<DesiredComponent>) -> DesiredState {
    DesiredState {
        node: NODE.into(),
        components,
    }
}

fn running(id: &str, component: &DesiredComponent) -> ObservedContainer {
    ObservedContainer {
        id: id.into(),
        name: labels::container_name(NODE, &component.name),
        labels: labels_for(NODE, component),
        state: ContainerState::Running,
        health: Health::None,
        exit_code: None,
        started_at: None,
    }
}

fn exited(id: &str, component: &DesiredComponent, code: i64) -> ObservedContainer {
    ObservedContainer {
        state: ContainerState::Exited,
        exit_code: Some(code),
        ..running(id, component)
    }
}

#[test]
fn empty_engine_creates_everything_in_name_order() {
    let web = component("web", "busybox:1", RestartPolicy::Always);
    let api = component("api", "busybox:1", RestartPolicy::Always);
    let plan = plan(&desired(vec![web, api]), &[]);
    assert_eq!(
        plan.to_string(),
        "+ create   api: no container exists\n+ create   web: no container exists\n2 step(s)\n"
    );
}

#[test]
fn matching_containers_need_nothing() {
    let web = component("web", "busybox:1", RestartPolicy::Always);
    let plan = plan(
        &desired(vec![web.clone()]),
        &[running("aaaaaaaaaaaaaaaa", &web)],
    );
    assert!(plan.is_empty());
    assert_eq!(
        plan.to_string(),
        "nothing to do: the engine matches the spec\n"
    );
}

#[test]
fn a_changed_field_recreates_and_says_what_changed() {
    let old = component("web", "busybox:1", RestartPolicy::Always);
    let busybox_2 = component("web", "busybox:2", RestartPolicy::Always);
    let new = DesiredComponent::new(
        "web",
        ComponentKind::Extra,
        RestartPolicy::Always,
        ContainerSpec {
            env: BTreeMap::from([("MODE".to_string(), "fast".to_string())]),
            ..busybox_2.container().clone()
        },
    );
    let plan = plan(&desired(vec![new]), &[running("0123456789abcdef", &old)]);
    assert_eq!(
        plan.to_string(),
        "~ recreate web [0123456789ab]: env changed: {} → {\"MODE\":\"fast\"}; image changed: \"busybox:1\" → \"busybox:2\"\n1 step(s)\n"
    );
}

#[test]
fn restart_policy_decides_whether_an_exited_container_starts() {
    let always = component("always", "busybox:1", RestartPolicy::Always);
    let on_failure_ok = component("onfailure-ok", "busybox:1", RestartPolicy::OnFailure);
    let on_failure_bad = component("onfailure-bad", "busybox:1", RestartPolicy::OnFailure);
    let never = component("never", "busybox:1", RestartPolicy::Never);
    let observed = vec![
        exited("c1", &always, 0),
        exited("c2", &on_failure_ok, 0),
        exited("c3", &on_failure_bad, 3),
        exited("c4", &never, 1),
    ];
    let plan = plan(
        &desired(vec![always, on_failure_ok, on_failure_bad, never]),
        &observed,
    );
    assert_eq!(
        plan.to_string(),
        "> start    always [c1]: exited with code 0\n> start    onfailure-bad [c3]: exited with code 3\n2 step(s)\n"
    );
}

#[test]
fn orphans_and_duplicates_are_removed() {
    let web = component("web", "busybox:1", RestartPolicy::Always);
    let gone = component("gone", "busybox:1", RestartPolicy::Always);
    let observed = vec![
        running("c1", &web),
        exited("c2", &web, 1),
        running("c3", &gone),
    ];
    let plan = plan(&desired(vec![web]), &observed);
    assert_eq!(
        plan.to_string(),
        "- remove   web [c2]: another container already runs this component\n- remove   gone [c3]: no longer in the spec\n2 step(s)\n"
    );
}

#[test]
fn created_but_not_started_is_started_and_old_hash_versions_are_recreated() {
    let web = component("web", "busybox:1", RestartPolicy::Always);
    let api = component("api", "busybox:1", RestartPolicy::Always);
    let mut old_version = running("c2", &api);
    old_version
        .labels
        .insert(labels::HASH_VERSION.into(), "0".into());
    let created = ObservedContainer {
        state: ContainerState::Created,
        ..running("c1", &web)
    };
    let plan = plan(&desired(vec![web, api]), &[created, old_version]);
    assert_eq!(
        plan.to_string(),
        "~ recreate api [c2]: made with config hash version 0, this agent uses 1\n> start    web [c1]: created but not running\n2 step(s)\n"
    );
}

#[test]
fn dead_containers_are_recreated() {
    let web = component("web", "busybox:1", RestartPolicy::Always);
    let dead = ObservedContainer {
        state: ContainerState::Dead,
        ..running("c1", &web)
    };
    let plan = plan(&desired(vec![web]), &[dead]);
    assert_eq!(
        plan.to_string(),
        "~ recreate web [c1]: the engine marked it dead\n1 step(s)\n"
    );
}

#[test]
fn every_cause_labels_its_metric_from_the_declared_set() {
    use super::plan::Cause;
    let causes = [
        Cause::Missing,
        Cause::ConfigChanged { changes: vec![] },
        Cause::HashVersionChanged {
            observed: "0".into(),
        },
        Cause::Exited { exit_code: Some(1) },
        Cause::NotStarted,
        Cause::Dead,
        Cause::Orphan,
        Cause::Duplicate,
    ];
    for cause in causes {
        assert!(
            Cause::METRIC_LABELS.contains(&cause.metric_label()),
            "{cause:?}"
        );
    }
}
