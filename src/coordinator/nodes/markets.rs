//! Markets: nodes grouped by GPU class ([`crate::gpu::class`]: "NVIDIA
//! GeForce RTX 4090" → `rtx-4090`, "NVIDIA H100 80GB HBM3" → `h100`); a node
//! without a GPU is in the `cpu` market.

use super::api::GpuInfo;
use crate::gpu::class::{gpu_class, host_class};

/// The market for a node: the class its benchmark report gives (`class`,
/// see [`crate::benchmark::BenchmarkReport`]), else its first GPU's class,
/// else `cpu`. Classes are normalised again: the report comes from the node.
pub fn market_for(benchmark: Option<&serde_json::Value>, gpus: &[GpuInfo]) -> String {
    let from_benchmark = benchmark
        .and_then(|b| b.get("class"))
        .and_then(|m| m.as_str())
        .filter(|m| !m.trim().is_empty());
    match from_benchmark {
        Some(class) => gpu_class(class),
        None => host_class(gpus.iter().map(|g| g.name.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_chooses_before_the_gpu_list() {
        let gpus = [GpuInfo {
            name: "NVIDIA GeForce RTX 4090".into(),
            memory_total_bytes: 0,
            uuid: None,
        }];
        let bench = serde_json::json!({"class": "h100"});
        assert_eq!(market_for(Some(&bench), &gpus), "h100");
        let cpu_bench = serde_json::json!({"class": "cpu"});
        assert_eq!(market_for(Some(&cpu_bench), &[]), "cpu");
        assert_eq!(market_for(Some(&serde_json::json!({})), &gpus), "rtx-4090");
        assert_eq!(market_for(None, &[]), "cpu");
    }
}
