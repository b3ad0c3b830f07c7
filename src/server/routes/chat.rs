//! `POST /api/chat`: a conversation in, the assistant's next message out.

use crate::engine::{ChatInput, ChatMessage, GenerateRequest};
use crate::server::error::{null_is_default, parse_json, ApiError};
use crate::server::images;
use crate::server::inference::{
    find_model, format_schema, keep_alive, load_only, max_tokens, validate_think, Generation, Shape,
};
use crate::server::prompt::{self, PromptFormat};
use crate::server::tools::ToolChoice;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Instant;

#[derive(Deserialize, Default)]
pub struct ChatBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<MessageBody>,
    #[serde(default)]
    format: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    think: Option<Value>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    /// Beyond Ollama: `"auto"`, `"none"`, `"required"` or a named function, enforced.
    #[serde(default)]
    tool_choice: Option<Value>,
    /// Beyond Ollama: `false` returns at most one tool call.
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    shift: Option<bool>,
    #[serde(default)]
    logprobs: bool,
    #[serde(default)]
    top_logprobs: Option<i64>,
}

#[derive(Deserialize, Default, Clone)]
pub struct MessageBody {
    #[serde(default, deserialize_with = "null_is_default")]
    role: String,
    #[serde(default, deserialize_with = "null_is_default")]
    content: String,
    #[serde(default, deserialize_with = "null_is_default")]
    images: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    tool_calls: Vec<Value>,
    #[serde(default, deserialize_with = "null_is_default")]
    tool_name: String,
    #[serde(default, deserialize_with = "null_is_default")]
    tool_call_id: String,
    /// An assistant's earlier reasoning, passed back to the template as Ollama does.
    #[serde(default, deserialize_with = "null_is_default")]
    thinking: String,
}

/// Everything `chat` checks in a body before it looks the model up (the request-body fuzz
/// target runs this on arbitrary bytes).
pub(crate) fn check_body(body: &[u8]) -> Result<(), ApiError> {
    let request: ChatBody = parse_json(body)?;
    for message in &request.messages {
        images::decode_all(&message.images)?;
    }
    validate_think(request.think.as_ref())?;
    keep_alive(request.keep_alive.as_ref())?;
    let tool_choice =
        ToolChoice::parse(request.tool_choice.as_ref()).map_err(ApiError::BadRequest)?;
    let tools = request.tools.clone().unwrap_or_default();
    tool_choice
        .call_schema(&tools)
        .map_err(ApiError::BadRequest)?;
    crate::server::tools::tool_names(&tools);
    crate::server::options::Options::resolve(&Map::new(), request.options.as_ref())?;
    format_schema(request.format.as_ref())?;
    Ok(())
}

pub async fn chat(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    chat_with(state, body, Thinking::Required).await
}

/// What `think: true` means for a model that cannot think.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    /// Ollama's 400 (`/api/chat`, the OpenAI routes).
    Required,
    /// Dropped, as Ollama does for requests through its Anthropic API (Claude Code asks for
    /// thinking whatever the model).
    Relaxed,
}

pub async fn chat_with(
    state: web::Data<AppState>,
    body: web::Bytes,
    thinking_request: Thinking,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut request: ChatBody = parse_json(&body)?;
    let image_files = request
        .messages
        .iter_mut()
        .map(|m| images::decode_all(&std::mem::take(&mut m.images)))
        .collect::<Result<Vec<_>, _>>()?;
    let think = validate_think(request.think.as_ref())?;
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    let target = find_model(
        &state,
        &request.model,
        ApiError::bad_request("model is required"),
    )
    .await?;
    if !target.has_capability("completion") {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support chat",
            target.requested
        )));
    }
    if think && !target.has_capability("thinking") && thinking_request == Thinking::Relaxed {
        request.think = None;
    } else if think {
        target.require_thinking()?;
    }
    let (think, thinking) = target.thinking(request.think.as_ref());
    if let Some(n) = request.top_logprobs {
        if !(0..=20).contains(&n) {
            return Err(ApiError::bad_request(
                "top_logprobs must be between 0 and 20",
            ));
        }
    }
    let tool_choice =
        ToolChoice::parse(request.tool_choice.as_ref()).map_err(ApiError::BadRequest)?;
    // `tool_choice: "none"` hides the tools from the model and parses no calls.
    let tools: Vec<Value> = match tool_choice {
        ToolChoice::None => Vec::new(),
        _ => request.tools.clone().unwrap_or_default(),
    };
    if !tools.is_empty() {
        target.require("tools")?;
    }
    let call_schema = tool_choice
        .call_schema(&tools)
        .map_err(ApiError::BadRequest)?;
    let mut message_images = Vec::with_capacity(image_files.len());
    if image_files.iter().any(|files| !files.is_empty()) {
        target.require("vision")?;
        let mut first = 1;
        for files in image_files {
            let count = files.len();
            message_images.push(images::check(files, first)?);
            first += count;
        }
    }
    let options = target.options(request.options.as_ref())?;
    let requested_format = format_schema(request.format.as_ref())?;
    if call_schema.is_some() && requested_format.is_some() {
        return Err(ApiError::bad_request(
            "format cannot be combined with a tool_choice that requires a tool call",
        ));
    }
    let load = target
        .load_request(&state.store, &options, keep_alive)
        .ok_or_else(|| ApiError::bad_request("model has no weights"))?;

    if request.messages.is_empty() {
        return load_only(&state, Shape::Chat, &target.requested, load).await;
    }

    // The model's MESSAGE layers come first, and its SYSTEM unless the chat brings its own.
    let mut messages: Vec<ChatMessage> = Vec::new();
    let has_system = request
        .messages
        .iter()
        .any(|m| m.role.eq_ignore_ascii_case("system"));
    if !target.view.system.is_empty() && !has_system {
        messages.push(ChatMessage::new("system", &target.view.system));
    }
    for stored in &target.view.messages {
        messages.push(ChatMessage::new(
            stored["role"].as_str().unwrap_or_default(),
            stored["content"].as_str().unwrap_or_default(),
        ));
    }
    let mut message_images = message_images.into_iter();
    messages.extend(request.messages.iter().map(|m| ChatMessage {
        role: m.role.to_lowercase(),
        content: m.content.clone(),
        tool_calls: m.tool_calls.clone(),
        tool_name: m.tool_name.clone(),
        tool_call_id: m.tool_call_id.clone(),
        thinking: m.thinking.clone(),
        images: message_images.next().unwrap_or_default(),
    }));

    let (lease, ready) = state.scheduler.acquire(load).await?;
    // Ollama's `load_duration`: from the request's start until its runner was ready (the
    // wait for a generation slot is not part of it).
    let load_duration = ready.saturating_duration_since(started);
    let engine = lease.runner.engine()?;
    let prompt_format = PromptFormat::choose(
        target.view.template.as_deref(),
        target.view.chat_mode(Some(&target.gguf)),
        engine.facts.has_chat_template,
    )?;
    let window = target.window(&options, request.truncate, request.shift);
    let shift = window.shift;
    // On the native path llama.cpp's chat code enforces `tool_choice` with its format's own
    // grammar (a named tool: that tool alone, required).
    let settings = ChatInput {
        tools: match &tool_choice {
            ToolChoice::Named(name) => tools
                .iter()
                .filter(|t| t["function"]["name"].as_str() == Some(name.as_str()))
                .cloned()
                .collect(),
            _ => tools.clone(),
        },
        tool_choice: match &tool_choice {
            ToolChoice::Required | ToolChoice::Named(_) => "required",
            _ => "auto",
        }
        .to_string(),
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        reasoning_effort: match &request.think {
            Some(Value::String(level))
                if matches!(level.as_str(), "high" | "medium" | "low" | "max") =>
            {
                Some(level.clone())
            }
            _ => None,
        },
        json_schema: requested_format.clone(),
        ..ChatInput::default()
    };
    let prompt_images = crate::engine::images_of(&messages);
    let chat_prompt =
        prompt::chat_tokens(engine, &prompt_format, &settings, messages, window, &think).await?;
    let (prompt_ids, prompt_truncated) = (chat_prompt.tokens, chat_prompt.truncated);
    let mut stop = options.stop.clone();
    let (format, grammar, preserved_tokens, reply) = match chat_prompt.native {
        Some(native) => {
            stop.extend(native.stops);
            (
                requested_format,
                native.grammar,
                native.preserved_tokens,
                Some(native.parser),
            )
        }
        // The rendered path: a required tool call is a JSON-schema constraint of rollama's.
        None => (call_schema.or(requested_format), None, Vec::new(), None),
    };
    let logprobs = request.logprobs || request.top_logprobs.is_some_and(|n| n > 0);
    let mut sampling = options.sampling.clone();
    if logprobs {
        sampling.logprobs = Some(request.top_logprobs.unwrap_or(0).max(0) as usize);
    }
    let generation = GenerateRequest {
        max_tokens: max_tokens(&options, prompt_ids.len(), shift),
        prompt: prompt_ids.clone(),
        sampling,
        stop,
        format,
        num_ctx: options.num_ctx,
        num_keep: options.num_keep,
        draft_max: options.draft_num_predict,
        grammar,
        preserved_tokens,
        images: prompt_images,
    };
    Generation {
        shape: Shape::Chat,
        model: target.requested,
        lease,
        started,
        load_duration,
        prompt: prompt_ids,
        return_context: false,
        tools: if reply.is_some() {
            Vec::new()
        } else {
            crate::server::tools::tool_names(&tools)
        },
        max_tool_calls: match (&tool_choice, request.parallel_tool_calls) {
            (ToolChoice::Required | ToolChoice::Named(_), _) | (_, Some(false)) => Some(1),
            _ => None,
        },
        logprobs,
        prompt_truncated,
        thinking: if reply.is_some() { None } else { thinking },
        reply,
    }
    .respond(generation, request.stream.unwrap_or(true))
    .await
}
