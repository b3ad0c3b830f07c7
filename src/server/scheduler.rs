//! The scheduler: which models are loaded, who may use them, and when they go.
//!
//! A model is loaded once however many requests ask for it (loads are serialised), each
//! loaded model serves `OLLAMA_NUM_PARALLEL` requests at a time with the rest queued (at most
//! `OLLAMA_MAX_QUEUE`, then 503), at most `OLLAMA_MAX_LOADED_MODELS` stay loaded (the least
//! recently used idle one is evicted), and an idle model is unloaded when its keep-alive runs
//! out. A request holds a [`Lease`]; dropping it (the response finished or the client left)
//! starts the keep-alive clock.

use super::error::ApiError;
use super::keep_alive::KeepAlive;
use crate::engine::gpu::{self, Footprint, Placement};
use crate::engine::{Embedder, Engine, EngineError, EngineKind, LoadOptions, WeightsGone};
use crate::gguf::Gguf;
use crate::ollama_layout;
use crate::store::Digest;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Ollama's message when the queue is full (two spaces, as Ollama writes it).
const BUSY: &str = "server busy, please try again.  maximum pending requests exceeded";

/// What a request needs loaded.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// Display name (`smollm2:latest`).
    pub name: String,
    /// The manifest digest: the model's ID in `ps`.
    pub digest: Digest,
    /// The GGUF blob.
    pub blob: PathBuf,
    pub blob_digest: Digest,
    /// The blob of the model's projector layer, if it has one.
    pub projector: Option<PathBuf>,
    /// The blob of the model's draft layer (Modelfile `DRAFT`), if it has one.
    pub draft: Option<PathBuf>,
    pub details: Value,
    pub num_ctx: usize,
    pub num_batch: usize,
    pub num_thread: usize,
    /// `num_gpu` and `main_gpu`.
    pub placement: Placement,
    pub keep_alive: KeepAlive,
}

/// What a loaded model runs on: a text engine, or llama.cpp with embeddings on for a model
/// that pools (embedding and reranking models, whichever engine runs text).
enum Loaded {
    Text(Box<Engine>),
    Embedding(Arc<Embedder>),
}

/// A loaded model.
pub struct Runner {
    pub name: String,
    pub digest: Digest,
    pub details: Value,
    pub size: u64,
    /// What the model holds on GPUs (`size_vram`).
    pub footprint: Footprint,
    pub num_ctx: usize,
    num_batch: usize,
    num_thread: usize,
    placement: Placement,
    /// The projector layer it was loaded with (two models may share a text blob but not it).
    projector: Option<PathBuf>,
    /// The draft model it was loaded with.
    draft: Option<PathBuf>,
    model: Loaded,
    blob_digest: Digest,
    permits: Arc<Semaphore>,
    active: AtomicUsize,
    state: Mutex<RunnerState>,
}

struct RunnerState {
    keep_alive: KeepAlive,
    /// When the runner became idle (None while in use).
    idle_since: Option<Instant>,
    last_used: Instant,
}

impl Runner {
    /// Whether this runner was loaded with the load-time options `request` asks for
    /// (`num_gpu` and `main_gpu` only matter where there is a GPU).
    fn fits(&self, request: &LoadRequest) -> bool {
        (
            self.num_ctx,
            self.num_batch,
            self.num_thread,
            &self.projector,
            &self.draft,
        ) == (
            request.num_ctx,
            request.num_batch,
            request.num_thread,
            &request.projector,
            &request.draft,
        ) && (self.placement == request.placement || !gpu::present())
    }

    /// The text engine; an error for an embedding model (callers check capabilities first).
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        match &self.model {
            Loaded::Text(engine) => Ok(engine),
            Loaded::Embedding(_) => Err(ApiError::bad_request(format!(
                "\"{}\" is an embedding model",
                self.name
            ))),
        }
    }

    /// The embedding or reranking model; an error for a text model.
    pub fn embedder(&self) -> Result<Arc<Embedder>, ApiError> {
        match &self.model {
            Loaded::Embedding(embedder) => Ok(embedder.clone()),
            Loaded::Text(_) => Err(ApiError::bad_request(format!(
                "\"{}\" does not support embedding",
                self.name
            ))),
        }
    }

    /// When the runner will be unloaded: far future for "forever", None while in use
    /// (reported as now + keep-alive, as Ollama does).
    pub fn expires_at(&self) -> SystemTime {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.keep_alive {
            KeepAlive::Forever => SystemTime::now() + Duration::from_secs(100 * 365 * 24 * 3600),
            KeepAlive::For(d) => {
                let elapsed = state.idle_since.map(|t| t.elapsed()).unwrap_or_default();
                SystemTime::now() + d.saturating_sub(elapsed)
            }
        }
    }

    fn expired(&self) -> bool {
        if self.active.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (state.keep_alive, state.idle_since) {
            (KeepAlive::For(d), Some(since)) => since.elapsed() >= d,
            _ => false,
        }
    }

    /// Tells when the weights of this runner, once unloaded, are freed.
    fn weights_watch(&self) -> WeightsGone {
        match &self.model {
            Loaded::Text(engine) => engine.weights_watch(),
            // Freed with the last `Arc`, which a request holds at most until it finishes.
            Loaded::Embedding(_) => WeightsGone::already(),
        }
    }

    fn is_idle(&self) -> bool {
        self.active.load(Ordering::SeqCst) == 0
    }
}

/// Permission to use a loaded model; the keep-alive clock starts when it is dropped.
pub struct Lease {
    pub runner: Arc<Runner>,
    scheduler: Arc<Inner>,
    keep_alive: KeepAlive,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let remaining = self.runner.active.fetch_sub(1, Ordering::SeqCst) - 1;
        {
            let mut state = self.runner.state.lock().unwrap_or_else(|e| e.into_inner());
            state.keep_alive = self.keep_alive;
            state.last_used = Instant::now();
            if remaining == 0 {
                state.idle_since = Some(Instant::now());
            }
        }
        if remaining == 0 && self.keep_alive.is_zero() {
            self.scheduler.unload_if_idle(&self.runner);
        }
    }
}

/// How long the server must be idle before the heap is trimmed.
const IDLE_TRIM_AFTER: Duration = Duration::from_millis(1500);
/// How long to wait for an unloaded engine to free its weights before trimming anyway.
const WEIGHTS_FREED_WITHIN: Duration = Duration::from_secs(30);
/// Further trims after the weights of an unloaded model are freed.
const TRIM_AGAIN_AFTER: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];

struct Inner {
    runners: Mutex<HashMap<Digest, Arc<Runner>>>,
    /// Engines unloaded whose weights may not be freed yet, and when they were unloaded:
    /// the heap is trimmed once they are.
    unloaded: Mutex<Vec<(Instant, WeightsGone)>>,
    /// When the heap is to be trimmed again.
    trims: Mutex<Vec<Instant>>,
    /// Serialises loads so that concurrent first requests load a model once.
    loading: tokio::sync::Mutex<()>,
    queued: AtomicUsize,
    num_parallel: usize,
    engine: EngineKind,
    max_loaded: usize,
    max_queue: usize,
}

impl Inner {
    fn unload_if_idle(&self, runner: &Arc<Runner>) {
        let mut runners = self.runners.lock().unwrap_or_else(|e| e.into_inner());
        if runner.is_idle() {
            if let Some(current) = runners.get(&runner.blob_digest) {
                if Arc::ptr_eq(current, runner) {
                    runners.remove(&runner.blob_digest);
                    self.note_unload(runner);
                }
            }
        }
    }

    fn note_unload(&self, runner: &Runner) {
        self.unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Instant::now(), runner.weights_watch()));
    }
}

#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

fn env_usize(key: &str, default: usize) -> usize {
    crate::env::var(key)
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::from_env()
    }
}

impl Scheduler {
    pub fn from_env() -> Scheduler {
        Scheduler {
            inner: Arc::new(Inner {
                runners: Mutex::new(HashMap::new()),
                unloaded: Mutex::new(Vec::new()),
                trims: Mutex::new(Vec::new()),
                loading: tokio::sync::Mutex::new(()),
                queued: AtomicUsize::new(0),
                num_parallel: env_usize("OLLAMA_NUM_PARALLEL", 1),
                engine: EngineKind::from_env().unwrap_or(EngineKind::LlamaCpp),
                max_loaded: env_usize("OLLAMA_MAX_LOADED_MODELS", 3),
                max_queue: env_usize("OLLAMA_MAX_QUEUE", 512),
            }),
        }
    }

    /// Loaded models, most recently expiring first.
    pub fn loaded(&self) -> Vec<Arc<Runner>> {
        let runners = self.inner.runners.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<Arc<Runner>> = runners.values().cloned().collect();
        list.sort_by_key(|r| std::cmp::Reverse(r.expires_at()));
        list
    }

    /// The loaded runner for a model blob, if any.
    pub fn find(&self, blob_digest: &Digest) -> Option<Arc<Runner>> {
        let runners = self.inner.runners.lock().unwrap_or_else(|e| e.into_inner());
        runners.get(blob_digest).cloned()
    }

    /// Requests waiting for a model to load or for a free slot on it.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::SeqCst)
    }

    /// Unloads a model now if no request is using it; returns whether it was loaded.
    pub fn unload(&self, blob_digest: &Digest) -> bool {
        match self.find(blob_digest) {
            Some(runner) => {
                {
                    let mut state = runner.state.lock().unwrap_or_else(|e| e.into_inner());
                    state.keep_alive = KeepAlive::For(Duration::ZERO);
                    state.idle_since.get_or_insert_with(Instant::now);
                }
                self.inner.unload_if_idle(&runner);
                true
            }
            None => false,
        }
    }

    /// Unloads every model (the server is stopping) and waits up to `within` for their
    /// threads to end: a llama.cpp model writes its conversations' KV state to disk first.
    pub async fn shutdown(&self, within: Duration) {
        let runners: Vec<Arc<Runner>> = {
            let mut runners = self.inner.runners.lock().unwrap_or_else(|e| e.into_inner());
            runners.drain().map(|(_, runner)| runner).collect()
        };
        let mut watches: Vec<WeightsGone> = runners.iter().map(|r| r.weights_watch()).collect();
        drop(runners);
        // Models unloaded just before (keep_alive 0, `rollama stop`) may still be saving.
        watches.extend(
            self.inner
                .unloaded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..)
                .map(|(_, watch)| watch),
        );
        let started = Instant::now();
        while !watches.iter().all(WeightsGone::is_gone) && started.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Unloads idle models whose keep-alive ran out. Called periodically.
    pub fn reap(&self) {
        {
            let mut runners = self.inner.runners.lock().unwrap_or_else(|e| e.into_inner());
            let expired: Vec<Digest> = runners
                .iter()
                .filter(|(_, runner)| runner.expired())
                .map(|(digest, _)| *digest)
                .collect();
            for digest in expired {
                if let Some(runner) = runners.remove(&digest) {
                    self.inner.note_unload(&runner);
                }
            }
        }
        // The engine thread frees the weights some time after it is told to stop (under a
        // second on a quiet machine, seconds on a busy one): give the memory back once it has.
        let mut unloaded = self
            .inner
            .unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let before = unloaded.len();
        unloaded.retain(|(at, weights)| !weights.is_gone() && at.elapsed() < WEIGHTS_FREED_WITHIN);
        let freed = unloaded.len() < before;
        drop(unloaded);
        // Other engine threads may still be freeing buffers of their own just after the
        // weights go: trim again a little later.
        let mut trims = self.inner.trims.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if freed {
            trims.extend(TRIM_AGAIN_AFTER.iter().map(|delay| now + *delay));
        }
        let due = trims.iter().any(|at| *at <= now);
        trims.retain(|at| *at > now);
        drop(trims);
        if freed || due {
            crate::memory::trim();
        } else {
            crate::memory::trim_if_idle(IDLE_TRIM_AFTER);
        }
    }

    /// Loads (if needed) and leases the model with one of its generation slots; returns the
    /// lease and how long loading took (zero when the model was loaded already: time spent
    /// waiting for a slot is not load time, as Ollama reports it).
    /// The lease, and when its runner was ready (loaded, or found loaded) before the wait for
    /// a generation slot: Ollama's `load_duration` runs from the request's start to then.
    pub async fn acquire(&self, request: LoadRequest) -> Result<(Lease, Instant), ApiError> {
        self.lease(request, true).await
    }

    /// Loads (if needed) and leases the model without a generation slot, for work that does
    /// not run the engine (tokenizing): it need not wait behind generations.
    pub async fn acquire_without_slot(
        &self,
        request: LoadRequest,
    ) -> Result<(Lease, Instant), ApiError> {
        self.lease(request, false).await
    }

    async fn lease(&self, request: LoadRequest, slot: bool) -> Result<(Lease, Instant), ApiError> {
        let queued = self.inner.queued.fetch_add(1, Ordering::SeqCst) + 1;
        let _queued = QueueSlot(&self.inner.queued);
        if queued > self.inner.max_queue {
            return Err(ApiError::ServiceUnavailable(BUSY.to_string()));
        }
        // Dropped while waiting (the client left): counted as abandoned.
        let waiting = Waiting { settled: false };
        let waited = async {
            let runner = self.runner_for(&request).await?;
            let ready = Instant::now();
            let permit = if slot {
                Some(
                    runner
                        .permits
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| ApiError::internal("the model was unloaded"))?,
                )
            } else {
                None
            };
            Ok::<_, ApiError>((runner, ready, permit))
        }
        .await;
        let (runner, ready, permit) = waiting.settle(waited)?;
        super::metrics::metrics().queue_wait(ready.elapsed());
        runner.active.fetch_add(1, Ordering::SeqCst);
        {
            let mut state = runner.state.lock().unwrap_or_else(|e| e.into_inner());
            state.idle_since = None;
            state.keep_alive = request.keep_alive;
            state.last_used = Instant::now();
        }
        let lease = Lease {
            runner,
            scheduler: self.inner.clone(),
            keep_alive: request.keep_alive,
            _permit: permit,
        };
        Ok((lease, ready))
    }

    /// The loaded runner for a request, loading it if needed (or waiting for another
    /// request's load of it).
    async fn runner_for(&self, request: &LoadRequest) -> Result<Arc<Runner>, ApiError> {
        // A loaded model need not wait while another model loads.
        if let Some(runner) = self.find(&request.blob_digest) {
            if runner.fits(request) {
                return Ok(runner);
            }
        }
        // The load runs in a task of its own: a client that leaves while its model loads does
        // not throw the load away (and with it the loading lock) for the next request to redo.
        let scheduler = self.clone();
        let request = request.clone();
        let runner = tokio::spawn(async move { scheduler.load(&request).await })
            .await
            .map_err(|_| ApiError::internal("model load crashed"))??;
        Ok(runner)
    }

    async fn load(&self, request: &LoadRequest) -> Result<Arc<Runner>, ApiError> {
        let _loading = self.inner.loading.lock().await;
        if let Some(runner) = self.find(&request.blob_digest) {
            if runner.fits(request) {
                return Ok(runner);
            }
            // A changed load-time option reloads the model once it is idle (as Ollama does).
            self.wait_idle(&runner).await;
            self.remove(&runner);
        }
        let (predicted, layers) = self.predict(request).await?;
        self.make_room().await;
        // Ollama's rule for GPUs: while other models hold GPU memory, a model that the fit
        // would not put wholly on the GPUs beside them makes the least recently used idle one
        // unload first (waiting for a busy one), then tries again; with none left it loads
        // with whatever part fits. Not for an explicit `num_gpu`.
        loop {
            let (victim, any) = if request.placement.num_gpu.is_none() {
                self.gpu_victim()
            } else {
                (None, false)
            };
            match self.load_with(request, predicted, layers, any).await {
                Err(LoadFailure::NotWhollyOnGpu) => match victim {
                    Some(runner) => self.evict_for_gpu(runner, &request.name).await,
                    // Every model on a GPU is busy: wait until one is idle, then fit again.
                    None => {
                        while let (None, true) = self.gpu_victim() {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                },
                Err(LoadFailure::Api(e)) => return Err(e),
                Ok(runner) => return Ok(runner),
            }
        }
    }

    async fn load_with(
        &self,
        request: &LoadRequest,
        predicted: u64,
        layers: u32,
        require_full: bool,
    ) -> Result<Arc<Runner>, LoadFailure> {
        let blob = request.blob.clone();
        let options = LoadOptions {
            placement: request.placement,
            gpu_in_use: self.gpu_in_use(),
            predicted_vram: predicted,
            layers,
            require_full,
            blob_digest: request.blob_digest,
            num_ctx: request.num_ctx,
            num_parallel: self.inner.num_parallel,
            num_batch: request.num_batch,
            num_thread: request.num_thread,
            derived_dir: blob
                .parent()
                .map(crate::store::derived_dir_of)
                .unwrap_or_default(),
            projector: request.projector.clone(),
            draft: request.draft.clone(),
        };
        let kind = self.inner.engine;
        let loading = Instant::now();
        let loaded = tokio::task::spawn_blocking(
            move || -> Result<(Loaded, u64, Footprint), EngineError> {
                let mut options = options;
                let source = blob;
                let source_gguf =
                    Gguf::open(&source).map_err(|e| EngineError::Failed(e.to_string()))?;
                let translated = ollama_layout::prepare(
                    &source,
                    &options.blob_digest,
                    &source_gguf,
                    &options.derived_dir,
                );
                let translated = match translated {
                    Ok(translated) => translated,
                    Err(e @ ollama_layout::TranslateError::Incomplete { .. }) => {
                        return Err(EngineError::Unsupported(e.to_string()))
                    }
                    Err(e) => return Err(EngineError::Failed(e.to_string())),
                };
                // A vision tower inside the blob (Ollama's own layout) becomes a projector of
                // its own for llama.cpp's mtmd, unless the model has a projector layer.
                if options.projector.is_none() && kind == EngineKind::LlamaCpp {
                    let embedded = ollama_layout::projector(
                        &source,
                        &options.blob_digest,
                        &source_gguf,
                        &options.derived_dir,
                    );
                    options.projector = match embedded {
                        Ok(found) => found.map(|t| t.path),
                        Err(e @ ollama_layout::TranslateError::Incomplete { .. }) => {
                            return Err(EngineError::Unsupported(e.to_string()))
                        }
                        Err(e) => return Err(EngineError::Failed(e.to_string())),
                    };
                }
                let (blob, gguf) = match translated {
                    Some(translated) => (translated.path, translated.gguf),
                    None => (source, source_gguf),
                };
                if crate::engine::embedding::pooling_of(&gguf).is_some() {
                    let embedder = Embedder::load(&blob, &options, &gguf)?;
                    let size = embedder.memory_size();
                    let footprint = embedder.footprint();
                    Ok((Loaded::Embedding(Arc::new(embedder)), size, footprint))
                } else {
                    let engine = Engine::load(kind, &blob, &options, &gguf)?;
                    let size = engine.memory_size();
                    let footprint = engine.footprint();
                    Ok((Loaded::Text(Box::new(engine)), size, footprint))
                }
            },
        )
        .await
        .map_err(|_| LoadFailure::Api(ApiError::internal("model load crashed")))?;
        let (model, size, footprint) = loaded.map_err(|e| match e {
            EngineError::Unsupported(m) => LoadFailure::Api(ApiError::BadRequest(m)),
            EngineError::Failed(m) => LoadFailure::Api(ApiError::Internal(m)),
            EngineError::NotWhollyOnGpu => LoadFailure::NotWhollyOnGpu,
        })?;
        super::metrics::metrics().model_loaded(loading.elapsed());
        let runner = Arc::new(Runner {
            name: request.name.clone(),
            digest: request.digest,
            details: request.details.clone(),
            size,
            footprint,
            num_ctx: request.num_ctx,
            num_batch: request.num_batch,
            num_thread: request.num_thread,
            placement: request.placement,
            projector: request.projector.clone(),
            draft: request.draft.clone(),
            model,
            blob_digest: request.blob_digest,
            permits: Arc::new(Semaphore::new(self.inner.num_parallel)),
            active: AtomicUsize::new(0),
            state: Mutex::new(RunnerState {
                keep_alive: request.keep_alive,
                idle_since: Some(Instant::now()),
                last_used: Instant::now(),
            }),
        });
        self.inner
            .runners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request.blob_digest, runner.clone());
        Ok(runner)
    }

    fn remove(&self, runner: &Arc<Runner>) {
        let mut runners = self.inner.runners.lock().unwrap_or_else(|e| e.into_inner());
        runners.remove(&runner.blob_digest);
        self.inner.note_unload(runner);
    }

    async fn wait_idle(&self, runner: &Arc<Runner>) {
        while !runner.is_idle() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Each GPU with the bytes the loaded models hold on it (for `/metrics`).
    pub fn gpu_memory(&self) -> Vec<(gpu::Device, u64)> {
        let in_use = self.gpu_in_use();
        gpu::devices()
            .into_iter()
            .map(|device| {
                let used = gpu::held_on(&in_use, &device.name);
                (device, used)
            })
            .collect()
    }

    /// Bytes the loaded models hold per GPU (by ggml device name).
    fn gpu_in_use(&self) -> Vec<(String, u64)> {
        let mut in_use: Vec<(String, u64)> = Vec::new();
        for runner in self.loaded() {
            for (name, bytes) in &runner.footprint.devices {
                match in_use.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 += bytes,
                    None => in_use.push((name.clone(), *bytes)),
                }
            }
        }
        in_use
    }

    /// What the model would need ([`gpu::predict`]); refuses, with Ollama's words, a model
    /// that fits neither on the GPUs nor in host memory nor both together.
    /// Also returns the model's layer count (its blocks and the output layer).
    async fn predict(&self, request: &LoadRequest) -> Result<(u64, u32), ApiError> {
        let blob = request.blob.clone();
        let context = (request.num_ctx * self.inner.num_parallel.max(1)) as u64;
        let (predicted, layers) = tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
            Gguf::open(&blob)
                .map(|gguf| (gpu::predict(size, &gguf, context), gpu::layers(&gguf)))
                .unwrap_or((size, 0))
        })
        .await
        .map_err(|_| ApiError::internal("model load crashed"))?;
        let on_gpus = if request.placement.num_gpu == Some(0) {
            0
        } else {
            self.gpu_room(&self.gpu_in_use())
        };
        let host = crate::memory::available();
        if let Some(host) = host {
            if predicted > on_gpus.saturating_add(host) {
                return Err(ApiError::BadRequest(format!(
                    "model requires more system memory ({}) than is available ({})",
                    gpu::gib(predicted.saturating_sub(on_gpus)),
                    gpu::gib(host)
                )));
            }
        }
        Ok((predicted, layers))
    }

    /// Free GPU memory for a new model: each GPU's, less what loaded models hold and
    /// `OLLAMA_GPU_OVERHEAD`.
    fn gpu_room(&self, in_use: &[(String, u64)]) -> u64 {
        let overhead = gpu::settings().overhead;
        gpu::devices()
            .iter()
            .map(|device| {
                gpu::available(device, gpu::held_on(in_use, &device.name)).saturating_sub(overhead)
            })
            .sum()
    }

    /// The least recently used idle model holding GPU memory, to unload for a model that
    /// would not fit on the GPUs beside it. None with Some(true) when only busy ones hold GPU
    /// memory (wait for one), None with Some(false) when no model does.
    fn gpu_victim(&self) -> (Option<Arc<Runner>>, bool) {
        let on_gpus: Vec<Arc<Runner>> = self
            .loaded()
            .into_iter()
            .filter(|r| r.footprint.vram() > 0)
            .collect();
        let any = !on_gpus.is_empty();
        let victim = on_gpus.into_iter().filter(|r| r.is_idle()).min_by_key(|r| {
            r.state
                .lock()
                .map(|s| s.last_used)
                .unwrap_or_else(|_| Instant::now())
        });
        (victim, any)
    }

    /// Unloads `runner` to make room on the GPUs, and waits until its weights are freed (the
    /// driver's free memory counts then).
    async fn evict_for_gpu(&self, runner: Arc<Runner>, name: &str) {
        eprintln!(
            "unloading {} to make room on the GPU for {name}",
            runner.name
        );
        let freed = runner.weights_watch();
        self.remove(&runner);
        drop(runner);
        let since = Instant::now();
        while !freed.is_gone() && since.elapsed() < WEIGHTS_FREED_WITHIN {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Evicts the least recently used idle model while at the limit, waiting for one to
    /// become idle if all are busy.
    async fn make_room(&self) {
        loop {
            let victim = {
                let runners = self.inner.runners.lock().unwrap_or_else(|e| e.into_inner());
                if runners.len() < self.inner.max_loaded {
                    return;
                }
                runners
                    .values()
                    .filter(|r| r.is_idle())
                    .min_by_key(|r| {
                        r.state
                            .lock()
                            .map(|s| s.last_used)
                            .unwrap_or_else(|_| Instant::now())
                    })
                    .cloned()
            };
            match victim {
                Some(runner) => self.remove(&runner),
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Why a load did not give a runner.
enum LoadFailure {
    /// The fit would not put the model wholly on the GPUs (only asked for while other
    /// models hold GPU memory).
    NotWhollyOnGpu,
    Api(ApiError),
}

/// A request waiting for its model and a slot; dropped before it is settled (its client
/// left), it is counted as abandoned.
struct Waiting {
    settled: bool,
}

impl Waiting {
    fn settle<T>(mut self, outcome: T) -> T {
        self.settled = true;
        outcome
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.settled {
            super::metrics::metrics().queue_abandoned();
        }
    }
}

struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
