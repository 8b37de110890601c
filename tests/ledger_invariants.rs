//! The ledger's invariants under random sequences of what happens to money
//! and jobs (issue 12): mint, submit (with retried idempotency keys),
//! claim, complete (every outcome, repeated), cancel, time passing (leases
//! expire: requeue or node lost; queued jobs expire; running jobs time
//! out), retried mints and fee changes — against the real store on SQLite
//! and PostgreSQL. After every step the audit must hold (supply = sum of
//! balances, no negative balance, balances replay their transfers, escrow
//! matches bills, finished jobs hold nothing, no job paid twice), and the
//! supply must equal what the sequence minted under distinct ids.

mod coordinator_support;

use std::collections::BTreeMap;

use garage::coordinator::api::{JobSubmission, JobType, Outcome};
use garage::coordinator::jobs::lease_store::{Ending, LeaseOwner};
use garage::coordinator::jobs::placement::fit::Claimant;
use garage::coordinator::jobs::store::Inserted;
use garage::coordinator::jobs::{submit, sweep};
use garage::coordinator::ledger::settle::Charge;
use garage::coordinator::ledger::LedgerAccount;
use garage::coordinator::store::Store;
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

const CLIENTS: usize = 3;
const NODES: usize = 2;
const LEASE_MS: i64 = 2_000;

#[derive(Debug, Clone)]
enum Op {
    Mint {
        client: usize,
        amount: i64,
    },
    RetryMint {
        pick: usize,
    },
    Submit {
        client: usize,
        timeout_s: u8,
        price: i64,
        key: Option<u8>,
    },
    Claim {
        node: usize,
    },
    Complete {
        pick: usize,
        outcome: u8,
    },
    Cancel {
        pick: usize,
    },
    Pass {
        ms: i64,
    },
    Fee {
        basis_points: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..CLIENTS, 1..5_000i64).prop_map(|(client, amount)| Op::Mint { client, amount }),
        (0..8usize).prop_map(|pick| Op::RetryMint { pick }),
        (0..CLIENTS, 1..8u8, 0..40i64, proptest::option::of(0..3u8)).prop_map(
            |(client, timeout_s, price, key)| Op::Submit {
                client,
                timeout_s,
                price,
                key
            }
        ),
        (0..NODES).prop_map(|node| Op::Claim { node }),
        (0..8usize, 0..4u8).prop_map(|(pick, outcome)| Op::Complete { pick, outcome }),
        (0..8usize).prop_map(|pick| Op::Cancel { pick }),
        (0..6_000i64).prop_map(|ms| Op::Pass { ms }),
        (0..2_000i64).prop_map(|basis_points| Op::Fee { basis_points }),
    ]
}

/// What the sequence did so far, to pick targets and to check the supply.
struct World {
    store: Store,
    now: i64,
    fee: i64,
    clients: Vec<String>,
    nodes: Vec<Uuid>,
    jobs: Vec<Uuid>,
    leases: Vec<(LeaseOwner, Uuid)>,
    mints: Vec<(String, LedgerAccount, i64)>,
    minted: BTreeMap<String, i64>,
}

fn container_job(timeout_s: u8) -> submit::NewJob {
    let submission: JobSubmission = serde_json::from_value(json!({
        "job": coordinator_support::jobs::hello_job(),
        "timeout": format!("{timeout_s}s"),
        "expiresAfter": "20s",
        "maxAttempts": 2,
    }))
    .expect("a submission");
    submit::check(submission).expect("a valid job")
}

fn pick<T: Clone>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()].clone())
}

impl World {
    async fn new(store: Store) -> World {
        World {
            store,
            now: 1_700_000_000_000,
            fee: 500,
            clients: (0..CLIENTS).map(|i| format!("c{i}")).collect(),
            nodes: (0..NODES).map(|_| Uuid::new_v4()).collect(),
            jobs: Vec::new(),
            leases: Vec::new(),
            mints: Vec::new(),
            minted: BTreeMap::new(),
        }
    }

    async fn apply(&mut self, op: &Op) {
        self.now += 1;
        let now = self.now;
        match op {
            Op::Mint { client, amount } => {
                let id = format!("mint:{}", self.mints.len());
                let account = LedgerAccount::Client(self.clients[*client].clone());
                self.store
                    .mint(&account, *amount, &id, "test", now)
                    .await
                    .expect("a mint");
                self.minted.insert(id.clone(), *amount);
                self.mints.push((id, account, *amount));
            }
            Op::RetryMint { pick: index } => {
                if let Some((id, account, amount)) = pick(&self.mints, *index) {
                    self.store
                        .mint(&account, amount, &id, "retried", now)
                        .await
                        .expect("a retried mint has no further effect");
                }
            }
            Op::Submit {
                client,
                timeout_s,
                price,
                key,
            } => {
                let owner = &self.clients[*client];
                let charge = Charge {
                    payer: LedgerAccount::Client(owner.clone()),
                    price_per_second: *price,
                };
                let key = key.map(|k| format!("key-{k}"));
                let inserted = self
                    .store
                    .insert_job(
                        owner,
                        key.as_deref(),
                        &container_job(*timeout_s),
                        Some(&charge),
                        now,
                    )
                    .await
                    .expect("a submission");
                if let Inserted::Created(id) = inserted {
                    self.jobs.push(id);
                }
            }
            Op::Claim { node } => {
                let claimant = Claimant {
                    node_id: self.nodes[*node],
                    market: "cpu".into(),
                    vram_mib: 0,
                    job_types: vec![JobType::Container],
                    labels: BTreeMap::new(),
                    location: Default::default(),
                    power: None,
                };
                if let Some(granted) = self
                    .store
                    .claim(&claimant, LEASE_MS, now)
                    .await
                    .expect("a claim")
                {
                    let owner = LeaseOwner {
                        job_id: granted.job.job_id,
                        node_id: claimant.node_id,
                    };
                    self.leases.push((owner, granted.lease_id));
                }
            }
            Op::Complete {
                pick: index,
                outcome,
            } => {
                if let Some((owner, lease_id)) = pick(&self.leases, *index) {
                    let outcome = [
                        Outcome::Succeeded,
                        Outcome::Failed,
                        Outcome::TimedOut,
                        Outcome::NotStarted,
                    ][usize::from(*outcome)];
                    let ending = Ending {
                        outcome,
                        reason: "test",
                        result: "{}",
                    };
                    self.store
                        .complete(owner, lease_id, ending, self.fee, now)
                        .await
                        .expect("a complete");
                }
            }
            Op::Cancel { pick: index } => {
                if let Some(job) = pick(&self.jobs, *index) {
                    self.store
                        .cancel_job(job, self.fee, now)
                        .await
                        .expect("a cancel");
                }
            }
            Op::Pass { ms } => {
                self.now += ms;
                sweep::sweep_once(&self.store, self.now)
                    .await
                    .expect("a sweep");
            }
            Op::Fee { basis_points } => self.fee = *basis_points,
        }
    }

    async fn check(&self, step: usize, op: &Op) {
        let audit = self.store.audit().await.expect("an audit");
        assert!(audit.ok, "after step {step} ({op:?}): {audit:#?}");
        let minted: i64 = self.minted.values().sum();
        assert_eq!(
            audit.supply_ugai, minted,
            "after step {step} ({op:?}): the supply is what was minted under distinct ids"
        );
        assert_eq!(audit.balances_ugai, minted, "after step {step} ({op:?})");
    }
}

async fn run_sequence(store: Store, ops: &[Op]) {
    let mut world = World::new(store).await;
    for (step, op) in ops.iter().enumerate() {
        world.apply(op).await;
        world.check(step, op).await;
    }
    // Finally every job ends: time passes until the sweep has ended all.
    for _ in 0..8 {
        world.now += 30_000;
        sweep::sweep_once(&world.store, world.now)
            .await
            .expect("a sweep");
    }
    let audit = world.store.audit().await.expect("an audit");
    assert!(audit.ok, "at the end: {audit:#?}");
    assert_eq!(audit.open_holds, 0, "every job ended: nothing held");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step_on_sqlite(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(async {
            let store = Store::connect("sqlite::memory:").await.expect("sqlite");
            run_sequence(store, &ops).await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step_on_postgres(ops in proptest::collection::vec(op(), 1..60)) {
        let Some(url) = coordinator_support::postgres_url() else {
            return Ok(());
        };
        runtime().block_on(async {
            let coordinator_support::Db::Postgres(url) =
                coordinator_support::postgres_db(&url, "ledger_invariants").await
            else {
                unreachable!("postgres_db makes a PostgreSQL database")
            };
            let store = Store::connect(&url).await.expect("postgres");
            run_sequence(store.clone(), &ops).await;
            store.close().await;
        });
    }
}
