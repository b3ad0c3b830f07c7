//! `POST /api/chat`: a conversation in, the assistant's next message out.

use crate::engine::{ChatMessage, GenerateRequest};
use crate::server::error::{parse_json, ApiError};
use crate::server::inference::{
    find_model, format_schema, keep_alive, load_only, max_tokens, validate_think, Generation, Shape,
};
use crate::server::prompt::{self, PromptFormat};
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
}

#[derive(Deserialize, Default, Clone)]
pub struct MessageBody {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    images: Vec<String>,
}

pub async fn chat(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let request: ChatBody = parse_json(&body)?;
    let think = validate_think(request.think.as_ref())?;
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    let target = find_model(
        &state,
        &request.model,
        ApiError::bad_request("model is required"),
    )
    .await?;
    if target.has_capability("embedding") {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support chat",
            target.requested
        )));
    }
    if think {
        target.require("thinking")?;
    }
    if request.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        target.require("tools")?;
    }
    if request.messages.iter().any(|m| !m.images.is_empty()) {
        target.require("vision")?;
    }
    let options = target.options(request.options.as_ref())?;
    let format = format_schema(request.format.as_ref())?;
    let load = target
        .load_request(&state.store, options.num_ctx, keep_alive)
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
        messages.push(ChatMessage {
            role: "system".into(),
            content: target.view.system.clone(),
        });
    }
    for stored in &target.view.messages {
        messages.push(ChatMessage {
            role: stored["role"].as_str().unwrap_or_default().to_string(),
            content: stored["content"].as_str().unwrap_or_default().to_string(),
        });
    }
    messages.extend(request.messages.iter().map(|m| ChatMessage {
        role: m.role.to_lowercase(),
        content: m.content.clone(),
    }));

    let (lease, load_duration) = state.scheduler.acquire(load).await?;
    let engine = &lease.runner.engine;
    let prompt_format = PromptFormat::choose(
        target.view.template.as_deref(),
        engine.facts.has_chat_template,
    )?;
    let prompt_ids = prompt::chat_tokens(
        engine,
        &prompt_format,
        request.tools.as_deref().unwrap_or_default(),
        messages,
        options.num_ctx,
        options.num_keep,
    )
    .await?;
    let generation = GenerateRequest {
        max_tokens: max_tokens(&options, prompt_ids.len()),
        prompt: prompt_ids.clone(),
        sampling: options.sampling.clone(),
        stop: options.stop.clone(),
        format,
    };
    Generation {
        shape: Shape::Chat,
        model: target.requested,
        lease,
        started,
        load_duration,
        prompt: prompt_ids,
        return_context: false,
        tools: crate::server::tools::tool_names(request.tools.as_deref().unwrap_or_default()),
    }
    .respond(generation, request.stream.unwrap_or(true))
    .await
}
