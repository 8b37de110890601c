//! The node's reported status, Kubernetes style: generations, conditions
//! with transition times, and per-component state. Serialised as-is by
//! `GET /status` and printed by `garage status`. Conditions are written by
//! `projection` only; readiness is read here only ([`NodeStatus::ready`],
//! [`NodeStatus::is_ready`], [`NodeStatus::is_converging`]).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339_secs;
use crate::runtime::Termination;

/// SpecValid=False reasons: the file does not parse or validate, or it
/// cannot be found (the agent keeps converging to the last valid spec).
pub const REASON_SPEC_INVALID: &str = "InvalidSpec";
pub const REASON_SPEC_MISSING: &str = "SpecMissing";
/// SpecValid=False: the spec's git repository cannot be fetched (the agent
/// keeps converging to the last applied revision).
pub const REASON_SPEC_UNREACHABLE: &str = "SpecSourceUnreachable";

/// Condition types, a fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionType {
    Ready,
    Progressing,
    Degraded,
    SpecValid,
    /// The solar production can be read (the power status's condition,
    /// written by `crate::energy::monitor`, not by the projection).
    SolarProduction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: ConditionType,
    pub status: ConditionStatus,
    /// A CamelCase word a program can match on.
    pub reason: String,
    /// A sentence for people.
    pub message: String,
    /// RFC 3339; changes only when `status` changes.
    pub last_transition_time: String,
}

/// State of one component as last observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub name: String,
    pub kind: String,
    pub container_id: Option<String>,
    /// Engine state (`running`, `exited`, …) or `missing`.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting` or `none`.
    pub health: String,
    /// Restarts the agent made after the container stopped by itself.
    pub restarts: u64,
    pub last_exit_code: Option<i64>,
    pub last_error: Option<String>,
    /// Current restart backoff, when the component is waiting.
    pub backoff_seconds: Option<f64>,
    /// RFC 3339 time of the next attempt, when the component is waiting.
    pub next_retry: Option<String>,
    /// Why its container last stopped by itself: the engine's reason and
    /// the last lines it wrote.
    #[serde(default)]
    pub last_termination: Option<Termination>,
    /// The revision (git commit, or spec generation) whose rollout failed:
    /// the previous container runs on until the spec changes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_failed: Option<String>,
}

impl ComponentStatus {
    /// One line on why the container last stopped, when anything is known.
    pub fn termination_summary(&self) -> Option<String> {
        let termination = self.last_termination.as_ref()?;
        let last_line = termination
            .log_tail
            .last()
            .map(|l| format!("last output: {l}"));
        match (&termination.reason, last_line) {
            (Some(reason), Some(line)) => Some(format!("{reason}; {line}")),
            (Some(reason), None) => Some(reason.clone()),
            (None, line) => line,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub node: String,
    /// Generation (spec hash) the agent is converging to.
    pub observed_generation: Option<String>,
    /// Generation of the last spec the agent started to apply.
    pub last_attempted_generation: Option<String>,
    /// Generation of the last spec fully converged.
    pub last_applied_generation: Option<String>,
    /// For a spec from git: the commit of the spec being converged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_revision: Option<String>,
    /// For a spec from git: the commit of the last spec fully converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    pub conditions: Vec<Condition>,
    pub components: Vec<ComponentStatus>,
}

impl NodeStatus {
    pub fn new(node: &str) -> Self {
        let now = rfc3339_secs(SystemTime::now());
        let unknown = |type_| Condition {
            type_,
            status: ConditionStatus::Unknown,
            reason: "Starting".into(),
            message: "the agent has not finished its first reconcile".into(),
            last_transition_time: now.clone(),
        };
        NodeStatus {
            node: node.into(),
            observed_generation: None,
            last_attempted_generation: None,
            last_applied_generation: None,
            observed_revision: None,
            last_applied_revision: None,
            conditions: [
                ConditionType::Ready,
                ConditionType::Progressing,
                ConditionType::Degraded,
                ConditionType::SpecValid,
            ]
            .into_iter()
            .map(unknown)
            .collect(),
            components: Vec::new(),
        }
    }

    pub fn condition(&self, type_: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// The Ready condition: every component runs (healthy where checked) or
    /// finished as its restart policy allows; `None` while it is Unknown
    /// (before the first pass, or while the engine cannot be listed). What
    /// a heartbeat tells the coordinator.
    pub fn ready(&self) -> Option<bool> {
        match self.condition(ConditionType::Ready)?.status {
            ConditionStatus::True => Some(true),
            ConditionStatus::False => Some(false),
            ConditionStatus::Unknown => None,
        }
    }

    /// Ready is True: what `garage apply --wait` waits for.
    pub fn is_ready(&self) -> bool {
        self.ready() == Some(true)
    }

    /// The agent is converging: a pass has observed the engine, towards a
    /// valid spec. A deleted node.yaml leaves the last valid spec running,
    /// so it still converges (issue 9, D21: `/readyz` answered 503 while
    /// every workload ran). What `/readyz` answers; components that are
    /// still starting or failing do not take the agent out of service.
    pub fn is_converging(&self) -> bool {
        let spec_usable = self.condition(ConditionType::SpecValid).is_some_and(|c| {
            c.status == ConditionStatus::True
                || ([REASON_SPEC_MISSING, REASON_SPEC_UNREACHABLE].contains(&c.reason.as_str())
                    && self.observed_generation.is_some())
        });
        let observed = self.condition(ConditionType::Progressing).map(|c| c.status);
        spec_usable && observed != Some(ConditionStatus::Unknown)
    }

    /// Sets a condition; the transition time moves only when the status flips.
    pub fn set_condition(
        &mut self,
        type_: ConditionType,
        status: impl Into<ConditionStatus>,
        reason: &str,
        message: impl Into<String>,
    ) {
        let status = status.into();
        let message = message.into();
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => {
                if existing.status != status {
                    existing.last_transition_time = rfc3339_secs(SystemTime::now());
                }
                existing.status = status;
                existing.reason = reason.into();
                existing.message = message;
            }
            None => self.conditions.push(Condition {
                type_,
                status,
                reason: reason.into(),
                message,
                last_transition_time: rfc3339_secs(SystemTime::now()),
            }),
        }
    }

    /// Human-readable summary, as `garage status` prints it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "node {}\ngeneration: observed {} · attempted {} · applied {}\n\nCONDITION     STATUS   REASON                 MESSAGE\n",
            self.node,
            self.observed_generation.as_deref().unwrap_or("-"),
            self.last_attempted_generation.as_deref().unwrap_or("-"),
            self.last_applied_generation.as_deref().unwrap_or("-"),
        );
        if self.observed_revision.is_some() || self.last_applied_revision.is_some() {
            let revisions = format!(
                "revision (git): observed {} · applied {}\n",
                self.observed_revision.as_deref().unwrap_or("-"),
                self.last_applied_revision.as_deref().unwrap_or("-"),
            );
            out.insert_str(out.find("\n\n").unwrap_or(out.len()) + 1, &revisions);
        }
        for c in &self.conditions {
            out.push_str(&format!(
                "{:<13} {:<8} {:<22} {}\n",
                format!("{:?}", c.type_),
                format!("{:?}", c.status),
                c.reason,
                c.message
            ));
        }
        out.push_str("\nCOMPONENT            KIND     STATE      HEALTH     RESTARTS  LAST EXIT  NEXT RETRY            LAST ERROR\n");
        for c in &self.components {
            out.push_str(&format!(
                "{:<20} {:<8} {:<10} {:<10} {:<9} {:<10} {:<21} {}\n",
                c.name,
                c.kind,
                c.state,
                c.health,
                c.restarts,
                c.last_exit_code
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.next_retry.as_deref().unwrap_or("-"),
                c.last_error.as_deref().unwrap_or("")
            ));
        }
        for c in &self.components {
            let Some(termination) = &c.last_termination else {
                continue;
            };
            let code = c.last_exit_code.map_or("-".into(), |e| e.to_string());
            out.push_str(&format!("\nLAST STOP OF {} (exit code {code})", c.name));
            if let Some(reason) = &termination.reason {
                out.push_str(&format!(": {reason}"));
            }
            out.push('\n');
            for line in &termination.log_tail {
                out.push_str(&format!("  | {line}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(spec_reason: &str, spec_ok: bool) -> NodeStatus {
        let mut status = NodeStatus::new("n1");
        status.observed_generation = Some("0123456789ab".into());
        status.set_condition(ConditionType::Progressing, false, "Converged", "");
        status.set_condition(ConditionType::SpecValid, spec_ok, spec_reason, "");
        status
    }

    #[test]
    fn a_missing_spec_file_keeps_a_converged_node_ready_an_invalid_one_does_not() {
        assert!(observed("Valid", true).is_converging());
        assert!(observed(REASON_SPEC_MISSING, false).is_converging());
        assert!(!observed(REASON_SPEC_INVALID, false).is_converging());
        assert!(
            !NodeStatus::new("n1").is_converging(),
            "before the first pass"
        );
    }

    #[test]
    fn ready_follows_the_ready_condition_and_is_unknown_before_the_first_pass() {
        let mut status = NodeStatus::new("n1");
        assert_eq!(status.ready(), None);
        assert!(!status.is_ready());
        status.set_condition(ConditionType::Ready, false, "Converging", "");
        assert_eq!(status.ready(), Some(false));
        status.set_condition(ConditionType::Ready, true, "AllRunning", "");
        assert_eq!(status.ready(), Some(true));
        assert!(status.is_ready());
    }
}
