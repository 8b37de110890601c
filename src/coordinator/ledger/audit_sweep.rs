//! The periodic ledger audit: runs [`Store::audit`] every [`PERIOD`] (the
//! first at start) and exports its verdict as
//! `garage_coordinator_ledger_audit_ok` with the time it finished, for the
//! "ledger audit failing" alert (manifests/prometheus/alerts.yml). It only
//! reads; it never runs per scrape (the audit reads every account and
//! transfer) and never repairs anything.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api::LedgerAudit;
use crate::clock::unix_secs_f64;
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::store::{Store, StoreError};

/// How often the audit runs: well inside the alert's 5 minutes, and rare
/// enough that its full read of the ledger costs the database little.
pub const PERIOD: Duration = Duration::from_secs(60);

/// Audits every [`PERIOD`] until `cancel` fires.
pub async fn run(store: Store, metrics: CoordinatorMetrics, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let audit = tokio::select! {
            () = cancel.cancelled() => return,
            audit = store.audit() => audit,
        };
        record(&metrics, &audit, unix_secs_f64());
    }
}

/// Sets the gauges from one audit that ended at `now` (Unix seconds): ok
/// only when it ran and every invariant held; the time only when it ran.
fn record(metrics: &CoordinatorMetrics, audit: &Result<LedgerAudit, StoreError>, now: f64) {
    match audit {
        Ok(audit) => {
            metrics.ledger_audit_ok.set(i64::from(audit.ok));
            metrics.ledger_audit_last_run.set(now);
            if !audit.ok {
                let broken: Vec<&str> = audit
                    .invariants
                    .iter()
                    .filter(|i| !i.holds)
                    .map(|i| i.name.as_str())
                    .collect();
                tracing::error!(
                    ?broken,
                    "the ledger audit found broken invariants (garage ledger audit shows the rows)"
                );
            }
        }
        Err(err) => {
            metrics.ledger_audit_ok.set(0);
            tracing::warn!(error = %crate::error_text::one_line(err), "the periodic ledger audit could not run; retrying next period");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::Invariant;
    use super::*;

    fn audit(holds: bool) -> LedgerAudit {
        LedgerAudit {
            ok: holds,
            supply_ugai: 0,
            balances_ugai: 0,
            treasury_ugai: 0,
            open_holds: 0,
            held_ugai: 0,
            transfers: 0,
            invariants: vec![Invariant {
                name: "no_negative_balance".into(),
                meaning: "no account but the issuer is below zero".into(),
                holds,
                breaking: i64::from(!holds),
            }],
        }
    }

    #[test]
    fn a_broken_invariant_or_a_failed_run_reads_as_not_ok() {
        let metrics = CoordinatorMetrics::new();
        assert_eq!(metrics.ledger_audit_ok.get(), 0, "not ok before any run");
        record(&metrics, &Ok(audit(true)), 100.0);
        assert_eq!(metrics.ledger_audit_ok.get(), 1);
        assert_eq!(metrics.ledger_audit_last_run.get(), 100.0);
        record(&metrics, &Ok(audit(false)), 160.0);
        assert_eq!(metrics.ledger_audit_ok.get(), 0);
        assert_eq!(metrics.ledger_audit_last_run.get(), 160.0);
        record(&metrics, &Ok(audit(true)), 220.0);
        let failed = Err(StoreError::UnsupportedUrl {
            url: "mysql://h/db".into(),
        });
        record(&metrics, &failed, 280.0);
        assert_eq!(metrics.ledger_audit_ok.get(), 0, "a failed run is not ok");
        assert_eq!(
            metrics.ledger_audit_last_run.get(),
            220.0,
            "the time is the last run that read the ledger"
        );
    }

    #[tokio::test]
    async fn the_first_audit_runs_at_start_and_the_sweep_stops_when_cancelled() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let metrics = CoordinatorMetrics::new();
        let cancel = CancellationToken::new();
        let sweep = tokio::spawn(run(store, metrics.clone(), cancel.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while metrics.ledger_audit_ok.get() != 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no audit within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(metrics.ledger_audit_last_run.get() > 1.0e9);
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), sweep)
            .await
            .expect("the sweep stops when cancelled")
            .expect("the sweep does not panic");
    }
}
