//! The inference engines, behind one wall: the only module that names an engine crate.
//!
//! Two engines run text models: llama.cpp (through `llama-cpp-2`, in [`llama`]) and
//! mistralrs (in [`mistral`]). [`Engine`] is what the server holds: one type with one
//! request, one event stream and one tokenizer interface, whichever engine is underneath, so
//! nothing outside this module branches on the engine. `ROLLAMA_ENGINE` picks it
//! ([`EngineKind`]); `auto` is llama.cpp on this CPU-only build (BENCHMARKS.md has the numbers).
//!
//! Each engine is a cargo feature (`llamacpp`, `mistralrs`; both default). A build without
//! one refuses to load models on it; the fuzz targets build without both, which keeps their
//! instrumented build free of llama.cpp's C++ and mistralrs.

#[cfg(feature = "llamacpp")]
pub mod chat;
pub mod embedding;
pub mod gpu;
pub mod grammar;
pub mod image;
pub mod kv_disk;
#[cfg(feature = "llamacpp")]
pub mod llama;
#[cfg(feature = "llamacpp")]
mod llama_embed;
#[cfg(feature = "mistralrs")]
pub mod mistral;
pub mod sampler;
pub mod stats;
pub mod stop;
pub mod threads;
#[cfg(feature = "llamacpp")]
pub mod vision;
pub mod weights;

use crate::gguf::Gguf;
pub use embedding::Embedder;
pub use image::Image;
use sampler::Sampler;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stop::StopFilter;
use tokio::sync::mpsc;

/// The error of a generation whose engine went away before finishing it (mistralrs
/// restarts a dead engine on the next request, so one retry is worthwhile).
pub const RUNNER_STOPPED: &str = "the model runner stopped unexpectedly";

/// Environment variable that turns on the engine's own log on stderr.
pub const ENGINE_LOG: &str = "ROLLAMA_ENGINE_LOG";

/// Environment variable choosing the engine: `auto` (the default), `llamacpp` or `mistralrs`.
pub const ENGINE: &str = "ROLLAMA_ENGINE";

/// Which engine runs text models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    LlamaCpp,
    MistralRs,
}

impl EngineKind {
    /// What `auto` picks: llama.cpp where it is built in.
    const AUTO: EngineKind = if cfg!(feature = "llamacpp") {
        EngineKind::LlamaCpp
    } else {
        EngineKind::MistralRs
    };

    /// The engine `ROLLAMA_ENGINE` asks for; `auto` (or unset) is llama.cpp, the faster one
    /// on CPUs, which is all this build runs on.
    pub fn from_env() -> Result<EngineKind, String> {
        match crate::env::var(ENGINE).trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(EngineKind::AUTO),
            "llamacpp" | "llama.cpp" | "llama-cpp" => Ok(EngineKind::LlamaCpp),
            "mistralrs" | "mistral.rs" => Ok(EngineKind::MistralRs),
            other => Err(format!(
                "{ENGINE}={other:?} is not an engine; use auto, llamacpp or mistralrs"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::LlamaCpp => "llamacpp",
            EngineKind::MistralRs => "mistralrs",
        }
    }
}

/// Load-time settings (a change to any of them reloads the model, as in Ollama).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub blob_digest: crate::store::Digest,
    /// Tokens one sequence may hold (Ollama's `num_ctx`).
    pub num_ctx: usize,
    /// Sequences run at once (`OLLAMA_NUM_PARALLEL`).
    pub num_parallel: usize,
    /// Prompt tokens decoded per step (`num_batch`).
    pub num_batch: usize,
    /// CPU threads; 0 picks the number of physical cores.
    pub num_thread: usize,
    /// Where files derived from the blob are kept (the store's `derived_dir`).
    pub derived_dir: std::path::PathBuf,
    /// The vision projector (mmproj GGUF) loaded beside the text model, if the model has one.
    pub projector: Option<PathBuf>,
    /// A draft model (GGUF with the same vocabulary) for speculative decoding (Modelfile
    /// `DRAFT`); the llama.cpp engine only.
    pub draft: Option<PathBuf>,
    /// Where the request wants the model (`num_gpu`, `main_gpu`).
    pub placement: gpu::Placement,
    /// Bytes rollama's other loaded models hold per GPU (by ggml device name).
    pub gpu_in_use: Vec<(String, u64)>,
    /// [`gpu::predict`] for this model and context: what it would need on GPUs.
    pub predicted_vram: u64,
    /// The model's layers as llama.cpp offloads them: its blocks and the output layer.
    pub layers: u32,
    /// Fail with [`EngineError::NotWhollyOnGpu`] rather than load part of the model on the
    /// CPU (other models hold GPU memory that could be freed).
    pub require_full: bool,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The model cannot run here (architecture, format): the request's fault → 400.
    #[error("{0}")]
    Unsupported(String),
    /// Loading failed or mistralrs panicked → 500.
    #[error("{0}")]
    Failed(String),
    /// The model would not go wholly onto the GPUs, and the load asked that it should
    /// ([`LoadOptions::require_full`]): the scheduler makes room and tries again.
    #[error("unable to load full model on GPU")]
    NotWhollyOnGpu,
}

/// Facts about a loaded model the server needs for prompts and limits.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    pub architecture: String,
    /// The context length the model was trained with (`<arch>.context_length`, else 4096).
    pub context_length: usize,
    pub bos_token: Option<u32>,
    pub add_bos_token: bool,
    pub has_chat_template: bool,
}

impl ModelFacts {
    pub fn from_gguf(gguf: &Gguf) -> ModelFacts {
        let architecture = gguf.architecture().unwrap_or_default().to_string();
        let bool_of = |key: &str| match gguf.get(key) {
            Some(crate::gguf::Value::Bool(b)) => *b,
            _ => false,
        };
        ModelFacts {
            context_length: gguf.context_length().unwrap_or(4096) as usize,
            bos_token: gguf
                .get("tokenizer.ggml.bos_token_id")
                .and_then(|v| v.as_u64())
                .map(|v| v as u32),
            add_bos_token: bool_of("tokenizer.ggml.add_bos_token"),
            has_chat_template: gguf.chat_template().is_some_and(|t| !t.is_empty()),
            architecture,
        }
    }
}

/// A loaded model. Dropping it stops its engine and frees its memory.
pub struct Engine {
    backend: Backend,
    pub facts: ModelFacts,
}

enum Backend {
    #[cfg(feature = "llamacpp")]
    Llama(Box<llama::LlamaEngine>),
    #[cfg(feature = "mistralrs")]
    Mistral(Box<mistral::MistralEngine>),
    /// No engine was built in: never made.
    #[cfg(not(any(feature = "llamacpp", feature = "mistralrs")))]
    None(std::convert::Infallible),
}

/// A match on `$backend` over the engines built in: `$on_llama` with the llama.cpp engine
/// bound to `$llama`, `$on_mistral` with mistralrs's bound to `$mistral`. With one arm, both
/// engines run it.
macro_rules! each_engine {
    ($backend:expr, $engine:pat => $body:expr) => {
        each_engine!($backend, $engine => $body, $engine => $body)
    };
    ($backend:expr, $llama:pat => $on_llama:expr, $mistral:pat => $on_mistral:expr) => {
        match $backend {
            #[cfg(feature = "llamacpp")]
            Backend::Llama($llama) => $on_llama,
            #[cfg(feature = "mistralrs")]
            Backend::Mistral($mistral) => $on_mistral,
            #[cfg(not(any(feature = "llamacpp", feature = "mistralrs")))]
            Backend::None(never) => match *never {},
        }
    };
}

/// The refusal of an engine this binary was built without.
fn not_built(kind: EngineKind) -> EngineError {
    let name = kind.name();
    EngineError::Unsupported(format!(
        "this rollama was built without the {name} engine (cargo feature `{name}`)"
    ))
}

/// Tells when an unloaded engine has really let go of its weights.
pub struct WeightsGone(Option<Box<dyn Fn() -> bool + Send + Sync>>);

impl WeightsGone {
    /// For weights that are not the engine's (nothing to wait for).
    pub fn already() -> WeightsGone {
        WeightsGone(None)
    }

    fn when(gone: impl Fn() -> bool + Send + Sync + 'static) -> WeightsGone {
        WeightsGone(Some(Box::new(gone)))
    }

    pub fn is_gone(&self) -> bool {
        self.0.as_ref().is_none_or(|gone| gone())
    }
}

/// One chat message for the model's own (GGUF) chat template.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// An assistant's tool calls, as the native API encodes them
    /// (`{"id"?, "function": {"name", "arguments"}}`).
    pub tool_calls: Vec<serde_json::Value>,
    /// For `tool` messages: which tool answered, and to which call.
    pub tool_name: String,
    pub tool_call_id: String,
    /// An assistant's earlier reasoning, which templates may show again (`.Thinking`).
    pub thinking: String,
    /// Images the message shows, placed after its text (as Ollama passes them to llama.cpp).
    pub images: Vec<Arc<Image>>,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
            ..ChatMessage::default()
        }
    }

    /// The content a template without tool support sees: the text, then each call as the
    /// JSON object the model would have written.
    pub(crate) fn content_with_calls(&self) -> String {
        let mut content = self.content_with_images();
        for call in &self.tool_calls {
            let function = &call["function"];
            let written = serde_json::json!({
                "name": function["name"],
                "arguments": function["arguments"],
            });
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(&written.to_string());
        }
        content
    }
}

impl ChatMessage {
    /// The text, then one media marker per image, with nothing between (how llama.cpp joins a
    /// message's text part and image parts).
    pub fn content_with_images(&self) -> String {
        let mut content = self.content.clone();
        for _ in &self.images {
            content.push_str(image::marker());
        }
        content
    }

    /// The message in OpenAI's shape, as llama.cpp's chat code (and llama-server) take it:
    /// tool calls with their arguments as JSON text, a tool result's tool as `name`.
    pub fn to_openai(&self) -> serde_json::Value {
        let mut message =
            serde_json::json!({"role": self.role, "content": self.content_with_images()});
        if !self.tool_calls.is_empty() {
            let calls: Vec<serde_json::Value> = self
                .tool_calls
                .iter()
                .enumerate()
                .map(|(index, call)| {
                    let function = &call["function"];
                    let arguments = match &function["arguments"] {
                        serde_json::Value::String(text) => text.clone(),
                        serde_json::Value::Null => "{}".to_string(),
                        other => other.to_string(),
                    };
                    let mut call_json = serde_json::json!({
                        "type": "function",
                        "index": index,
                        "function": {"name": function["name"], "arguments": arguments},
                    });
                    if let Some(id) = call.get("id").and_then(|id| id.as_str()) {
                        call_json["id"] = serde_json::json!(id);
                    }
                    call_json
                })
                .collect();
            message["tool_calls"] = serde_json::Value::Array(calls);
        }
        if !self.tool_name.is_empty() {
            message["name"] = serde_json::json!(self.tool_name);
        }
        if !self.tool_call_id.is_empty() {
            message["tool_call_id"] = serde_json::json!(self.tool_call_id);
        }
        message
    }
}

/// A chat for the model's own Jinja template through llama.cpp's chat code (Ollama's native
/// path): what Ollama sends llama-server's `/v1/chat/completions`.
#[derive(Debug, Clone, Default)]
pub struct ChatInput {
    pub messages: Vec<ChatMessage>,
    /// Tools in Ollama's (OpenAI's) shape.
    pub tools: Vec<serde_json::Value>,
    /// `auto`, `required` or `none`.
    pub tool_choice: String,
    pub parallel_tool_calls: bool,
    /// `enable_thinking` for the template (unset leaves the template's default).
    pub enable_thinking: Option<bool>,
    /// `reasoning_effort` for the template (`think: "high"`…).
    pub reasoning_effort: Option<String>,
    /// A JSON schema the answer must satisfy (`format`).
    pub json_schema: Option<serde_json::Value>,
}

impl ChatInput {
    /// The images of every message, in the order their markers appear in the rendered chat.
    pub fn images(&self) -> Vec<Arc<Image>> {
        images_of(&self.messages)
    }

    /// The request llama.cpp's chat code takes (OpenAI's shape, as llama-server gets it).
    pub fn to_json(&self) -> serde_json::Value {
        let mut request = serde_json::json!({
            "messages": self.messages.iter().map(ChatMessage::to_openai).collect::<Vec<_>>(),
            "tool_choice": if self.tool_choice.is_empty() { "auto" } else { &self.tool_choice },
            "parallel_tool_calls": self.parallel_tool_calls,
            "add_generation_prompt": true,
        });
        if !self.tools.is_empty() {
            request["tools"] = serde_json::json!(self.tools);
        }
        let mut kwargs = serde_json::Map::new();
        if let Some(enable) = self.enable_thinking {
            request["enable_thinking"] = serde_json::json!(enable);
            kwargs.insert("enable_thinking".into(), serde_json::json!(enable));
        }
        if let Some(effort) = &self.reasoning_effort {
            kwargs.insert("reasoning_effort".into(), serde_json::json!(effort));
        }
        if !kwargs.is_empty() {
            request["chat_template_kwargs"] = serde_json::Value::Object(kwargs);
        }
        if let Some(schema) = &self.json_schema {
            request["json_schema"] = schema.clone();
        }
        request
    }
}

/// The images of `messages`, in order.
pub fn images_of(messages: &[ChatMessage]) -> Vec<Arc<Image>> {
    messages
        .iter()
        .flat_map(|m| m.images.iter().cloned())
        .collect()
}

/// A grammar in llama.cpp's GBNF, for llama.cpp's grammar sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct GrammarSpec {
    pub grammar: String,
    /// Applies only once a trigger has appeared (a tool call starting).
    pub lazy: bool,
    /// Regular expressions over the output that trigger a lazy grammar.
    pub trigger_patterns: Vec<String>,
    pub trigger_tokens: Vec<u32>,
    /// Tokens the grammar accepts before the reply: the assistant's opening that the chat
    /// format's grammar starts with and the prompt already holds (llama.cpp's prefill).
    pub prefill: Vec<u32>,
}

/// One tool call in a parsed reply; `arguments` is JSON text.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct ParsedCall {
    pub name: String,
    pub arguments: String,
    pub id: String,
}

/// A reply split by its chat format's parser.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct ParsedReply {
    pub content: String,
    pub reasoning_content: String,
    pub tool_calls: Vec<ParsedCall>,
}

/// Splits a reply into content, reasoning and tool calls.
pub trait ReplyParser: Send + Sync {
    /// The reply so far (`partial`: more may follow) or the whole reply.
    fn parse(&self, text: &str, partial: bool) -> Result<ParsedReply, String>;
}

/// A chat rendered by llama.cpp's chat code, and what its format needs.
pub struct NativeChat {
    pub tokens: Vec<u32>,
    /// Stop strings the format adds.
    pub stops: Vec<String>,
    /// The grammar for tool calls or the JSON schema.
    pub grammar: Option<GrammarSpec>,
    /// Special tokens whose text the reply must keep (the format's tags).
    pub preserved_tokens: Vec<u32>,
    pub parser: Arc<dyn ReplyParser>,
}

/// One generation.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    pub sampling: sampler::SamplingOptions,
    /// Most tokens to generate.
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// A JSON schema the output must satisfy (Ollama's `format`).
    pub format: Option<serde_json::Value>,
    /// Tokens one sequence may hold (`num_ctx`); past it the llama.cpp engine shifts the
    /// context and mistralrs stops with `length`.
    pub num_ctx: usize,
    /// Tokens at the start a context shift keeps (`num_keep`).
    pub num_keep: usize,
    /// Most tokens drafted per step (`draft_num_predict`): 0 turns speculative decoding off,
    /// None keeps the engine's default.
    pub draft_max: Option<usize>,
    /// llama.cpp's grammar from its chat code (tool calls, or `format` as a JSON schema);
    /// takes the place of `format`'s own grammar on the llama.cpp engine.
    pub grammar: Option<GrammarSpec>,
    /// Special tokens whose text the output keeps.
    pub preserved_tokens: Vec<u32>,
    /// The images whose placeholder ids ([`Image::token`]) the prompt holds.
    pub images: Vec<Arc<Image>>,
}

/// What a generation reports, in order: text pieces, then exactly one `Done` or `Failed`.
#[derive(Debug, Clone)]
pub enum Event {
    Text(String),
    /// Log-probabilities of the tokens chosen since the last `Logprobs` (only when the request
    /// asked for them); sent before the text those tokens produced.
    Logprobs(Vec<sampler::TokenLogprob>),
    Done(Summary),
    Failed(String),
    /// The engine refused the request before generating: the request's own fault (a JSON
    /// schema it cannot compile, say), a 400 rather than a 500.
    Rejected(String),
}

#[derive(Debug, Clone)]
pub struct Summary {
    /// `stop` or `length`.
    pub done_reason: &'static str,
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV cache was reused from an earlier request (not evaluated again).
    pub cached_tokens: usize,
    /// Generated token ids.
    pub tokens: Vec<u32>,
    pub prompt_duration: Duration,
    pub eval_duration: Duration,
    /// Tokens drafted for speculative decoding, and how many of them the model confirmed.
    pub drafted: usize,
    pub accepted: usize,
}

impl Engine {
    /// Loads the GGUF at `blob` on the engine `kind`. Blocking: call it off the async
    /// workers. An architecture the engine cannot run is refused with an error naming it.
    pub fn load(
        kind: EngineKind,
        blob: &Path,
        options: &LoadOptions,
        gguf: &Gguf,
    ) -> Result<Engine, EngineError> {
        let facts = ModelFacts::from_gguf(gguf);
        let backend = match kind {
            #[cfg(feature = "llamacpp")]
            EngineKind::LlamaCpp => Backend::Llama(Box::new(llama::LlamaEngine::load(
                blob, options, gguf, &facts,
            )?)),
            #[cfg(feature = "mistralrs")]
            EngineKind::MistralRs => Backend::Mistral(Box::new(mistral::MistralEngine::load(
                blob,
                options,
                gguf,
                facts.clone(),
            )?)),
            #[allow(unreachable_patterns)]
            other => return Err(not_built(other)),
        };
        Ok(Engine { backend, facts })
    }

    /// The engine's name, for logs and `/api/ps`.
    pub fn kind(&self) -> EngineKind {
        each_engine!(&self.backend, _ => EngineKind::LlamaCpp, _ => EngineKind::MistralRs)
    }

    /// The file the weights came from (mistralrs loads some weight types from a converted copy).
    pub fn weights_path(&self) -> PathBuf {
        each_engine!(&self.backend, engine => engine.path.clone())
    }

    /// Bytes the loaded model holds: its weights and, where the engine allocates it up
    /// front, its KV cache.
    pub fn memory_size(&self) -> u64 {
        let file = std::fs::metadata(self.weights_path())
            .map(|m| m.len())
            .unwrap_or(0);
        each_engine!(&self.backend,
            engine => match engine.footprint.size() {
                0 => file + engine.kv_bytes,
                measured => measured,
            },
            _ => file
        )
    }

    /// What the model holds on GPUs (nothing for mistralrs, which runs on the CPU here).
    pub fn footprint(&self) -> gpu::Footprint {
        each_engine!(&self.backend, engine => engine.footprint.clone(), _ => gpu::Footprint::default())
    }

    /// Token ids of `text`, with the model's BOS in front when it wants one.
    pub async fn tokenize_text(&self, text: &str, add_bos: bool) -> Result<Vec<u32>, EngineError> {
        let ids: Vec<u32> = each_engine!(&self.backend,
            engine => engine.encode(text)?,
            engine => engine.tokenize_text(text).await?
        );
        Ok(self.with_bos(ids, add_bos))
    }

    /// `ids` with the model's BOS in front, when `add_bos`, the model wants one and `ids`
    /// does not already start with it.
    fn with_bos(&self, mut ids: Vec<u32>, add_bos: bool) -> Vec<u32> {
        if add_bos && self.facts.add_bos_token {
            if let Some(bos) = self.facts.bos_token {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        ids
    }

    /// Whether the model reads images (a projector is loaded beside it).
    pub fn reads_images(&self) -> bool {
        each_engine!(&self.backend, engine => engine.reads_images(), _ => false)
    }

    /// Images in `messages` for a model that cannot read them are refused here, before any
    /// template renders a marker no tokenizer would turn into an image.
    fn check_images(&self, messages: &[ChatMessage]) -> Result<(), EngineError> {
        if self.reads_images() || messages.iter().all(|m| m.images.is_empty()) {
            return Ok(());
        }
        match self.kind() {
            EngineKind::LlamaCpp => Err(EngineError::Unsupported(
                "this model has no vision projector".into(),
            )),
            EngineKind::MistralRs => Err(images_need_llamacpp()),
        }
    }

    /// Token ids of `text`, in which each [`image::marker`] becomes the positions of the next of
    /// `images`; with the model's BOS in front when it wants one. Text without markers and no
    /// images is [`Engine::tokenize_text`].
    pub async fn tokenize_media(
        &self,
        text: &str,
        images: &[Arc<Image>],
        add_bos: bool,
    ) -> Result<Vec<u32>, EngineError> {
        if images.is_empty() && !text.contains(image::marker()) {
            return self.tokenize_text(text, add_bos).await;
        }
        let ids: Vec<u32> = each_engine!(&self.backend,
            engine => engine.encode_media(text, images)?,
            _ => return Err(images_need_llamacpp())
        );
        Ok(self.with_bos(ids, add_bos))
    }

    /// Token ids of `messages` rendered with the model's GGUF chat template, ending with the
    /// assistant's turn opened; `enable_thinking` reaches templates that read it (Qwen3's), as
    /// the request's `think`.
    pub async fn tokenize_chat(
        &self,
        messages: &[ChatMessage],
        enable_thinking: Option<bool>,
    ) -> Result<Vec<u32>, EngineError> {
        self.check_images(messages)?;
        each_engine!(&self.backend,
            engine => engine.tokenize_chat(messages, enable_thinking),
            engine => engine.tokenize_chat(messages, enable_thinking).await
        )
    }

    /// The chat rendered by llama.cpp's own chat code from the model's Jinja template, with
    /// its format's grammar and reply parser; `None` where the engine has none (mistralrs, or
    /// a template llama.cpp's chat code cannot take), and the caller renders it otherwise.
    pub async fn render_native(
        &self,
        input: &ChatInput,
    ) -> Result<Option<NativeChat>, EngineError> {
        self.check_images(&input.messages)?;
        each_engine!(&self.backend,
            engine => engine.render_native(input, &self.facts),
            _ => {
                let _ = input;
                Ok(None)
            }
        )
    }

    /// Starts a generation. Events arrive on the returned channel; dropping it cancels the
    /// generation at the next token.
    pub async fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<Event>, EngineError> {
        each_engine!(&self.backend,
            engine => engine.generate(request),
            engine => engine.generate(request).await
        )
    }

    /// A handle that outlives the engine and says when its weights have been freed.
    pub fn weights_watch(&self) -> WeightsGone {
        each_engine!(&self.backend, engine => engine.weights_watch())
    }

    /// Token ids of `text` from the model's own tokenizer, without waiting for an engine
    /// step; special tokens written in the text are parsed, none are added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        each_engine!(&self.backend, engine => engine.encode(text))
    }

    /// Text of `ids` from the model's own tokenizer; special tokens are kept. Ids outside
    /// the vocabulary are an error, not a panic.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        each_engine!(&self.backend, engine => engine.decode(ids))
    }

    /// The text of one token as it appears in output, and its bytes (byte-level BPE pieces
    /// that are not whole UTF-8 decode lossily to text but keep their bytes).
    pub fn token_piece(&self, id: u32) -> (String, Vec<u8>) {
        each_engine!(&self.backend, engine => engine.token_piece(id))
    }
}

/// How long a generation waits for its reader to take an event once the channel's buffer is
/// full. A client that keeps the connection open but stops reading would otherwise hold a
/// generation slot for ever; after this the generation is cancelled as if it had hung up.
const STALLED_READER: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends one event to the generation's reader; false when the reader is gone or stalled.
async fn deliver(events: &mpsc::Sender<Event>, event: Event) -> bool {
    crate::memory::note_activity();
    matches!(
        tokio::time::timeout(STALLED_READER, events.send(event)).await,
        Ok(Ok(()))
    )
}

/// Whether images can be read through the projector whose header is `gguf`: llama.cpp's mtmd
/// knows its type, and llama.cpp is the engine (`ROLLAMA_ENGINE`).
pub fn reads_projector(gguf: &Gguf) -> bool {
    #[cfg(feature = "llamacpp")]
    {
        reads_images_here() && vision::reads_projector(gguf)
    }
    #[cfg(not(feature = "llamacpp"))]
    {
        let _ = gguf;
        false
    }
}

/// Whether the engine models run on here reads images at all (llama.cpp's does).
pub fn reads_images_here() -> bool {
    EngineKind::from_env() == Ok(EngineKind::LlamaCpp)
}

/// The refusal of images on an engine without a projector loader.
fn images_need_llamacpp() -> EngineError {
    EngineError::Unsupported(
        "images need the llama.cpp engine (ROLLAMA_ENGINE=llamacpp); mistralrs runs text only"
            .into(),
    )
}

/// The refusal of an architecture an engine cannot run, naming it; `engine` says which
/// engine refused and, where useful, what it runs instead.
fn unsupported_architecture(architecture: &str, engine: &str) -> EngineError {
    EngineError::Unsupported(format!(
        "this model's architecture ({}) is not supported by rollama's engine {engine}",
        if architecture.is_empty() {
            "unknown"
        } else {
            architecture
        },
    ))
}

/// The events of a request the engine refuses before generating (its `format` cannot become
/// a grammar, say): one `Rejected`.
fn rejected(message: String) -> mpsc::Receiver<Event> {
    let (events, receiver) = mpsc::channel::<Event>(1);
    let _ = events.try_send(Event::Rejected(message));
    receiver
}

/// A generation's way to its reader, the same for both engines: log-probabilities before the
/// text they belong to, stop sequences held back, the end once a constrained JSON value is
/// complete, and the closing summary from what the sampler observed.
struct Output {
    events: mpsc::Sender<Event>,
    sampler: Arc<Sampler>,
    filter: StopFilter,
    logprobs: bool,
    logprobs_sent: usize,
    /// The text sent so far, kept while a `format` constrains it.
    produced: Option<String>,
    started: Instant,
    prompt_tokens: usize,
}

impl Output {
    /// The output of `request` (started at `started`) and the reader's end of it.
    fn new(
        request: &GenerateRequest,
        sampler: Arc<Sampler>,
        started: Instant,
    ) -> (Output, mpsc::Receiver<Event>) {
        let (events, receiver) = mpsc::channel::<Event>(256);
        let output = Output {
            events,
            sampler,
            filter: StopFilter::new(&request.stop),
            logprobs: request.sampling.logprobs.is_some(),
            logprobs_sent: 0,
            produced: request.format.as_ref().map(|_| String::new()),
            started,
            prompt_tokens: request.prompt.len(),
        };
        (output, receiver)
    }

    /// Sends newly generated text. False when the generation is over: the reader is gone,
    /// or a stop sequence or the completed JSON value ended it (its `Done` sent already).
    async fn text(&mut self, text: &str) -> bool {
        // Log-probabilities go out with text: those of a final end-of-sequence or stop
        // token, which add no text, are not reported (as OpenAI reports them).
        if self.logprobs && !text.is_empty() {
            let fresh = self.sampler.logprobs_since(self.logprobs_sent);
            if !fresh.is_empty() {
                self.logprobs_sent += fresh.len();
                if !deliver(&self.events, Event::Logprobs(fresh)).await {
                    return false;
                }
            }
        }
        let filtered = self.filter.push(text);
        if let Some(produced) = self.produced.as_mut() {
            produced.push_str(&filtered.text);
        }
        if !filtered.text.is_empty() && !deliver(&self.events, Event::Text(filtered.text)).await {
            return false;
        }
        // Once the constrained JSON value is complete nothing more can follow, but the
        // grammar's end token is not always one the engine stops on (SmolLM2 under mistralrs
        // emits `<|endoftext|>` until the length limit), so stop here.
        if filtered.stopped || self.produced.as_deref().is_some_and(is_complete_json) {
            self.done("stop", 0, (0, 0)).await;
            return false;
        }
        true
    }

    /// The end: text the stop filter held back, then `Done`.
    async fn finish(&mut self, reason: &'static str, cached_tokens: usize) {
        self.finish_drafted(reason, cached_tokens, (0, 0)).await;
    }

    /// [`Output::finish`] with the counts of drafted and accepted tokens.
    async fn finish_drafted(
        &mut self,
        reason: &'static str,
        cached_tokens: usize,
        drafts: (usize, usize),
    ) {
        let rest = self.filter.finish();
        if !rest.is_empty() && !deliver(&self.events, Event::Text(rest)).await {
            return;
        }
        self.done(reason, cached_tokens, drafts).await;
    }

    /// `Done`, with the summary of what the sampler observed.
    async fn done(&self, reason: &'static str, cached_tokens: usize, drafts: (usize, usize)) {
        let observed = self.sampler.observed();
        let first = observed.first_step.unwrap_or(self.started);
        let last = observed.last_step.unwrap_or(first);
        let summary = Summary {
            done_reason: reason,
            prompt_tokens: self.prompt_tokens,
            cached_tokens,
            tokens: observed.tokens,
            prompt_duration: first.saturating_duration_since(self.started),
            eval_duration: last.saturating_duration_since(first),
            drafted: drafts.0,
            accepted: drafts.1,
        };
        deliver(&self.events, Event::Done(summary)).await;
    }

    /// Any other event (`Failed`, `Rejected`), as it is.
    async fn send(&self, event: Event) {
        deliver(&self.events, event).await;
    }
}

/// Whether `text` is a whole JSON object or array (a closing bracket cannot be extended).
fn is_complete_json(text: &str) -> bool {
    let text = text.trim();
    text.ends_with(['}', ']']) && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_closed_json_values_are_complete() {
        assert!(is_complete_json("{\"a\": [1, 2]} "));
        assert!(is_complete_json("[1]"));
        assert!(!is_complete_json("{\"a\": [1, 2]"));
        assert!(!is_complete_json("{\"a\": \"}\""));
        assert!(!is_complete_json("12"));
    }
}
