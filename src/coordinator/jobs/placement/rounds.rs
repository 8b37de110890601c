//! Placement rounds: each replica's task that matches its parked claims
//! with the queued jobs, when a claim parks or a job is queued (after
//! [`BATCH_WINDOW`]) and at least every [`POLL`].

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fit::fits;
use super::score::{green_fraction, score, waits_for_green, ClaimFacts};
use super::Parked;
use crate::clock::unix_millis;
use crate::coordinator::jobs::routes::{JobsState, POLL};
use crate::coordinator::store::StoreError;

/// How long a round waits after its trigger so claims and jobs arriving
/// together are matched together.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// Queued jobs one round looks at.
const ROUND_JOBS: i64 = 256;

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
async fn round(state: &JobsState) -> Result<(), StoreError> {
    let placer = &state.placer;
    let mut parked = placer.parked.lock().await;
    parked.retain(|p| !p.reply.is_closed());
    let result = if parked.is_empty() {
        Ok(())
    } else {
        let placed = place(state, &mut parked).await;
        placer.rounds.send_modify(|n| *n += 1);
        state.metrics.placement_rounds.inc();
        placed
    };
    let waiting = i64::try_from(parked.len()).unwrap_or(i64::MAX);
    state.metrics.claims_parked.set(waiting);
    result
}

/// Gives each queued job (oldest first) to the best parked claim it fits.
async fn place(state: &JobsState, parked: &mut Vec<Parked>) -> Result<(), StoreError> {
    let now_ms = unix_millis();
    let lease_ms = i64::try_from(state.lease_duration.as_millis()).unwrap_or(i64::MAX);
    let jobs = state.store.queued_jobs(now_ms, ROUND_JOBS).await?;
    let now = Instant::now();
    let mut taken = vec![false; parked.len()];
    let mut matches = Vec::new();
    for job in jobs {
        if matches.len() == parked.len() {
            break;
        }
        let best = parked
            .iter()
            .enumerate()
            .filter(|(i, p)| !taken[*i] && !p.reply.is_closed() && fits(&job, &p.claimant, now_ms))
            .map(|(i, p)| {
                let facts = ClaimFacts {
                    green: green_fraction(p.claimant.power.as_ref()),
                    intensity: Some(p.intensity),
                    location: &p.claimant.location,
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
        taken[index] = true;
        matches.push((index, job));
    }
    // The round's leases go to the database together (each its own
    // conditional UPDATE; PostgreSQL runs them in parallel). A job another
    // replica took meanwhile leaves its claim parked for the next round.
    let leases = futures::future::join_all(matches.into_iter().map(|(index, job)| {
        let claimant = &parked[index].claimant;
        async move {
            let granted = state.store.lease_job(job, claimant, lease_ms, now_ms).await;
            (index, granted)
        }
    }))
    .await;
    let mut first_error = None;
    let mut granted = Vec::new();
    for (index, lease) in leases {
        match lease {
            Ok(Some(lease)) => granted.push((index, lease)),
            Ok(None) => {}
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    // Highest index first, so each swap_remove moves a claim not yet served.
    granted.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    for (index, lease) in granted {
        let claim = parked.swap_remove(index);
        let job_id = lease.job.job_id;
        tracing::debug!(%job_id, node_id = %claim.claimant.node_id, "placed");
        if claim.reply.send(lease).is_err() {
            tracing::warn!(%job_id, "the claim went away after its lease; the sweep requeues the job when the lease expires");
        }
    }
    first_error.map_or(Ok(()), Err)
}
