//! Multi-node drills (issue 18): three real nodes (agents with their own
//! podman hosts, names, state directories and ports on one engine), each
//! reaching the coordinator through its own loopback link that a drill can
//! cut, and a coordinator on SQLite and on PostgreSQL. After each drill the
//! job ended SUCCEEDED once, the client paid once, only the node that
//! completed it was paid, and the ledger's audit holds:
//! - the job's node SIGKILLed mid-job: requeued once, completed elsewhere,
//!   the dead lease's late complete refused;
//! - the coordinator restarted mid-job: the job finishes on its node;
//! - the job's node cut off from the coordinator past its lease: the node
//!   stops the job (no job container left), the job moves, and once the
//!   link heals the old lease's result is refused;
//! - the podman container of the job's node killed mid-job: the node gives
//!   the job back instead of failing it, and it is requeued once.
//!
//! The two databases take turns (one set of three podman hosts at a time).

mod coordinator_support;
mod network_support;
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coordinator_support::Db;
use network_support::{job, wait_for, Coordinator, Node, ADMIN_TOKEN, JOB_LIMIT};
use serde_json::Value;
use support::podman_prerequisites;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

/// One database's drills at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A loopback TCP link to the coordinator that can be cut (every open
/// connection dropped, new ones closed at once) and healed.
struct Link {
    base: String,
    cut: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Link {
    async fn to(coordinator_port: u16) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a link");
        let port = listener.local_addr().expect("link address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let link = Link {
            base: format!("http://127.0.0.1:{port}"),
            cut: Arc::clone(&cut),
            cuts: cuts.clone(),
        };
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut_now = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        TcpStream::connect(("127.0.0.1", coordinator_port)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_now.changed() => {}
                    }
                });
            }
        });
        link
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The coordinator, three nodes behind their links, a paying client.
struct Fleet {
    coordinator: Coordinator,
    key: String,
    nodes: Vec<Node>,
    links: Vec<Link>,
    ids: Vec<Uuid>,
}

impl Fleet {
    async fn start(tmp: &std::path::Path, db: &str, database_url: Option<String>) -> Fleet {
        let coordinator = Coordinator::start_on(&tmp.join("coordinator"), database_url).await;
        let key = coordinator.api_key(&format!("drills-{db}"));
        let mut nodes = Vec::new();
        let mut links = Vec::new();
        for i in 1..=3 {
            let link = Link::to(coordinator.port).await;
            let mut node = Node::new(&format!("drill-{db}-{i}"), &link.base);
            node.start();
            nodes.push(node);
            links.push(link);
        }
        coordinator.wait_online(3).await;
        let ids = nodes
            .iter()
            .map(|node| node.client(&coordinator.base).identity().node_id())
            .collect();
        Fleet {
            coordinator,
            key,
            nodes,
            links,
            ids,
        }
    }

    /// Submits a job that runs `seconds` and waits until a node runs it;
    /// returns the job id, the node's index and its lease.
    async fn running_job(&self, name: &str, seconds: u32) -> (String, usize, Uuid) {
        let id = self
            .coordinator
            .submit(
                &self.key,
                &job(name, &format!("echo start; sleep {seconds}; echo finished")),
            )
            .await;
        let view = self
            .coordinator
            .wait_state(&self.key, &id, "RUNNING", JOB_LIMIT)
            .await;
        let node: Uuid = view["node_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("node_id");
        let holder = self
            .ids
            .iter()
            .position(|n| *n == node)
            .expect("one of the fleet's nodes");
        let mut held = Vec::new();
        wait_for("the node shows its lease", Duration::from_secs(20), || {
            held = self.nodes[holder].network_jobs();
            !held.is_empty()
        });
        let lease = held[0]["leaseId"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("leaseId");
        (id, holder, lease)
    }

    /// Every node's balance, µGAI.
    async fn balances(&self) -> HashMap<Uuid, i64> {
        let mut balances = HashMap::new();
        for id in &self.ids {
            let (status, view) = self
                .coordinator
                .send(
                    ADMIN_TOKEN,
                    reqwest::Method::GET,
                    &format!("/api/ledger/accounts/node:{id}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{view}");
            balances.insert(*id, view["balance_ugai"].as_i64().expect("balance_ugai"));
        }
        balances
    }

    /// The job succeeded after `attempts` leases; the client paid once, to
    /// the node that completed it, the only node whose balance moved; the
    /// audit holds.
    async fn assert_paid_once(&self, id: &str, attempts: u64, before: &HashMap<Uuid, i64>) -> Uuid {
        let view = self
            .coordinator
            .wait_state(&self.key, id, "SUCCEEDED", JOB_LIMIT)
            .await;
        assert_eq!(view["attempt"], attempts, "{view}");
        let cost = &view["cost"];
        assert_eq!(cost["state"], "settled", "{view}");
        let winner: Uuid = view["node_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("node_id");
        assert_eq!(cost["paid_node_id"], winner.to_string(), "{view}");
        let paid = cost["paid_to_node_ugai"]
            .as_i64()
            .expect("paid_to_node_ugai");
        let after = self.balances().await;
        for (node, balance) in &after {
            let expected = before[node] + if *node == winner { paid } else { 0 };
            assert_eq!(
                *balance, expected,
                "node {node}'s balance (winner {winner}): {view}"
            );
        }
        let (_, audit) = self
            .coordinator
            .send(&self.key, reqwest::Method::GET, "/api/ledger/audit", None)
            .await;
        assert_eq!(audit["ok"], true, "{audit}");
        winner
    }

    /// The old lease's complete, sent by node `index` now: refused.
    async fn assert_late_complete_refused(&self, index: usize, lease: Uuid) {
        self.nodes[index]
            .assert_late_complete_refused(&self.coordinator.base, lease)
            .await;
    }
}

fn queued_count(view: &Value) -> usize {
    view["history"]
        .as_array()
        .map_or(0, |h| h.iter().filter(|e| e["state"] == "QUEUED").count())
}

async fn drills(db: &str, database_url: Option<String>) {
    let _turn = TURN.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut fleet = Fleet::start(tmp.path(), db, database_url).await;

    // 1. The job's node is SIGKILLed mid-job.
    let before = fleet.balances().await;
    let (id, holder, lease) = fleet.running_job("drill-kill", 6).await;
    fleet.nodes[holder].kill9();
    let winner = fleet.assert_paid_once(&id, 2, &before).await;
    assert_ne!(winner, fleet.ids[holder], "completed elsewhere");
    let view = fleet.coordinator.job(&fleet.key, &id).await;
    assert_eq!(
        queued_count(&view),
        2,
        "submitted, then requeued once: {view}"
    );
    fleet.assert_late_complete_refused(holder, lease).await;
    fleet.nodes[holder].start();
    fleet.coordinator.wait_online(3).await;

    // 2. The coordinator restarts mid-job.
    let before = fleet.balances().await;
    let (id, holder, _) = fleet.running_job("drill-restart", 6).await;
    fleet.coordinator.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    fleet.coordinator.restart().await;
    let winner = fleet.assert_paid_once(&id, 1, &before).await;
    assert_eq!(winner, fleet.ids[holder], "the job stayed on its node");

    // 3. The job's node is cut off past its lease.
    fleet.coordinator.wait_online(3).await;
    let before = fleet.balances().await;
    // Longer than the lease: the node must stop it, not finish it.
    let (id, holder, lease) = fleet.running_job("drill-cut", 12).await;
    fleet.links[holder].cut();
    let node = &fleet.nodes[holder];
    wait_for("the cut-off node stops its job", JOB_LIMIT, || {
        node.network_jobs().is_empty() && node.job_containers().trim().is_empty()
    });
    let winner = fleet.assert_paid_once(&id, 2, &before).await;
    assert_ne!(winner, fleet.ids[holder], "the job moved");
    fleet.links[holder].heal();
    fleet.assert_late_complete_refused(holder, lease).await;

    // 4. The podman container of the job's node is killed mid-job: the node
    // gives the job back (not the job's failure, not billed), the
    // coordinator requeues it when the lease ends, and it completes (on
    // another node, or on this one once its agent has podman back).
    fleet.coordinator.wait_online(3).await;
    let before = fleet.balances().await;
    let (id, holder, _) = fleet.running_job("drill-podman", 8).await;
    let podman = format!("garage-{}-podman", fleet.nodes[holder].name);
    support::docker_ok(&["kill", &podman]);
    fleet.assert_paid_once(&id, 2, &before).await;
    let view = fleet.coordinator.job(&fleet.key, &id).await;
    assert_eq!(queued_count(&view), 2, "given back once: {view}");
    let log = fleet.nodes[holder].log();
    assert!(
        log.contains("giving the job back"),
        "the node gave the job back:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_on_sqlite() {
    if !podman_prerequisites() {
        return;
    }
    drills("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_on_postgresql() {
    let Some(url) = coordinator_support::postgres_url() else {
        return;
    };
    if !podman_prerequisites() {
        return;
    }
    let Db::Postgres(url) = coordinator_support::postgres_db(&url, "e2e_drills").await else {
        unreachable!("postgres_db makes a PostgreSQL database");
    };
    drills("pg", Some(url)).await;
}
