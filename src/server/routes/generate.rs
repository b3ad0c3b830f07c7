//! `POST /api/generate`: one prompt in, a completion out (NDJSON or one object), with
//! `context` so the next request can continue where this one ended.

use crate::engine::GenerateRequest;
use crate::server::error::{parse_json, ApiError};
use crate::server::images;
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
pub struct GenerateBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    suffix: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    context: Vec<u32>,
    #[serde(default)]
    raw: bool,
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
    images: Vec<String>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    shift: Option<bool>,
    #[serde(default)]
    logprobs: bool,
    #[serde(default)]
    top_logprobs: Option<i64>,
}

/// Everything `generate` checks in a body before it looks the model up, and its own template
/// parsed and rendered (the request-body fuzz target runs this on arbitrary bytes).
pub(crate) fn check_body(body: &[u8]) -> Result<(), ApiError> {
    let request: GenerateBody = parse_json(body)?;
    images::decode_all(&request.images)?;
    validate_think(request.think.as_ref())?;
    keep_alive(request.keep_alive.as_ref())?;
    crate::server::options::Options::resolve(&Map::new(), request.options.as_ref())?;
    format_schema(request.format.as_ref())?;
    if !request.template.is_empty() {
        let template = crate::template::Template::parse(&request.template)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let values = crate::template::Values {
            system: request.system.clone(),
            prompt: request.prompt.clone(),
            suffix: request.suffix.clone(),
            ..Default::default()
        };
        template
            .execute(&values)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    Ok(())
}

pub async fn generate(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut request: GenerateBody = parse_json(&body)?;
    let image_files = images::decode_all(&std::mem::take(&mut request.images))?;
    if request.raw
        && (!request.template.is_empty()
            || !request.system.is_empty()
            || !request.context.is_empty())
    {
        return Err(ApiError::bad_request(
            "raw mode does not support template, system, or context",
        ));
    }
    if let Some(n) = request.top_logprobs {
        if !(0..=20).contains(&n) {
            return Err(ApiError::bad_request(
                "top_logprobs must be between 0 and 20",
            ));
        }
    }
    let think = validate_think(request.think.as_ref())?;
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    let missing = ApiError::not_found(format!("model '{}' not found", request.model));
    let target = find_model(&state, &request.model, missing).await?;
    if !target.has_capability("completion") {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support generate",
            target.requested
        )));
    }
    if think {
        target.require_thinking()?;
    }
    let (think, thinking) = target.thinking(request.think.as_ref());
    let request_images = if image_files.is_empty() {
        Vec::new()
    } else {
        target.require("vision")?;
        images::check(image_files, 1)?
    };
    if !request.suffix.is_empty() {
        target.require("insert")?;
    }
    let options = target.options(request.options.as_ref())?;
    let format = format_schema(request.format.as_ref())?;
    let load = target
        .load_request(&state.store, &options, keep_alive)
        .ok_or_else(|| ApiError::bad_request("model has no weights"))?;

    if request.prompt.is_empty() && request.context.is_empty() {
        return load_only(&state, Shape::Generate, &target.requested, load).await;
    }

    let (lease, ready) = state.scheduler.acquire(load).await?;
    // Ollama's `load_duration`: from the request's start until its runner was ready (the
    // wait for a generation slot is not part of it).
    let load_duration = ready.saturating_duration_since(started);
    let engine = lease.runner.engine()?;
    let prompt_ids = if request.raw {
        let (text, placed) = images::placed_raw(&request.prompt, &request_images);
        engine
            .tokenize_media(&text, &placed, true)
            .await
            .map_err(|e| match e {
                crate::engine::EngineError::Unsupported(m) => ApiError::BadRequest(m),
                other => ApiError::internal(other.to_string()),
            })?
    } else {
        let template = if request.template.is_empty() {
            target.view.template.as_deref()
        } else {
            Some(request.template.as_str())
        };
        // A request's own template is always rendered.
        let mode = if request.template.is_empty() {
            target.view.chat_mode(Some(&target.gguf))
        } else {
            crate::server::prompt::ChatMode::Rendered
        };
        let format = PromptFormat::choose(template, mode, engine.facts.has_chat_template)?;
        let system = if request.system.is_empty() {
            target.view.system.as_str()
        } else {
            request.system.as_str()
        };
        let mut ids = request.context.clone();
        ids.extend(
            prompt::generate_tokens(
                engine,
                &format,
                system,
                &request.prompt,
                &request.suffix,
                &request_images,
                &think,
            )
            .await?,
        );
        ids
    };
    let window = target.window(&options, request.truncate, request.shift);
    let shift = window.shift;
    let (prompt_ids, prompt_truncated) = window.fit(prompt_ids)?;
    let mut sampling = options.sampling.clone();
    if request.logprobs || request.top_logprobs.is_some_and(|n| n > 0) {
        sampling.logprobs = Some(request.top_logprobs.unwrap_or(0).max(0) as usize);
    }
    let generation = GenerateRequest {
        max_tokens: max_tokens(&options, prompt_ids.len(), shift),
        prompt: prompt_ids.clone(),
        sampling,
        stop: options.stop.clone(),
        format,
        num_ctx: options.num_ctx,
        num_keep: options.num_keep,
        draft_max: options.draft_num_predict,
        grammar: None,
        preserved_tokens: Vec::new(),
        images: request_images,
    };
    Generation {
        shape: Shape::Generate,
        model: target.requested,
        lease,
        started,
        load_duration,
        prompt: prompt_ids,
        return_context: !request.raw,
        tools: Vec::new(),
        max_tool_calls: None,
        logprobs: request.logprobs || request.top_logprobs.is_some_and(|n| n > 0),
        prompt_truncated,
        thinking,
        reply: None,
    }
    .respond(generation, request.stream.unwrap_or(true))
    .await
}
