//! The ledger's wire types: balances, transfers, minting, the audit and a
//! job's cost. Amounts are integers in µGAI (1 GAI = 1,000,000 µGAI).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceView {
    /// `client:<id>`, `node:<uuid>`, `treasury`, `issuer` or `escrow:<job>`.
    pub account: String,
    pub kind: String,
    /// µGAI (the issuer's is minus the supply).
    pub balance_ugai: i64,
}

/// One transfer: `amount_ugai` moved from `debit` to `credit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferView {
    /// Unique; the same id is never applied twice.
    pub transfer_id: String,
    pub debit: String,
    pub credit: String,
    pub amount_ugai: i64,
    /// `mint`, `hold`, `pay`, `fee`, `refund` or `green` (the green bonus).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub memo: String,
    /// RFC 3339.
    pub at: String,
}

/// An account's transfers, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferList {
    pub transfers: Vec<TransferView>,
    /// Pass as `?continue=` for older transfers; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// `POST /api/ledger/mint` (admin; `Idempotency-Key` required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// `client:<id>`, `node:<uuid>` or `treasury`.
    pub account: String,
    /// µGAI, above 0.
    pub amount_ugai: i64,
    #[serde(default)]
    pub memo: String,
}

/// Answer to a mint (the same for a retry with the same key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MintResponse {
    pub transfer_id: String,
    /// False when this key minted before: nothing was minted now.
    pub minted_now: bool,
    pub balance: BalanceView,
}

/// One invariant of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invariant {
    pub name: String,
    pub meaning: String,
    pub holds: bool,
    /// Rows that break it (0 when it holds).
    pub breaking: i64,
}

/// `GET /api/ledger/audit`: the ledger's totals and invariants, read in
/// one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerAudit {
    /// True when every invariant holds.
    pub ok: bool,
    /// µGAI minted.
    pub supply_ugai: i64,
    /// µGAI in all accounts but the issuer (escrow included).
    pub balances_ugai: i64,
    pub treasury_ugai: i64,
    /// Jobs with GAI held in escrow now.
    pub open_holds: i64,
    pub held_ugai: i64,
    pub transfers: i64,
    pub invariants: Vec<Invariant>,
}

/// What a job costs its client: the hold, and once it ended the split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobCost {
    pub payer: String,
    pub price_per_second_ugai: i64,
    /// price × timeout, held from submission until the job ends.
    pub held_ugai: i64,
    /// `held`, `settled` (paid for the run) or `voided` (all given back).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_seconds: Option<i64>,
    /// To the node that completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_to_node_ugai: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_node_id: Option<String>,
    /// To the treasury.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_ugai: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_basis_points: Option<i64>,
    /// Back to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_ugai: Option<i64>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<String>,
}
