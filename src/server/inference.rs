//! What `/api/generate` and `/api/chat` share: finding the model, checking what it can do,
//! options and keep-alive, building the prompt's tokens within `num_ctx`, and turning engine
//! events into Ollama's NDJSON chunks (or one JSON object for `"stream": false`).

use super::error::ApiError;
use super::keep_alive::KeepAlive;
use super::options::Options;
use super::routes::models::{parse_name, ModelView};
use super::scheduler::{Lease, LoadRequest};
use super::thinking::{Parser, Think};
use super::{AppState, CachedModel};
use crate::engine::gpu::Placement;
use crate::engine::sampler::TokenLogprob;
use crate::engine::{
    ChatMessage, Event, GenerateRequest, ParsedReply, ReplyParser, RUNNER_STOPPED,
};
use crate::format::go_time_utc_now;
use crate::gguf::Gguf;
use crate::store::manifest::MEDIA_MODEL;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The model a request names (or the configured default), loaded from the store.
pub struct Target {
    pub requested: String,
    pub view: std::sync::Arc<ModelView>,
    pub gguf: std::sync::Arc<Gguf>,
}

/// Environment variable naming the model used when a request has none.
pub const ROLLAMA_DEFAULT_MODEL: &str = "ROLLAMA_DEFAULT_MODEL";

/// Resolves the request's model name; `missing` is the error when no name was given and no
/// default model is configured.
pub async fn find_model(
    state: &web::Data<AppState>,
    requested: &str,
    missing: ApiError,
) -> Result<Target, ApiError> {
    let requested = if requested.is_empty() {
        let default = crate::env::var(ROLLAMA_DEFAULT_MODEL);
        if default.is_empty() {
            return Err(missing);
        }
        default
    } else {
        requested.to_string()
    };
    let name = parse_name(&requested)?;
    // A model read before, whose manifest has not changed since: no store reads.
    let cached = state
        .models
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&requested)
        .cloned();
    if let Some(cached) = cached.filter(CachedModel::is_current) {
        let weights = cached
            .view
            .stored
            .manifest
            .layers_of(MEDIA_MODEL)
            .next()
            .map(|layer| layer.digest);
        if let Some(digest) = weights {
            if let Ok(gguf) = state.gguf(&digest) {
                return Ok(Target {
                    requested,
                    view: cached.view,
                    gguf,
                });
            }
        }
    }
    let store = state.store.clone();
    let shown = requested.clone();
    let state = state.clone();
    web::block(move || -> Result<Target, ApiError> {
        let stored = store
            .find(&name)?
            .ok_or_else(|| ApiError::not_found(format!("model '{shown}' not found")))?;
        let manifest = stored.path.clone();
        let file = std::fs::metadata(&manifest).ok();
        let view = std::sync::Arc::new(ModelView::load(&store, stored)?);
        if let Some(file) = file {
            if let Ok(modified) = file.modified() {
                let mut models = state.models.lock().unwrap_or_else(|e| e.into_inner());
                // A store holds few models; a bound keeps a long-running server small anyway.
                if models.len() >= 256 {
                    models.clear();
                }
                models.insert(
                    shown.clone(),
                    CachedModel {
                        manifest,
                        modified,
                        len: file.len(),
                        inode: std::os::unix::fs::MetadataExt::ino(&file),
                        view: view.clone(),
                    },
                );
            }
        }
        let layer = view
            .stored
            .manifest
            .layers_of(MEDIA_MODEL)
            .next()
            .ok_or_else(|| ApiError::bad_request(format!("\"{shown}\" has no model weights")))?;
        let gguf = state
            .gguf(&layer.digest)
            .map_err(|e| ApiError::internal(format!("reading model: {e}")))?;
        Ok(Target {
            requested: shown,
            view,
            gguf,
        })
    })
    .await
    .map_err(ApiError::internal)?
}

impl Target {
    pub fn has_capability(&self, capability: &str) -> bool {
        self.view
            .capabilities(Some(&self.gguf))
            .contains(&capability)
    }

    /// Ollama's 400 for a model that lacks what the request needs (its `CheckCapabilities`),
    /// naming the model in full: `registry.ollama.ai/library/smollm2:latest does not support
    /// tools`.
    pub fn require(&self, capability: &str) -> Result<(), ApiError> {
        if self.has_capability(capability) {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "{} does not support {capability}",
                self.view.stored.name
            )))
        }
    }

    /// Ollama's 400 for `think` on a model that cannot think, which quotes the name as the
    /// request gave it: `"smollm2" does not support thinking`.
    pub fn require_thinking(&self) -> Result<(), ApiError> {
        if self.has_capability("thinking") {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "\"{}\" does not support thinking",
                self.requested
            )))
        }
    }

    pub fn options(&self, request: Option<&Map<String, Value>>) -> Result<Options, ApiError> {
        let mut options = Options::resolve(&self.view.parameters, request)?;
        let trained = self.gguf.context_length().unwrap_or(4096) as usize;
        options.num_ctx = options.num_ctx.min(trained).max(4);
        Ok(options)
    }

    /// The request's `think` as this model's template sees it, and the parser that takes
    /// the reasoning out of its replies when it thinks (a thinking model thinks unless told
    /// not to, as with Ollama).
    pub fn thinking(&self, value: Option<&Value>) -> (Think, Option<Parser>) {
        let tags = self.view.thinking_tags(Some(&self.gguf));
        let think = Think::resolve(value, tags.is_some());
        let parser = tags
            .filter(|_| think.enabled)
            .map(|(opening, closing)| Parser::new(&opening, &closing));
        (think, parser)
    }

    /// The request's window: its `num_ctx`/`num_keep`, `truncate` and `shift`.
    pub fn window(&self, options: &Options, truncate: Option<bool>, shift: Option<bool>) -> Window {
        let deepseek2 = self.view.config.model_family == "deepseek2"
            || self
                .view
                .config
                .model_families
                .iter()
                .flatten()
                .any(|f| f == "deepseek2");
        Window {
            num_ctx: options.num_ctx,
            num_keep: options.num_keep,
            truncate: truncate.unwrap_or(true),
            shift: shift.unwrap_or(!deepseek2),
        }
    }

    pub fn load_request(
        &self,
        store: &crate::store::Store,
        options: &Options,
        keep_alive: KeepAlive,
    ) -> Option<LoadRequest> {
        let layer = self.view.model_layer()?;
        Some(LoadRequest {
            name: self.view.stored.name.display_shortest(),
            digest: self.view.stored.digest,
            blob: store.blob_path(&layer.digest),
            blob_digest: layer.digest,
            projector: self
                .view
                .projector_layer()
                .map(|p| store.blob_path(&p.digest)),
            draft: self.view.draft_layer().map(|d| store.blob_path(&d.digest)),
            details: self.view.details(),
            num_ctx: options.num_ctx,
            num_batch: options.num_batch,
            num_thread: options.num_thread.max(0) as usize,
            placement: Placement::from_options(options.num_gpu, options.main_gpu),
            keep_alive,
        })
    }
}

/// `keep_alive` from the request, else `OLLAMA_KEEP_ALIVE`.
pub fn keep_alive(value: Option<&Value>) -> Result<KeepAlive, ApiError> {
    Ok(KeepAlive::from_json(value)?.unwrap_or_else(KeepAlive::from_env))
}

/// Ollama's `format`: `"json"`, a JSON schema object, or nothing.
pub fn format_schema(format: Option<&Value>) -> Result<Option<Value>, ApiError> {
    match format {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(json!({"type": "object"}))),
        Some(Value::Object(schema)) => Ok(Some(Value::Object(schema.clone()))),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid format: {other}; expected \"json\" or a JSON schema"
        ))),
    }
}

/// Ollama's `think` validation (thinking itself needs a capable model).
pub fn validate_think(think: Option<&Value>) -> Result<bool, ApiError> {
    match think {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(Value::String(s)) if matches!(s.as_str(), "high" | "medium" | "low" | "max") => Ok(true),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(Value::String(s)) => Err(ApiError::bad_request(format!(
            "invalid think value: \"{s}\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
        ))),
        Some(_) => Err(ApiError::bad_request(
            "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)",
        )),
    }
}

/// Ollama's error for a prompt that does not fit the window and may not be shortened
/// (`truncate: false`, or `shift: false`).
pub const PROMPT_TOO_LONG: &str = "the prompt is longer than the context length currently \
    available to the model; shorten the prompt, adjust the context length in settings, or use a \
    model with a longer context length";

/// The context window a prompt must fit, and what may be done when it does not: Ollama's
/// `truncate` (drop a chat's oldest messages; default true) and `shift` (keep the first
/// `num_keep` tokens and the most recent ones; default true but for deepseek2 models, whose
/// cache cannot shift). A generation with an explicit `num_predict` and `shift` on may run
/// past the window's end (see [`max_tokens`]); any other stops there.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub num_ctx: usize,
    pub num_keep: usize,
    pub truncate: bool,
    pub shift: bool,
}

impl Window {
    /// The prompt as it will run, and whether it was shortened; Ollama's 400 when it does not
    /// fit and may not be shortened.
    pub fn fit(&self, ids: Vec<u32>) -> Result<(Vec<u32>, bool), ApiError> {
        if ids.len() < self.num_ctx {
            Ok((ids, false))
        } else if self.truncate && self.shift {
            Ok((fit_prompt(ids, self.num_ctx, self.num_keep), true))
        } else {
            Err(ApiError::bad_request(PROMPT_TOO_LONG))
        }
    }
}

/// Keeps a prompt inside the window: when it does not leave room for at least one token,
/// keep the first `num_keep` tokens and the most recent ones, so that half the window is
/// left for the answer (Ollama shifts the context the same way).
pub fn fit_prompt(ids: Vec<u32>, num_ctx: usize, num_keep: usize) -> Vec<u32> {
    if ids.len() < num_ctx {
        return ids;
    }
    let keep = num_keep.min(num_ctx / 2);
    let tail = (num_ctx / 2).saturating_sub(keep).max(1);
    let mut fitted = ids[..keep].to_vec();
    fitted.extend_from_slice(&ids[ids.len() - tail..]);
    fitted
}

/// Tokens to generate. An explicit `num_predict` may run past the window when the context
/// may shift (the llama.cpp engine shifts it, as Ollama does; mistralrs stops at the window);
/// without one, or with `shift: false`, generation ends at the window.
pub fn max_tokens(options: &Options, prompt_len: usize, shift: bool) -> usize {
    let room = options.num_ctx.saturating_sub(prompt_len);
    match options.num_predict {
        n if n >= 0 && shift => n as usize,
        n if n >= 0 => (n as usize).min(room),
        _ => room,
    }
}

/// Chat messages as the GGUF template sees them.
pub fn chat_messages(messages: &[(String, String)]) -> Vec<ChatMessage> {
    messages
        .iter()
        .map(|(role, content)| ChatMessage::new(role, content))
        .collect()
}

/// Which endpoint's chunk shapes to produce.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Generate,
    Chat,
}

/// A running generation and everything needed to report it.
pub struct Generation {
    pub shape: Shape,
    pub model: String,
    pub lease: Lease,
    pub started: Instant,
    pub load_duration: Duration,
    pub prompt: Vec<u32>,
    pub return_context: bool,
    /// Names of the request's tools: tool calls in the output are parsed out.
    pub tools: Vec<String>,
    /// At most this many tool calls are returned (`parallel_tool_calls: false` → 1).
    pub max_tool_calls: Option<usize>,
    /// Whether the request asked for log-probabilities.
    pub logprobs: bool,
    /// Whether the prompt was shortened to fit `num_ctx`.
    pub prompt_truncated: bool,
    /// For a model that thinks: takes its reasoning out of the text (`thinking`).
    pub thinking: Option<Parser>,
    /// The chat format's own parser (llama.cpp's, on the native path): splits the reply into
    /// content, reasoning and tool calls in place of `thinking` and `tools`.
    pub reply: Option<std::sync::Arc<dyn ReplyParser>>,
}

/// Engine events after reasoning and tool-call parsing.
enum Out {
    Text(String),
    Thinking(String),
    Logprobs(Vec<TokenLogprob>),
    Calls(Vec<Value>),
    Done(crate::engine::Summary),
    Failed(String),
    /// Refused by the engine before generating, for the request's own fault: a 400.
    Rejected(String),
}

/// Where a response reads its events from: the engine itself, or the tool-call parser.
enum Outs {
    Engine(mpsc::Receiver<Event>),
    Parsed(mpsc::Receiver<Out>),
}

impl Outs {
    async fn recv(&mut self) -> Option<Out> {
        match self {
            Outs::Engine(events) => events.recv().await.map(|event| match event {
                Event::Text(text) => Out::Text(text),
                Event::Logprobs(list) => Out::Logprobs(list),
                Event::Done(summary) => Out::Done(summary),
                Event::Failed(message) => Out::Failed(message),
                Event::Rejected(message) => Out::Rejected(message),
            }),
            Outs::Parsed(outs) => outs.recv().await,
        }
    }
}

/// Holds back text that may be a tool call and turns it into calls at the end.
struct ToolCalls {
    tools: Vec<String>,
    max_calls: Option<usize>,
    held: String,
    holding: bool,
}

impl ToolCalls {
    fn new(tools: Vec<String>, max_calls: Option<usize>) -> ToolCalls {
        let holding = !tools.is_empty();
        ToolCalls {
            tools,
            max_calls,
            held: String::new(),
            holding,
        }
    }

    /// Answer text, passed on unless it may still become a tool call.
    fn text(&mut self, text: String) -> Option<Out> {
        if !self.holding {
            return Some(Out::Text(text));
        }
        self.held.push_str(&text);
        if super::tools::may_be_tool_call(&self.held) {
            return None;
        }
        self.holding = false;
        Some(Out::Text(std::mem::take(&mut self.held)))
    }

    /// The end of the reply: held text becomes the calls it holds, or text after all.
    fn finish(&mut self) -> Option<Out> {
        if self.held.is_empty() {
            return None;
        }
        let mut calls = super::tools::parse_tool_calls(&self.held, &self.tools);
        if let Some(max) = self.max_calls {
            calls.truncate(max);
        }
        Some(if calls.is_empty() {
            Out::Text(std::mem::take(&mut self.held))
        } else {
            Out::Calls(calls)
        })
    }
}

/// A reply split by its chat format's parser as it grows, as llama-server streams it: the
/// reply so far is parsed again after each piece (a partial parse holds back what may still
/// be a tag), new reasoning and content go out as they appear, and each tool call once the
/// next one has started or the reply has ended.
struct NativeSplit {
    parser: std::sync::Arc<dyn ReplyParser>,
    max_calls: Option<usize>,
    text: String,
    content_sent: usize,
    reasoning_sent: usize,
    calls_sent: usize,
}

impl NativeSplit {
    fn new(parser: std::sync::Arc<dyn ReplyParser>, max_calls: Option<usize>) -> NativeSplit {
        NativeSplit {
            parser,
            max_calls,
            text: String::new(),
            content_sent: 0,
            reasoning_sent: 0,
            calls_sent: 0,
        }
    }

    fn push(&mut self, piece: &str) -> Vec<Out> {
        self.text.push_str(piece);
        match self.parser.parse(&self.text, true) {
            Ok(parsed) => self.news(parsed, false),
            Err(_) => Vec::new(),
        }
    }

    /// The rest, from a parse of the whole reply; a reply the format's parser rejects is
    /// read leniently (as a partial one), and failing that is all content.
    fn finish(&mut self) -> Vec<Out> {
        let parsed = self
            .parser
            .parse(&self.text, false)
            .or_else(|_| self.parser.parse(&self.text, true))
            .unwrap_or_else(|_| ParsedReply {
                content: self.text.clone(),
                ..ParsedReply::default()
            });
        self.news(parsed, true)
    }

    fn news(&mut self, parsed: ParsedReply, last: bool) -> Vec<Out> {
        let mut outs = Vec::new();
        let fresh = |whole: &str, sent: &mut usize| -> Option<String> {
            let piece = whole.get(*sent..).filter(|p| !p.is_empty())?.to_string();
            *sent = whole.len();
            Some(piece)
        };
        if let Some(piece) = fresh(&parsed.reasoning_content, &mut self.reasoning_sent) {
            outs.push(Out::Thinking(piece));
        }
        if let Some(piece) = fresh(&parsed.content, &mut self.content_sent) {
            outs.push(Out::Text(piece));
        }
        // The last call of a partial parse may still grow.
        let complete = if last {
            parsed.tool_calls.len()
        } else {
            parsed.tool_calls.len().saturating_sub(1)
        };
        let limit = self.max_calls.unwrap_or(usize::MAX).min(complete);
        if limit > self.calls_sent {
            let calls: Vec<Value> = parsed.tool_calls[self.calls_sent..limit]
                .iter()
                .enumerate()
                .map(|(offset, call)| {
                    let arguments = serde_json::from_str::<Value>(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    let id = if call.id.is_empty() {
                        super::tools::call_id()
                    } else {
                        call.id.clone()
                    };
                    json!({"id": id, "function": {
                        "index": self.calls_sent + offset,
                        "name": call.name,
                        "arguments": arguments,
                    }})
                })
                .collect();
            self.calls_sent = limit;
            outs.push(Out::Calls(calls));
        }
        outs
    }
}

/// Turns the engine's text into the reply's parts: the chat format's own parser (native
/// path), or rollama's thinking parser and tool-call hold-back.
enum Splitter {
    Native(NativeSplit),
    Rollama {
        thinking: Option<Parser>,
        calls: ToolCalls,
    },
}

impl Splitter {
    fn text(&mut self, text: String) -> Vec<Out> {
        match self {
            Splitter::Native(split) => split.push(&text),
            Splitter::Rollama {
                thinking: Some(parser),
                calls,
            } => reasoning_and_answer(calls, parser.add(&text)),
            Splitter::Rollama {
                thinking: None,
                calls,
            } => calls.text(text).into_iter().collect(),
        }
    }

    fn finish(&mut self) -> Vec<Out> {
        match self {
            Splitter::Native(split) => split.finish(),
            Splitter::Rollama { thinking, calls } => {
                let mut outs = match thinking {
                    Some(parser) => reasoning_and_answer(calls, parser.finish()),
                    None => Vec::new(),
                };
                outs.extend(calls.finish());
                outs
            }
        }
    }
}

/// Reasoning and answer text of one piece (or of the thinking parser's leftovers).
fn reasoning_and_answer(calls: &mut ToolCalls, split: super::thinking::Split) -> Vec<Out> {
    let mut outs = Vec::new();
    if !split.thinking.is_empty() {
        outs.push(Out::Thinking(split.thinking));
    }
    if !split.content.is_empty() {
        outs.extend(calls.text(split.content));
    }
    outs
}

/// Splits the reply with its chat format's own parser, or takes the reasoning out of the text
/// (with a thinking parser) and holds back text that may be a tool call (with tools). Without
/// any of them the engine's events are read directly (one task and channel hop fewer).
/// Dropping the result drops the engine's receiver, which cancels the generation.
fn adapt(
    mut events: mpsc::Receiver<Event>,
    tools: Vec<String>,
    max_calls: Option<usize>,
    thinking: Option<Parser>,
    reply: Option<std::sync::Arc<dyn ReplyParser>>,
) -> Outs {
    let mut splitter = match reply {
        Some(parser) => Splitter::Native(NativeSplit::new(parser, max_calls)),
        None if tools.is_empty() && thinking.is_none() => return Outs::Engine(events),
        None => Splitter::Rollama {
            thinking,
            calls: ToolCalls::new(tools, max_calls),
        },
    };
    let (sender, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let (outs, last) = match event {
                Event::Text(text) => (splitter.text(text), false),
                Event::Logprobs(list) => (vec![Out::Logprobs(list)], false),
                Event::Done(summary) => {
                    let mut outs = splitter.finish();
                    outs.push(Out::Done(summary));
                    (outs, true)
                }
                Event::Failed(message) => (vec![Out::Failed(message)], true),
                Event::Rejected(message) => (vec![Out::Rejected(message)], true),
            };
            for out in outs {
                if sender.send(out).await.is_err() {
                    return;
                }
            }
            if last {
                return;
            }
        }
    });
    Outs::Parsed(receiver)
}

impl Generation {
    fn chunk(&self, text: &str) -> Value {
        let mut chunk = json!({"model": self.model, "created_at": go_time_utc_now()});
        match self.shape {
            Shape::Generate => chunk["response"] = json!(text),
            Shape::Chat => chunk["message"] = json!({"role": "assistant", "content": text}),
        }
        chunk["done"] = json!(false);
        chunk
    }

    /// Puts reasoning where this endpoint's shape has it: `thinking` (generate) or
    /// `message.thinking` (chat).
    fn put_thinking(&self, chunk: &mut Value, thinking: &str) {
        match self.shape {
            Shape::Generate => chunk["thinking"] = json!(thinking),
            Shape::Chat => chunk["message"]["thinking"] = json!(thinking),
        }
    }

    /// A chunk of reasoning: Ollama's `thinking` beside an empty answer.
    fn thinking_chunk(&self, thinking: &str) -> Value {
        let mut chunk = self.chunk("");
        self.put_thinking(&mut chunk, thinking);
        chunk
    }

    /// The last tokens of the prompt as text: enough to see whether it ends with the opening
    /// tag of the reasoning.
    fn prompt_tail(&self) -> String {
        let Ok(engine) = self.lease.runner.engine() else {
            return String::new();
        };
        let from = self.prompt.len().saturating_sub(16);
        engine.decode(&self.prompt[from..]).unwrap_or_default()
    }

    fn calls(&self, calls: &[Value]) -> Value {
        let mut chunk = self.chunk("");
        chunk["message"]["tool_calls"] = json!(calls);
        chunk
    }

    /// Ollama's `logprobs` entries: `{token, logprob, bytes, top_logprobs: [{token, logprob,
    /// bytes}]}`, natural-log values.
    fn logprobs_json(&self, list: &[TokenLogprob]) -> Value {
        let Ok(engine) = self.lease.runner.engine() else {
            return Value::Array(Vec::new());
        };
        let entry = |id: u32, logprob: f32| {
            let (token, bytes) = engine.token_piece(id);
            json!({"token": token, "logprob": logprob, "bytes": bytes})
        };
        Value::Array(
            list.iter()
                .map(|l| {
                    let mut item = entry(l.token, l.logprob);
                    item["top_logprobs"] =
                        Value::Array(l.top.iter().map(|(id, lp)| entry(*id, *lp)).collect());
                    item
                })
                .collect(),
        )
    }

    fn done(&self, text: &str, summary: &crate::engine::Summary) -> Value {
        super::metrics::metrics().generation(
            &self.model,
            summary.prompt_tokens,
            summary.cached_tokens,
            summary.tokens.len(),
            self.started.elapsed().saturating_sub(summary.eval_duration),
            summary.eval_duration,
        );
        let mut chunk = self.chunk(text);
        chunk["done"] = json!(true);
        chunk["done_reason"] = json!(summary.done_reason);
        if self.prompt_truncated {
            chunk["prompt_truncated"] = json!(true);
        }
        if self.return_context {
            // Image positions are left out: a later request's `context` carries text only.
            let mut context: Vec<u32> = self
                .prompt
                .iter()
                .copied()
                .filter(|t| !crate::engine::image::is_image_token(*t))
                .collect();
            context.extend_from_slice(&summary.tokens);
            chunk["context"] = json!(context);
        }
        let ns = |d: Duration| d.as_nanos() as u64;
        chunk["total_duration"] = json!(ns(self.started.elapsed()));
        // Go's `omitempty`: never zero in practice (it runs from the request's start).
        if ns(self.load_duration) > 0 {
            chunk["load_duration"] = json!(ns(self.load_duration));
        }
        chunk["prompt_eval_count"] = json!(summary.prompt_tokens);
        chunk["prompt_eval_duration"] = json!(ns(summary.prompt_duration));
        chunk["eval_count"] = json!(summary.tokens.len());
        chunk["eval_duration"] = json!(ns(summary.eval_duration));
        // Beyond Ollama, only when speculative decoding ran: tokens drafted and confirmed.
        if summary.drafted > 0 {
            chunk["draft_count"] = json!(summary.drafted);
            chunk["draft_accepted_count"] = json!(summary.accepted);
        }
        chunk
    }

    /// Starts the engine and answers: NDJSON chunks when streaming, else one object.
    pub async fn respond(
        self,
        request: GenerateRequest,
        stream: bool,
    ) -> Result<HttpResponse, ApiError> {
        // A generation that dies before anything reached the client is retried once: mistralrs
        // reboots an engine whose thread stopped, and the client need not see that.
        let mut retried = false;
        loop {
            super::metrics::metrics().generation_started(&self.model);
            let events = self
                .lease
                .runner
                .engine()?
                .generate(request.clone())
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let mut thinking = self.thinking.clone();
            if let Some(parser) = &mut thinking {
                parser.prompt_ends_with_opening(&self.prompt_tail());
            }
            let mut events = adapt(
                events,
                self.tools.clone(),
                self.max_tool_calls,
                thinking,
                self.reply.clone(),
            );
            if !stream {
                let mut text = String::new();
                let mut reasoning = String::new();
                let mut tool_calls = Vec::new();
                let mut logprobs = Vec::new();
                let mut failure = RUNNER_STOPPED.to_string();
                while let Some(out) = events.recv().await {
                    match out {
                        Out::Text(piece) => text.push_str(&piece),
                        Out::Thinking(piece) => reasoning.push_str(&piece),
                        Out::Logprobs(list) => logprobs.extend(list),
                        Out::Calls(calls) => tool_calls.extend(calls),
                        Out::Done(summary) => {
                            let mut body = self.done(&text, &summary);
                            if !tool_calls.is_empty() {
                                body["message"]["tool_calls"] = json!(tool_calls);
                            }
                            if !reasoning.is_empty() {
                                self.put_thinking(&mut body, &reasoning);
                            }
                            if self.logprobs {
                                body["logprobs"] = self.logprobs_json(&logprobs);
                            }
                            return Ok(self.reply().json(body));
                        }
                        Out::Failed(message) => {
                            failure = message;
                            break;
                        }
                        Out::Rejected(message) => return Err(ApiError::BadRequest(message)),
                    }
                }
                if failure == RUNNER_STOPPED && !retried {
                    retried = true;
                    continue;
                }
                return Err(ApiError::Internal(failure));
            }
            // Errors before the first chunk keep their status.
            let first = match events.recv().await {
                Some(Out::Failed(message)) if message == RUNNER_STOPPED && !retried => {
                    retried = true;
                    continue;
                }
                Some(Out::Failed(message)) => return Err(ApiError::Internal(message)),
                Some(Out::Rejected(message)) => return Err(ApiError::BadRequest(message)),
                Some(out) => out,
                None if !retried => {
                    retried = true;
                    continue;
                }
                None => return Err(ApiError::internal(RUNNER_STOPPED)),
            };
            return Ok(self.stream_body(first, events));
        }
    }

    /// A 200 response builder, marked when the prompt was truncated.
    fn reply(&self) -> actix_web::HttpResponseBuilder {
        let mut response = HttpResponse::Ok();
        if self.prompt_truncated {
            response.insert_header((super::compat::TRUNCATED_HEADER, "true"));
        }
        response
    }

    fn stream_body(self, first: Out, events: Outs) -> HttpResponse {
        let mut response = self.reply();
        let body = futures_util::stream::unfold(
            (Some(first), events, Some(self), Vec::new()),
            |(mut pending, mut events, generation, mut logprobs): (
                Option<Out>,
                Outs,
                Option<Generation>,
                Vec<TokenLogprob>,
            )| async move {
                let generation = generation?;
                // Log-probabilities ride on the next chunk that is sent.
                let (mut value, more) = loop {
                    let out = match pending.take() {
                        Some(out) => out,
                        None => events
                            .recv()
                            .await
                            .unwrap_or_else(|| Out::Failed(RUNNER_STOPPED.to_string())),
                    };
                    break match out {
                        Out::Logprobs(list) => {
                            logprobs.extend(list);
                            continue;
                        }
                        Out::Text(text) => (generation.chunk(&text), true),
                        Out::Thinking(text) => (generation.thinking_chunk(&text), true),
                        Out::Calls(calls) => (generation.calls(&calls), true),
                        Out::Done(summary) => (generation.done("", &summary), false),
                        Out::Failed(message) | Out::Rejected(message) => {
                            (json!({ "error": message }), false)
                        }
                    };
                };
                if generation.logprobs && !logprobs.is_empty() && value.get("error").is_none() {
                    value["logprobs"] = generation.logprobs_json(&logprobs);
                    logprobs.clear();
                }
                let mut line = value.to_string().into_bytes();
                line.push(b'\n');
                // Ending the stream drops the generation and with it the lease.
                let next = if more { Some(generation) } else { None };
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(line)),
                    (None, events, next, logprobs),
                ))
            },
        );
        response
            .content_type("application/x-ndjson")
            .streaming(body)
    }
}

/// A request with nothing to generate loads the model, or with `keep_alive: 0` unloads it
/// (without loading it first), and answers with `done_reason` `load` or `unload`.
pub async fn load_only(
    state: &web::Data<AppState>,
    shape: Shape,
    model: &str,
    load: LoadRequest,
) -> Result<HttpResponse, ApiError> {
    let reason = if load.keep_alive.is_zero() {
        state.scheduler.unload(&load.blob_digest);
        "unload"
    } else {
        let (lease, _) = state.scheduler.acquire(load).await?;
        drop(lease);
        "load"
    };
    let mut body = json!({"model": model, "created_at": go_time_utc_now()});
    match shape {
        Shape::Generate => body["response"] = json!(""),
        Shape::Chat => body["message"] = json!({"role": "assistant", "content": ""}),
    }
    body["done"] = json!(true);
    body["done_reason"] = json!(reason);
    Ok(HttpResponse::Ok().json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_that_fit_are_untouched() {
        assert_eq!(fit_prompt(vec![1, 2, 3], 8, 4), vec![1, 2, 3]);
    }

    #[test]
    fn long_prompts_keep_the_head_and_the_most_recent_tokens() {
        let ids: Vec<u32> = (0..100).collect();
        let fitted = fit_prompt(ids, 20, 4);
        assert_eq!(fitted.len(), 10);
        assert_eq!(&fitted[..4], &[0, 1, 2, 3]);
        assert_eq!(&fitted[4..], &[94, 95, 96, 97, 98, 99]);
    }

    #[test]
    fn a_prompt_too_long_is_shortened_only_when_truncate_and_shift_allow() {
        let window = |truncate, shift| Window {
            num_ctx: 20,
            num_keep: 4,
            truncate,
            shift,
        };
        let long: Vec<u32> = (0..100).collect();
        let (fitted, shortened) = window(true, true).fit(long.clone()).unwrap();
        assert!(shortened);
        assert_eq!(fitted.len(), 10);
        for (truncate, shift) in [(false, true), (true, false), (false, false)] {
            let error = window(truncate, shift).fit(long.clone()).unwrap_err();
            assert_eq!(error, ApiError::bad_request(PROMPT_TOO_LONG));
        }
        assert_eq!(
            window(false, false).fit(vec![1, 2, 3]).unwrap(),
            (vec![1, 2, 3], false)
        );
    }

    #[test]
    fn only_an_explicit_num_predict_runs_past_the_window_and_only_with_shift() {
        let mut options = Options::defaults();
        options.num_ctx = 100;
        options.num_predict = -1;
        assert_eq!(max_tokens(&options, 60, true), 40);
        options.num_predict = 10;
        assert_eq!(max_tokens(&options, 60, true), 10);
        options.num_predict = 500;
        assert_eq!(max_tokens(&options, 60, true), 500);
        assert_eq!(max_tokens(&options, 60, false), 40);
    }

    #[test]
    fn think_values_follow_ollama() {
        assert!(!validate_think(None).unwrap());
        assert!(validate_think(Some(&json!("high"))).unwrap());
        assert_eq!(
            validate_think(Some(&json!("extreme"))).unwrap_err().message(),
            "invalid think value: \"extreme\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
        );
        assert!(validate_think(Some(&json!(3))).is_err());
    }
}
