//! Placement: which queued job goes to which node. In `scored` mode (the
//! default) a node's claim parks for up to its wait, and a placement round
//! on this replica — run when a claim parks or a job is queued (after a
//! short batching window), and at least every `POLL` for jobs queued on
//! other replicas — walks the oldest queued jobs of each market with
//! parked claims (and those of no market), oldest first, and gives each to
//! the best of the first hundred parked claims it fits (`fit`: market, GPU
//! memory, type, labels, residency), by `score` (green share, grid
//! intensity, locality, load; `rounds` runs them, its leases in one
//! transaction),
//! while a `prefer-green` job within its green wait waits for a node on
//! solar surplus. A lease is the same conditional UPDATE as ever, so
//! rounds on several replicas never lease a job twice. `first-come` mode
//! keeps the old rule (each claim takes the oldest job it fits) for
//! comparison.

pub mod fit;
pub mod reasons;
pub mod rounds;
pub mod score;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{oneshot, watch, Mutex, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::fit::Claimant;
use super::lease_store::Granted;

/// How a coordinator places jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PlacementMode {
    /// Claims park and placement rounds match jobs to them by score.
    #[default]
    Scored,
    /// Each claim takes the oldest job it fits at once.
    FirstCome,
}

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
