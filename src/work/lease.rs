//! One job's lease kept alive: renewed every third of the lease (or as
//! often as the coordinator asks, if sooner) until the coordinator says
//! `cancel`, refuses the lease (409: another node has the job now), or the
//! lease runs out while the coordinator does not answer. The node's own
//! estimate of the lease's end ([`Expiry`]) starts from when each renew was
//! sent, so it is never later than the coordinator's.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::{later, Backoff, Policy};
use crate::coordinator::api::Lease;

use super::coordinator::{CallError, JobCoordinator};

/// Retries of a renew that got no answer, while the lease lasts.
pub const RETRY: Policy = Policy {
    jitter: true,
    ..Policy::doubling(Duration::from_millis(500), Duration::from_secs(5))
};
/// Taken off the node's estimate of a lease granted by a claim (the grant
/// happened a little before the answer arrived); at most a quarter of it.
pub const GRANT_MARGIN: Duration = Duration::from_secs(1);

/// Why a lease stopped being kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEnd {
    /// The client cancelled the job (or it ran past its timeout): stop it
    /// and complete.
    Cancel,
    /// The coordinator refused the lease: stop the job and drop it.
    Lost,
    /// No renew got through before the lease ran out: the coordinator has
    /// requeued the job; stop it and drop it.
    Expired,
}

impl LeaseEnd {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseEnd::Cancel => "cancelled",
            LeaseEnd::Lost => "lost",
            LeaseEnd::Expired => "expired",
        }
    }
}

/// The node's estimate of when a lease ends, shared by its keeper and the
/// completion that must arrive before it.
#[derive(Debug, Clone)]
pub struct Expiry {
    at: Arc<Mutex<Instant>>,
    length: Duration,
}

impl Expiry {
    /// For `lease`, received just now.
    pub fn granted(lease: &Lease) -> Self {
        let length = Duration::from_secs(lease.lease_seconds);
        let margin = GRANT_MARGIN.min(length / 4);
        let at = later(Instant::now(), length.saturating_sub(margin));
        Expiry {
            at: Arc::new(Mutex::new(at)),
            length,
        }
    }

    pub fn at(&self) -> Instant {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A renew sent at `sent` was accepted.
    fn renewed(&self, sent: Instant) {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = later(sent, self.length);
    }

    pub fn has_passed(&self) -> bool {
        Instant::now() >= self.at()
    }
}

/// How often `lease` is renewed: a third of it, or the coordinator's
/// `renew_every_seconds` if sooner, at least every 100 ms.
pub fn renew_every(lease: &Lease) -> Duration {
    let third = Duration::from_secs(lease.lease_seconds) / 3;
    let asked = Duration::from_secs(lease.renew_every_seconds);
    let every = if asked.is_zero() {
        third
    } else {
        third.min(asked)
    };
    every.max(Duration::from_millis(100))
}

/// Renews `lease` until it ends; see [`LeaseEnd`].
pub async fn keep<C: JobCoordinator>(coordinator: &C, lease: &Lease, expiry: &Expiry) -> LeaseEnd {
    let every = renew_every(lease);
    let mut retries = Backoff::new(RETRY);
    let mut next = later(Instant::now(), every);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = tokio::time::sleep_until(expiry.at()) => return LeaseEnd::Expired,
        }
        let sent = Instant::now();
        let answer = tokio::select! {
            answer = coordinator.renew(lease.lease_id) => answer,
            () = tokio::time::sleep_until(expiry.at()) => return LeaseEnd::Expired,
        };
        match answer {
            Ok(answer) => {
                expiry.renewed(sent);
                if answer.cancel {
                    return LeaseEnd::Cancel;
                }
                retries.reset();
                next = later(sent, every);
            }
            Err(CallError::LeaseLost(err)) => {
                tracing::warn!(job_id = %lease.job_id, lease_id = %lease.lease_id, error = %crate::error_text::one_line(&err), "the coordinator refused the lease; stopping the job");
                return LeaseEnd::Lost;
            }
            Err(err) => {
                let delay = retries.fail();
                if retries.failures() == 1 {
                    tracing::warn!(job_id = %lease.job_id, error = %crate::error_text::one_line(&err), "cannot renew the lease; the job goes on while the lease lasts");
                }
                next = later(Instant::now(), delay.min(every));
            }
        }
    }
}
