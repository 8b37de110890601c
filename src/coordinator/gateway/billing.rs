//! A gateway request's bill: held from the account when the request is
//! routed (an upper bound: the prompt's bytes and the completion limit at
//! the market's token prices), settled exactly once by the tokens
//! delivered (to the node, the fee to the treasury, the rest back), each
//! in one database transaction. `gateway_bills.state` leaves `held` once,
//! by a conditional UPDATE, and the transfer ids (`pay:<request>`, …) are
//! unique: a request is paid at most once. Bills a crashed coordinator
//! left held are voided by [`Store::void_stale_gateway_bills`].

use sqlx::Row;
use uuid::Uuid;

use crate::coordinator::ledger::store::{
    transfer_in, transfers_from_in, Credit, LedgerError, NewTransfer, TransferKind,
};
use crate::coordinator::ledger::LedgerAccount;
use crate::coordinator::store::{query_err, Store, StoreError};

/// Basis points in 100 %.
const BASIS_POINTS: i128 = 10_000;
/// Token prices are per this many tokens.
const PRICE_UNIT_TOKENS: i128 = 1_000;

/// µGAI per 1,000 tokens, in and out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPrices {
    pub input: i64,
    pub output: i64,
}

/// Tokens a request is charged for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
}

/// What `tokens` cost at `prices`, each part rounded up; `None` past i64.
pub fn cost(tokens: Tokens, prices: TokenPrices) -> Option<i64> {
    let part = |count: u64, price: i64| {
        let micro = i128::from(count) * i128::from(price.max(0));
        (micro + PRICE_UNIT_TOKENS - 1) / PRICE_UNIT_TOKENS
    };
    i64::try_from(part(tokens.prompt, prices.input) + part(tokens.completion, prices.output)).ok()
}

/// How a settled hold splits; the three parts add up to the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub paid: i64,
    pub fee: i64,
    pub refunded: i64,
}

/// Splits `held` for a charge of `charged` (capped by the hold) with a fee
/// of `fee_basis_points`.
pub fn split(held: i64, charged: i64, fee_basis_points: i64) -> Split {
    let held = held.max(0);
    let charged = charged.clamp(0, held);
    let fee_basis_points = i128::from(fee_basis_points).clamp(0, BASIS_POINTS);
    let fee =
        i64::try_from(i128::from(charged) * fee_basis_points / BASIS_POINTS).unwrap_or(charged);
    Split {
        paid: charged - fee,
        fee,
        refunded: held - charged,
    }
}

/// A bill to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBill {
    pub request_id: Uuid,
    pub payer: LedgerAccount,
    pub model: String,
    pub market: String,
    pub prices: TokenPrices,
    pub held: i64,
}

/// A settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub request_id: Uuid,
    /// `None`: nothing was served (the bill is voided).
    pub node_id: Option<Uuid>,
    pub tokens: Tokens,
    pub fee_basis_points: i64,
}

impl Store {
    /// Holds `bill.held` from the payer in the request's escrow; refused
    /// with [`LedgerError::Insufficient`] when the balance does not cover it.
    pub async fn hold_gateway_bill(&self, bill: &NewBill, now_ms: i64) -> Result<(), LedgerError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        sqlx::query(
            "INSERT INTO gateway_bills (request_id, payer, model, market, price_in, price_out, \
             held, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'held', $8)",
        )
        .bind(bill.request_id.to_string())
        .bind(bill.payer.key())
        .bind(bill.model.clone())
        .bind(bill.market.clone())
        .bind(bill.prices.input)
        .bind(bill.prices.output)
        .bind(bill.held)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record a gateway bill"))?;
        if bill.held > 0 {
            let transfer = NewTransfer {
                id: format!("hold:{}", bill.request_id),
                debit: bill.payer.clone(),
                credit: LedgerAccount::Escrow(bill.request_id),
                amount: bill.held,
                kind: TransferKind::Hold,
                job_id: None,
                memo: format!(
                    "hold for gateway request {} ({})",
                    bill.request_id, bill.model
                ),
            };
            transfer_in(&mut tx, &transfer, now_ms).await?;
        }
        tx.commit()
            .await
            .map_err(query_err("commit a gateway hold"))?;
        Ok(())
    }

    /// Settles a held bill by the tokens delivered; `None` when it was
    /// settled or voided before (by another path or replica).
    pub async fn settle_gateway_bill(
        &self,
        settlement: &Settlement,
        now_ms: i64,
    ) -> Result<Option<Split>, LedgerError> {
        let request_id = settlement.request_id;
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let row = sqlx::query(
            "SELECT payer, price_in, price_out, held FROM gateway_bills \
             WHERE request_id = $1 AND state = 'held'",
        )
        .bind(request_id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("read a gateway bill"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let read = || query_err("read a gateway bill");
        let payer: String = row.try_get(0).map_err(read())?;
        let payer = LedgerAccount::parse(&payer).ok_or_else(|| StoreError::CorruptRow {
            table: "gateway_bills",
            key: request_id.to_string(),
            problem: format!("payer {payer:?}"),
        })?;
        let prices = TokenPrices {
            input: row.try_get(1).map_err(read())?,
            output: row.try_get(2).map_err(read())?,
        };
        let held: i64 = row.try_get(3).map_err(read())?;
        let (tokens, charged) = match settlement.node_id {
            Some(_) => (
                settlement.tokens,
                cost(settlement.tokens, prices).unwrap_or(held),
            ),
            None => (Tokens::default(), 0),
        };
        let split = split(held, charged, settlement.fee_basis_points);
        let state = if settlement.node_id.is_some() {
            "settled"
        } else {
            "voided"
        };
        let closed = sqlx::query(
            "UPDATE gateway_bills SET state = $2, node_id = $3, prompt_tokens = $4, \
             completion_tokens = $5, paid = $6, fee = $7, refunded = $8, settled_at = $9 \
             WHERE request_id = $1 AND state = 'held'",
        )
        .bind(request_id.to_string())
        .bind(state)
        .bind(settlement.node_id.map(|n| n.to_string()))
        .bind(i64::try_from(tokens.prompt).unwrap_or(i64::MAX))
        .bind(i64::try_from(tokens.completion).unwrap_or(i64::MAX))
        .bind(split.paid)
        .bind(split.fee)
        .bind(split.refunded)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("settle a gateway bill"))?;
        if closed.rows_affected() != 1 {
            return Ok(None);
        }
        let memo = |what: &str| {
            format!(
                "{what} for gateway request {request_id} ({} prompt + {} completion tokens)",
                tokens.prompt, tokens.completion
            )
        };
        let mut credits = Vec::new();
        if let Some(node) = settlement.node_id {
            credits.push(Credit {
                id: format!("pay:{request_id}"),
                account: LedgerAccount::Node(node),
                amount: split.paid,
                kind: TransferKind::Pay,
                memo: memo("pay"),
            });
        }
        credits.push(Credit {
            id: format!("fee:{request_id}"),
            account: LedgerAccount::Treasury,
            amount: split.fee,
            kind: TransferKind::Fee,
            memo: memo("fee"),
        });
        credits.push(Credit {
            id: format!("refund:{request_id}"),
            account: payer,
            amount: split.refunded,
            kind: TransferKind::Refund,
            memo: memo("refund"),
        });
        credits.retain(|c| c.amount > 0);
        transfers_from_in(
            &mut tx,
            &LedgerAccount::Escrow(request_id),
            &credits,
            None,
            now_ms,
        )
        .await?;
        tx.commit()
            .await
            .map_err(query_err("commit a gateway settlement"))?;
        Ok(Some(split))
    }

    /// Voids bills still held that were made before `before_ms` (their
    /// coordinator stopped mid-request); returns how many.
    pub async fn void_stale_gateway_bills(
        &self,
        before_ms: i64,
        now_ms: i64,
    ) -> Result<usize, LedgerError> {
        let rows = sqlx::query(
            "SELECT request_id FROM gateway_bills WHERE state = 'held' AND created_at < $1 \
             ORDER BY created_at LIMIT 500",
        )
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("find stale gateway bills"))?;
        let mut voided = 0;
        for row in rows {
            let id: String = row
                .try_get(0)
                .map_err(query_err("find stale gateway bills"))?;
            let Ok(request_id) = Uuid::parse_str(&id) else {
                continue;
            };
            let settlement = Settlement {
                request_id,
                node_id: None,
                tokens: Tokens::default(),
                fee_basis_points: 0,
            };
            if self
                .settle_gateway_bill(&settlement, now_ms)
                .await?
                .is_some()
            {
                voided += 1;
            }
        }
        Ok(voided)
    }

    /// A gateway request's bill.
    pub async fn gateway_bill(
        &self,
        request_id: Uuid,
    ) -> Result<Option<GatewayBillRow>, StoreError> {
        let row = sqlx::query(
            "SELECT state, node_id, prompt_tokens, completion_tokens, held, paid, fee, refunded, \
             payer, model FROM gateway_bills WHERE request_id = $1",
        )
        .bind(request_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read a gateway bill"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let read = || query_err("read a gateway bill");
        Ok(Some(GatewayBillRow {
            state: row.try_get(0).map_err(read())?,
            node_id: row.try_get(1).map_err(read())?,
            prompt_tokens: row.try_get(2).map_err(read())?,
            completion_tokens: row.try_get(3).map_err(read())?,
            held: row.try_get(4).map_err(read())?,
            paid: row.try_get(5).map_err(read())?,
            fee: row.try_get(6).map_err(read())?,
            refunded: row.try_get(7).map_err(read())?,
            payer: row.try_get(8).map_err(read())?,
            model: row.try_get(9).map_err(read())?,
        }))
    }
}

/// A gateway bill as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayBillRow {
    /// `held`, `settled` or `voided`.
    pub state: String,
    pub node_id: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub held: i64,
    pub paid: Option<i64>,
    pub fee: Option<i64>,
    pub refunded: Option<i64>,
    /// The paying ledger account (`client:<id>`).
    pub payer: String,
    pub model: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cost_their_price_per_thousand_rounded_up() {
        let prices = TokenPrices {
            input: 10,
            output: 30,
        };
        let tokens = |prompt, completion| Tokens { prompt, completion };
        assert_eq!(cost(tokens(1_000, 1_000), prices), Some(40));
        assert_eq!(cost(tokens(1, 1), prices), Some(2), "each part rounds up");
        assert_eq!(cost(tokens(0, 0), prices), Some(0));
        assert_eq!(
            cost(
                tokens(u64::MAX, 0),
                TokenPrices {
                    input: i64::MAX,
                    output: 0
                }
            ),
            None
        );
    }

    #[test]
    fn a_split_adds_up_to_the_hold_and_never_charges_past_it() {
        let s = split(1_000, 400, 500);
        assert_eq!(
            s,
            Split {
                paid: 380,
                fee: 20,
                refunded: 600
            }
        );
        let capped = split(100, 400, 0);
        assert_eq!(capped.paid + capped.fee, 100);
        assert_eq!(capped.refunded, 0);
        for (held, charged, fee) in [(0, 5, 500), (7, 3, 10_000), (1_000_003, 77, 333)] {
            let s = split(held, charged, fee);
            assert_eq!(s.paid + s.fee + s.refunded, held);
            assert!(s.paid >= 0 && s.fee >= 0 && s.refunded >= 0);
        }
    }
}
