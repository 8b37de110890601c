//! The narrow seam between the work task and the coordinator: the four
//! lease calls (claim, renew, logs, complete) and what their failures mean
//! to a node (try again, or stop the job). The signed
//! [`CoordinatorClient`] implements it; the task's tests use a fake.

use std::future::Future;

use uuid::Uuid;

use crate::coordinator::api::{
    AppendLogsRequest, AppendLogsResponse, ClaimRequest, CompleteRequest, CompleteResponse, Lease,
    RenewResponse,
};
use crate::coordinator::{ClientError, CoordinatorClient};

/// Why a lease call failed, as the work task acts on it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The coordinator did not answer or failed (5xx, 429): try again.
    #[error("the coordinator is unreachable or failing")]
    Unavailable(#[source] ClientError),
    /// The lease is no longer this node's live lease (409, 404, 403): stop
    /// the job and drop it; the coordinator has requeued or ended it.
    #[error("the lease is no longer this node's")]
    LeaseLost(#[source] ClientError),
    /// The coordinator refused the request itself (a bug or a version
    /// mismatch): retrying the same request cannot help.
    #[error("the coordinator refused the request")]
    Refused(#[source] ClientError),
}

impl From<ClientError> for CallError {
    fn from(err: ClientError) -> Self {
        match &err {
            _ if err.is_transient() => CallError::Unavailable(err),
            ClientError::Refused {
                status: 403 | 404 | 409,
                ..
            } => CallError::LeaseLost(err),
            _ => CallError::Refused(err),
        }
    }
}

/// The coordinator's lease protocol, as the work task uses it.
pub trait JobCoordinator: Send + Sync + 'static {
    /// Long-polls for a job; `None` when none came within the wait.
    fn claim(
        &self,
        request: &ClaimRequest,
    ) -> impl Future<Output = Result<Option<Lease>, CallError>> + Send;
    fn renew(
        &self,
        lease_id: Uuid,
    ) -> impl Future<Output = Result<RenewResponse, CallError>> + Send;
    fn append_logs(
        &self,
        lease_id: Uuid,
        request: &AppendLogsRequest,
    ) -> impl Future<Output = Result<AppendLogsResponse, CallError>> + Send;
    fn complete(
        &self,
        lease_id: Uuid,
        request: &CompleteRequest,
    ) -> impl Future<Output = Result<CompleteResponse, CallError>> + Send;
}

impl JobCoordinator for CoordinatorClient {
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, CallError> {
        Ok(CoordinatorClient::claim(self, request).await?)
    }

    async fn renew(&self, lease_id: Uuid) -> Result<RenewResponse, CallError> {
        Ok(CoordinatorClient::renew(self, lease_id).await?)
    }

    async fn append_logs(
        &self,
        lease_id: Uuid,
        request: &AppendLogsRequest,
    ) -> Result<AppendLogsResponse, CallError> {
        Ok(CoordinatorClient::append_logs(self, lease_id, request).await?)
    }

    async fn complete(
        &self,
        lease_id: Uuid,
        request: &CompleteRequest,
    ) -> Result<CompleteResponse, CallError> {
        Ok(CoordinatorClient::complete(self, lease_id, request).await?)
    }
}
