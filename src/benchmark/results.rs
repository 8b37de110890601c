//! The benchmark report: typed and serde-serialisable for the coordinator
//! (`--json`, versioned by [`SCHEMA_VERSION`]), and a fixed-layout table for
//! people. Field names and table rows change only with the schema version.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::compute::{Bandwidth, Matmul};
use super::host::HostFacts;
use super::inference::InferenceRun;
use crate::gpu::telemetry::GpuHost;
use crate::gpu::{class, telemetry::GpuSample};
use crate::inference::backend::BackendKind;

/// Version of the report's JSON layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `garage benchmark` measured on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkReport {
    pub schema_version: u32,
    /// The garage version that measured.
    pub garage_version: String,
    /// When the benchmark started, RFC 3339 UTC.
    pub started_at: String,
    /// Whether the small `--quick` sizes were used (figures are rougher).
    pub quick: bool,
    /// The node's market class: the first GPU's class, or `cpu`.
    pub class: String,
    pub host: HostFacts,
    pub gpus: Vec<GpuFacts>,
    /// Why there is no GPU (NVML's answer), when `gpus` is empty.
    pub no_gpu_reason: Option<String>,
    pub compute: ComputeReport,
    pub inference: InferenceReport,
}

/// One GPU as NVML describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuFacts {
    pub index: u32,
    pub name: String,
    /// The market class of the model, e.g. `rtx-4090`.
    pub class: String,
    pub uuid: String,
    pub memory_total_bytes: Option<u64>,
    /// `major.minor`, e.g. `9.0`.
    pub compute_capability: Option<String>,
    pub driver_version: Option<String>,
    /// `major.minor` of the CUDA driver API.
    pub cuda_version: Option<String>,
}

impl GpuFacts {
    /// The facts of every GPU in an NVML sample.
    pub fn from_host(host: &GpuHost) -> Vec<GpuFacts> {
        host.gpus
            .iter()
            .map(|gpu: &GpuSample| GpuFacts {
                index: gpu.index,
                name: gpu.name.clone(),
                class: class::gpu_class(&gpu.name),
                uuid: gpu.uuid.clone(),
                memory_total_bytes: gpu.memory_total_bytes,
                compute_capability: gpu.compute_capability.clone(),
                driver_version: host.driver_version.clone(),
                cuda_version: host.cuda_version.clone(),
            })
            .collect()
    }
}

/// The compute probes on the backend the device choice resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeReport {
    pub backend: BackendKind,
    /// burn's name of the backend, e.g. `flex`.
    pub backend_name: String,
    pub memory_bandwidth: Bandwidth,
    pub matmul_f32: Matmul,
}

/// The inference probe, or why it did not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InferenceReport {
    /// No model was given or found; not an error.
    Skipped {
        reason: String,
    },
    Measured(InferenceRun),
}

const GIB: f64 = (1u64 << 30) as f64;

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB)
}

/// Writes one `label  value` row; labels are padded to one column.
fn row(out: &mut String, label: &str, value: impl fmt::Display) {
    let _ = writeln!(out, "{label:<22} {value}");
}

impl BenchmarkReport {
    /// The human table: the same rows in the same order on every host.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let h = &self.host;
        let _ = writeln!(
            out,
            "Garage AI benchmark (garage {}, report schema {}{})",
            self.garage_version,
            self.schema_version,
            if self.quick { ", quick" } else { "" }
        );
        out.push_str("host\n");
        let cores = h
            .cpu_cores
            .map_or(String::new(), |c| format!("{c} cores, "));
        row(
            &mut out,
            "  cpu",
            format_args!(
                "{} ({cores}{} threads, {} available)",
                h.cpu_model, h.cpu_threads, h.cpu_available
            ),
        );
        row(
            &mut out,
            "  memory",
            format_args!(
                "{} total, {} available",
                gib(h.memory_total_bytes),
                gib(h.memory_available_bytes)
            ),
        );
        match &h.disk {
            Some(d) => row(
                &mut out,
                "  disk",
                format_args!(
                    "{} free of {} on {}",
                    gib(d.free_bytes),
                    gib(d.total_bytes),
                    d.path.display()
                ),
            ),
            None => row(&mut out, "  disk", "unknown"),
        }
        row(
            &mut out,
            "  system",
            format_args!("{}, Linux {}", h.arch, h.kernel.as_deref().unwrap_or("?")),
        );
        if self.gpus.is_empty() {
            row(
                &mut out,
                "gpu",
                format_args!(
                    "no GPU ({})",
                    self.no_gpu_reason.as_deref().unwrap_or("none found")
                ),
            );
        }
        for g in &self.gpus {
            let optional = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
            row(
                &mut out,
                &format!("gpu {}", g.index),
                format_args!("{} ({})", g.name, g.uuid),
            );
            row(
                &mut out,
                "  memory",
                g.memory_total_bytes.map_or("?".into(), gib),
            );
            row(
                &mut out,
                "  compute capability",
                optional(&g.compute_capability),
            );
            row(
                &mut out,
                "  driver",
                format_args!(
                    "{}, CUDA {}",
                    optional(&g.driver_version),
                    optional(&g.cuda_version)
                ),
            );
        }
        row(&mut out, "class", &self.class);
        let c = &self.compute;
        row(
            &mut out,
            "compute",
            format_args!("{} ({})", c.backend.as_str(), c.backend_name),
        );
        let bw = &c.memory_bandwidth;
        row(
            &mut out,
            "  memory bandwidth",
            format_args!(
                "{:.1} GB/s (a += b over {} MiB tensors, best of {})",
                bw.gb_per_s,
                bw.tensor_bytes >> 20,
                bw.runs
            ),
        );
        let mm = &c.matmul_f32;
        row(
            &mut out,
            "  matmul f32",
            format_args!(
                "{:.1} GFLOP/s ({n}×{n}, best of {})",
                mm.gflop_per_s,
                mm.runs,
                n = mm.n
            ),
        );
        match &self.inference {
            InferenceReport::Skipped { reason } => {
                row(&mut out, "inference", format_args!("no model ({reason})"));
            }
            InferenceReport::Measured(run) => {
                row(&mut out, "inference", &run.model);
                row(
                    &mut out,
                    "  load",
                    format_args!("{:.2} s", run.load_seconds),
                );
                row(
                    &mut out,
                    "  time to first token",
                    format_args!(
                        "{:.1} ms ({}-token prompt)",
                        run.time_to_first_token_ms, run.prompt_tokens
                    ),
                );
                row(
                    &mut out,
                    "  prefill",
                    format_args!("{:.1} tokens/s", run.prefill_tokens_per_s),
                );
                row(
                    &mut out,
                    "  decode",
                    format_args!(
                        "{:.1} tokens/s ({} tokens, greedy, batch 1)",
                        run.decode_tokens_per_s, run.decode_tokens
                    ),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::benchmark::host::DiskFacts;

    fn report(gpus: Vec<GpuFacts>, inference: InferenceReport) -> BenchmarkReport {
        BenchmarkReport {
            schema_version: SCHEMA_VERSION,
            garage_version: "0.1.0".into(),
            started_at: "2026-11-25T20:00:00Z".into(),
            quick: false,
            class: class::host_class(gpus.iter().map(|g| g.name.as_str())),
            host: HostFacts {
                cpu_model: "AMD EPYC 7B13".into(),
                cpu_threads: 2,
                cpu_cores: None,
                cpu_available: 2,
                memory_total_bytes: 24 << 30,
                memory_available_bytes: 20 << 30,
                disk: Some(DiskFacts {
                    path: PathBuf::from("/var/lib/docker"),
                    total_bytes: 250 << 30,
                    free_bytes: 78 << 30,
                }),
                arch: "x86_64".into(),
                kernel: Some("6.1.0".into()),
            },
            no_gpu_reason: gpus
                .is_empty()
                .then(|| "NVML not available: a shared library was not found".into()),
            gpus,
            compute: ComputeReport {
                backend: BackendKind::Cpu,
                backend_name: "flex".into(),
                memory_bandwidth: Bandwidth {
                    gb_per_s: 12.345_678_9,
                    tensor_bytes: 256 << 20,
                    runs: 5,
                },
                matmul_f32: Matmul {
                    gflop_per_s: 85.21,
                    n: 2048,
                    runs: 5,
                },
            },
            inference,
        }
    }

    fn h100() -> GpuFacts {
        GpuFacts {
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            class: "h100".into(),
            uuid: "GPU-0f1e2d3c".into(),
            memory_total_bytes: Some(80 << 30),
            compute_capability: Some("9.0".into()),
            driver_version: Some("550.54.15".into()),
            cuda_version: Some("12.4".into()),
        }
    }

    fn measured() -> InferenceReport {
        InferenceReport::Measured(InferenceRun {
            model: "SmolLM2-135M-Instruct.Q4_1".into(),
            path: PathBuf::from(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            load_seconds: 0.4,
            prompt_tokens: 128,
            decode_tokens: 32,
            time_to_first_token_ms: 85.3,
            prefill_tokens_per_s: 1500.6,
            decode_tokens_per_s: 45.12,
        })
    }

    #[test]
    fn json_round_trips_with_and_without_gpus_and_model() {
        for r in [
            report(
                Vec::new(),
                InferenceReport::Skipped {
                    reason: "pass --model PATH".into(),
                },
            ),
            report(vec![h100()], measured()),
        ] {
            let json = serde_json::to_string(&r).expect("serialise");
            let back: BenchmarkReport = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, r);
        }
    }

    #[test]
    fn json_names_the_schema_version_and_tags_the_inference_status() {
        let value = serde_json::to_value(report(Vec::new(), measured())).expect("json");
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["class"], "cpu");
        assert_eq!(value["compute"]["backend"], "cpu");
        assert_eq!(value["inference"]["status"], "measured");
        assert_eq!(value["inference"]["decode_tokens_per_s"], 45.12);
    }

    #[test]
    fn the_table_says_no_gpu_on_a_cpu_host() {
        let text = report(
            Vec::new(),
            InferenceReport::Skipped {
                reason: "pass --model PATH".into(),
            },
        )
        .render();
        let expected = "\
Garage AI benchmark (garage 0.1.0, report schema 1)
host
  cpu                  AMD EPYC 7B13 (2 threads, 2 available)
  memory               24.0 GiB total, 20.0 GiB available
  disk                 78.0 GiB free of 250.0 GiB on /var/lib/docker
  system               x86_64, Linux 6.1.0
gpu                    no GPU (NVML not available: a shared library was not found)
class                  cpu
compute                cpu (flex)
  memory bandwidth     12.3 GB/s (a += b over 256 MiB tensors, best of 5)
  matmul f32           85.2 GFLOP/s (2048×2048, best of 5)
inference              no model (pass --model PATH)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn the_table_lists_gpus_and_inference_figures() {
        let text = report(vec![h100()], measured()).render();
        for line in [
            "gpu 0                  NVIDIA H100 80GB HBM3 (GPU-0f1e2d3c)\n",
            "  memory               80.0 GiB\n",
            "  compute capability   9.0\n",
            "  driver               550.54.15, CUDA 12.4\n",
            "class                  h100\n",
            "inference              SmolLM2-135M-Instruct.Q4_1\n",
            "  time to first token  85.3 ms (128-token prompt)\n",
            "  decode               45.1 tokens/s (32 tokens, greedy, batch 1)\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(!text.contains("no GPU"), "{text}");
    }
}
