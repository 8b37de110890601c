//! Projects the controller's view onto the node's status (components and
//! conditions) and the agent's metrics. The one writer of conditions: the
//! controller reports what happened (a spec accepted or rejected, the engine
//! unreachable, a pass done) and this module decides what that means for
//! Ready, Progressing, Degraded and SpecValid. Pure bookkeeping: no engine
//! calls.

use std::collections::HashMap;
use std::time::SystemTime;

use tokio::time::Instant;

use crate::clock::rfc3339_secs;
use crate::metrics::AgentMetrics;
use crate::runtime::{labels, ComponentKind, ContainerState, ObservedContainer, RestartPolicy};

use super::memory::ComponentMemory;
use super::status::{
    ComponentStatus, ConditionStatus, ConditionType, NodeStatus, REASON_SPEC_INVALID,
    REASON_SPEC_MISSING, REASON_SPEC_UNREACHABLE,
};
use super::target::Target;

/// Why the controller holds no valid revision of the spec right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SpecProblem {
    Invalid,
    Missing,
    Unreachable,
}

/// A new valid revision of the spec is the target.
pub(super) fn spec_accepted(status: &mut NodeStatus, generation: &str, revision: Option<&str>) {
    status.observed_generation = Some(generation.to_string());
    status.last_attempted_generation = Some(generation.to_string());
    status.observed_revision = revision.map(str::to_string);
    status.set_condition(
        ConditionType::SpecValid,
        true,
        "Valid",
        "node.yaml is valid",
    );
}

/// node.yaml is invalid or gone; the last valid target stays.
pub(super) fn spec_rejected(status: &mut NodeStatus, problem: SpecProblem, message: &str) {
    let reason = match problem {
        SpecProblem::Invalid => REASON_SPEC_INVALID,
        SpecProblem::Missing => REASON_SPEC_MISSING,
        SpecProblem::Unreachable => REASON_SPEC_UNREACHABLE,
    };
    let message = format!("{message} (still converging to the last valid spec)");
    status.set_condition(ConditionType::SpecValid, false, reason, message);
}

/// The engine could not be listed: nothing is known about the containers.
pub(super) fn engine_unavailable(status: &mut NodeStatus, message: String) {
    status.set_condition(ConditionType::Degraded, true, "EngineUnavailable", message);
    status.set_condition(
        ConditionType::Ready,
        ConditionStatus::Unknown,
        "EngineUnavailable",
        "cannot observe containers",
    );
}

/// The status of every desired component, from what was observed and what
/// the controller remembers (restarts, errors, backoff).
pub(super) fn component_statuses(
    target: &Target,
    observed: &[ObservedContainer],
    memory: &HashMap<String, ComponentMemory>,
    now: Instant,
) -> Vec<ComponentStatus> {
    target
        .desired
        .components
        .iter()
        .map(|component| {
            let container = observed
                .iter()
                .filter(|c| c.component() == Some(component.name.as_str()))
                .min_by_key(|c| c.state != ContainerState::Running);
            let record = memory.get(&component.name);
            let waiting = record.and_then(|r| r.backoff.ready_at(now));
            ComponentStatus {
                name: component.name.clone(),
                kind: component.kind.as_str().into(),
                container_id: container.map(|c| c.id.clone()),
                state: container.map_or("missing", |c| c.state.as_str()).into(),
                health: container.map_or("none", |c| c.health.as_str()).into(),
                restarts: record.map_or(0, |r| r.restarts),
                last_exit_code: container
                    .and_then(|c| c.exit_code)
                    .or(record.and_then(|r| r.last_exit_code)),
                last_error: record.and_then(|r| r.last_error.clone()),
                backoff_seconds: waiting.map(|at| (at - now).as_secs_f64()),
                next_retry: waiting.map(|at| rfc3339_secs(SystemTime::now() + (at - now))),
                last_termination: record
                    .and_then(|r| r.termination.as_ref())
                    .map(|(_, _, termination)| termination.clone()),
                rollout_failed: record
                    .and_then(|r| r.failed_rollout.as_ref())
                    .map(|(_, revision)| revision.clone()),
            }
        })
        .collect()
}

/// Sets backoff, owned-container and last-success metrics.
pub(super) fn update_metrics(
    metrics: &AgentMetrics,
    target: &Target,
    observed: &[ObservedContainer],
    memory: &HashMap<String, ComponentMemory>,
    now: Instant,
    converged: bool,
) {
    for kind in [
        ComponentKind::Podman,
        ComponentKind::Worker,
        ComponentKind::Extra,
    ] {
        let largest = target
            .desired
            .components
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| memory.get(&c.name))
            .map(|r| r.backoff.current_delay(now).as_secs_f64())
            .fold(0.0, f64::max);
        metrics
            .backoff_seconds
            .with_label_values(&[kind.as_str()])
            .set(largest);
    }
    let kinds: Vec<(ComponentKind, ContainerState)> = observed
        .iter()
        .map(|c| {
            let kind = c.label(labels::KIND).and_then(labels::parse_kind);
            (kind.unwrap_or(ComponentKind::Extra), c.state)
        })
        .collect();
    metrics.set_owned(&kinds);
    if converged {
        metrics.last_success.set(crate::clock::unix_secs_f64());
        if let Some(revision) = &target.revision {
            metrics.set_applied_revision(revision);
        }
    }
}

/// After a pass: replaces the component list and recomputes Ready,
/// Progressing and Degraded.
pub(super) fn pass_done(
    status: &mut NodeStatus,
    target: &Target,
    components: Vec<ComponentStatus>,
    pending: usize,
    converged: bool,
) {
    let failing: Vec<String> = components
        .iter()
        .filter_map(|c| {
            let why = c.last_error.clone().or_else(|| {
                c.backoff_seconds.map(|s| {
                    let code = c.last_exit_code.map_or("unknown".into(), |e| e.to_string());
                    let why = c
                        .termination_summary()
                        .map_or(String::new(), |t| format!(" ({t})"));
                    format!("restart backoff {s:.0}s after exit code {code}{why}")
                })
            })?;
            Some(format!("{}: {why}", c.name))
        })
        .collect();
    let not_ready: Vec<&str> = target
        .desired
        .components
        .iter()
        .zip(&components)
        .filter(|(desired, status)| !is_settled(desired.restart, status))
        .map(|(_, status)| status.name.as_str())
        .collect();
    // A rolled-back change leaves nothing pending: the previous containers
    // serve, so the node stays ready (Degraded says what failed).
    let (ready, ready_reason, ready_message) =
        match (converged || pending == 0, not_ready.is_empty()) {
            (true, true) => (true, "AllRunning", "every component is running".to_string()),
            (false, true) => (false, "Converging", "steps are pending".to_string()),
            (_, false) => (
                false,
                "ComponentsNotReady",
                format!("not running or not healthy: {}", not_ready.join(", ")),
            ),
        };
    status.set_condition(ConditionType::Ready, ready, ready_reason, ready_message);
    if pending == 0 {
        status.set_condition(
            ConditionType::Progressing,
            false,
            "Converged",
            "the engine matches the spec",
        );
    } else {
        let message = format!("{pending} step(s) pending or running");
        status.set_condition(ConditionType::Progressing, true, "Converging", message);
    }
    if failing.is_empty() {
        status.set_condition(
            ConditionType::Degraded,
            false,
            "AsExpected",
            "no component is failing",
        );
    } else {
        let reason = if components.iter().any(|c| c.rollout_failed.is_some()) {
            "RolloutFailed"
        } else {
            "ComponentFailing"
        };
        status.set_condition(ConditionType::Degraded, true, reason, failing.join("; "));
    }
    if converged {
        status.last_applied_generation = Some(target.generation.clone());
        status.last_applied_revision.clone_from(&target.revision);
    }
    status.components = components;
}

/// Running (and healthy where checked), or finished in a way its restart
/// policy accepts (a one-shot container that exited 0).
fn is_settled(restart: RestartPolicy, status: &ComponentStatus) -> bool {
    match status.state.as_str() {
        "running" => matches!(status.health.as_str(), "none" | "healthy"),
        "exited" => match restart {
            RestartPolicy::Always => false,
            RestartPolicy::OnFailure => status.last_exit_code == Some(0),
            RestartPolicy::Never => true,
        },
        _ => false,
    }
}
