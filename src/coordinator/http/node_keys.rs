//! Node public keys in memory, so a signed request needs no database read
//! to find its key. A key changes only when an admin deletes the node and it
//! registers again; the deleting replica forgets the key at once, and on
//! PostgreSQL every replica hears the deletion through `LISTEN/NOTIFY` on
//! [`DELETED_NODES_CHANNEL`] (a replica whose listening connection broke forgets every
//! key, as it may have missed some). Entries also expire after [`MAX_AGE`],
//! and the map holds at most [`MAX_KEYS`], so a missed message cannot keep
//! a key forever and memory stays bounded. Unknown nodes are not cached: a
//! new registration works at once on every replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::coordinator::store::{Store, StoreError, DELETED_NODES_CHANNEL};
use crate::identity::signing;

/// How long a cached key is trusted without hearing about its node.
pub const MAX_AGE: Duration = Duration::from_secs(600);
/// Keys held at most (300,000 nodes fit three times over).
const MAX_KEYS: usize = 1 << 20;
/// Pause before listening again after the listening connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// The cache; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct NodeKeys {
    keys: Arc<Mutex<HashMap<Uuid, (VerifyingKey, Instant)>>>,
}

impl NodeKeys {
    /// `node_id`'s key: from memory when fresh, else from the store (and
    /// then remembered). `None`: not registered, or its stored key does not
    /// parse.
    pub async fn get(
        &self,
        store: &Store,
        node_id: Uuid,
    ) -> Result<Option<VerifyingKey>, StoreError> {
        if let Some(key) = self.fresh(node_id) {
            return Ok(Some(key));
        }
        let key = store
            .public_key(node_id)
            .await?
            .and_then(|hex| signing::parse_public_key(&hex).ok());
        if let Some(key) = key {
            let mut keys = self.lock();
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
            keys.insert(node_id, (key, Instant::now()));
        }
        Ok(key)
    }

    fn fresh(&self, node_id: Uuid) -> Option<VerifyingKey> {
        let keys = self.lock();
        let (key, since) = keys.get(&node_id)?;
        (since.elapsed() < MAX_AGE).then_some(*key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (VerifyingKey, Instant)>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets `node_id`'s key (its node was deleted).
    pub fn forget(&self, node_id: Uuid) {
        self.lock().remove(&node_id);
    }

    fn forget_all(&self) {
        self.lock().clear();
    }

    /// Forgets keys as other replicas delete nodes, until `cancel`: listens
    /// on [`DELETED_NODES_CHANNEL`] of the PostgreSQL at `database_url`.
    pub fn listen(&self, database_url: String, cancel: CancellationToken) {
        let keys = self.clone();
        tokio::spawn(async move {
            while !cancel.is_cancelled() {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = keys.follow(&database_url) => {}
                }
                keys.forget_all();
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RELISTEN_AFTER) => {}
                }
            }
        });
    }

    /// Follows the channel until the connection fails.
    async fn follow(&self, database_url: &str) {
        let listener = match sqlx::postgres::PgListener::connect(database_url).await {
            Ok(mut listener) => match listener.listen(DELETED_NODES_CHANNEL).await {
                Ok(()) => listener,
                Err(e) => return tracing::warn!(error = %e, "cannot listen for node key changes"),
            },
            Err(e) => return tracing::warn!(error = %e, "cannot listen for node key changes"),
        };
        // Deletions made before the listener started were not heard.
        self.forget_all();
        let mut listener = listener;
        loop {
            match listener.try_recv().await {
                Ok(Some(message)) => match message.payload().parse::<Uuid>() {
                    Ok(node_id) => self.forget(node_id),
                    Err(_) => self.forget_all(),
                },
                Ok(None) => {
                    return tracing::warn!(
                        "lost the node key change listener; forgetting every cached key"
                    )
                }
                Err(e) => {
                    return tracing::warn!(error = %e, "node key change listener failed; forgetting every cached key")
                }
            }
        }
    }
}
