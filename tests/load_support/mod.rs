//! The heartbeat load generator shared by `tests/coordinator_load.rs` (every
//! request answered) and `benches/coordinator_load.rs` (throughput and p99):
//! [`generator`], CPU use of the coordinator, the generator, PostgreSQL and
//! the machine read from `/proc`, and the heartbeat a simulated node sends.
//! Both declare `mod coordinator_support;` next to `mod load_support;`.
#![allow(dead_code)]

pub mod generator;

use garage::coordinator::api::{GpuInfo, HeartbeatRequest};

/// CPU ticks (utime + stime, 1/100 s on Linux) of one process.
pub fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of every PostgreSQL server process on this machine.
pub fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| process_ticks(&pid))
        .sum()
}

/// (busy, total) ticks of the whole machine.
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU use over a step, in cores (1.0 = one core busy).
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: std::time::Instant,
    server: u64,
    generator: u64,
    postgres: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSample {
    pub fn take(server_pid: u32) -> CpuSample {
        let (machine_busy, machine_total) = machine_ticks();
        CpuSample {
            at: std::time::Instant::now(),
            server: process_ticks(&server_pid.to_string()).unwrap_or(0),
            generator: process_ticks("self").unwrap_or(0),
            postgres: postgres_ticks(),
            machine_busy,
            machine_total,
        }
    }

    /// Cores used by (server, generator, postgres, machine) since `self`.
    pub fn cores_until(&self, end: &CpuSample) -> [f64; 4] {
        let secs = end.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let cores = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / 100.0 / secs;
        let machine = (end.machine_busy - self.machine_busy) as f64
            / (end.machine_total - self.machine_total).max(1) as f64
            * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        [
            cores(self.server, end.server),
            cores(self.generator, end.generator),
            cores(self.postgres, end.postgres),
            machine,
        ]
    }
}

/// A node's status document as the agent sends it: three components and
/// its conditions, about 2 KB of JSON (see `coordinator_link::heartbeat`).
pub fn heartbeat_body() -> Vec<u8> {
    let component = |name: &str, image: &str| {
        serde_json::json!({
            "name": name,
            "image": image,
            "container_id": "3f9a1c0e7b2d4a8f9e6c5b4a3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c",
            "state": "running",
            "health": "healthy",
            "restarts": 0,
            "started_at": "2026-11-25T21:00:00Z",
            "spec_hash": "9c1185a5c5e9fc54612808977ee8f548b2258d31",
            "ports": [{"container": 8080, "host": 18080, "protocol": "tcp"}],
            "gpus": ["GPU-5c2a4e1f-8b3d-4c7a-9e2f-1a6b8d0c3e5f"],
            "message": "container is running and its health check passes"
        })
    };
    let condition = |type_: &str, reason: &str| {
        serde_json::json!({
            "type": type_, "status": "True", "reason": reason,
            "message": "every component matches the spec",
            "last_transition_time": "2026-11-25T21:00:05Z"
        })
    };
    let status = serde_json::json!({
        "node": "garage-node-0042",
        "observed_generation": "9c1185a5c5e9fc54612808977ee8f548b2258d31",
        "last_attempted_generation": "9c1185a5c5e9fc54612808977ee8f548b2258d31",
        "last_applied_generation": "9c1185a5c5e9fc54612808977ee8f548b2258d31",
        "conditions": [
            condition("Ready", "Converged"),
            condition("Converged", "AllComponentsMatch"),
            condition("RuntimeReachable", "EngineAnswers"),
            condition("SpecValid", "Parsed"),
        ],
        "components": [
            component("inference", "ghcr.io/garage-ai/worker:0.1.0"),
            component("exporter", "nvidia/dcgm-exporter:3.3.5-3.4.0-ubuntu22.04"),
            component("proxy", "caddy:2.8"),
        ],
    });
    let request = HeartbeatRequest {
        observed_generation: Some("9c1185a5c5e9fc54612808977ee8f548b2258d31".into()),
        ready: Some(true),
        gpus: vec![gpu()],
        status,
        power: None,
        spec_revision: None,
    };
    serde_json::to_vec(&request).expect("serialises")
}

pub fn gpu() -> GpuInfo {
    GpuInfo {
        name: "NVIDIA GeForce RTX 4090".into(),
        memory_total_bytes: 25_757_220_864,
        uuid: Some("GPU-5c2a4e1f-8b3d-4c7a-9e2f-1a6b8d0c3e5f".into()),
    }
}
