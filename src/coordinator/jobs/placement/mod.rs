//! Placement: which queued job goes to which node. In `scored` mode (the
//! default) a node's claim parks for up to its wait, and a placement round
//! on this replica — run when a claim parks or a job is queued (after a
//! short batching window), and at least every [`POLL`] for jobs queued on
//! other replicas — walks the queued jobs oldest first and gives each to
//! the best parked claim it fits (`fit`: market, GPU memory, type, labels,
//! residency), by `score` (green share, grid intensity, locality, load),
//! while a `prefer-green` job within its green wait waits for a node on
//! solar surplus. A lease is the same conditional UPDATE as ever, so
//! rounds on several replicas never lease a job twice. `first-come` mode
//! keeps the old rule (each claim takes the oldest job it fits) for
//! comparison.

pub mod fit;
pub mod reasons;
pub mod score;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{oneshot, watch, Mutex, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::fit::fits;
use self::score::{green_fraction, score, waits_for_green, ClaimFacts};
use super::lease_store::{Claimant, Granted};
use super::routes::{JobsState, POLL};
use crate::clock::unix_millis;

/// How a coordinator places jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PlacementMode {
    /// Claims park and placement rounds match jobs to them by score.
    #[default]
    Scored,
    /// Each claim takes the oldest job it fits at once.
    FirstCome,
}

/// How long a round waits after its trigger so claims and jobs arriving
/// together are matched together.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// Queued jobs one round looks at.
const ROUND_JOBS: i64 = 256;
/// How long past its own wait a claim waits for the round that saw it
/// (so a claim that waits 0 s still meets the jobs queued now).
const ROUND_GRACE: Duration = Duration::from_secs(2);

/// One parked claim.
struct Parked {
    id: u64,
    claimant: Claimant,
    free_slots: u32,
    /// The grid's carbon intensity (gCO₂eq/kWh) where the node is.
    intensity: f64,
    since: Instant,
    reply: oneshot::Sender<Granted>,
}

/// The parked claims of this replica and what wakes its rounds.
pub struct Placer {
    parked: Mutex<Vec<Parked>>,
    next_id: AtomicU64,
    trigger: Notify,
    /// Rounds finished so far.
    rounds: watch::Sender<u64>,
}

impl std::fmt::Debug for Placer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placer").finish_non_exhaustive()
    }
}

/// A claim waiting for a round.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    grant: oneshot::Receiver<Granted>,
    /// Rounds finished when it parked: the next one sees it.
    round: u64,
}

impl Default for Placer {
    fn default() -> Self {
        Placer {
            parked: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            trigger: Notify::new(),
            rounds: watch::Sender::new(0),
        }
    }
}

impl Placer {
    /// Parks a claim and wakes the round.
    pub async fn park(&self, claimant: Claimant, free_slots: u32, intensity: f64) -> Ticket {
        let (reply, grant) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut parked = self.parked.lock().await;
        let round = *self.rounds.borrow();
        parked.push(Parked {
            id,
            claimant,
            free_slots,
            intensity,
            since: Instant::now(),
            reply,
        });
        drop(parked);
        self.trigger.notify_one();
        Ticket { id, grant, round }
    }

    /// Waits for `ticket`'s lease until `deadline` (and at least until a
    /// round has seen the claim, for up to [`ROUND_GRACE`] more) or `stop`;
    /// `None` when none came. A round leases only to claims still parked,
    /// and this takes the claim out under the same lock, so a lease is
    /// never given to a claim that stopped waiting.
    pub async fn wait(
        &self,
        mut ticket: Ticket,
        deadline: Instant,
        stop: &CancellationToken,
    ) -> Option<Granted> {
        let mut rounds = self.rounds.subscribe();
        let seen = ticket.round;
        let until = async {
            tokio::time::sleep_until(deadline).await;
            let _ = tokio::time::timeout(ROUND_GRACE, rounds.wait_for(|n| *n > seen)).await;
        };
        tokio::select! {
            granted = &mut ticket.grant => return granted.ok(),
            () = until => {}
            () = stop.cancelled() => {}
        }
        self.parked.lock().await.retain(|p| p.id != ticket.id);
        ticket.grant.try_recv().ok()
    }

    /// Parked claims now (for metrics and tests).
    pub async fn parked(&self) -> usize {
        self.parked.lock().await.len()
    }
}

/// Runs rounds until `cancel` fires.
pub async fn run(state: JobsState, cancel: CancellationToken) {
    let placer = state.placer.clone();
    loop {
        let job_queued = state.wake.notified();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = placer.trigger.notified() => {}
            () = job_queued => {}
            () = tokio::time::sleep(POLL) => {}
        }
        tokio::time::sleep(BATCH_WINDOW).await;
        if let Err(err) = round(&state).await {
            tracing::warn!(error = %err, "placement round failed; retrying at the next");
        }
    }
}

/// One round: every queued job (oldest first) to the best parked claim it
/// fits.
async fn round(state: &JobsState) -> Result<(), crate::coordinator::store::StoreError> {
    let placer = &state.placer;
    let mut parked = placer.parked.lock().await;
    parked.retain(|p| !p.reply.is_closed());
    if parked.is_empty() {
        return Ok(());
    }
    let result = place(state, &mut parked).await;
    placer.rounds.send_modify(|n| *n += 1);
    result
}

/// Gives each queued job (oldest first) to the best parked claim it fits.
async fn place(
    state: &JobsState,
    parked: &mut Vec<Parked>,
) -> Result<(), crate::coordinator::store::StoreError> {
    let now_ms = unix_millis();
    let lease_ms = i64::try_from(state.lease_duration.as_millis()).unwrap_or(i64::MAX);
    let jobs = state.store.queued_jobs(now_ms, ROUND_JOBS).await?;
    let now = Instant::now();
    for job in jobs {
        if parked.is_empty() {
            break;
        }
        let best = parked
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.reply.is_closed() && fits(&job, &p.claimant, now_ms))
            .map(|(i, p)| {
                let facts = ClaimFacts {
                    green: green_fraction(p.claimant.power.as_ref()),
                    intensity: Some(p.intensity),
                    location: p.claimant.location.clone(),
                    free_slots: p.free_slots,
                    waited_ms: u64::try_from(now.duration_since(p.since).as_millis())
                        .unwrap_or(u64::MAX),
                };
                (i, score(&job, &facts), facts)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((index, _, facts)) = best else {
            continue;
        };
        if waits_for_green(&job, &facts, now_ms) {
            continue;
        }
        let job_id = job.job_id;
        let claimant = parked[index].claimant.clone();
        if let Some(granted) = state
            .store
            .lease_job(job, &claimant, lease_ms, now_ms)
            .await?
        {
            let claim = parked.swap_remove(index);
            tracing::debug!(%job_id, node_id = %claimant.node_id, green = facts.green, "placed");
            if claim.reply.send(granted).is_err() {
                tracing::warn!(%job_id, "the claim went away after its lease; the sweep requeues the job when the lease expires");
            }
        }
    }
    Ok(())
}
