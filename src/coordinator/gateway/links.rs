//! The nodes linked to this coordinator and the requests in flight on each
//! link. A [`Link`] numbers its requests and routes the node's frames to
//! the waiting [`Exchange`]; an exchange dropped before its end (the client
//! left) sends the node a cancel and frees its slot at once. A closed link
//! drops every pending exchange's sender, so each waiter sees the loss
//! immediately instead of waiting for a timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::frames::{Endpoint, FromNode, ToNode};
use prometheus::IntGauge;

use super::metrics::GatewayMetrics;
use crate::coordinator::api::Location;

/// What the gateway knows of a linked node when it routes.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    pub market: String,
    pub location: Location,
    /// Passed its market's qualification, or the market has none.
    pub qualified: bool,
}

/// One node's link.
#[derive(Debug)]
pub struct Link {
    pub node_id: Uuid,
    pub facts: NodeFacts,
    /// Which link of this node it is (a reconnect replaces the older one).
    pub generation: u64,
    announced: Mutex<Announced>,
    in_flight: AtomicU32,
    next_request: AtomicU64,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<FromNode>>>,
    to_node: mpsc::Sender<ToNode>,
    /// The gateway's requests in flight, all links together.
    in_flight_gauge: IntGauge,
    /// Fired when the link closes.
    pub closed: CancellationToken,
}

#[derive(Debug, Default, Clone)]
struct Announced {
    models: Vec<String>,
    slots: u32,
}

/// One node's load, for `GET /api/gateway/links`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkLoad {
    pub node_id: Uuid,
    pub market: String,
    pub country: Option<String>,
    pub models: Vec<String>,
    pub slots: u32,
    pub in_flight: u32,
}

/// Why a request could not be sent on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node's link closed")]
pub struct LinkClosed;

impl Link {
    pub fn new(
        node_id: Uuid,
        facts: NodeFacts,
        generation: u64,
        to_node: mpsc::Sender<ToNode>,
        in_flight_gauge: IntGauge,
    ) -> Self {
        Link {
            node_id,
            facts,
            generation,
            announced: Mutex::default(),
            in_flight: AtomicU32::new(0),
            next_request: AtomicU64::new(1),
            pending: Mutex::default(),
            to_node,
            in_flight_gauge,
            closed: CancellationToken::new(),
        }
    }

    /// Reads what the node announced without copying it (routing asks
    /// this of every link for every request).
    fn with_announced<T>(&self, read: impl FnOnce(&Announced) -> T) -> T {
        read(
            &self
                .announced
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Records what the node's hello said.
    pub fn announce(&self, models: Vec<String>, slots: u32) {
        *self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Announced { models, slots };
    }

    pub fn serves(&self, model: &str) -> bool {
        self.with_announced(|a| a.models.iter().any(|m| m == model))
    }

    pub fn models(&self) -> Vec<String> {
        self.with_announced(|a| a.models.clone())
    }

    /// Requests holding one of its slots now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Slots the node announced and has free.
    pub fn free_slots(&self) -> u32 {
        self.with_announced(|a| a.slots)
            .saturating_sub(self.in_flight())
    }

    pub fn load(&self) -> LinkLoad {
        let announced = self.with_announced(Announced::clone);
        LinkLoad {
            node_id: self.node_id,
            market: self.facts.market.clone(),
            country: self.facts.location.country.clone(),
            models: announced.models,
            slots: announced.slots,
            in_flight: self.in_flight(),
        }
    }

    /// Takes a slot if one is free: the caller then owns it until the
    /// exchange it starts (or the returned slot) is dropped.
    pub fn try_take_slot(self: &Arc<Self>) -> Option<Slot> {
        let slots = self.with_announced(|a| a.slots);
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < slots).then_some(n + 1)
            })
            .ok()
            .map(|_| {
                self.in_flight_gauge.inc();
                Slot(Arc::clone(self))
            })
    }

    /// Sends `body` to the node's worker at `endpoint` on a slot taken
    /// with [`Link::try_take_slot`].
    pub async fn start(
        self: &Arc<Self>,
        slot: Slot,
        endpoint: Endpoint,
        body: String,
    ) -> Result<Exchange, LinkClosed> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        if self.closed.is_cancelled() {
            return Err(LinkClosed);
        }
        self.pending_map().insert(id, tx);
        let exchange = Exchange {
            link: Arc::clone(self),
            id,
            frames: rx,
            finished: false,
            _slot: slot,
        };
        self.to_node
            .send(ToNode::Request { id, endpoint, body })
            .await
            .map_err(|_| LinkClosed)?;
        Ok(exchange)
    }

    fn pending_map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<FromNode>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a frame from the node to its request's exchange; a frame for
    /// an unknown request (already cancelled) is dropped.
    pub fn deliver(&self, frame: FromNode) {
        let Some(id) = frame.request_id() else {
            return;
        };
        let last = matches!(frame, FromNode::End { .. } | FromNode::Failed { .. });
        let mut pending = self.pending_map();
        if let Some(tx) = pending.get(&id) {
            let _ = tx.send(frame);
        }
        if last {
            pending.remove(&id);
        }
    }

    /// Closes the link: every pending exchange sees it end.
    pub fn close(&self) {
        self.closed.cancel();
        self.pending_map().clear();
    }
}

/// A slot taken on a link, given back on drop.
#[derive(Debug)]
pub struct Slot(Arc<Link>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.in_flight_gauge.dec();
    }
}

/// One request in flight on a link: its frames as the node sends them.
#[derive(Debug)]
pub struct Exchange {
    link: Arc<Link>,
    id: u64,
    frames: mpsc::UnboundedReceiver<FromNode>,
    finished: bool,
    _slot: Slot,
}

impl Exchange {
    pub fn node_id(&self) -> Uuid {
        self.link.node_id
    }

    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// The next frame; `None` when the link closed before the request's end.
    pub async fn next(&mut self) -> Option<FromNode> {
        let frame = self.frames.recv().await;
        if matches!(frame, Some(FromNode::End { .. } | FromNode::Failed { .. })) {
            self.finished = true;
        }
        frame
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.link.pending_map().remove(&self.id);
        // Best effort: a full or closed link has bigger problems than one
        // cancel, and the node's slot accounting ends with the link.
        let _ = self.link.to_node.try_send(ToNode::Cancel { id: self.id });
    }
}

/// Every link of this coordinator, one per node.
#[derive(Debug, Clone)]
pub struct Links {
    by_node: Arc<Mutex<HashMap<Uuid, Arc<Link>>>>,
    generation: Arc<AtomicU64>,
    metrics: GatewayMetrics,
}

impl Links {
    pub fn new(metrics: GatewayMetrics) -> Self {
        Links {
            by_node: Arc::default(),
            generation: Arc::new(AtomicU64::new(1)),
            metrics,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Link>>> {
        self.by_node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new link for `node_id`; an older link of the node is closed.
    pub fn open(
        &self,
        node_id: Uuid,
        facts: NodeFacts,
        to_node: mpsc::Sender<ToNode>,
    ) -> Arc<Link> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let link = Arc::new(Link::new(
            node_id,
            facts,
            generation,
            to_node,
            self.metrics.in_flight.clone(),
        ));
        let old = self.map().insert(node_id, Arc::clone(&link));
        if let Some(old) = old {
            old.close();
            self.metrics
                .link_connects
                .with_label_values(&["replaced"])
                .inc();
        }
        self.metrics
            .link_connects
            .with_label_values(&["accepted"])
            .inc();
        self.refresh_gauges();
        link
    }

    /// Forgets `link` (when it is still the node's current one) and closes it.
    pub fn remove(&self, link: &Link) {
        {
            let mut map = self.map();
            if map
                .get(&link.node_id)
                .is_some_and(|l| l.generation == link.generation)
            {
                map.remove(&link.node_id);
            }
        }
        link.close();
        self.refresh_gauges();
    }

    /// Every open link.
    pub fn all(&self) -> Vec<Arc<Link>> {
        let mut links: Vec<_> = self.map().values().cloned().collect();
        links.sort_by_key(|l| l.node_id);
        links
    }

    /// Updates the link and slot gauges.
    pub fn refresh_gauges(&self) {
        let map = self.map();
        let slots: u64 = map
            .values()
            .map(|l| u64::from(l.with_announced(|a| a.slots)))
            .sum();
        self.metrics
            .links
            .set(i64::try_from(map.len()).unwrap_or(i64::MAX));
        self.metrics
            .slots
            .set(i64::try_from(slots).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts {
            market: "cpu".into(),
            location: Location::default(),
            qualified: true,
        }
    }

    #[tokio::test]
    async fn slots_cancel_and_close_are_accounted() {
        let links = Links::new(GatewayMetrics::register(&prometheus::Registry::new()));
        let (tx, mut rx) = mpsc::channel(8);
        let link = links.open(Uuid::nil(), facts(), tx);
        link.announce(vec!["m".into()], 1);
        let slot = link.try_take_slot().expect("a free slot");
        assert!(link.try_take_slot().is_none(), "one slot only");
        let mut exchange = link
            .start(slot, Endpoint::Completions, "{}".into())
            .await
            .unwrap();
        let Some(ToNode::Request { id, .. }) = rx.recv().await else {
            panic!("no request frame")
        };
        link.deliver(FromNode::Head { id, status: 200 });
        assert_eq!(
            exchange.next().await,
            Some(FromNode::Head { id, status: 200 })
        );
        drop(exchange);
        assert_eq!(
            rx.recv().await,
            Some(ToNode::Cancel { id }),
            "a dropped exchange cancels"
        );
        assert_eq!(link.free_slots(), 1, "and frees its slot");

        let slot = link.try_take_slot().unwrap();
        let mut exchange = link
            .start(slot, Endpoint::Completions, "{}".into())
            .await
            .unwrap();
        links.remove(&link);
        assert_eq!(
            exchange.next().await,
            None,
            "a closed link ends its exchanges"
        );
        assert!(links.all().is_empty());
    }
}
