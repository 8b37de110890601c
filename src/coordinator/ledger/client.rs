//! The ledger API as typed calls over a [`BearerClient`]: balances and
//! transfers (the account's owner or the admin), minting (admin) and the
//! public audit.

use super::api::{BalanceView, LedgerAudit, MintRequest, MintResponse, TransferList};
use crate::coordinator::bearer_client::{page_path, BearerClient, BearerClientError};
use crate::coordinator::http::idempotency::IDEMPOTENCY_KEY;

/// A ledger client for one coordinator.
#[derive(Debug)]
pub struct LedgerClient {
    http: BearerClient,
}

impl LedgerClient {
    pub fn new(http: BearerClient) -> Self {
        LedgerClient { http }
    }

    /// `GET /api/ledger/accounts/{account}`.
    pub async fn balance(&self, account: &str) -> Result<BalanceView, BearerClientError> {
        self.http
            .get(&format!("/api/ledger/accounts/{account}"))
            .await
    }

    /// `GET /api/ledger/accounts/{account}/transfers`, one page.
    pub async fn transfers(
        &self,
        account: &str,
        continue_token: Option<&str>,
    ) -> Result<TransferList, BearerClientError> {
        let path = page_path(
            &format!("/api/ledger/accounts/{account}/transfers"),
            None,
            continue_token,
        );
        self.http.get(&path).await
    }

    /// `POST /api/ledger/mint` under `key` (a retry with the same key
    /// mints nothing more).
    pub async fn mint(
        &self,
        request: &MintRequest,
        key: &str,
    ) -> Result<MintResponse, BearerClientError> {
        self.http
            .post("/api/ledger/mint", request, &[(IDEMPOTENCY_KEY, key)])
            .await
    }

    /// `GET /api/ledger/audit`.
    pub async fn audit(&self) -> Result<LedgerAudit, BearerClientError> {
        self.http.get("/api/ledger/audit").await
    }
}
