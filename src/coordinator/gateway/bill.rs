//! One request's bill while it is served: held before the first node is
//! asked, then settled exactly once — by the worker's usage when the
//! answer completes, by the completion tokens delivered when it breaks off
//! or the client leaves (dropping the bill settles it), or voided when no
//! node served it. Settlement runs on the gateway's task tracker, so a
//! stopping coordinator finishes it before closing the store.

use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::billing::{Settlement, Tokens};
use super::metrics::GatewayMetrics;
use crate::clock::unix_millis;
use crate::coordinator::store::Store;

/// A held bill; settles when finished or dropped.
#[derive(Debug)]
pub struct Bill {
    store: Store,
    tracker: TaskTracker,
    metrics: GatewayMetrics,
    request_id: Uuid,
    fee_basis_points: i64,
    node_id: Option<Uuid>,
    tokens: Tokens,
    settled: bool,
}

impl Bill {
    pub fn new(
        store: Store,
        tracker: TaskTracker,
        metrics: GatewayMetrics,
        request_id: Uuid,
        fee_basis_points: i64,
    ) -> Self {
        Bill {
            store,
            tracker,
            metrics,
            request_id,
            fee_basis_points,
            node_id: None,
            tokens: Tokens::default(),
            settled: false,
        }
    }

    /// The node now serving the request (the one paid).
    pub fn served_by(&mut self, node_id: Uuid) {
        self.node_id = Some(node_id);
    }

    /// Tokens to charge if the request ends now.
    pub fn charge(&mut self, tokens: Tokens) {
        self.tokens = tokens;
    }

    /// Settles now and waits for it (a whole answer is settled before it
    /// is sent).
    pub async fn settle(mut self) {
        self.settled = true;
        settle(self.store.clone(), self.metrics.clone(), self.settlement()).await;
    }

    fn settlement(&self) -> Settlement {
        Settlement {
            request_id: self.request_id,
            node_id: self.node_id,
            tokens: self.tokens,
            fee_basis_points: self.fee_basis_points,
        }
    }
}

impl Drop for Bill {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (store, metrics, settlement) =
            (self.store.clone(), self.metrics.clone(), self.settlement());
        self.tracker.spawn(settle(store, metrics, settlement));
    }
}

async fn settle(store: Store, metrics: GatewayMetrics, settlement: Settlement) {
    let settlement = match settlement.node_id {
        Some(_) => settlement,
        None => Settlement {
            tokens: Tokens::default(),
            ..settlement
        },
    };
    match store.settle_gateway_bill(&settlement, unix_millis()).await {
        Ok(Some(_)) => {
            metrics
                .tokens
                .with_label_values(&["prompt"])
                .inc_by(settlement.tokens.prompt);
            metrics
                .tokens
                .with_label_values(&["completion"])
                .inc_by(settlement.tokens.completion);
        }
        Ok(None) => {}
        Err(err) => tracing::error!(
            request = %settlement.request_id,
            error = %crate::error_text::one_line(&err),
            "settling a gateway bill failed; the stale-bill sweep voids it later"
        ),
    }
}
