//! Placement rounds: each replica's task that matches its parked claims
//! with the queued jobs, when a claim parks or a job is queued (after
//! [`BATCH_WINDOW`]) and at least every [`POLL`]; a round's cost is bounded
//! by jobs read per market ([`ROUND_JOBS`]) × claims scored per job
//! ([`SCORED_CLAIMS`]), however many claims are parked.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fit::fits;
use super::score::{green_fraction, score, waits_for_green, ClaimFacts};
use super::Parked;
use crate::clock::unix_millis;
use crate::coordinator::jobs::api::EnergyPreference;
use crate::coordinator::jobs::routes::{JobsState, POLL};
use crate::coordinator::jobs::store::JobRow;
use crate::coordinator::store::StoreError;

/// How long a round waits after its trigger so claims and jobs arriving
/// together are matched together.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// Queued jobs one round looks at, per market of its parked claims.
const ROUND_JOBS: i64 = 256;
/// Claims that fit a job scored for it, longest waiting first, when a
/// market has more parked: a round costs jobs × this, not jobs × parked
/// claims (10,000 parked claims would make it seconds). The Kubernetes
/// scheduler's floor of feasible nodes to score is the same number.
const SCORED_CLAIMS: usize = 100;

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

/// Gives each queued job (oldest first) to the best parked claim it fits;
/// the round's leases go to the database in one transaction. A job another
/// replica took meanwhile leaves its claim parked for the next round.
async fn place(state: &JobsState, parked: &mut Vec<Parked>) -> Result<(), StoreError> {
    let now_ms = unix_millis();
    let lease_ms = i64::try_from(state.lease_duration.as_millis()).unwrap_or(i64::MAX);
    let markets: BTreeSet<&str> = parked.iter().map(|p| p.claimant.market.as_str()).collect();
    let jobs = state
        .store
        .queued_jobs(&markets, now_ms, ROUND_JOBS)
        .await?;
    let matches = choose(parked, jobs, now_ms);
    let claims = matches
        .into_iter()
        .map(|(index, job)| (index, job, &parked[index].claimant))
        .collect();
    let mut granted = state.store.lease_jobs(claims, lease_ms, now_ms).await?;
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
    Ok(())
}

/// The parked claims (indices) of each market, longest waiting first, and
/// all of them in that order (for jobs that name no market).
fn by_market(parked: &[Parked]) -> (HashMap<&str, Vec<usize>>, Vec<usize>) {
    let mut all: Vec<usize> = (0..parked.len()).collect();
    all.sort_by_key(|&i| parked[i].since);
    let mut markets: HashMap<&str, Vec<usize>> = HashMap::new();
    for &i in &all {
        markets
            .entry(parked[i].claimant.market.as_str())
            .or_default()
            .push(i);
    }
    (markets, all)
}

/// Matches each job (oldest first) with the best-scoring parked claim it
/// fits, among the first [`SCORED_CLAIMS`] that fit (all of them for a
/// `prefer-green` job); each claim gets one job.
fn choose(parked: &[Parked], jobs: Vec<JobRow>, now_ms: i64) -> Vec<(usize, JobRow)> {
    let (markets, all) = by_market(parked);
    let now = Instant::now();
    let mut taken = vec![false; parked.len()];
    let mut matches = Vec::new();
    for job in jobs {
        if matches.len() == parked.len() {
            break;
        }
        let candidates = match &job.placement.market {
            Some(market) => markets.get(market.as_str()).map_or(&[][..], Vec::as_slice),
            None => &all,
        };
        let limit = match job.placement.energy {
            EnergyPreference::PreferGreen => usize::MAX,
            EnergyPreference::Any => SCORED_CLAIMS,
        };
        let best = candidates
            .iter()
            .copied()
            .filter(|&i| {
                let p = &parked[i];
                !taken[i] && !p.reply.is_closed() && fits(&job, &p.claimant, now_ms)
            })
            .take(limit)
            .map(|i| {
                let p = &parked[i];
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
    matches
}

#[cfg(test)]
mod tests {
    use super::super::fit::Claimant;
    use super::*;
    use crate::coordinator::jobs::api::{JobState, JobType, Placement};
    use crate::coordinator::nodes::api::Location;
    use tokio::sync::oneshot;
    use uuid::Uuid;

    fn job(market: Option<&str>, created_at_ms: i64) -> JobRow {
        JobRow {
            job_id: Uuid::new_v4(),
            owner: "admin".into(),
            kind: JobType::Container,
            spec: serde_json::json!({}),
            placement: Placement {
                market: market.map(str::to_string),
                ..Placement::default()
            },
            timeout_ms: 60_000,
            expires_at_ms: None,
            max_attempts: 1,
            attempt: 0,
            state: JobState::Queued,
            reason: None,
            lease_id: None,
            lease_node: None,
            lease_expires_at_ms: None,
            green_until_ms: None,
            result: None,
            log_bytes: 0,
            created_at_ms,
            updated_at_ms: created_at_ms,
            finished_at_ms: None,
        }
    }

    /// A parked claim in `market` that parked `ago` before now, with
    /// `free_slots`; its receiver is kept so the claim counts as waiting.
    fn parked(
        market: &str,
        ago: Duration,
        free_slots: u32,
    ) -> (Parked, oneshot::Receiver<super::super::Granted>) {
        let (reply, grant) = oneshot::channel();
        let claim = Parked {
            id: 0,
            claimant: Claimant {
                node_id: Uuid::new_v4(),
                market: market.into(),
                vram_mib: 0,
                job_types: vec![JobType::Container],
                labels: Default::default(),
                location: Location::default(),
                power: None,
            },
            free_slots,
            intensity: 0.0,
            since: Instant::now() - ago,
            reply,
        };
        (claim, grant)
    }

    #[test]
    fn each_job_goes_to_a_claim_of_its_market_and_each_claim_gets_one() {
        let (claims, _receivers): (Vec<Parked>, Vec<_>) = [
            parked("h100", Duration::from_secs(3), 1),
            parked("cpu", Duration::from_secs(2), 1),
            parked("cpu", Duration::from_secs(1), 1),
        ]
        .into_iter()
        .unzip();
        let jobs = vec![
            job(Some("cpu"), 1),
            job(Some("rtx-4090"), 2),
            job(None, 3),
            job(Some("cpu"), 4),
        ];
        let ids: Vec<Uuid> = jobs.iter().map(|j| j.job_id).collect();
        let matches = choose(&claims, jobs, 0);
        let got: Vec<(usize, Uuid)> = matches.iter().map(|(i, j)| (*i, j.job_id)).collect();
        // The first cpu job to a cpu claim, the rtx-4090 job to none, the
        // job of no market to the longest-waiting claim left (h100), the
        // last cpu job to the other cpu claim.
        assert_eq!(got, [(1, ids[0]), (0, ids[2]), (2, ids[3])]);
    }

    #[test]
    fn a_job_scores_only_the_first_claims_that_fit_longest_waiting_first() {
        // SCORED_CLAIMS claims with one free slot, then one with sixteen
        // (a better score) that parked last: past the limit, not scored.
        let mut claims = Vec::new();
        let mut receivers = Vec::new();
        for i in 0..SCORED_CLAIMS {
            let ago = Duration::from_secs(1_000 - i as u64);
            let (claim, grant) = parked("cpu", ago, 1);
            claims.push(claim);
            receivers.push(grant);
        }
        let (best, grant) = parked("cpu", Duration::ZERO, 16);
        claims.push(best);
        receivers.push(grant);
        let matches = choose(&claims, vec![job(Some("cpu"), 1)], 0);
        assert_eq!(matches.len(), 1);
        assert!(matches[0].0 < SCORED_CLAIMS, "{}", matches[0].0);

        // Once fewer claims wait, the better one is scored and wins.
        let few = claims.split_off(SCORED_CLAIMS - 2);
        let matches = choose(&few, vec![job(Some("cpu"), 1)], 0);
        assert_eq!(matches[0].0, few.len() - 1);
    }
}
