//! The scheduler thread: admits queued requests into the active batch, runs
//! one batched forward pass per iteration, samples, detokenizes, checks stop
//! conditions and streams events back. Runs on its own OS thread because a
//! forward pass is long, blocking CPU/GPU work.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use burn::tensor::backend::Backend;
use tokio::sync::mpsc;

use super::prefill;
use super::{
    EmbedRequest, EngineConfig, EngineHandle, Event, GenerationRequest, TokenLogprob, Work,
};
use crate::inference::grammar::GrammarError;
use crate::inference::logprobs;
use crate::inference::metrics::{Finish, Metrics, ModelMetrics};
use crate::inference::model::{KvCache, Llama, SeqStep};
use crate::inference::sampler::Sampler;
use crate::inference::stop::{FinishReason, StopChecker};
use crate::inference::tokenizer::{Detokenizer, TextTokenizer};

/// The model and tokenizer the scheduler owns.
#[derive(Debug)]
pub struct EngineModel<B: Backend> {
    pub model: Llama<B>,
    pub tokenizer: Arc<TextTokenizer>,
    /// The served model's name (the metrics' `model` label).
    pub name: String,
    /// Tokens one sequence may hold (prompt and completion).
    pub max_context: usize,
}

struct Active<B: Backend> {
    req: GenerationRequest,
    cache: KvCache<B>,
    /// Prompt tokens fed so far; the sequence decodes once all are.
    fed: usize,
    /// The last sampled token, fed next pass while decoding.
    next_input: Vec<u32>,
    generated: usize,
    sampler: Sampler,
    detok: Detokenizer,
    stop: StopChecker,
    /// When it joined the batch.
    joined: Instant,
    first_token_at: Option<Instant>,
    last_token_at: Option<Instant>,
}

/// Starts the scheduler thread; it ends when every handle is dropped.
pub fn spawn<B: Backend>(
    engine: EngineModel<B>,
    config: EngineConfig,
    metrics: Arc<Metrics>,
) -> std::io::Result<(EngineHandle, JoinHandle<()>)> {
    let capacity = config.queue_capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    metrics
        .queue_capacity
        .set(i64::try_from(capacity).unwrap_or(i64::MAX));
    let handle = EngineHandle {
        queue: tx,
        metrics: metrics.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("inference-scheduler".into())
        .spawn(move || run(engine, config, rx, &metrics))?;
    Ok((handle, thread))
}

/// What the scheduler counts: the worker's metrics and its model's.
struct Meters<'a> {
    all: &'a Metrics,
    model: ModelMetrics,
}

fn admit<B: Backend>(req: GenerationRequest, model: &Llama<B>, meters: &Meters<'_>) -> Active<B> {
    let metrics = meters.all;
    metrics.queue_depth.dec();
    metrics.active_sequences.inc();
    metrics.prompt_tokens.inc_by(req.prompt_ids.len() as u64);
    let joined = Instant::now();
    meters
        .model
        .queue_time
        .observe((joined - req.admitted).as_secs_f64());
    meters
        .model
        .prompt_length
        .observe(req.prompt_ids.len() as f64);
    Active {
        joined,
        first_token_at: None,
        cache: model.new_cache(),
        fed: 0,
        next_input: Vec::new(),
        generated: 0,
        sampler: Sampler::new(req.sampling.clone(), &req.prompt_ids),
        detok: Detokenizer::default(),
        stop: StopChecker::new(req.stop.clone()),
        last_token_at: None,
        req,
    }
}

/// Embeds every input of `req` at once (between two passes) and answers.
fn embed<B: Backend>(req: EmbedRequest, model: &Llama<B>, metrics: &Metrics) {
    metrics.queue_depth.dec();
    let vectors = req
        .inputs
        .iter()
        .map(|tokens| model.embedding(tokens))
        .collect();
    metrics
        .prompt_tokens
        .inc_by(req.inputs.iter().map(Vec::len).sum::<usize>() as u64);
    let _ = req.reply.send(vectors);
}

/// Takes one piece of work off the queue: a generation joins the batch, an
/// embedding runs now.
fn accept<B: Backend>(
    work: Work,
    active: &mut Vec<Active<B>>,
    engine: &EngineModel<B>,
    meters: &Meters<'_>,
) {
    match work {
        Work::Generate(req) => active.push(admit(req, &engine.model, meters)),
        Work::Embed(req) => embed(req, &engine.model, meters.all),
    }
}

fn run<B: Backend>(
    engine: EngineModel<B>,
    config: EngineConfig,
    mut rx: mpsc::Receiver<Work>,
    metrics: &Metrics,
) {
    let meters = Meters {
        all: metrics,
        model: metrics.for_model(&engine.name),
    };
    let kv_capacity = (config.max_batch.max(1) * engine.max_context.max(1)) as f64;
    let mut active: Vec<Active<B>> = Vec::new();
    loop {
        if active.is_empty() {
            match rx.blocking_recv() {
                Some(work) => accept(work, &mut active, &engine, &meters),
                None => return,
            }
        }
        while active.len() < config.max_batch.max(1) {
            match rx.try_recv() {
                Ok(work) => accept(work, &mut active, &engine, &meters),
                Err(_) => break,
            }
        }
        // A closed event channel means the client went away: free its slot.
        active.retain(|seq| {
            let open = !seq.req.events.is_closed();
            if !open {
                metrics.active_sequences.dec();
                meters.model.finished(Finish::Cancelled);
            }
            open
        });
        if active.is_empty() {
            meters.model.kv_cache_usage.set(0.0);
            continue;
        }
        step(&engine, &mut active, &meters, config.prefill_chunk);
        let held: usize = active
            .iter()
            .map(|seq| seq.req.prompt_ids.len() + seq.generated)
            .sum();
        meters.model.kv_cache_usage.set(held as f64 / kv_capacity);
    }
}

/// The next token of `seq` from its logits `row`: sampled among the
/// tokens its grammar allows, which then moves past it.
fn choose<B: Backend>(
    seq: &mut Active<B>,
    row: &[f32],
    tokenizer: &TextTokenizer,
) -> Result<u32, GrammarError> {
    let Some(constraint) = seq.req.constraint.as_mut() else {
        return Ok(seq.sampler.sample(row));
    };
    let mut allowed = row.to_vec();
    constraint.mask(&mut allowed)?;
    let token = seq.sampler.sample(&allowed);
    if !tokenizer.is_eos(token) {
        constraint.accept(token)?;
    }
    Ok(token)
}

/// One forward pass over the active sequences (prompts in chunks of
/// `prefill_chunk` while others decode), then sampling and events for
/// every sequence whose prompt is fully fed.
fn step<B: Backend>(
    engine: &EngineModel<B>,
    active: &mut Vec<Active<B>>,
    meters: &Meters<'_>,
    prefill_chunk: usize,
) {
    let metrics = meters.all;
    let pending: Vec<usize> = active
        .iter()
        .map(|seq| seq.req.prompt_ids.len() - seq.fed)
        .collect();
    let feeds = prefill::plan(&pending, prefill_chunk);
    // The sequences in this pass, in order: their logits rows follow it.
    let taking: Vec<usize> = (0..active.len()).filter(|&i| feeds[i] > 0).collect();
    metrics.batch_size.observe(taking.len() as f64);
    let logits = {
        let mut steps: Vec<SeqStep<'_, B>> = active
            .iter_mut()
            .zip(&feeds)
            .filter(|(_, &feed)| feed > 0)
            .map(|(seq, &feed)| {
                let tokens = if seq.fed < seq.req.prompt_ids.len() {
                    &seq.req.prompt_ids[seq.fed..seq.fed + feed]
                } else {
                    &seq.next_input[..]
                };
                SeqStep {
                    tokens,
                    cache: &mut seq.cache,
                }
            })
            .collect();
        engine.model.forward(&mut steps)
    };
    for (&i, &feed) in taking.iter().zip(feeds.iter().filter(|&&f| f > 0)) {
        let seq = &mut active[i];
        if seq.fed < seq.req.prompt_ids.len() {
            seq.fed += feed;
        }
    }
    let vocab = logits.dims()[1];
    let rows: Vec<f32> = match logits.into_data().to_vec() {
        Ok(rows) => rows,
        Err(e) => {
            for seq in active.drain(..) {
                let _ = seq
                    .req
                    .events
                    .send(Event::Failed(format!("reading logits: {e:?}")));
                metrics.active_sequences.dec();
                meters.model.finished(Finish::Error);
            }
            return;
        }
    };
    let now = Instant::now();
    let mut finished = Vec::new();
    for (row_index, &i) in taking.iter().enumerate() {
        let seq = &mut active[i];
        if seq.fed < seq.req.prompt_ids.len() {
            // Mid-prefill: this row's logits are of a prompt token.
            continue;
        }
        let row = &rows[row_index * vocab..(row_index + 1) * vocab];
        let token = match choose(seq, row, &engine.tokenizer) {
            Ok(token) => token,
            Err(e) => {
                let _ = seq.req.events.send(Event::Failed(e.to_string()));
                meters.model.finished(Finish::Error);
                finished.push(i);
                continue;
            }
        };
        if let Some(top) = seq.req.logprobs {
            let found = logprobs::row(row, token, top);
            let name = |id: u32| engine.tokenizer.decode(&[id]).unwrap_or_default();
            let _ = seq.req.events.send(Event::Token(TokenLogprob {
                token: name(token),
                logprob: found.chosen,
                top: found.top.into_iter().map(|(id, l)| (name(id), l)).collect(),
            }));
        }
        seq.generated += 1;
        metrics.completion_tokens.inc();
        match seq.last_token_at {
            None => {
                metrics
                    .time_to_first_token
                    .observe((now - seq.req.admitted).as_secs_f64());
                meters
                    .model
                    .prefill_time
                    .observe((now - seq.joined).as_secs_f64());
                seq.first_token_at = Some(now);
            }
            Some(prev) => metrics.inter_token.observe((now - prev).as_secs_f64()),
        }
        seq.last_token_at = Some(now);
        seq.next_input = vec![token];

        let mut reason = None;
        // Text held back for a possible stop sequence is real output when
        // generation ends for any reason other than that stop sequence.
        let mut flush = false;
        let mut text = String::new();
        if engine.tokenizer.is_eos(token) {
            reason = Some(FinishReason::Stop);
            flush = true;
        } else {
            match seq.detok.push(&engine.tokenizer, token) {
                Ok(piece) => {
                    let fed = seq.stop.feed(&piece);
                    text = fed.emit;
                    if fed.stopped {
                        reason = Some(FinishReason::Stop);
                    }
                }
                Err(e) => {
                    let _ = seq.req.events.send(Event::Failed(e.to_string()));
                    meters.model.finished(Finish::Error);
                    finished.push(i);
                    continue;
                }
            }
        }
        if reason.is_none() && seq.req.constraint.as_ref().is_some_and(|c| c.is_finished()) {
            reason = Some(FinishReason::Stop);
            flush = true;
        }
        if reason.is_none() && seq.generated >= seq.req.max_tokens {
            reason = Some(FinishReason::Length);
            flush = true;
        }
        if flush {
            text.push_str(&seq.stop.flush());
        }
        if !text.is_empty() {
            let _ = seq.req.events.send(Event::Text(text));
        }
        if let Some(finish_reason) = reason {
            let model = &meters.model;
            model
                .request_duration
                .observe((now - seq.req.admitted).as_secs_f64());
            let first = seq.first_token_at.unwrap_or(now);
            model.decode_time.observe((now - first).as_secs_f64());
            model.generation_length.observe(seq.generated as f64);
            model.finished(match finish_reason {
                FinishReason::Stop => Finish::Stop,
                FinishReason::Length => Finish::Length,
            });
            let _ = seq.req.events.send(Event::Done {
                finish_reason,
                prompt_tokens: seq.req.prompt_ids.len(),
                completion_tokens: seq.generated,
            });
            finished.push(i);
        }
    }
    for i in finished.into_iter().rev() {
        active.swap_remove(i);
        metrics.active_sequences.dec();
    }
}
