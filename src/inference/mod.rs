//! The inference worker (`garage worker`): Llama-architecture models from a
//! Hugging Face directory or a GGUF file, run on burn (CPU, or CUDA behind
//! the `cuda` feature), served over an OpenAI-compatible HTTP API.
//!
//! Data flow: [`loader`] ([`hf`], [`gguf`]) → [`checkpoint`] → [`model`] on a
//! [`backend`] → engine (batching scheduler with [`sampler`] ([`penalties`]),
//! [`logprobs`], [`stop`] and [`grammar`] for structured output)
//! → server (OpenAI routes, SSE) with metrics.

pub mod backend;
pub mod chat_template;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod engine;
pub mod gguf;
pub mod grammar;
pub mod hf;
pub mod hub;
pub mod loader;
pub mod logprobs;
pub mod metrics;
pub mod model;
pub mod penalties;
pub mod sampler;
pub mod server;
pub mod shard_name;
pub mod stop;
pub mod tokenizer;
pub mod weights;

pub use cli::WorkerArgs;
pub use server::{serve, serve_with_listener, WorkerConfig, WorkerError};
