//! The admin's side of the accounts API: typed calls over a
//! [`BearerClient`] holding the admin token.

use super::api::{AccountCreated, AccountList, CreateAccountRequest};
use crate::coordinator::bearer_client::{page_path, BearerClient, BearerClientError};

/// An accounts client for one coordinator.
#[derive(Debug)]
pub struct AccountsClient {
    http: BearerClient,
}

impl AccountsClient {
    pub fn new(http: BearerClient) -> Self {
        AccountsClient { http }
    }

    /// `POST /api/accounts`: the new account and its API key (shown once).
    pub async fn create(
        &self,
        name: &str,
        residency: Option<&str>,
    ) -> Result<AccountCreated, BearerClientError> {
        let request = CreateAccountRequest {
            name: name.into(),
            residency: residency.map(str::to_string),
        };
        self.http.post("/api/accounts", &request, &[]).await
    }

    /// `GET /api/accounts`, one page.
    pub async fn list(
        &self,
        continue_token: Option<&str>,
    ) -> Result<AccountList, BearerClientError> {
        let path = page_path("/api/accounts", None, continue_token);
        self.http.get(&path).await
    }

    /// `DELETE /api/accounts/{id}`: revokes the account's key.
    pub async fn revoke(&self, id: &str) -> Result<(), BearerClientError> {
        self.http.delete(&format!("/api/accounts/{id}")).await
    }
}
