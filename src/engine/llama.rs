//! The llama.cpp engine (through `llama-cpp-2`): llama.cpp's CPU kernels, one context per
//! loaded model holding `num_parallel` sequences, and a scheduler of our own on top.
//!
//! One thread per loaded model owns the llama.cpp context and runs the loop:
//! - **KV reuse.** Every sequence keeps the tokens whose keys and values it holds. A new
//!   request takes the idle sequence sharing the longest prefix with its prompt (else the
//!   least recently used one), keeps that prefix and evaluates only the rest; an exact repeat
//!   evaluates its last token only. Idle sequences keep their cache until it is needed.
//! - **Parking.** The context's KV cache is unified: every step attends over the cells up to
//!   the highest one any sequence occupies. So when a request starts, the idle sequences'
//!   keys and values move to host memory and leave the cache; a later request that continues
//!   one of them copies it back (a memory copy, about a thousandth of recomputing it).
//! - **Continuous batching.** Each step decodes one batch holding the next token of every
//!   generating sequence plus as many prompt tokens of new requests as fit in `num_batch`, so
//!   a long prompt is prefilled in chunks while running streams keep going.
//! - **Context shift.** A sequence that reaches `num_ctx` while generating drops half of what
//!   follows its first `num_keep` tokens and slides the rest down, as Ollama does.
//!
//! Sampling is rollama's own [`Sampler`] over the logits llama.cpp returns (Ollama's sampler,
//! with a seed), the code the mistralrs engine runs too. Constraints are llama-server's: a
//! JSON-schema `format` goes through llama.cpp's JSON-schema-to-grammar and its grammar
//! sampler masks the logits, and chats rendered by llama.cpp's chat code ([`super::chat`])
//! bring their format's grammar for tool calls.

use super::chat::{ChatParser, ChatTemplates};
use super::gpu::{self, Footprint};
use super::image::{is_image_token, Image};
use super::kv_disk::{self, common_prefix, KvDisk, SavedImage};
use super::sampler::{Constraint, Sampler};
use super::stats::stats;
use super::vision::{ImageUnit, Vision};
use super::{
    rejected, unsupported_architecture, ChatInput, ChatMessage, EngineError, Event,
    GenerateRequest, GrammarSpec, LoadOptions, ModelFacts, NativeChat, Output, WeightsGone,
    ENGINE_LOG, RUNNER_STOPPED,
};
use crate::gguf::Gguf;
use crate::template::jinja::{render_chat, JinjaContext, JinjaMessage};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;

/// GGUF `general.architecture` values of generative models llama.cpp knows (its
/// `LLM_ARCH_NAMES`, less encoders, embedding-only and speech models and draft heads).
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "llama",
    "llama4",
    "deci",
    "falcon",
    "grok",
    "gpt2",
    "gptj",
    "gptneox",
    "mpt",
    "baichuan",
    "starcoder",
    "refact",
    "bloom",
    "stablelm",
    "qwen",
    "qwen2",
    "qwen2moe",
    "qwen2vl",
    "qwen3",
    "qwen3moe",
    "qwen3next",
    "qwen3vl",
    "qwen3vlmoe",
    "qwen35",
    "qwen35moe",
    "phi2",
    "phi3",
    "phimoe",
    "plamo",
    "plamo2",
    "plamo3",
    "codeshell",
    "orion",
    "internlm2",
    "minicpm",
    "minicpm3",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3n",
    "gemma4",
    "starcoder2",
    "mamba",
    "mamba2",
    "jamba",
    "falcon-h1",
    "xverse",
    "command-r",
    "cohere2",
    "cohere2moe",
    "dbrx",
    "olmo",
    "olmo2",
    "olmoe",
    "openelm",
    "arctic",
    "deepseek",
    "deepseek2",
    "chatglm",
    "glm4",
    "glm4moe",
    "bitnet",
    "t5",
    "jais",
    "jais2",
    "nemotron",
    "nemotron_h",
    "nemotron_h_moe",
    "exaone",
    "exaone4",
    "exaone-moe",
    "rwkv6",
    "rwkv6qwen2",
    "rwkv7",
    "arwkv7",
    "granite",
    "granitemoe",
    "granitehybrid",
    "chameleon",
    "plm",
    "bailingmoe",
    "bailingmoe2",
    "dots1",
    "arcee",
    "afmoe",
    "ernie4_5",
    "ernie4_5-moe",
    "hunyuan-moe",
    "hunyuan-dense",
    "smollm3",
    "gpt-oss",
    "lfm2",
    "lfm2moe",
    "smallthinker",
    "seed_oss",
    "grovemoe",
    "apertus",
    "minimax-m2",
    "mistral3",
    "mistral4",
    "mimo2",
    "kimi-linear",
];

/// Whether llama.cpp can run a model of this architecture.
pub fn supports_architecture(architecture: &str) -> bool {
    SUPPORTED_ARCHITECTURES.contains(&architecture)
}

/// llama.cpp's process-wide backend, initialised once.
pub(super) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            let logging = crate::env::bool_var(ENGINE_LOG, false);
            if !logging {
                backend.void_logs();
                // mtmd (images) and ggml log through their own hooks.
                llama_cpp_2::send_logs_to_tracing(
                    llama_cpp_2::LogOptions::default().with_logs_enabled(false),
                );
                super::chat::silence_log();
            }
            // llama.cpp's and ggml's lines go to device_shim.cpp, which keeps a load's buffer
            // sizes (where the model went) and drops the rest unless the engine log is on.
            gpu::install_log(logging);
            Ok(backend)
        })
        .as_ref()
        .map_err(|e| EngineError::Failed(format!("llama.cpp did not start: {e}")))
}

/// The GGUF at `path` loaded by llama.cpp, on the GPUs as Ollama would place it
/// ([`gpu::model_params`]) for a context made with `context`; `what` names it in the error.
/// Also returns llama.cpp's log of the load (where the weights went, for [`gpu::footprint`]).
pub(super) fn load_model(
    path: &Path,
    what: &str,
    options: &LoadOptions,
    mut context: LlamaContextParams,
) -> Result<(Arc<LlamaModel>, String), EngineError> {
    let backend = backend()?;
    let params = gpu::model_params(path, options, gpu::settings(), &mut context)?;
    let (model, log) = gpu::capture_log(|| LlamaModel::load_from_file(backend, path, &params));
    let model = model.map_err(|e| {
        EngineError::Failed(format!(
            "failed to load model: llama.cpp could not load this {what} ({e})"
        ))
    })?;
    Ok((Arc::new(model), log))
}

/// The draft model at `path` (Modelfile `DRAFT`), which must share `model`'s vocabulary: its
/// tokens are checked by `model` one for one.
fn load_draft(
    path: &Path,
    model: &LlamaModel,
    options: &LoadOptions,
    context: LlamaContextParams,
) -> Result<Arc<LlamaModel>, EngineError> {
    let draft_options = LoadOptions {
        projector: None,
        draft: None,
        require_full: false,
        ..options.clone()
    };
    let (draft, _) = load_model(path, "draft model", &draft_options, context)?;
    if draft.n_vocab() != model.n_vocab() {
        return Err(EngineError::Unsupported(format!(
            "the draft model's vocabulary ({} tokens) is not the model's ({} tokens)",
            draft.n_vocab(),
            model.n_vocab()
        )));
    }
    Ok(draft)
}

/// The CPU threads a model runs on: `num_thread`, or one per physical core.
pub(super) fn threads_of(options: &LoadOptions) -> i32 {
    let threads = match options.num_thread {
        0 => physical_cores(),
        n => n,
    };
    threads as i32
}

/// Starts a model's thread `name`: it makes a llama.cpp context with the parameters `params`
/// gives and hands it to `run`. Returns once the context exists, with llama.cpp's log of its
/// making (the cache's and compute buffers, for [`gpu::footprint`]), or with an error naming
/// `what` (the context asked for) when llama.cpp could not make it.
pub(super) fn start_model_thread(
    name: &str,
    model: &Arc<LlamaModel>,
    what: String,
    params: impl FnOnce() -> LlamaContextParams + Send + 'static,
    run: impl for<'m> FnOnce(&'m LlamaModel, LlamaContext<'m>) + Send + 'static,
) -> Result<String, EngineError> {
    let (started, log) = gpu::capture_log(|| spawn_model_thread(name, model, what, params, run));
    started.map(|()| log)
}

/// [`start_model_thread`] without the log.
fn spawn_model_thread(
    name: &str,
    model: &Arc<LlamaModel>,
    what: String,
    params: impl FnOnce() -> LlamaContextParams + Send + 'static,
    run: impl for<'m> FnOnce(&'m LlamaModel, LlamaContext<'m>) + Send + 'static,
) -> Result<(), EngineError> {
    let backend = backend()?;
    let (ready, started) = std_mpsc::channel::<Result<(), String>>();
    let model = model.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let context = match model.new_context(backend, params()) {
                Ok(context) => context,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            run(&model, context);
        })
        .map_err(|e| EngineError::Failed(format!("failed to start the model thread: {e}")))?;
    match started.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(EngineError::Failed(format!(
            "failed to load model: llama.cpp could not make {what} ({e})"
        ))),
        Err(_) => Err(EngineError::Failed(
            "failed to load model: the model thread stopped".into(),
        )),
    }
}

/// Physical CPU cores (llama.cpp, like Ollama, runs one thread per core: a second thread on a
/// core's sibling only competes for the same units).
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cores = std::collections::HashSet::new();
    for cpu in 0..logical {
        let base = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let read = |name: &str| std::fs::read_to_string(format!("{base}/{name}")).ok();
        match (read("physical_package_id"), read("core_id")) {
            (Some(package), Some(core)) => {
                cores.insert((package.trim().to_string(), core.trim().to_string()));
            }
            _ => return logical,
        }
    }
    cores.len().clamp(1, logical)
}

/// A loaded model. Dropping it ends its thread, which frees the context and the weights.
pub struct LlamaEngine {
    model: Arc<LlamaModel>,
    pub path: PathBuf,
    /// Bytes of the KV cache allocated for all sequences.
    pub kv_bytes: u64,
    /// What the model holds on GPUs and in host memory.
    pub footprint: Footprint,
    jobs: Option<std_mpsc::Sender<Job>>,
    chat_template: Option<String>,
    /// The chat template as llama.cpp's chat code parsed it (None: no template, or one that
    /// code cannot take, which rollama's own Jinja then renders).
    templates: Option<Arc<ChatTemplates>>,
    bos_text: String,
    eos_text: String,
    n_vocab: u32,
    /// The vision projector, for a model that reads images.
    vision: Option<Arc<Vision>>,
    /// Tokens drafted per step unless a request says (`draft_num_predict`).
    draft_default: usize,
}

/// One request handed to the model's thread.
struct Job {
    prompt: Vec<u32>,
    /// The images whose placeholder runs the prompt holds, by placeholder id.
    units: HashMap<u32, Arc<ImageUnit>>,
    max_tokens: usize,
    num_keep: usize,
    /// Most tokens drafted per step (0: no speculative decoding).
    draft_max: usize,
    sampler: Arc<Sampler>,
    /// Special tokens whose text goes out (a chat format's tags).
    preserved: HashSet<u32>,
    out: mpsc::UnboundedSender<Piece>,
}

/// What the model's thread reports for one job.
enum Piece {
    /// The text of one or more chosen tokens (UTF-8 sequences split across tokens are held
    /// until whole).
    Text(String),
    Done {
        reason: &'static str,
        cached: usize,
        drafted: usize,
        accepted: usize,
    },
    Failed(String),
}

impl LlamaEngine {
    /// Loads the GGUF at `path` and starts its thread. Blocking.
    pub fn load(
        path: &Path,
        options: &LoadOptions,
        gguf: &Gguf,
        facts: &ModelFacts,
    ) -> Result<LlamaEngine, EngineError> {
        let architecture = &facts.architecture;
        if !supports_architecture(architecture) {
            return Err(unsupported_architecture(architecture, "(llama.cpp)"));
        }
        let num_parallel = options.num_parallel.max(1);
        let num_ctx = options.num_ctx.max(16);
        let threads = threads_of(options);
        let num_batch = options.num_batch.clamp(1, num_ctx);
        let total_ctx = (num_ctx * num_parallel) as u32;
        let context_params = move || {
            gpu::cache_settings(
                LlamaContextParams::default()
                    .with_n_ctx(NonZeroU32::new(total_ctx))
                    .with_n_batch(num_batch as u32)
                    .with_n_ubatch(num_batch as u32)
                    .with_n_seq_max(num_parallel as u32)
                    .with_kv_unified(true)
                    .with_n_threads(threads)
                    .with_n_threads_batch(threads),
                gpu::settings(),
            )
        };
        let (model, log) = load_model(
            path,
            &format!("{architecture} model"),
            options,
            context_params(),
        )?;
        // The projector goes to the GPU beside a model that went there wholly.
        let whole = gpu::footprint(&log, path).whole();
        let vision = match &options.projector {
            Some(projector) => Some(Arc::new(Vision::load(projector, &model, threads, whole)?)),
            None => None,
        };
        let thread_vision = vision.clone();
        let draft = match &options.draft {
            Some(draft) => Some(load_draft(draft, &model, options, context_params())?),
            None => None,
        };
        let draft_default = if draft.is_some() {
            DEFAULT_DRAFT_MODEL_MAX
        } else {
            DEFAULT_DRAFT_MAX
        };
        let vocab = model.vocab();
        let n_vocab = model.n_vocab().max(0) as u32;
        let piece = |token: LlamaToken| {
            String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned()
        };
        let bos_text = facts
            .bos_token
            .map(|t| piece(LlamaToken(t as i32)))
            .unwrap_or_default();
        let eos_text = piece(vocab.eos());
        let chat_template = gguf.chat_template().map(str::to_string);
        let templates = chat_template
            .as_deref()
            .and_then(|source| native_templates(source, &bos_text, &eos_text));
        // KV bytes per token: keys and values (F16) of every layer's KV heads.
        let head_dim = model.n_embd() as u64 / u64::from(model.n_head().max(1));
        let kv_bytes = 2
            * 2
            * u64::from(model.n_layer())
            * u64::from(model.n_head_kv())
            * head_dim
            * u64::from(total_ctx);
        let (jobs, receiver) = std_mpsc::channel::<Job>();
        // Saved conversations fit this model and cache shape only: the weights, the
        // projector (image embeddings) and what shapes the cache's contents.
        let settings = gpu::settings();
        let disk_key = format!(
            "{}|projector={}|num_ctx={num_ctx}|kv={:?}|flash_attention={:?}",
            options.blob_digest,
            options
                .projector
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            settings.kv_cache_type,
            settings.flash_attention,
        );
        let context_log = start_model_thread(
            "rollama-llama",
            &model,
            format!("a context of {total_ctx} tokens"),
            context_params,
            move |model, context| {
                // The draft model's context: the same shape as the model's.
                let draft = draft.as_ref().and_then(|draft| {
                    let context = draft.new_context(backend().ok()?, context_params()).ok()?;
                    Some(DraftModel::new(draft, context, num_parallel, num_batch))
                });
                Runner::new(model, context, num_parallel, num_ctx, num_batch)
                    .with_vision(thread_vision)
                    .with_disk(&disk_key)
                    .with_draft(draft)
                    .run(receiver)
            },
        )?;
        let footprint = gpu::footprint(&(log + &context_log), path);
        Ok(LlamaEngine {
            draft_default,
            footprint,
            chat_template,
            templates,
            model,
            path: path.to_path_buf(),
            kv_bytes,
            jobs: Some(jobs),
            bos_text,
            eos_text,
            n_vocab,
            vision,
        })
    }

    pub fn reads_images(&self) -> bool {
        self.vision.is_some()
    }

    /// [`LlamaEngine::encode`], or [`LlamaEngine::encode_media`] where there are images.
    fn encode_any(&self, text: &str, images: &[Arc<Image>]) -> Result<Vec<u32>, EngineError> {
        if images.is_empty() {
            self.encode(text)
        } else {
            self.encode_media(text, images)
        }
    }

    /// Token ids of `text` in which each media marker stands for the next of `images`: the
    /// text between markers as [`LlamaEngine::encode`] makes it, each image as its unit's run
    /// of placeholder ids.
    pub fn encode_media(&self, text: &str, images: &[Arc<Image>]) -> Result<Vec<u32>, EngineError> {
        let vision = self
            .vision
            .as_ref()
            .ok_or_else(|| EngineError::Unsupported("this model has no vision projector".into()))?;
        let pieces: Vec<&str> = text.split(super::image::marker()).collect();
        if pieces.len() - 1 != images.len() {
            return Err(EngineError::Unsupported(format!(
                "the prompt places {} images but the request has {}",
                pieces.len() - 1,
                images.len()
            )));
        }
        let mut ids = Vec::new();
        for (index, piece) in pieces.iter().enumerate() {
            if index > 0 {
                let unit = vision.unit(&images[index - 1], index)?;
                ids.extend(std::iter::repeat_n(unit.token(), unit.n_tokens));
            }
            if !piece.is_empty() {
                ids.extend(self.encode(piece)?);
            }
        }
        Ok(ids)
    }

    /// The units of the images `prompt` shows, checked against it: each placeholder run must
    /// be whole images of one of `images`.
    fn units(
        &self,
        prompt: &[u32],
        images: &[Arc<Image>],
    ) -> Result<HashMap<u32, Arc<ImageUnit>>, String> {
        let mut units: HashMap<u32, Arc<ImageUnit>> = HashMap::new();
        let mut at = 0;
        while at < prompt.len() {
            let token = prompt[at];
            if !is_image_token(token) {
                at += 1;
                continue;
            }
            let unit = match units.get(&token) {
                Some(unit) => unit.clone(),
                None => {
                    let (number, image) = images
                        .iter()
                        .enumerate()
                        .find(|(_, image)| image.token() == token)
                        .ok_or("the prompt holds image positions without their image")?;
                    if images
                        .iter()
                        .any(|other| other.token() == token && other.hash != image.hash)
                    {
                        return Err(
                            "two of the request's images collide in the prompt; send them in separate requests"
                                .into(),
                        );
                    }
                    let vision = self
                        .vision
                        .as_ref()
                        .ok_or("this model has no vision projector")?;
                    let unit = vision.unit(image, number + 1).map_err(|e| e.to_string())?;
                    units.insert(token, unit.clone());
                    unit
                }
            };
            let end = at + unit.n_tokens;
            if end > prompt.len() || prompt[at..end].iter().any(|t| *t != token) {
                return Err(
                    "the prompt was cut inside an image; raise num_ctx or send fewer images".into(),
                );
            }
            at = end;
        }
        Ok(units)
    }

    pub fn weights_watch(&self) -> WeightsGone {
        let weak = Arc::downgrade(&self.model);
        WeightsGone::when(move || weak.strong_count() == 0)
    }

    /// Token ids of `text`; special tokens written in it are parsed, none are added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        Ok(self
            .model
            .vocab()
            .tokenize(text.as_bytes(), false, true)
            .into_iter()
            .map(|t| t.0 as u32)
            .collect())
    }

    /// Text of `ids`, special tokens kept.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        if let Some(bad) = ids.iter().find(|id| **id >= self.n_vocab) {
            return Err(EngineError::Unsupported(format!(
                "token {bad} is outside the vocabulary (size {})",
                self.n_vocab
            )));
        }
        let tokens: Vec<LlamaToken> = ids.iter().map(|id| LlamaToken(*id as i32)).collect();
        let bytes = self.model.vocab().detokenize(&tokens, false, true);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The text of a token with special tokens written out.
    fn token_piece_special(&self, id: u32) -> String {
        let bytes = self
            .model
            .vocab()
            .token_to_piece(LlamaToken(id as i32), true, None);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn token_piece(&self, id: u32) -> (String, Vec<u8>) {
        if id >= self.n_vocab {
            return (String::new(), Vec::new());
        }
        let bytes = self
            .model
            .vocab()
            .token_to_piece(LlamaToken(id as i32), false, None);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    }

    /// The GGUF chat template rendered with `messages` (rollama's Jinja), then tokenized.
    pub fn tokenize_chat(
        &self,
        messages: &[ChatMessage],
        enable_thinking: Option<bool>,
    ) -> Result<Vec<u32>, EngineError> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| EngineError::Failed("this model has no chat template".into()))?;
        let jinja: Vec<JinjaMessage> = messages
            .iter()
            .map(|m| JinjaMessage {
                role: m.role.clone(),
                content: m.content_with_calls(),
            })
            .collect();
        let context = JinjaContext {
            bos_token: self.bos_text.clone(),
            eos_token: self.eos_text.clone(),
            add_generation_prompt: true,
            enable_thinking,
        };
        let text = render_chat(template, &jinja, &context).map_err(EngineError::Unsupported)?;
        self.encode_any(&text, &super::images_of(messages))
    }

    /// The chat rendered by llama.cpp's chat code, as llama-server renders it; `None` when
    /// the model has no template that code takes.
    pub fn render_native(
        &self,
        input: &ChatInput,
        facts: &ModelFacts,
    ) -> Result<Option<NativeChat>, EngineError> {
        let Some(templates) = &self.templates else {
            return Ok(None);
        };
        let rendered = templates
            .apply(&input.to_json())
            .map_err(|e| EngineError::Unsupported(format!("chat template error: {e}")))?;
        let mut tokens = self.encode_any(&rendered.prompt, &input.images())?;
        if facts.add_bos_token {
            if let Some(bos) = facts.bos_token {
                if tokens.first() != Some(&bos) {
                    tokens.insert(0, bos);
                }
            }
        }
        // Texts meant as one token: a trigger or a tag the reply must keep.
        let single_token = |text: &String| match self.encode(text) {
            Ok(ids) if ids.len() == 1 => Some(ids[0]),
            _ => None,
        };
        // A strict grammar of the chat code starts with the assistant's opening, which the
        // prompt already ends with: the sampler is fed it first (llama.cpp's prefill, less a
        // first token that only adds a space).
        let mut prefill = Vec::new();
        if !rendered.grammar_lazy && !rendered.generation_prompt.is_empty() {
            prefill = self.encode(&rendered.generation_prompt)?;
            let leading_space = |id: &u32| {
                self.token_piece_special(*id)
                    .starts_with(|c: char| c.is_whitespace())
            };
            if prefill.first().is_some_and(leading_space)
                && !rendered
                    .generation_prompt
                    .starts_with(|c: char| c.is_whitespace())
            {
                prefill.remove(0);
            }
        }
        let grammar = (!rendered.grammar.is_empty()).then(|| GrammarSpec {
            grammar: rendered.grammar.clone(),
            lazy: rendered.grammar_lazy,
            trigger_patterns: rendered.trigger_patterns.clone(),
            trigger_tokens: rendered
                .trigger_tokens
                .iter()
                .filter_map(single_token)
                .collect(),
            prefill,
        });
        let parser = ChatParser::new(&rendered, true)
            .map_err(|e| EngineError::Failed(format!("chat reply parser: {e}")))?;
        Ok(Some(NativeChat {
            tokens,
            stops: rendered.additional_stops.clone(),
            grammar,
            preserved_tokens: rendered
                .preserved_tokens
                .iter()
                .filter_map(single_token)
                .collect(),
            parser: Arc::new(parser),
        }))
    }

    /// llama.cpp's grammar sampler for this request: its chat format's grammar, else its
    /// `format` through llama.cpp's JSON-schema-to-grammar (as llama-server does).
    fn constraint(&self, request: &GenerateRequest) -> Result<Option<LlamaGrammar>, String> {
        let spec = match (&request.grammar, &request.format) {
            (Some(spec), _) => spec.clone(),
            (None, Some(schema)) => GrammarSpec {
                grammar: llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
                    format!("the format's JSON schema cannot be turned into a grammar: {e}")
                })?,
                lazy: false,
                trigger_patterns: Vec::new(),
                trigger_tokens: Vec::new(),
                prefill: Vec::new(),
            },
            (None, None) => return Ok(None),
        };
        let mut sampler = if spec.lazy {
            let tokens: Vec<LlamaToken> = spec
                .trigger_tokens
                .iter()
                .map(|t| LlamaToken(*t as i32))
                .collect();
            LlamaSampler::grammar_lazy_patterns(
                &self.model,
                &spec.grammar,
                "root",
                &spec.trigger_patterns,
                &tokens,
            )
        } else {
            LlamaSampler::grammar(&self.model, &spec.grammar, "root")
        }
        .map_err(|e| format!("the grammar cannot be used: {e}"))?;
        for token in &spec.prefill {
            sampler
                .try_accept(LlamaToken(*token as i32))
                .map_err(|e| format!("the grammar does not take the assistant's opening: {e}"))?;
        }
        Ok(Some(LlamaGrammar {
            sampler,
            n_vocab: self.n_vocab as usize,
        }))
    }

    /// Starts a generation on the model's thread.
    pub fn generate(&self, request: GenerateRequest) -> Result<mpsc::Receiver<Event>, EngineError> {
        let started = Instant::now();
        let units = match self.units(&request.prompt, &request.images) {
            Ok(units) => units,
            Err(message) => return Ok(rejected(message)),
        };
        let grammar = match self.constraint(&request) {
            Ok(grammar) => grammar.map(|g| Box::new(g) as Box<dyn Constraint>),
            Err(message) => return Ok(rejected(message)),
        };
        let prompt_tokens = request.prompt.len();
        let sampler =
            Arc::new(Sampler::new(request.sampling.clone(), prompt_tokens).with_grammar(grammar));
        let (out, mut pieces) = mpsc::unbounded_channel();
        let job = Job {
            prompt: request.prompt.clone(),
            units,
            max_tokens: request.max_tokens,
            num_keep: request.num_keep,
            draft_max: request.draft_max.unwrap_or(self.draft_default),
            sampler: sampler.clone(),
            preserved: request.preserved_tokens.iter().copied().collect(),
            out,
        };
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| EngineError::Failed(RUNNER_STOPPED.into()))?;
        let (mut output, receiver) = Output::new(&request, sampler, started);
        tokio::spawn(async move {
            // Returning drops `pieces`, which the model's thread notices before its next step.
            while let Some(piece) = pieces.recv().await {
                match piece {
                    Piece::Text(text) => {
                        if !output.text(&text).await {
                            return;
                        }
                    }
                    Piece::Done {
                        reason,
                        cached,
                        drafted,
                        accepted,
                    } => {
                        return output
                            .finish_drafted(reason, cached, (drafted, accepted))
                            .await
                    }
                    Piece::Failed(message) => return output.send(Event::Failed(message)).await,
                }
            }
            output.send(Event::Failed(RUNNER_STOPPED.to_string())).await;
        });
        Ok(receiver)
    }
}

impl Drop for LlamaEngine {
    /// Closing the job channel ends the model's thread, which drops the context and its
    /// reference to the weights.
    fn drop(&mut self) {
        self.jobs.take();
    }
}

/// A chat template for llama.cpp's chat code, if that code can render a simple chat with it
/// (else rollama's own Jinja renders it, as before).
fn native_templates(source: &str, bos: &str, eos: &str) -> Option<Arc<ChatTemplates>> {
    let templates = ChatTemplates::new(source, bos, eos).ok()?;
    let probe = ChatInput {
        messages: vec![ChatMessage::new("user", "Hello")],
        ..ChatInput::default()
    };
    templates.apply(&probe.to_json()).ok()?;
    Some(Arc::new(templates))
}

/// llama.cpp's grammar sampler as a mask over rollama's logits.
struct LlamaGrammar {
    sampler: LlamaSampler,
    n_vocab: usize,
}

impl Constraint for LlamaGrammar {
    fn mask(&mut self, logits: &mut [f32]) {
        let count = logits.len().min(self.n_vocab);
        let mut candidates = LlamaTokenDataArray::from_iter(
            logits[..count]
                .iter()
                .enumerate()
                .map(|(id, logit)| LlamaTokenData::new(LlamaToken(id as i32), *logit, 0.0)),
            false,
        );
        self.sampler.apply(&mut candidates);
        for candidate in &candidates.data {
            if let Some(logit) = logits.get_mut(candidate.id().0 as usize) {
                *logit = candidate.logit();
            }
        }
    }

    fn accept(&mut self, token: u32) {
        self.sampler.accept(LlamaToken(token as i32));
    }

    fn judges_single_tokens(&self) -> bool {
        true
    }

    /// The grammar judged on one candidate: it keeps its logit or makes it minus infinity.
    fn allows(&mut self, token: u32) -> bool {
        let mut candidate = LlamaTokenDataArray::new(
            vec![LlamaTokenData::new(LlamaToken(token as i32), 0.0, 0.0)],
            false,
        );
        self.sampler.apply(&mut candidate);
        candidate.data[0].logit().is_finite()
    }

    /// A complete grammar allows only the end of the generation, which stops it.
    fn is_done(&self) -> bool {
        false
    }
}

/// One of the context's sequences.
struct Slot {
    seq: i32,
    /// Tokens whose keys and values this sequence holds, at positions `0..cached.len()`: in
    /// the context, or in `parked`.
    cached: Vec<u32>,
    /// The keys and values of `cached`, copied out of the context while the slot is idle.
    parked: Option<SeqState>,
    /// The images among `cached`, in order.
    images: Vec<CachedImage>,
    last_used: Instant,
    active: Option<Active>,
}

/// An image whose embeddings a sequence holds: its placeholder run in `cached`.
#[derive(Clone)]
struct CachedImage {
    start: usize,
    len: usize,
    /// Positions it took (fewer than `len` with M-RoPE, where an image is a grid).
    positions: i32,
    hash: [u8; 32],
}

impl CachedImage {
    fn saved(&self) -> SavedImage {
        SavedImage {
            start: self.start,
            len: self.len,
            positions: self.positions,
            hash: hex::encode(self.hash),
        }
    }

    fn from_saved(saved: &SavedImage) -> Option<CachedImage> {
        Some(CachedImage {
            start: saved.start,
            len: saved.len,
            positions: saved.positions,
            hash: hex::decode(&saved.hash).ok()?.try_into().ok()?,
        })
    }
}

impl Slot {
    /// Forgets what the sequence held (its cells are cleared by the caller).
    fn forget(&mut self) {
        self.cached.clear();
        self.images.clear();
    }

    /// Keeps the first `keep` entries of `cached` (never part of an image).
    fn truncate(&mut self, keep: usize) {
        self.cached.truncate(keep);
        self.images.retain(|image| image.start + image.len <= keep);
    }

    /// The most of `prompt` this sequence's cache can serve.
    fn reusable(&self, prompt: &[u32], units: &HashMap<u32, Arc<ImageUnit>>) -> usize {
        reusable(&self.cached, &self.images, prompt, units)
    }
}

/// The most of `prompt` a cache holding `cached` (with `images`) can serve: the shared
/// prefix, less any image it would cut, or whose placeholder matches but whose image (by
/// hash) differs.
fn reusable(
    cached: &[u32],
    images: &[CachedImage],
    prompt: &[u32],
    units: &HashMap<u32, Arc<ImageUnit>>,
) -> usize {
    let mut shared = common_prefix(cached, prompt);
    for image in images {
        if image.start >= shared {
            break;
        }
        let whole = image.start + image.len <= shared;
        let same = units
            .get(&prompt[image.start])
            .is_some_and(|unit| unit.hash == image.hash);
        if !whole || !same {
            shared = image.start;
            break;
        }
    }
    // Placeholders of an image no list describes are never shared.
    if let Some(stray) = cached[..shared].iter().enumerate().position(|(at, token)| {
        is_image_token(*token)
            && !images
                .iter()
                .any(|image| image.start <= at && at < image.start + image.len)
    }) {
        shared = stray;
    }
    shared
}

/// `index` moved back to the start of the image among `images` it falls inside, if any.
fn image_boundary(images: &[CachedImage], index: usize) -> usize {
    images
        .iter()
        .find(|image| image.start < index && index < image.start + image.len)
        .map_or(index, |image| image.start)
}

/// The KV position of entry `index` of a sequence whose cache holds `images`.
fn position_at(index: usize, images: &[CachedImage]) -> i32 {
    let saved: i32 = images
        .iter()
        .filter(|image| image.start + image.len <= index)
        .map(|image| image.len as i32 - image.positions)
        .sum();
    index as i32 - saved
}

/// The request a slot is running.
struct Active {
    job: Job,
    /// Prompt tokens not evaluated yet start here.
    next_prompt: usize,
    /// The chosen token to evaluate next, once the prompt is in.
    next_token: Option<u32>,
    /// Prompt and generated tokens: the sampler's penalty window.
    history: Vec<u32>,
    generated: usize,
    /// Prompt tokens found in the cache.
    reused: usize,
    /// Bytes of an unfinished UTF-8 sequence.
    bytes: Vec<u8>,
    /// This slot's logits in the batch just decoded.
    logits_at: Option<i32>,
    /// Tokens drafted after `next_token` in the batch just decoded (their logits follow).
    drafts: Vec<u32>,
    /// How many tokens the next draft may have: it grows while drafts are accepted whole
    /// and shrinks when they are refused.
    draft_len: usize,
    drafted: usize,
    accepted: usize,
    /// Steps to go before the next draft, and the pause after the next refusal.
    draft_pause: usize,
    next_pause: usize,
}

/// Where a new request's prefix comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    /// The slot's own cache (in the context or parked).
    Own,
    /// Another sequence in the context: its cells are shared (llama.cpp's sequence copy).
    Sequence(usize),
    /// Another sequence's parked copy in host memory.
    Parked(usize),
    /// A saved conversation (index into the disk's entries).
    Disk(usize),
}

/// Fewer shared tokens than this are computed rather than fetched from elsewhere or waited
/// for.
const MIN_SHARE: usize = 32;

/// Tokens drafted per step by default (`draft_num_predict` sets it; 0 turns drafting off).
pub const DEFAULT_DRAFT_MAX: usize = 16;
/// Tokens a draft model drafts per step by default (Ollama's `draft_num_predict` default).
pub const DEFAULT_DRAFT_MODEL_MAX: usize = 4;
/// The first draft of a request is at most this long.
const FIRST_DRAFT: usize = 4;
/// The n-gram lengths prompt lookup tries, longest first.
const NGRAM_LONGEST: usize = 4;
const NGRAM_SHORTEST: usize = 3;
/// After a draft the model refused outright, drafting pauses for this many steps, doubled
/// for each further refusal in a row (up to [`MAX_PAUSE`]).
const FIRST_PAUSE: usize = 2;
const MAX_PAUSE: usize = 64;

/// Tokens that followed the most recent earlier occurrence of the history's last n tokens
/// (prompt lookup decoding), at most `max` of them; the longest n that occurs wins.
fn ngram_draft(history: &[u32], max: usize) -> Vec<u32> {
    let len = history.len();
    if max == 0 {
        return Vec::new();
    }
    for n in (NGRAM_SHORTEST..=NGRAM_LONGEST).rev() {
        if len <= n {
            continue;
        }
        let tail = &history[len - n..];
        if let Some(at) = (0..len - n).rev().find(|at| history[*at..*at + n] == *tail) {
            let from = at + n;
            let end = (from + max).min(len);
            if end > from {
                return history[from..end].to_vec();
            }
        }
    }
    Vec::new()
}

/// A draft model (Modelfile `DRAFT`) in its own context, one sequence per slot.
struct DraftModel<'m> {
    context: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    num_batch: usize,
    /// Per slot, the tokens the draft context holds for its sequence.
    cached: Vec<Vec<u32>>,
}

impl<'m> DraftModel<'m> {
    fn new(
        _model: &'m LlamaModel,
        context: LlamaContext<'m>,
        num_parallel: usize,
        num_batch: usize,
    ) -> DraftModel<'m> {
        DraftModel {
            context,
            batch: LlamaBatch::new(num_batch.max(1), 1),
            num_batch: num_batch.max(1),
            cached: vec![Vec::new(); num_parallel],
        }
    }

    /// Up to `max` tokens the draft model predicts (greedily) after `history` in sequence
    /// `seq`: what its cache lacks of `history` is read first.
    fn draft(&mut self, seq: usize, history: &[u32], max: usize) -> Vec<u32> {
        if history.is_empty() || history.iter().any(|t| is_image_token(*t)) {
            return Vec::new();
        }
        let id = seq as u32;
        let cached = &mut self.cached[seq];
        let keep = common_prefix(cached, history).min(history.len() - 1);
        if keep < cached.len() {
            let cut = self
                .context
                .clear_kv_cache_seq(Some(id), Some(keep as u32), None);
            if matches!(cut, Ok(true)) {
                cached.truncate(keep);
            } else {
                let _ = self.context.clear_kv_cache_seq(Some(id), None, None);
                cached.clear();
            }
        }
        let mut last = 0;
        while cached.len() < history.len() {
            self.batch.clear();
            let from = cached.len();
            let end = (from + self.num_batch).min(history.len());
            for (position, token) in history.iter().enumerate().take(end).skip(from) {
                let logits = position + 1 == history.len();
                if self
                    .batch
                    .add(
                        LlamaToken(*token as i32),
                        position as i32,
                        &[seq as i32],
                        logits,
                    )
                    .is_err()
                {
                    return Vec::new();
                }
            }
            if self.context.decode(&mut self.batch).is_err() {
                let _ = self.context.clear_kv_cache_seq(Some(id), None, None);
                cached.clear();
                return Vec::new();
            }
            cached.extend_from_slice(&history[from..end]);
            last = self.batch.n_tokens() - 1;
        }
        let mut drafted = Vec::new();
        while let Some(token) = super::sampler::argmax(self.context.get_logits_ith(last)) {
            drafted.push(token as u32);
            if drafted.len() >= max {
                break;
            }
            self.batch.clear();
            let position = cached.len() as i32;
            if self
                .batch
                .add(LlamaToken(token as i32), position, &[seq as i32], true)
                .is_err()
                || self.context.decode(&mut self.batch).is_err()
            {
                break;
            }
            cached.push(token as u32);
            last = 0;
        }
        drafted
    }
}

struct Runner<'m> {
    model: &'m LlamaModel,
    context: LlamaContext<'m>,
    slots: Vec<Slot>,
    waiting: VecDeque<Job>,
    num_ctx: usize,
    num_batch: usize,
    batch: LlamaBatch<'static>,
    vision: Option<Arc<Vision>>,
    /// Whether a sequence's cells can be shared, cut and restored by position: not for
    /// recurrent or hybrid models, whose state is one whole.
    positional: bool,
    /// Saved conversations of this model and cache shape.
    disk: Option<KvDisk>,
    /// The draft model, whose guesses replace prompt lookup's.
    draft: Option<DraftModel<'m>>,
}

/// Adds `token` to `batch` at its sequence's next position (`cached.len()`) and records it as
/// cached, so that `cached` always mirrors the sequence's KV cache; false when the batch is
/// full.
fn feed(
    batch: &mut LlamaBatch,
    seq: i32,
    cached: &mut Vec<u32>,
    images: &[CachedImage],
    token: u32,
    logits: bool,
) -> bool {
    let position = position_at(cached.len(), images);
    if batch
        .add(LlamaToken(token as i32), position, &[seq], logits)
        .is_err()
    {
        return false;
    }
    cached.push(token);
    true
}

impl<'m> Runner<'m> {
    fn new(
        model: &'m LlamaModel,
        context: LlamaContext<'m>,
        num_parallel: usize,
        num_ctx: usize,
        num_batch: usize,
    ) -> Runner<'m> {
        let now = Instant::now();
        Runner {
            model,
            context,
            slots: (0..num_parallel)
                .map(|seq| Slot {
                    seq: seq as i32,
                    cached: Vec::new(),
                    parked: None,
                    images: Vec::new(),
                    last_used: now,
                    active: None,
                })
                .collect(),
            waiting: VecDeque::new(),
            num_ctx,
            num_batch,
            batch: LlamaBatch::new(num_batch.max(num_parallel), num_parallel as i32),
            vision: None,
            positional: !model.is_recurrent() && !model.is_hybrid(),
            disk: None,
            draft: None,
        }
    }

    fn with_draft(mut self, draft: Option<DraftModel<'m>>) -> Runner<'m> {
        self.draft = draft;
        self
    }

    fn with_vision(mut self, vision: Option<Arc<Vision>>) -> Runner<'m> {
        self.vision = vision;
        self
    }

    /// Saved conversations under the cache key `key` (none for recurrent models).
    fn with_disk(mut self, key: &str) -> Runner<'m> {
        if self.positional {
            self.disk = KvDisk::open(key);
        }
        self
    }

    fn run(mut self, jobs: std_mpsc::Receiver<Job>) {
        loop {
            let busy = self.slots.iter().any(|s| s.active.is_some()) || !self.waiting.is_empty();
            if !busy {
                match jobs.recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(_) => return self.save_all(),
                }
            }
            loop {
                match jobs.try_recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => return self.save_all(),
                }
            }
            self.drop_abandoned();
            self.admit();
            self.step();
        }
    }

    /// Writes every sequence worth keeping to the KV cache directory (the model is
    /// unloading), one at a time: a parked one is copied back into the context first.
    fn save_all(&mut self) {
        let Some(mut disk) = self.disk.take() else {
            return;
        };
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            slot.active = None;
            if slot.cached.len() < kv_disk::MIN_TOKENS {
                continue;
            }
            if let Some(state) = slot.parked.take() {
                if self.context.state_seq_set(&state, slot.seq).is_err() {
                    let _ = self
                        .context
                        .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                    continue;
                }
            }
            let tokens: Vec<LlamaToken> =
                slot.cached.iter().map(|t| LlamaToken(*t as i32)).collect();
            let size = self
                .context
                .state_seq_get_size_ext(slot.seq, LlamaStateSeqFlags::empty())
                as u64;
            let images = slot.images.iter().map(CachedImage::saved).collect();
            let context = &self.context;
            let seq = slot.seq;
            let saved = disk.save(&slot.cached, images, size, |path| {
                context
                    .state_seq_save_file(path, seq, &tokens)
                    .map(|_| ())
                    .map_err(|e| format!("llama.cpp could not save the sequence ({e})"))
            });
            match saved {
                Ok(()) => {
                    stats().files_saved.inc();
                }
                Err(e) => eprintln!("kv cache: a conversation was not saved: {e}"),
            }
            let _ = self
                .context
                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
        }
    }

    /// Frees the slots whose reader has gone (the client left, or a stop string ended it).
    fn drop_abandoned(&mut self) {
        for slot in &mut self.slots {
            if slot.active.as_ref().is_some_and(|a| a.job.out.is_closed()) {
                slot.active = None;
                slot.last_used = Instant::now();
            }
        }
        self.waiting.retain(|job| !job.out.is_closed());
    }

    /// Gives each waiting job a free slot, in order. A job whose prompt shares a long prefix
    /// with one another sequence is still reading waits for that part to be in the cache (it
    /// is then copied, not computed twice); jobs behind it go on.
    fn admit(&mut self) {
        let mut deferred = Vec::new();
        while let Some(job) = self.waiting.pop_front() {
            if job.prompt.is_empty() {
                let _ = job.out.send(Piece::Failed("the prompt is empty".into()));
                continue;
            }
            let Some(index) = self.choose_slot(&job) else {
                self.waiting.push_front(job);
                break;
            };
            let (source, available) = self.best_source(&job, index);
            if self.prefix_in_progress(&job, available) {
                deferred.push(job);
                continue;
            }
            self.start(index, job, source, available);
        }
        for job in deferred.into_iter().rev() {
            self.waiting.push_front(job);
        }
    }

    /// The free slot a job takes:
    /// 1. one whose cache it continues: all of the cache is a prefix of the prompt (a chat's
    ///    next turn), or the cache holds nine tenths of the prompt (the same prompt again, an
    ///    edited last message); the longest shared prefix first;
    /// 2. else an empty slot: a prompt that merely starts like another conversation (the same
    ///    system prompt) does not overwrite that conversation's cache while room is left;
    /// 3. else the slot sharing the longest prefix, the least recently used among equals.
    fn choose_slot(&self, job: &Job) -> Option<usize> {
        let free: Vec<(usize, usize, &Slot)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active.is_none())
            .map(|(i, s)| (i, s.reusable(&job.prompt, &job.units), s))
            .collect();
        let longest = |a: &&(usize, usize, &Slot), b: &&(usize, usize, &Slot)| {
            a.1.cmp(&b.1).then(b.2.last_used.cmp(&a.2.last_used))
        };
        let prompt_len = job.prompt.len();
        let continued = free
            .iter()
            .filter(|(_, shared, s)| {
                *shared > 0 && (*shared == s.cached.len() || shared * 10 >= prompt_len * 9)
            })
            .max_by(longest);
        let empty = free.iter().find(|(_, _, s)| s.cached.is_empty());
        let best = free.iter().max_by(longest);
        continued.or(empty).or(best).map(|(index, _, _)| *index)
    }

    /// Where slot `index` gets the longest prefix of the job's prompt, and its length: its
    /// own cache, another sequence (in the context or parked), or a saved conversation. Ties
    /// go to the cheapest; the disk must beat memory by [`MIN_SHARE`] tokens.
    fn best_source(&self, job: &Job, index: usize) -> (Source, usize) {
        let mut best = (
            Source::Own,
            self.slots[index].reusable(&job.prompt, &job.units),
        );
        if !self.positional {
            return best;
        }
        for (other, slot) in self.slots.iter().enumerate() {
            if other == index {
                continue;
            }
            let shared = slot.reusable(&job.prompt, &job.units);
            if shared > best.1 {
                let source = match slot.parked {
                    Some(_) => Source::Parked(other),
                    None => Source::Sequence(other),
                };
                best = (source, shared);
            }
        }
        if let Some(disk) = &self.disk {
            if let Some((entry, _)) = disk.best(&job.prompt) {
                let saved = &disk.entries[entry];
                let images: Option<Vec<CachedImage>> =
                    saved.images.iter().map(CachedImage::from_saved).collect();
                let shared = images.map_or(0, |images| {
                    reusable(&saved.tokens, &images, &job.prompt, &job.units)
                });
                if shared >= best.1 + MIN_SHARE && shared >= kv_disk::MIN_TOKENS {
                    best = (Source::Disk(entry), shared);
                }
            }
        }
        best
    }

    /// Whether another sequence is reading a prompt that shares at least [`MIN_SHARE`] more
    /// tokens with this job's than any cache holds now, and has not reached their end.
    fn prefix_in_progress(&self, job: &Job, available: usize) -> bool {
        if !self.positional {
            return false;
        }
        self.slots.iter().any(|slot| {
            let Some(active) = &slot.active else {
                return false;
            };
            let mut pending = common_prefix(&active.job.prompt, &job.prompt);
            // Images are not waited for.
            if let Some(image) = job.prompt[..pending]
                .iter()
                .position(|t| is_image_token(*t))
            {
                pending = image;
            }
            pending >= available + MIN_SHARE && slot.cached.len() < pending
        })
    }

    /// Starts `job` on slot `index`: its longest cached prefix, `shared` tokens, comes from
    /// `source` ([`Runner::best_source`]) and the rest is computed.
    fn start(&mut self, index: usize, job: Job, source: Source, shared: usize) {
        // The last prompt token is always evaluated: its logits choose the first token (a
        // prompt ending in a cached image evaluates that image again).
        let limit = shared.min(job.prompt.len() - 1);
        match source {
            Source::Own => {
                self.park_idle(index);
                let slot = &mut self.slots[index];
                let keep = image_boundary(&slot.images, limit);
                if let Some(state) = slot.parked.take() {
                    // Copying the whole state back and dropping its tail costs far less than
                    // evaluating even a few tokens.
                    let restored = keep > 0 && self.context.state_seq_set(&state, slot.seq).is_ok();
                    if restored {
                        stats().copied("host", keep);
                    } else {
                        self.clear(index);
                    }
                }
                self.truncate(index, keep);
            }
            Source::Sequence(other) => {
                self.clear(index);
                let (source, target) = (self.slots[other].seq, self.slots[index].seq);
                let keep = image_boundary(&self.slots[other].images, limit);
                let end = position_at(keep, &self.slots[other].images) as u32;
                if self
                    .context
                    .copy_kv_cache_seq(source, target, Some(0), Some(end))
                    .is_ok()
                {
                    self.mirror(index, other, keep);
                    stats().copied("sequence", keep);
                }
                self.park_idle(index);
            }
            Source::Parked(other) => {
                self.park_idle(index);
                self.clear(index);
                let keep = image_boundary(&self.slots[other].images, limit);
                let seq = self.slots[index].seq;
                let restored = match &self.slots[other].parked {
                    Some(state) => self.context.state_seq_set(state, seq).is_ok(),
                    None => false,
                };
                if restored {
                    self.mirror(index, other, self.slots[other].cached.len());
                    self.truncate(index, keep);
                    stats().copied("host", self.slots[index].cached.len());
                } else {
                    self.clear(index);
                }
            }
            Source::Disk(entry) => {
                self.park_idle(index);
                self.clear(index);
                self.restore_from_disk(index, entry, limit);
            }
        }
        let slot = &mut self.slots[index];
        let reused = slot.cached.len();
        stats()
            .computed
            .inc_by(job.prompt.len().saturating_sub(reused) as u64);
        slot.last_used = Instant::now();
        let draft_max = if self.positional { job.draft_max } else { 0 };
        slot.active = Some(Active {
            next_prompt: reused,
            next_token: None,
            history: job.prompt.clone(),
            generated: 0,
            reused,
            bytes: Vec::new(),
            logits_at: None,
            drafts: Vec::new(),
            draft_len: FIRST_DRAFT.min(draft_max),
            drafted: 0,
            accepted: 0,
            draft_pause: 0,
            next_pause: FIRST_PAUSE,
            job,
        });
    }

    /// Records in slot `index` that its sequence now holds the first `keep` tokens (and their
    /// images) of slot `other`'s, after a copy of that sequence's cells or state.
    fn mirror(&mut self, index: usize, other: usize, keep: usize) {
        let cached = self.slots[other].cached[..keep].to_vec();
        let images = self.slots[other].images.clone();
        let slot = &mut self.slots[index];
        slot.cached = cached;
        slot.images = images;
        slot.truncate(keep);
    }

    /// Loads saved conversation `entry` into slot `index` (empty), keeping `limit` tokens at
    /// most; a file that fails its check or that llama.cpp refuses is removed.
    fn restore_from_disk(&mut self, index: usize, entry: usize, limit: usize) {
        let Some(disk) = self.disk.as_mut() else {
            return;
        };
        // A file that fails its check is removed (and logged) by `verify`.
        let Ok(saved) = disk.verify(entry).cloned() else {
            stats().files_refused.inc();
            return;
        };
        let seq = self.slots[index].seq;
        let loaded = saved
            .images
            .iter()
            .map(CachedImage::from_saved)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "its image list is damaged".to_string())
            .and_then(|images| {
                let (tokens, _) = self
                    .context
                    .state_seq_load_file(&saved.path, seq, saved.tokens.len())
                    .map_err(|e| format!("llama.cpp refused it ({e})"))?;
                let tokens: Vec<u32> = tokens.iter().map(|t| t.0 as u32).collect();
                if tokens != saved.tokens {
                    return Err("its tokens differ from its metadata".to_string());
                }
                Ok((tokens, images))
            });
        match loaded {
            Ok((tokens, images)) => {
                let slot = &mut self.slots[index];
                slot.cached = tokens;
                slot.images = images;
                let keep = image_boundary(&slot.images, limit);
                self.truncate(index, keep);
                stats().files_restored.inc();
                stats().copied("disk", self.slots[index].cached.len());
            }
            Err(why) => {
                stats().files_refused.inc();
                if let Some(disk) = self.disk.as_mut() {
                    disk.forget(entry, &why);
                }
                self.clear(index);
            }
        }
    }

    /// Empties slot `index`'s sequence: its cells and any parked copy.
    fn clear(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let _ = self
            .context
            .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
        slot.parked = None;
        slot.forget();
    }

    /// Keeps the first `keep` tokens of slot `index`'s sequence; where the cache cannot drop
    /// a tail (recurrent models) it starts over.
    fn truncate(&mut self, index: usize, keep: usize) {
        let slot = &mut self.slots[index];
        if keep >= slot.cached.len() {
            return;
        }
        let from = position_at(keep, &slot.images) as u32;
        let removed = self
            .context
            .clear_kv_cache_seq(Some(slot.seq as u32), Some(from), None);
        if matches!(removed, Ok(true)) {
            slot.truncate(keep);
        } else {
            self.clear(index);
        }
    }

    /// Moves the keys and values of every idle sequence but `except`'s out of the context
    /// into host memory, so that the steps to come attend over the running sequences' cells
    /// only. A sequence whose state cannot be copied stays where it is.
    fn park_idle(&mut self, except: usize) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if index == except
                || slot.active.is_some()
                || slot.parked.is_some()
                || slot.cached.is_empty()
            {
                continue;
            }
            let Ok(state) = self
                .context
                .state_seq_get(slot.seq, LlamaStateSeqFlags::empty())
            else {
                continue;
            };
            let seq = Some(slot.seq as u32);
            if matches!(self.context.clear_kv_cache_seq(seq, None, None), Ok(true)) {
                slot.parked = Some(state);
            }
        }
    }

    /// One decode: every generating slot's next token (with its draft, if any), then prompt
    /// chunks up to `num_batch`.
    fn step(&mut self) {
        self.evaluate_images();
        self.batch.clear();
        let mut used = 0usize;
        let capacity = self.num_batch.max(self.slots.len());
        let generating = self
            .slots
            .iter()
            .filter(|s| s.active.as_ref().is_some_and(|a| a.next_token.is_some()))
            .count();
        let mut generating_left = generating;
        // Generating slots first: a running stream never waits behind a prompt.
        for index in 0..self.slots.len() {
            let Some(token) = self.slots[index].active.as_ref().and_then(|a| a.next_token) else {
                continue;
            };
            generating_left -= 1;
            if self.slots[index].cached.len() >= self.num_ctx {
                self.shift(index);
            }
            let num_ctx = self.num_ctx;
            let slot = &mut self.slots[index];
            if !feed(
                &mut self.batch,
                slot.seq,
                &mut slot.cached,
                &slot.images,
                token,
                true,
            ) {
                continue;
            }
            let active = slot.active.as_mut().expect("generating");
            active.next_token = None;
            active.logits_at = Some(used as i32);
            used += 1;
            // A draft: the tokens that followed the same few tokens earlier on, checked
            // by this same decode (their logits say whether the model agrees).
            let room = capacity
                .saturating_sub(used + generating_left)
                .min(num_ctx.saturating_sub(slot.cached.len() + 1))
                .min(active.job.max_tokens.saturating_sub(active.generated + 1))
                .min(active.draft_len);
            if active.draft_pause > 0 {
                active.draft_pause -= 1;
                continue;
            }
            if room == 0 || !active.job.sampler.drafts_allowed() {
                continue;
            }
            let drafts = match self.draft.as_mut() {
                // The draft model reads at most num_ctx tokens of a sequence.
                Some(_) if active.history.len() + room >= num_ctx => Vec::new(),
                Some(model) => model.draft(index, &active.history, room),
                None => ngram_draft(&active.history, room),
            };
            for draft in drafts {
                if !feed(
                    &mut self.batch,
                    slot.seq,
                    &mut slot.cached,
                    &slot.images,
                    draft,
                    true,
                ) {
                    break;
                }
                active.drafts.push(draft);
                used += 1;
            }
        }
        for slot in &mut self.slots {
            let Slot {
                seq,
                cached,
                images,
                active,
                ..
            } = slot;
            let Some(active) = active.as_mut() else {
                continue;
            };
            let prompt = &active.job.prompt;
            while active.next_prompt < prompt.len() && used < capacity {
                let token = prompt[active.next_prompt];
                // An image is evaluated on its own at the next step, once the text before
                // it is in the cache.
                if is_image_token(token) {
                    break;
                }
                let last = active.next_prompt + 1 == prompt.len();
                if !feed(&mut self.batch, *seq, cached, images, token, last) {
                    break;
                }
                if last {
                    active.logits_at = Some(used as i32);
                }
                active.next_prompt += 1;
                used += 1;
            }
        }
        if used == 0 {
            return;
        }
        if let Err(e) = self.context.decode(&mut self.batch) {
            self.fail_batch(&format!("llama.cpp could not evaluate the batch: {e}"));
            return;
        }
        for index in 0..self.slots.len() {
            self.sample(index);
        }
    }

    /// Chooses the next tokens of a slot whose logits the last batch computed: the token
    /// after `next_token`, then, while the model agrees with the draft, one more per drafted
    /// token. Drafted tokens it refused leave the cache.
    fn sample(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let Some(active) = slot.active.as_mut() else {
            return;
        };
        let Some(at) = active.logits_at.take() else {
            return;
        };
        let drafts = std::mem::take(&mut active.drafts);
        let vocab = self.model.vocab();
        let mut step = 0;
        let mut confirmed = 0;
        let outcome = loop {
            let draft = drafts.get(step).copied();
            let mut logits = self.context.get_logits_ith(at + step as i32).to_vec();
            let Some((choice, agreed)) =
                active
                    .job
                    .sampler
                    .choose_or_accept(&mut logits, &active.history, draft)
            else {
                let _ = active
                    .job
                    .out
                    .send(Piece::Failed("no token could be sampled".into()));
                break Some(None);
            };
            let token = choice as u32;
            active.history.push(token);
            active.generated += 1;
            confirmed += usize::from(agreed);
            let end = vocab.is_eog(LlamaToken(token as i32));
            if !end {
                let special = active.job.preserved.contains(&token);
                active
                    .bytes
                    .extend(vocab.token_to_piece(LlamaToken(token as i32), special, None));
                let text = take_utf8(&mut active.bytes);
                if !text.is_empty() && active.job.out.send(Piece::Text(text)).is_err() {
                    break Some(None);
                }
            }
            let finished = if end || active.job.sampler.grammar_done() {
                Some("stop")
            } else if active.generated >= active.job.max_tokens {
                Some("length")
            } else {
                None
            };
            if let Some(reason) = finished {
                break Some(Some(reason));
            }
            if agreed && step < drafts.len() {
                // The drafted token is the model's choice, and already in the cache.
                step += 1;
                continue;
            }
            active.next_token = Some(token);
            break None;
        };
        if !drafts.is_empty() {
            active.drafted += drafts.len();
            active.accepted += confirmed;
            stats().drafted.inc_by(drafts.len() as u64);
            stats().accepted.inc_by(confirmed as u64);
            // Whole drafts accepted: try longer ones; part of one: as long as that part; none:
            // pause drafting, longer after each refusal in a row (text that does not repeat
            // itself costs a few checks, not one per token).
            let most = active.job.draft_max;
            if confirmed == drafts.len() {
                active.draft_len = (active.draft_len * 2).min(most);
                active.next_pause = FIRST_PAUSE;
            } else if confirmed > 0 {
                active.draft_len = confirmed.min(most);
                active.next_pause = FIRST_PAUSE;
            } else {
                active.draft_len = 1.min(most);
                active.draft_pause = active.next_pause;
                active.next_pause = (active.next_pause * 2).min(MAX_PAUSE);
            }
        }
        match outcome {
            None => {}
            Some(None) => {
                slot.active = None;
                slot.last_used = Instant::now();
            }
            Some(Some(reason)) => {
                if !active.bytes.is_empty() {
                    let rest = String::from_utf8_lossy(&active.bytes).into_owned();
                    let _ = active.job.out.send(Piece::Text(rest));
                }
                let _ = active.job.out.send(Piece::Done {
                    reason,
                    cached: active.reused,
                    drafted: active.drafted,
                    accepted: active.accepted,
                });
                slot.active = None;
                slot.last_used = Instant::now();
            }
        }
        // The cache holds `next_token` and the drafts it checked; those after the last one
        // the model agreed with go.
        let refused = drafts.len() - step;
        if refused > 0 {
            let keep = self.slots[index].cached.len() - refused;
            self.truncate(index, keep);
        }
    }

    /// Evaluates the images that come next in the prompts being read, each in one go through
    /// the projector (as llama-server does, outside the shared batch).
    fn evaluate_images(&mut self) {
        for index in 0..self.slots.len() {
            while let Some(token) = self.slots[index].active.as_ref().and_then(|active| {
                let next = active.job.prompt.get(active.next_prompt)?;
                (active.next_token.is_none() && is_image_token(*next)).then_some(*next)
            }) {
                self.evaluate_image(index, token);
            }
        }
    }

    /// Evaluates the image whose placeholder run starts at the slot's next prompt position;
    /// a failure ends that request alone.
    fn evaluate_image(&mut self, index: usize, token: u32) {
        let slot = &mut self.slots[index];
        let Some(active) = slot.active.as_mut() else {
            return;
        };
        let start = slot.cached.len();
        let n_past = position_at(start, &slot.images);
        let evaluated = match (&self.vision, active.job.units.get(&token)) {
            (Some(vision), Some(unit)) => {
                let last = active.next_prompt + unit.n_tokens >= active.job.prompt.len();
                vision
                    .evaluate(
                        unit,
                        &mut self.context,
                        n_past,
                        slot.seq,
                        self.num_batch,
                        last,
                    )
                    .map(|positions| (unit.clone(), positions, last))
            }
            _ => Err("the prompt holds image positions without their image".to_string()),
        };
        match evaluated {
            Ok((unit, positions, last)) => {
                slot.images.push(CachedImage {
                    start,
                    len: unit.n_tokens,
                    positions,
                    hash: unit.hash,
                });
                slot.cached
                    .extend(std::iter::repeat_n(token, unit.n_tokens));
                active.next_prompt += unit.n_tokens;
                if last {
                    active.logits_at = Some(-1);
                    self.sample(index);
                }
            }
            Err(message) => {
                let _ = active.job.out.send(Piece::Failed(message));
                slot.active = None;
                slot.last_used = Instant::now();
                let _ = self.context.clear_kv_cache_seq(
                    Some(slot.seq as u32),
                    Some(n_past as u32),
                    None,
                );
            }
        }
    }

    /// Makes room in a full sequence: keeps its first `num_keep` tokens, drops half of the
    /// rest and moves what follows down (Ollama's context shift).
    fn shift(&mut self, index: usize) {
        let Some(active) = self.slots[index].active.as_ref() else {
            return;
        };
        let len = self.slots[index].cached.len();
        let keep = active.job.num_keep.min(len / 2);
        let discard = ((len - keep) / 2).max(1);
        // Cells this sequence shares with another (a copied prefix) would slide for both:
        // the others sharing them beyond the cut get cells of their own first.
        for other in 0..self.slots.len() {
            let shares = other != index
                && self.slots[other].parked.is_none()
                && common_prefix(&self.slots[other].cached, &self.slots[index].cached)
                    > keep + discard;
            if shares {
                self.own_cells(other);
            }
        }
        let slot = &mut self.slots[index];
        let seq = slot.seq as u32;
        // A sequence holding an image does not shift (llama-server turns the shift off for
        // multimodal models too): sliding could cut an image, and M-RoPE positions do not
        // slide.
        let shifted = slot.images.is_empty()
            && matches!(
                self.context.clear_kv_cache_seq(
                    Some(seq),
                    Some(keep as u32),
                    Some((keep + discard) as u32),
                ),
                Ok(true)
            )
            && self
                .context
                .kv_cache_seq_add(
                    slot.seq,
                    Some((keep + discard) as u32),
                    None,
                    -(discard as i32),
                )
                .is_ok();
        if shifted {
            slot.cached.drain(keep..keep + discard);
        } else {
            let active = slot.active.take().expect("active");
            let _ = active.job.out.send(Piece::Done {
                reason: "length",
                cached: active.reused,
                drafted: active.drafted,
                accepted: active.accepted,
            });
            let _ = self.context.clear_kv_cache_seq(Some(seq), None, None);
            slot.forget();
        }
    }

    /// Gives slot `index` cells no other sequence shares: its state is copied out and back
    /// in (a memory copy). Where that fails the sequence starts over, ending its request.
    fn own_cells(&mut self, index: usize) {
        let seq = self.slots[index].seq;
        let copied = self
            .context
            .state_seq_get(seq, LlamaStateSeqFlags::empty())
            .ok()
            .filter(|_| {
                matches!(
                    self.context
                        .clear_kv_cache_seq(Some(seq as u32), None, None),
                    Ok(true)
                )
            })
            .is_some_and(|state| self.context.state_seq_set(&state, seq).is_ok());
        if !copied {
            if let Some(active) = self.slots[index].active.take() {
                let _ = active.job.out.send(Piece::Failed(
                    "llama.cpp could not copy the sequence's cache".into(),
                ));
            }
            self.clear(index);
        }
    }

    /// A failed decode fails every request in the batch; their sequences start over (parked
    /// ones keep their copy).
    fn fail_batch(&mut self, message: &str) {
        for slot in &mut self.slots {
            if slot.parked.is_some() {
                continue;
            }
            if let Some(active) = slot.active.take() {
                let _ = active.job.out.send(Piece::Failed(message.to_string()));
            }
            let _ = self
                .context
                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
            slot.forget();
        }
    }
}

/// The longest whole-UTF-8 prefix of `bytes`, removed from it; invalid bytes (not a
/// truncated sequence) become U+FFFD.
fn take_utf8(bytes: &mut Vec<u8>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let text = text.to_string();
            bytes.clear();
            text
        }
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            let text = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            bytes.drain(..valid);
            text
        }
        Err(_) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_tokens_is_held_until_whole() {
        let mut bytes = "é".as_bytes()[..1].to_vec();
        assert_eq!(take_utf8(&mut bytes), "");
        bytes.push("é".as_bytes()[1]);
        bytes.extend_from_slice(b"x");
        assert_eq!(take_utf8(&mut bytes), "éx");
        assert!(bytes.is_empty());
        let mut bad = vec![0xff, b'a'];
        assert_eq!(take_utf8(&mut bad), "\u{FFFD}a");
    }

    #[test]
    fn the_common_prefix_is_counted_in_tokens() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 3]), 2);
    }

    #[test]
    fn a_draft_is_what_followed_the_last_tokens_before() {
        // "1 2 3" occurred twice: the later occurrence is followed by 7 8.
        let history = [1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 6, 1, 2, 3];
        assert_eq!(ngram_draft(&history, 2), vec![7, 8]);
        assert_eq!(ngram_draft(&history, 16), vec![7, 8, 6, 1, 2, 3]);
        // Two tokens of context are not enough to guess from.
        assert!(ngram_draft(&[5, 6, 1, 5, 6], 4).is_empty());
        assert!(ngram_draft(&history, 0).is_empty());
        assert!(ngram_draft(&[1, 2, 3], 4).is_empty());
    }

    #[test]
    fn the_allow_list_has_the_families_people_pull() {
        for architecture in ["llama", "gemma3", "qwen3", "phi3", "mistral3"] {
            assert!(supports_architecture(architecture), "{architecture}");
        }
        assert!(!supports_architecture("bert"));
        assert!(!supports_architecture("no-such-arch"));
    }
}
