//! The worker's HTTP server: binds first (so `/healthz` answers during the
//! model load), loads the model on a blocking thread, then serves the
//! OpenAI-compatible API (completions, chat, embeddings, models), `/readyz`
//! (200 once loaded) and `/metrics`.

mod embeddings;
mod error;
mod handlers;
pub mod openai;
mod stream;
mod structured;
mod tools;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;
use burn::tensor::backend::Backend;

pub use self::error::ApiError;
use crate::http_server;
use crate::inference::backend::{self, BackendKind, DeviceChoice, OnBackend};
use crate::inference::chat_template::ChatTemplate;
use crate::inference::config::DEFAULT_MAX_CONTEXT;
use crate::inference::engine::{self, EngineConfig, EngineHandle, EngineModel};
use crate::inference::grammar::{GrammarError, Grammars};
use crate::inference::hub::{self, HubError, HubOptions, ModelRef};
use crate::inference::loader::{self, LoadError};
use crate::inference::metrics::Metrics;
use crate::inference::model::Llama;
use crate::inference::tokenizer::TextTokenizer;
use crate::inference::weights::WeightError;

/// Prompt tokens a forward pass takes while others decode, by default.
pub const DEFAULT_PREFILL_CHUNK: usize = 8;

/// What `garage worker` is asked to run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub listen: SocketAddr,
    /// A Hugging Face model directory or a `.gguf` file, here or on the hub.
    pub model: ModelRef,
    /// Where hub models are cached (default: Hugging Face's own cache).
    pub model_cache: Option<PathBuf>,
    pub device: DeviceChoice,
    /// Sequences decoded together per forward pass.
    pub max_batch: usize,
    /// Requests waiting for a slot before new ones get 429.
    pub queue_capacity: usize,
    /// Prompt tokens a forward pass takes while others decode (0: no limit).
    pub prefill_chunk: usize,
    /// Caps the model's context (prompt + completion tokens) and the rotary
    /// tables sized from it; `None` means [`DEFAULT_MAX_CONTEXT`].
    pub max_context: Option<usize>,
    /// The id `/v1/models` reports; default: the directory or file name.
    pub model_name: Option<String>,
    /// Where CUDA keeps compiled kernels across restarts (default: the
    /// system cache directory). Unused on the CPU.
    pub kernel_cache: Option<PathBuf>,
}

impl WorkerConfig {
    /// A local model with the defaults: automatic device, batches of 8, 64
    /// queued requests.
    pub fn new(listen: SocketAddr, model: PathBuf) -> Self {
        WorkerConfig {
            listen,
            model: ModelRef::Local(model),
            model_cache: None,
            device: DeviceChoice::Auto,
            max_batch: 8,
            queue_capacity: 64,
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
            max_context: None,
            model_name: None,
            kernel_cache: None,
        }
    }
}

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("fetching the model")]
    Fetch(#[from] HubError),
    #[error("loading the model")]
    Load(#[from] LoadError),
    #[error("building the model from its weights")]
    Weights(#[from] WeightError),
    #[error("starting the scheduler thread")]
    Thread(#[source] std::io::Error),
    #[error("the model loader panicked or was cancelled")]
    LoaderCrashed,
}

/// The loaded model, as the handlers see it.
#[derive(Debug)]
pub struct Loaded {
    pub engine: EngineHandle,
    pub tokenizer: Arc<TextTokenizer>,
    pub template: Option<ChatTemplate>,
    pub model_name: String,
    pub max_context: usize,
    /// Rows of the embedding: token ids at or above it are refused.
    pub vocab_size: usize,
    /// Constraints for structured output and tool calls (an error, answered
    /// to such requests, where the vocabulary cannot be read as bytes).
    pub grammars: Result<Grammars, GrammarError>,
}

#[derive(Debug, Clone)]
pub struct AppState {
    loaded: Arc<OnceLock<Loaded>>,
    metrics: Arc<Metrics>,
    created: u64,
}

impl AppState {
    fn loaded(&self) -> Result<&Loaded, ApiError> {
        self.loaded.get().ok_or_else(ApiError::not_ready)
    }
}

/// The router over `state` (exposed for tests that bring their own listener).
/// Completions stream and may generate for minutes, so only the other
/// routes have the per-request deadline.
pub fn router(state: AppState) -> Router {
    let quick = Router::new()
        .route("/v1/models", get(handlers::models))
        .route("/v1/models/{id}", get(handlers::model))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics));
    Router::new()
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .merge(http_server::with_request_timeout(
            quick,
            http_server::REQUEST_TIMEOUT,
        ))
        .fallback(|uri: Uri| async move { ApiError::no_route(&uri) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::wrong_method(&method, &uri)
        })
        .with_state(state)
}

fn build<B: Backend>(
    config: &WorkerConfig,
    path: &Path,
    device: B::Device,
    metrics: Arc<Metrics>,
) -> Result<(Loaded, JoinHandle<()>), WorkerError> {
    let mut cp = loader::load(path)?;
    let max_context = cp
        .config
        .cap_context(config.max_context.unwrap_or(DEFAULT_MAX_CONTEXT));
    let model = Llama::<B>::from_weights(&cp.config, &mut cp.weights, &device)?;
    let tokenizer = Arc::new(cp.tokenizer);
    let grammars = Grammars::new(tokenizer.clone(), cp.config.vocab_size);
    if let Err(e) = &grammars {
        tracing::warn!(error = %e, "structured output and tool calls are unavailable");
    }
    let model_name = config
        .model_name
        .clone()
        .unwrap_or_else(|| match &config.model {
            ModelRef::Hub(m) => m.repo.clone(),
            ModelRef::Local(_) => cp.name.clone(),
        });
    let (engine, thread) = engine::spawn(
        EngineModel {
            model,
            tokenizer: tokenizer.clone(),
            name: model_name.clone(),
            max_context,
        },
        EngineConfig {
            queue_capacity: config.queue_capacity,
            max_batch: config.max_batch,
            prefill_chunk: config.prefill_chunk,
        },
        metrics,
    )
    .map_err(WorkerError::Thread)?;
    let loaded = Loaded {
        engine,
        tokenizer,
        template: cp.chat_template,
        model_name,
        max_context,
        vocab_size: cp.config.vocab_size,
        grammars,
    };
    Ok((loaded, thread))
}

/// [`build`] as work for [`backend::run_on`].
struct Build<'a> {
    config: &'a WorkerConfig,
    path: &'a Path,
    metrics: Arc<Metrics>,
}

impl OnBackend for Build<'_> {
    type Output = Result<(Loaded, JoinHandle<()>), WorkerError>;

    fn run<B: Backend>(self, device: B::Device, _kind: BackendKind) -> Self::Output {
        build::<B>(self.config, self.path, device, self.metrics)
    }
}

/// Loads the model at `path` (the resolved `config.model`) on the
/// configured device (CPU when CUDA is unavailable).
pub fn load(
    config: &WorkerConfig,
    path: &Path,
    metrics: Arc<Metrics>,
) -> Result<(Loaded, JoinHandle<()>), WorkerError> {
    backend::run_on(
        config.device,
        config.kernel_cache.as_deref(),
        Build {
            config,
            path,
            metrics,
        },
    )
}

/// Serves the worker on `config.listen` until `shutdown` resolves, then
/// drains open requests. Returns an error when binding fails or the model
/// cannot be loaded.
pub async fn serve(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| WorkerError::Bind {
            addr: config.listen,
            source,
        })?;
    serve_with_listener(listener, config, shutdown).await
}

/// [`serve`] on an already bound listener (`config.listen` is not used).
pub async fn serve_with_listener(
    listener: tokio::net::TcpListener,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    tracing::info!(model = %config.model, "worker listening");
    let metrics = Arc::new(Metrics::new());
    let created = crate::clock::unix_secs();
    let state = AppState {
        loaded: Arc::new(OnceLock::new()),
        metrics: metrics.clone(),
        created,
    };
    let cell = state.loaded.clone();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<WorkerError>();
    let loader = tokio::spawn(async move {
        let options = HubOptions::from_env(config.model_cache.clone());
        let path = match hub::resolve(&config.model, &options).await {
            Ok(path) => path,
            Err(e) => {
                let _ = failed_tx.send(e.into());
                return None;
            }
        };
        let loaded = tokio::task::spawn_blocking(move || load(&config, &path, metrics))
            .await
            .unwrap_or(Err(WorkerError::LoaderCrashed));
        match loaded {
            Ok((loaded, thread)) => {
                tracing::info!(model = %loaded.model_name, "model loaded, ready");
                // The cell is set once, here; a second set cannot happen.
                let _ = cell.set(loaded);
                Some(thread)
            }
            Err(e) => {
                let _ = failed_tx.send(e);
                None
            }
        }
    });
    let failed = Arc::new(std::sync::Mutex::new(None));
    let failed_slot = failed.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            Ok(e) = failed_rx => {
                if let Ok(mut slot) = failed_slot.lock() {
                    *slot = Some(e);
                }
            }
        }
    };
    http_server::serve(
        listener,
        router(state),
        http_server::ServerLimits::for_this_process(),
        stop,
    )
    .await;
    // The router (and with it every engine handle) is gone: the scheduler
    // thread sees its queue close and ends.
    let thread = loader.await.map_err(|_| WorkerError::LoaderCrashed)?;
    if let Some(e) = failed.lock().ok().and_then(|mut s| s.take()) {
        return Err(e);
    }
    if let Some(thread) = thread {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    Ok(())
}
