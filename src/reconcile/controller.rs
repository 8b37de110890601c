//! The reconcile loop: observe → plan → dispatch, level-triggered. Each
//! component has at most one step in flight, so independent components
//! converge concurrently and a slow pull never holds up a drift repair.
//! The controller is the one owner of restarts and of the node's status.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, AgentMetrics};
use crate::runtime::{ContainerRuntime, DesiredState, ObservedContainer, RuntimeError};

use super::backoff::{later, Backoff};
use super::plan::{plan, Action, Plan, Step};
use super::settings::ReconcileSettings;
use super::status::{ConditionStatus, ConditionType, NodeStatus};
use super::{apply, report};

/// What the controller converges to: one validated revision of the spec.
#[derive(Debug, Clone)]
pub struct Target {
    pub generation: String,
    pub desired: DesiredState,
    pub settings: ReconcileSettings,
}

/// Inputs from the rest of the agent.
#[derive(Debug)]
pub enum Input {
    /// Something may have changed (engine event, resync): re-list and converge.
    Reconcile,
    /// A new valid spec revision.
    Target(Box<Target>),
    /// The spec file is invalid; keep the last good target.
    SpecInvalid(String),
}

#[derive(Debug)]
pub(super) struct Record {
    pub(super) backoff: Backoff,
    /// A crash was seen and charged to the backoff, restart not yet made.
    pub(super) crash_pending: bool,
    pub(super) restarts: u64,
    pub(super) last_exit_code: Option<i64>,
    pub(super) last_error: Option<String>,
}

#[derive(Debug)]
struct StepDone {
    step: Step,
    result: Result<(), RuntimeError>,
}

/// The result of one pass.
#[derive(Debug)]
pub struct PassOutcome {
    pub plan: Plan,
    /// Steps started by this pass.
    pub dispatched: usize,
    /// The engine matches the spec and nothing is in flight.
    pub converged: bool,
    /// Earliest time a waiting step may run.
    pub next_wakeup: Option<Instant>,
}

/// Converges one node's containers. Owns restarts, backoff and status.
#[derive(Debug)]
pub struct Controller<R: ContainerRuntime> {
    runtime: Arc<R>,
    node: String,
    target: Option<Arc<Target>>,
    records: HashMap<String, Record>,
    in_flight: JoinSet<StepDone>,
    busy: HashSet<String>,
    status: watch::Sender<NodeStatus>,
    metrics: AgentMetrics,
    failed_since_last_pass: bool,
}

/// How long a stopping agent lets in-flight steps finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Retry delay after the engine could not be listed.
const ENGINE_RETRY: Duration = Duration::from_secs(1);

impl<R: ContainerRuntime> Controller<R> {
    pub fn new(runtime: Arc<R>, node: &str, metrics: AgentMetrics) -> Self {
        let (status, _) = watch::channel(NodeStatus::new(node));
        Controller {
            runtime,
            node: node.into(),
            target: None,
            records: HashMap::new(),
            in_flight: JoinSet::new(),
            busy: HashSet::new(),
            status,
            metrics,
            failed_since_last_pass: false,
        }
    }

    /// A live view of the status, for the HTTP server.
    pub fn status(&self) -> watch::Receiver<NodeStatus> {
        self.status.subscribe()
    }

    pub fn set_target(&mut self, target: Target) {
        for record in self.records.values_mut() {
            record.backoff.set_settings(target.settings.backoff);
        }
        let generation = target.generation.clone();
        self.metrics.spec_valid.set(1);
        self.metrics
            .observed_generation
            .set(metrics::generation_number(&generation));
        self.target = Some(Arc::new(target));
        self.status.send_modify(|s| {
            s.observed_generation = Some(generation.clone());
            s.last_attempted_generation = Some(generation);
            s.set_condition(
                ConditionType::SpecValid,
                true,
                "Valid",
                "node.yaml is valid",
            );
        });
    }

    pub fn set_spec_invalid(&mut self, message: &str) {
        self.metrics.spec_valid.set(0);
        self.status.send_modify(|s| {
            let message = format!("{message} (still converging to the last valid spec)");
            s.set_condition(ConditionType::SpecValid, false, "InvalidSpec", message);
        });
    }

    /// Observes, plans, and starts every step whose component is idle and not
    /// backing off. Does not wait for the steps.
    pub async fn pass(&mut self) -> Result<PassOutcome, RuntimeError> {
        let Some(target) = self.target.clone() else {
            return Ok(PassOutcome {
                plan: Plan::default(),
                dispatched: 0,
                converged: false,
                next_wakeup: None,
            });
        };
        let timer = self.metrics.reconcile_duration.start_timer();
        let observed = match self.runtime.list_owned(&self.node).await {
            Ok(observed) => observed,
            Err(err) => {
                timer.observe_duration();
                self.metrics
                    .reconciles
                    .with_label_values(&[metrics::RESULT_ERROR])
                    .inc();
                let message = err.to_string();
                self.status.send_modify(|s| {
                    s.set_condition(ConditionType::Degraded, true, "EngineUnavailable", message);
                    s.set_condition(
                        ConditionType::Ready,
                        ConditionStatus::Unknown,
                        "EngineUnavailable",
                        "cannot observe containers",
                    );
                });
                return Err(err);
            }
        };
        let plan = plan(&target.desired, &observed);
        timer.observe_duration();
        let now = Instant::now();
        let mut next_wakeup: Option<Instant> = None;
        let mut dispatched = 0;
        for step in &plan.steps {
            if self.busy.contains(&step.component) {
                continue;
            }
            if let Some(at) = self.gate(&target, step, &observed, now) {
                next_wakeup = Some(next_wakeup.map_or(at, |w| w.min(at)));
                continue;
            }
            self.dispatch(&target, step.clone());
            dispatched += 1;
        }
        let result = if std::mem::take(&mut self.failed_since_last_pass) {
            metrics::RESULT_ERROR
        } else {
            metrics::RESULT_SUCCESS
        };
        self.metrics.reconciles.with_label_values(&[result]).inc();
        let converged = plan.is_empty() && self.busy.is_empty();
        self.publish(&target, &observed, &plan, converged, now);
        Ok(PassOutcome {
            plan,
            dispatched,
            converged,
            next_wakeup,
        })
    }

    /// Decides whether `step` must wait; returns when it may run.
    fn gate(
        &mut self,
        target: &Target,
        step: &Step,
        observed: &[ObservedContainer],
        now: Instant,
    ) -> Option<Instant> {
        if step.action == Action::Remove {
            return None;
        }
        let record = self.record(target, &step.component);
        if step.cause.is_crash() {
            if let Some(exit) = observed
                .iter()
                .find(|c| Some(c.id.as_str()) == step.container_id.as_deref())
            {
                record.last_exit_code = exit.exit_code;
            }
            if !record.crash_pending {
                record.backoff.record_failure(now);
                record.crash_pending = true;
            }
        }
        record.backoff.ready_at(now)
    }

    fn record(&mut self, target: &Target, component: &str) -> &mut Record {
        self.records
            .entry(component.to_string())
            .or_insert_with(|| Record {
                backoff: Backoff::new(target.settings.backoff),
                crash_pending: false,
                restarts: 0,
                last_exit_code: None,
                last_error: None,
            })
    }

    fn dispatch(&mut self, target: &Arc<Target>, step: Step) {
        let record = self.record(target, &step.component);
        if step.cause.is_crash() {
            record.crash_pending = false;
            record.restarts += 1;
            self.metrics
                .restarts
                .with_label_values(&[step.kind.as_str()])
                .inc();
        }
        tracing::info!(component = %step.component, action = step.action.as_str(), cause = %step.cause, "executing step");
        self.busy.insert(step.component.clone());
        let runtime = Arc::clone(&self.runtime);
        let node = self.node.clone();
        let target = Arc::clone(target);
        self.in_flight.spawn(async move {
            let desired = target
                .desired
                .components
                .iter()
                .find(|c| c.name == step.component);
            let result = apply::execute(runtime.as_ref(), &node, desired, &step).await;
            StepDone { step, result }
        });
    }

    fn step_finished(&mut self, done: StepDone) {
        let StepDone { step, result } = done;
        self.busy.remove(&step.component);
        self.metrics
            .drift_corrections
            .with_label_values(&[step.cause.metric_label()])
            .inc();
        let now = Instant::now();
        let Some(target) = self.target.clone() else {
            return;
        };
        let record = self.record(&target, &step.component);
        match result {
            Ok(()) => {
                record.last_error = None;
                if step.action != Action::Remove {
                    record.backoff.record_start(now);
                }
                // A new configuration starts with a clean slate (as kubelet does).
                if matches!(step.action, Action::Create | Action::Recreate)
                    && !step.cause.is_crash()
                {
                    record.backoff.reset();
                }
            }
            Err(err) => {
                tracing::warn!(component = %step.component, action = step.action.as_str(), error = %err, "step failed");
                record.last_error = Some(err.to_string());
                record.backoff.record_failure(now);
                self.failed_since_last_pass = true;
            }
        }
    }

    /// Waits for the next in-flight step and records it; false when none.
    pub async fn finish_one(&mut self) -> bool {
        match self.in_flight.join_next().await {
            Some(joined) => {
                self.joined(joined);
                true
            }
            None => false,
        }
    }

    /// Records a step task that ended, however it ended.
    fn joined(&mut self, joined: Result<StepDone, tokio::task::JoinError>) {
        match joined {
            Ok(done) => self.step_finished(done),
            Err(join_error) => {
                tracing::error!(error = %join_error, "a reconcile step panicked or was cancelled");
                self.busy.clear();
            }
        }
    }

    pub fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    fn publish(
        &self,
        target: &Target,
        observed: &[ObservedContainer],
        plan: &Plan,
        converged: bool,
        now: Instant,
    ) {
        let components = report::component_statuses(target, observed, &self.records, now);
        report::update_metrics(
            &self.metrics,
            target,
            observed,
            &self.records,
            now,
            converged,
        );
        let pending = plan.steps.len() + self.busy.len();
        self.status.send_modify(|status| {
            report::update_conditions(status, target, components, pending, converged);
        });
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Reconcile => {}
            Input::Target(target) => self.set_target(*target),
            Input::SpecInvalid(message) => self.set_spec_invalid(&message),
        }
    }

    /// The agent's loop: converge on every input, finished step, backoff
    /// expiry and resync, until `cancel`. In-flight steps get a short grace;
    /// the containers themselves are left running.
    pub async fn run(mut self, mut inputs: mpsc::Receiver<Input>, cancel: CancellationToken) {
        loop {
            let resync = self
                .target
                .as_ref()
                .map_or(Duration::from_secs(30), |t| t.settings.resync);
            let wake = match self.pass().await {
                Ok(outcome) => outcome
                    .next_wakeup
                    .map_or(later(Instant::now(), resync), |w| {
                        w.min(later(Instant::now(), resync))
                    }),
                Err(err) => {
                    tracing::warn!(error = %err, "reconcile pass failed; retrying");
                    Instant::now() + ENGINE_RETRY
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(joined) = self.in_flight.join_next(), if !self.in_flight.is_empty() => self.joined(joined),
                input = inputs.recv() => match input {
                    Some(input) => {
                        self.handle(input);
                        // Coalesce a burst (e.g. one event per container) into one pass.
                        while let Ok(more) = inputs.try_recv() {
                            self.handle(more);
                        }
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        let _ =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while self.finish_one().await {} }).await;
        self.in_flight.abort_all();
    }
}
