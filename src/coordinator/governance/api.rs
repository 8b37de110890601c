//! The governance domain's wire types: a new proposal, a vote (by an
//! account's API key or signed by a node), and the public views of
//! proposals, their tallies and their votes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// What a proposal does when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProposalKind {
    /// Sets a parameter (`parameter`) from `effective_at`.
    Parameter,
    /// Mints µGAI into an account (`mint`).
    Mint,
    /// Changes nothing: the community's opinion, on record.
    Signal,
}

impl ProposalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::Parameter => "parameter",
            ProposalKind::Mint => "mint",
            ProposalKind::Signal => "signal",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "parameter" => Some(ProposalKind::Parameter),
            "mint" => Some(ProposalKind::Mint),
            "signal" => Some(ProposalKind::Signal),
            _ => None,
        }
    }
}

/// A parameter and the value a proposal gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterProposal {
    /// A parameter name, as `GET /api/parameters` lists them.
    pub name: String,
    pub value: i64,
}

/// An account and the µGAI a proposal mints into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintProposal {
    /// `client:<account id>`, `node:<node uuid>` or `treasury`.
    pub account: String,
    /// Above 0.
    pub amount_ugai: i64,
}

/// `POST /api/proposals` (admin or an account with voting power) or
/// `POST /api/nodes/{id}/proposals` (a node with voting power, signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProposal {
    pub kind: ProposalKind,
    /// 1-120 characters.
    pub title: String,
    /// At most 8 KiB.
    #[serde(default)]
    pub description: String,
    /// Kind `parameter` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<ParameterProposal>,
    /// Kind `mint` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint: Option<MintProposal>,
    /// 1 s to 90 days; default `governance.votingPeriodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voting_period_seconds: Option<i64>,
    /// RFC 3339, kind `parameter` only: when a passed value takes effect;
    /// not before the deadline (default: the deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<String>,
}

/// Where a proposal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Taking votes until its deadline.
    Open,
    /// Quorum reached and the threshold passed; its effect is scheduled or done.
    Passed,
    /// Quorum reached, threshold not.
    Rejected,
    /// Too little of the frozen voting power voted.
    NoQuorum,
}

impl ProposalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Open => "open",
            ProposalState::Passed => "passed",
            ProposalState::Rejected => "rejected",
            ProposalState::NoQuorum => "no_quorum",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(ProposalState::Open),
            "passed" => Some(ProposalState::Passed),
            "rejected" => Some(ProposalState::Rejected),
            "no_quorum" => Some(ProposalState::NoQuorum),
            _ => None,
        }
    }
}

/// A vote's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    Yes,
    No,
    /// Counts toward quorum, not toward the threshold.
    Abstain,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Yes => "yes",
            Choice::No => "no",
            Choice::Abstain => "abstain",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "yes" => Some(Choice::Yes),
            "no" => Some(Choice::No),
            "abstain" => Some(Choice::Abstain),
            _ => None,
        }
    }
}

/// The voting power behind each choice (µGAI frozen at open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tally {
    pub yes: i64,
    pub no: i64,
    pub abstain: i64,
    /// Voters who voted.
    pub votes: i64,
}

/// A proposal as everyone sees it: what it does, the power frozen at open,
/// the tally so far (final once tallied) and the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProposalView {
    pub proposal_id: Uuid,
    pub kind: ProposalKind,
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<ParameterProposal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint: Option<MintProposal>,
    /// `admin`, `client:<account id>` or `node:<node uuid>`.
    pub proposer: String,
    pub state: ProposalState,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: votes are taken before it; the tally follows it.
    pub deadline: String,
    /// RFC 3339 (kind `parameter`): when a passed value takes effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<String>,
    /// Frozen at open from `governance.quorumBasisPoints`.
    pub quorum_basis_points: i64,
    /// Frozen at open from `governance.thresholdBasisPoints`.
    pub threshold_basis_points: i64,
    /// The voting power frozen at open (µGAI of every client and node
    /// account with a balance then).
    pub total_power: i64,
    /// Accounts that may vote.
    pub voters: i64,
    /// Votes cast, replaced ones included.
    pub ballots: i64,
    pub tally: Tally,
    /// Whether enough of the frozen power voted (so far).
    pub quorum_reached: bool,
    /// What the tally decided and why; absent while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tallied_at: Option<String>,
}

/// `GET /api/proposals`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProposalList {
    pub proposals: Vec<ProposalView>,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// `POST /api/proposals/{id}/votes` (an account's API key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CastVote {
    pub choice: Choice,
}

/// `POST /api/nodes/{id}/votes` (signed by the node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeVote {
    pub proposal_id: Uuid,
    pub choice: Choice,
}

/// How a vote was cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteVia {
    /// An account's API key.
    ApiKey,
    /// A request signed with a node's key.
    NodeSignature,
}

impl VoteVia {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteVia::ApiKey => "api_key",
            VoteVia::NodeSignature => "node_signature",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "api_key" => Some(VoteVia::ApiKey),
            "node_signature" => Some(VoteVia::NodeSignature),
            _ => None,
        }
    }
}

/// A vote as everyone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoteView {
    pub proposal_id: Uuid,
    /// `client:<account id>` or `node:<node uuid>`.
    pub voter: String,
    pub choice: Choice,
    /// The voter's power frozen at open.
    pub power: i64,
    pub via: VoteVia,
    /// RFC 3339: when the vote in force was cast.
    pub cast_at: String,
    /// How many earlier votes of this voter it replaced.
    pub replaced: i64,
}

/// `GET /api/proposals/{id}/votes`: one page, by voter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoteList {
    pub votes: Vec<VoteView>,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}
