//! Markets: nodes grouped by GPU class. The class is a normalised GPU name
//! ("NVIDIA GeForce RTX 4090" → `rtx-4090`, "NVIDIA H100 80GB HBM3" →
//! `h100`); a node without a GPU is in the `cpu` market.

use std::collections::BTreeMap;

use super::api::{GpuInfo, MarketView, NodeState, NodeView};

/// The market of nodes without a GPU.
pub const CPU_MARKET: &str = "cpu";

/// Words that name a vendor or product line rather than the GPU.
const VENDOR_WORDS: &[&str] = &[
    "nvidia", "geforce", "tesla", "quadro", "amd", "radeon", "intel", "gpu", "graphics",
];

/// The market for a node: the benchmark's `gpu_model`, else its first GPU.
pub fn market_for(benchmark: Option<&serde_json::Value>, gpus: &[GpuInfo]) -> String {
    let from_benchmark = benchmark
        .and_then(|b| b.get("gpu_model"))
        .and_then(|m| m.as_str());
    let name = from_benchmark.or_else(|| gpus.first().map(|g| g.name.as_str()));
    name.map(gpu_class)
        .unwrap_or_else(|| CPU_MARKET.to_string())
}

/// Normalises a GPU name to its class: lower case, vendor words, memory
/// sizes and form factors (`80gb`, `pcie`, `sxm4`, `hbm3`) dropped, the
/// remaining words joined by `-`. A name with nothing left is `cpu`.
pub fn gpu_class(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .filter(|w| !VENDOR_WORDS.contains(w))
        .filter(|w| !is_form_factor(w))
        .collect();
    if words.is_empty() || words == ["cpu"] {
        CPU_MARKET.to_string()
    } else {
        words.join("-")
    }
}

fn is_form_factor(word: &str) -> bool {
    let digits_then = |suffix: &str| {
        word.strip_suffix(suffix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let then_digits = |prefix: &str| {
        word.strip_prefix(prefix)
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    };
    digits_then("gb")
        || digits_then("g")
        || word == "pcie"
        || then_digits("sxm")
        || then_digits("hbm")
        || word == "nvl"
}

/// Groups nodes by market, markets sorted by name, nodes by id.
pub fn markets(nodes: &[NodeView]) -> Vec<MarketView> {
    let mut by_market: BTreeMap<&str, MarketView> = BTreeMap::new();
    for node in nodes {
        let market = by_market
            .entry(node.market.as_str())
            .or_insert_with(|| MarketView {
                market: node.market.clone(),
                online: 0,
                total: 0,
                nodes: Vec::new(),
            });
        market.total += 1;
        if node.state == NodeState::Online {
            market.online += 1;
        }
        market.nodes.push(node.node_id);
    }
    by_market
        .into_values()
        .map(|mut market| {
            market.nodes.sort();
            market
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_names_normalise_to_classes() {
        for (name, class) in [
            ("NVIDIA GeForce RTX 4090", "rtx-4090"),
            ("NVIDIA GeForce RTX 3060 Ti", "rtx-3060-ti"),
            ("NVIDIA H100 80GB HBM3", "h100"),
            ("NVIDIA H100 PCIe", "h100"),
            ("NVIDIA H200", "h200"),
            ("NVIDIA A100-SXM4-40GB", "a100"),
            ("Tesla T4", "t4"),
            ("NVIDIA RTX A6000", "rtx-a6000"),
            ("NVIDIA L40S", "l40s"),
            ("AMD Radeon RX 7900 XTX", "rx-7900-xtx"),
            ("rtx-4090", "rtx-4090"),
            ("CPU", "cpu"),
            ("", "cpu"),
        ] {
            assert_eq!(gpu_class(name), class, "{name}");
        }
    }

    #[test]
    fn the_benchmark_chooses_before_the_gpu_list() {
        let gpus = [GpuInfo {
            name: "NVIDIA GeForce RTX 4090".into(),
            memory_total_bytes: 0,
            uuid: None,
        }];
        let bench = serde_json::json!({"gpu_model": "NVIDIA H100 80GB HBM3"});
        assert_eq!(market_for(Some(&bench), &gpus), "h100");
        assert_eq!(market_for(Some(&serde_json::json!({})), &gpus), "rtx-4090");
        assert_eq!(market_for(None, &[]), "cpu");
    }
}
