//! Gateway bills in the real store, on SQLite and PostgreSQL: a request's
//! hold is refused past the balance, settled exactly once however many
//! settle it at the same time (the node paid its share, the fee to the
//! treasury, the rest back), a bill nobody served is voided whole, a bill
//! a crashed coordinator left held is voided by the stale sweep, and the
//! ledger's audit holds after every step.

#[macro_use]
mod coordinator_support;

use std::path::Path;

use coordinator_support::Db;
use garage::coordinator::gateway::billing::{NewBill, Settlement, TokenPrices, Tokens};
use garage::coordinator::ledger::{LedgerAccount, LedgerError};
use garage::coordinator::store::Store;
use uuid::Uuid;

const PRICES: TokenPrices = TokenPrices {
    input: 1_000,
    output: 3_000,
};

async fn store(dir: &Path, db: &Db) -> Store {
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("bills.db").display()),
        Db::Postgres(url) => url.clone(),
    };
    Store::connect(&url).await.expect("open the store")
}

async fn balance(store: &Store, account: &LedgerAccount) -> i64 {
    store
        .balance(account)
        .await
        .expect("read a balance")
        .map_or(0, |b| b.balance)
}

async fn audit_holds(store: &Store) {
    let audit = store.audit().await.expect("audit");
    assert!(audit.ok, "an invariant broke: {audit:#?}");
}

fn bill(payer: &LedgerAccount, held: i64) -> NewBill {
    NewBill {
        request_id: Uuid::new_v4(),
        payer: payer.clone(),
        model: "smollm2".into(),
        market: "cpu".into(),
        prices: PRICES,
        held,
    }
}

async fn bills_are_held_settled_once_and_voided(dir: &Path, db: Db) {
    let store = store(dir, &db).await;
    let payer = LedgerAccount::Client("0123456789abcdef".into());
    let node = Uuid::new_v4();
    store
        .mint(&payer, 100_000, "mint:payer", "test", 1)
        .await
        .expect("mint");

    let refused = store.hold_gateway_bill(&bill(&payer, 100_001), 2).await;
    assert!(
        matches!(refused, Err(LedgerError::Insufficient { .. })),
        "{refused:?}"
    );
    audit_holds(&store).await;

    let held = bill(&payer, 60_000);
    store.hold_gateway_bill(&held, 3).await.expect("hold");
    assert_eq!(balance(&store, &payer).await, 40_000);
    audit_holds(&store).await;

    // 1,000 prompt + 2,000 completion tokens: 1,000 + 6,000 = 7,000 µGAI,
    // 10 % to the treasury. Eight settlers race; exactly one pays.
    let settlement = Settlement {
        request_id: held.request_id,
        node_id: Some(node),
        tokens: Tokens {
            prompt: 1_000,
            completion: 2_000,
        },
        fee_basis_points: 1_000,
    };
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, settlement) = (store.clone(), settlement);
        racers.spawn(async move { store.settle_gateway_bill(&settlement, 4).await });
    }
    let mut paid = 0;
    while let Some(result) = racers.join_next().await {
        if let Some(split) = result.expect("no panic").expect("settle") {
            assert_eq!(
                (split.paid, split.fee, split.refunded),
                (6_300, 700, 53_000)
            );
            paid += 1;
        }
    }
    assert_eq!(paid, 1, "a request is paid at most once");
    assert_eq!(balance(&store, &LedgerAccount::Node(node)).await, 6_300);
    assert_eq!(balance(&store, &LedgerAccount::Treasury).await, 700);
    assert_eq!(balance(&store, &payer).await, 93_000);
    let row = store.gateway_bill(held.request_id).await.unwrap().unwrap();
    assert_eq!(row.state, "settled");
    assert_eq!(
        (row.prompt_tokens, row.completion_tokens),
        (Some(1_000), Some(2_000))
    );
    audit_holds(&store).await;

    // Nobody served it: the whole hold comes back.
    let unserved = bill(&payer, 5_000);
    store.hold_gateway_bill(&unserved, 5).await.expect("hold");
    let void = Settlement {
        request_id: unserved.request_id,
        node_id: None,
        tokens: Tokens {
            prompt: 9,
            completion: 9,
        },
        fee_basis_points: 1_000,
    };
    let split = store
        .settle_gateway_bill(&void, 6)
        .await
        .expect("void")
        .expect("voided");
    assert_eq!((split.paid, split.fee, split.refunded), (0, 0, 5_000));
    assert_eq!(
        store
            .gateway_bill(unserved.request_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        "voided"
    );
    assert_eq!(balance(&store, &payer).await, 93_000);
    audit_holds(&store).await;

    // Left held by a coordinator that died: the sweep voids it once stale,
    // and not before.
    let orphan = bill(&payer, 8_000);
    store.hold_gateway_bill(&orphan, 1_000).await.expect("hold");
    assert_eq!(
        store
            .void_stale_gateway_bills(500, 2_000)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(
        store
            .void_stale_gateway_bills(1_001, 2_000)
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(
        store
            .void_stale_gateway_bills(1_001, 2_001)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(balance(&store, &payer).await, 93_000);
    let audit = store.audit().await.expect("audit");
    assert!(audit.ok && audit.open_holds == 0, "{audit:#?}");
    store.close().await;
}

on_both_databases!(
    gateway_bills_on_sqlite,
    gateway_bills_on_postgres,
    bills_are_held_settled_once_and_voided
);
