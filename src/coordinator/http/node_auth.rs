//! Who may call what. Node requests are signed with the node's registered
//! key (`identity::signing`, keys cached in `node_keys`); here they are
//! checked against the store (unknown node, replayed nonce) and against the
//! path (a node acts only for itself). A route that writes in batches
//! (heartbeats) verifies with [`Authenticator::node_request_deferred`] and
//! stores the nonce with its write. Admin endpoints are checked in `admin`. Every refusal is
//! counted by reason in `garage_coordinator_auth_rejections_total`.

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use ed25519_dalek::VerifyingKey;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::node_keys::NodeKeys;
use crate::clock::unix_millis;
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::store::{Store, StoreError};
use crate::identity::signing::{SignatureError, SignedHeaders};

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("node {0} is not registered (fix: register it with POST /api/nodes/register)")]
    UnknownNode(Uuid),
    #[error("this request's nonce was already used; sign every request with a new nonce")]
    Replayed,
    #[error("node {signer} signed a request for node {target}; a node may only act for itself")]
    CrossNode { signer: Uuid, target: Uuid },
    #[error("checking the request needed the database")]
    Store(#[from] StoreError),
}

impl AuthError {
    /// The metric label; one of `metrics::REJECTION_REASONS`.
    pub fn reason(&self) -> Option<&'static str> {
        Some(match self {
            AuthError::Signature(SignatureError::Missing { .. }) => "unsigned",
            AuthError::Signature(SignatureError::Malformed { .. }) => "malformed",
            AuthError::Signature(SignatureError::Stale { .. }) => "stale",
            AuthError::Signature(SignatureError::WrongCoordinator { .. }) => "wrong_coordinator",
            AuthError::Signature(SignatureError::BadSignature) => "bad_signature",
            AuthError::UnknownNode(_) => "unknown_node",
            AuthError::Replayed => "replayed",
            AuthError::CrossNode { .. } => "cross_node",
            AuthError::Store(_) => return None,
        })
    }

    /// The `code` of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Signature(SignatureError::Missing { .. }) => "unsigned_request",
            AuthError::Signature(SignatureError::Malformed { .. }) => "malformed_signature",
            AuthError::Signature(SignatureError::Stale { .. }) => "stale_request",
            AuthError::Signature(SignatureError::WrongCoordinator { .. }) => "wrong_coordinator",
            AuthError::Signature(SignatureError::BadSignature) => "invalid_signature",
            AuthError::UnknownNode(_) => "unknown_node",
            AuthError::Replayed => "replayed_request",
            AuthError::CrossNode { .. } => "node_mismatch",
            AuthError::Store(_) => "storage_failed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::CrossNode { .. } => StatusCode::FORBIDDEN,
            AuthError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Checks requests; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    metrics: CoordinatorMetrics,
    /// The audience every node request must be signed for.
    coordinator_id: Uuid,
    keys: NodeKeys,
}

/// A node request whose signature verified; its nonce is still to be
/// remembered, with the write it authorises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub node_id: Uuid,
    pub nonce: String,
    /// When the request would be stale anyway (the nonce may go then).
    pub nonce_expires_ms: i64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// The part of a request that is signed, besides the body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

impl RequestHead<'_> {
    fn path(&self) -> &str {
        self.uri
            .path_and_query()
            .map_or(self.uri.path(), |pq| pq.as_str())
    }
}

impl Authenticator {
    /// `coordinator_id` is this coordinator's published id ([`Store::coordinator_id`]).
    pub fn new(store: Store, metrics: CoordinatorMetrics, coordinator_id: Uuid) -> Self {
        Authenticator {
            store,
            metrics,
            coordinator_id,
            keys: NodeKeys::default(),
        }
    }

    /// Forgets a deleted node's cached key (other replicas hear of it
    /// through [`Self::listen_for_key_changes`]).
    pub fn forget_key(&self, node_id: Uuid) {
        self.keys.forget(node_id);
    }

    /// On PostgreSQL: forgets cached keys as other replicas delete nodes.
    pub fn listen_for_key_changes(&self, database_url: String, cancel: CancellationToken) {
        self.keys.listen(database_url, cancel);
    }

    /// The id node requests are signed for (served at `GET /api/coordinator`).
    pub fn coordinator_id(&self) -> Uuid {
        self.coordinator_id
    }

    /// Counts a refusal and hands it back.
    fn refuse(&self, err: AuthError) -> AuthError {
        if let Some(reason) = err.reason() {
            self.metrics.rejected(reason);
            // Debug, not info: anyone can send refused requests, and the counter
            // is the signal to watch; the log is for following one up.
            tracing::debug!(reason, error = %err, "refused a request");
        }
        err
    }

    /// Reads the signature headers of a request.
    pub fn signed_headers(&self, head: RequestHead<'_>) -> Result<SignedHeaders, AuthError> {
        SignedHeaders::from_headers(head.headers).map_err(|err| self.refuse(err.into()))
    }

    /// Verifies a signed request from a registered node and returns the node.
    pub async fn node_request(
        &self,
        head: RequestHead<'_>,
        body: &[u8],
        now_ms: i64,
    ) -> Result<Uuid, AuthError> {
        let verified = self.node_request_deferred(head, body, now_ms).await?;
        self.remember(&verified).await?;
        Ok(verified.node_id)
    }

    /// Verifies a signed request from a registered node without remembering
    /// its nonce yet: the caller stores it with the request's write (and
    /// answers [`Self::replayed`] when it was already there).
    pub async fn node_request_deferred(
        &self,
        head: RequestHead<'_>,
        body: &[u8],
        now_ms: i64,
    ) -> Result<Verified, AuthError> {
        let signed = self.signed_headers(head)?;
        let Some(key) = self.keys.get(&self.store, signed.node_id).await? else {
            return Err(self.refuse(AuthError::UnknownNode(signed.node_id)));
        };
        self.check_signature(head, &signed, body, &key, now_ms)
    }

    /// Verifies a registration, signed with the key it registers for `node_id`.
    pub async fn registration(
        &self,
        head: RequestHead<'_>,
        signed: &SignedHeaders,
        body: &[u8],
        node_id: Uuid,
        key: &VerifyingKey,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        if signed.node_id != node_id {
            return Err(self.refuse(AuthError::CrossNode {
                signer: signed.node_id,
                target: node_id,
            }));
        }
        let verified = self.check_signature(head, signed, body, key, now_ms)?;
        self.remember(&verified).await
    }

    /// Refuses a request whose nonce was already used.
    pub fn replayed(&self) -> AuthError {
        self.refuse(AuthError::Replayed)
    }

    /// Remembers a verified request's nonce; refuses a replay.
    async fn remember(&self, verified: &Verified) -> Result<(), AuthError> {
        if self
            .store
            .remember_nonce(verified.node_id, &verified.nonce, verified.nonce_expires_ms)
            .await?
        {
            Ok(())
        } else {
            Err(self.replayed())
        }
    }

    /// Timestamp range and freshness, audience and signature. The nonce is
    /// remembered only after this passed, so forgeries cannot burn a node's
    /// nonces.
    fn check_signature(
        &self,
        head: RequestHead<'_>,
        signed: &SignedHeaders,
        body: &[u8],
        key: &VerifyingKey,
        now_ms: i64,
    ) -> Result<Verified, AuthError> {
        signed
            .verify(
                self.coordinator_id,
                head.method.as_str(),
                head.path(),
                body,
                key,
                now_ms.div_euclid(1000),
            )
            .map_err(|err| self.refuse(err.into()))?;
        // After this the timestamp is outside the window, so the request is
        // refused as stale and its nonce need not be kept.
        let nonce_expires_ms = signed
            .stale_after_ms()
            .map_err(|err| self.refuse(err.into()))?;
        Ok(Verified {
            node_id: signed.node_id,
            nonce: signed.nonce.clone(),
            nonce_expires_ms,
        })
    }

    /// Verifies a signed request about node `target`, now, and that
    /// `target` signed it (a node may only act on its own resources).
    pub async fn node_request_for(
        &self,
        target: Uuid,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Uuid, AuthError> {
        let head = RequestHead {
            method,
            uri,
            headers,
        };
        let signer = self.node_request(head, body, unix_millis()).await?;
        self.same_node(signer, target)?;
        Ok(signer)
    }

    /// A node may only act on its own resources.
    pub fn same_node(&self, signer: Uuid, target: Uuid) -> Result<(), AuthError> {
        if signer == target {
            Ok(())
        } else {
            Err(self.refuse(AuthError::CrossNode { signer, target }))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::identity::{signing, NodeIdentity};

    struct Fixture {
        _tmp: tempfile::TempDir,
        auth: Authenticator,
        metrics: CoordinatorMetrics,
        node: NodeIdentity,
        other: NodeIdentity,
    }

    const NOW_MS: i64 = 1_800_000_000_000;
    const COORD: Uuid = Uuid::from_u128(0xc0);

    async fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("store");
        let node = NodeIdentity::load_or_create(&tmp.path().join("a")).expect("node");
        let other = NodeIdentity::load_or_create(&tmp.path().join("b")).expect("node");
        for identity in [&node, &other] {
            let new = crate::coordinator::nodes::store::NewNode {
                node_id: identity.node_id(),
                public_key: identity.public_key_hex(),
                market: "cpu".into(),
                gpu_info: Vec::new(),
                location: Default::default(),
                benchmark: None,
            };
            store.register(&new, NOW_MS).await.expect("registered");
        }
        let metrics = CoordinatorMetrics::new();
        let auth = Authenticator::new(store, metrics.clone(), COORD);
        Fixture {
            _tmp: tmp,
            auth,
            metrics,
            node,
            other,
        }
    }

    fn headers(signed: &SignedHeaders) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in signed.pairs() {
            headers.insert(name, HeaderValue::from_str(&value).expect("ascii"));
        }
        headers
    }

    fn count(metrics: &CoordinatorMetrics, reason: &str) -> u64 {
        metrics.auth_rejections.with_label_values(&[reason]).get()
    }

    async fn check(
        f: &Fixture,
        signed: &SignedHeaders,
        path: &str,
        body: &[u8],
    ) -> Result<Uuid, AuthError> {
        let uri: Uri = path.parse().expect("uri");
        let headers = headers(signed);
        let head = RequestHead {
            method: &Method::POST,
            uri: &uri,
            headers: &headers,
        };
        f.auth.node_request(head, body, NOW_MS).await
    }

    #[tokio::test]
    async fn each_rejection_has_its_reason_status_and_count() {
        let f = fixture().await;
        let path = "/api/nodes/x/heartbeat";
        let now = NOW_MS / 1000;
        let good = f
            .node
            .sign_request(COORD, "POST", path, b"{}", now, &signing::new_nonce());
        assert_eq!(
            check(&f, &good, path, b"{}").await.expect("accepted"),
            f.node.node_id()
        );

        // Replayed: the same request again.
        let err = check(&f, &good, path, b"{}").await.expect_err("replay");
        assert!(matches!(err, AuthError::Replayed));
        assert_eq!(
            (err.status(), count(&f.metrics, "replayed")),
            (StatusCode::UNAUTHORIZED, 1)
        );

        // Unsigned.
        let uri: Uri = path.parse().expect("uri");
        let empty = HeaderMap::new();
        let head = RequestHead {
            method: &Method::POST,
            uri: &uri,
            headers: &empty,
        };
        let err = f
            .auth
            .node_request(head, b"{}", NOW_MS)
            .await
            .expect_err("unsigned");
        assert_eq!(
            (err.code(), count(&f.metrics, "unsigned")),
            ("unsigned_request", 1)
        );

        // Stale.
        let stale =
            f.node
                .sign_request(COORD, "POST", path, b"{}", now - 120, &signing::new_nonce());
        let err = check(&f, &stale, path, b"{}").await.expect_err("stale");
        assert_eq!(
            (err.code(), count(&f.metrics, "stale")),
            ("stale_request", 1)
        );

        // Signed for another coordinator (captured there and replayed here).
        let elsewhere = f.node.sign_request(
            Uuid::from_u128(0xc1),
            "POST",
            path,
            b"{}",
            now,
            &signing::new_nonce(),
        );
        let err = check(&f, &elsewhere, path, b"{}")
            .await
            .expect_err("other audience");
        assert_eq!(
            (err.code(), count(&f.metrics, "wrong_coordinator")),
            ("wrong_coordinator", 1)
        );

        // A timestamp that once wrapped the freshness check.
        let mut wrapped =
            f.node
                .sign_request(COORD, "POST", path, b"{}", i64::MIN, &signing::new_nonce());
        let err = check(&f, &wrapped, path, b"{}")
            .await
            .expect_err("i64::MIN");
        assert_eq!(err.code(), "malformed_signature");
        wrapped.timestamp = i64::MAX;
        let err = check(&f, &wrapped, path, b"{}")
            .await
            .expect_err("i64::MAX");
        assert_eq!(err.code(), "malformed_signature");

        // Forged: signed by another key in this node's name.
        let mut forged =
            f.other
                .sign_request(COORD, "POST", path, b"{}", now, &signing::new_nonce());
        forged.node_id = f.node.node_id();
        let err = check(&f, &forged, path, b"{}").await.expect_err("forged");
        assert_eq!(
            (err.code(), count(&f.metrics, "bad_signature")),
            ("invalid_signature", 1)
        );

        // Tampered body.
        let signed = f
            .node
            .sign_request(COORD, "POST", path, b"{}", now, &signing::new_nonce());
        let err = check(&f, &signed, path, b"{\"a\":1}")
            .await
            .expect_err("tampered");
        assert!(matches!(
            err,
            AuthError::Signature(SignatureError::BadSignature)
        ));

        // Unknown node.
        let tmp = tempfile::tempdir().expect("tempdir");
        let stranger =
            NodeIdentity::load_or_create(&tmp.path().join("stranger")).expect("stranger");
        let signed = stranger.sign_request(COORD, "POST", path, b"{}", now, &signing::new_nonce());
        let err = check(&f, &signed, path, b"{}").await.expect_err("unknown");
        assert_eq!(
            (err.code(), count(&f.metrics, "unknown_node")),
            ("unknown_node", 1)
        );

        // Malformed.
        let mut bad = f
            .node
            .sign_request(COORD, "POST", path, b"{}", now, &signing::new_nonce());
        bad.signature = "not hex".into();
        let err = check(&f, &bad, path, b"{}").await.expect_err("malformed");
        assert_eq!(
            (err.code(), count(&f.metrics, "malformed")),
            ("malformed_signature", 3)
        );

        // Cross-node.
        let err = f
            .auth
            .same_node(f.node.node_id(), f.other.node_id())
            .expect_err("cross");
        assert_eq!(
            (err.status(), count(&f.metrics, "cross_node")),
            (StatusCode::FORBIDDEN, 1)
        );
        assert!(f.auth.same_node(f.node.node_id(), f.node.node_id()).is_ok());
    }
}
