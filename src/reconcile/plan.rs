//! The pure planner: `plan(desired, observed) -> Plan`, every step with its
//! cause. No I/O and no clock, so the same plan serves `garage plan` (dry
//! run) and `apply`, and tests compare its text against golden text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::runtime::labels::{self, CURRENT_HASH_VERSION};
use crate::runtime::{
    ComponentKind, ContainerState, DesiredComponent, DesiredState, ObservedContainer, RestartPolicy,
};

/// What to do to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pull if needed, create and start a new container.
    Create,
    /// Remove the existing container, then create and start a new one.
    Recreate,
    /// Start the existing container again.
    Start,
    /// Remove a container the spec no longer wants.
    Remove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Recreate => "recreate",
            Action::Start => "start",
            Action::Remove => "remove",
        }
    }
}

/// Why a step is needed; also the `cause` label of the drift metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// No container exists for the component.
    Missing,
    /// The hashed configuration differs; names the fields that changed.
    ConfigChanged { changes: Vec<String> },
    /// The container was made by an agent hashing a different field set.
    HashVersionChanged { observed: String },
    /// The container exited and its restart policy wants it running.
    Exited { exit_code: Option<i64> },
    /// The container was created but never started.
    NotStarted,
    /// The engine gave up on the container (`dead`).
    Dead,
    /// The component is no longer in the spec.
    Orphan,
    /// Another container already serves the same component.
    Duplicate,
}

impl Cause {
    /// Every value [`Cause::metric_label`] can return.
    pub const METRIC_LABELS: [&'static str; 4] = ["missing", "config_changed", "stopped", "orphan"];

    /// A value from a small fixed set, for metric labels.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Cause::Missing => "missing",
            Cause::ConfigChanged { .. } | Cause::HashVersionChanged { .. } => "config_changed",
            Cause::Exited { .. } | Cause::NotStarted | Cause::Dead => "stopped",
            Cause::Orphan | Cause::Duplicate => "orphan",
        }
    }

    /// True when the step restarts something that stopped by itself, which
    /// is what restart backoff throttles.
    pub fn is_crash(&self) -> bool {
        matches!(self, Cause::Exited { .. } | Cause::Dead)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Missing => write!(f, "no container exists"),
            Cause::ConfigChanged { changes } => write!(f, "{}", changes.join("; ")),
            Cause::HashVersionChanged { observed } => write!(
                f,
                "made with config hash version {observed}, this agent uses {CURRENT_HASH_VERSION}"
            ),
            Cause::Exited {
                exit_code: Some(code),
            } => write!(f, "exited with code {code}"),
            Cause::Exited { exit_code: None } => write!(f, "exited"),
            Cause::NotStarted => write!(f, "created but not running"),
            Cause::Dead => write!(f, "the engine marked it dead"),
            Cause::Orphan => write!(f, "no longer in the spec"),
            Cause::Duplicate => write!(f, "another container already runs this component"),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub component: String,
    pub kind: ComponentKind,
    pub action: Action,
    pub cause: Cause,
    /// The existing container the step acts on (recreate, start, remove).
    pub container_id: Option<String>,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.action {
            Action::Create => '+',
            Action::Recreate => '~',
            Action::Start => '>',
            Action::Remove => '-',
        };
        write!(f, "{sign} {:<8} {}", self.action.as_str(), self.component)?;
        if let Some(id) = &self.container_id {
            write!(f, " [{}]", short_id(id))?;
        }
        write!(f, ": {}", self.cause)
    }
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Ordered steps that converge the engine to the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return writeln!(f, "nothing to do: the engine matches the spec");
        }
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        writeln!(f, "{} step(s)", self.steps.len())
    }
}

/// Computes the steps that take `observed` (the owned containers of the node)
/// to `desired`. Components come out in name order, orphans last.
pub fn plan(desired: &DesiredState, observed: &[ObservedContainer]) -> Plan {
    let mut by_component: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for container in observed {
        let component = container.component().unwrap_or("");
        by_component.entry(component).or_default().push(container);
    }
    let mut desired_sorted: Vec<&DesiredComponent> = desired.components.iter().collect();
    desired_sorted.sort_by(|a, b| a.name.cmp(&b.name));

    let mut steps = Vec::new();
    let wanted: BTreeSet<&str> = desired_sorted.iter().map(|c| c.name.as_str()).collect();
    for component in desired_sorted {
        let existing = by_component
            .get(component.name.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        plan_component(component, existing, &mut steps);
    }
    for (component, containers) in by_component {
        if wanted.contains(component) {
            continue;
        }
        for container in containers {
            steps.push(Step {
                component: component.to_string(),
                kind: observed_kind(container),
                action: Action::Remove,
                cause: Cause::Orphan,
                container_id: Some(container.id.clone()),
            });
        }
    }
    Plan { steps }
}

fn observed_kind(container: &ObservedContainer) -> ComponentKind {
    container
        .label(labels::KIND)
        .and_then(labels::parse_kind)
        .unwrap_or(ComponentKind::Extra)
}

fn plan_component(
    component: &DesiredComponent,
    existing: &[&ObservedContainer],
    steps: &mut Vec<Step>,
) {
    let step = |action, cause, id: Option<&str>| Step {
        component: component.name.clone(),
        kind: component.kind,
        action,
        cause,
        container_id: id.map(String::from),
    };
    let hash = &component.config().hash;
    // Keep the best candidate: matching config first, then running.
    let mut ranked: Vec<&&ObservedContainer> = existing.iter().collect();
    ranked.sort_by_key(|c| {
        (
            c.label(labels::CONFIG_HASH) != Some(hash.as_str()),
            c.state != ContainerState::Running,
            c.id.clone(),
        )
    });
    let Some((keep, extra)) = ranked.split_first() else {
        steps.push(step(Action::Create, Cause::Missing, None));
        return;
    };
    for duplicate in extra {
        steps.push(step(Action::Remove, Cause::Duplicate, Some(&duplicate.id)));
    }
    if let Some(cause) = drift(component, keep) {
        steps.push(step(Action::Recreate, cause, Some(&keep.id)));
        return;
    }
    let wants_running = |exit_code: Option<i64>| match component.restart {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != Some(0),
        RestartPolicy::Never => false,
    };
    match keep.state {
        ContainerState::Created => {
            steps.push(step(Action::Start, Cause::NotStarted, Some(&keep.id)))
        }
        ContainerState::Exited if wants_running(keep.exit_code) => {
            steps.push(step(
                Action::Start,
                Cause::Exited {
                    exit_code: keep.exit_code,
                },
                Some(&keep.id),
            ));
        }
        ContainerState::Dead if wants_running(keep.exit_code) => {
            steps.push(step(Action::Recreate, Cause::Dead, Some(&keep.id)));
        }
        _ => {}
    }
}

/// Why the container's configuration no longer matches, if it does not.
fn drift(component: &DesiredComponent, observed: &ObservedContainer) -> Option<Cause> {
    let config = component.config();
    let version = observed.label(labels::HASH_VERSION).unwrap_or("none");
    if version != CURRENT_HASH_VERSION {
        return Some(Cause::HashVersionChanged {
            observed: version.to_string(),
        });
    }
    if observed.label(labels::CONFIG_HASH) == Some(config.hash.as_str()) {
        return None;
    }
    let desired: Value = serde_json::from_str(&config.json).unwrap_or(Value::Null);
    let before: Value = observed
        .label(labels::CONFIG)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or(Value::Null);
    Some(Cause::ConfigChanged {
        changes: describe_changes(&before, &desired),
    })
}

/// Human words for the top-level fields that differ; short values are shown.
fn describe_changes(before: &Value, after: &Value) -> Vec<String> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return vec!["config changed (the container's recorded config is unreadable)".into()];
    };
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changes: Vec<String> = keys
        .into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| {
            let show =
                |v: Option<&Value>| v.map(Value::to_string).unwrap_or_else(|| "unset".into());
            let (old, new) = (show(before.get(key)), show(after.get(key)));
            if old.len() + new.len() <= 80 {
                format!("{key} changed: {old} → {new}")
            } else {
                format!("{key} changed")
            }
        })
        .collect();
    if changes.is_empty() {
        vec!["config hash changed".into()]
    } else {
        changes
    }
}
