//! The generation engine: a bounded request queue in front of one scheduler
//! thread that owns the model and runs continuous batching — every forward
//! pass takes the new tokens of all active sequences (prompt prefill for new
//! ones, one token for the rest), and sequences join and leave between
//! passes; long prompts are fed in chunks while others decode (`prefill`).
//! A sequence whose client went away is dropped with its KV cache. Embedding
//! requests take the queue too and run between two passes.

mod prefill;
mod scheduler;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::inference::grammar::Constraint;
use crate::inference::metrics::Metrics;
use crate::inference::sampler::SamplingParams;
use crate::inference::stop::FinishReason;

/// One generation job, validated by the server.
#[derive(Debug)]
pub struct GenerationRequest {
    pub prompt_ids: Vec<u32>,
    /// Tokens to generate at most; prompt + this fits the context.
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Report each generated token's log-probability and this many most
    /// likely alternatives (`None`: report none).
    pub logprobs: Option<usize>,
    /// The grammar the output must follow (structured output, tool calls).
    pub constraint: Option<Constraint>,
    pub events: mpsc::UnboundedSender<Event>,
    pub admitted: Instant,
}

/// Texts (as token ids) to embed; each non-empty and within the context.
#[derive(Debug)]
pub struct EmbedRequest {
    pub inputs: Vec<Vec<u32>>,
    /// One unit-length vector per input, in order.
    pub reply: tokio::sync::oneshot::Sender<Vec<Vec<f32>>>,
}

/// What the scheduler is asked to do.
#[derive(Debug)]
pub enum Work {
    Generate(GenerationRequest),
    Embed(EmbedRequest),
}

/// A generated token's log-probability in the model's distribution, and
/// the most likely tokens at that step with theirs (most likely first).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub top: Vec<(String, f32)>,
}

/// What the engine reports to a request's handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A token was generated (sent before its text, only when the request
    /// asked for log-probabilities).
    Token(TokenLogprob),
    /// New text (may be empty while a multi-byte character or a possible
    /// stop sequence is held back).
    Text(String),
    Done {
        finish_reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
    Failed(String),
}

/// Why a request was not queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    #[error("the request queue is full ({capacity} waiting)")]
    QueueFull { capacity: usize },
    #[error("the engine has stopped")]
    Stopped,
}

/// Engine limits.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Requests waiting beyond the active batch before new ones get 429.
    pub queue_capacity: usize,
    /// Sequences per forward pass.
    pub max_batch: usize,
    /// Prompt tokens one pass takes while other sequences decode (0: no
    /// limit, a prompt's whole prefill in one pass).
    pub prefill_chunk: usize,
}

/// A cheap handle for submitting requests.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    queue: mpsc::Sender<Work>,
    metrics: Arc<Metrics>,
}

impl EngineHandle {
    /// Queues `req`, or refuses at once when the queue is full.
    pub fn submit(&self, req: GenerationRequest) -> Result<(), SubmitError> {
        self.send(Work::Generate(req))
    }

    /// Queues texts to embed, or refuses at once when the queue is full.
    pub fn embed(&self, req: EmbedRequest) -> Result<(), SubmitError> {
        self.send(Work::Embed(req))
    }

    fn send(&self, work: Work) -> Result<(), SubmitError> {
        match self.queue.try_send(work) {
            Ok(()) => {
                self.metrics.queue_depth.inc();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(SubmitError::QueueFull {
                capacity: self.queue.max_capacity(),
            }),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SubmitError::Stopped),
        }
    }
}

pub use scheduler::{spawn, EngineModel};
