//! The work task against a fake coordinator and a fake executor, in
//! paused time: claiming with free slots, logs in order and resent after
//! failures, renew, cancel, a refused lease, an outage that outlasts the
//! lease, and completion retries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::*;
use crate::coordinator::api::{
    AppendLogsRequest, AppendLogsResponse, CompleteRequest, CompleteResponse, Lease, LogStream,
    NewLogChunk, Outcome, RenewResponse,
};
use crate::coordinator::ClientError;
use crate::work::lease::LeaseEnd;
use crate::work::logs::LogSink;

fn refused(status: u16, code: &str) -> ClientError {
    ClientError::Refused {
        path: "/fake".into(),
        status,
        code: code.into(),
        message: "fake".into(),
    }
}

fn unavailable() -> CallError {
    CallError::Unavailable(refused(503, "unavailable"))
}

fn lost() -> CallError {
    CallError::LeaseLost(refused(409, "lease_expired"))
}

fn lease(lease_seconds: u64) -> Lease {
    Lease {
        lease_id: Uuid::new_v4(),
        job_id: Uuid::new_v4(),
        attempt: 1,
        expires_at: "2026-12-06T00:00:30.000Z".into(),
        lease_seconds,
        renew_every_seconds: lease_seconds / 3,
        kind: JobType::Container,
        timeout_seconds: 600,
        spec: serde_json::json!({}),
    }
}

/// What the fake coordinator does and what it was sent.
#[derive(Debug, Default)]
struct Script {
    leases: VecDeque<Lease>,
    claims: Vec<u32>,
    /// Answers to renews in turn; `Ok(false)` once they run out.
    renews: VecDeque<Result<bool, CallError>>,
    renewed: u32,
    /// Log and complete calls that fail (transiently) before one succeeds.
    log_failures: u32,
    complete_failures: u32,
    /// Everything refuses the lease.
    lease_lost: bool,
    /// Every chunk received, resends included.
    chunks: Vec<NewLogChunk>,
    completes: Vec<CompleteRequest>,
}

#[derive(Debug, Default)]
struct FakeCoordinator(Mutex<Script>);

impl FakeCoordinator {
    fn with(script: Script) -> Arc<Self> {
        Arc::new(FakeCoordinator(Mutex::new(script)))
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.0.lock().expect("script")
    }
}

impl JobCoordinator for FakeCoordinator {
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, CallError> {
        let next = {
            let mut script = self.script();
            script.claims.push(request.slots);
            script.leases.pop_front()
        };
        if next.is_none() {
            tokio::time::sleep(Duration::from_secs(u64::from(
                request.wait_seconds.unwrap_or(25),
            )))
            .await;
        }
        Ok(next)
    }

    async fn renew(&self, _lease_id: Uuid) -> Result<RenewResponse, CallError> {
        let mut script = self.script();
        script.renewed += 1;
        if script.lease_lost {
            return Err(lost());
        }
        let cancel = script.renews.pop_front().unwrap_or(Ok(false))?;
        Ok(RenewResponse {
            expires_at: String::new(),
            cancel,
        })
    }

    async fn append_logs(
        &self,
        _lease_id: Uuid,
        request: &AppendLogsRequest,
    ) -> Result<AppendLogsResponse, CallError> {
        let mut script = self.script();
        script.chunks.extend(request.chunks.iter().cloned());
        if script.lease_lost {
            return Err(lost());
        }
        if script.log_failures > 0 {
            script.log_failures -= 1;
            return Err(unavailable());
        }
        Ok(AppendLogsResponse {
            accepted: u32::try_from(request.chunks.len()).unwrap_or(0),
            truncated: false,
            cancel: false,
        })
    }

    async fn complete(
        &self,
        _lease_id: Uuid,
        request: &CompleteRequest,
    ) -> Result<CompleteResponse, CallError> {
        let mut script = self.script();
        if script.lease_lost {
            return Err(lost());
        }
        if script.complete_failures > 0 {
            script.complete_failures -= 1;
            return Err(unavailable());
        }
        script.completes.push(request.clone());
        Ok(CompleteResponse {
            state: request.outcome.state(),
        })
    }
}

/// Writes `lines` a second apart, then runs for `runs` unless cancelled.
#[derive(Debug, Default)]
struct FakeExecutor {
    lines: Vec<&'static str>,
    runs: Duration,
    cancelled: Mutex<u32>,
    /// The run ends with the podman host gone.
    host_lost: bool,
}

impl Executor for FakeExecutor {
    async fn ready_types(&self, wanted: &[JobType]) -> Vec<JobType> {
        wanted.to_vec()
    }

    async fn execute(
        &self,
        _lease: &Lease,
        logs: &LogSink,
        cancel: &CancellationToken,
    ) -> Execution {
        for line in &self.lines {
            logs.push(LogStream::Stdout, line.as_bytes());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::select! {
            () = tokio::time::sleep(self.runs) => Execution {
                outcome: Outcome::Succeeded,
                reason: None,
                result: serde_json::json!({"exit": 0}),
                host_lost: self.host_lost,
            },
            () = cancel.cancelled() => {
                *self.cancelled.lock().expect("cancelled") += 1;
                Execution::failed("cancelled")
            }
        }
    }
}

fn executor(lines: Vec<&'static str>, runs: Duration) -> Arc<FakeExecutor> {
    Arc::new(FakeExecutor {
        lines,
        runs,
        cancelled: Mutex::new(0),
        host_lost: false,
    })
}

async fn one_job(coordinator: &FakeCoordinator, executor: &FakeExecutor, lease: &Lease) -> JobEnd {
    job::run(
        coordinator,
        executor,
        &Unmetered,
        lease,
        &CancellationToken::new(),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_job_runs_its_log_arrives_in_order_and_it_is_completed() {
    let coordinator = FakeCoordinator::with(Script::default());
    let executor = executor(vec!["one\n", "two\n", "three\n"], Duration::from_secs(20));
    let end = one_job(&coordinator, &executor, &lease(9)).await;
    assert_eq!(end, JobEnd::Completed(Outcome::Succeeded));
    let script = coordinator.script();
    let log: Vec<(u64, &str)> = script
        .chunks
        .iter()
        .map(|c| (c.seq, c.data.as_str()))
        .collect();
    assert_eq!(log, vec![(0, "one\n"), (1, "two\n"), (2, "three\n")]);
    assert_eq!(script.completes.len(), 1);
    assert_eq!(script.completes[0].result, serde_json::json!({"exit": 0}));
    // A 9 s lease is renewed every 3 s over the job's 23 s.
    assert!((6..=8).contains(&script.renewed), "{}", script.renewed);
}

#[tokio::test(start_paused = true)]
async fn log_chunks_not_taken_are_sent_again_with_the_same_seq() {
    let coordinator = FakeCoordinator::with(Script {
        log_failures: 2,
        ..Script::default()
    });
    let executor = executor(vec!["a\n", "b\n"], Duration::from_secs(10));
    let end = one_job(&coordinator, &executor, &lease(30)).await;
    assert_eq!(end, JobEnd::Completed(Outcome::Succeeded));
    let script = coordinator.script();
    let seqs: Vec<u64> = script.chunks.iter().map(|c| c.seq).collect();
    assert_eq!(&seqs[..2], &[0, 0], "the first chunk is resent: {seqs:?}");
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(unique, vec![0, 1], "{seqs:?}");
}

#[tokio::test(start_paused = true)]
async fn a_renew_that_says_cancel_stops_the_job_and_completes_it() {
    let coordinator = FakeCoordinator::with(Script {
        renews: VecDeque::from([Ok(false), Ok(true)]),
        ..Script::default()
    });
    let executor = executor(Vec::new(), Duration::from_secs(3600));
    let started = tokio::time::Instant::now();
    let end = one_job(&coordinator, &executor, &lease(9)).await;
    assert_eq!(end, JobEnd::Lease(LeaseEnd::Cancel));
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(6),
        "the second renew cancels"
    );
    assert_eq!(*executor.cancelled.lock().expect("cancelled"), 1);
    let script = coordinator.script();
    assert_eq!(
        script.completes.len(),
        1,
        "a cancelled job is still completed"
    );
    assert_eq!(script.completes[0].outcome, Outcome::NotStarted);
}

#[tokio::test(start_paused = true)]
async fn a_refused_lease_stops_the_job_without_completing() {
    let coordinator = FakeCoordinator::with(Script {
        renews: VecDeque::from([Ok(false), Err(lost())]),
        ..Script::default()
    });
    let executor = executor(Vec::new(), Duration::from_secs(3600));
    let end = one_job(&coordinator, &executor, &lease(9)).await;
    assert_eq!(end, JobEnd::Lease(LeaseEnd::Lost));
    assert_eq!(*executor.cancelled.lock().expect("cancelled"), 1);
    assert!(coordinator.script().completes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_outage_keeps_the_job_running_until_the_lease_runs_out() {
    let coordinator = FakeCoordinator::with(Script {
        renews: (0..100).map(|_| Err(unavailable())).collect(),
        ..Script::default()
    });
    let executor = executor(Vec::new(), Duration::from_secs(3600));
    let started = tokio::time::Instant::now();
    let end = one_job(&coordinator, &executor, &lease(9)).await;
    assert_eq!(end, JobEnd::Lease(LeaseEnd::Expired));
    // Granted 9 s, less the 1 s margin: stopped at 8 s, not before.
    assert_eq!(started.elapsed(), Duration::from_secs(8));
    assert_eq!(*executor.cancelled.lock().expect("cancelled"), 1);
    assert!(coordinator.script().completes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_outage_the_lease_survives_changes_nothing() {
    let coordinator = FakeCoordinator::with(Script {
        renews: VecDeque::from([Err(unavailable())]),
        complete_failures: 3,
        ..Script::default()
    });
    let executor = executor(Vec::new(), Duration::from_secs(12));
    let end = one_job(&coordinator, &executor, &lease(9)).await;
    assert_eq!(end, JobEnd::Completed(Outcome::Succeeded));
    assert_eq!(*executor.cancelled.lock().expect("cancelled"), 0);
    assert_eq!(
        coordinator.script().completes.len(),
        1,
        "completed after three failures"
    );
}

#[tokio::test(start_paused = true)]
async fn a_completion_refused_for_the_lease_is_dropped() {
    let coordinator = FakeCoordinator::with(Script::default());
    let executor = executor(Vec::new(), Duration::from_secs(1));
    coordinator.script().lease_lost = true;
    let end = one_job(&coordinator, &executor, &lease(9)).await;
    assert_eq!(end, JobEnd::Lease(LeaseEnd::Lost));
}

#[tokio::test(start_paused = true)]
async fn claims_ask_for_the_free_slots_and_jobs_show_while_running() {
    let coordinator = FakeCoordinator::with(Script {
        leases: VecDeque::from([lease(30), lease(30)]),
        ..Script::default()
    });
    let executor = executor(Vec::new(), Duration::from_secs(40));
    let running = RunningJobs::new();
    let metrics = AgentMetrics::new();
    let stop = CancellationToken::new();
    let settings = WorkSettings::new(3, &[JobKind::Container], Default::default());
    let task = tokio::spawn(run(
        Arc::clone(&coordinator),
        Arc::clone(&executor),
        Arc::new(Unmetered),
        settings,
        running.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(running.count(), 2);
    assert_eq!(metrics.network_jobs_running.get(), 2);
    assert_eq!(coordinator.script().claims, vec![3, 2, 1]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(running.count(), 0);
    assert_eq!(coordinator.script().completes.len(), 2);
    assert_eq!(
        metrics
            .network_job_leases
            .with_label_values(&["completed"])
            .get(),
        2
    );
    assert_eq!(
        metrics
            .network_job_completions
            .with_label_values(&["succeeded"])
            .get(),
        2
    );
    stop.cancel();
    task.await.expect("the work task ends on stop");
}

#[tokio::test(start_paused = true)]
async fn the_agent_stopping_stops_running_jobs_without_completing() {
    let coordinator = FakeCoordinator::with(Script {
        leases: VecDeque::from([lease(30)]),
        ..Script::default()
    });
    let executor = executor(Vec::new(), Duration::from_secs(3600));
    let running = RunningJobs::new();
    let stop = CancellationToken::new();
    let settings = WorkSettings::new(1, &[JobKind::Container], Default::default());
    let task = tokio::spawn(run(
        Arc::clone(&coordinator),
        Arc::clone(&executor),
        Arc::new(Unmetered),
        settings,
        running.clone(),
        AgentMetrics::new(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(running.count(), 1);
    stop.cancel();
    task.await.expect("the work task ends on stop");
    assert_eq!(*executor.cancelled.lock().expect("cancelled"), 1);
    assert!(coordinator.script().completes.is_empty());
    assert_eq!(running.count(), 0);
}

/// A solar-only node with the clear-sky model at an injected time: no
/// claim at night, claims at noon.
#[tokio::test(start_paused = true)]
async fn solar_only_claims_nothing_at_night_and_claims_at_noon() {
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::energy::draw::DrawSampler;
    use crate::energy::rapl::Rapl;
    use crate::energy::EnergyMonitor;
    use crate::spec::types::{PowerPolicy, PowerSource};
    use crate::spec::{PowerSettings, ProductionSource, SolarSettings};

    // 2026-12-21T23:00:00Z and 2026-06-21T10:00:00Z in Stockholm.
    const NIGHT: f64 = 1_797_894_000.0;
    const NOON: f64 = 1_782_036_000.0;
    let now = Arc::new(AtomicU64::new(NIGHT.to_bits()));
    let read = Arc::clone(&now);
    let settings = PowerSettings {
        source: PowerSource::Solar,
        policy: PowerPolicy::SolarOnly,
        solar: Some(SolarSettings {
            capacity_kw: 6.5,
            tilt_deg: 35.0,
            azimuth_deg: 180.0,
            production: ProductionSource::Model {
                latitude: 59.33,
                longitude: 18.07,
            },
        }),
    };
    let sampler = DrawSampler::new(None, Rapl::default(), std::path::Path::new("/proc/stat"));
    let monitor = EnergyMonitor::new(
        &settings,
        sampler,
        Arc::new(move || f64::from_bits(read.load(Ordering::SeqCst))),
        AgentMetrics::new(),
    );
    monitor.sample().await;
    let coordinator = FakeCoordinator::with(Script {
        leases: VecDeque::from([lease(30)]),
        ..Script::default()
    });
    let executor = executor(Vec::new(), Duration::from_secs(10));
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(
        Arc::clone(&coordinator),
        Arc::clone(&executor),
        Arc::new(monitor.clone()),
        WorkSettings::new(2, &[JobKind::Container], Default::default()),
        RunningJobs::new(),
        AgentMetrics::new(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(coordinator.script().claims.is_empty(), "claimed at night");
    now.store(NOON.to_bits(), Ordering::SeqCst);
    monitor.sample().await;
    tokio::time::sleep(POWER_POLL + Duration::from_secs(30)).await;
    {
        let script = coordinator.script();
        assert_eq!(script.claims.first(), Some(&2), "{:?}", script.claims);
        assert_eq!(script.completes.len(), 1);
        // The completion carries the job's metered energy.
        let energy = &script.completes[0].result["energy"];
        assert!(energy["energy_wh"].as_f64().is_some(), "{energy}");
        assert_eq!(energy["measured_by"], "estimate");
    }
    stop.cancel();
    task.await.expect("the work task ends on stop");
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_podman_host_went_away_is_given_back_not_completed() {
    let coordinator = FakeCoordinator::with(Script::default());
    let executor = FakeExecutor {
        lines: vec!["started\n"],
        runs: Duration::from_secs(2),
        cancelled: Mutex::new(0),
        host_lost: true,
    };
    let end = one_job(&coordinator, &executor, &lease(9)).await;
    assert_eq!(end, JobEnd::GivenBack);
    let script = coordinator.script();
    assert!(
        script.completes.is_empty(),
        "nothing completed: {:?}",
        script.completes
    );
}
