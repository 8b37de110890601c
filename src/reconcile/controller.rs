//! The reconcile loop: observe → plan → dispatch, level-triggered. Each
//! component has at most one step in flight, so independent components
//! converge concurrently and a slow pull never holds up a drift repair.
//! The controller is the one owner of restarts and of the node's status;
//! what it remembers per component is in [`super::memory`], and how that
//! reads as status in [`super::projection`].
//! Over 450 lines on purpose: the loop's state and its transitions
//! read best in one file; what could leave it (target, memory, projection,
//! backoff, apply) already has.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::later;
use crate::error_text::one_line;
use crate::metrics::{self, AgentMetrics};
use crate::runtime::{
    ComponentKind, ContainerRuntime, ContainerState, ObservedContainer, RuntimeError,
};

use super::apply;
use super::backoff::RestartBackoff;
use super::memory::ComponentMemory;
use super::plan::{plan, Action, Cause, Plan, Step};
use super::projection::{self, SpecProblem};
use super::status::NodeStatus;
use super::target::{Input, Target};

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
    memory: HashMap<String, ComponentMemory>,
    in_flight: JoinSet<StepDone>,
    busy: HashSet<String>,
    /// The component of each in-flight step task, so a panicked task frees
    /// only its own component (issue 9, D21).
    tasks: HashMap<tokio::task::Id, String>,
    status: watch::Sender<NodeStatus>,
    metrics: AgentMetrics,
    failed_since_last_pass: bool,
    /// A second look after a start: a container that dies at once may do so
    /// before the engine's event stream is live or its list shows the exit,
    /// and would wait for the resync (a crash seen 30 s late in CI).
    recheck_at: Option<Instant>,
    /// The network jobs running on a kind of component (the worker's
    /// inference jobs, the podman host's container jobs), which its
    /// rollout waits for.
    jobs: Option<JobsOn>,
}

/// How many network jobs run on the component of a kind now.
#[derive(Clone)]
pub struct JobsOn(pub Arc<dyn Fn(ComponentKind) -> usize + Send + Sync>);

impl std::fmt::Debug for JobsOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobsOn")
    }
}

/// When to look again after a step started a container.
const START_RECHECK: Duration = Duration::from_secs(1);
/// How long a stopping agent lets in-flight steps finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often a rollout waiting for running jobs looks again.
const JOBS_RECHECK: Duration = Duration::from_secs(1);
/// Retry delay after the engine could not be listed.
const ENGINE_RETRY: Duration = Duration::from_secs(1);

impl<R: ContainerRuntime> Controller<R> {
    pub fn new(runtime: Arc<R>, node: &str, metrics: AgentMetrics) -> Self {
        let (status, _) = watch::channel(NodeStatus::new(node));
        Controller {
            runtime,
            node: node.into(),
            target: None,
            memory: HashMap::new(),
            in_flight: JoinSet::new(),
            busy: HashSet::new(),
            tasks: HashMap::new(),
            status,
            metrics,
            failed_since_last_pass: false,
            recheck_at: None,
            jobs: None,
        }
    }

    /// Rollouts of the worker and the podman host wait while `jobs` says
    /// network jobs run on them (unless the spec lets them interrupt).
    pub fn protect_jobs(&mut self, jobs: JobsOn) {
        self.jobs = Some(jobs);
    }

    /// A live view of the status, for the HTTP server.
    pub fn status(&self) -> watch::Receiver<NodeStatus> {
        self.status.subscribe()
    }

    pub fn set_target(&mut self, target: Target) {
        let old = self.target.as_ref().map(|old| old.config_hashes());
        let new = target.config_hashes();
        for (name, record) in &mut self.memory {
            record.backoff.set_settings(target.settings.backoff);
            // A new generation of a component starts with a clean slate: a
            // fixed spec must not wait out the old one's crash backoff
            // (issue 9, D17).
            if old
                .as_ref()
                .is_some_and(|old| old.get(name.as_str()) != new.get(name.as_str()))
            {
                record.backoff.reset();
                record.crash_pending = false;
                if record.failed_rollout.take().is_some() {
                    record.last_error = None;
                }
            }
        }
        let generation = target.generation.clone();
        let revision = target.revision.clone();
        self.metrics.spec_valid.set(1);
        self.metrics
            .observed_generation
            .set(metrics::generation_number(&generation));
        self.target = Some(Arc::new(target));
        self.update_status(|s| projection::spec_accepted(s, &generation, revision.as_deref()));
    }

    pub fn set_spec_invalid(&mut self, message: &str) {
        self.spec_not_valid(SpecProblem::Invalid, message);
    }

    /// node.yaml is gone (deleted, or its folder is being replaced).
    pub fn set_spec_missing(&mut self, message: &str) {
        self.spec_not_valid(SpecProblem::Missing, message);
    }

    /// The spec's git repository cannot be fetched.
    pub fn set_spec_unreachable(&mut self, message: &str) {
        self.spec_not_valid(SpecProblem::Unreachable, message);
    }

    fn spec_not_valid(&mut self, problem: SpecProblem, message: &str) {
        self.metrics.spec_valid.set(0);
        self.update_status(|s| projection::spec_rejected(s, problem, message));
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
                let message = one_line(&err);
                self.update_status(|s| projection::engine_unavailable(s, message));
                return Err(err);
            }
        };
        let plan = plan(&target.desired, &observed);
        timer.observe_duration();
        self.remember_observed(&target, &observed).await;
        let now = Instant::now();
        let mut next_wakeup: Option<Instant> = None;
        let mut dispatched = 0;
        let mut held = 0;
        for step in &plan.steps {
            if self.busy.contains(&step.component) {
                continue;
            }
            if self.rolled_back(&target, step) {
                held += 1;
                continue;
            }
            let waiting = self.jobs_in_the_way(&target, step);
            let record = self.memory_of(&target, &step.component);
            let told = std::mem::replace(&mut record.waiting_for_jobs, waiting.is_some());
            if let Some(running) = waiting {
                if !told {
                    tracing::info!(component = %step.component, running, "the rollout waits for the network jobs running on the component");
                }
                let at = now + JOBS_RECHECK;
                next_wakeup = Some(next_wakeup.map_or(at, |w| w.min(at)));
                continue;
            }
            if let Some(at) = self.charge_and_hold_until(&target, step, &observed, now) {
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
        // The memory of components gone from the spec goes too (issue 9, D21).
        let wanted = target.component_names();
        let busy = &self.busy;
        self.memory
            .retain(|name, _| busy.contains(name) || wanted.contains(name.as_str()));
        let converged = plan.is_empty() && self.busy.is_empty();
        self.publish(&target, &observed, plan.steps.len() - held, converged, now);
        Ok(PassOutcome {
            plan,
            dispatched,
            converged,
            next_wakeup,
        })
    }

    /// The network jobs a rollout step would kill, when it must wait for them.
    fn jobs_in_the_way(&self, target: &Target, step: &Step) -> Option<usize> {
        let rollout = step.action == Action::Recreate
            && matches!(
                step.cause,
                Cause::ConfigChanged { .. } | Cause::HashVersionChanged { .. }
            );
        if !rollout || target.settings.rollout.interrupt_jobs {
            return None;
        }
        let running = self.jobs.as_ref().map_or(0, |jobs| (jobs.0)(step.kind));
        (running > 0).then_some(running)
    }

    /// Whether `step` is the change whose rollout failed (held back until
    /// the component's configuration changes again).
    fn rolled_back(&self, target: &Target, step: &Step) -> bool {
        let failed = self
            .memory
            .get(&step.component)
            .and_then(|record| record.failed_rollout.as_ref());
        step.action == Action::Recreate
            && failed.is_some_and(|(hash, _)| {
                target.config_hashes().get(step.component.as_str()) == Some(&hash.as_str())
            })
    }

    /// Charges a crash to the component's backoff (once per crash) and
    /// says until when `step` must wait, if at all.
    fn charge_and_hold_until(
        &mut self,
        target: &Target,
        step: &Step,
        observed: &[ObservedContainer],
        now: Instant,
    ) -> Option<Instant> {
        if step.action == Action::Remove {
            return None;
        }
        let record = self.memory_of(target, &step.component);
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

    /// Marks the components that have a container, and reads why a stopped
    /// container stopped (once per run of it) for the status.
    async fn remember_observed(&mut self, target: &Target, observed: &[ObservedContainer]) {
        let wanted = target.component_names();
        for container in observed {
            let Some(component) = container.component() else {
                continue;
            };
            if !wanted.contains(component) {
                continue;
            }
            let record = self.memory_of(target, component);
            record.seen = true;
            let stopped = matches!(
                container.state,
                ContainerState::Exited | ContainerState::Dead
            );
            let known = record.termination.as_ref().is_some_and(|(id, started, _)| {
                *id == container.id && *started == container.started_at
            });
            if !stopped || known {
                continue;
            }
            match self.runtime.termination(&container.id).await {
                Ok(termination) => {
                    self.memory_of(target, component).termination = Some((
                        container.id.clone(),
                        container.started_at.clone(),
                        termination,
                    ));
                }
                Err(err) => {
                    tracing::debug!(component, error = %one_line(&err), "cannot read why the container stopped")
                }
            }
        }
    }

    fn memory_of(&mut self, target: &Target, component: &str) -> &mut ComponentMemory {
        self.memory
            .entry(component.to_string())
            .or_insert_with(|| ComponentMemory::new(RestartBackoff::new(target.settings.backoff)))
    }

    fn dispatch(&mut self, target: &Arc<Target>, step: Step) {
        let record = self.memory_of(target, &step.component);
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
        let component = step.component.clone();
        let runtime = Arc::clone(&self.runtime);
        let node = self.node.clone();
        let target = Arc::clone(target);
        let task = self.in_flight.spawn(async move {
            let desired = target
                .desired
                .components
                .iter()
                .find(|c| c.name == step.component);
            let rollout = target.settings.rollout;
            let result = apply::execute(runtime.as_ref(), &node, desired, &step, rollout).await;
            StepDone { step, result }
        });
        self.tasks.insert(task.id(), component);
    }

    fn step_finished(&mut self, done: StepDone) {
        let StepDone { step, result } = done;
        self.busy.remove(&step.component);
        let now = Instant::now();
        let Some(target) = self.target.clone() else {
            return;
        };
        let drift = self.metrics.drift_corrections.clone();
        let started = result.is_ok() && step.action != Action::Remove;
        let record = self.memory_of(&target, &step.component);
        match result {
            Ok(()) => {
                // Drift is a change behind the agent's back: neither the
                // first create of a component nor a failed step (issue 9, D21).
                let first_create = step.cause == Cause::Missing && !record.seen;
                record.seen = true;
                if !first_create {
                    drift.with_label_values(&[step.cause.metric_label()]).inc();
                }
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
                tracing::warn!(component = %step.component, action = step.action.as_str(), error = %one_line(&err), "step failed");
                if let RuntimeError::RolloutFailed { .. } = &err {
                    // Not a crash: no backoff; held until the spec changes.
                    let hash = target
                        .config_hashes()
                        .get(step.component.as_str())
                        .map(|h| h.to_string());
                    let revision = target
                        .revision
                        .clone()
                        .unwrap_or_else(|| target.generation.clone());
                    record.last_error = Some(format!("revision {revision}: {}", one_line(&err)));
                    record.failed_rollout = hash.map(|hash| (hash, revision));
                } else {
                    record.last_error = Some(one_line(&err));
                    record.backoff.record_failure(now);
                }
                self.failed_since_last_pass = true;
            }
        }
        if started {
            let at = now + START_RECHECK;
            self.recheck_at = Some(self.recheck_at.map_or(at, |r| r.min(at)));
        }
    }

    /// Waits for the next in-flight step and records it; false when none.
    pub async fn finish_one(&mut self) -> bool {
        match self.in_flight.join_next_with_id().await {
            Some(joined) => {
                self.joined(joined);
                true
            }
            None => false,
        }
    }

    /// Records a step task that ended, however it ended.
    fn joined(&mut self, joined: Result<(tokio::task::Id, StepDone), tokio::task::JoinError>) {
        match joined {
            Ok((task, done)) => {
                self.tasks.remove(&task);
                self.step_finished(done);
            }
            Err(join_error) => {
                let Some(component) = self.tasks.remove(&join_error.id()) else {
                    return;
                };
                tracing::error!(%component, error = %join_error, "a reconcile step panicked or was cancelled");
                self.busy.remove(&component);
                self.failed_since_last_pass = true;
                if let Some(target) = self.target.clone() {
                    let record = self.memory_of(&target, &component);
                    record.last_error = Some(format!("the agent's step failed: {join_error}"));
                    record.backoff.record_failure(Instant::now());
                }
            }
        }
    }

    pub fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// `planned`: the plan's steps that may still run (not rolled back).
    fn publish(
        &self,
        target: &Target,
        observed: &[ObservedContainer],
        planned: usize,
        converged: bool,
        now: Instant,
    ) {
        let components = projection::component_statuses(target, observed, &self.memory, now);
        projection::update_metrics(
            &self.metrics,
            target,
            observed,
            &self.memory,
            now,
            converged,
        );
        let pending = planned + self.busy.len();
        self.update_status(|status| {
            projection::pass_done(status, target, components, pending, converged);
        });
    }

    /// Publishes a status change only when something changed, so watchers
    /// (the coordinator heartbeats) wake on changes, not on every pass
    /// (issue 9, D21).
    fn update_status(&self, change: impl FnOnce(&mut NodeStatus)) {
        self.status.send_if_modified(|status| {
            let before = status.clone();
            change(status);
            *status != before
        });
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Reconcile => {}
            Input::Target(target) => self.set_target(*target),
            Input::SpecInvalid(message) => self.set_spec_invalid(&message),
            Input::SpecMissing(message) => self.set_spec_missing(&message),
            Input::SpecUnreachable(message) => self.set_spec_unreachable(&message),
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
                    tracing::warn!(error = %one_line(&err), "reconcile pass failed; retrying");
                    Instant::now() + ENGINE_RETRY
                }
            };
            let wake = match self.recheck_at.take() {
                Some(at) if at > Instant::now() => {
                    self.recheck_at = Some(at);
                    wake.min(at)
                }
                _ => wake,
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(joined) = self.in_flight.join_next_with_id(), if !self.in_flight.is_empty() => self.joined(joined),
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
