//! The user's side of the governance API: typed calls that read proposals
//! and votes (public) and open proposals or vote, either as an account or
//! the admin (a [`BearerClient`]) or as a node (requests signed by its
//! identity through [`CoordinatorClient`]).

use uuid::Uuid;

use super::api::{
    CastVote, Choice, NewProposal, NodeVote, ProposalList, ProposalState, ProposalView, VoteList,
    VoteView,
};
use crate::coordinator::bearer_client::{page_path, BearerClient, BearerClientError};
use crate::coordinator::{ClientError, CoordinatorClient};

/// Why a governance call failed.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceClientError {
    #[error(transparent)]
    Bearer(#[from] BearerClientError),
    #[error(transparent)]
    Node(#[from] ClientError),
}

/// Who opens proposals and votes.
#[derive(Debug)]
pub enum Voter {
    /// An account's API key, or the admin token.
    Bearer(BearerClient),
    /// A node, signing with its identity.
    Node(CoordinatorClient),
}

/// A governance client for one coordinator.
#[derive(Debug)]
pub struct GovernanceClient {
    /// Reads are public; this one may carry no token at all.
    reader: BearerClient,
    voter: Option<Voter>,
}

impl GovernanceClient {
    pub fn new(reader: BearerClient, voter: Option<Voter>) -> Self {
        GovernanceClient { reader, voter }
    }

    fn voter(&self) -> Result<&Voter, GovernanceClientError> {
        self.voter
            .as_ref()
            .ok_or(GovernanceClientError::Bearer(BearerClientError::NoApiKey))
    }

    /// `POST /api/proposals` (or the node's signed twin).
    pub async fn create(
        &self,
        proposal: &NewProposal,
    ) -> Result<ProposalView, GovernanceClientError> {
        Ok(match self.voter()? {
            Voter::Bearer(http) => http.post("/api/proposals", proposal, &[]).await?,
            Voter::Node(node) => {
                let path = format!("/api/nodes/{}/proposals", node.identity().node_id());
                node.post(&path, proposal).await?
            }
        })
    }

    /// `POST /api/proposals/{id}/votes` (or the node's signed twin).
    pub async fn vote(&self, id: Uuid, choice: Choice) -> Result<VoteView, GovernanceClientError> {
        Ok(match self.voter()? {
            Voter::Bearer(http) => {
                let path = format!("/api/proposals/{id}/votes");
                http.post(&path, &CastVote { choice }, &[]).await?
            }
            Voter::Node(node) => {
                let path = format!("/api/nodes/{}/votes", node.identity().node_id());
                let body = NodeVote {
                    proposal_id: id,
                    choice,
                };
                node.post(&path, &body).await?
            }
        })
    }

    /// `GET /api/proposals/{id}`.
    pub async fn get(&self, id: Uuid) -> Result<ProposalView, GovernanceClientError> {
        Ok(self.reader.get(&format!("/api/proposals/{id}")).await?)
    }

    /// `GET /api/proposals`, one page (newest first).
    pub async fn list(
        &self,
        state: Option<ProposalState>,
        continue_token: Option<&str>,
    ) -> Result<ProposalList, GovernanceClientError> {
        let path = page_path("/api/proposals", state.map(|s| s.as_str()), continue_token);
        Ok(self.reader.get(&path).await?)
    }

    /// `GET /api/proposals/{id}/votes`, one page (by voter).
    pub async fn votes(
        &self,
        id: Uuid,
        continue_token: Option<&str>,
    ) -> Result<VoteList, GovernanceClientError> {
        let path = page_path(&format!("/api/proposals/{id}/votes"), None, continue_token);
        Ok(self.reader.get(&path).await?)
    }
}
