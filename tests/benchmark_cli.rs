//! `garage benchmark` as a user runs it: the built binary, `--quick`, the
//! JSON report on stdout checked for sane figures, progress on stderr, and
//! the table's "no GPU" on a host without NVML. The model run needs the
//! SmolLM2 GGUF (skipped without it unless `GARAGE_REQUIRE_SMOLLM2=1`).

mod common;

use std::process::{Command, Output};

use garage::benchmark::{BenchmarkReport, InferenceReport, SCHEMA_VERSION};

fn garage(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run garage");
    assert!(
        out.status.success(),
        "garage {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn report(args: &[&str]) -> (BenchmarkReport, String) {
    let out = garage(args);
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (report, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether NVML answers with at least one GPU on this host.
fn host_has_gpu() -> bool {
    garage::gpu::telemetry::sample_host().is_ok_and(|host| !host.gpus.is_empty())
}

#[test]
fn quick_json_report_has_sane_figures() {
    let (report, stderr) = report(&["benchmark", "--quick", "--json", "--device", "cpu"]);
    assert_eq!(report.schema_version, SCHEMA_VERSION);
    assert!(report.quick);
    let host = &report.host;
    assert!(host.cpu_threads >= 1 && host.cpu_available >= 1, "{host:?}");
    assert!(host.memory_total_bytes > 0, "{host:?}");
    assert!(host.memory_available_bytes <= host.memory_total_bytes);
    let disk = host.disk.as_ref().expect("free disk");
    assert!(disk.free_bytes <= disk.total_bytes && disk.total_bytes > 0);
    let compute = &report.compute;
    assert!(
        compute.memory_bandwidth.gb_per_s > 0.1,
        "{:?}",
        compute.memory_bandwidth
    );
    assert!(
        compute.matmul_f32.gflop_per_s > 0.1,
        "{:?}",
        compute.matmul_f32
    );
    assert!(
        matches!(&report.inference, InferenceReport::Skipped { reason } if reason.contains("--model")),
        "{:?}",
        report.inference
    );
    if !host_has_gpu() {
        assert!(report.gpus.is_empty(), "{:?}", report.gpus);
        assert!(report.no_gpu_reason.is_some());
        assert_eq!(report.class, "cpu");
    }
    for step in ["==> reading host facts", "==> measuring memory bandwidth"] {
        assert!(stderr.contains(step), "progress {step:?} missing: {stderr}");
    }
}

#[test]
fn quick_table_says_no_gpu_on_a_cpu_only_host() {
    let out = garage(&["benchmark", "--quick", "--device", "cpu"]);
    let table = String::from_utf8(out.stdout).expect("utf8");
    for row in ["host\n", "  memory bandwidth", "  matmul f32", "inference"] {
        assert!(table.contains(row), "{row:?} missing:\n{table}");
    }
    assert!(
        !table.contains("==>"),
        "progress belongs on stderr:\n{table}"
    );
    if host_has_gpu() {
        assert!(table.contains("gpu 0"), "{table}");
    } else {
        assert!(table.contains("no GPU"), "{table}");
    }
}

#[test]
fn a_missing_model_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_garage"))
        .args(["benchmark", "--quick", "--model", "/nonexistent/model.gguf"])
        .output()
        .expect("run garage");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/model.gguf: no such model"),
        "{stderr}"
    );
}

#[test]
fn quick_run_with_smollm2_measures_tokens_per_second() {
    let Some(model) = common::smollm2_gguf() else {
        return;
    };
    let model = model.to_str().expect("utf8 path");
    let (report, _) = report(&[
        "benchmark",
        "--quick",
        "--json",
        "--device",
        "cpu",
        "--model",
        model,
    ]);
    let InferenceReport::Measured(run) = &report.inference else {
        panic!("no inference figures: {:?}", report.inference);
    };
    assert_eq!(run.model, "SmolLM2-135M-Instruct.Q4_1");
    assert!(run.prompt_tokens > 0 && run.decode_tokens > 0, "{run:?}");
    assert!(run.time_to_first_token_ms > 0.0, "{run:?}");
    assert!(run.prefill_tokens_per_s > 0.0, "{run:?}");
    assert!(run.decode_tokens_per_s > 0.0, "{run:?}");
}
