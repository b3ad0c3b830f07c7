//! `GET /metrics` (beyond Ollama): Prometheus text format. Requests by route and status,
//! tokens in and out (and prompt tokens the KV cache already held), generations started, time to first token and time per generated token,
//! model load times, loaded models, queued requests, how long requests waited for a slot and
//! how many left while waiting. One registry per process.

use crate::engine::gpu::Device;
use actix_web::{web, HttpResponse};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route's pattern (`/api/chat`, `/v1/models/{model}`), so that paths cannot grow the
    /// label set; `unmatched` for unknown paths.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    /// ggml's device name (`Vulkan0`, `CUDA0`).
    pub device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
}

type HistogramFamily = Family<ModelLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    prompt_tokens: Family<ModelLabels, Counter>,
    prompt_cached_tokens: Family<ModelLabels, Counter>,
    generated_tokens: Family<ModelLabels, Counter>,
    generations_started: Family<ModelLabels, Counter>,
    time_to_first_token: HistogramFamily,
    time_per_token: HistogramFamily,
    load_seconds: Histogram,
    queue_wait_seconds: Histogram,
    queue_abandoned: Counter,
    loaded_models: Gauge,
    queued_requests: Gauge,
    gpu_total: Family<DeviceLabels, Gauge>,
    gpu_free: Family<DeviceLabels, Gauge>,
    gpu_models: Family<DeviceLabels, Gauge>,
}

fn latency_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

fn token_buckets() -> Histogram {
    Histogram::new([
        0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
    ])
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rollama");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let prompt_tokens = Family::<ModelLabels, Counter>::default();
        registry.register(
            "prompt_tokens",
            "Prompt tokens processed",
            prompt_tokens.clone(),
        );
        let prompt_cached_tokens = Family::<ModelLabels, Counter>::default();
        registry.register(
            "prompt_cached_tokens",
            "Prompt tokens whose KV cache an earlier request left (not evaluated again); over \
             prompt_tokens, the prompt cache's hit rate",
            prompt_cached_tokens.clone(),
        );
        let generated_tokens = Family::<ModelLabels, Counter>::default();
        registry.register(
            "generated_tokens",
            "Tokens generated",
            generated_tokens.clone(),
        );
        let generations_started = Family::<ModelLabels, Counter>::default();
        registry.register(
            "generations_started",
            "Generations handed to the engine (a request that left while queued never is)",
            generations_started.clone(),
        );
        let time_to_first_token: HistogramFamily = Family::new_with_constructor(latency_buckets);
        registry.register(
            "time_to_first_token_seconds",
            "From a generation request's arrival to its first generated token",
            time_to_first_token.clone(),
        );
        let time_per_token: HistogramFamily = Family::new_with_constructor(token_buckets);
        registry.register(
            "time_per_output_token_seconds",
            "Mean time between generated tokens, per request",
            time_per_token.clone(),
        );
        let load_seconds = latency_buckets();
        registry.register(
            "model_load_seconds",
            "Time to load a model",
            load_seconds.clone(),
        );
        let queue_wait_seconds = latency_buckets();
        registry.register(
            "queue_wait_seconds",
            "Time a request waited for a free slot (and for other models' loads), not counting \
             its own model's load",
            queue_wait_seconds.clone(),
        );
        let queue_abandoned = Counter::default();
        registry.register(
            "queue_abandoned_requests",
            "Requests whose client left while they waited for a model or a slot",
            queue_abandoned.clone(),
        );
        let loaded_models = Gauge::default();
        registry.register("loaded_models", "Models loaded now", loaded_models.clone());
        let queued_requests = Gauge::default();
        registry.register(
            "queued_requests",
            "Requests waiting for a model to load or for a free slot now",
            queued_requests.clone(),
        );
        let gpu_total = Family::<DeviceLabels, Gauge>::default();
        registry.register(
            "gpu_memory_total_bytes",
            "Memory of each GPU, as its driver reports it",
            gpu_total.clone(),
        );
        let gpu_free = Family::<DeviceLabels, Gauge>::default();
        registry.register(
            "gpu_memory_free_bytes",
            "Free memory of each GPU, as its driver reports it now (ggml's device memory query)",
            gpu_free.clone(),
        );
        let gpu_models = Family::<DeviceLabels, Gauge>::default();
        registry.register(
            "gpu_memory_models_bytes",
            "Memory the loaded models hold on each GPU (llama.cpp's buffers: weights, KV cache, compute)",
            gpu_models.clone(),
        );
        let engine = crate::engine::stats::stats();
        registry.register(
            "prompt_tokens_copied",
            "Prompt tokens whose keys and values were copied instead of computed, by source: \
             another sequence (prefix sharing), a parked sequence in host memory, or a \
             conversation saved on disk",
            engine.copied.clone(),
        );
        registry.register(
            "prompt_tokens_computed",
            "Prompt tokens the model evaluated",
            engine.computed.clone(),
        );
        registry.register(
            "kv_cache_files_saved",
            "Sequences written to the KV cache directory when their model unloaded",
            engine.files_saved.clone(),
        );
        registry.register(
            "kv_cache_files_restored",
            "Saved sequences loaded back instead of computed",
            engine.files_restored.clone(),
        );
        registry.register(
            "kv_cache_files_refused",
            "Saved sequences refused (corrupt, truncated or mismatched) and removed",
            engine.files_refused.clone(),
        );
        registry.register(
            "draft_tokens",
            "Tokens proposed by speculative decoding",
            engine.drafted.clone(),
        );
        registry.register(
            "draft_accepted_tokens",
            "Drafted tokens the model confirmed; over draft_tokens, the acceptance rate",
            engine.accepted.clone(),
        );
        Metrics {
            gpu_total,
            gpu_free,
            gpu_models,
            registry,
            requests,
            prompt_tokens,
            prompt_cached_tokens,
            generated_tokens,
            generations_started,
            time_to_first_token,
            time_per_token,
            load_seconds,
            queue_wait_seconds,
            queue_abandoned,
            loaded_models,
            queued_requests,
        }
    }

    pub fn request(&self, method: &str, route: Option<&str>, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.unwrap_or("unmatched").to_string(),
                status,
            })
            .inc();
    }

    /// One finished generation: its token counts, how long until its first token, and how
    /// long its tokens took.
    pub fn generation(
        &self,
        model: &str,
        prompt_tokens: usize,
        cached_tokens: usize,
        generated: usize,
        first_token: Duration,
        eval: Duration,
    ) {
        let labels = ModelLabels {
            model: model.to_string(),
        };
        self.prompt_tokens
            .get_or_create(&labels)
            .inc_by(prompt_tokens as u64);
        self.prompt_cached_tokens
            .get_or_create(&labels)
            .inc_by(cached_tokens as u64);
        self.generated_tokens
            .get_or_create(&labels)
            .inc_by(generated as u64);
        if generated > 0 {
            self.time_to_first_token
                .get_or_create(&labels)
                .observe(first_token.as_secs_f64());
        }
        if generated > 1 {
            self.time_per_token
                .get_or_create(&labels)
                .observe(eval.as_secs_f64() / (generated - 1) as f64);
        }
    }

    pub fn model_loaded(&self, took: Duration) {
        self.load_seconds.observe(took.as_secs_f64());
    }

    /// A generation handed to the engine.
    pub fn generation_started(&self, model: &str) {
        self.generations_started
            .get_or_create(&ModelLabels {
                model: model.to_string(),
            })
            .inc();
    }

    /// A request got its slot after waiting this long.
    pub fn queue_wait(&self, waited: Duration) {
        self.queue_wait_seconds.observe(waited.as_secs_f64());
    }

    /// A request's client left while it waited.
    pub fn queue_abandoned(&self) {
        self.queue_abandoned.inc();
    }

    fn encode(&self, loaded: usize, queued: usize, gpus: &[(Device, u64)]) -> String {
        self.loaded_models.set(loaded as i64);
        self.queued_requests.set(queued as i64);
        for (device, models) in gpus {
            let labels = DeviceLabels {
                device: device.name.clone(),
            };
            self.gpu_total
                .get_or_create(&labels)
                .set(device.total as i64);
            self.gpu_free.get_or_create(&labels).set(device.free as i64);
            self.gpu_models.get_or_create(&labels).set(*models as i64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

pub async fn scrape(state: web::Data<super::AppState>) -> HttpResponse {
    let loaded = state.scheduler.loaded().len();
    let queued = state.scheduler.queued();
    let gpus = state.scheduler.gpu_memory();
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics().encode(loaded, queued, &gpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_are_encoded() {
        let metrics = Metrics::new();
        metrics.request("POST", Some("/api/chat"), 200);
        metrics.request("POST", Some("/api/chat"), 200);
        metrics.request("GET", None, 404);
        metrics.generation(
            "smol",
            12,
            8,
            5,
            Duration::from_millis(300),
            Duration::from_millis(200),
        );
        metrics.model_loaded(Duration::from_secs(1));
        metrics.generation_started("smol");
        metrics.queue_wait(Duration::from_millis(20));
        metrics.queue_abandoned();
        let text = metrics.encode(1, 0, &[]);
        assert!(
            text.contains(
                "rollama_http_requests_total{method=\"POST\",route=\"/api/chat\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"));
        assert!(text.contains("rollama_prompt_tokens_total{model=\"smol\"} 12"));
        assert!(text.contains("rollama_prompt_cached_tokens_total{model=\"smol\"} 8"));
        assert!(text.contains("rollama_generated_tokens_total{model=\"smol\"} 5"));
        assert!(text.contains("rollama_time_to_first_token_seconds_count{model=\"smol\"} 1"));
        assert!(text.contains("rollama_time_per_output_token_seconds_sum{model=\"smol\"} 0.05"));
        assert!(text.contains("rollama_model_load_seconds_count 1"));
        assert!(text.contains("rollama_generations_started_total{model=\"smol\"} 1"));
        assert!(text.contains("rollama_queue_wait_seconds_count 1"));
        assert!(text.contains("rollama_queue_abandoned_requests_total 1"));
        assert!(text.contains("rollama_loaded_models 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
