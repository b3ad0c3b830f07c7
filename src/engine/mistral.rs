//! The mistralrs engine: loads a GGUF blob fully offline (the store's existing `blobs/`
//! directory is the model directory, so mistralrs never looks at the network), refuses
//! architectures that mistralrs 0.8.1 would panic on, turns panics during load into errors,
//! and streams generation through a channel owned by the caller: dropping the receiver
//! cancels the request at the next token. See `shared/reference/mistralrs-0.8.1.md` §0 and
//! §11 for the pitfalls fenced off here.

use super::grammar::{Grammar, Vocabulary};
use super::sampler::{Sampler, SamplingOptions};
use super::{
    rejected, unsupported_architecture, ChatMessage, EngineError, Event, GenerateRequest,
    LoadOptions, ModelFacts, Output, WeightsGone, ENGINE_LOG, RUNNER_STOPPED,
};
use crate::gguf::Gguf;
use either::Either;
use indexmap::IndexMap;
use mistralrs::{
    Constraint, Model, NormalRequest, Request, RequestMessage, Response, SamplingParams,
    StopTokens, TokenSource,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// GGUF `general.architecture` values mistralrs 0.8.1 loads and runs on CPU.
/// (`qwen3moe` loads but panics at the first forward pass on CPU, so it is not listed.)
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "llama",
    "mistral3",
    "phi2",
    "phi3",
    "starcoder2",
    "qwen2",
    "qwen3",
];

/// Whether the engine can run a model of this architecture.
pub fn supports_architecture(architecture: &str) -> bool {
    SUPPORTED_ARCHITECTURES.contains(&architecture)
}

/// Environment variable choosing the engine's activation (and KV cache) dtype: `auto` (the
/// default: mistralrs's own choice, F16 on a CPU), `f32` or `f16`. F32 is faster (with the
/// engine pool: decode +2%, prefill +24%) but not the default: with its KV caches twice the
/// size, the soak test ends 15-16% above its warm-up memory (its bound is 10%; see
/// BENCHMARKS.md).
pub const ACTIVATION_DTYPE: &str = "ROLLAMA_ACTIVATION_DTYPE";

fn activation_dtype() -> mistralrs::ModelDType {
    match crate::env::var(ACTIVATION_DTYPE)
        .to_ascii_lowercase()
        .as_str()
    {
        "f32" => mistralrs::ModelDType::F32,
        "f16" => mistralrs::ModelDType::F16,
        _ => mistralrs::ModelDType::Auto,
    }
}

/// How many sequences one loaded model runs at once.
const MAX_SEQUENCES: usize = 8;

/// The runtime mistralrs's async parts run on: multi-threaded (mistralrs needs
/// `block_in_place` during load) and alive for the whole process, unlike actix's
/// single-threaded worker runtimes.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rollama-engine")
            .enable_all()
            .build()
            .expect("the engine runtime must start")
    })
}

/// A loaded model. Dropping it stops its engine thread and frees its memory.
pub struct MistralEngine {
    model: Arc<Model>,
    /// The file the weights were loaded from (a converted copy for some weight types).
    pub path: PathBuf,
    /// The tokenizer the engine itself uses, for work that need not wait for an engine step.
    tokenizer: Option<Arc<tokenizers::Tokenizer>>,
    vocabulary: Result<Arc<Vocabulary>, String>,
    /// Gone once the engine thread has stopped and the weights are freed.
    weights: Option<Weak<tokio::sync::Mutex<dyn mistralrs::core::Pipeline>>>,
    pub facts: ModelFacts,
}

impl MistralEngine {
    /// Loads the GGUF at `path`. Blocking: call it off the async workers. Refuses
    /// architectures mistralrs cannot run before mistralrs sees them.
    pub fn load(
        blob: &Path,
        options: &LoadOptions,
        gguf: &Gguf,
        facts: ModelFacts,
    ) -> Result<MistralEngine, EngineError> {
        if !supports_architecture(&facts.architecture) {
            return Err(unsupported_architecture(
                &facts.architecture,
                &format!(
                    "(mistralrs); supported: {}",
                    SUPPORTED_ARCHITECTURES.join(", ")
                ),
            ));
        }
        // Weight types mistralrs runs badly are loaded from a converted copy.
        let path = super::weights::prepare(blob, &options.blob_digest, gguf, &options.derived_dir)
            .map_err(EngineError::Failed)?;
        let (dir, file) = match (path.parent(), path.file_name()) {
            (Some(dir), Some(file)) if dir.is_dir() => (dir.to_path_buf(), file.to_owned()),
            _ => {
                return Err(EngineError::Failed(format!(
                    "model file {} not found",
                    path.display()
                )))
            }
        };
        let logging = crate::env::bool_var(ENGINE_LOG, false);
        let activations = activation_dtype();
        // mistralrs's `build_gguf_pipeline`, with the activation dtype chosen here (its builder
        // forces `Auto`, which is F16 on a CPU, so every quantized matmul, which wants F32,
        // converts its input and output).
        let task = runtime().spawn(async move {
            use mistralrs::core::{
                AddModelConfig, AutoDeviceMapParams, DeviceMapSetting, EngineConfig,
                GGUFLoaderBuilder, GGUFSpecificConfig,
            };
            if logging {
                // The engine's own log (mistralrs's tracing output, filtered by `RUST_LOG`).
                mistralrs::core::initialize_logging();
            }
            let loader = GGUFLoaderBuilder::new(
                None,
                None,
                dir.to_string_lossy().into_owned(),
                vec![file.to_string_lossy().into_owned()],
                GGUFSpecificConfig { topology: None },
                false,
                None,
            )
            .build();
            let pipeline = loader.load_model_from_hf(
                None,
                TokenSource::None,
                &activations,
                &mistralrs::Device::Cpu,
                !logging,
                DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
                None,
                None,
            )?;
            let scheduler = mistralrs::SchedulerConfig::DefaultScheduler {
                method: mistralrs::DefaultSchedulerMethod::Fixed(
                    std::num::NonZeroUsize::new(MAX_SEQUENCES).expect("MAX_SEQUENCES > 0"),
                ),
            };
            let config = AddModelConfig {
                engine_config: EngineConfig {
                    // The CPU prefix cache never evicts (unbounded memory growth).
                    no_prefix_cache: true,
                    ..EngineConfig::default()
                },
                mcp_client_config: None,
                loader_config: None,
            };
            let tokenizer = pipeline.lock().await.tokenizer();
            let weights = Arc::downgrade(&pipeline);
            let model = mistralrs::model_builder_trait::build_model_from_pipeline(
                pipeline, scheduler, config,
            )
            .await;
            anyhow::Ok((model, tokenizer, weights))
        });
        let (model, tokenizer, weights) = match runtime().block_on(task) {
            Ok(Ok(built)) => built,
            Ok(Err(e)) => return Err(EngineError::Failed(format!("failed to load model: {e}"))),
            Err(join) if join.is_panic() => {
                return Err(EngineError::Failed(
                    "failed to load model: the engine crashed while loading it".to_string(),
                ))
            }
            Err(e) => return Err(EngineError::Failed(format!("failed to load model: {e}"))),
        };
        // The `format` grammar's view of the vocabulary (built once; a tokenizer toktrie cannot
        // read leaves the model without grammars, which then fail as the request's error).
        let vocabulary = match tokenizer.as_ref() {
            Some(tokenizer) => {
                Vocabulary::from_tokenizer((**tokenizer).clone(), end_tokens(gguf, tokenizer))
            }
            None => Err("the model has no tokenizer".to_string()),
        };
        let engine = MistralEngine {
            model: Arc::new(model),
            path,
            vocabulary: vocabulary.map(Arc::new),
            tokenizer,
            weights: Some(weights),
            facts,
        };
        // A first generation right after load occasionally lost its sequence (the engine
        // thread went away and mistralrs rebooted it on the next request). Run one tiny
        // generation here, twice if the first is lost, so that happens before serving.
        runtime().block_on(async {
            for _ in 0..2 {
                if engine.warm_up().await {
                    break;
                }
            }
        });
        Ok(engine)
    }

    /// One token from a one-token prompt; true when it completed.
    async fn warm_up(&self) -> bool {
        let Ok(mut prompt) = self.tokenize_text("hi").await else {
            return false;
        };
        if let Some(bos) = self.facts.bos_token.filter(|_| self.facts.add_bos_token) {
            prompt.insert(0, bos);
        }
        let Some(_) = prompt.first() else {
            return false;
        };
        let request = GenerateRequest {
            prompt,
            sampling: SamplingOptions {
                temperature: 0.0,
                ..SamplingOptions::default()
            },
            max_tokens: 1,
            stop: Vec::new(),
            format: None,
            num_ctx: self.facts.context_length,
            num_keep: 0,
            draft_max: None,
            grammar: None,
            preserved_tokens: Vec::new(),
            images: Vec::new(),
        };
        let Ok(mut events) = self.generate(request).await else {
            return false;
        };
        while let Some(event) = events.recv().await {
            match event {
                Event::Text(_) | Event::Logprobs(_) => {}
                Event::Done(_) => return true,
                Event::Failed(_) | Event::Rejected(_) => return false,
            }
        }
        false
    }

    /// Token ids of `text` (no BOS added).
    pub async fn tokenize_text(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        // The engine's own tokenizer, here: the engine would do exactly this
        // (`encode_fast(text, false)`), but only between two of its steps, which costs a
        // request up to a whole step (measured: 12-16 ms per request on an idle engine).
        match self.tokenizer {
            Some(_) => self.encode(text),
            None => self.tokenize(Either::Right(text.to_string()), None).await,
        }
    }

    /// Token ids of `messages` rendered with the model's GGUF chat template, ending with the
    /// assistant's turn opened; `enable_thinking` reaches templates that read it (Qwen3's), as
    /// the request's `think`.
    pub async fn tokenize_chat(
        &self,
        messages: &[ChatMessage],
        enable_thinking: Option<bool>,
    ) -> Result<Vec<u32>, EngineError> {
        let messages = messages
            .iter()
            .map(|m| {
                let mut map: IndexMap<String, mistralrs::MessageContent> = IndexMap::new();
                map.insert("role".into(), Either::Left(m.role.clone()));
                map.insert("content".into(), Either::Left(m.content_with_calls()));
                map
            })
            .collect();
        self.tokenize(Either::Left(messages), enable_thinking).await
    }

    async fn tokenize(
        &self,
        text: Either<Vec<IndexMap<String, mistralrs::MessageContent>>, String>,
        enable_thinking: Option<bool>,
    ) -> Result<Vec<u32>, EngineError> {
        let is_chat = text.is_left();
        let model = self.model.clone();
        // mistralrs panics if a tokenize reply channel is dropped early, so the request runs to
        // completion in its own task even if our caller goes away.
        let task = runtime().spawn(async move {
            let (sender, mut receiver) = mpsc::channel(1);
            let request = Request::Tokenize(mistralrs::core::TokenizationRequest {
                text,
                tools: None,
                add_generation_prompt: is_chat,
                add_special_tokens: false,
                enable_thinking,
                reasoning_effort: None,
                response: sender,
            });
            let engine = model
                .inner()
                .get_sender(None)
                .map_err(|e| EngineError::Failed(e.to_string()))?;
            engine
                .send(request)
                .await
                .map_err(|e| EngineError::Failed(e.to_string()))?;
            match receiver.recv().await {
                Some(Ok(ids)) => Ok(ids),
                Some(Err(e)) => Err(EngineError::Failed(format!("tokenizing: {e}"))),
                None => Err(EngineError::Failed("the model runner stopped".into())),
            }
        });
        task.await
            .map_err(|_| EngineError::Failed("the model runner crashed while tokenizing".into()))?
    }

    /// Starts a generation. Events arrive on the returned channel; dropping it cancels the
    /// generation at the next token.
    pub async fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<Event>, EngineError> {
        if !request.images.is_empty() {
            return Err(super::images_need_llamacpp());
        }
        let started = Instant::now();
        let prompt_tokens = request.prompt.len();
        let grammar = match &request.format {
            Some(schema) => match self
                .vocabulary
                .as_ref()
                .map_err(|e| format!("this model's vocabulary cannot take a grammar: {e}"))
                .and_then(|vocabulary| Grammar::json_schema(vocabulary, schema))
            {
                Ok(grammar) => Some(Box::new(grammar) as Box<dyn super::sampler::Constraint>),
                Err(message) => return Ok(rejected(message)),
            },
            None => None,
        };
        let sampler =
            Arc::new(Sampler::new(request.sampling.clone(), prompt_tokens).with_grammar(grammar));
        let mut engine_events = submit(&self.model, &request, &sampler, &[]).await?;
        let (mut output, receiver) = Output::new(&request, sampler.clone(), started);
        let json_constrained = request.format.is_some();
        let model = self.model.clone();
        let tokenizer = self.tokenizer.clone();
        let mut resumed = 0;
        let mut received = String::new();
        let mut received_chunks = 0usize;
        let mut pending_text: Option<String> = None;
        let mut finish_after_pending = false;
        let drop_after = test_drop_after();
        tokio::spawn(async move {
            loop {
                let response = match pending_text.take() {
                    // Text of an interrupted attempt that never reached us (see below).
                    Some(text) => {
                        Response::CompletionChunk(mistralrs::core::CompletionChunkResponse {
                            id: String::new(),
                            choices: vec![mistralrs::core::CompletionChunkChoice {
                                text,
                                index: 0,
                                logprobs: None,
                                finish_reason: None,
                            }],
                            created: 0,
                            model: String::new(),
                            system_fingerprint: String::new(),
                            object: String::new(),
                        })
                    }
                    None => match engine_events.recv().await {
                        Some(response) => response,
                        None => {
                            // mistralrs 0.8.1 now and then drops a running sequence without a
                            // final chunk (no error, no panic). Unless a grammar constrains the
                            // output (its state cannot be carried over), continue it as a new
                            // sequence from the prompt and the tokens chosen so far: the same
                            // sampler keeps the RNG and the penalties going, and the text of
                            // tokens chosen but not yet sent is sent first, so the client sees
                            // one uninterrupted answer.
                            if json_constrained || resumed >= MAX_RESUMES {
                                break;
                            }
                            // Wait until the lost sequence has really stopped (it shares the
                            // sampler); when mistralrs dropped it, it already has.
                            let waited = Instant::now();
                            while engine_events.sender_strong_count() > 0
                                && waited.elapsed() < Duration::from_secs(10)
                            {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            let generated = sampler.observed().tokens;
                            resumed += 1;
                            eprintln!(
                                "engine: a sequence ended without its final chunk; continuing it after {} tokens",
                                generated.len()
                            );
                            if let Some(full) = tokenizer
                                .as_ref()
                                .and_then(|t| t.decode(&generated, true).ok())
                            {
                                if let Some(missing) = full.strip_prefix(received.as_str()) {
                                    if !missing.is_empty() {
                                        pending_text = Some(missing.to_string());
                                    }
                                }
                            }
                            if generated.len() >= request.max_tokens {
                                finish_after_pending = true;
                                if pending_text.is_none() {
                                    output.done("length", 0, (0, 0)).await;
                                    return;
                                }
                                continue;
                            }
                            match submit(&model, &request, &sampler, &generated).await {
                                Ok(resubmitted) => engine_events = resubmitted,
                                Err(_) => break,
                            }
                            continue;
                        }
                    },
                };
                let (text, mut finish) = match response {
                    Response::CompletionChunk(chunk) => match chunk.choices.into_iter().next() {
                        Some(choice) => (choice.text, choice.finish_reason),
                        None => continue,
                    },
                    Response::CompletionDone(done) => match done.choices.into_iter().next() {
                        Some(choice) => (choice.text, Some(choice.finish_reason)),
                        None => (String::new(), Some("stop".to_string())),
                    },
                    Response::CompletionModelError(message, _)
                    | Response::ModelError(message, _) => {
                        return output.send(Event::Failed(message)).await;
                    }
                    // mistralrs validates a request before running it.
                    Response::ValidationError(e) => {
                        return output.send(Event::Rejected(e.to_string())).await;
                    }
                    Response::InternalError(e) => {
                        return output.send(Event::Failed(e.to_string())).await;
                    }
                    _ => continue,
                };
                // After a resumed attempt the text comes from our own decoding of all the
                // tokens chosen so far: the engine decodes a new sequence's first token on its
                // own (dropping its leading space) and knows nothing of the earlier attempt.
                let text = match (resumed > 0, tokenizer.as_ref()) {
                    (true, Some(tokenizer)) => {
                        let tokens = sampler.observed().tokens;
                        match tokenizer.decode(&tokens, true) {
                            Ok(full) if !full.ends_with('\u{FFFD}') => full
                                .strip_prefix(received.as_str())
                                .map(str::to_string)
                                .unwrap_or(text),
                            Ok(_) => String::new(),
                            Err(_) => text,
                        }
                    }
                    _ => text,
                };
                received.push_str(&text);
                if finish_after_pending && finish.is_none() {
                    finish = Some("length".to_string());
                }
                // Fault injection for tests: lose the sequence once after this many chunks.
                if resumed == 0 && drop_after.is_some_and(|n| received_chunks + 1 == n) {
                    engine_events.close();
                }
                received_chunks += 1;
                // Returning drops `engine_events`, which cancels the sequence.
                if !output.text(&text).await {
                    return;
                }
                if let Some(reason) = finish {
                    let reason = if reason == "length" { "length" } else { "stop" };
                    return output.finish(reason, 0).await;
                }
            }
            eprintln!("engine: a sequence ended without its final chunk");
            output.send(Event::Failed(RUNNER_STOPPED.to_string())).await;
        });
        Ok(receiver)
    }
}

/// `ROLLAMA_TEST_LOSE_SEQUENCE_AFTER=N`: for tests of the recovery below, every generation
/// loses its engine sequence once, after N chunks, as mistralrs sometimes does on its own.
fn test_drop_after() -> Option<usize> {
    crate::env::var("ROLLAMA_TEST_LOSE_SEQUENCE_AFTER")
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// How often one generation is continued after mistralrs dropped its sequence.
const MAX_RESUMES: usize = 3;

/// Hands one generation to the engine: `request`'s prompt followed by `generated` (the tokens
/// of an earlier, interrupted attempt), with the sampler that chose those tokens.
async fn submit(
    model: &Arc<Model>,
    request: &GenerateRequest,
    sampler: &Arc<Sampler>,
    generated: &[u32],
) -> Result<mpsc::Receiver<Response>, EngineError> {
    let mut params = SamplingParams::deterministic();
    // mistralrs cannot shift a full context: the generation ends at the window.
    let room = request
        .num_ctx
        .saturating_sub(request.prompt.len() + generated.len());
    let wanted = request.max_tokens.saturating_sub(generated.len());
    params.max_len = Some(wanted.min(room).max(1));
    if !request.stop.is_empty() {
        params.stop_toks = Some(StopTokens::Seqs(request.stop.clone()));
    }
    let mut prompt = request.prompt.clone();
    prompt.extend_from_slice(generated);
    // A big buffer: the engine awaits each send, so a slow client must not stall it.
    let (sender, receiver) = mpsc::channel::<Response>(10_000);
    let inner = model.inner();
    let normal = NormalRequest {
        id: inner.next_request_id(),
        messages: RequestMessage::CompletionTokens(prompt),
        sampling_params: params,
        response: sender,
        return_logprobs: false,
        // Always streaming: dropping a non-streaming request's receiver panics mistralrs.
        is_streaming: true,
        // `format` is the sampler's grammar, as with the llama.cpp engine.
        constraint: Constraint::None,
        suffix: None,
        tools: None,
        tool_choice: None,
        logits_processors: Some(vec![sampler.clone()]),
        return_raw_logits: false,
        web_search_options: None,
        model_id: None,
        truncate_sequence: false,
    };
    inner
        .get_sender(None)
        .map_err(|e| EngineError::Failed(e.to_string()))?
        .send(Request::Normal(Box::new(normal)))
        .await
        .map_err(|e| EngineError::Failed(e.to_string()))?;
    Ok(receiver)
}

impl MistralEngine {
    /// A handle that outlives the engine and says when its weights have been freed.
    pub fn weights_watch(&self) -> WeightsGone {
        let weights = self.weights.clone();
        WeightsGone::when(move || weights.as_ref().is_none_or(|weak| weak.strong_count() == 0))
    }

    /// Token ids of `text` from the engine's own tokenizer, without waiting for an engine
    /// step; no special tokens are added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(no_tokenizer)?;
        tokenizer
            .encode_fast(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| EngineError::Failed(format!("tokenizing: {e}")))
    }

    /// Text of `ids` from the engine's own tokenizer; special tokens are kept. Ids outside
    /// the vocabulary are an error, not a panic.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(no_tokenizer)?;
        let size = tokenizer.get_vocab_size(true) as u32;
        if let Some(bad) = ids.iter().find(|id| **id >= size) {
            return Err(EngineError::Unsupported(format!(
                "token {bad} is outside the vocabulary (size {size})"
            )));
        }
        tokenizer
            .decode(ids, false)
            .map_err(|e| EngineError::Failed(format!("detokenizing: {e}")))
    }

    /// The text of one token as it appears in output, and its bytes (byte-level BPE pieces
    /// that are not whole UTF-8 decode lossily to text but keep their bytes).
    pub fn token_piece(&self, id: u32) -> (String, Vec<u8>) {
        let text = self.decode(&[id]).unwrap_or_default();
        let bytes = text.as_bytes().to_vec();
        (text, bytes)
    }
}

fn no_tokenizer() -> EngineError {
    EngineError::Failed("this model has no tokenizer".to_string())
}

/// The tokens that end a generation, for the grammar to allow once its value is complete:
/// the GGUF's end-of-sequence and end-of-turn tokens and the chat formats' usual ones.
fn end_tokens(gguf: &Gguf, tokenizer: &tokenizers::Tokenizer) -> Vec<u32> {
    let mut ends: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|key| gguf.get(key).and_then(|v| v.as_u64()))
        .map(|id| id as u32)
        .collect();
    for text in [
        "<|im_end|>",
        "<|endoftext|>",
        "<|eot_id|>",
        "<|end|>",
        "</s>",
        "<end_of_turn>",
    ] {
        if let Some(id) = tokenizer.token_to_id(text) {
            ends.push(id);
        }
    }
    ends.dedup();
    ends
}

impl Drop for MistralEngine {
    /// Stops the engine thread explicitly: mistralrs's own drop only runs when the last
    /// reference to its runner goes, and the engine thread keeps the weights alive until
    /// it has stopped.
    fn drop(&mut self) {
        if let Ok(sender) = self.model.inner().get_sender(None) {
            let _ = sender.try_send(Request::Terminate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_architectures_that_panic_in_mistralrs() {
        assert!(supports_architecture("llama"));
        assert!(!supports_architecture("qwen3moe"));
        assert!(!supports_architecture("gemma3"));
        assert!(!supports_architecture("bert"));
    }
}
