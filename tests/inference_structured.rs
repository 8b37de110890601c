//! Structured output and tool calls on the real SmolLM2-135M-Instruct GGUF,
//! served by the worker and driven with the official `openai` client
//! (tests/reference/structured_output_check.py): json_object, 20
//! json_schema answers validated by `jsonschema`, a streamed schema answer
//! and a tool call round trip. Skipped without the model or the venv unless
//! `GARAGE_REQUIRE_SMOLLM2=1` / `GARAGE_REQUIRE_REFERENCE=1` (CI).

mod common;

use std::time::Duration;

use common::worker;
use garage::inference::WorkerConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_answers_schemas_and_calls_tools() {
    let (Some(python), Some(gguf)) = (common::python(), common::smollm2_gguf()) else {
        return;
    };
    let worker = worker::serve(
        |addr| {
            let mut config = WorkerConfig::new(addr, gguf);
            config.max_batch = 4;
            config.queue_capacity = 8;
            config
        },
        Duration::from_secs(60),
    )
    .await;
    worker::run_check(&python, "structured_output_check.py", &worker.base()).await;
    worker.stop().await;
}
